//! Custom-action job workers: PollForJobs, AcknowledgeJob, GetJobDetails, PutJobSuccessResult,
//! PutJobFailureResult (behaviour.md §7.2).
//!
//! A job is created when an action of a custom type starts (see `engine::step`); it lives with its pipeline. A
//! worker polls for it, acknowledges it with the nonce it got, and reports success (possibly with a continuation
//! token, which keeps the action running and creates the next job) or failure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Ctx;
use crate::engine::jobs::{JobDataOut, job_data};
use crate::engine::step;
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::Timestamp;
use crate::state::declaration::{ActionOwner, ActionTypeId};
use crate::state::execution::{ActionStatus, ErrorDetails, Job, JobKind, JobStatus, Outcome, Revision, Success};
use crate::state::{PartitionData, PipelineRecord};

/// How long a job handed out but not acknowledged stays invisible to other polls.
const VISIBILITY_MILLIS: i64 = 30_000;
/// Output variables an action may report, in bytes of names and values (Appendix B).
const MAX_OUTPUT_VARIABLE_BYTES: usize = 122_880;

/// Which API a job is addressed through.
#[derive(Clone, Copy)]
enum Api<'a> {
    /// The custom-action job API (PollForJobs, ...).
    Custom,
    /// The partner job API (PollForThirdPartyJobs, ...), with the caller's client token.
    ThirdParty(&'a str),
}

/// Checks that a job may be used through `api`: custom jobs through the custom API, partner jobs through the
/// partner API with their type's client token.
fn check_api(data: &PartitionData, record: &PipelineRecord, job: &Job, api: Api, id: &str) -> Result<(), ApiError> {
    match (api, job.kind == JobKind::ThirdParty) {
        // Lambda functions answer through the custom job operations, like custom workers.
        (Api::Custom, false) => Ok(()),
        (Api::Custom, true) => Err(job_not_found(id)),
        (Api::ThirdParty(_), false) => Err(ApiError::new(
            ErrorCode::InvalidJobException,
            format!("Job {id} is not a partner job; use the custom action job operations"),
        )),
        (Api::ThirdParty(token), true) => {
            let registered = job_action_type(record, job).and_then(|t| data.third_party_types.get(&t));
            if registered.is_some_and(|r| r.client_token == token) {
                Ok(())
            } else {
                Err(ApiError::new(
                    ErrorCode::InvalidClientTokenException,
                    "The client token does not match the partner action type of the job",
                ))
            }
        }
    }
}

/// The action type of a job's action.
fn job_action_type(record: &PipelineRecord, job: &Job) -> Option<ActionTypeId> {
    let execution = record.runtime.executions.get(job.execution)?;
    let run = execution.actions.get(job.run)?;
    let action = execution.declaration.stages.get(run.stage())?.actions.get(run.action())?;
    Some(action.action_type_id.clone())
}

fn job_not_found(id: &str) -> ApiError {
    // AWS's wording [NATIVE].
    ApiError::new(ErrorCode::JobNotFoundException, format!("Job with id '{id}' does not exist"))
}

/// The pipeline holding a job.
fn locate(data: &PartitionData, id: Uuid) -> Option<String> {
    data.pipelines.iter().find(|(_, r)| r.runtime.jobs.contains_key(&id)).map(|(name, _)| name.clone())
}

// --- PollForJobs --------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollForJobsInput {
    action_type_id: ActionTypeId,
    max_batch_size: Option<i32>,
    query_param: Option<BTreeMap<String, String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobOut {
    id: String,
    data: JobDataOut,
    nonce: String,
    account_id: String,
}

#[derive(Serialize)]
struct PollForJobsOutput {
    jobs: Vec<JobOut>,
}

/// PollForJobs: hands out jobs of a custom action type, each with a fresh nonce. A job handed out but not
/// acknowledged within the visibility delay is handed out again.
pub fn poll_for_jobs(ctx: &Ctx, input: PollForJobsInput) -> Result<Reply, ApiError> {
    let id = input.action_type_id;
    if id.owner != ActionOwner::Custom {
        // AWS's wording [NATIVE].
        return Err(ApiError::validation(format!("ActionType with owner '{}' is not supported", id.owner.as_str())));
    }
    // The model allows any size from 1; AWS's default when it is absent is UNCONFIRMED.
    let max = input.max_batch_size.and_then(|m| usize::try_from(m).ok()).unwrap_or(1).max(1);
    let now = ctx.now();
    let jobs = ctx.store.write(&ctx.scope, |data| {
        let Some(custom) = data.custom_action_types.get(&id) else {
            return Err(ApiError::new(
                ErrorCode::ActionTypeNotFoundException,
                format!(
                    "ActionType (Category: '{}', Owner: 'Custom', Provider: '{}', Version: '{}') is not available",
                    id.category.as_str(),
                    id.provider,
                    id.version
                ),
            ));
        };
        let queryable = custom.action_type.action_configuration_properties.iter().find(|p| p.is_queryable());
        let queryable = queryable.map(|p| p.name.clone());
        let wanted = input.query_param.as_ref().and_then(|q| q.iter().next()).map(|(k, v)| (k.clone(), v.clone()));
        let chosen = available_jobs(data, &id, now, max, |action, run| match &wanted {
            None => true,
            Some((key, value)) => {
                let config = run.configuration(Some(action));
                queryable.as_deref().is_none_or(|q| q == key) && config.get(key).is_some_and(|v| v == value)
            }
        });
        let mut out = Vec::with_capacity(chosen.len());
        for (pipeline, job_id, nonce) in dispatch(data, chosen, now) {
            if let Some(data) = data.pipelines.get(&pipeline).and_then(|record| job_data(record, &pipeline, job_id)) {
                out.push(JobOut { id: job_id.to_string(), data, nonce, account_id: ctx.scope.account.clone() });
            }
        }
        Ok(out)
    })?;
    Reply::json(&PollForJobsOutput { jobs })
}

/// Jobs of action type `id` that a poll may hand out (new, or handed out but not acknowledged in time), oldest
/// first, at most `max`: (pipeline, job id).
fn available_jobs(
    data: &PartitionData,
    id: &ActionTypeId,
    now: Timestamp,
    max: usize,
    select: impl Fn(&crate::state::declaration::ActionDeclaration, &crate::state::execution::ActionRun) -> bool,
) -> Vec<(String, Uuid)> {
    let mut chosen: Vec<(Timestamp, String, Uuid)> = Vec::new();
    for (name, record) in &data.pipelines {
        for job in record.runtime.jobs.values() {
            // A Lambda job is delivered by invocation, never by polling.
            let available = job.kind != JobKind::Lambda
                && (matches!(job.status, JobStatus::Created | JobStatus::Queued)
                    || (job.status == JobStatus::Dispatched && job.visible_at <= now));
            if !available {
                continue;
            }
            let Some(execution) = record.runtime.executions.get(job.execution) else { continue };
            let Some(run) = execution.actions.get(job.run) else { continue };
            let Some(action) = execution.declaration.stages.get(run.stage()).and_then(|s| s.actions.get(run.action()))
            else {
                continue;
            };
            if &action.action_type_id == id && run.status == ActionStatus::InProgress && select(action, run) {
                chosen.push((job.created, name.clone(), job.id));
            }
        }
    }
    chosen.sort();
    chosen.truncate(max);
    chosen.into_iter().map(|(_, name, id)| (name, id)).collect()
}

/// Hands jobs out: each gets a fresh nonce and stays invisible to other polls for a while.
fn dispatch(data: &mut PartitionData, chosen: Vec<(String, Uuid)>, now: Timestamp) -> Vec<(String, Uuid, String)> {
    let mut out = Vec::with_capacity(chosen.len());
    for (pipeline, job_id) in chosen {
        let Some(job) = data.pipelines.get_mut(&pipeline).and_then(|r| r.runtime.jobs.get_mut(&job_id)) else {
            continue;
        };
        let nonce = Uuid::new_v4().simple().to_string();
        job.status = JobStatus::Dispatched;
        job.nonce = Some(nonce.clone());
        job.visible_at = now.plus_millis(VISIBILITY_MILLIS);
        out.push((pipeline, job_id, nonce));
    }
    out
}

// --- AcknowledgeJob / GetJobDetails -------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcknowledgeJobInput {
    job_id: String,
    nonce: String,
}

#[derive(Serialize)]
struct StatusOutput {
    status: JobStatus,
}

/// AcknowledgeJob: the worker confirms it took the job, with the nonce of the poll that handed it out.
pub fn acknowledge_job(ctx: &Ctx, input: AcknowledgeJobInput) -> Result<Reply, ApiError> {
    let status = acknowledge(ctx, &input.job_id, &input.nonce, Api::Custom)?;
    Reply::json(&StatusOutput { status })
}

/// Acknowledges a job through `api` with the nonce it was handed out with.
fn acknowledge(ctx: &Ctx, job_id: &str, nonce: &str, api: Api) -> Result<JobStatus, ApiError> {
    let id = Uuid::parse_str(job_id).map_err(|_| job_not_found(job_id))?;
    ctx.store.write(&ctx.scope, |data| {
        let pipeline = locate(data, id).ok_or_else(|| job_not_found(job_id))?;
        {
            let record = data.pipelines.get(&pipeline).ok_or_else(|| job_not_found(job_id))?;
            let job = record.runtime.jobs.get(&id).ok_or_else(|| job_not_found(job_id))?;
            check_api(data, record, job, api, job_id)?;
        }
        let job = data
            .pipelines
            .get_mut(&pipeline)
            .and_then(|r| r.runtime.jobs.get_mut(&id))
            .ok_or_else(|| job_not_found(job_id))?;
        if job.nonce.as_deref() != Some(nonce) {
            return Err(ApiError::new(
                ErrorCode::InvalidNonceException,
                format!("The nonce for job {job_id} does not match; get the job again for its current nonce"),
            ));
        }
        if job.status == JobStatus::Dispatched {
            job.status = JobStatus::InProgress;
        }
        Ok(job.status)
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetJobDetailsInput {
    job_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobDetailsOut {
    id: String,
    data: JobDataOut,
    account_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetJobDetailsOutput {
    job_details: JobDetailsOut,
}

/// GetJobDetails: the job and its data (with secrets in clear), without a nonce.
pub fn get_job_details(ctx: &Ctx, input: GetJobDetailsInput) -> Result<Reply, ApiError> {
    let id = Uuid::parse_str(&input.job_id).map_err(|_| job_not_found(&input.job_id))?;
    let details = ctx.store.read(&ctx.scope, |data| {
        let pipeline = locate(data, id).ok_or_else(|| job_not_found(&input.job_id))?;
        let record = data.pipelines.get(&pipeline).ok_or_else(|| job_not_found(&input.job_id))?;
        let job = record.runtime.jobs.get(&id).ok_or_else(|| job_not_found(&input.job_id))?;
        check_api(data, record, job, Api::Custom, &input.job_id)?;
        let job_data = job_data(record, &pipeline, id).ok_or_else(|| job_not_found(&input.job_id))?;
        Ok::<_, ApiError>(JobDetailsOut {
            id: input.job_id.clone(),
            data: job_data,
            account_id: ctx.scope.account.clone(),
        })
    })?;
    Reply::json(&GetJobDetailsOutput { job_details: details })
}

// --- PutJobSuccessResult / PutJobFailureResult --------------------------------------------------------------------

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct CurrentRevisionInput {
    revision: String,
    change_identifier: String,
    created: Option<Timestamp>,
    revision_summary: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionDetailsInput {
    summary: Option<String>,
    external_execution_id: Option<String>,
    percent_complete: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutJobSuccessResultInput {
    job_id: String,
    current_revision: Option<CurrentRevisionInput>,
    continuation_token: Option<String>,
    execution_details: Option<ExecutionDetailsInput>,
    output_variables: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct FailureDetailsInput {
    #[serde(rename = "type")]
    failure_type: String,
    message: String,
    external_execution_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutJobFailureResultInput {
    job_id: String,
    failure_details: FailureDetailsInput,
}

/// How a result ends a job.
enum Report {
    Success { outcome: Success, continuation: Option<String>, percent: Option<i32> },
    Failure { error: ErrorDetails, external_execution_id: Option<String> },
}

/// Applies a result to a job, with AWS's rules for repeats and conflicts (behaviour.md §7.2.7).
fn report(ctx: &Ctx, api: Api, job_id: &str, fingerprint: String, report: Report) -> Result<(), ApiError> {
    let id = Uuid::parse_str(job_id).map_err(|_| job_not_found(job_id))?;
    let succeeded = matches!(report, Report::Success { .. });
    let now = ctx.now();
    ctx.store.write(&ctx.scope, |data| {
        let Some(pipeline) = locate(data, id) else {
            // The result of a job whose pipeline is gone is accepted and changes nothing [NATIVE].
            return if data.retired_jobs.contains(&id) { Ok(()) } else { Err(job_not_found(job_id)) };
        };
        {
            let record = data.pipelines.get(&pipeline).ok_or_else(|| job_not_found(job_id))?;
            let job = record.runtime.jobs.get(&id).ok_or_else(|| job_not_found(job_id))?;
            check_api(data, record, job, api, job_id)?;
        }
        let record = data.pipelines.get_mut(&pipeline).ok_or_else(|| job_not_found(job_id))?;
        let job = record.runtime.jobs.get(&id).ok_or_else(|| job_not_found(job_id))?;
        if job.status.is_terminal() {
            let same_status = (job.status == JobStatus::Succeeded) == succeeded;
            return match (&job.result, same_status) {
                (Some(previous), true) if *previous == fingerprint => Ok(()),
                // AWS's wording for both [NATIVE].
                (_, true) => Err(ApiError::new(
                    ErrorCode::InvalidJobStateException,
                    format!(
                        "The status of job with id {job_id} is already set to the desired value. It cannot be updated \
                         with the same status, but different result or output variables."
                    ),
                )),
                (_, false) => Err(ApiError::new(
                    ErrorCode::InvalidJobStateException,
                    format!("Job with id {job_id} has already terminated"),
                )),
            };
        }
        let (execution, run, kind) = (job.execution, job.run, job.kind);
        let running = record
            .runtime
            .executions
            .get(execution)
            .and_then(|e| e.actions.get(run))
            .is_some_and(|r| r.status == ActionStatus::InProgress);
        if let Some(job) = record.runtime.jobs.get_mut(&id) {
            job.status = if succeeded { JobStatus::Succeeded } else { JobStatus::Failed };
            job.result = Some(fingerprint);
        }
        if !running {
            // The action was abandoned (or ended otherwise): AWS answers 200 and changes nothing [NATIVE].
            return Ok(());
        }
        match report {
            Report::Success { continuation: Some(token), percent, outcome } => {
                // The action keeps running; the next job carries the token [NATIVE].
                if let Some(action_run) =
                    record.runtime.executions.get_mut(execution).and_then(|e| e.actions.get_mut(run))
                {
                    if percent.is_some() {
                        action_run.extra_mut().percent_complete = percent;
                    }
                    if let Some(summary) = outcome.summary {
                        action_run.summary = Some(summary.into_boxed_str());
                    }
                    if let Some(external) = outcome.external_execution_id {
                        action_run.external_execution_id = Some(external.into_boxed_str());
                    }
                    action_run.last_update_time = now;
                }
                if kind == JobKind::Lambda {
                    crate::engine::lambda::extend_timeout(record, execution, run, now);
                }
                step::create_job(record, execution, run, kind, Some(token), now);
            }
            Report::Success { mut outcome, percent, .. } => {
                if kind == JobKind::Lambda {
                    // A Lambda action's external execution id is its function's name, whatever it reports [NATIVE].
                    outcome.external_execution_id = crate::engine::lambda::function_name(record, execution, run);
                }
                step::finish_action(record, execution, run, Outcome::Succeed(outcome), now, None);
                if let (Some(percent), Some(r)) =
                    (percent, record.runtime.executions.get_mut(execution).and_then(|e| e.actions.get_mut(run)))
                {
                    r.extra_mut().percent_complete = Some(percent);
                }
            }
            Report::Failure { error, external_execution_id } => {
                step::finish_action(record, execution, run, Outcome::Fail(error), now, None);
                if let Some(r) = record.runtime.executions.get_mut(execution).and_then(|e| e.actions.get_mut(run)) {
                    r.external_execution_id = external_execution_id.map(String::into_boxed_str);
                }
            }
        }
        ctx.engine.advance(&ctx.scope, &pipeline, record, now);
        Ok(())
    })
}

/// PutJobSuccessResult: ends the job; the action succeeds, or with a continuation token keeps running and gets a
/// new job. No output body.
pub fn put_job_success_result(ctx: &Ctx, input: PutJobSuccessResultInput) -> Result<Reply, ApiError> {
    success(ctx, Api::Custom, input)
}

fn success(ctx: &Ctx, api: Api, input: PutJobSuccessResultInput) -> Result<Reply, ApiError> {
    let variables = input.output_variables.unwrap_or_default();
    if input.continuation_token.is_some() && !variables.is_empty() {
        // AWS's wording; the job is not consumed [NATIVE].
        return Err(ApiError::validation("A job can not contain both a continuation token and output variables."));
    }
    let size: usize = variables.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_OUTPUT_VARIABLE_BYTES {
        return Err(ApiError::new(
            ErrorCode::OutputVariablesSizeExceededException,
            format!("The output variables are {size} bytes, more than the limit of {MAX_OUTPUT_VARIABLE_BYTES} bytes"),
        ));
    }
    let fingerprint = serde_json::json!({
        "currentRevision": input.current_revision,
        "continuationToken": input.continuation_token,
        "executionDetails": input.execution_details,
        "outputVariables": variables,
    })
    .to_string();
    let details = input.execution_details.unwrap_or(ExecutionDetailsInput {
        summary: None,
        external_execution_id: None,
        percent_complete: None,
    });
    let now = ctx.now();
    let revision = input.current_revision.map(|r| Revision {
        change_id: Some(r.change_identifier),
        revision_id: r.revision,
        summary: r.revision_summary,
        url: None,
        created: Some(r.created.unwrap_or(now)),
    });
    let outcome = Success {
        summary: details.summary,
        external_execution_id: details.external_execution_id,
        external_execution_url: None,
        output_variables: variables,
        revision,
    };
    let report_value =
        Report::Success { outcome, continuation: input.continuation_token, percent: details.percent_complete };
    report(ctx, api, &input.job_id, fingerprint, report_value)?;
    Ok(Reply::Done)
}

/// PutJobFailureResult: ends the job and fails the action with the reported type and message. No output body.
pub fn put_job_failure_result(ctx: &Ctx, input: PutJobFailureResultInput) -> Result<Reply, ApiError> {
    failure(ctx, Api::Custom, input)
}

fn failure(ctx: &Ctx, api: Api, input: PutJobFailureResultInput) -> Result<Reply, ApiError> {
    let fingerprint = serde_json::to_string(&input.failure_details).unwrap_or_default();
    let failure = input.failure_details;
    let report_value = Report::Failure {
        error: ErrorDetails { code: failure.failure_type, message: failure.message },
        external_execution_id: failure.external_execution_id,
    };
    report(ctx, api, &input.job_id, fingerprint, report_value)?;
    Ok(Reply::Done)
}

// --- Partner (ThirdParty) jobs --------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollForThirdPartyJobsInput {
    action_type_id: ActionTypeId,
    max_batch_size: Option<i32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThirdPartyJobOut {
    client_id: String,
    job_id: String,
}

#[derive(Serialize)]
struct PollForThirdPartyJobsOutput {
    jobs: Vec<ThirdPartyJobOut>,
}

/// PollForThirdPartyJobs: hands out jobs of a registered partner action type; the partner then reads each with
/// GetThirdPartyJobDetails (which gives the nonce) using its client token.
pub fn poll_for_third_party_jobs(ctx: &Ctx, input: PollForThirdPartyJobsInput) -> Result<Reply, ApiError> {
    let id = input.action_type_id;
    if id.owner != ActionOwner::ThirdParty {
        return Err(ApiError::validation(format!("ActionType with owner '{}' is not supported", id.owner.as_str())));
    }
    let max = input.max_batch_size.and_then(|m| usize::try_from(m).ok()).unwrap_or(1).max(1);
    let now = ctx.now();
    let jobs = ctx.store.write(&ctx.scope, |data| {
        let Some(client_id) = data.third_party_types.get(&id).map(|r| r.client_id) else {
            return Err(ApiError::new(
                ErrorCode::ActionTypeNotFoundException,
                format!(
                    "ActionType (Category: '{}', Owner: 'ThirdParty', Provider: '{}', Version: '{}') is not available",
                    id.category.as_str(),
                    id.provider,
                    id.version
                ),
            ));
        };
        let chosen = available_jobs(data, &id, now, max, |_, _| true);
        Ok(dispatch(data, chosen, now)
            .into_iter()
            .map(|(_, job, _)| ThirdPartyJobOut { client_id: client_id.to_string(), job_id: job.to_string() })
            .collect::<Vec<_>>())
    })?;
    Reply::json(&PollForThirdPartyJobsOutput { jobs })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetThirdPartyJobDetailsInput {
    job_id: String,
    client_token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThirdPartyJobDetailsOut {
    id: String,
    data: JobDataOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetThirdPartyJobDetailsOutput {
    job_details: ThirdPartyJobDetailsOut,
}

/// GetThirdPartyJobDetails: the job's data and nonce, for the holder of the type's client token.
pub fn get_third_party_job_details(ctx: &Ctx, input: GetThirdPartyJobDetailsInput) -> Result<Reply, ApiError> {
    let id = Uuid::parse_str(&input.job_id).map_err(|_| job_not_found(&input.job_id))?;
    let details = ctx.store.read(&ctx.scope, |data| {
        let pipeline = locate(data, id).ok_or_else(|| job_not_found(&input.job_id))?;
        let record = data.pipelines.get(&pipeline).ok_or_else(|| job_not_found(&input.job_id))?;
        let job = record.runtime.jobs.get(&id).ok_or_else(|| job_not_found(&input.job_id))?;
        check_api(data, record, job, Api::ThirdParty(&input.client_token), &input.job_id)?;
        let job_data = job_data(record, &pipeline, id).ok_or_else(|| job_not_found(&input.job_id))?;
        Ok::<_, ApiError>(ThirdPartyJobDetailsOut {
            id: input.job_id.clone(),
            data: job_data,
            nonce: job.nonce.clone(),
        })
    })?;
    Reply::json(&GetThirdPartyJobDetailsOutput { job_details: details })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcknowledgeThirdPartyJobInput {
    job_id: String,
    nonce: String,
    client_token: String,
}

/// AcknowledgeThirdPartyJob: as AcknowledgeJob, with the client token.
pub fn acknowledge_third_party_job(ctx: &Ctx, input: AcknowledgeThirdPartyJobInput) -> Result<Reply, ApiError> {
    let status = acknowledge(ctx, &input.job_id, &input.nonce, Api::ThirdParty(&input.client_token))?;
    Reply::json(&StatusOutput { status })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutThirdPartyJobSuccessResultInput {
    job_id: String,
    client_token: String,
    current_revision: Option<CurrentRevisionInput>,
    continuation_token: Option<String>,
    execution_details: Option<ExecutionDetailsInput>,
}

/// PutThirdPartyJobSuccessResult: as PutJobSuccessResult (partners report no output variables).
pub fn put_third_party_job_success_result(
    ctx: &Ctx,
    input: PutThirdPartyJobSuccessResultInput,
) -> Result<Reply, ApiError> {
    let token = input.client_token;
    let custom = PutJobSuccessResultInput {
        job_id: input.job_id,
        current_revision: input.current_revision,
        continuation_token: input.continuation_token,
        execution_details: input.execution_details,
        output_variables: None,
    };
    success(ctx, Api::ThirdParty(&token), custom)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutThirdPartyJobFailureResultInput {
    job_id: String,
    client_token: String,
    failure_details: FailureDetailsInput,
}

/// PutThirdPartyJobFailureResult: as PutJobFailureResult, with the client token.
pub fn put_third_party_job_failure_result(
    ctx: &Ctx,
    input: PutThirdPartyJobFailureResultInput,
) -> Result<Reply, ApiError> {
    let custom = PutJobFailureResultInput { job_id: input.job_id, failure_details: input.failure_details };
    failure(ctx, Api::ThirdParty(&input.client_token), custom)
}
