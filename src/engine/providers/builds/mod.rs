//! Builds that really run (`--run-builds`): a CodeBuild action's buildspec, or a V2 `Commands` action's commands,
//! run as local processes on the emulator's host, as CodeBuild runs them (real-actions.md §4-§6).
//!
//! The input artifacts are unzipped into a fresh directory per build (the primary source is `CODEBUILD_SRC_DIR`, the
//! others `CODEBUILD_SRC_DIR_<name>`); the buildspec is the action's `BuildspecOverride` or `buildspec.yml` at the
//! primary source's root; its phases run in order in one shell ([`shell`]) with CodeBuild's transitions after a
//! failure, `on-failure` and `finally`; its `artifacts` (and `secondary-artifacts`, by output artifact name) become
//! the action's output artifacts ([`select`]) and its `exported-variables` its output variables. A `Commands` action
//! is the same build with its `commands` as the `build` phase, its output artifact's `files` as `artifacts` and its
//! `outputVariables` exported. A failed build fails the action with AWS's message (`Build terminated with state:
//! FAILED. Phase: BUILD, Code: COMMAND_EXECUTION_ERROR, Message: Error while executing command: make. Reason: exit
//! status 2`).

pub mod buildspec;
mod delegate;
pub mod log;
mod neighbours;
pub mod select;
pub mod shell;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::buildspec::{Artifacts, Buildspec, OnFailure, Phase, text};
use self::log::BuildLog;
use self::shell::{Ran, Shell};
use super::artifacts::{ArtifactWork, ArtifactWriter};
use super::neighbour::{abandoned, job_failed};
use crate::engine::Engine;
use crate::state::declaration::{ActionCategory, ActionDeclaration};
use crate::state::execution::{ActionRun, ArtifactInstance, ErrorDetails, Success};

/// What a build runs.
#[derive(Debug, Clone)]
enum Kind {
    /// A CodeBuild action: its project, and the buildspec and primary source its configuration names.
    CodeBuild { buildspec_override: Option<String>, primary: Option<String> },
    /// A `Commands` action: its commands, and its output artifact's `files`.
    Commands { commands: Vec<String>, files: Vec<String> },
}

/// One build to run: the action's configuration and artifacts.
#[derive(Debug, Clone)]
pub struct Build {
    kind: Kind,
    project: String,
    /// `(name, value, type)` of the action's environment variables.
    environment: Vec<(String, String, String)>,
    /// A `Commands` action's `outputVariables`.
    output_variables: Vec<String>,
    inputs: Vec<Arc<ArtifactInstance>>,
    /// The output artifacts' names, in the order of the work's outputs.
    outputs: Vec<String>,
    pipeline: String,
    account: String,
    region: String,
    /// When the action started, on the emulator clock: its timeout counts from then.
    started: crate::state::Timestamp,
}

/// Whether the action is one the build runner runs (a CodeBuild build or test, or a `Commands` action).
pub fn runs(declared: &ActionDeclaration) -> bool {
    let id = &declared.action_type_id;
    id.owner == crate::state::declaration::ActionOwner::Aws
        && match id.category {
            ActionCategory::Build | ActionCategory::Test => id.provider == "CodeBuild",
            ActionCategory::Compute => id.provider == "Commands",
            _ => false,
        }
}

impl Build {
    /// The build `declared` asks for, as `run` resolved it.
    pub fn new(
        declared: &ActionDeclaration,
        configuration: &BTreeMap<String, String>,
        run: &ActionRun,
        execution: &crate::state::execution::Execution,
        (scope, pipeline): (&crate::state::Scope, &str),
        region: String,
    ) -> Build {
        let value = |key: &str| configuration.get(key).filter(|v| !v.is_empty()).cloned();
        // A Commands action's commands and variable values may name variables (#{Namespace.Key}), as its
        // configuration may; one that names nothing is left as written (the shell then sees it).
        let resolved = |text: &str| {
            crate::engine::variables::resolve(text, 64 * 1024, |ns, k| {
                crate::engine::variables::lookup(execution, ns, k)
            })
            .unwrap_or_else(|_| text.to_string())
        };
        let (kind, project, environment) = if declared.action_type_id.provider == "Commands" {
            let files = declared.output_artifacts.iter().flatten().flat_map(|a| a.files.iter().flatten()).cloned();
            let environment = declared
                .environment_variables
                .iter()
                .flatten()
                .map(|v| {
                    let kind = v.variable_type.clone().unwrap_or_else(|| "PLAINTEXT".into());
                    (v.name.clone(), resolved(&v.value), kind)
                })
                .collect();
            let commands = declared.commands.iter().flatten().map(|c| resolved(c)).collect();
            (Kind::Commands { commands, files: files.collect() }, format!("{pipeline}-{}", declared.name), environment)
        } else {
            // EnvironmentVariables: a JSON string of [{name, value, type}] (real-actions.md §4.1).
            let environment = value("EnvironmentVariables")
                .and_then(|text| serde_json::from_str::<Vec<serde_json::Value>>(&text).ok())
                .unwrap_or_default()
                .iter()
                .filter_map(|v| {
                    let field = |k: &str| v.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
                    Some((
                        field("name")?,
                        field("value").unwrap_or_default(),
                        field("type").unwrap_or_else(|| "PLAINTEXT".into()),
                    ))
                })
                .collect();
            let kind =
                Kind::CodeBuild { buildspec_override: value("BuildspecOverride"), primary: value("PrimarySource") };
            (kind, value("ProjectName").unwrap_or_default(), environment)
        };
        Build {
            kind,
            project,
            environment,
            output_variables: declared.output_variables.clone().unwrap_or_default(),
            inputs: run.input_artifacts.to_vec(),
            outputs: run.output_artifacts.iter().map(|a| a.name.to_string()).collect(),
            pipeline: pipeline.to_string(),
            account: scope.account.clone(),
            region,
            started: run.start_time,
        }
    }
}

/// CodeBuild's default project timeout.
const DEFAULT_TIMEOUT_MINUTES: i64 = 60;

/// A failed build, in AWS's words.
fn failed(phase: &str, code: &str, message: &str) -> ErrorDetails {
    job_failed(format!("Build terminated with state: FAILED. Phase: {phase}, Code: {code}, Message: {message}"))
}

/// The first failure of a build: its phase, code and message.
struct Failure {
    phase: &'static str,
    code: &'static str,
    message: String,
}

/// Ends a build's log when dropped.
struct LogEnd(BuildLog);

impl Drop for LogEnd {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// The directory of one build, removed when the build ends (unless kept for debugging).
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

impl ArtifactWriter {
    /// Runs the build; its result names the build id, and carries its exported variables.
    pub(super) async fn build(
        &self,
        engine: &Engine,
        work: &ArtifactWork,
        build: &Build,
    ) -> Result<Success, ErrorDetails> {
        let id = uuid::Uuid::new_v4();
        let log = self.new_log(work.run_id, &work.scope.account);
        let result = self.run_build(engine, work, build, id, &log).await;
        let group = match build.kind {
            Kind::CodeBuild { .. } => format!("/aws/codebuild/{}", build.project),
            Kind::Commands { .. } => format!("/aws/codepipeline/{}", build.pipeline),
        };
        self.ship_log(&group, &id.to_string(), &log.text(), &build.region).await;
        result
    }

    async fn run_build(
        &self,
        engine: &Engine,
        work: &ArtifactWork,
        build: &Build,
        id: uuid::Uuid,
        log: &BuildLog,
    ) -> Result<Success, ErrorDetails> {
        let build_id = format!("{}:{id}", build.project);
        let root = std::env::temp_dir().join("codepipeline-local-builds").join(id.to_string());
        let dir = WorkDir { path: root, keep: self.settings.keep_build_dirs };
        // However the build ends, its followers are told.
        let _end = LogEnd(log.clone());
        log.container(&format!("Running on codepipeline-local, build {build_id}"));
        log.container("Entering phase DOWNLOAD_SOURCE");
        let (sources, primary) = self.download_sources(build, &dir.path).await?;
        let project = match build.kind {
            Kind::CodeBuild { .. } => self
                .project(&build.project, &build.account, &build.region)
                .await
                .map_err(|why| job_failed(format!("Error calling startBuild: {why}")))?,
            Kind::Commands { .. } => neighbours::Project::default(),
        };
        let spec = self.buildspec(build, project.buildspec.as_deref(), &primary)?;
        let mut environment = self.environment(build, &build_id, &id, &sources, &primary, work);
        let buildspec_variables: Vec<(String, String, String)> = [
            (&spec.env.variables, "PLAINTEXT"),
            (&spec.env.parameter_store, "PARAMETER_STORE"),
            (&spec.env.secrets_manager, "SECRETS_MANAGER"),
        ]
        .into_iter()
        .flat_map(|(variables, kind)| variables.iter().map(move |(k, v)| (k.clone(), text(v), kind.to_string())))
        .collect();
        // The buildspec's, then the project's, then the action's (StartBuild's overrides) win, as on CodeBuild.
        for variables in [&buildspec_variables, &project.environment, &build.environment] {
            self.resolve_variables(variables, &mut environment, log, &build.region).await?;
        }
        let mut shell = Shell::new(&dir.path, &primary, environment)
            .map_err(|e| failed("PROVISIONING", "CLIENT_ERROR", &e.to_string()))?;
        // The project's timeout (CodeBuild's default: 60 minutes), on the emulator clock.
        let minutes = project.timeout_minutes.unwrap_or(DEFAULT_TIMEOUT_MINUTES);
        let deadline = build.started.plus_millis(minutes.saturating_mul(60_000));
        let timed_out = std::sync::atomic::AtomicBool::new(false);
        let mut alive = || {
            if engine.store().clock().now() >= deadline {
                timed_out.store(true, std::sync::atomic::Ordering::Relaxed);
                return false;
            }
            engine.is_storing(&work.scope, &work.pipeline, work.execution_id, work.run_id)
        };
        let failure = match run_phases(&mut shell, &spec, log, &mut alive).await {
            Err(_) if timed_out.load(std::sync::atomic::Ordering::Relaxed) => {
                log.container(&format!("Build timed out after {minutes} minutes"));
                return Err(job_failed(format!(
                    "Build terminated with state: TIMED_OUT. Phase: BUILD, Code: BUILD_TIMED_OUT, Message: Build has \
                     timed out. (the project's timeout, {minutes} minutes)"
                )));
            }
            other => other?,
        };
        if let Some(failure) = failure {
            log.container(&format!("Phase context status code: {} Message: {}", failure.code, failure.message));
            return Err(failed(failure.phase, failure.code, &failure.message));
        }
        log.container("Entering phase UPLOAD_ARTIFACTS");
        self.upload(build, &spec, &primary, &dir.path, work).await?;
        let names = match build.kind {
            Kind::Commands { .. } => build.output_variables.clone(),
            Kind::CodeBuild { .. } => spec.env.exported_variables.clone(),
        };
        let values = shell.values(&names).await;
        log.container("Phase complete: UPLOAD_ARTIFACTS State: SUCCEEDED");
        Ok(Success {
            summary: None,
            external_execution_id: Some(build_id),
            output_variables: values.into_iter().collect(),
            ..Success::default()
        })
    }

    /// Sets `variables` `(name, value, type)` in `environment`, reading Parameter Store and Secrets Manager values
    /// from their neighbours (and masking them in the log).
    async fn resolve_variables(
        &self,
        variables: &[(String, String, String)],
        environment: &mut Vec<(String, String)>,
        log: &BuildLog,
        region: &str,
    ) -> Result<(), ErrorDetails> {
        let decrypted = |message: String| failed("DOWNLOAD_SOURCE", "Decrypted Variables Error", &message);
        for (name, value, kind) in variables {
            let value = match kind.as_str() {
                "PARAMETER_STORE" => self.parameter(value, region).await.map_err(decrypted)?,
                "SECRETS_MANAGER" => self.secret(value, region).await.map_err(decrypted)?,
                _ => value.clone(),
            };
            if kind != "PLAINTEXT" {
                log.mask(&value);
            }
            set(environment, name, &value);
        }
        Ok(())
    }

    /// Unzips every input artifact: the primary source into `src`, the others into `src_<name>`.
    async fn download_sources(
        &self,
        build: &Build,
        root: &Path,
    ) -> Result<(Vec<(String, PathBuf)>, PathBuf), ErrorDetails> {
        let primary_name = match &build.kind {
            Kind::CodeBuild { primary: Some(name), .. } => Some(name.clone()),
            _ => build.inputs.first().map(|a| a.name.to_string()),
        };
        let mut sources = Vec::new();
        let mut primary = root.join("src");
        for input in &build.inputs {
            let is_primary = primary_name.as_deref() == Some(&*input.name);
            let dir = if is_primary { root.join("src") } else { root.join(format!("src_{}", input.name)) };
            let bytes = self
                .read_artifact(&input.name, &input.bucket, &input.key)
                .await
                .map_err(|e| failed("DOWNLOAD_SOURCE", "CLIENT_ERROR", &e.message))?;
            let unzip = || -> Result<(), String> {
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
                archive.extract(&dir).map_err(|e| e.to_string())
            };
            unzip().map_err(|why| {
                failed(
                    "DOWNLOAD_SOURCE",
                    "CLIENT_ERROR",
                    &format!("the input artifact {} could not be unzipped: {why}", input.name),
                )
            })?;
            if is_primary {
                primary = dir.clone();
            }
            sources.push((input.name.to_string(), dir));
        }
        std::fs::create_dir_all(&primary).map_err(|e| failed("DOWNLOAD_SOURCE", "CLIENT_ERROR", &e.to_string()))?;
        Ok((sources, primary))
    }

    /// The buildspec: the `Commands` action's, the action's override, the project's (each inline, or a path in the
    /// primary source), or `buildspec.yml` at the primary source's root.
    fn buildspec(&self, build: &Build, project: Option<&str>, primary: &Path) -> Result<Buildspec, ErrorDetails> {
        let yaml_error = |message: String| failed("DOWNLOAD_SOURCE", "YAML_FILE_ERROR", &message);
        let source = match &build.kind {
            Kind::Commands { commands, files } => {
                let mut spec = Buildspec::default();
                spec.phases.build = Some(Phase {
                    commands: commands.iter().map(|c| serde_yaml_ng::Value::String(c.clone())).collect(),
                    ..Phase::default()
                });
                if !files.is_empty() {
                    spec.artifacts = Some(Artifacts {
                        files: files.iter().map(|f| serde_yaml_ng::Value::String(f.clone())).collect(),
                        ..Artifacts::default()
                    });
                }
                return Ok(spec);
            }
            Kind::CodeBuild { buildspec_override, .. } => {
                let chosen = buildspec_override.as_deref().or(project);
                if let Some(inline) = chosen.filter(|b| b.contains('\n')) {
                    return buildspec::parse(inline).map_err(yaml_error);
                }
                let path = primary.join(chosen.unwrap_or("buildspec.yml"));
                std::fs::read_to_string(&path)
                    .map_err(|_| yaml_error(format!("stat {}: no such file or directory", path.display())))?
            }
        };
        buildspec::parse(&source).map_err(yaml_error)
    }

    /// The build's environment: the host's (without the emulator's own settings or the host's AWS credentials),
    /// the neighbours' endpoints and credentials, and CodeBuild's variables.
    fn environment(
        &self,
        build: &Build,
        build_id: &str,
        id: &uuid::Uuid,
        sources: &[(String, PathBuf)],
        primary: &Path,
        work: &ArtifactWork,
    ) -> Vec<(String, String)> {
        let mut environment: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| {
                !k.starts_with("CODEPIPELINE_LOCAL_") && !k.starts_with("AWS_") && !k.starts_with("CODEBUILD_")
            })
            .collect();
        let settings = &self.settings;
        let credentials = &settings.credentials;
        let mut add = |k: &str, v: &str| set(&mut environment, k, v);
        add("AWS_DEFAULT_REGION", &build.region);
        add("AWS_REGION", &build.region);
        add("AWS_ACCESS_KEY_ID", &credentials.access_key_id);
        add("AWS_SECRET_ACCESS_KEY", &credentials.secret_access_key);
        if let Some(token) = &credentials.session_token {
            add("AWS_SESSION_TOKEN", token);
        }
        if settings.local.is_none() {
            add("AWS_ENDPOINT_URL_S3", &settings.endpoint);
        }
        for (variable, endpoint) in [
            ("AWS_ENDPOINT_URL_CLOUDFORMATION", &settings.cloudformation),
            ("AWS_ENDPOINT_URL_ECS", &settings.ecs),
            ("AWS_ENDPOINT_URL_ECR", &settings.ecr),
        ] {
            if let Some(endpoint) = endpoint {
                add(variable, endpoint);
            }
        }
        add("CODEBUILD_BUILD_ID", build_id);
        add("CODEBUILD_BUILD_ARN", &format!("arn:aws:codebuild:{}:{}:build/{build_id}", build.region, build.account));
        add("CODEBUILD_BUILD_NUMBER", &self.next_build_number(&build.project).to_string());
        add("CODEBUILD_BUILD_IMAGE", "aws/codebuild/standard:7.0");
        add("CODEBUILD_BUILD_SUCCEEDING", "1");
        add("CODEBUILD_INITIATOR", &format!("codepipeline/{}", build.pipeline));
        add("CODEBUILD_KMS_KEY_ID", &format!("arn:aws:kms:{}:{}:alias/aws/s3", build.region, build.account));
        add("CODEBUILD_LOG_PATH", &id.to_string());
        add("CODEBUILD_START_TIME", &chrono::Utc::now().timestamp_millis().to_string());
        add("CODEBUILD_SOURCE_REPO_URL", "");
        add("CODEBUILD_SRC_DIR", &primary.display().to_string());
        if let Some(first) = build.inputs.first() {
            add("CODEBUILD_SOURCE_VERSION", &format!("arn:aws:s3:::{}/{}", first.bucket, first.key));
        }
        for (name, dir) in sources {
            if dir != primary {
                add(&format!("CODEBUILD_SRC_DIR_{name}"), &dir.display().to_string());
            }
        }
        add("CODEPIPELINE_LOCAL_EXECUTION_ID", &work.execution_id.to_string());
        environment
    }

    /// Zips what the buildspec selects into each output artifact: the top-level `artifacts` for the only one, the
    /// `secondary-artifacts` entry of each one's name when there are several.
    async fn upload(
        &self,
        build: &Build,
        spec: &Buildspec,
        primary: &Path,
        root: &Path,
        work: &ArtifactWork,
    ) -> Result<(), ErrorDetails> {
        let client_error = |message: String| failed("UPLOAD_ARTIFACTS", "CLIENT_ERROR", &message);
        for (index, ((bucket, key), name)) in work.outputs.iter().zip(&build.outputs).enumerate() {
            let chosen = match (&spec.artifacts, build.outputs.len()) {
                (Some(artifacts), 1) => artifacts.clone(),
                (Some(artifacts), _) => match artifacts.secondary_artifacts.get(name) {
                    Some(secondary) => secondary.clone(),
                    None if index == 0 && !artifacts.files.is_empty() => artifacts.clone(),
                    None => return Err(client_error(format!("no secondary artifact named {name} in the buildspec"))),
                },
                (None, _) => return Err(client_error("no artifacts section in the buildspec".into())),
            };
            let files = select::select(primary, &chosen).map_err(client_error)?;
            let zip_path = root.join(format!("output-{index}.zip"));
            select::zip(&files, &zip_path).map_err(client_error)?;
            self.put_file(bucket, key, &zip_path).await.map_err(|e| client_error(e.message))?;
        }
        Ok(())
    }
}

/// Sets `name` in `environment`, replacing an earlier value.
fn set(environment: &mut Vec<(String, String)>, name: &str, value: &str) {
    match environment.iter_mut().find(|(k, _)| k == name) {
        Some((_, v)) => *v = value.to_string(),
        None => environment.push((name.to_string(), value.to_string())),
    }
}

/// Runs the phases in order; the first failure, if any. `Err` when the build was given up.
async fn run_phases(
    shell: &mut Shell,
    spec: &Buildspec,
    log: &BuildLog,
    alive: &mut impl FnMut() -> bool,
) -> Result<Option<Failure>, ErrorDetails> {
    let mut failure: Option<Failure> = None;
    // Whether later command phases still run.
    let mut go_on = true;
    for (phase_type, phase) in spec.phases.in_order() {
        let Some(phase) = phase else { continue };
        if !go_on {
            break;
        }
        log.container(&format!("Entering phase {phase_type}"));
        let mut attempts_left = match phase.on_failure() {
            OnFailure::Retry(count) => count,
            _ => 0,
        };
        let outcome = loop {
            let outcome = run_phase(shell, phase, log, alive).await?;
            match outcome {
                Some(_) if attempts_left > 0 => {
                    attempts_left -= 1;
                    log.container(&format!("Retrying phase {phase_type}"));
                }
                other => break other,
            }
        };
        let state = if outcome.is_some() { "FAILED" } else { "SUCCEEDED" };
        log.container(&format!("Phase complete: {phase_type} State: {state}"));
        if let Some(message) = outcome {
            if failure.is_none() {
                failure = Some(Failure { phase: phase_type, code: "COMMAND_EXECUTION_ERROR", message });
                shell.set("CODEBUILD_BUILD_SUCCEEDING", "0").await;
            }
            go_on = match phase.on_failure() {
                OnFailure::Continue => true,
                OnFailure::Abort | OnFailure::Retry(_) => false,
                // After a failed BUILD, POST_BUILD still runs; after INSTALL or PRE_BUILD, nothing does.
                OnFailure::Default => phase_type == "BUILD",
            };
        }
    }
    Ok(failure)
}

/// Runs one phase's commands (up to the first that fails) and then its `finally`; the failure's message, if any.
async fn run_phase(
    shell: &mut Shell,
    phase: &Phase,
    log: &BuildLog,
    alive: &mut impl FnMut() -> bool,
) -> Result<Option<String>, ErrorDetails> {
    let mut failure = None;
    for block in [&phase.commands, &phase.finally] {
        for command in block.iter().map(text) {
            if failure.is_some() && std::ptr::eq(block, &phase.commands) {
                break;
            }
            log.container(&format!("Running command {command}"));
            match shell.run(&command, log, alive).await {
                Ran::GivenUp => return Err(abandoned()),
                Ran::Exit(0) => {}
                Ran::Exit(status) => {
                    let message = format!("Error while executing command: {command}. Reason: exit status {status}");
                    log.container(&format!("Command did not exit successfully {command} exit status {status}"));
                    failure.get_or_insert(message);
                    if std::ptr::eq(block, &phase.finally) {
                        break;
                    }
                }
            }
        }
    }
    Ok(failure)
}
