//! PutApprovalResult: answering a manual approval, through the engine.

use serde::{Deserialize, Serialize};

use super::{Ctx, action_not_found, pipeline_not_found, stage_not_found};
use crate::engine::commands::approval::{AnswerApproval, ApprovalRefusal};
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::Timestamp;

// --- PutApprovalResult ----------------------------------------------------------------------------------------------

/// `ApprovalStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum ApprovalStatus {
    Approved,
    Rejected,
}

#[derive(Deserialize)]
struct ApprovalResultInput {
    summary: String,
    status: ApprovalStatus,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutApprovalResultInput {
    pipeline_name: String,
    stage_name: String,
    action_name: String,
    result: ApprovalResultInput,
    token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PutApprovalResultOutput {
    approved_at: Timestamp,
}

/// PutApprovalResult: approves or rejects a waiting manual approval, by its token.
pub fn put_approval_result(ctx: &Ctx, input: PutApprovalResultInput) -> Result<Reply, ApiError> {
    let now = ctx.now();
    let (name, stage, action) = (&input.pipeline_name, &input.stage_name, &input.action_name);
    let refused = |refusal| match refusal {
        ApprovalRefusal::UnknownToken => ApiError::new(
            ErrorCode::InvalidApprovalTokenException,
            format!(
                "The approval token '{}' does not match an approval request of action '{action}' in stage '{stage}' \
                 of pipeline '{name}'",
                input.token
            ),
        ),
        // AWS's wording, for abandoned approvals and for executions overtaken by an update [NATIVE].
        ApprovalRefusal::OutOfDate => ApiError::new(
            ErrorCode::InvalidApprovalTokenException,
            format!(
                "The pipeline {name} has been updated, and the approval request you responded to is now out of date."
            ),
        ),
        ApprovalRefusal::AlreadyCompleted => ApiError::new(
            ErrorCode::ApprovalAlreadyCompletedException,
            format!(
                "The approval request for action '{action}' in stage '{stage}' of pipeline '{name}' has already been \
                 completed"
            ),
        ),
        // AWS's wording [NATIVE].
        ApprovalRefusal::SummaryRequired => ApiError::new(
            ErrorCode::InvalidApprovalTokenException,
            format!(
                "Action '{action}' in stage '{stage}' requires a summary. Provide a summary in the approval result and \
                 try again."
            ),
        ),
        ApprovalRefusal::PipelineNotFound => pipeline_not_found(&ctx.scope.account, name),
        ApprovalRefusal::StageNotFound => stage_not_found(name, stage),
        ApprovalRefusal::ActionNotFound => action_not_found(name, stage, action),
    };
    let answer = AnswerApproval {
        stage: stage.clone(),
        action: action.clone(),
        token: input.token.clone(),
        approved: input.result.status == ApprovalStatus::Approved,
        summary: input.result.summary.clone(),
        by: ctx.caller_arn(),
    };
    ctx.engine.apply(&ctx.scope, name, answer)?.map_err(refused)?;
    Reply::json(&PutApprovalResultOutput { approved_at: now })
}
