//! Retry a failed or stopped stage of an execution (RetryStageExecution): the same execution resumes there.

use super::{Command, current_stage, pipeline_not_found};
use crate::engine::step::recovery::resume_stage;
use crate::engine::step::{StepEnv, locked};
use crate::state::declaration::ExecutionMode;
use crate::state::execution::{ExecutionStatus, RetryTrigger, StageStatus};
use crate::state::{PipelineRecord, Timestamp};

/// Resume a failed or stopped stage of an execution, re-running its failed actions (or, with `all`, all of them).
#[derive(Debug)]
pub struct Retry {
    pub execution: String,
    pub stage: String,
    pub all: bool,
}

impl Command for Retry {
    type Output = ();
    type Refusal = RetryRefusal;

    fn execute(self, record: &mut PipelineRecord, env: &StepEnv, now: Timestamp) -> Result<(), RetryRefusal> {
        retry_stage(record, &self.execution, &self.stage, self.all, env, now)
    }
}

pipeline_not_found!(RetryRefusal);

/// Why a stage retry is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryRefusal {
    PipelineNotFound,
    /// The pipeline's current version has no stage of that name.
    StageNotFound,
    /// Nothing failed or stopped there, the execution was superseded or is still running, or the pipeline changed.
    NotRetryable,
    /// A later execution has run in the stage.
    NotLatest,
}

/// The execution resumes in `stage_name`, re-running the failed (or, with `all`, every) action of it with new action
/// execution ids, and goes on to later stages. Earlier attempts stay in the history.
fn retry_stage(
    record: &mut PipelineRecord,
    id: &str,
    stage_name: &str,
    all: bool,
    env: &StepEnv,
    now: Timestamp,
) -> Result<(), RetryRefusal> {
    if current_stage(record, stage_name).is_none() {
        return Err(RetryRefusal::StageNotFound);
    }
    let version = record.version();
    let Some(index) = record.runtime.position(id) else { return Err(RetryRefusal::NotRetryable) };
    let execution = &record.runtime.executions[index];
    let Some(stage) = execution.declaration.stages.iter().position(|s| s.name == stage_name) else {
        return Err(RetryRefusal::NotRetryable);
    };
    let retryable_status = matches!(execution.status, ExecutionStatus::Failed | ExecutionStatus::Stopped);
    let stage_ended = execution.stages[stage]
        .as_ref()
        .is_some_and(|r| matches!(r.status, StageStatus::Failed | StageStatus::Stopped));
    if !retryable_status || !stage_ended || execution.pipeline_version != version {
        return Err(RetryRefusal::NotRetryable);
    }
    if record.runtime.latest_in_stage.get(stage_name).is_some_and(|&latest| latest != index) {
        return Err(RetryRefusal::NotLatest);
    }
    // Another execution may have taken the stage's lock since (a PARALLEL one does not take it).
    if execution.mode != ExecutionMode::Parallel && locked(record, stage_name) {
        return Err(RetryRefusal::NotLatest);
    }

    resume_stage(record, index, stage, all, RetryTrigger::ManualStageRetry, env, now);
    Ok(())
}
