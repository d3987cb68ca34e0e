//! End a held simulated action or rule with an outcome (`POST /_emulator/actions/complete`).

use super::{Command, pipeline_not_found};
use crate::engine::Write;
use crate::engine::conditions;
use crate::engine::providers::artifacts;
use crate::engine::step::{self, StepEnv};
use crate::state::execution::{ActionStatus, Outcome, Pending, RuleRunIndex, RuleStatus, RunIndex};
use crate::state::{PipelineRecord, Timestamp};

/// End a held simulated action (its latest running attempt in the execution) with an outcome.
#[derive(Debug)]
pub struct CompleteAction {
    pub execution: String,
    pub stage: String,
    pub action: String,
    pub outcome: Outcome,
}

/// End a held rule of a stage condition (its latest running evaluation) with an outcome.
#[derive(Debug)]
pub struct CompleteRule {
    pub execution: String,
    pub stage: String,
    pub rule: String,
    pub outcome: Outcome,
}

/// Why a completion is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompleteRefusal {
    PipelineNotFound,
    ExecutionNotFound,
    /// No such action or rule is running in the execution.
    NotRunning,
}

pipeline_not_found!(CompleteRefusal);

impl Command for CompleteAction {
    /// The id of the action execution it ended.
    type Output = String;
    type Refusal = CompleteRefusal;

    fn execute(self, record: &mut PipelineRecord, env: &StepEnv, now: Timestamp) -> Result<String, CompleteRefusal> {
        let index = record.runtime.position(&self.execution).ok_or(CompleteRefusal::ExecutionNotFound)?;
        let running = &record.runtime.executions[index];
        let (stage, action) = (self.stage.as_str(), self.action.as_str());
        let run = running
            .actions
            .iter()
            .rposition(|r| running.names(r) == (stage, action) && r.status == ActionStatus::InProgress)
            .map(RunIndex::at)
            .ok_or(CompleteRefusal::NotRunning)?;
        let found = &running.actions[run];
        let id = found.id.to_string();
        // A held action completed with success acts on the S3 neighbour first, as simulated work does.
        let held = matches!(found.pending.as_deref(), Some(Pending::External { .. }));
        let declared = running.declaration.stages.get(found.stage()).and_then(|s| s.actions.get(found.action()));
        let storing = declared
            .filter(|a| {
                let has_outputs = !found.output_artifacts.is_empty();
                held && artifacts::stores_first(env.real, &a.action_type_id, has_outputs, &self.outcome)
            })
            .map(|a| crate::engine::providers::storing(a, env.real, now, now, Box::new(self.outcome.clone())));
        if let Some(storing) = storing {
            if let Some(found) = record.runtime.w().executions[index].actions.get_mut(run.index()) {
                found.pending = Some(Box::new(storing));
            }
            record.runtime.w().undelivered_artifacts.push((index, run));
            return Ok(id);
        }
        step::finish_action(record, index, run, self.outcome, now, step::FinishedBy::Worker);
        Ok(id)
    }
}

impl Command for CompleteRule {
    /// The id of the rule execution it ended.
    type Output = String;
    type Refusal = CompleteRefusal;

    fn execute(self, record: &mut PipelineRecord, _: &StepEnv, now: Timestamp) -> Result<String, CompleteRefusal> {
        let index = record.runtime.position(&self.execution).ok_or(CompleteRefusal::ExecutionNotFound)?;
        let running = &record.runtime.executions[index];
        let run = running
            .rules()
            .iter()
            .rposition(|r| {
                let stage_name = running.declaration.stages.get(r.stage_index as usize).map(|s| s.name.as_str());
                r.status == RuleStatus::InProgress
                    && stage_name == Some(self.stage.as_str())
                    && running.rule_declaration(r).is_some_and(|d| d.name == self.rule)
            })
            .map(RuleRunIndex::at)
            .ok_or(CompleteRefusal::NotRunning)?;
        let id = running.rules()[run].id.to_string();
        conditions::finish_rule(record, index, run, self.outcome, now);
        Ok(id)
    }
}
