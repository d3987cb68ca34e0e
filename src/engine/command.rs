//! The engine's one way in: every change to a running pipeline is a [`Command`] that [`Engine::apply`] carries out
//! under the pipeline's partition lock, through the pure steps, followed by an advance and its timers. Operations and
//! control endpoints describe what they want and map a [`Refusal`] to their own error; they never change runtime
//! state themselves.
//!
//! [`Engine::apply`]: super::Engine::apply

use crate::engine::Write;
use crate::state::PipelineRecord;
use crate::state::Timestamp;
use crate::state::declaration::ConditionKind;
use crate::state::execution::{
    ActionStatus, ExecutionTrigger, JobStatus, Outcome, RevisionOverride, RuleRunIndex, RuleStatus, RunIndex,
    TransitionState,
};

use super::conditions::{self, OverrideRefusal};
use super::jobs::{self, JobRefusal, JobReport};
use super::step::{self, RetryRefusal, RollbackRefusal, StartRequest, StepEnv, StopRefusal};

/// A change to a running pipeline.
#[derive(Debug)]
pub enum Command {
    /// Start an execution. With a client token, a request repeating an earlier token gets that execution instead.
    Start { request: StartRequest, client_token: Option<String> },
    /// Stop an execution: wait for its running actions, or abandon them.
    Stop { execution: String, abandon: bool, reason: Option<String> },
    /// Resume a failed or stopped stage of an execution, re-running its failed actions or all of them.
    Retry { execution: String, stage: String, all: bool },
    /// Start a rollback of a stage to the state a target execution left it in.
    Rollback { target: String, stage: String, trigger: ExecutionTrigger },
    /// Let a condition being evaluated count as passed.
    OverrideCondition { execution: String, stage: String, kind: ConditionKind },
    /// Answer a waiting manual approval.
    AnswerApproval(ApprovalAnswer),
    /// Set the inbound transition of a stage; enabling it lets a waiting execution in.
    SetTransition { stage: String, state: TransitionState },
    /// A source action's new revision (PutActionRevision): an execution starts with it, unless the action picked it
    /// up already.
    PushRevision { revision: RevisionOverride, trigger: ExecutionTrigger },
    /// A job worker acknowledges a job with the nonce it got.
    AcknowledgeJob { job: uuid::Uuid, nonce: String },
    /// A job worker's result; `fingerprint` identifies it, so that a repeat is told from a conflict.
    ReportJob { job: uuid::Uuid, fingerprint: String, report: JobReport },
    /// End a held simulated action (its latest running attempt in the execution) with an outcome.
    CompleteAction { execution: String, stage: String, action: String, outcome: Outcome },
    /// End a held rule of a stage condition (its latest running evaluation) with an outcome.
    CompleteRule { execution: String, stage: String, rule: String, outcome: Outcome },
}

/// A PutApprovalResult, as the engine needs it.
#[derive(Debug)]
pub struct ApprovalAnswer {
    pub stage: String,
    pub action: String,
    pub token: String,
    pub approved: bool,
    pub summary: String,
    /// Who answered (an ARN).
    pub by: String,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The execution the command started (or, for a repeated client token, started before).
    Execution(String),
    /// A pushed revision the action has already: the newest execution that picked it up, if any.
    KnownRevision(Option<String>),
    /// A job's status after an acknowledgement.
    JobStatus(JobStatus),
    /// The id of the action or rule execution a completion ended.
    Completed(String),
    Done,
}

impl Applied {
    /// The execution the command started, or that picked up a pushed revision before, if any.
    pub fn execution(self) -> Option<String> {
        match self {
            Applied::Execution(id) => Some(id),
            Applied::KnownRevision(id) => id,
            Applied::JobStatus(_) | Applied::Completed(_) | Applied::Done => None,
        }
    }
}

/// Why a command was refused. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PipelineNotFound,
    Stop(StopRefusal),
    Retry(RetryRefusal),
    Rollback(RollbackRefusal),
    Override(OverrideRefusal),
    Approval(ApprovalRefusal),
    Job(JobRefusal),
    Complete(CompleteRefusal),
}

/// Why a completion is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompleteRefusal {
    ExecutionNotFound,
    /// No such action or rule is running in the execution.
    NotRunning,
}

/// Why an approval answer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalRefusal {
    /// The token names no approval of that action.
    UnknownToken,
    /// The approval was abandoned, or its execution runs an older version of the pipeline.
    OutOfDate,
    /// The approval was answered already, or is not waiting.
    AlreadyCompleted,
    /// The approval requires a summary (`IsSummaryRequired`) and none was given.
    SummaryRequired,
}

/// Carries out `command` on the pipeline; the caller advances it afterwards.
pub(super) fn execute(
    record: &mut PipelineRecord,
    env: &StepEnv,
    command: Command,
    now: Timestamp,
) -> Result<Applied, Refusal> {
    match command {
        Command::Start { request, client_token } => {
            if let Some(existing) = client_token.as_ref().and_then(|t| record.runtime.client_tokens.get(t)) {
                return Ok(Applied::Execution(existing.to_string()));
            }
            let id = step::start_execution(record, request, env.ids, now);
            if let (Some(token), Ok(uuid)) = (client_token, uuid::Uuid::parse_str(&id)) {
                record.runtime.w().client_tokens.insert(token, uuid);
            }
            Ok(Applied::Execution(id))
        }
        Command::Stop { execution, abandon, reason } => {
            step::stop(record, &execution, abandon, reason, now).map_err(Refusal::Stop)?;
            Ok(Applied::Done)
        }
        Command::Retry { execution, stage, all } => {
            let trigger = crate::state::execution::RetryTrigger::ManualStageRetry;
            step::retry_stage(record, &execution, &stage, all, trigger, env, now).map_err(Refusal::Retry)?;
            Ok(Applied::Done)
        }
        Command::Rollback { target, stage, trigger } => {
            step::rollback_stage(record, &target, &stage, trigger, env.ids, now)
                .map(Applied::Execution)
                .map_err(Refusal::Rollback)
        }
        Command::OverrideCondition { execution, stage, kind } => {
            conditions::override_condition(record, &execution, &stage, kind, env, now).map_err(Refusal::Override)?;
            Ok(Applied::Done)
        }
        Command::AnswerApproval(answer) => {
            step::answer_approval(record, &answer, now).map_err(Refusal::Approval)?;
            Ok(Applied::Done)
        }
        Command::SetTransition { stage, state } => {
            record.runtime.w().transitions.insert(stage, state);
            Ok(Applied::Done)
        }
        Command::PushRevision { revision, trigger } => {
            let action = revision.action_name.as_str();
            let known =
                record.runtime.current_revisions.get(action).is_some_and(|r| r.revision_id == revision.revision_value);
            if known {
                // The execution that picked the revision up, newest first.
                let previous = record.runtime.executions.iter().rev().find(|e| {
                    e.sources
                        .iter()
                        .any(|(i, r)| e.source_names(*i).0 == action && r.revision_id == revision.revision_value)
                });
                return Ok(Applied::KnownRevision(previous.map(|e| e.id.to_string())));
            }
            let request = StartRequest { trigger, variables: Vec::new(), overrides: vec![revision] };
            Ok(Applied::Execution(step::start_execution(record, request, env.ids, now)))
        }
        Command::AcknowledgeJob { job, nonce } => {
            jobs::acknowledge(record, job, &nonce).map(Applied::JobStatus).map_err(Refusal::Job)
        }
        Command::ReportJob { job, fingerprint, report } => {
            jobs::report(record, job, fingerprint, report, env.ids, now).map_err(Refusal::Job)?;
            Ok(Applied::Done)
        }
        Command::CompleteAction { execution, stage, action, outcome } => {
            let index =
                record.runtime.position(&execution).ok_or(Refusal::Complete(CompleteRefusal::ExecutionNotFound))?;
            let running = &record.runtime.executions[index];
            let run = running
                .actions
                .iter()
                .rposition(|r| {
                    running.names(r) == (stage.as_str(), action.as_str()) && r.status == ActionStatus::InProgress
                })
                .map(RunIndex::at)
                .ok_or(Refusal::Complete(CompleteRefusal::NotRunning))?;
            let id = running.actions[run].id.to_string();
            step::finish_action(record, index, run, outcome, now, step::FinishedBy::Worker);
            Ok(Applied::Completed(id))
        }
        Command::CompleteRule { execution, stage, rule, outcome } => {
            let index =
                record.runtime.position(&execution).ok_or(Refusal::Complete(CompleteRefusal::ExecutionNotFound))?;
            let running = &record.runtime.executions[index];
            let run = running
                .rules()
                .iter()
                .rposition(|r| {
                    let stage_name = running.declaration.stages.get(r.stage_index as usize).map(|s| s.name.as_str());
                    r.status == RuleStatus::InProgress
                        && stage_name == Some(stage.as_str())
                        && running.rule_declaration(r).is_some_and(|d| d.name == rule)
                })
                .map(RuleRunIndex::at)
                .ok_or(Refusal::Complete(CompleteRefusal::NotRunning))?;
            let id = running.rules()[run].id.to_string();
            conditions::finish_rule(record, index, run, outcome, now);
            Ok(Applied::Completed(id))
        }
    }
}
