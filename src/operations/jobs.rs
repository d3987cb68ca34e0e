//! Custom-action job workers: PollForJobs, AcknowledgeJob, GetJobDetails, PutJobSuccessResult,
//! PutJobFailureResult (behaviour.md §7.2).
//!
//! A job is created when an action of a custom type starts (see `engine::step`); it lives with its pipeline. A
//! worker polls for it, acknowledges it with the nonce it got, and reports success (possibly with a continuation
//! token, which keeps the action running and creates the next job) or failure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Ctx, action_type_not_available};
use crate::engine::commands::job::{AcknowledgeJob, ReportJob};
use crate::engine::jobs::{JobDataOut, JobRefusal, JobReport, job_data};
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::Timestamp;
use crate::state::declaration::{ActionDeclaration, ActionOwner, ActionTypeId};
use crate::state::execution::{
    ActionRun, At, ChangeId, ErrorDetails, FailureType, Job, JobKind, JobStatus, Revision, Success,
};
use crate::state::{PartitionData, PipelineRecord};

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
    let execution = record.runtime.executions.at(job.execution)?;
    let run = execution.actions.at(job.run)?;
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
    let queryable = ctx.store.read(&ctx.scope, |data| {
        let Some(custom) = data.custom_action_types.get(&id) else { return Err(action_type_not_available(&id)) };
        let queryable = custom.action_type.action_configuration_properties.iter().find(|p| p.is_queryable());
        Ok(queryable.map(|p| p.name.clone()))
    })?;
    let wanted = input.query_param.as_ref().and_then(|q| q.iter().next()).map(|(k, v)| (k.clone(), v.clone()));
    let select = |action: &ActionDeclaration, run: &ActionRun| match &wanted {
        None => true,
        Some((key, value)) => {
            let config = run.configuration(Some(action));
            queryable.as_deref().is_none_or(|q| q == key) && config.get(key).is_some_and(|v| v == value)
        }
    };
    let jobs = ctx.engine.poll_jobs(&ctx.scope, &id, max, select, |data, pipeline, job, nonce| {
        let data = data
            .pipelines
            .get(pipeline)
            .and_then(|record| job_data(record, pipeline, job, ctx.engine.artifact_credentials()))?;
        Some(JobOut { id: job.to_string(), data, nonce, account_id: ctx.scope.account.clone() })
    })?;
    Reply::json(&PollForJobsOutput { jobs })
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
    let pipeline = ctx.store.read(&ctx.scope, |data| holder(data, id, api, job_id))?;
    let pipeline = pipeline.ok_or_else(|| job_not_found(job_id))?;
    let command = AcknowledgeJob { job: id, nonce: nonce.to_string() };
    ctx.engine.apply(&ctx.scope, &pipeline, command)?.map_err(|r| job_error(r, job_id))
}

/// The pipeline holding a job that `api` may use; `None` if the job belonged to a deleted pipeline.
fn holder(data: &PartitionData, id: Uuid, api: Api, job_id: &str) -> Result<Option<String>, ApiError> {
    let Some(pipeline) = locate(data, id) else {
        return if data.retired_jobs.contains(&id) { Ok(None) } else { Err(job_not_found(job_id)) };
    };
    let record = data.pipelines.get(&pipeline).ok_or_else(|| job_not_found(job_id))?;
    let job = record.runtime.jobs.get(&id).ok_or_else(|| job_not_found(job_id))?;
    check_api(data, record, job, api, job_id)?;
    Ok(Some(pipeline))
}

/// The error for a refused job command.
fn job_error(refusal: JobRefusal, job_id: &str) -> ApiError {
    match refusal {
        JobRefusal::WrongNonce => ApiError::new(
            ErrorCode::InvalidNonceException,
            format!("The nonce for job {job_id} does not match; get the job again for its current nonce"),
        ),
        // AWS's wording for both [NATIVE].
        JobRefusal::SameStatusOtherResult => ApiError::new(
            ErrorCode::InvalidJobStateException,
            format!(
                "The status of job with id {job_id} is already set to the desired value. It cannot be updated with \
                 the same status, but different result or output variables."
            ),
        ),
        JobRefusal::AlreadyTerminated => {
            ApiError::new(ErrorCode::InvalidJobStateException, format!("Job with id {job_id} has already terminated"))
        }
        JobRefusal::NotFound => job_not_found(job_id),
    }
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
        let job_data = job_data(record, &pipeline, id, ctx.engine.artifact_credentials())
            .ok_or_else(|| job_not_found(&input.job_id))?;
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
    failure_type: FailureType,
    message: String,
    external_execution_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutJobFailureResultInput {
    job_id: String,
    failure_details: FailureDetailsInput,
}

/// Applies a result to a job (the engine's rules for repeats and conflicts). The result of a job whose pipeline is
/// gone is accepted and changes nothing [NATIVE].
fn report(ctx: &Ctx, api: Api, job_id: &str, fingerprint: String, report: JobReport) -> Result<(), ApiError> {
    let id = Uuid::parse_str(job_id).map_err(|_| job_not_found(job_id))?;
    let Some(pipeline) = ctx.store.read(&ctx.scope, |data| holder(data, id, api, job_id))? else { return Ok(()) };
    let command = ReportJob { job: id, fingerprint, report };
    ctx.engine.apply(&ctx.scope, &pipeline, command)?.map_err(|r| job_error(r, job_id))
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
        change: ChangeId::of(&r.revision, Some(r.change_identifier)),
        revision_id: r.revision,
        summary: r.revision_summary.map(Into::into),
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
        JobReport::Success { outcome, continuation: input.continuation_token, percent: details.percent_complete };
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
    let report_value = JobReport::Failure {
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
    let client_id = ctx.store.read(&ctx.scope, |data| {
        let Some(client_id) = data.third_party_types.get(&id).map(|r| r.client_id) else {
            return Err(action_type_not_available(&id));
        };
        Ok(client_id)
    })?;
    let jobs = ctx.engine.poll_jobs(
        &ctx.scope,
        &id,
        max,
        |_, _| true,
        |_, _, job, _| Some(ThirdPartyJobOut { client_id: client_id.to_string(), job_id: job.to_string() }),
    )?;
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
        let job_data = job_data(record, &pipeline, id, ctx.engine.artifact_credentials())
            .ok_or_else(|| job_not_found(&input.job_id))?;
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
