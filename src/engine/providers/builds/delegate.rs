//! Builds delegated to a CodeBuild neighbour that runs them (`--delegate-builds`; LocalStack's paid tier and floci
//! run builds in Docker): StartBuild on the action's project with the pipeline's input artifacts as its sources
//! (S3 overrides: a neighbour emulator does not take CodePipeline's own source type), its output artifacts as its
//! artifacts, and the action's variables and buildspec override; then BatchGetBuilds until the build ends, mapped to
//! the action's result as AWS maps it. Stopping the action stops the build.

use aws_sdk_codebuild::types::{
    ArtifactPackaging, ArtifactsType, EnvironmentVariable, EnvironmentVariableType, ProjectArtifacts, ProjectSource,
    SourceType, StatusType,
};

use super::{Build, Kind, failed};
use crate::engine::Engine;
use crate::engine::providers::artifacts::{ArtifactWork, ArtifactWriter};
use crate::engine::providers::neighbour::{Wait, abandoned, answer, job_failed, sdk_config};
use crate::state::execution::{ErrorDetails, Success};

/// `bucket/key` split into the S3 artifact's location, path and name.
fn artifact(bucket: &str, key: &str, identifier: Option<&str>) -> Option<ProjectArtifacts> {
    let (path, name) = key.rsplit_once('/').unwrap_or(("", key));
    ProjectArtifacts::builder()
        .r#type(ArtifactsType::S3)
        .location(bucket)
        .path(path)
        .name(name)
        .packaging(ArtifactPackaging::Zip)
        .set_artifact_identifier(identifier.map(str::to_string))
        .build()
        .ok()
}

impl ArtifactWriter {
    /// Starts the build on the neighbour and follows it to its end.
    pub(in crate::engine::providers) async fn delegate(
        &self,
        engine: &Engine,
        work: &ArtifactWork,
        build: &Build,
    ) -> Result<Success, ErrorDetails> {
        let endpoint = self.settings.codebuild.as_deref().unwrap_or_default();
        let client = aws_sdk_codebuild::Client::new(&sdk_config(&self.settings, endpoint, &build.region));
        let primary_name = match &build.kind {
            Kind::CodeBuild { primary: Some(name), .. } => Some(name.as_str()),
            _ => build.inputs.first().map(|a| &*a.name),
        };
        let mut start = client.start_build().project_name(&build.project);
        for input in &build.inputs {
            let location = format!("{}/{}", input.bucket, input.key);
            if Some(&*input.name) == primary_name {
                start = start.source_type_override(SourceType::S3).source_location_override(location);
            } else if let Ok(source) = ProjectSource::builder()
                .r#type(SourceType::S3)
                .location(location)
                .source_identifier(&*input.name)
                .build()
            {
                start = start.secondary_sources_override(source);
            }
        }
        for (index, ((bucket, key), name)) in work.outputs.iter().zip(&build.outputs).enumerate() {
            if index == 0 {
                start = start.set_artifacts_override(artifact(bucket, key, None));
            } else if let Some(secondary) = artifact(bucket, key, Some(name)) {
                start = start.secondary_artifacts_override(secondary);
            }
        }
        for (name, value, kind) in &build.environment {
            let variable = EnvironmentVariable::builder()
                .name(name)
                .value(value)
                .r#type(EnvironmentVariableType::from(kind.as_str()))
                .build();
            if let Ok(variable) = variable {
                start = start.environment_variables_override(variable);
            }
        }
        if let Kind::CodeBuild { buildspec_override: Some(spec), .. } = &build.kind {
            start = start.buildspec_override(spec);
        }
        let started =
            start.send().await.map_err(|e| job_failed(format!("Error calling startBuild: {}", answer(&e))))?;
        let id = started.build_value().and_then(|b| b.id()).unwrap_or_default().to_string();
        let mut wait = Wait::new(engine, work);
        loop {
            let builds = client.batch_get_builds().ids(&id).send().await;
            let builds = builds.map_err(|e| job_failed(format!("Error calling batchGetBuilds: {}", answer(&e))))?;
            if let Some(found) = builds.builds().first() {
                let status = found.build_status().cloned().unwrap_or(StatusType::InProgress);
                if status == StatusType::Succeeded {
                    let variables = found
                        .exported_environment_variables()
                        .iter()
                        .filter_map(|v| Some((v.name()?.to_string(), v.value().unwrap_or_default().to_string())))
                        .collect();
                    return Ok(Success {
                        external_execution_id: Some(id),
                        output_variables: variables,
                        ..Success::default()
                    });
                }
                if status != StatusType::InProgress {
                    // The phase that did not succeed, with its first context, as AWS words a failed build.
                    let phase = found.phases().iter().find(|p| {
                        p.phase_status().is_some_and(|s| !matches!(s, StatusType::Succeeded | StatusType::InProgress))
                    });
                    let phase_type = phase.and_then(|p| p.phase_type()).map_or("BUILD", |t| t.as_str()).to_string();
                    let context = phase.and_then(|p| p.contexts().first());
                    let code = context.and_then(|c| c.status_code()).unwrap_or("");
                    let message = context.and_then(|c| c.message()).unwrap_or("");
                    let mut error = failed(&phase_type, code, message);
                    error.message = error.message.replacen("FAILED", status.as_str(), 1);
                    return Err(error);
                }
            }
            if !wait.pause().await {
                let _ = client.stop_build().id(&id).send().await;
                return Err(abandoned());
            }
        }
    }
}
