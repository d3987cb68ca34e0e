//! Answer a waiting manual approval (PutApprovalResult).

use std::sync::Arc;

use super::{Command, pipeline_not_found};
use crate::engine::Write;
use crate::engine::step::{FinishedBy, StepEnv, finish_action};
use crate::state::execution::{ActionStatus, At, ErrorDetails, Outcome, RunIndex, Success};
use crate::state::{PipelineRecord, Timestamp};

/// Answer a waiting manual approval, found by its token.
#[derive(Debug)]
pub struct AnswerApproval {
    pub stage: String,
    pub action: String,
    pub token: String,
    pub approved: bool,
    pub summary: String,
    /// Who answered (an ARN).
    pub by: String,
}

/// Why an approval answer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalRefusal {
    PipelineNotFound,
    /// The pipeline's current version has no stage of that name.
    StageNotFound,
    /// The stage has no action of that name.
    ActionNotFound,
    /// The token names no approval of that action.
    UnknownToken,
    /// The approval was abandoned, or its execution runs an older version of the pipeline.
    OutOfDate,
    /// The approval was answered already, or is not waiting.
    AlreadyCompleted,
    /// The approval requires a summary (`IsSummaryRequired`) and none was given.
    SummaryRequired,
}

pipeline_not_found!(ApprovalRefusal);

impl Command for AnswerApproval {
    type Output = ();
    type Refusal = ApprovalRefusal;

    fn execute(self, record: &mut PipelineRecord, _: &StepEnv, now: Timestamp) -> Result<(), ApprovalRefusal> {
        answer_approval(record, &self, now)
    }
}

/// Answers a waiting manual approval: approved, it succeeds; rejected, it fails. Either way the approver's summary
/// is the run's summary, its token (the action execution id) its external execution id, and the approver the one
/// who updated it; a rejection carries no error details \[NATIVE\]. UNCONFIRMED: an empty summary is shown as none.
fn answer_approval(
    record: &mut PipelineRecord,
    answer: &AnswerApproval,
    now: Timestamp,
) -> Result<(), ApprovalRefusal> {
    let declared =
        record.current().stages.iter().find(|s| s.name == answer.stage).ok_or(ApprovalRefusal::StageNotFound)?;
    if !declared.actions.iter().any(|a| a.name == answer.action) {
        return Err(ApprovalRefusal::ActionNotFound);
    }
    let token = uuid::Uuid::parse_str(&answer.token).ok();
    let found = record.runtime.executions.iter_indexed().find_map(|(ei, e)| {
        e.actions
            .iter()
            .position(|r| Some(r.id) == token && e.names(r) == (answer.stage.as_str(), answer.action.as_str()))
            .map(|ri| (ei, RunIndex::at(ri)))
    });
    let Some((index, run_index)) = found else { return Err(ApprovalRefusal::UnknownToken) };
    let execution = &record.runtime.executions[index];
    let run = &execution.actions[run_index];
    match run.status {
        ActionStatus::Abandoned => return Err(ApprovalRefusal::OutOfDate),
        // Cancelled by an update of the pipeline: no one answered it.
        ActionStatus::Failed if run.updated_by().is_none() && execution.pipeline_version != record.version() => {
            return Err(ApprovalRefusal::OutOfDate);
        }
        ActionStatus::InProgress if execution.pipeline_version != record.version() => {
            return Err(ApprovalRefusal::OutOfDate);
        }
        ActionStatus::InProgress if run.awaits_approval => {}
        _ => return Err(ApprovalRefusal::AlreadyCompleted),
    }
    // A gate declared with IsSummaryRequired refuses an answer without a summary [NATIVE]. UNCONFIRMED: a summary of
    // spaces only is taken as none.
    let declared = execution.declaration.stages.get(run.stage()).and_then(|s| s.actions.get(run.action()));
    let summary_required = declared
        .and_then(|a| a.configuration.as_ref())
        .and_then(|c| c.get("IsSummaryRequired"))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if summary_required && answer.summary.trim().is_empty() {
        return Err(ApprovalRefusal::SummaryRequired);
    }
    let id = run.id;
    let shown = (!answer.summary.is_empty()).then(|| answer.summary.clone());
    let by = FinishedBy::Approver(answer.by.clone());
    if !answer.approved {
        fail_approval(record, index, run_index, shown.as_deref(), by, now);
        if let Some(run) = record.runtime.w().executions[index].actions.at_mut(run_index) {
            run.external_execution_id = Some(id.to_string().into_boxed_str());
        }
        return Ok(());
    }
    let success = Success { summary: shown, external_execution_id: Some(id.to_string()), ..Success::default() };
    finish_action(record, index, run_index, Outcome::Succeed(success), now, by);
    Ok(())
}

/// Ends a waiting approval `Failed` as AWS shows one: with `summary` and without error details (a rejection, or an
/// approval cancelled by an update of its pipeline).
pub(super) fn fail_approval(
    record: &mut PipelineRecord,
    index: crate::state::execution::ExecutionIndex,
    run_index: RunIndex,
    summary: Option<&str>,
    by: FinishedBy,
    now: Timestamp,
) {
    let failure = Outcome::Fail(ErrorDetails::job_failed(summary.unwrap_or_default().to_string()));
    finish_action(record, index, run_index, failure, now, by);
    if let Some(run) = record.runtime.w().executions[index].actions.at_mut(run_index) {
        run.summary = summary.map(Arc::from);
        run.extra_mut().error = None;
    }
}
