//! Let a stage condition being evaluated count as passed (OverrideStageCondition).

use super::{Command, current_stage, pipeline_not_found};
use crate::engine::conditions::{abandon_rules, close, proceed};
use crate::engine::step::StepEnv;
use crate::state::declaration::{ConditionKind, ConditionResult};
use crate::state::execution::ConditionStatus;
use crate::state::{PipelineRecord, Timestamp};

/// Let the condition of `kind` being evaluated in a stage of an execution count as passed.
#[derive(Debug)]
pub struct OverrideCondition {
    pub execution: String,
    pub stage: String,
    pub kind: ConditionKind,
}

impl Command for OverrideCondition {
    type Output = ();
    type Refusal = OverrideRefusal;

    fn execute(self, record: &mut PipelineRecord, env: &StepEnv, now: Timestamp) -> Result<(), OverrideRefusal> {
        override_condition(record, &self.execution, &self.stage, self.kind, env, now)
    }
}

pipeline_not_found!(OverrideRefusal);

/// Why an override is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideRefusal {
    PipelineNotFound,
    /// The pipeline's current version has no stage of that name.
    StageNotFound,
    /// No such execution.
    ExecutionNotFound,
    /// The condition is not being evaluated, or cannot be overridden (its result is SKIP).
    NotOverridable,
    /// A later execution has entered the stage.
    NotLatest,
}

/// The condition of `kind` being evaluated in stage `name` of execution `id` counts as passed; its running rules
/// are abandoned and its status is `Overridden`.
fn override_condition(
    record: &mut PipelineRecord,
    id: &str,
    name: &str,
    kind: ConditionKind,
    env: &StepEnv,
    now: Timestamp,
) -> Result<(), OverrideRefusal> {
    if current_stage(record, name).is_none() {
        return Err(OverrideRefusal::StageNotFound);
    }
    let Some(index) = record.runtime.position(id) else { return Err(OverrideRefusal::ExecutionNotFound) };
    if record.runtime.latest_in_stage.get(name).is_some_and(|&latest| latest != index) {
        return Err(OverrideRefusal::NotLatest);
    }
    let execution = &record.runtime.executions[index];
    let Some(stage) = execution.declaration.stages.iter().position(|s| s.name == name) else {
        return Err(OverrideRefusal::NotOverridable);
    };
    let skips =
        execution.declaration.stages[stage].condition(kind).and_then(|c| c.result) == Some(ConditionResult::Skip);
    let condition = execution.condition_in_progress(stage);
    let Some(condition) = condition.filter(|c| c.kind == kind && !skips && execution.stop.is_none()) else {
        return Err(OverrideRefusal::NotOverridable);
    };
    let rules = condition.rules.clone();
    abandon_rules(record, index, &rules, now);
    close(record, index, stage, ConditionStatus::Overridden, now);
    proceed(record, index, stage, kind, Ok(()), env, now);
    Ok(())
}
