//! The ECS deploy action and the ECR source action against their neighbours (real-actions.md §8).
//!
//! ECS deploy: `imagedefinitions.json` (or the configured `FileName`) from the input artifact names the new image of
//! each container; the action registers its own revision of the service's current task definition with those images,
//! points the service at it and waits until the service is stable on it (AWS's `services-stable` rule: one
//! deployment, as many tasks running as desired), bounded by `DeploymentTimeout` on the emulator clock.
//!
//! ECR source: the image the tag names (or the digest the execution names), as `imageDetail.json` in its output
//! artifact, with its output variables; the revision is the image digest.
//!
//! Choices where AWS's wording is UNCONFIRMED: a missing service, a missing image and a file too large are
//! configuration errors in our words; the deploy's external id is the ECS deployment id and its summary names the
//! task definition revision.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_ecr::error::ProvideErrorMetadata as _;

use super::artifacts::{ArtifactWork, ArtifactWriter};
use super::neighbour::{Wait, abandoned, configuration_error, job_failed, sdk_config, zip_of};
use crate::engine::Engine;
use crate::state::Timestamp;
use crate::state::execution::{ActionRun, ArtifactInstance, ChangeId, ErrorDetails, Revision, Success};

/// The largest image definitions file AWS reads (100 KB).
const MAX_DEFINITIONS_BYTES: usize = 100 * 1024;

/// What an ECS deploy does: its resolved configuration and input artifact.
#[derive(Debug, Clone)]
pub struct Deploy {
    cluster: String,
    service: String,
    file_name: String,
    input: Option<Arc<ArtifactInstance>>,
    region: String,
}

impl Deploy {
    /// The deploy `configuration` asks for, with `run`'s input, in `region`.
    pub fn new(configuration: &BTreeMap<String, String>, run: &ActionRun, region: String) -> Deploy {
        let value = |key: &str| configuration.get(key).filter(|v| !v.is_empty()).cloned();
        Deploy {
            cluster: value("ClusterName").unwrap_or_default(),
            service: value("ServiceName").unwrap_or_default(),
            file_name: value("FileName").unwrap_or_else(|| "imagedefinitions.json".into()),
            input: run.input_artifacts.first().cloned(),
            region,
        }
    }
}

/// One entry of `imagedefinitions.json`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageDefinition {
    name: String,
    image_uri: String,
}

impl ArtifactWriter {
    /// Deploys the new images and waits until the service is stable on them.
    pub(super) async fn ecs(
        &self,
        engine: &Engine,
        work: &ArtifactWork,
        deploy: &Deploy,
    ) -> Result<Success, ErrorDetails> {
        let Some(input) = &deploy.input else {
            return Err(configuration_error(
                "The ECS deploy action needs an input artifact holding the image definitions file.".into(),
            ));
        };
        let archive = self.read_artifact(&input.name, &input.bucket, &input.key).await?;
        let file = super::neighbour::file(&archive, &input.name, &deploy.file_name)?.ok_or_else(|| {
            configuration_error(format!("File [{}] does not exist in artifact [{}]", deploy.file_name, input.name))
        })?;
        if file.len() > MAX_DEFINITIONS_BYTES {
            return Err(configuration_error(format!(
                "The image definition file {} is larger than 100 KB.",
                deploy.file_name
            )));
        }
        let definitions: Vec<ImageDefinition> = serde_json::from_slice(&file).map_err(|_| {
            configuration_error(format!("The image definition file {} contents invalid JSON format", deploy.file_name))
        })?;
        let endpoint = self.settings.ecs.as_deref().unwrap_or_default();
        let client = aws_sdk_ecs::Client::new(&sdk_config(&self.settings, endpoint, &deploy.region));
        let failed = |what: &str, answer: String| {
            job_failed(format!(
                "{answer} (the ECS neighbour at {endpoint} answered {what} for service {} in cluster {})",
                deploy.service, deploy.cluster
            ))
        };
        let describe = || client.describe_services().cluster(&deploy.cluster).services(&deploy.service).send();
        let services = describe().await.map_err(|e| failed("DescribeServices", super::neighbour::answer(&e)))?;
        let service = services.services().iter().find(|s| s.status() != Some("INACTIVE")).ok_or_else(|| {
            configuration_error(format!(
                "The Amazon ECS service {} does not exist in the cluster {}.",
                deploy.service, deploy.cluster
            ))
        })?;
        let current = service.task_definition().unwrap_or_default().to_string();
        let described = client.describe_task_definition().task_definition(&current).send().await;
        let described = described.map_err(|e| failed("DescribeTaskDefinition", super::neighbour::answer(&e)))?;
        let Some(task) = described.task_definition() else {
            return Err(failed("DescribeTaskDefinition", format!("no task definition {current}")));
        };
        let mut containers = task.container_definitions().to_vec();
        for definition in &definitions {
            let container = containers.iter_mut().find(|c| c.name() == Some(definition.name.as_str()));
            let Some(container) = container else {
                return Err(configuration_error(format!("The AWS ECS container {} does not exist", definition.name)));
            };
            container.image = Some(definition.image_uri.clone());
        }
        let register = client
            .register_task_definition()
            .family(task.family().unwrap_or_default())
            .set_task_role_arn(task.task_role_arn().map(str::to_string))
            .set_execution_role_arn(task.execution_role_arn().map(str::to_string))
            .set_network_mode(task.network_mode().cloned())
            .set_container_definitions(Some(containers))
            .set_volumes(Some(task.volumes().to_vec()))
            .set_placement_constraints(Some(task.placement_constraints().to_vec()))
            .set_requires_compatibilities(Some(task.requires_compatibilities().to_vec()))
            .set_cpu(task.cpu().map(str::to_string))
            .set_memory(task.memory().map(str::to_string))
            .set_pid_mode(task.pid_mode().cloned())
            .set_ipc_mode(task.ipc_mode().cloned())
            .set_proxy_configuration(task.proxy_configuration().cloned())
            .set_ephemeral_storage(task.ephemeral_storage().cloned())
            .set_runtime_platform(task.runtime_platform().cloned());
        let registered =
            register.send().await.map_err(|e| failed("RegisterTaskDefinition", super::neighbour::answer(&e)))?;
        let Some(revision) = registered.task_definition().and_then(|t| t.task_definition_arn()).map(str::to_string)
        else {
            return Err(failed("RegisterTaskDefinition", "no task definition ARN".into()));
        };
        let update = client.update_service().cluster(&deploy.cluster).service(&deploy.service);
        update
            .task_definition(&revision)
            .send()
            .await
            .map_err(|e| failed("UpdateService", super::neighbour::answer(&e)))?;
        let mut wait = Wait::new(engine, work);
        loop {
            let services = describe().await.map_err(|e| failed("DescribeServices", super::neighbour::answer(&e)))?;
            let Some(service) = services.services().first() else {
                return Err(failed("DescribeServices", "the service is gone".into()));
            };
            let deployments = service.deployments();
            if let Some(rolled_back) = deployments.iter().find(|d| {
                d.task_definition() == Some(revision.as_str())
                    && d.rollout_state().map(|s| s.as_str()) == Some("FAILED")
            }) {
                return Err(job_failed(format!(
                    "The ECS deployment {} failed: {}",
                    rolled_back.id().unwrap_or_default(),
                    rolled_back.rollout_state_reason().unwrap_or("no reason was given")
                )));
            }
            let stable = service.task_definition() == Some(revision.as_str())
                && deployments.len() == 1
                && service.running_count() == service.desired_count();
            if stable {
                let deployment = deployments.first().and_then(|d| d.id()).unwrap_or_default().to_string();
                let name = revision.rsplit('/').next().unwrap_or(&revision).to_string();
                return Ok(Success {
                    summary: Some(format!("Deployed task definition {name} to service {}", deploy.service)),
                    external_execution_id: Some(if deployment.is_empty() { revision.clone() } else { deployment }),
                    ..Success::default()
                });
            }
            if !wait.pause().await {
                return Err(abandoned());
            }
        }
    }

    /// The ECR source's image: what the action picks up and the `imageDetail.json` zip of its output artifact.
    pub(super) async fn read_image(
        &self,
        repository: &str,
        tag: &str,
        digest: Option<&str>,
        region: &str,
    ) -> Result<(Success, Vec<u8>), ErrorDetails> {
        let endpoint = self.settings.ecr.as_deref().unwrap_or_default();
        let client = aws_sdk_ecr::Client::new(&sdk_config(&self.settings, endpoint, region));
        let id = match digest {
            Some(digest) => aws_sdk_ecr::types::ImageIdentifier::builder().image_digest(digest).build(),
            None => aws_sdk_ecr::types::ImageIdentifier::builder().image_tag(tag).build(),
        };
        let answer = client.describe_images().repository_name(repository).image_ids(id).send().await;
        let answer = answer.map_err(|e| match e.code() {
            Some("RepositoryNotFoundException" | "ImageNotFoundException") => configuration_error(format!(
                "Could not find the image {} in the Amazon ECR repository {repository}. Make sure that the \
                 repository and the image tag both exist.",
                digest.unwrap_or(tag)
            )),
            _ => job_failed(format!(
                "Could not read the image {repository}:{tag} from the ECR neighbour ({endpoint}): {}",
                super::neighbour::answer(&e)
            )),
        })?;
        let Some(image) = answer.image_details().first() else {
            return Err(configuration_error(format!(
                "Could not find the image {} in the Amazon ECR repository {repository}.",
                digest.unwrap_or(tag)
            )));
        };
        let digest = image.image_digest().unwrap_or_default().to_string();
        let registry = image.registry_id().unwrap_or_default().to_string();
        let host = format!("{registry}.dkr.ecr.{region}.amazonaws.com/{repository}");
        let pushed_millis = image.image_pushed_at().and_then(|t| t.to_millis().ok());
        // `date(1)`'s form, as AWS writes it.
        let pushed = pushed_millis
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%a %b %d %H:%M:%S UTC %Y").to_string());
        let detail = serde_json::json!({
            "ImageSizeInBytes": image.image_size_in_bytes().unwrap_or_default().to_string(),
            "ImageDigest": digest,
            "Version": "1.0",
            "ImagePushedAt": pushed,
            "RegistryId": registry,
            "RepositoryName": repository,
            "ImageURI": format!("{host}@{digest}"),
            "ImageTags": image.image_tags(),
        });
        let variables = [
            ("ImageDigest", digest.clone()),
            ("ImageTag", tag.to_string()),
            ("ImageURI", format!("{host}:{tag}")),
            ("RegistryId", registry),
            ("RepositoryName", repository.to_string()),
        ];
        let picked = Success {
            summary: Some(format!("Image digest: {digest}")),
            external_execution_id: Some(digest.clone()),
            external_execution_url: None,
            output_variables: variables.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            revision: Some(Revision {
                revision_id: digest,
                change: ChangeId::Revision,
                summary: None,
                created: pushed_millis.map(Timestamp::from_millis),
            }),
        };
        Ok((picked, zip_of("imageDetail.json", detail.to_string().as_bytes())))
    }
}
