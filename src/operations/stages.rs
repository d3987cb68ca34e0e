//! What is done to a stage of a running pipeline: DisableStageTransition, EnableStageTransition,
//! RetryStageExecution and RollbackStage, through the engine.

use serde::Deserialize;

use super::{
    Ctx, PipelineExecutionIdOutput, execution_id, pipeline_not_found, refusal_error, stage_exists, stage_not_found,
};
use crate::engine::command::{Command, Refusal};
use crate::engine::step::{RetryRefusal, RollbackRefusal};
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::PipelineRecord;
use crate::state::execution::{ExecutionTrigger, TransitionState, TriggerType};

// --- Stage transitions ----------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisableStageTransitionInput {
    pipeline_name: String,
    stage_name: String,
    transition_type: String,
    reason: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnableStageTransitionInput {
    pipeline_name: String,
    stage_name: String,
    transition_type: String,
}

/// The stage whose inbound transition a request names: the stage itself (Inbound) or the next one (Outbound).
fn transition_stage(record: &PipelineRecord, pipeline: &str, stage: &str, kind: &str) -> Result<String, ApiError> {
    let stages = &record.current().stages;
    let index = stages.iter().position(|s| s.name == stage).ok_or_else(|| stage_not_found(pipeline, stage))?;
    if kind == "Inbound" {
        return Ok(stage.to_string());
    }
    stages.get(index + 1).map(|s| s.name.clone()).ok_or_else(|| {
        // UNCONFIRMED: AWS's answer for the outbound transition of the last stage.
        ApiError::validation(format!(
            "Stage '{stage}' is the last stage of pipeline '{pipeline}'; it has no outbound transition"
        ))
    })
}

/// Sets the inbound transition a request names, then lets waiting executions move if it is now enabled.
fn set_transition(
    ctx: &Ctx,
    pipeline: &str,
    stage: &str,
    kind: &str,
    disabled_reason: Option<String>,
) -> Result<Reply, ApiError> {
    let now = ctx.now();
    // The stage is looked up first, so that its errors come before anything else.
    let target = ctx.store.read(&ctx.scope, |data| {
        let record = data.pipelines.get(pipeline).ok_or_else(|| pipeline_not_found(&ctx.scope.account, pipeline))?;
        transition_stage(record, pipeline, stage, kind)
    })?;
    let state = TransitionState {
        enabled: disabled_reason.is_none(),
        last_changed_by: Some(ctx.scope.caller_arn()),
        last_changed_at: Some(now),
        disabled_reason,
    };
    let command = Command::SetTransition { stage: target.clone(), state };
    // The stage must still be there when the change is made.
    let check = |record: &PipelineRecord| transition_stage(record, pipeline, stage, kind).map(|_| ());
    ctx.engine.apply(ctx.store, &ctx.scope, pipeline, command, check, |r| refusal_error(ctx, pipeline, r))?;
    Ok(Reply::Done)
}

/// DisableStageTransition: executions wait in front of the stage until the transition is enabled again.
pub fn disable_stage_transition(ctx: &Ctx, input: DisableStageTransitionInput) -> Result<Reply, ApiError> {
    set_transition(ctx, &input.pipeline_name, &input.stage_name, &input.transition_type, Some(input.reason))
}

/// EnableStageTransition: the newest (SUPERSEDED) or oldest (QUEUED) waiting execution enters.
pub fn enable_stage_transition(ctx: &Ctx, input: EnableStageTransitionInput) -> Result<Reply, ApiError> {
    set_transition(ctx, &input.pipeline_name, &input.stage_name, &input.transition_type, None)
}

// --- RetryStageExecution --------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStageExecutionInput {
    pipeline_name: String,
    stage_name: String,
    pipeline_execution_id: String,
    retry_mode: String,
}

/// RetryStageExecution: the same execution resumes in the stage where it failed or was stopped (behaviour.md §4.1).
pub fn retry_stage_execution(ctx: &Ctx, input: RetryStageExecutionInput) -> Result<Reply, ApiError> {
    let (name, stage, id) = (&input.pipeline_name, &input.stage_name, &input.pipeline_execution_id);
    let all = input.retry_mode == "ALL_ACTIONS";
    let command = Command::Retry { execution: id.clone(), stage: stage.clone(), all };
    let refused = |refusal| match refusal {
        // AWS's wording [NATIVE]; an unknown execution id gets it too (UNCONFIRMED: the operation models no
        // PipelineExecutionNotFoundException).
        Refusal::Retry(RetryRefusal::NotRetryable) => ApiError::new(
            ErrorCode::StageNotRetryableException,
            format!(
                "The stage named {stage} in the {name} pipeline can't be retried now. Either it contains no failed \
                 actions, the execution '{id}' is already superseded, or the pipeline definition has changed \
                 since the action(s) failed."
            ),
        ),
        // UNCONFIRMED wording.
        Refusal::Retry(RetryRefusal::NotLatest) => ApiError::new(
            ErrorCode::NotLatestPipelineExecutionException,
            format!(
                "The execution '{id}' is not the latest execution of stage {stage} in the {name} pipeline; only the \
                 latest execution of a stage can be retried"
            ),
        ),
        other => refusal_error(ctx, name, other),
    };
    ctx.engine.apply(ctx.store, &ctx.scope, name, command, |record| stage_exists(record, name, stage), refused)?;
    Reply::json(&PipelineExecutionIdOutput { pipeline_execution_id: id.clone() })
}

// --- RollbackStage --------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackStageInput {
    pipeline_name: String,
    stage_name: String,
    target_pipeline_execution_id: String,
}

/// RollbackStage: a new ROLLBACK execution runs the stage again with the target's revisions and variables
/// (behaviour.md §4.2).
pub fn rollback_stage(ctx: &Ctx, input: RollbackStageInput) -> Result<Reply, ApiError> {
    let (name, stage, target) = (&input.pipeline_name, &input.stage_name, &input.target_pipeline_execution_id);
    // AWS's trigger detail form [NATIVE].
    let detail = serde_json::json!({"AwsUserArn": ctx.scope.caller_arn()}).to_string();
    let trigger = ExecutionTrigger { trigger_type: TriggerType::ManualRollback, trigger_detail: Some(detail.into()) };
    let refused = |refusal| match refusal {
        // AWS's wordings [NATIVE].
        Refusal::Rollback(RollbackRefusal::TargetNotFound) => ApiError::new(
            ErrorCode::PipelineExecutionNotFoundException,
            format!("Target Pipeline Execution with id '{target}' does not exist in pipeline with name '{name}'"),
        ),
        Refusal::Rollback(RollbackRefusal::Outdated) => ApiError::new(
            ErrorCode::PipelineExecutionOutdatedException,
            format!("Pipeline '{name}' has been updated since the rollback request was made."),
        ),
        Refusal::Rollback(RollbackRefusal::NotCompleted) => ApiError::new(
            ErrorCode::UnableToRollbackStageException,
            format!("Target Pipeline Execution with id '{target}' has not completed in stage with name '{stage}'"),
        ),
        Refusal::Rollback(RollbackRefusal::StageBusy) => ApiError::new(
            ErrorCode::UnableToRollbackStageException,
            format!("Pipeline '{name}' cannot start rollback since stage {stage} is in progress."),
        ),
        other => refusal_error(ctx, name, other),
    };
    let command = Command::Rollback { target: target.clone(), stage: stage.clone(), trigger };
    let applied =
        ctx.engine.apply(ctx.store, &ctx.scope, name, command, |record| stage_exists(record, name, stage), refused)?;
    let id = execution_id(applied);
    Reply::json(&PipelineExecutionIdOutput { pipeline_execution_id: id })
}
