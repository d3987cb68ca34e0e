//! What is done to a stage of a running pipeline: DisableStageTransition, EnableStageTransition,
//! RetryStageExecution and RollbackStage, through the engine.

use serde::Deserialize;

use super::{Ctx, PipelineExecutionIdOutput, pipeline_not_found, stage_not_found};
use crate::engine::commands::retry::{Retry, RetryRefusal};
use crate::engine::commands::rollback::{Rollback, RollbackRefusal};
use crate::engine::commands::transition::{SetTransition, TransitionRefusal, TransitionType};
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::declaration::StageRetryMode;
use crate::state::execution::{ExecutionTrigger, TransitionState, TriggerType};

// --- Stage transitions ----------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisableStageTransitionInput {
    pipeline_name: String,
    stage_name: String,
    transition_type: TransitionType,
    reason: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnableStageTransitionInput {
    pipeline_name: String,
    stage_name: String,
    transition_type: TransitionType,
}

/// Sets the transition a request names (a stage's inbound one, or its outbound one: the next stage's inbound
/// transition); enabling it lets waiting executions move.
fn set_transition(
    ctx: &Ctx,
    pipeline: &str,
    stage: &str,
    transition_type: TransitionType,
    disabled_reason: Option<String>,
) -> Result<Reply, ApiError> {
    let state = TransitionState {
        enabled: disabled_reason.is_none(),
        last_changed_by: Some(ctx.caller_arn()),
        last_changed_at: Some(ctx.now()),
        disabled_reason,
    };
    let command = SetTransition { stage: stage.to_string(), transition_type, state };
    ctx.engine.apply(&ctx.scope, pipeline, command)?.map_err(|refusal| match refusal {
        TransitionRefusal::PipelineNotFound => pipeline_not_found(&ctx.scope.account, pipeline),
        TransitionRefusal::StageNotFound => stage_not_found(pipeline, stage),
        // UNCONFIRMED: AWS's answer for the outbound transition of the last stage.
        TransitionRefusal::NoOutboundTransition => ApiError::validation(format!(
            "Stage '{stage}' is the last stage of pipeline '{pipeline}'; it has no outbound transition"
        )),
    })?;
    Ok(Reply::Done)
}

/// DisableStageTransition: executions wait in front of the stage until the transition is enabled again.
pub fn disable_stage_transition(ctx: &Ctx, input: DisableStageTransitionInput) -> Result<Reply, ApiError> {
    set_transition(ctx, &input.pipeline_name, &input.stage_name, input.transition_type, Some(input.reason))
}

/// EnableStageTransition: the newest (SUPERSEDED) or oldest (QUEUED) waiting execution enters.
pub fn enable_stage_transition(ctx: &Ctx, input: EnableStageTransitionInput) -> Result<Reply, ApiError> {
    set_transition(ctx, &input.pipeline_name, &input.stage_name, input.transition_type, None)
}

// --- RetryStageExecution --------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStageExecutionInput {
    pipeline_name: String,
    stage_name: String,
    pipeline_execution_id: String,
    retry_mode: StageRetryMode,
}

/// RetryStageExecution: the same execution resumes in the stage where it failed or was stopped (behaviour.md §4.1).
pub fn retry_stage_execution(ctx: &Ctx, input: RetryStageExecutionInput) -> Result<Reply, ApiError> {
    let (name, stage, id) = (&input.pipeline_name, &input.stage_name, &input.pipeline_execution_id);
    let all = input.retry_mode == StageRetryMode::AllActions;
    let command = Retry { execution: id.clone(), stage: stage.clone(), all };
    let refused = |refusal| match refusal {
        // AWS's wording [NATIVE]; an unknown execution id gets it too (UNCONFIRMED: the operation models no
        // PipelineExecutionNotFoundException).
        RetryRefusal::NotRetryable => ApiError::new(
            ErrorCode::StageNotRetryableException,
            format!(
                "The stage named {stage} in the {name} pipeline can't be retried now. Either it contains no failed \
                 actions, the execution '{id}' is already superseded, or the pipeline definition has changed \
                 since the action(s) failed."
            ),
        ),
        // UNCONFIRMED wording.
        RetryRefusal::NotLatest => ApiError::new(
            ErrorCode::NotLatestPipelineExecutionException,
            format!(
                "The execution '{id}' is not the latest execution of stage {stage} in the {name} pipeline; only the \
                 latest execution of a stage can be retried"
            ),
        ),
        RetryRefusal::PipelineNotFound => pipeline_not_found(&ctx.scope.account, name),
        RetryRefusal::StageNotFound => stage_not_found(name, stage),
    };
    ctx.engine.apply(&ctx.scope, name, command)?.map_err(refused)?;
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
    let detail = serde_json::json!({"AwsUserArn": ctx.caller_arn()}).to_string();
    let trigger = ExecutionTrigger { trigger_type: TriggerType::ManualRollback, trigger_detail: Some(detail.into()) };
    let refused = |refusal| match refusal {
        // AWS's wordings [NATIVE].
        RollbackRefusal::TargetNotFound => ApiError::new(
            ErrorCode::PipelineExecutionNotFoundException,
            format!("Target Pipeline Execution with id '{target}' does not exist in pipeline with name '{name}'"),
        ),
        RollbackRefusal::Outdated => ApiError::new(
            ErrorCode::PipelineExecutionOutdatedException,
            format!("Pipeline '{name}' has been updated since the rollback request was made."),
        ),
        RollbackRefusal::NotCompleted => ApiError::new(
            ErrorCode::UnableToRollbackStageException,
            format!("Target Pipeline Execution with id '{target}' has not completed in stage with name '{stage}'"),
        ),
        RollbackRefusal::StageBusy => ApiError::new(
            ErrorCode::UnableToRollbackStageException,
            format!("Pipeline '{name}' cannot start rollback since stage {stage} is in progress."),
        ),
        RollbackRefusal::PipelineNotFound => pipeline_not_found(&ctx.scope.account, name),
        RollbackRefusal::StageNotFound => stage_not_found(name, stage),
    };
    let command = Rollback { target: target.clone(), stage: stage.clone(), trigger };
    let id = ctx.engine.apply(&ctx.scope, name, command)?.map_err(refused)?;
    Reply::json(&PipelineExecutionIdOutput { pipeline_execution_id: id })
}
