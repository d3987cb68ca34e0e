//! Roll a stage back to a successful execution (RollbackStage): a new ROLLBACK execution runs it again.

use super::{Command, current_stage, pipeline_not_found};
use crate::engine::ids::Ids;
use crate::engine::step::recovery::start_rollback;
use crate::engine::step::{StepEnv, stage_name};
use crate::state::execution::{ExecutionTrigger, ExecutionType, Place, StageStatus};
use crate::state::{PipelineRecord, Timestamp};

/// Start a rollback of a stage to the state a target execution left it in.
#[derive(Debug)]
pub struct Rollback {
    pub target: String,
    pub stage: String,
    pub trigger: ExecutionTrigger,
}

impl Command for Rollback {
    /// The rollback execution's id.
    type Output = String;
    type Refusal = RollbackRefusal;

    fn execute(self, record: &mut PipelineRecord, env: &StepEnv, now: Timestamp) -> Result<String, RollbackRefusal> {
        rollback_stage(record, &self.target, &self.stage, self.trigger, env.ids, now)
    }
}

pipeline_not_found!(RollbackRefusal);

/// Why a rollback is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackRefusal {
    PipelineNotFound,
    /// The pipeline's current version has no stage of that name.
    StageNotFound,
    /// No such target execution.
    TargetNotFound,
    /// The target ran an older version of the pipeline.
    Outdated,
    /// The target did not succeed in the stage, or is itself a rollback.
    NotCompleted,
    /// An execution is in the stage.
    StageBusy,
}

/// Checks the target and starts a rollback execution of stage `name` with its revisions and variables
/// (behaviour.md §4.2). Returns the new execution's id.
fn rollback_stage(
    record: &mut PipelineRecord,
    target_id: &str,
    name: &str,
    trigger: ExecutionTrigger,
    ids: &Ids,
    now: Timestamp,
) -> Result<String, RollbackRefusal> {
    if current_stage(record, name).is_none() {
        return Err(RollbackRefusal::StageNotFound);
    }
    let Some(target) = record.runtime.position(target_id) else { return Err(RollbackRefusal::TargetNotFound) };
    let execution = &record.runtime.executions[target];
    if execution.pipeline_version != record.version() {
        return Err(RollbackRefusal::Outdated);
    }
    // Manual rollbacks work in every execution mode, PARALLEL too [NATIVE].
    let Some(stage) = execution.declaration.stages.iter().position(|s| s.name == name) else {
        return Err(RollbackRefusal::NotCompleted);
    };
    let succeeded = execution.stages[stage].as_ref().is_some_and(|r| r.status == StageStatus::Succeeded);
    if !succeeded || execution.execution_type == ExecutionType::Rollback {
        return Err(RollbackRefusal::NotCompleted);
    }
    let busy = record.runtime.active.iter().any(|&i| {
        let e = &record.runtime.executions[i];
        match e.place {
            Place::InStage { stage } | Place::Waiting { stage, .. } => stage_name(e, stage) == Some(name),
            Place::Done => false,
        }
    });
    if busy {
        return Err(RollbackRefusal::StageBusy);
    }
    Ok(start_rollback(record, target, stage, trigger, ids, now))
}
