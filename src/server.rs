//! The HTTP server: the router, the request layer, the AWS JSON endpoint, start-up and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::Config;
use crate::control;
use crate::engine::Engine;
use crate::engine::behaviors::BehaviorSet;
use crate::operations::{self, Ctx};
use crate::protocol::body::{MAX_BODY_BYTES, check_content_type, parse_json, read_limited};
use crate::protocol::identity::{Defaults, scope_of};
use crate::protocol::model::{Model, ModelError};
use crate::protocol::router::route;
use crate::protocol::{ApiError, ErrorCode, Operation, Reply};
use crate::state::catalogue::Catalogue;
use crate::state::{Scope, Store, Unavailable};
use crate::transport::{self, Timeouts};

/// Shared state of one server: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
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
    /// Turns true when the server starts shutting down, so that endless answers (event streams) end.
    closing: tokio::sync::watch::Sender<bool>,
}

/// The engine's scheduler task, tied to the state it serves (a drop guard, as mini-redis's `DbDropGuard`): it
/// starts with the state (inside a Tokio runtime) and stops when the last handle to the state goes away, or when
/// the server shuts down.
struct Scheduler {
    stop: tokio::sync::watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Scheduler {
    fn start(engine: Arc<Engine>, store: Arc<Store>, runtime: &tokio::runtime::Handle) -> Scheduler {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = runtime.spawn(engine.run(store, stopped));
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
        let (store, saved_behaviors) = open_store(&config)?;
        let behaviors = match &config.behaviors {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| StartupError::Behaviors(path.display().to_string(), e.to_string()))?;
                let set: BehaviorSet = serde_json::from_str(&text)
                    .map_err(|e| StartupError::Behaviors(path.display().to_string(), e.to_string()))?;
                set.rules
            }
            None => saved_behaviors.unwrap_or_default(),
        };
        let eventbridge = config.eventbridge_endpoint.clone().or_else(|| config.aws_endpoint.clone()).map(|endpoint| {
            crate::engine::delivery::EventBridgeSettings {
                endpoint,
                bus: config.event_bus_name.clone(),
                access_key_id: config.aws_access_key_id.clone(),
                secret_access_key: config.aws_secret_access_key.clone(),
            }
        });
        let sns = config.sns_endpoint.clone().or_else(|| config.aws_endpoint.clone()).map(|endpoint| {
            crate::engine::notifications::SnsSettings {
                endpoint,
                access_key_id: config.aws_access_key_id.clone(),
                secret_access_key: config.aws_secret_access_key.clone(),
            }
        });
        let lambda = config.lambda_endpoint.clone().or_else(|| config.aws_endpoint.clone()).map(|endpoint| {
            crate::engine::invoker::LambdaSettings {
                endpoint,
                access_key_id: config.lambda_access_key_id.clone(),
                secret_access_key: config.lambda_secret_access_key.clone(),
            }
        });
        if config.behaviors.is_some() {
            let rules = serde_json::to_string(&behaviors).unwrap_or_default();
            store.save_setting(crate::storage::META_BEHAVIORS, &rules).map_err(|e| StartupError::Storage(e.0))?;
        }
        let engine = Arc::new(
            Engine::new(
                config.action_duration_ms,
                behaviors,
                Arc::clone(&catalogue),
                lambda,
                config.event_history,
                eventbridge,
                sns,
            )
            .numbering_events_with(store.event_sequence()),
        );
        let defaults = Defaults { account: config.default_account.clone(), region: config.default_region.clone() };
        let store = Arc::new(store);
        let mut partners = Vec::new();
        if let Some(path) = &config.third_party_action_types {
            let failed = |e: String| StartupError::Partners(path.display().to_string(), e);
            let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
            let file: control::PartnerTypeFile = serde_json::from_str(&text).map_err(|e| failed(e.to_string()))?;
            for spec in file.action_types {
                let scope = Scope {
                    account: spec.account.clone().unwrap_or_else(|| config.default_account.clone()),
                    region: spec.region.clone().unwrap_or_else(|| config.default_region.clone()),
                };
                // A partner type kept in the data directory keeps its client id and token: its workers still hold them.
                let id = control::partner_type_id(&spec);
                let kept = store.read(&scope, |data| data.third_party_types.get(&id).cloned());
                let record = match kept {
                    Some(record) => record,
                    None => {
                        control::register_partner(&store, &catalogue, &scope, spec).map_err(|e| failed(e.message))?
                    }
                };
                partners.push((scope, record));
            }
        }
        let state = AppState {
            inner: Arc::new(Inner {
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
                closing: tokio::sync::watch::Sender::new(false),
            }),
        };
        state.inner.engine.resume(&state.inner.store);
        state.start_scheduler();
        Ok(state)
    }

    /// Starts the engine's scheduler if it is not running and a Tokio runtime is at hand (state created outside one
    /// gets its scheduler when it is first served).
    fn start_scheduler(&self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let inner = &self.inner;
            inner
                .scheduler
                .get_or_init(|| Scheduler::start(Arc::clone(&inner.engine), Arc::clone(&inner.store), &runtime));
        }
    }

    /// Stops the engine's scheduler and waits for it.
    async fn stop_scheduler(&self) {
        let Some(scheduler) = self.inner.scheduler.get() else { return };
        let _ = scheduler.stop.send(true);
        let task = scheduler.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!("the scheduler ended abnormally: {e}");
        }
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
    pub fn import(&self, document: crate::state::document::Document) -> Result<(), ApiError> {
        let behaviors = self.inner.store.import(document).map_err(|e| match e {
            crate::state::ImportError::Invalid(message) => {
                ApiError::validation(format!("Invalid state document: {message}"))
            }
            crate::state::ImportError::Unavailable(unavailable) => unavailable.into(),
        })?;
        self.inner.engine.cancel_timers(|_| true);
        if let Some(rules) = behaviors {
            self.inner.engine.set_behaviors(rules);
        }
        self.inner.engine.resume(&self.inner.store);
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

    /// The address the server listens on, once it does.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.local_addr.get().copied()
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
    Open(#[from] crate::storage::OpenError),
    #[error("cannot use the state file {0}: {1}")]
    StateFile(String, String),
    #[error("cannot save state: {0}")]
    Storage(String),
}

/// The store a configuration asks for: in memory, or opened from the data directory; seeded from the state file
/// when there is one (and the data directory holds nothing yet). Also returns the behaviour rules they kept.
fn open_store(config: &Config) -> Result<(Store, Option<Vec<crate::engine::behaviors::BehaviorRule>>), StartupError> {
    let (store, mut behaviors) = match &config.data_dir {
        Some(dir) => {
            let options = crate::storage::Options {
                dir: dir.clone(),
                full_sync: config.full_sync,
                max_bytes: config.max_data_bytes,
            };
            let (storage, document) = crate::storage::Storage::open(&options)?;
            let behaviors = document.behaviors.clone();
            let shown = storage.path().display().to_string();
            let store =
                Store::with_storage(storage, document).map_err(|e| crate::storage::OpenError::Corrupt(shown, e))?;
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
            let document: crate::state::document::Document =
                serde_json::from_str(&text).map_err(|e| failed(e.to_string()))?;
            let imported = store.import(document).map_err(|e| failed(e.to_string()))?;
            behaviors = imported.or(behaviors);
            tracing::info!(file = %shown, partitions = store.partition_count(), "state file loaded");
        }
    }
    Ok((store, behaviors))
}

/// The log target of the `Ready.` line, which the binary enables at every log level.
pub const READY_TARGET: &str = "codepipeline_local::ready";

/// The id of a request, as sent in `x-amzn-RequestId`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The whole HTTP surface: the AWS JSON endpoint at `/` and the emulator's own endpoints. The state's engine runs
/// while the router (or any other handle to the state) lives.
pub fn app(state: AppState) -> Router {
    state.start_scheduler();
    Router::new()
        .route("/", post(aws_json).get(root_page).fallback(method_not_allowed))
        .merge(control::routes(&state))
        .merge(crate::triggers::routes(&state))
        .fallback(not_found)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(state.clone(), durable_layer))
        .layer(middleware::from_fn(request_id_layer))
        .with_state(state)
}

/// Holds every answer until what it depends on is on disk (with `--data-dir`): the writes the request made and the
/// changes still being saved that it read. A change that could not be saved was not made, and the answer is a 503
/// `ServiceUnavailableException` instead.
async fn durable_layer(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let store = app.store();
    let (response, tickets) = store.tracking(next.run(request)).await;
    match store.durable(&tickets).await {
        Ok(()) => response,
        Err(unavailable) => ApiError::from(unavailable).into_response(),
    }
}

/// Gives every request an id, and every response (success, error, even a caught panic) the `x-amzn-RequestId`
/// header.
async fn request_id_layer(mut request: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::try_from(id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// `POST /`: one AWS JSON 1.1 request.
async fn aws_json(State(app): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let request_id = parts.extensions.get::<RequestId>().map_or("", |r| r.0.as_str());
    let op = route(parts.headers.get("x-amz-target").map(HeaderValue::as_bytes));
    let operation = op.as_ref().map_or("-", |op| op.name());
    let result = handle(&app, request_id, &parts.uri, &parts.headers, body, op).await;
    let elapsed_us = started.elapsed().as_micros();
    match result {
        Ok(reply) => {
            tracing::debug!(operation, request_id, elapsed_us, "ok");
            reply.into_response()
        }
        Err(error) => {
            if error.code.status().is_server_error() {
                tracing::error!(operation, request_id, code = %error.code, message = %error.message, "request failed");
            } else {
                tracing::debug!(operation, request_id, elapsed_us, code = %error.code, message = %error.message, "error");
            }
            error.into_response()
        }
    }
}

async fn handle(
    app: &AppState,
    request_id: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    op: Result<Operation, ApiError>,
) -> Result<Reply, ApiError> {
    // Read the body before anything can fail, so the connection stays reusable whatever the answer.
    let bytes = read_limited(headers, body, MAX_BODY_BYTES, app.config().body_timeout).await?;
    let op = op?;
    check_content_type(headers)?;
    let value = parse_json(&bytes)?;
    let base = || base_url(app, headers);
    let ctx = Ctx {
        store: app.store(),
        scope: scope_of(headers, uri.query(), &app.inner.defaults),
        catalogue: &app.inner.catalogue,
        engine: &app.inner.engine,
        request_id,
        base_url: &base,
    };
    operations::dispatch(&ctx, app.model(), op, value)
}

/// The base of URLs handed out: `--public-url`, else the `Host` the client used when it is a plain `host[:port]`,
/// else the address the server listens on.
fn base_url(app: &AppState, headers: &HeaderMap) -> String {
    let config = app.config();
    if let Some(url) = &config.public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| crate::control::guard::split_authority(h).is_some())
        .map(str::to_string);
    let host = host.unwrap_or_else(|| match app.local_addr() {
        // A wildcard address is no place to send anyone; loopback reaches it from this machine.
        Some(addr) if addr.ip().is_unspecified() => format!("localhost:{}", addr.port()),
        Some(addr) => addr.to_string(),
        None => format!("{}:{}", config.host, config.port),
    });
    format!("http://{host}")
}

/// `GET /`: a browser is sent to the dashboard; anything else is told how CodePipeline requests look.
async fn root_page(headers: HeaderMap) -> Response {
    if control::ui::wants_html(&headers) {
        return axum::response::Redirect::to(control::ui::PATH).into_response();
    }
    method_not_allowed().await.into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowedException, "CodePipeline requests are POST / with an X-Amz-Target header")
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFoundException,
        format!("No such endpoint: {}", uri.path().chars().take(200).collect::<String>()),
    )
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(detail, "a handler panicked");
    let mut response =
        ApiError::new(ErrorCode::InternalFailure, "An internal error occurred in codepipeline-local").into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Serves `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn run<F>(listener: TcpListener, state: AppState, shutdown: F) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr()?;
    let _ = state.inner.local_addr.set(addr);
    let config = state.config();
    tracing::info!(
        target: READY_TARGET,
        "codepipeline-local {} listening on http://{addr} (default region {}, default account {}). Ready.",
        env!("CARGO_PKG_VERSION"),
        config.default_region,
        config.default_account,
    );
    let timeouts =
        Timeouts { header: config.header_timeout, idle: config.idle_timeout, shutdown: config.shutdown_timeout };
    let closing = state.clone();
    let shutdown = async move {
        shutdown.await;
        closing.inner.closing.send_replace(true);
    };
    transport::serve(listener, app(state.clone()), timeouts, shutdown).await;
    state.stop_scheduler().await;
    tracing::info!("codepipeline-local stopped");
    Ok(())
}

/// A server running in the background, for tests and for embedding the emulator in another program.
pub struct RunningServer {
    addr: SocketAddr,
    state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl RunningServer {
    /// Binds `config.host:config.port` and starts serving in a background task.
    pub async fn start(config: Config) -> io::Result<RunningServer> {
        let listener = TcpListener::bind((config.host.as_str(), config.port)).await?;
        let addr = listener.local_addr()?;
        let state = AppState::new(config).map_err(io::Error::other)?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Ok(RunningServer { addr, state, shutdown: Some(tx), task: Some(task) })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of the server, e.g. `http://127.0.0.1:4566`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
