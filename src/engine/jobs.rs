//! Jobs: the data a job worker (a custom action's worker, a partner's worker, or a Lambda function) is given.

use crate::engine::Write;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use super::ids::Ids;
use super::step;
use crate::state::declaration::{ActionDeclaration, ActionTypeId, EncryptionKey};
use crate::state::execution::{
    ActionRun, ActionStatus, ArtifactInstance, At, ErrorDetails, Execution, JobKind, JobStatus, Outcome, Success,
};
use crate::state::{PartitionData, PipelineRecord, Timestamp};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct S3LocationOut {
    bucket_name: String,
    object_key: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationOut {
    #[serde(rename = "type")]
    location_type: &'static str,
    s3_location: S3LocationOut,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactOut {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<String>,
    location: LocationOut,
}

#[derive(Serialize)]
pub struct ActionConfigurationOut {
    configuration: BTreeMap<String, String>,
}

#[derive(Serialize)]
pub struct NameOut {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionContextOut {
    name: String,
    action_execution_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineContextOut {
    pipeline_name: String,
    stage: NameOut,
    action: ActionContextOut,
    pipeline_arn: String,
    pipeline_execution_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsOut {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
}

/// What job data hands out as `artifactCredentials`: the S3 neighbour's credentials when there is one, so that a job
/// worker or a Lambda function reads its inputs and writes its outputs there as on AWS; placeholders otherwise.
#[derive(Clone, PartialEq, Eq)]
pub struct ArtifactCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// AWS always hands out temporary credentials; a neighbour's keys without a token get a placeholder one
    /// (LocalStack and moto ignore it).
    pub session_token: String,
}

/// The session token handed out when the credentials have none.
const PLACEHOLDER_SESSION_TOKEN: &str = "codepipeline-local-session-token";

impl Default for ArtifactCredentials {
    fn default() -> ArtifactCredentials {
        ArtifactCredentials {
            access_key_id: "ASIACODEPIPELINELOCAL".into(),
            secret_access_key: "codepipeline-local-artifact-secret".into(),
            session_token: PLACEHOLDER_SESSION_TOKEN.into(),
        }
    }
}

impl ArtifactCredentials {
    /// The S3 neighbour's credentials, as job data hands them out.
    pub fn of(credentials: &super::providers::Credentials) -> ArtifactCredentials {
        ArtifactCredentials {
            access_key_id: credentials.access_key_id.clone(),
            secret_access_key: credentials.secret_access_key.clone(),
            session_token: credentials.session_token.clone().unwrap_or_else(|| PLACEHOLDER_SESSION_TOKEN.into()),
        }
    }
}

impl std::fmt::Debug for ArtifactCredentials {
    /// Never the secret or the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactCredentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDataOut {
    action_type_id: ActionTypeId,
    action_configuration: ActionConfigurationOut,
    pipeline_context: PipelineContextOut,
    input_artifacts: Vec<ArtifactOut>,
    output_artifacts: Vec<ArtifactOut>,
    artifact_credentials: CredentialsOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    continuation_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_key: Option<EncryptionKey>,
}

/// An output artifact as the Lambda event shows it: its revision is there, and `null` [real AWS session, issue 28].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaArtifactOut {
    name: String,
    revision: Option<String>,
    location: LocationOut,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaCredentialsOut {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    /// When the credentials expire, in epoch milliseconds (AWS's are good for about 15 minutes).
    expiration_time: i64,
}

/// The `data` of the event a Lambda action's function gets, in AWS's member order: the job data without the action
/// type and the pipeline context [real AWS session, issue 28].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaDataOut {
    action_configuration: ActionConfigurationOut,
    input_artifacts: Vec<ArtifactOut>,
    output_artifacts: Vec<LambdaArtifactOut>,
    artifact_credentials: LambdaCredentialsOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    continuation_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_key: Option<EncryptionKey>,
}

/// How long the artifact credentials of a Lambda event last.
const LAMBDA_CREDENTIALS_MILLIS: i64 = 15 * 60 * 1000;

impl JobDataOut {
    /// The job data as a Lambda function gets it, its credentials expiring 15 minutes after `now`.
    pub fn for_lambda(self, now: Timestamp) -> LambdaDataOut {
        LambdaDataOut {
            action_configuration: self.action_configuration,
            input_artifacts: self.input_artifacts,
            output_artifacts: self
                .output_artifacts
                .into_iter()
                .map(|a| LambdaArtifactOut { name: a.name, revision: None, location: a.location })
                .collect(),
            artifact_credentials: LambdaCredentialsOut {
                access_key_id: self.artifact_credentials.access_key_id,
                secret_access_key: self.artifact_credentials.secret_access_key,
                session_token: self.artifact_credentials.session_token,
                expiration_time: now.millis().saturating_add(LAMBDA_CREDENTIALS_MILLIS),
            },
            continuation_token: self.continuation_token,
            encryption_key: self.encryption_key,
        }
    }
}

/// An artifact as job data (and a LambdaInvoke rule's event) shows it: its artifact-store location, and the
/// source revision it carries, if a source action of the execution produced it.
pub fn artifact_out(execution: &Execution, artifact: &ArtifactInstance) -> ArtifactOut {
    let revision = execution
        .sources
        .iter()
        .find(|(index, _)| execution.source_names(*index).1 == Some(&*artifact.name))
        .map(|(_, r)| r.revision_id.clone());
    ArtifactOut {
        name: artifact.name.to_string(),
        revision,
        location: LocationOut {
            location_type: "S3",
            s3_location: S3LocationOut {
                bucket_name: artifact.bucket.to_string(),
                object_key: artifact.key.to_string(),
            },
        },
    }
}

/// The job's data: the action's configuration with secrets in clear and variables resolved, its context, and
/// its artifacts with their artifact-store locations.
pub fn job_data(
    record: &PipelineRecord,
    pipeline: &str,
    job: Uuid,
    credentials: &ArtifactCredentials,
) -> Option<JobDataOut> {
    let job = record.runtime.jobs.get(&job)?;
    let execution = record.runtime.executions.at(job.execution)?;
    let run = execution.actions.at(job.run)?;
    let (stage_name, action_name) = execution.names(run);
    let action = execution.declaration.stages.get(run.stage())?.actions.get(run.action())?;
    let configuration = run.configuration(Some(action)).to_map();
    let artifact = |a: &Arc<ArtifactInstance>| artifact_out(execution, a);
    let store = execution.declaration.artifact_store.as_ref().or_else(|| {
        let region = run.region().unwrap_or_default();
        execution.declaration.artifact_stores.as_ref().and_then(|m| m.get(region).or_else(|| m.values().next()))
    });
    Some(JobDataOut {
        action_type_id: action.action_type_id.clone(),
        action_configuration: ActionConfigurationOut { configuration },
        pipeline_context: PipelineContextOut {
            pipeline_name: pipeline.to_string(),
            stage: NameOut { name: stage_name.to_string() },
            action: ActionContextOut { name: action_name.to_string(), action_execution_id: run.id.to_string() },
            pipeline_arn: record.arn.clone(),
            pipeline_execution_id: execution.id.to_string(),
        },
        input_artifacts: run.input_artifacts.iter().map(artifact).collect(),
        output_artifacts: run.output_artifacts.iter().map(artifact).collect(),
        artifact_credentials: CredentialsOut {
            access_key_id: credentials.access_key_id.clone(),
            secret_access_key: credentials.secret_access_key.clone(),
            session_token: credentials.session_token.clone(),
        },
        continuation_token: job.continuation_token.clone(),
        encryption_key: store.and_then(|s| s.encryption_key.clone()),
    })
}

// --- Job state: polling, acknowledgement, results --------------------------------------------------------------------

/// How long a job handed out but not acknowledged stays invisible to other polls.
pub const VISIBILITY_MILLIS: i64 = 30_000;

/// A job worker's result.
#[derive(Debug)]
pub enum JobReport {
    /// Success; with a continuation token the action keeps running and a new job carries the token.
    Success {
        outcome: Success,
        continuation: Option<String>,
        percent: Option<i32>,
    },
    Failure {
        error: ErrorDetails,
        external_execution_id: Option<String>,
    },
}

/// Why a job's acknowledgement or result is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobRefusal {
    /// No job with that id in the pipeline.
    NotFound,
    /// The nonce is not the one the job was last handed out with.
    WrongNonce,
    /// The job already ended with the same status but another result.
    SameStatusOtherResult,
    /// The job already ended with the other status.
    AlreadyTerminated,
}

/// Jobs of action type `id` that a poll may hand out (new, or handed out but not acknowledged in time), oldest
/// first, at most `max`: (pipeline, job id). `select` filters on the action and its run.
pub fn available(
    data: &PartitionData,
    id: &ActionTypeId,
    now: Timestamp,
    max: usize,
    select: impl Fn(&ActionDeclaration, &ActionRun) -> bool,
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
            let Some(execution) = record.runtime.executions.at(job.execution) else { continue };
            let Some(run) = execution.actions.at(job.run) else { continue };
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

/// Hands jobs out: each gets a fresh nonce and stays invisible to other polls for a while. Returns
/// (pipeline, job id, nonce) of each.
pub(super) fn dispatch(
    data: &mut PartitionData,
    chosen: Vec<(String, Uuid)>,
    ids: &Ids,
    now: Timestamp,
) -> Vec<(String, Uuid, String)> {
    let mut out = Vec::with_capacity(chosen.len());
    for (pipeline, job_id) in chosen {
        let Some(job) = data.pipelines.get_mut(&pipeline).and_then(|r| r.runtime.w().jobs.get_mut(&job_id)) else {
            continue;
        };
        let nonce = ids.uuid().simple().to_string();
        job.status = JobStatus::Dispatched;
        job.nonce = Some(nonce.clone());
        job.visible_at = now.plus_millis(VISIBILITY_MILLIS);
        out.push((pipeline, job_id, nonce));
    }
    out
}

/// The worker confirms it took the job, with the nonce it was handed out with.
pub(super) fn acknowledge(record: &mut PipelineRecord, id: Uuid, nonce: &str) -> Result<JobStatus, JobRefusal> {
    let job = record.runtime.w().jobs.get_mut(&id).ok_or(JobRefusal::NotFound)?;
    if job.nonce.as_deref() != Some(nonce) {
        return Err(JobRefusal::WrongNonce);
    }
    if job.status == JobStatus::Dispatched {
        job.status = JobStatus::InProgress;
    }
    Ok(job.status)
}

/// Applies a result to a job, with AWS's rules for repeats and conflicts (behaviour.md §7.2.7): the same result
/// again is accepted and changes nothing; a different one is refused. `fingerprint` identifies the result.
pub(super) fn report(
    record: &mut PipelineRecord,
    id: Uuid,
    fingerprint: String,
    report: JobReport,
    ids: &Ids,
    now: Timestamp,
) -> Result<(), JobRefusal> {
    let succeeded = matches!(report, JobReport::Success { .. });
    let job = record.runtime.jobs.get(&id).ok_or(JobRefusal::NotFound)?;
    if job.status.is_terminal() {
        let same_status = (job.status == JobStatus::Succeeded) == succeeded;
        return match (&job.result, same_status) {
            (Some(previous), true) if *previous == fingerprint => Ok(()),
            (_, true) => Err(JobRefusal::SameStatusOtherResult),
            (_, false) => Err(JobRefusal::AlreadyTerminated),
        };
    }
    let (execution, run, kind) = (job.execution, job.run, job.kind);
    let running = record
        .runtime
        .executions
        .at(execution)
        .and_then(|e| e.actions.at(run))
        .is_some_and(|r| r.status == ActionStatus::InProgress);
    if let Some(job) = record.runtime.w().jobs.get_mut(&id) {
        job.status = if succeeded { JobStatus::Succeeded } else { JobStatus::Failed };
        job.result = Some(fingerprint);
    }
    if !running {
        // The action was abandoned (or ended otherwise): AWS answers 200 and changes nothing [NATIVE].
        return Ok(());
    }
    match report {
        JobReport::Success { continuation: Some(token), percent, outcome } => {
            // The action keeps running; the next job carries the token [NATIVE].
            // A Lambda action shows its function, not what it reports [real AWS session, issue 28].
            let shown = kind != JobKind::Lambda;
            if let Some(action_run) =
                record.runtime.w().executions.at_mut(execution).and_then(|e| e.actions.at_mut(run)).filter(|_| shown)
            {
                if percent.is_some() {
                    action_run.extra_mut().percent_complete = percent;
                }
                if let Some(summary) = outcome.summary {
                    action_run.summary = Some(summary.into());
                }
                if let Some(external) = outcome.external_execution_id {
                    action_run.external_execution_id = Some(external.into_boxed_str());
                }
                action_run.last_update_time = now;
            }
            if kind == JobKind::Lambda {
                super::lambda::extend_timeout(record, execution, run, now);
            }
            step::create_job(record, execution, run, kind, Some(token), ids, now);
        }
        JobReport::Success { mut outcome, percent, .. } => {
            let lambda = kind == JobKind::Lambda;
            if lambda {
                // A Lambda action's external execution id is its function's name, whatever it reports [NATIVE]; its
                // summary and percentage are not shown [real AWS session, issue 28].
                outcome.external_execution_id = super::lambda::function_name(record, execution, run);
                outcome.summary = None;
            }
            step::finish_action(record, execution, run, Outcome::Succeed(outcome), now, step::FinishedBy::Worker);
            if let (Some(percent), Some(r), false) =
                (percent, record.runtime.w().executions.at_mut(execution).and_then(|e| e.actions.at_mut(run)), lambda)
            {
                r.extra_mut().percent_complete = Some(percent);
            }
        }
        JobReport::Failure { error, mut external_execution_id } => {
            if kind == JobKind::Lambda {
                // The function's name, whatever the failure details say [real AWS session, issue 28].
                external_execution_id = super::lambda::function_name(record, execution, run);
            }
            step::finish_action(record, execution, run, Outcome::Fail(error), now, step::FinishedBy::Worker);
            if let Some(r) = record.runtime.w().executions.at_mut(execution).and_then(|e| e.actions.at_mut(run)) {
                r.external_execution_id = external_execution_id.map(String::into_boxed_str);
            }
        }
    }
    Ok(())
}
