//! The composition root: one server's shared state ([`AppState`]) and how it is put together at start-up (the store
//! a configuration asks for, the engine over it, the partner action types of the start-up file) and kept for as long
//! as the server runs (the engine's scheduler). The HTTP layer (`server`), the control endpoints (`control`) and the
//! triggers (`triggers`) all build on it; it imports none of them.

pub mod import;
pub mod init;
pub mod neighbours;
pub mod partners;
pub mod principals;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::task::JoinHandle;

use crate::config::Config;
use crate::engine::Engine;
use crate::protocol::ApiError;
use crate::protocol::identity::Defaults;
use crate::protocol::model::{Model, ModelError};
use crate::state::Scope;
use crate::state::behaviors::BehaviorSet;
use crate::state::catalogue::Catalogue;
use crate::store::{Store, Unavailable};

/// Shared state of one server: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// A handle to the state that does not keep it alive (for tasks that should end with it).
#[derive(Clone)]
pub struct WeakAppState(std::sync::Weak<Inner>);

impl WeakAppState {
    /// The state, while it exists.
    pub fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(|inner| AppState { inner })
    }
}

struct Inner {
    store: Arc<Store>,
    /// Partner action types registered from the start-up file, restored after a reset.
    partners: Vec<(Scope, crate::state::ThirdPartyRecord)>,
    engine: Arc<Engine>,
    model: Model,
    catalogue: Arc<Catalogue>,
    config: Config,
    defaults: Defaults,
    started: Instant,
    /// The address the server listens on, once it does.
    local_addr: OnceLock<SocketAddr>,
    /// The engine's scheduler, running for as long as this state exists.
    scheduler: OnceLock<Scheduler>,
    /// Whether the server has started the git repositories' watcher.
    git_watch_claimed: std::sync::atomic::AtomicBool,
    /// Turns true when the server starts shutting down, so that endless answers (event streams) end.
    closing: tokio::sync::watch::Sender<bool>,
    /// The init hooks found at start, and what became of them.
    init: init::InitHooks,
    /// With `--verify-signatures`, who may sign requests (and with `--enforce-iam`, what they may do).
    principals: Option<principals::Principals>,
}

/// The engine's scheduler task, tied to the state it serves (a drop guard, as mini-redis's `DbDropGuard`): it
/// starts with the state (inside a Tokio runtime) and stops when the last handle to the state goes away, or when
/// the server shuts down.
struct Scheduler {
    stop: tokio::sync::watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Scheduler {
    fn start(engine: Arc<Engine>, runtime: &tokio::runtime::Handle) -> Scheduler {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = runtime.spawn(engine.run(stopped));
        Scheduler { stop, task: std::sync::Mutex::new(Some(task)) }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl AppState {
    /// State for a server with the given configuration. Fails if an embedded fixture is broken or the behaviours
    /// file cannot be used.
    pub fn new(config: Config) -> Result<AppState, StartupError> {
        let model = Model::load()?;
        let catalogue = Arc::new(Catalogue::load().map_err(ModelError::from)?);
        let (store, saved_behaviors) = open_store(&config, &model, &catalogue)?;
        let behaviors = match &config.behaviors {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| StartupError::Behaviors(path.display().to_string(), e.to_string()))?;
                let set: BehaviorSet = serde_json::from_str(&text)
                    .map_err(|e| StartupError::Behaviors(path.display().to_string(), e.to_string()))?;
                BehaviorSet::check(&set.rules).map_err(|e| StartupError::Behaviors(path.display().to_string(), e))?;
                set.rules
            }
            None => saved_behaviors.unwrap_or_default(),
        };
        let neighbours = neighbours::Neighbours::resolve(&config);
        for line in neighbours.describe(config.run_builds, config.verify_signatures || config.enforce_iam) {
            tracing::info!("{line}");
        }
        if config.run_builds {
            if neighbours.endpoint(neighbours::Service::S3).is_some() {
                tracing::warn!(
                    "--run-builds: CodeBuild and Commands actions run their commands as processes on this host, as \
                     this user"
                );
            } else {
                tracing::warn!(
                    "--run-builds: CodeBuild and Commands actions run their commands as processes on this host, as \
                     this user; without an S3 neighbour, artifacts are kept in the emulator's own store"
                );
            }
        }
        let bundle = config.aws_ca_bundle.clone().or_else(|| config.sdk_environment.ca_bundle.clone().map(Into::into));
        let trust =
            crate::engine::outbound::Trust::load(neighbours.tls(), bundle.as_deref()).map_err(StartupError::Trust)?;
        let git_repos = git_repositories(&config.git_repos).map_err(StartupError::GitRepo)?;
        if let Some(bad) =
            config.allowed_hosts.iter().find(|h| h.as_str() != "*" && crate::config::allowed_name(h).is_none())
        {
            return Err(StartupError::AllowedHost(bad.clone()));
        }
        let credentials = &neighbours.credentials;
        let eventbridge = neighbours.endpoint(neighbours::Service::EventBridge).map(|endpoint| {
            crate::engine::delivery::EventBridgeSettings {
                endpoint: endpoint.to_string(),
                bus: config.event_bus_name.clone(),
                access_key_id: credentials.access_key_id.clone(),
                secret_access_key: credentials.secret_access_key.clone(),
                trust: trust.clone(),
            }
        });
        let sns =
            neighbours.endpoint(neighbours::Service::Sns).map(|endpoint| crate::engine::notifications::SnsSettings {
                endpoint: endpoint.to_string(),
                access_key_id: credentials.access_key_id.clone(),
                secret_access_key: credentials.secret_access_key.clone(),
                trust: trust.clone(),
            });
        let lambda = neighbours.endpoint(neighbours::Service::Lambda).map(|endpoint| {
            crate::engine::providers::lambda::invoker::LambdaSettings {
                endpoint: endpoint.to_string(),
                access_key_id: neighbours.lambda_credentials.access_key_id.clone(),
                secret_access_key: neighbours.lambda_credentials.secret_access_key.clone(),
                trust: trust.clone(),
            }
        });
        if config.behaviors.is_some() {
            let rules = serde_json::to_string(&behaviors).unwrap_or_default();
            store.save_setting(crate::store::sqlite::META_BEHAVIORS, &rules).map_err(|e| StartupError::Storage(e.0))?;
        }
        let store = Arc::new(store);
        let settings = crate::engine::Settings {
            duration_ms: config.action_duration_ms,
            behaviors,
            catalogue: Arc::clone(&catalogue),
            lambda,
            event_history: config.event_history,
            eventbridge,
            sns,
            max_executions: config.max_executions_per_pipeline,
            artifacts: artifact_store(&config, &neighbours, !git_repos.is_empty()).map(|(endpoint, local)| {
                let settings = crate::engine::providers::artifacts::ArtifactSettings {
                    endpoint,
                    local,
                    credentials: credentials.clone(),
                    timeout: config.neighbour_timeout,
                    cloudformation: neighbours.endpoint(neighbours::Service::CloudFormation).map(str::to_string),
                    ecs: neighbours.endpoint(neighbours::Service::Ecs).map(str::to_string),
                    ecr: neighbours.endpoint(neighbours::Service::Ecr).map(str::to_string),
                    poll_interval: config.poll_interval,
                    ssm: neighbours.endpoint(neighbours::Service::Ssm).map(str::to_string),
                    codebuild: neighbours.endpoint(neighbours::Service::CodeBuild).map(str::to_string),
                    secrets_manager: neighbours.endpoint(neighbours::Service::SecretsManager).map(str::to_string),
                    logs: neighbours.endpoint(neighbours::Service::Logs).map(str::to_string),
                    trust: trust.clone(),
                    run_builds: config.run_builds,
                    keep_build_dirs: config.keep_build_dirs,
                    delegate_builds: config.delegate_builds,
                    git_repos: git_repos.clone(),
                };
                (settings, config.default_region.clone())
            }),
        };
        let engine = Arc::new(Engine::new(Arc::clone(&store), settings));
        let defaults = Defaults { account: config.default_account.clone(), region: config.default_region.clone() };
        let mut partners = Vec::new();
        if let Some(path) = &config.third_party_action_types {
            let failed = |e: String| StartupError::Partners(path.display().to_string(), e);
            let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
            let file: partners::PartnerTypeFile = serde_json::from_str(&text).map_err(|e| failed(e.to_string()))?;
            for spec in file.action_types {
                let scope = Scope {
                    account: spec.account.clone().unwrap_or_else(|| config.default_account.clone()),
                    region: spec.region.clone().unwrap_or_else(|| config.default_region.clone()),
                };
                // A partner type kept in the data directory keeps its client id and token: its workers still hold them.
                let id = partners::partner_type_id(&spec);
                let kept = store.read(&scope, |data| data.third_party_types.get(&id).cloned());
                let record = match kept {
                    Some(record) => record,
                    None => {
                        partners::register_partner(&store, &catalogue, &scope, spec).map_err(|e| failed(e.message))?
                    }
                };
                partners.push((scope, record));
            }
        }
        let init_dirs: Vec<&std::path::Path> =
            config.init_dir.iter().chain(config.localstack_init_dir.iter()).map(|d| d.as_path()).collect();
        let init = init::InitHooks::discover(&init_dirs);
        let principals = principals_of(&config, &neighbours, &trust)?;
        let state = AppState {
            inner: Arc::new(Inner {
                init,
                principals,
                store,
                engine,
                partners,
                model,
                catalogue,
                config,
                defaults,
                started: Instant::now(),
                local_addr: OnceLock::new(),
                scheduler: OnceLock::new(),
                git_watch_claimed: std::sync::atomic::AtomicBool::new(false),
                closing: tokio::sync::watch::Sender::new(false),
            }),
        };
        state.inner.engine.resume_after_restart();
        state.start_scheduler();
        Ok(state)
    }

    /// Starts the engine's scheduler if it is not running and a Tokio runtime is at hand (state created outside one
    /// gets its scheduler when it is first served).
    pub(crate) fn start_scheduler(&self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let inner = &self.inner;
            inner.scheduler.get_or_init(|| Scheduler::start(Arc::clone(&inner.engine), &runtime));
        }
    }

    /// The `--git-repo` repositories to watch, once: `Some` to the first caller when `--watch-git-repos` is on (the
    /// server starts the watcher, which holds only a weak handle to the state).
    pub fn claim_git_watch(&self) -> Option<(WeakAppState, crate::engine::providers::artifacts::GitRepos)> {
        let config = &self.inner.config;
        if !config.watch_git_repos || self.inner.git_watch_claimed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let repos = git_repositories(&config.git_repos).unwrap_or_default();
        Some((WeakAppState(Arc::downgrade(&self.inner)), repos))
    }

    /// Stops the engine's scheduler and waits for it.
    pub(crate) async fn stop_scheduler(&self) {
        let Some(scheduler) = self.inner.scheduler.get() else { return };
        let _ = scheduler.stop.send(true);
        let task = scheduler.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!("the scheduler ended abnormally: {e}");
        }
    }

    /// Tells endless answers (event streams) that the server is shutting down.
    pub(crate) fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Turns true when the server starts shutting down.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    /// All emulator state.
    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// Drops all state and the clock, and every pending timer, keeping what start-up flags configured (partner
    /// action types).
    pub fn reset(&self) -> Result<(), Unavailable> {
        self.inner.store.reset()?;
        self.inner.engine.cancel_timers(|_| true);
        // The kept events go too; the sequence goes on, so a stream reader's Last-Event-ID stays meaningful.
        self.inner.engine.events().clear();
        self.restore_partners(|_| true)
    }

    /// Replaces the whole state with a document's (checked whole first; all or nothing), cancels the timers of the
    /// old state and resumes the running executions of the new one.
    pub fn import(&self, document: crate::store::document::Document) -> Result<(), ApiError> {
        let checked = import::check(document, &self.inner.model, &self.inner.catalogue)?;
        let behaviors = self.inner.store.import(checked)?;
        self.inner.engine.cancel_timers(|_| true);
        if let Some(rules) = behaviors {
            self.inner.engine.set_behaviors(rules);
        }
        self.inner.engine.resume_after_restart();
        Ok(())
    }

    /// Drops the state of the accounts and regions `selected` picks, keeping what start-up flags configured there;
    /// the clock, shared by all, is kept. Returns how many partitions held state.
    pub fn reset_where(&self, selected: impl Fn(&Scope) -> bool) -> Result<usize, Unavailable> {
        let dropped = self.inner.store.reset_where(&selected)?;
        self.inner.engine.cancel_timers(&selected);
        self.restore_partners(selected)?;
        Ok(dropped)
    }

    fn restore_partners(&self, selected: impl Fn(&Scope) -> bool) -> Result<(), Unavailable> {
        for (scope, record) in self.inner.partners.iter().filter(|(scope, _)| selected(scope)) {
            self.inner.store.write_durably(scope, |data| {
                data.third_party_types.insert(record.action_type.id.clone(), record.clone())
            })?;
        }
        Ok(())
    }

    /// Records the address the server listens on (once).
    pub(crate) fn set_local_addr(&self, addr: SocketAddr) {
        let _ = self.inner.local_addr.set(addr);
    }

    /// The address the server listens on, once it does.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.local_addr.get().copied()
    }

    /// Who may sign requests, with `--verify-signatures` or `--enforce-iam`.
    pub fn principals(&self) -> Option<&principals::Principals> {
        self.inner.principals.as_ref()
    }

    /// The init hooks.
    pub fn init_hooks(&self) -> &init::InitHooks {
        &self.inner.init
    }

    /// Runs the init scripts of `stage`, pointed at this server with test credentials.
    pub async fn run_init_stage(&self, stage: init::Stage) {
        if self.inner.init.is_empty() {
            self.inner.init.run(stage, &[]).await;
            return;
        }
        let config = &self.inner.config;
        let endpoint = self.local_addr().map(|addr| {
            let host = match addr.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
                ip if ip.is_unspecified() => "[::1]".to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            format!("http://{host}:{}", addr.port())
        });
        let mut env = vec![
            ("AWS_ACCESS_KEY_ID".to_string(), "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "test".to_string()),
            ("AWS_DEFAULT_REGION".to_string(), config.default_region.clone()),
            ("AWS_REGION".to_string(), config.default_region.clone()),
        ];
        if let Some(endpoint) = endpoint {
            env.push(("AWS_ENDPOINT_URL".to_string(), endpoint.clone()));
            env.push(("CODEPIPELINE_LOCAL_URL".to_string(), endpoint));
        }
        self.inner.init.run(stage, &env).await;
    }

    /// Account and region of requests that do not name them.
    pub fn defaults(&self) -> &Defaults {
        &self.inner.defaults
    }

    /// The execution engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.inner.engine
    }

    /// The built-in catalogue of action and rule types.
    pub fn catalogue(&self) -> &Catalogue {
        &self.inner.catalogue
    }

    /// The loaded service model.
    pub fn model(&self) -> &Model {
        &self.inner.model
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Time since the server state was created.
    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Fixture(#[from] ModelError),
    #[error("cannot use the behaviours file {0}: {1}")]
    Behaviors(String, String),
    #[error("cannot use the partner action types file {0}: {1}")]
    Partners(String, String),
    #[error(transparent)]
    Open(#[from] crate::store::sqlite::OpenError),
    #[error("cannot use the state file {0}: {1}")]
    StateFile(String, String),
    #[error("cannot save state: {0}")]
    Storage(String),
    #[error("cannot use the CA bundle: {0}")]
    Trust(String),
    #[error("{0}")]
    GitRepo(String),
    #[error("--allowed-hosts {0}: not a host name (give a name such as codepipeline, or host:port)")]
    AllowedHost(String),
    #[error("cannot use the credentials file {0}: {1}")]
    Credentials(String, String),
}

/// `--git-repo NAME=PATH` mappings: each path must be a git repository.
/// With `--verify-signatures` or `--enforce-iam`: the principals of `--credentials` and of the IAM neighbour.
fn principals_of(
    config: &Config,
    neighbours: &neighbours::Neighbours,
    trust: &crate::engine::outbound::Trust,
) -> Result<Option<principals::Principals>, StartupError> {
    if !config.verify_signatures && !config.enforce_iam {
        return Ok(None);
    }
    let iam = neighbours.endpoint(neighbours::Service::Iam).map(|endpoint| {
        principals::IamNeighbour::new(endpoint, &neighbours.credentials, trust, config.neighbour_timeout)
    });
    let file = match &config.credentials {
        Some(path) => {
            let failed = |e: String| StartupError::Credentials(path.display().to_string(), e);
            let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
            crate::protocol::sigv4::Verifier::from_json(&text, config.enforce_iam).map_err(failed)?
        }
        None if iam.is_some() => crate::protocol::sigv4::Verifier::default(),
        None => {
            return Err(StartupError::Credentials(
                "(none)".into(),
                "--verify-signatures and --enforce-iam need --credentials or an IAM neighbour".into(),
            ));
        }
    };
    let mut sources = Vec::new();
    if config.credentials.is_some() {
        sources.push(format!("the {} principals of the credentials file", file.len()));
    }
    if let Some(endpoint) = neighbours.endpoint(neighbours::Service::Iam) {
        sources.push(format!("the users of the IAM neighbour at {endpoint}"));
    }
    let checks = if config.enforce_iam { "signed, and allowed by their policies," } else { "signed" };
    tracing::info!("requests must be {checks} by {}", sources.join(" or "));
    Ok(Some(principals::Principals::new(file, iam, config.enforce_iam)))
}

fn git_repositories(mappings: &[String]) -> Result<crate::engine::providers::artifacts::GitRepos, String> {
    let mut repos = crate::engine::providers::artifacts::GitRepos::new();
    for mapping in mappings.iter().map(|m| m.trim()).filter(|m| !m.is_empty()) {
        let Some((name, path)) = mapping.split_once('=') else {
            return Err(format!("--git-repo {mapping}: expected NAME=PATH"));
        };
        let path = std::path::PathBuf::from(path.trim());
        let is_repository = std::process::Command::new("git")
            .arg("-C")
            .arg(&path)
            .args(["rev-parse", "--git-dir"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !is_repository {
            return Err(format!(
                "--git-repo {mapping}: {} is not a git repository (or git is not installed)",
                path.display()
            ));
        }
        repos.insert(name.trim().to_string(), path);
    }
    Ok(repos)
}

/// Where artifacts are real: the S3 neighbour's endpoint; or, without one, when builds run or git repositories are
/// mapped (`git`), the emulator's own store (`<data dir>/artifacts`, or a directory of this process under the
/// system's temporary directory).
fn artifact_store(
    config: &Config,
    neighbours: &neighbours::Neighbours,
    git: bool,
) -> Option<(String, Option<std::path::PathBuf>)> {
    if let Some(endpoint) = neighbours.endpoint(neighbours::Service::S3) {
        return Some((endpoint.to_string(), None));
    }
    if !config.run_builds && !git {
        return None;
    }
    let local = match &config.data_dir {
        Some(dir) => dir.join("artifacts"),
        None => std::env::temp_dir().join(format!("codepipeline-local-artifacts-{}", std::process::id())),
    };
    // No S3 calls are made: the endpoint only has to be a URL.
    Some(("http://127.0.0.1:9".to_string(), Some(local)))
}

/// The store a configuration asks for: in memory, or opened from the data directory; seeded from the state file
/// when there is one (and the data directory holds nothing yet). Also returns the behaviour rules they kept.
fn open_store(
    config: &Config,
    model: &Model,
    catalogue: &Catalogue,
) -> Result<(Store, Option<Vec<crate::state::behaviors::BehaviorRule>>), StartupError> {
    let (store, mut behaviors) = match &config.data_dir {
        Some(dir) => {
            let options = crate::store::sqlite::Options {
                dir: dir.clone(),
                full_sync: config.full_sync,
                max_bytes: config.max_data_bytes,
            };
            let (storage, document) = crate::store::sqlite::Storage::open(&options)?;
            let behaviors = document.behaviors.clone();
            let store = Store::with_storage(storage, document)?;
            tracing::info!(directory = %dir.display(), partitions = store.partition_count(), "state loaded");
            (store, behaviors)
        }
        None => (Store::new(), None),
    };
    if let Some(path) = &config.state_file {
        let shown = path.display().to_string();
        if store.partition_count() > 0 {
            tracing::info!(file = %shown, "the data directory holds state; the state file is not loaded");
        } else {
            let failed = |e: String| StartupError::StateFile(shown.clone(), e);
            let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
            let document: crate::store::document::Document =
                serde_json::from_str(&text).map_err(|e| failed(e.to_string()))?;
            let checked = import::check(document, model, catalogue).map_err(|e| failed(e.message))?;
            let imported = store.import(checked).map_err(|e| failed(e.to_string()))?;
            behaviors = imported.or(behaviors);
            tracing::info!(file = %shown, partitions = store.partition_count(), "state file loaded");
        }
    }
    Ok((store, behaviors))
}
