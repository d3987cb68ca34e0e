//! The simulated providers: the AWS-like results of built-in action types that no real provider works (source
//! revisions, build and deploy summaries, external ids and links, output variables, deploy targets). A simulated
//! action ends by itself after the configured duration on the emulator clock, inside the pure step, so a test that
//! advances the clock sees it done on return; behaviour rules steer the outcome.

use std::collections::BTreeMap;

use super::ActionStart;
use crate::state::Timestamp;
use crate::state::declaration::ActionCategory;
use crate::state::execution::{
    ActionRun, ActionStatus, ChangeId, ConfigView, Revision, RevisionOverride, RevisionType, Success,
};
use crate::state::sources::RepositoryKind;

/// Names the emulator's S3 objects: the version id and ETag of an object derive from these (UUID v5) so that the
/// same object reads the same on every run.
const S3_OBJECTS: uuid::Uuid = uuid::Uuid::from_u128(0x7c1f_52d4_9a0e_4c55_b1f3_2d6e_8a90_c4b7);

/// The version id the emulated S3 gives the current version of an object: 32 letters, digits, dots and
/// underscores like a real one, the same for the same object until a source change replaces it.
pub fn s3_version_id(account: &str, region: &str, bucket: &str, key: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
    let name = format!("{account}/{region}/{bucket}/{key}");
    let first = uuid::Uuid::new_v5(&S3_OBJECTS, name.as_bytes());
    let second = uuid::Uuid::new_v5(&first, b"version");
    first
        .as_bytes()
        .iter()
        .chain(second.as_bytes().iter())
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// The ETag of one version of an object: 32 hex digits, the same for the same version.
pub fn s3_etag(bucket: &str, key: &str, version: &str) -> String {
    uuid::Uuid::new_v5(&S3_OBJECTS, format!("{bucket}/{key}?versionId={version}").as_bytes()).simple().to_string()
}

fn config<'a>(ctx: &'a ActionStart, key: &str) -> Option<&'a str> {
    ctx.configuration.get(key)
}

/// The revision override of this action, if the execution was started with one of the given types.
fn override_for<'a>(ctx: &'a ActionStart, types: &[RevisionType]) -> Option<&'a RevisionOverride> {
    ctx.overrides.iter().find(|o| o.action_name == ctx.action.name && types.contains(&o.revision_type))
}

fn vars(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect()
}

/// The bucket and key of a simulated S3 source action whose object the emulated world says is not there (and that
/// the execution does not pin to a version).
pub fn missing_s3_object(ctx: &ActionStart) -> Option<(String, String)> {
    if ctx.real.s3 || !ctx.action.is_s3_source() {
        return None;
    }
    if override_for(ctx, &[RevisionType::S3ObjectVersionId, RevisionType::ActionRevision]).is_some() {
        return None;
    }
    let key_override = override_for(ctx, &[RevisionType::S3ObjectKey]).map(|o| o.revision_value.clone());
    let bucket = config(ctx, "S3Bucket").unwrap_or_default().to_string();
    let key = key_override.unwrap_or_else(|| config(ctx, "S3ObjectKey").unwrap_or_default().to_string());
    ctx.sources.is_absent(&bucket, &key).then_some((bucket, key))
}

/// The AWS-like result of a simulated action of the built-in types.
pub fn simulate(ctx: &ActionStart) -> Success {
    let mut success = simulate_provider(ctx);
    // A revision given by PutActionRevision is the one the source action picks up, whatever its provider.
    if let Some(given) = override_for(ctx, &[RevisionType::ActionRevision])
        && let Some(revision) = success.revision.as_mut()
    {
        revision.revision_id.clone_from(&given.revision_value);
        revision.change = ChangeId::of(&given.revision_value, given.change_id.clone());
        revision.created = given.created.or(revision.created);
        success.external_execution_id = Some(given.revision_value.clone());
    }
    success
}

fn simulate_provider(ctx: &ActionStart) -> Success {
    let id = &ctx.action.action_type_id;
    let now_text = ctx.now.to_rfc3339();
    match (id.category, id.provider.as_str()) {
        (ActionCategory::Source, "S3") => {
            // The object's current version, unless the execution asked for another object or version.
            let key_override = override_for(ctx, &[RevisionType::S3ObjectKey]).map(|o| o.revision_value.clone());
            let bucket = config(ctx, "S3Bucket").unwrap_or_default().to_string();
            let key = key_override.unwrap_or_else(|| config(ctx, "S3ObjectKey").unwrap_or_default().to_string());
            // Named by the execution, else the object's current version as the last source change left it, else
            // the emulator's stable version of the object.
            let current = ctx.sources.object(&bucket, &key);
            let version = override_for(ctx, &[RevisionType::S3ObjectVersionId]).map_or_else(
                || {
                    current
                        .map_or_else(|| s3_version_id(ctx.account, ctx.region, &bucket, &key), |c| c.version_id.clone())
                },
                |o| o.revision_value.clone(),
            );
            let etag = current
                .filter(|c| c.version_id == version)
                .map_or_else(|| s3_etag(&bucket, &key, &version), |c| c.etag.clone());
            let summary = format!("Amazon S3 version id: {version}");
            Success {
                summary: Some(summary.clone()),
                external_execution_id: Some(version.clone()),
                external_execution_url: None,
                output_variables: vars(&[
                    ("BucketName", bucket),
                    ("ETag", etag),
                    ("ObjectKey", key),
                    ("VersionId", version.clone()),
                ]),
                // AWS shows an S3 revision with its summary only: no change identifier, no creation time.
                revision: Some(Revision {
                    revision_id: version,
                    change: ChangeId::None,
                    summary: Some(summary.into()),
                    created: None,
                }),
            }
        }
        (ActionCategory::Source, "CodeCommit" | "CodeStarSourceConnection" | "GitHub") => {
            let configured = config(ctx, "BranchName").or_else(|| config(ctx, "Branch")).unwrap_or("main").to_string();
            let repository = match id.provider.as_str() {
                "CodeCommit" => {
                    ctx.sources.repository(RepositoryKind::CodeCommit, config(ctx, "RepositoryName").unwrap_or(""))
                }
                "GitHub" => {
                    let name = format!(
                        "{}/{}",
                        config(ctx, "Owner").unwrap_or_default(),
                        config(ctx, "Repo").unwrap_or_default()
                    );
                    ctx.sources.repository(RepositoryKind::Connection, &name)
                }
                _ => ctx
                    .sources
                    .repository(RepositoryKind::Connection, config(ctx, "FullRepositoryId").unwrap_or_default()),
            };
            // Named by the execution, else the branch's head as the last push left it, else a new commit.
            let commit = override_for(ctx, &[RevisionType::CommitId]).map_or_else(
                || repository.and_then(|r| r.head(&configured)).map_or_else(|| ctx.ids.hex(40), str::to_string),
                |o| o.revision_value.clone(),
            );
            let known = repository.and_then(|r| r.commit(&commit));
            // The branch the commit came from (a trigger may start the pipeline for another branch than its own).
            let branch = known.and_then(|c| c.branch.clone()).unwrap_or(configured);
            let message =
                known.map_or_else(|| "Simulated commit by codepipeline-local".to_string(), |c| c.message.clone());
            let author_date = known.and_then(|c| c.author_date.clone()).unwrap_or_else(|| now_text.clone());
            let provider_type = repository.and_then(|r| r.provider.clone()).unwrap_or_else(|| "GitHub".into());
            let mut output = vec![
                ("AuthorDate", author_date),
                ("BranchName", branch),
                ("CommitId", commit.clone()),
                ("CommitMessage", message.clone()),
            ];
            // A commit without a message: the model allows no empty summary or variable, so both are left out [MODEL,
            // issue 28].
            if message.is_empty() {
                output.retain(|(name, _)| *name != "CommitMessage");
            }
            let summary = match id.provider.as_str() {
                "CodeStarSourceConnection" => {
                    output.push(("ConnectionArn", config(ctx, "ConnectionArn").unwrap_or_default().to_string()));
                    output
                        .push(("FullRepositoryName", config(ctx, "FullRepositoryId").unwrap_or_default().to_string()));
                    serde_json::json!({"ProviderType": provider_type, "CommitMessage": message}).to_string()
                }
                "GitHub" => {
                    let repo = format!(
                        "{}/{}",
                        config(ctx, "Owner").unwrap_or_default(),
                        config(ctx, "Repo").unwrap_or_default()
                    );
                    output.push(("CommitterDate", now_text));
                    output.push(("CommitUrl", format!("https://github.com/{repo}/commit/{commit}")));
                    output.push(("RepositoryName", config(ctx, "Repo").unwrap_or_default().to_string()));
                    message.clone()
                }
                _ => {
                    output.push(("CommitterDate", now_text));
                    output.push(("RepositoryName", config(ctx, "RepositoryName").unwrap_or_default().to_string()));
                    message.clone()
                }
            };
            let summary = (!summary.is_empty()).then_some(summary);
            Success {
                summary: summary.clone(),
                external_execution_id: Some(commit.clone()),
                external_execution_url: None,
                output_variables: vars(&output),
                revision: Some(Revision {
                    revision_id: commit.clone(),
                    change: ChangeId::Revision,
                    summary: summary.map(Into::into),
                    created: Some(ctx.now),
                }),
            }
        }
        (ActionCategory::Source, "ECR") => {
            let repository = config(ctx, "RepositoryName").unwrap_or_default().to_string();
            let tag = config(ctx, "ImageTag").unwrap_or("latest").to_string();
            // Named by the execution, else the digest the tag points at after the last push, else a new image.
            let digest = override_for(ctx, &[RevisionType::ImageDigest]).map_or_else(
                || {
                    ctx.sources
                        .image(&repository, &tag)
                        .map_or_else(|| format!("sha256:{}", ctx.ids.hex(64)), str::to_string)
                },
                |o| o.revision_value.clone(),
            );
            let uri = format!("{}.dkr.ecr.{}.amazonaws.com/{repository}:{tag}", ctx.account, ctx.region);
            Success {
                summary: Some(format!("Image digest: {digest}")),
                external_execution_id: Some(digest.clone()),
                external_execution_url: None,
                output_variables: vars(&[
                    ("ImageDigest", digest.clone()),
                    ("ImageTag", tag),
                    ("ImageURI", uri),
                    ("RegistryId", ctx.account.to_string()),
                    ("RepositoryName", repository),
                ]),
                revision: Some(Revision {
                    revision_id: digest.clone(),
                    change: ChangeId::Revision,
                    summary: None,
                    created: Some(ctx.now),
                }),
            }
        }
        (ActionCategory::Source, _) => {
            let revision = ctx.ids.hex(40);
            Success {
                summary: Some("Source revision picked up by codepipeline-local".into()),
                external_execution_id: Some(revision.clone()),
                revision: Some(Revision {
                    revision_id: revision.clone(),
                    change: ChangeId::Revision,
                    summary: None,
                    created: Some(ctx.now),
                }),
                ..Success::default()
            }
        }
        (ActionCategory::Build | ActionCategory::Test, "CodeBuild") => Success {
            external_execution_id: Some(format!(
                "{}:{}",
                config(ctx, "ProjectName").unwrap_or_default(),
                ctx.ids.uuid()
            )),
            ..Success::default()
        },
        (ActionCategory::Compute, "Commands") => Success {
            external_execution_id: Some(format!("codepipeline-commands:{}", ctx.ids.uuid())),
            // The declared output variables, empty unless a behaviour rule gives values.
            output_variables: ctx
                .action
                .output_variables
                .iter()
                .flatten()
                .map(|n| (n.clone(), String::new()))
                .collect(),
            ..Success::default()
        },
        (ActionCategory::Deploy, "S3") => {
            // The bucket alone when there is no object key [NATIVE, issue 28].
            let bucket = config(ctx, "BucketName").unwrap_or_default();
            let external = match config(ctx, "ObjectKey").filter(|k| !k.is_empty()) {
                Some(key) => format!("{bucket}/{key}"),
                None => bucket.to_string(),
            };
            Success {
                summary: Some("Deployment Succeeded".into()),
                external_execution_id: Some(external),
                ..Success::default()
            }
        }
        (ActionCategory::Deploy, "CloudFormation") => {
            let stack = config(ctx, "StackName").unwrap_or_default();
            Success {
                summary: Some(format!("Stack {stack} was updated by codepipeline-local (simulated)")),
                external_execution_id: Some(format!(
                    "arn:aws:cloudformation:{}:{}:stack/{stack}/{}",
                    ctx.region,
                    ctx.account,
                    ctx.ids.uuid()
                )),
                ..Success::default()
            }
        }
        (ActionCategory::Deploy, "CloudFormationStackSet" | "CloudFormationStackInstances") => {
            let operation = ctx.ids.uuid().to_string();
            let stack_set = config(ctx, "StackSetName").unwrap_or_default().to_string();
            // With a CloudFormation neighbour, say that this one did not act on it.
            let summary = if ctx.real.cloudformation {
                "Deployment Succeeded (simulated: codepipeline-local does not deploy StackSets to the CloudFormation \
                 neighbour)"
            } else {
                "Deployment Succeeded"
            };
            Success {
                summary: Some(summary.into()),
                external_execution_id: Some(operation.clone()),
                output_variables: vars(&[
                    ("OperationId", operation),
                    ("StackSetId", format!("{stack_set}:{}", ctx.ids.uuid())),
                ]),
                ..Success::default()
            }
        }
        (ActionCategory::Deploy, "CodeDeploy" | "CodeDeployToECS") => Success {
            summary: Some("Deployment Succeeded".into()),
            external_execution_id: Some(format!("d-{}", ctx.ids.hex(9).to_ascii_uppercase())),
            ..Success::default()
        },
        (ActionCategory::Deploy, _) => Success {
            summary: Some("Deployment Succeeded".into()),
            external_execution_id: Some(ctx.ids.uuid().to_string()),
            ..Success::default()
        },
        (ActionCategory::Invoke, "Lambda") => {
            Success { external_execution_id: config(ctx, "FunctionName").map(str::to_string), ..Success::default() }
        }
        (ActionCategory::Invoke, "StepFunctions") => {
            let machine = config(ctx, "StateMachineArn").unwrap_or_default().to_string();
            let name = format!("{}{}", config(ctx, "ExecutionNamePrefix").unwrap_or_default(), ctx.action_execution_id);
            let execution = machine.replacen(":stateMachine:", ":execution:", 1) + ":" + &name;
            Success {
                summary: Some("Execution Succeeded".into()),
                external_execution_id: Some(execution.clone()),
                output_variables: vars(&[("StateMachineArn", machine), ("ExecutionArn", execution)]),
                ..Success::default()
            }
        }
        (ActionCategory::Invoke, "CodePipeline") => Success {
            summary: Some(format!("Started pipeline {}", config(ctx, "PipelineName").unwrap_or_default())),
            external_execution_id: Some(ctx.ids.uuid().to_string()),
            ..Success::default()
        },
        (ActionCategory::Approval, _) => Success {
            summary: Some("Approved by codepipeline-local (behaviour rule)".into()),
            external_execution_id: Some(ctx.action_execution_id.to_string()),
            ..Success::default()
        },
        _ => Success { external_execution_id: Some(ctx.ids.uuid().to_string()), ..Success::default() },
    }
}

// --- Deploy targets ---------------------------------------------------------------------------------------------

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetEvent {
    pub name: &'static str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployTarget {
    pub target_id: String,
    pub target_type: &'static str,
    pub status: &'static str,
    pub start_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    pub events: Vec<TargetEvent>,
}

/// The simulated targets of a deploy action run: EC2 instances for CodeDeploy and EC2 deploys, an ECS service for
/// ECS and CodeDeployToECS, each with its provider's lifecycle events, spread over the run's time. They are derived
/// from the run (ids from its id), so they cost nothing to keep.
pub fn deploy_targets(provider: &str, run: &ActionRun, config: ConfigView, now: Timestamp) -> Vec<DeployTarget> {
    let (target_type, events, count): (&'static str, &[&'static str], usize) = match provider {
        "CodeDeploy" | "EC2" => (
            "Instance",
            &[
                "ApplicationStop",
                "DownloadBundle",
                "BeforeInstall",
                "Install",
                "AfterInstall",
                "ApplicationStart",
                "ValidateService",
            ],
            2,
        ),
        "CodeDeployToECS" => (
            "ECSTarget",
            &[
                "BeforeInstall",
                "Install",
                "AfterInstall",
                "AllowTestTraffic",
                "AfterAllowTestTraffic",
                "BeforeAllowTraffic",
                "AllowTraffic",
                "AfterAllowTraffic",
            ],
            1,
        ),
        "ECS" => ("ECSTarget", &["Deploy"], 1),
        _ => return Vec::new(),
    };
    let start = run.start_time;
    let end = run.last_status_change.filter(|_| run.status != ActionStatus::InProgress);
    let span = end.unwrap_or(now).millis().saturating_sub(start.millis()).max(1);
    let step = span / i64::try_from(events.len()).unwrap_or(1).max(1);
    // While running, events up to the middle have finished; a failure stops at the last event.
    let done = match run.status {
        ActionStatus::InProgress => events.len() / 2,
        _ => events.len(),
    };
    let bytes = run.id.as_bytes();
    (0..count)
        .map(|n| {
            let target_id = match target_type {
                "Instance" => {
                    let hex: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
                    format!("i-{hex}{n}")
                }
                _ => format!(
                    "{}:{}",
                    config.get("ClusterName").unwrap_or("default"),
                    config.get("ServiceName").unwrap_or("service")
                ),
            };
            let events = events
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let i64_index = i64::try_from(i).unwrap_or(0);
                    let (status, started, ended) = if i < done {
                        let failed_here = run.status == ActionStatus::Failed && i + 1 == events.len();
                        let status = if failed_here { "Failed" } else { "Succeeded" };
                        let (from, to) = (step * i64_index, step * (i64_index + 1));
                        (status, Some(start.plus_millis(from)), Some(start.plus_millis(to)))
                    } else if i == done && run.status == ActionStatus::InProgress {
                        ("InProgress", Some(start.plus_millis(step * i64_index)), None)
                    } else if run.status == ActionStatus::Abandoned {
                        ("Skipped", None, None)
                    } else {
                        ("Pending", None, None)
                    };
                    let message = run.error().map_or("The deployment failed", |e| e.message.as_str());
                    let context = (status == "Failed").then(|| serde_json::json!({ "message": message }));
                    TargetEvent { name, status, start_time: started, end_time: ended, context }
                })
                .collect();
            let status = match run.status {
                ActionStatus::Succeeded => "Succeeded",
                ActionStatus::Failed => "Failed",
                ActionStatus::Abandoned => "Skipped",
                ActionStatus::InProgress => "InProgress",
            };
            DeployTarget { target_id, target_type, status, start_time: start, end_time: end, events }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::providers::start;
    use crate::state::behaviors::{BehaviorOutcome, BehaviorRule};
    use crate::state::declaration::{ActionDeclaration, ActionOwner, ActionTypeId};
    use crate::state::execution::{FailureType, Outcome, Pending};

    fn action(category: ActionCategory, provider: &str) -> ActionDeclaration {
        serde_json::from_value(serde_json::json!({
            "name": "A",
            "actionTypeId": {"category": category.as_str(), "owner": "AWS", "provider": provider, "version": "1"}
        }))
        .expect("action")
    }

    /// `f` of the start of `action` configured so, as the step would make it.
    fn with_start<R>(
        action: &ActionDeclaration,
        configuration: &BTreeMap<String, String>,
        behavior: Option<&BehaviorRule>,
        real: super::super::artifacts::Real,
        f: impl FnOnce(&ActionStart) -> R,
    ) -> R {
        f(&ActionStart {
            action,
            configuration: ConfigView::new(Some(configuration), None),
            account: "123456789012",
            region: "us-east-1",
            pipeline: "p",
            execution_id: "e",
            action_execution_id: "a",
            now: Timestamp::from_millis(1_000),
            duration_ms: 5,
            overrides: &[],
            behavior,
            job_worker: false,
            ids: &crate::engine::ids::Ids::sequence(0),
            sources: &crate::state::sources::Sources::default(),
            real,
        })
    }

    fn run(
        action: &ActionDeclaration,
        configuration: &BTreeMap<String, String>,
        behavior: Option<&BehaviorRule>,
    ) -> Pending {
        with_start(action, configuration, behavior, super::super::artifacts::Real::default(), start)
    }

    #[test]
    fn stack_sets_say_they_are_simulated_when_cloudformation_acts_for_real() {
        let action = action(ActionCategory::Deploy, "CloudFormationStackSet");
        let configuration = BTreeMap::from([("StackSetName".to_string(), "set".to_string())]);
        let summary =
            |real| with_start(&action, &configuration, None, real, |ctx| simulate(ctx).summary.unwrap_or_default());
        assert_eq!(summary(super::super::artifacts::Real::default()), "Deployment Succeeded");
        let real = super::super::artifacts::Real { s3: true, cloudformation: true, ..Default::default() };
        assert!(summary(real).contains("simulated: codepipeline-local does not deploy StackSets"));
    }

    #[test]
    fn s3_source_reports_a_version() {
        let action = action(ActionCategory::Source, "S3");
        let config: BTreeMap<_, _> =
            [("S3Bucket".to_string(), "b".to_string()), ("S3ObjectKey".into(), "k.zip".into())].into();
        let Pending::At(at, outcome) = run(&action, &config, None) else { panic!("completes") };
        let Outcome::Succeed(success) = *outcome else { panic!("succeeds") };
        assert_eq!(at.millis(), 1_005);
        let version = success.output_variables["VersionId"].clone();
        assert_eq!(success.summary, Some(format!("Amazon S3 version id: {version}")));
        assert_eq!(success.output_variables["BucketName"], "b");
        assert_eq!(success.revision.map(|r| r.revision_id), Some(version));
    }

    #[test]
    fn approvals_wait_with_their_timeout() {
        let mut approval = action(ActionCategory::Approval, "Manual");
        approval.timeout_in_minutes = Some(10);
        let Pending::External { timeout, .. } = run(&approval, &BTreeMap::new(), None) else { panic!("waits") };
        assert_eq!(timeout.map(|t| t.millis()), Some(1_000 + 10 * 60_000));
    }

    #[test]
    fn behaviours_override_providers() {
        let build = action(ActionCategory::Build, "CodeBuild");
        let fail = BehaviorRule {
            outcome: BehaviorOutcome::Fail,
            error_code: Some(FailureType::ConfigurationError),
            delay_ms: Some(50),
            ..Default::default()
        };
        let Pending::At(at, outcome) = run(&build, &BTreeMap::new(), Some(&fail)) else { panic!("fails") };
        let Outcome::Fail(error) = *outcome else { panic!("fails") };
        assert_eq!((at.millis(), error.code.as_str()), (1_050, "ConfigurationError"));
        let hold = BehaviorRule { outcome: BehaviorOutcome::Hold, ..Default::default() };
        assert!(matches!(run(&build, &BTreeMap::new(), Some(&hold)), Pending::External { .. }));
        let _ = ActionTypeId {
            category: ActionCategory::Build,
            owner: ActionOwner::Aws,
            provider: "x".into(),
            version: "1".into(),
        };
    }
}
