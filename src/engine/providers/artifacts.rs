//! Real artifacts: with an S3 neighbour, the output artifacts of the actions the emulator simulates are real zip
//! objects in the pipeline's artifact store, at the keys the API shows (`<pipeline, 20>/<artifact, 10>/<7 random>`).
//!
//! A simulated action that succeeds waits in [`Pending::Storing`] until its outputs are written: the step leaves the
//! run in the runtime's `undelivered_artifacts`, the engine renders it into an [`ArtifactWork`] handed to the
//! [`ArtifactWriter`] once the change is saved, and the writer reports back with [`StoreArtifacts`]. Then the action
//! ends as simulated (at its due time, or at once if that has passed), or fails with what S3 answered. After a
//! restart, runs still storing are handed to the writer again (a write is idempotent: the same bytes at the same key).
//!
//! What an output holds: an S3 source action reads its object in the neighbour (the current version, or the one the
//! execution names), which becomes its revision and variables, and copies that version; another action with input
//! artifacts passes its first input on (a server-side copy), as a build that changes nothing would; another source
//! action (no inputs) writes a zip with one file, `codepipeline-local-revision.json`, describing the simulated
//! revision it picked up. Job workers and Lambda functions write their own outputs, as on AWS, with job data's
//! `artifactCredentials`.
//!
//! [`Pending::Storing`]: crate::state::execution::Pending::Storing

use std::sync::Arc;

use aws_sdk_s3::error::ProvideErrorMetadata;
use uuid::Uuid;

use super::Worker;
use super::neighbour::{chain, sdk_config, zip_of};
use crate::engine::Engine;
use crate::engine::Write;
use crate::engine::commands::artifacts::StoreArtifacts;
use crate::state::declaration::{ActionCategory, ActionOwner};
use crate::state::execution::{
    ArtifactInstance, ChangeId, ErrorDetails, ExecutionIndex, FailureType, Outcome, Pending, Revision, RevisionType,
    RunIndex, Success,
};
use crate::state::{PipelineRecord, Scope};

/// Where artifacts are written, and the keys the writes are signed with.
#[derive(Debug, Clone)]
pub struct ArtifactSettings {
    /// Base URL of the S3 API, without a trailing slash (e.g. `http://localhost:5000`); unused with `local`.
    pub endpoint: String,
    /// Without an S3 neighbour (builds or git sources asked for real artifacts): the directory of the emulator's
    /// own artifact store, `<dir>/<bucket>/<key>`.
    pub local: Option<std::path::PathBuf>,
    pub credentials: super::Credentials,
    /// How long one attempt may take.
    pub timeout: std::time::Duration,
    /// The CloudFormation neighbour, if CloudFormation deploys act for real.
    pub cloudformation: Option<String>,
    /// The ECS neighbour, if ECS deploys act for real.
    pub ecs: Option<String>,
    /// The ECR neighbour, if ECR sources read real images.
    pub ecr: Option<String>,
    /// How often polling S3 sources look at their object, on the emulator clock.
    pub poll_interval: std::time::Duration,
    /// The CodeBuild neighbour, whose projects give builds their buildspec, variables and timeout.
    pub codebuild: Option<String>,
    /// The SSM neighbour, for builds' Parameter Store variables.
    pub ssm: Option<String>,
    /// The Secrets Manager neighbour, for builds' secret variables.
    pub secrets_manager: Option<String>,
    /// The CloudWatch Logs neighbour, where build logs go.
    pub logs: Option<String>,
    /// What TLS neighbours are trusted.
    pub trust: crate::engine::outbound::Trust,
    /// Whether CodeBuild and `Commands` actions run their commands on this host (`--run-builds`).
    pub run_builds: bool,
    /// Whether a build's working directory is kept after it ends (`--keep-build-dirs`).
    pub keep_build_dirs: bool,
    /// Whether CodeBuild actions are started on the CodeBuild neighbour, which runs them (`--delegate-builds`).
    pub delegate_builds: bool,
    /// Local git repositories source actions read, by the repository name they give (`--git-repo NAME=PATH`).
    pub git_repos: GitRepos,
}

/// Which actions act on neighbours (all of them write their outputs to the S3 neighbour's artifact store).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Real {
    /// Output artifacts are real zips (in S3, or in the emulator's own store).
    pub artifacts: bool,
    /// The artifact store is an S3 neighbour; S3 sources and deploys act on S3.
    pub s3: bool,
    /// CloudFormation deploys act on the CloudFormation neighbour.
    pub cloudformation: bool,
    /// ECS deploys act on the ECS neighbour.
    pub ecs: bool,
    /// ECR sources read the ECR neighbour.
    pub ecr: bool,
    /// CodeBuild and `Commands` actions run their commands.
    pub builds: bool,
    /// CodeBuild actions are started on the CodeBuild neighbour.
    pub delegated: bool,
}

impl Real {
    /// What `settings` make real: nothing without an artifact store, since every real action reads or writes
    /// artifacts; with the emulator's own store, builds only (the neighbours' actions need S3).
    pub fn of(settings: Option<&ArtifactSettings>) -> Real {
        settings.map_or_else(Real::default, |s| {
            let s3 = s.local.is_none();
            Real {
                artifacts: true,
                s3,
                cloudformation: s3 && s.cloudformation.is_some(),
                ecs: s3 && s.ecs.is_some(),
                ecr: s3 && s.ecr.is_some(),
                builds: s.run_builds,
                delegated: s3 && s.delegate_builds && s.codebuild.is_some(),
            }
        })
    }
}

/// The output artifacts of one action run to write.
#[derive(Debug, Clone)]
pub struct ArtifactWork {
    pub scope: Scope,
    pub pipeline: String,
    pub execution_id: Uuid,
    pub run_id: Uuid,
    /// `(bucket, key)` of each output.
    pub outputs: Vec<(String, String)>,
    /// What each output holds.
    pub content: Content,
}

/// What an output artifact holds.
#[derive(Debug, Clone)]
pub enum Content {
    /// A copy of this object (the action's first input artifact; an S3 source's object version).
    Copy { bucket: String, key: String, version: Option<String> },
    /// A zip made here.
    Zip(Arc<Vec<u8>>),
    /// An S3 source action's object in the neighbour: its current version (or the one the execution names), which
    /// also decides the action's revision and variables.
    S3Source { bucket: String, key: String, version: Option<String> },
    /// An S3 deploy action: its input artifact to put in the target bucket, as its configuration says.
    S3Deploy(Box<S3Deploy>),
    /// A CloudFormation deploy action, on the CloudFormation neighbour.
    CloudFormation(Box<super::cloudformation::Deploy>),
    /// An ECS deploy action, on the ECS neighbour.
    EcsDeploy(Box<super::ecs::Deploy>),
    /// A source action reading a local git repository.
    GitSource(Box<super::git::GitSource>),
    /// A CodeBuild action started on the CodeBuild neighbour.
    DelegatedBuild(Box<super::builds::Build>),
    /// A CodeBuild or `Commands` action whose commands run here.
    Build(Box<super::builds::Build>),
    /// An ECR source action: the image its tag (or the execution's digest) names in the ECR neighbour, as
    /// `imageDetail.json`.
    EcrSource { repository: String, tag: String, digest: Option<String>, region: String },
}

/// What an S3 deploy does (its resolved configuration).
#[derive(Debug, Clone)]
pub struct S3Deploy {
    /// The input artifact.
    pub input: Arc<ArtifactInstance>,
    pub bucket: String,
    pub extract: String,
    pub object_key: Option<String>,
    pub canned_acl: Option<String>,
    pub cache_control: Option<String>,
    pub kms_key: Option<String>,
}

/// Whether the action does real work itself, outputs or not (a deploy that acts for real, a build that runs).
pub fn deploys(real: Real, id: &crate::state::declaration::ActionTypeId) -> bool {
    id.owner == ActionOwner::Aws
        && match (id.category, id.provider.as_str()) {
            (ActionCategory::Deploy, "S3") => real.s3,
            (ActionCategory::Deploy, "CloudFormation") => real.cloudformation,
            (ActionCategory::Deploy, "ECS") => real.ecs,
            (ActionCategory::Build | ActionCategory::Test, "CodeBuild") => real.builds || real.delegated,
            (ActionCategory::Compute, "Commands") => real.builds,
            _ => false,
        }
}

/// Whether `declared` is an AWS action of `provider`, whatever its category.
fn provider_any(declared: Option<&crate::state::declaration::ActionDeclaration>, provider: &str) -> bool {
    declared.is_some_and(|a| a.action_type_id.owner == ActionOwner::Aws && a.action_type_id.provider == provider)
}

fn is(id: &crate::state::declaration::ActionTypeId, category: ActionCategory, provider: &str) -> bool {
    id.category == category && id.owner == ActionOwner::Aws && id.provider == provider
}

/// Whether simulated work ending with `outcome` acts on the S3 neighbour before it ends (waiting in
/// `Pending::Storing`): with real artifacts, a success that has outputs to write or that deploys to S3. One rule for
/// an action whose simulated time is up and for a held one completed through the control endpoint.
pub fn stores_first(
    real: Real,
    id: &crate::state::declaration::ActionTypeId,
    has_outputs: bool,
    outcome: &Outcome,
) -> bool {
    real.artifacts && (has_outputs || deploys(real, id)) && matches!(outcome, Outcome::Succeed(_))
}

/// Takes the runs whose outputs are to be written (left by the step since the last call) and makes their work.
pub fn take_work(
    scope: &Scope,
    pipeline: &str,
    record: &mut PipelineRecord,
    real: Real,
    git_repos: &GitRepos,
) -> Vec<ArtifactWork> {
    let runs = std::mem::take(&mut record.runtime.w().undelivered_artifacts);
    runs.into_iter()
        .filter_map(|(execution, run)| work_for(scope, pipeline, record, (execution, run), real, git_repos))
        .collect()
}

/// Local git repositories by the name source actions give them.
pub type GitRepos = std::collections::BTreeMap<String, std::path::PathBuf>;

/// Hands every run still storing to the writer again (after a restart, an import, or a failed save). After a
/// restart (`restarted`), a build that was running cannot resume, as on CodeBuild: those runs are returned, for the
/// engine to fail them, and not handed out.
pub fn redeliver(record: &mut PipelineRecord, real: Real, restarted: bool) -> Vec<(ExecutionIndex, RunIndex)> {
    let storing: Vec<(ExecutionIndex, RunIndex, bool)> = record
        .runtime
        .active
        .iter()
        .flat_map(|&e| {
            let execution = &record.runtime.executions[e];
            execution
                .actions
                .iter()
                .enumerate()
                .filter(|(_, run)| matches!(run.pending.as_deref(), Some(Pending::Storing { .. })))
                .map(move |(r, run)| {
                    let declared =
                        execution.declaration.stages.get(run.stage()).and_then(|s| s.actions.get(run.action()));
                    let build = real.builds && declared.is_some_and(super::builds::runs);
                    (e, RunIndex::at(r), build)
                })
        })
        .collect();
    let lost = storing.iter().filter(|(_, _, build)| *build && restarted).map(|(e, r, _)| (*e, *r)).collect();
    let again = storing.into_iter().filter(|(_, _, build)| !(*build && restarted)).map(|(e, r, _)| (e, r));
    record.runtime.w().undelivered_artifacts.extend(again);
    lost
}

fn work_for(
    scope: &Scope,
    pipeline: &str,
    record: &PipelineRecord,
    (execution, run): (ExecutionIndex, RunIndex),
    real: Real,
    git_repos: &GitRepos,
) -> Option<ArtifactWork> {
    let execution = record.runtime.executions.get(execution.index())?;
    let run = execution.actions.get(run.index())?;
    let Some(Pending::Storing { outcome, .. }) = run.pending.as_deref() else { return None };
    let declared = execution.declaration.stages.get(run.stage()).and_then(|s| s.actions.get(run.action()));
    // A source action of a rollback reuses its target's artifact: it reads its source, and writes nothing.
    let reused = execution.execution_type == crate::state::execution::ExecutionType::Rollback
        && declared.is_some_and(|a| a.action_type_id.category == ActionCategory::Source);
    let outputs = if reused {
        Vec::new()
    } else {
        run.output_artifacts.iter().map(|a| (a.bucket.to_string(), a.key.to_string())).collect()
    };
    let provider = |category, name| declared.is_some_and(|a| is(&a.action_type_id, category, name));
    let is_s3_source = real.s3 && provider(ActionCategory::Source, "S3");
    let is_s3_deploy = real.s3 && provider(ActionCategory::Deploy, "S3");
    let configuration = run.configuration(declared).to_map();
    let value = |key: &str| configuration.get(key).cloned();
    let region = run.region().unwrap_or(&scope.region).to_string();
    // The revision the execution names for this action, of `kind`.
    let named = |kind: RevisionType| {
        declared.and_then(|a| {
            execution
                .overrides
                .iter()
                .find(|o| o.action_name == a.name && o.revision_type == kind)
                .map(|o| o.revision_value.clone())
        })
    };
    // A source action whose repository is mapped to a local git repository.
    let git_repo = declared.filter(|a| a.action_type_id.category == ActionCategory::Source).and_then(|a| {
        let name = match a.action_type_id.provider.as_str() {
            "CodeStarSourceConnection" => value("FullRepositoryId")?,
            "CodeCommit" => value("RepositoryName")?,
            "GitHub" => format!("{}/{}", value("Owner")?, value("Repo")?),
            _ => return None,
        };
        git_repos.get(&name).map(|path| (name, path.clone()))
    });
    let content = match (run.input_artifacts.first(), &**outcome) {
        (_, Outcome::Succeed(_)) if real.cloudformation && provider(ActionCategory::Deploy, "CloudFormation") => {
            Content::CloudFormation(Box::new(super::cloudformation::Deploy::new(&configuration, run, region)))
        }
        (_, Outcome::Succeed(success)) if git_repo.is_some() => {
            let (name, path) = git_repo?;
            let branch = value("BranchName").or_else(|| value("Branch")).unwrap_or_else(|| "main".into());
            Content::GitSource(Box::new(super::git::GitSource {
                name,
                path,
                branch,
                commit: named(RevisionType::CommitId),
                simulated: Arc::new(success.clone()),
                provider: declared?.action_type_id.provider.clone(),
            }))
        }
        (_, Outcome::Succeed(_)) if real.delegated && provider_any(declared, "CodeBuild") => {
            let declared = declared?;
            let build = super::builds::Build::new(declared, &configuration, run, execution, (scope, pipeline), region);
            Content::DelegatedBuild(Box::new(build))
        }
        (_, Outcome::Succeed(_)) if real.builds && declared.is_some_and(super::builds::runs) => {
            let declared = declared?;
            let build = super::builds::Build::new(declared, &configuration, run, execution, (scope, pipeline), region);
            Content::Build(Box::new(build))
        }
        (_, Outcome::Succeed(_)) if real.ecs && provider(ActionCategory::Deploy, "ECS") => {
            Content::EcsDeploy(Box::new(super::ecs::Deploy::new(&configuration, run, region)))
        }
        (_, Outcome::Succeed(_)) if real.ecr && provider(ActionCategory::Source, "ECR") => Content::EcrSource {
            repository: value("RepositoryName").unwrap_or_default(),
            tag: value("ImageTag").filter(|t| !t.is_empty()).unwrap_or_else(|| "latest".into()),
            digest: named(RevisionType::ImageDigest),
            region,
        },
        (Some(input), Outcome::Succeed(_)) if is_s3_deploy => Content::S3Deploy(Box::new(S3Deploy {
            input: Arc::clone(input),
            bucket: value("BucketName").unwrap_or_default(),
            extract: value("Extract").unwrap_or_default(),
            object_key: value("ObjectKey"),
            canned_acl: value("CannedACL"),
            cache_control: value("CacheControl"),
            kms_key: value("KMSEncryptionKeyARN"),
        })),
        (_, Outcome::Succeed(success)) if is_s3_source => {
            // The simulation already applied the execution's overrides to the bucket and key; a version is named
            // only when the execution names one.
            let variable = |name: &str| success.output_variables.get(name).cloned().unwrap_or_default();
            Content::S3Source {
                bucket: variable("BucketName"),
                key: variable("ObjectKey"),
                version: named(RevisionType::S3ObjectVersionId),
            }
        }
        (Some(input), _) => {
            Content::Copy { bucket: input.bucket.to_string(), key: input.key.to_string(), version: None }
        }
        (None, _) => {
            let (stage, action) = execution.names(run);
            let revision = match &**outcome {
                Outcome::Succeed(success) => serde_json::to_value(&success.revision).unwrap_or_default(),
                Outcome::Fail(_) => serde_json::Value::Null,
            };
            let described = serde_json::json!({
                "generator": "codepipeline-local",
                "note": "A simulated source action picked up this revision; no source was read.",
                "pipeline": pipeline,
                "pipelineExecutionId": execution.id,
                "stage": stage,
                "action": action,
                "revision": revision,
            });
            Content::Zip(Arc::new(zip_of("codepipeline-local-revision.json", described.to_string().as_bytes())))
        }
    };
    Some(ArtifactWork {
        scope: scope.clone(),
        pipeline: pipeline.to_string(),
        execution_id: execution.id,
        run_id: run.id,
        outputs,
        content,
    })
}

/// The writer: writes each run's outputs, concurrently with the others, and reports back; deploys to the
/// neighbours that act for real.
pub struct ArtifactWriter {
    pub(super) client: aws_sdk_s3::Client,
    pub(super) endpoint: String,
    pub(super) settings: ArtifactSettings,
    /// The emulator's own artifact store, without an S3 neighbour.
    local: Option<LocalStore>,
    /// Each project's last build number.
    build_numbers: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// The action runs whose builds are running.
    running: Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>,
    /// The logs of the latest builds, by action execution id, with their account (at most [`KEPT_BUILD_LOGS`]).
    logs: std::sync::Mutex<std::collections::VecDeque<(Uuid, String, super::builds::log::BuildLog)>>,
}

/// How many builds' logs are kept (in memory; each at most `builds::log::MAX_LOG_BYTES`).
pub const KEPT_BUILD_LOGS: usize = 100;

/// The emulator's own artifact store: `<root>/<bucket>/<key>` files.
struct LocalStore(std::path::PathBuf);

impl LocalStore {
    /// The file of an object; a key that would leave its bucket's directory has none.
    fn path(&self, bucket: &str, key: &str) -> Result<std::path::PathBuf, String> {
        let safe = |part: &str| !part.is_empty() && part.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
        if !safe(bucket) || bucket.contains('/') || !safe(key) {
            return Err(format!("\"{bucket}/{key}\" is not an object name the local artifact store keeps"));
        }
        Ok(self.0.join(bucket).join(key))
    }

    async fn read(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        let path = self.path(bucket, key)?;
        tokio::fs::read(&path).await.map_err(|e| format!("{}: {e}", path.display()))
    }

    async fn write(&self, bucket: &str, key: &str, bytes: &[u8]) -> Result<(), String> {
        let path = self.path(bucket, key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        tokio::fs::write(&path, bytes).await.map_err(|e| format!("{}: {e}", path.display()))
    }

    async fn copy_in(&self, from: &std::path::Path, bucket: &str, key: &str) -> Result<(), String> {
        let path = self.path(bucket, key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        tokio::fs::copy(from, &path).await.map(|_| ()).map_err(|e| format!("{}: {e}", path.display()))
    }

    async fn copy(&self, from_bucket: &str, from_key: &str, bucket: &str, key: &str) -> Result<(), String> {
        let from = self.path(from_bucket, from_key)?;
        self.copy_in(&from, bucket, key).await
    }
}

/// A build that is running: its run id is in the writer's set until it ends.
struct Running {
    set: Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>,
    run: Uuid,
}

impl Running {
    /// The build of `run`, unless it is running already.
    fn start(set: &Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>, run: Uuid) -> Option<Running> {
        let inserted = set.lock().unwrap_or_else(|p| p.into_inner()).insert(run);
        inserted.then(|| Running { set: Arc::clone(set), run })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.run);
    }
}

impl std::fmt::Debug for ArtifactWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactWriter").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl ArtifactWriter {
    /// A writer calling the S3 API that `settings` names (path-style, as local S3 endpoints need).
    pub fn new(settings: &ArtifactSettings, region: &str) -> ArtifactWriter {
        let config =
            aws_sdk_s3::config::Builder::from(&sdk_config(settings, &settings.endpoint, region)).force_path_style(true);
        ArtifactWriter {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            endpoint: settings.endpoint.clone(),
            settings: settings.clone(),
            local: settings.local.clone().map(LocalStore),
            build_numbers: std::sync::Mutex::default(),
            running: Arc::default(),
            logs: std::sync::Mutex::default(),
        }
    }

    /// Its S3 client (for the S3 source poller).
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        self.client.clone()
    }

    /// Reads an artifact's object whole.
    pub async fn read_artifact(&self, name: &str, bucket: &str, key: &str) -> Result<Vec<u8>, ErrorDetails> {
        if let Some(local) = &self.local {
            return local.read(bucket, key).await.map_err(|why| ErrorDetails {
                code: FailureType::JobFailed,
                message: format!("Could not read the input artifact {name} (\"{bucket}/{key}\"): {why}"),
            });
        }
        let failed = |why: String| ErrorDetails {
            code: FailureType::JobFailed,
            message: format!(
                "Could not read the input artifact {name} (\"{bucket}/{key}\") from the S3 neighbour ({}): {why}",
                self.endpoint
            ),
        };
        let object = self.client.get_object().bucket(bucket).key(key).send().await;
        let object = object.map_err(|e| failed(super::neighbour::answer(&e)))?;
        Ok(object.body.collect().await.map_err(|e| failed(e.to_string()))?.into_bytes().to_vec())
    }

    /// A new log for the build of action run `run` in `account`, kept with the latest builds' logs.
    pub(super) fn new_log(&self, run: Uuid, account: &str) -> super::builds::log::BuildLog {
        let log = super::builds::log::BuildLog::default();
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        logs.retain(|(id, _, _)| *id != run);
        if logs.len() >= KEPT_BUILD_LOGS {
            logs.pop_front();
        }
        logs.push_back((run, account.to_string(), log.clone()));
        log
    }

    /// The log of the build of action run `run` and its account, if it is kept.
    pub fn build_log(&self, run: Uuid) -> Option<(String, super::builds::log::BuildLog)> {
        let logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        logs.iter().rev().find(|(id, _, _)| *id == run).map(|(_, account, log)| (account.clone(), log.clone()))
    }

    /// The next build number of a project (CODEBUILD_BUILD_NUMBER), counted since the server started.
    pub(super) fn next_build_number(&self, project: &str) -> u64 {
        let mut numbers = self.build_numbers.lock().unwrap_or_else(|p| p.into_inner());
        let number = numbers.entry(project.to_string()).or_insert(0);
        *number += 1;
        *number
    }

    /// Puts the file at `path` (a zip) at `bucket`/`key`.
    pub(super) async fn put_file(&self, bucket: &str, key: &str, path: &std::path::Path) -> Result<(), ErrorDetails> {
        if let Some(local) = &self.local {
            return local.copy_in(path, bucket, key).await.map_err(|why| ErrorDetails {
                code: FailureType::JobFailed,
                message: format!("Could not write the output artifact \"{bucket}/{key}\": {why}"),
            });
        }
        let body = aws_sdk_s3::primitives::ByteStream::from_path(path).await.map_err(|e| ErrorDetails {
            code: FailureType::JobFailed,
            message: format!("could not read {}: {e}", path.display()),
        })?;
        let put = self.client.put_object().bucket(bucket).key(key).content_type("application/zip").body(body);
        put.send().await.map(|_| ()).map_err(|e| ErrorDetails {
            code: FailureType::JobFailed,
            message: format!(
                "Could not write the output artifact \"{bucket}/{key}\" to the S3 neighbour ({}): {}",
                self.endpoint,
                super::neighbour::answer(&e)
            ),
        })
    }

    /// Puts a zip made here at each output.
    pub(super) async fn put_zip(&self, outputs: &[(String, String)], bytes: Vec<u8>) -> Result<(), ErrorDetails> {
        let content = Content::Zip(Arc::new(bytes));
        self.write_outputs(outputs, &content).await
    }

    /// Does the work; for an action that picks up a revision (an S3 or ECR source) or deploys, answers what came
    /// of it.
    async fn write(&self, engine: &Engine, work: &ArtifactWork) -> Result<Option<Success>, ErrorDetails> {
        let (content, picked) = match &work.content {
            Content::S3Source { bucket, key, version } => {
                let (picked, copy) = self.read_source(bucket, key, version.as_deref()).await?;
                (copy, Some(picked))
            }
            Content::S3Deploy(deploy) => return self.deploy(deploy).await.map(Some),
            Content::CloudFormation(deploy) => return self.cloudformation(engine, work, deploy).await.map(Some),
            Content::EcsDeploy(deploy) => return self.ecs(engine, work, deploy).await.map(Some),
            Content::Build(build) => return self.build(engine, work, build).await.map(Some),
            Content::DelegatedBuild(build) => return self.delegate(engine, work, build).await.map(Some),
            Content::GitSource(source) => {
                let (picked, zip) = self.read_git(source).await?;
                (Content::Zip(Arc::new(zip)), Some(picked))
            }
            Content::EcrSource { repository, tag, digest, region } => {
                let (picked, zip) = self.read_image(repository, tag, digest.as_deref(), region).await?;
                (Content::Zip(Arc::new(zip)), Some(picked))
            }
            other => (other.clone(), None),
        };
        self.write_outputs(&work.outputs, &content).await?;
        Ok(picked)
    }

    /// Writes `content` at each output.
    async fn write_outputs(&self, outputs: &[(String, String)], content: &Content) -> Result<(), ErrorDetails> {
        if let Some(local) = &self.local {
            for (bucket, key) in outputs {
                let written = match content {
                    Content::Copy { bucket: from_bucket, key: from_key, .. } => {
                        local.copy(from_bucket, from_key, bucket, key).await
                    }
                    Content::Zip(bytes) => local.write(bucket, key, bytes).await,
                    _ => Ok(()),
                };
                written.map_err(|why| ErrorDetails {
                    code: FailureType::JobFailed,
                    message: format!("Could not write the output artifact \"{bucket}/{key}\": {why}"),
                })?;
            }
            return Ok(());
        }
        for (bucket, key) in outputs {
            let written = match content {
                Content::Copy { bucket: from_bucket, key: from_key, version } => self
                    .client
                    .copy_object()
                    .bucket(bucket)
                    .key(key)
                    .copy_source(copy_source(from_bucket, from_key, version.as_deref()))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| (e.code().map(str::to_string), e.message().map(str::to_string), chain(&e))),
                Content::Zip(bytes) => self
                    .client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .content_type("application/zip")
                    .body(aws_sdk_s3::primitives::ByteStream::from(bytes.to_vec()))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| (e.code().map(str::to_string), e.message().map(str::to_string), chain(&e))),
                _ => Ok(()),
            };
            if let Err((code, message, shown)) = written {
                let message = self.explain(bucket, key, content, code.as_deref(), message.as_deref(), &shown);
                return Err(ErrorDetails { code: FailureType::JobFailed, message });
            }
        }
        Ok(())
    }

    /// The S3 source's object: what the action picks up (revision, variables) and the copy of that version to write.
    async fn read_source(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<(Success, Content), ErrorDetails> {
        let head = self.client.head_object().bucket(bucket).key(key).set_version_id(version.map(str::to_string));
        let object = head.send().await.map_err(|e| {
            let status = e.raw_response().map(|r| r.status().as_u16());
            match status {
                // AWS's words [reference: the source action's state after a missing object].
                Some(404) | Some(400) => super::s3_object_missing(bucket, key),
                Some(403) => super::s3_object_denied(bucket, key),
                _ => ErrorDetails {
                    code: FailureType::JobFailed,
                    message: format!(
                        "Could not read the source object \"{bucket}/{key}\" from the S3 neighbour ({}): {}",
                        self.endpoint,
                        chain(&e)
                    ),
                },
            }
        })?;
        // A source bucket must be versioned (AWS's wording for an unversioned one is UNCONFIRMED).
        let Some(version) = object.version_id().filter(|v| !v.is_empty() && *v != "null").map(str::to_string) else {
            return Err(ErrorDetails {
                code: FailureType::ConfigurationError,
                message: format!(
                    "The Amazon S3 bucket \"{bucket}\" of the source object \"{key}\" is not versioned. Enable \
                     versioning on the bucket: a source object is read by its version id."
                ),
            });
        };
        let etag = object.e_tag().unwrap_or_default().trim_matches('"').to_string();
        let summary = format!("Amazon S3 version id: {version}");
        let variables = [("BucketName", bucket), ("ETag", &etag), ("ObjectKey", key), ("VersionId", &version)];
        let picked = Success {
            summary: Some(summary.clone()),
            external_execution_id: Some(version.clone()),
            external_execution_url: None,
            output_variables: variables.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
            revision: Some(Revision {
                revision_id: version.clone(),
                change: ChangeId::None,
                summary: Some(summary.into()),
                created: None,
            }),
        };
        let copy = Content::Copy { bucket: bucket.to_string(), key: key.to_string(), version: Some(version) };
        Ok((picked, copy))
    }

    /// AWS's wording is UNCONFIRMED: the message names the bucket, the key, the neighbour and what it answered.
    fn explain(
        &self,
        bucket: &str,
        key: &str,
        content: &Content,
        code: Option<&str>,
        message: Option<&str>,
        shown: &str,
    ) -> String {
        let answer = match (code, message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => shown.to_string(),
        };
        match (code, content) {
            (Some("NoSuchBucket"), _) => format!(
                "The artifact store's bucket \"{bucket}\" does not exist in the S3 neighbour ({}). Create it, or \
                 edit the pipeline's artifactStore.",
                self.endpoint
            ),
            (Some("NoSuchKey"), Content::Copy { bucket: from_bucket, key: from_key, .. }) => format!(
                "The input artifact \"{from_bucket}/{from_key}\" is not in the S3 neighbour ({}): it could not be \
                 passed on to \"{bucket}/{key}\".",
                self.endpoint
            ),
            _ => format!(
                "Could not write the output artifact \"{bucket}/{key}\" to the S3 neighbour ({}): {answer}",
                self.endpoint
            ),
        }
    }
}

/// `x-amz-copy-source`: the bucket, the URL-encoded key, and the version when one is named.
fn copy_source(bucket: &str, key: &str, version: Option<&str>) -> String {
    const KEY: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    let key = percent_encoding::utf8_percent_encode(key, KEY);
    match version {
        Some(version) => format!("{bucket}/{key}?versionId={}", percent_encoding::utf8_percent_encode(version, KEY)),
        None => format!("{bucket}/{key}"),
    }
}

impl Worker for ArtifactWriter {
    type Work = ArtifactWork;

    async fn work(self: Arc<Self>, engine: Arc<Engine>, work: ArtifactWork) {
        // A build handed out again while it runs (after a failed save) is not started twice: the running one reports.
        let _running = match &work.content {
            Content::Build(_) => match Running::start(&self.running, work.run_id) {
                Some(running) => Some(running),
                None => return,
            },
            _ => None,
        };
        let result = self.write(&engine, &work).await;
        let (scope, pipeline) = (work.scope.clone(), work.pipeline.clone());
        let report = StoreArtifacts { execution_id: work.execution_id, run_id: work.run_id, result };
        match engine.apply(&scope, &pipeline, report) {
            Ok(_) => {}
            Err(unavailable) => {
                // Not saved (a full disk): the run is still storing and is handed over again once saves work.
                tracing::warn!(pipeline = %pipeline, "the artifacts written could not be recorded: {unavailable}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_zip_holds_its_one_file() {
        let bytes = zip_of("a.json", b"{\"x\": 1}");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
        assert_eq!(archive.len(), 1);
        let mut file = archive.by_name("a.json").expect("the file");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).expect("reads");
        assert_eq!(text, "{\"x\": 1}");
    }
}
