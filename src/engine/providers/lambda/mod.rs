//! Lambda invoke actions and LambdaInvoke rules, as state: when a Lambda endpoint is configured (`--lambda-endpoint`),
//! an `AWS/Invoke/Lambda` action gets a job, which becomes an [`Invocation`] of the configured function with the
//! `CodePipeline.job` event; the function answers with PutJobSuccessResult or PutJobFailureResult against this
//! emulator, and until it does the action stays in progress (and times out after 20 minutes, as on AWS). A
//! `LambdaInvoke` rule of a stage condition calls its function synchronously: see [`rule_pending`].
//!
//! Nothing here does IO: the [`invoker`] (this provider's [`Worker`](super::Worker)) makes the calls and hands what
//! came of each back through [`RecordInvocation`](crate::engine::commands::invocation::RecordInvocation).
//!
//! After a restart or an import, the Lambda jobs and LambdaInvoke rule runs still waiting for their function are
//! invoked again (`redeliver`): whether an invocation made before the restart reached its function cannot be
//! known, and Lambda too delivers an asynchronous invocation at least once, so a function may see the same job id
//! twice; it answers through the job API as before.

pub mod invoker;

use crate::engine::Write;
use crate::engine::{conditions, step};
use bytes::Bytes;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::state::execution::{
    ActionStatus, At, ErrorDetails, ExecutionIndex, FailureType, Job, JobKind, JobStatus, Outcome, Pending,
    RuleRunIndex, RuleStatus, RunIndex, Success,
};
use crate::state::{PipelineRecord, Scope, Timestamp};

/// One invocation to make: a job of a Lambda action, or a LambdaInvoke rule.
#[derive(Debug)]
pub struct Invocation {
    pub(crate) scope: Scope,
    pub(crate) pipeline: String,
    pub(crate) target: Target,
    pub(crate) function: String,
    pub(crate) region: String,
    pub(crate) payload: Bytes,
}

/// What an invocation is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// A job of a Lambda action: invoked asynchronously; the function answers through the job API.
    Job(Uuid),
    /// A LambdaInvoke rule run: invoked synchronously; what the function returns decides the rule.
    Rule { execution: ExecutionIndex, rule: RuleRunIndex, id: Uuid },
}

/// How long a synchronous (rule) invocation may take: Lambda's longest run, 15 minutes.
pub(crate) const RULE_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// How long a Lambda action waits for its function's answer, from its start or from its latest continuation.
const ANSWER_WINDOW_MILLIS: i64 = 20 * 60 * 1000;
/// The longest a Lambda action may keep running by continuing.
const MAX_RUN_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// The function a Lambda action invokes (its configuration with variables resolved).
pub fn function_name(record: &PipelineRecord, execution: ExecutionIndex, run: RunIndex) -> Option<String> {
    let execution = record.runtime.executions.at(execution)?;
    let run = execution.actions.at(run)?;
    let declared = execution.declaration.stages.get(run.stage())?.actions.get(run.action())?;
    run.configuration(Some(declared)).get("FunctionName").map(str::to_string)
}

/// A function that continues gets another 20 minutes to answer, up to 24 hours from the action's start \[DOC\].
pub fn extend_timeout(record: &mut PipelineRecord, execution: ExecutionIndex, run: RunIndex, now: Timestamp) {
    let Some(run) = record.runtime.w().executions.at_mut(execution).and_then(|e| e.actions.at_mut(run)) else {
        return;
    };
    let limit = run.start_time.millis().saturating_add(MAX_RUN_MILLIS);
    let due = Timestamp::from_millis(now.millis().saturating_add(ANSWER_WINDOW_MILLIS).min(limit));
    if let Some(Pending::External { timeout: Some(timeout), .. }) = run.pending.as_deref_mut() {
        *timeout = due;
    }
}

/// What a LambdaInvoke rule waits for while its function runs: the function's answer, for at most Lambda's
/// longest run.
pub fn rule_pending(now: Timestamp) -> Pending {
    let timeout = now.plus_millis(RULE_REQUEST_TIMEOUT.as_millis().try_into().unwrap_or(i64::MAX));
    let on_timeout = ErrorDetails {
        code: FailureType::JobFailed,
        message: "The AWS Lambda function did not return within 15 minutes.".into(),
    };
    Pending::External { timeout: Some(timeout), on_timeout: Box::new(on_timeout) }
}

/// Takes the Lambda jobs and LambdaInvoke rule runs created since the last call and builds their invocations.
pub fn take_invocations(
    scope: &Scope,
    pipeline: &str,
    record: &mut PipelineRecord,
    credentials: &crate::engine::jobs::ArtifactCredentials,
    now: Timestamp,
) -> Vec<Invocation> {
    let mut out = job_invocations(scope, pipeline, record, credentials, now);
    for (execution, rule) in std::mem::take(&mut record.runtime.w().undelivered_rules) {
        out.extend(rule_invocation(scope, pipeline, record, execution, rule));
    }
    out
}

/// The invocation of a LambdaInvoke rule. UNCONFIRMED: AWS does not document the event a rule's function gets or
/// how its answer is read. The emulator invokes it synchronously with the rule's context and resolved
/// configuration; the rule succeeds when the function returns, and fails with the function's error message when it
/// raises one.
fn rule_invocation(
    scope: &Scope,
    pipeline: &str,
    record: &PipelineRecord,
    execution: ExecutionIndex,
    rule: RuleRunIndex,
) -> Option<Invocation> {
    let running = record.runtime.executions.at(execution)?;
    let run = running.rules().at(rule)?;
    let declared = running.rule_declaration(run)?;
    let configuration = run.configuration(Some(declared)).to_map();
    let stage = running.declaration.stages.get(run.stage_index as usize).map(|s| s.name.as_str());
    let artifacts: Vec<_> = run.input_artifacts.iter().map(|a| crate::engine::jobs::artifact_out(running, a)).collect();
    let event = json!({
        "pipelineName": pipeline,
        "pipelineExecutionId": running.id.to_string(),
        "stageName": stage,
        "ruleName": declared.name,
        "ruleExecutionId": run.id.to_string(),
        "accountId": scope.account,
        "configuration": configuration,
        "inputArtifacts": artifacts,
    });
    Some(Invocation {
        scope: scope.clone(),
        pipeline: pipeline.to_string(),
        target: Target::Rule { execution, rule, id: run.id },
        function: configuration.get("FunctionName").cloned().unwrap_or_default(),
        region: declared.region.clone().unwrap_or_else(|| scope.region.clone()),
        payload: Bytes::from(serde_json::to_vec(&event).unwrap_or_default()),
    })
}

/// The event a Lambda action's function gets, its members in AWS's order (`id`, `accountId`, `data`) [real AWS
/// session, issue 28].
#[derive(serde::Serialize)]
struct LambdaEvent<'a> {
    #[serde(rename = "CodePipeline.job")]
    job: LambdaJob<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct LambdaJob<'a> {
    id: String,
    account_id: &'a str,
    data: crate::engine::jobs::LambdaDataOut,
}

/// The invocations of Lambda jobs: the `CodePipeline.job` event AWS sends (job id, account id, and the job data
/// without the parts only job workers get).
fn job_invocations(
    scope: &Scope,
    pipeline: &str,
    record: &mut PipelineRecord,
    credentials: &crate::engine::jobs::ArtifactCredentials,
    now: Timestamp,
) -> Vec<Invocation> {
    let jobs = std::mem::take(&mut record.runtime.w().undelivered);
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let Some((execution, run)) = record.runtime.jobs.get(&job).map(|j| (j.execution, j.run)) else { continue };
        let Some(data) = crate::engine::jobs::job_data(record, pipeline, job, credentials) else { continue };
        // The Lambda event carries configuration, artifacts, credentials and continuation token only.
        let data = data.for_lambda(now);
        let function = function_name(record, execution, run).unwrap_or_default();
        let region = record
            .runtime
            .executions
            .at(execution)
            .and_then(|e| e.actions.at(run))
            .and_then(|r| r.region())
            .unwrap_or(&scope.region)
            .to_string();
        let event = LambdaEvent { job: LambdaJob { id: job.to_string(), account_id: &scope.account, data } };
        let payload = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
        let target = Target::Job(job);
        out.push(Invocation {
            scope: scope.clone(),
            pipeline: pipeline.to_string(),
            target,
            function,
            region,
            payload,
        });
    }
    out
}

/// What came of an invocation: accepted (with the function's answer, for a synchronous one), or why not.
pub type InvokeResult = Result<Answer, ErrorDetails>;

/// What a function answered to a synchronous invocation.
#[derive(Debug, Default)]
pub struct Answer {
    /// Lambda's `X-Amz-Function-Error`: the function raised an error.
    pub function_error: bool,
    pub body: Bytes,
}

/// Records what came of an invocation in the pipeline (the engine advances it afterwards).
pub(crate) fn record_result(record: &mut PipelineRecord, call: &Invocation, result: InvokeResult, now: Timestamp) {
    match call.target {
        Target::Job(job) => record_job_result(record, call, job, result, now),
        Target::Rule { execution, rule, id } => record_rule_result(record, call, (execution, rule, id), result, now),
    }
}

/// Whether a job still waits for its answer: it has not ended and its action run is still in progress.
fn is_open(record: &PipelineRecord, job: &Job) -> bool {
    !job.status.is_terminal()
        && record
            .runtime
            .executions
            .at(job.execution)
            .and_then(|e| e.actions.at(job.run))
            .is_some_and(|r| r.status == ActionStatus::InProgress)
}

/// A failed invocation fails its action (unless the job was already answered or the action ended otherwise); an
/// accepted one shows the function as the action's external execution id.
fn record_job_result(record: &mut PipelineRecord, call: &Invocation, job: Uuid, result: InvokeResult, now: Timestamp) {
    let Some(found) = record.runtime.jobs.get(&job) else { return };
    let (execution, run) = (found.execution, found.run);
    let open = is_open(record, found);
    match result {
        // Invoked: the action shows its function as its external execution id while it runs [NATIVE].
        Ok(_) if open => {
            if let Some(r) = record.runtime.w().executions.at_mut(execution).and_then(|e| e.actions.at_mut(run)) {
                r.external_execution_id = Some(call.function.clone().into_boxed_str());
                r.last_status_change = Some(now);
            }
        }
        Err(error) if open => {
            tracing::warn!(pipeline = %call.pipeline, function = %call.function, "{}", error.message);
            if let Some(job) = record.runtime.w().jobs.get_mut(&job) {
                job.status = JobStatus::Failed;
            }
            step::finish_action(record, execution, run, Outcome::Fail(error), now, step::FinishedBy::Worker);
        }
        _ => {}
    }
}

/// A rule whose function returned succeeds; one whose function raised an error, or that could not be invoked,
/// fails, unless the rule ended otherwise meanwhile (overridden, abandoned, timed out).
fn record_rule_result(
    record: &mut PipelineRecord,
    call: &Invocation,
    (execution, rule, id): (ExecutionIndex, RuleRunIndex, Uuid),
    result: InvokeResult,
    now: Timestamp,
) {
    let open = record
        .runtime
        .executions
        .at(execution)
        .and_then(|e| e.rules().at(rule))
        .is_some_and(|r| r.id == id && r.status == RuleStatus::InProgress);
    if !open {
        return;
    }
    let function = &call.function;
    let outcome = match result {
        Ok(answer) if answer.function_error => {
            let detail: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            let message = detail.get("errorMessage").and_then(Value::as_str).map_or_else(
                || format!("The AWS Lambda function {function} failed: {}", String::from_utf8_lossy(&answer.body)),
                str::to_string,
            );
            Outcome::Fail(ErrorDetails::job_failed(message))
        }
        Ok(answer) => {
            // A string the function returns is the rule's summary.
            let returned: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            let summary = returned
                .as_str()
                .map_or_else(|| format!("The AWS Lambda function {function} succeeded."), str::to_string);
            Outcome::Succeed(Success {
                summary: Some(summary),
                external_execution_id: Some(function.clone()),
                ..Success::default()
            })
        }
        Err(error) => {
            tracing::warn!(pipeline = %call.pipeline, function = %function, "{}", error.message);
            Outcome::Fail(error)
        }
    };
    conditions::finish_rule(record, execution, rule, outcome, now);
}

/// After a restart: queues again, for the invoker, the Lambda jobs still waiting for their function and the
/// LambdaInvoke rule runs still waiting for theirs (`invokes` tells, for a rule run, whether the rule calls its
/// function, as it did when it started, rather than being held by a behaviour rule).
pub(crate) fn redeliver(record: &mut PipelineRecord, invokes: impl Fn(&str, &str) -> bool) {
    let executions = &record.runtime.executions;
    let jobs: Vec<Uuid> = record
        .runtime
        .jobs
        .values()
        .filter(|j| j.kind == JobKind::Lambda && is_open(record, j))
        .map(|j| j.id)
        .filter(|id| !record.runtime.undelivered.contains(id))
        .collect();
    let mut rules = Vec::new();
    for &index in &record.runtime.active {
        let Some(execution) = executions.at(index) else { continue };
        for (position, run) in execution.rules().iter().enumerate() {
            let declared = execution.rule_declaration(run);
            let stage = execution.declaration.stages.get(run.stage_index as usize).map(|s| s.name.as_str());
            let lambda = declared.is_some_and(|d| d.rule_type_id.provider == "LambdaInvoke");
            if run.status == RuleStatus::InProgress
                && lambda
                && let (Some(stage), Some(declared)) = (stage, declared)
                && invokes(stage, &declared.name)
            {
                rules.push((index, RuleRunIndex::at(position)));
            }
        }
    }
    let runtime = record.runtime.w();
    runtime.undelivered.extend(jobs);
    for rule in rules {
        if !runtime.undelivered_rules.contains(&rule) {
            runtime.undelivered_rules.push(rule);
        }
    }
}
