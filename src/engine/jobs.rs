//! Jobs: the data a job worker (a custom action's worker, a partner's worker, or a Lambda function) is given.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use crate::state::PipelineRecord;
use crate::state::declaration::{ActionTypeId, EncryptionKey};
use crate::state::execution::{ArtifactInstance, Execution};

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
    access_key_id: &'static str,
    secret_access_key: &'static str,
    session_token: &'static str,
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
pub fn job_data(record: &PipelineRecord, pipeline: &str, job: Uuid) -> Option<JobDataOut> {
    let job = record.runtime.jobs.get(&job)?;
    let execution = record.runtime.executions.get(job.execution)?;
    let run = execution.actions.get(job.run)?;
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
        // Temporary credentials for the artifact store; the emulator stores no objects, so they are placeholders.
        artifact_credentials: CredentialsOut {
            access_key_id: "ASIACODEPIPELINELOCAL",
            secret_access_key: "codepipeline-local-artifact-secret",
            session_token: "codepipeline-local-session-token",
        },
        continuation_token: job.continuation_token.clone(),
        encryption_key: store.and_then(|s| s.encryption_key.clone()),
    })
}
