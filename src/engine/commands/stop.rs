//! Stop an execution (StopPipelineExecution): stop and wait, or stop and abandon.

use std::sync::Arc;

use super::{Command, pipeline_not_found};
use crate::engine::Write;
use crate::engine::conditions;
use crate::engine::step::{StepEnv, changed, set_status};
use crate::state::declaration::ActionCategory;
use crate::state::execution::{
    ActionStatus, At, Entity, EventState, Execution, ExecutionStatus, Place, RunIndex, StageStatus, StopRequest,
};
use crate::state::{PipelineRecord, Timestamp};

/// Stop an execution: wait for its running actions, or abandon them.
#[derive(Debug)]
pub struct Stop {
    pub execution: String,
    pub abandon: bool,
    pub reason: Option<String>,
}

impl Command for Stop {
    type Output = ();
    type Refusal = StopRefusal;

    fn execute(self, record: &mut PipelineRecord, _: &StepEnv, now: Timestamp) -> Result<(), StopRefusal> {
        stop(record, &self.execution, self.abandon, self.reason, now)
    }
}

pipeline_not_found!(StopRefusal);

/// Why a stop request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRefusal {
    PipelineNotFound,
    /// The execution is finished (or unknown).
    NotStoppable,
    /// A stop is already under way.
    Duplicated,
}

/// Stop-and-wait lets running actions finish; abandon marks them `Abandoned` at once. A waiting (inbound) execution
/// stops at once and never enters its stage.
fn stop(
    record: &mut PipelineRecord,
    id: &str,
    abandon: bool,
    reason: Option<String>,
    now: Timestamp,
) -> Result<(), StopRefusal> {
    let Some(index) = record.runtime.position(id) else { return Err(StopRefusal::NotStoppable) };
    let execution = &mut record.runtime.w().executions[index];
    let previous = execution.stop.clone();
    match (execution.status, &previous) {
        (ExecutionStatus::InProgress, _) => {}
        (ExecutionStatus::Stopping, Some(p)) if abandon && !p.abandon => {}
        (ExecutionStatus::Stopping, _) => return Err(StopRefusal::Duplicated),
        _ => return Err(StopRefusal::NotStoppable),
    }
    let already_stopping = execution.status == ExecutionStatus::Stopping;
    let reason = reason.or_else(|| previous.and_then(|p| p.reason.clone()));
    execution.stop = Some(Box::new(StopRequest { abandon, reason, cancel: false }));
    match execution.place {
        Place::InStage { stage } => {
            execution.status = ExecutionStatus::Stopping;
            execution.last_update_time = now;
            if let Some(run) = execution.stages[stage].as_mut() {
                run.status = StageStatus::Stopping;
            }
            let mut abandoned = Vec::new();
            if abandon {
                let runs = execution.stages[stage].as_ref().map(|r| r.runs.clone()).unwrap_or_default();
                abandoned = runs.into_iter().filter(|r| abandon_action(execution, *r, now)).collect();
            }
            if !already_stopping {
                let stage_entity = Entity::stage(stage);
                changed(record, index, Entity::Pipeline, EventState::Stopping, now);
                changed(record, index, stage_entity, EventState::Stopping, now);
            }
            for run in abandoned {
                changed(record, index, Entity::Action(run), EventState::Abandoned, now);
            }
            if abandon {
                conditions::abandon(record, index, stage, now);
            }
        }
        // A waiting execution stops at once: it stops and has stopped.
        _ => {
            changed(record, index, Entity::Pipeline, EventState::Stopping, now);
            set_status(record, index, ExecutionStatus::Stopped, now);
        }
    }
    Ok(())
}

/// The summary AWS gives an approval cancelled by stop-and-abandon \[NATIVE\].
pub const APPROVAL_CANCELED: &str = "The approval action has been canceled.";

/// Abandons a running action; whether it was running.
fn abandon_action(execution: &mut Execution, run_index: RunIndex, now: Timestamp) -> bool {
    let declaration = Arc::clone(&execution.declaration);
    let Some(run) = execution.actions.at_mut(run_index) else { return false };
    if run.status != ActionStatus::InProgress {
        return false;
    }
    let is_approval = declaration
        .stages
        .get(run.stage())
        .and_then(|s| s.actions.get(run.action()))
        .is_some_and(|a| a.action_type_id.category == ActionCategory::Approval);
    run.status = ActionStatus::Abandoned;
    run.pending = None;
    run.awaits_approval = false;
    run.last_update_time = now;
    if is_approval {
        // AWS shows a cancelled approval with its summary and no status change time [NATIVE].
        run.summary = Some(APPROVAL_CANCELED.into());
        run.last_status_change = None;
    } else {
        run.last_status_change = Some(now);
    }
    true
}
