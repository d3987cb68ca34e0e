//! The HTTP server: the router, the request layer, the AWS JSON endpoint, start-up and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;

use crate::app::AppState;
use crate::app::init::Stage;
use crate::config::Config;
use crate::control;
use crate::operations::{self, Ctx};
use crate::protocol::body::{MAX_BODY_BYTES, check_content_type, read_limited};
use crate::protocol::identity::scope_of;
use crate::protocol::router::route;
use crate::protocol::{ApiError, ErrorCode, Operation, Reply};
use crate::transport::{self, Timeouts};

/// The log target of the `Ready.` line, which the binary enables at every log level.
pub const READY_TARGET: &str = "codepipeline_local::ready";

/// The id of a request, as sent in `x-amzn-RequestId`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The whole HTTP surface: the AWS JSON endpoint at `/` and the emulator's own endpoints. The state's engine runs
/// while the router (or any other handle to the state) lives.
pub fn app(state: AppState) -> Router {
    state.start_scheduler();
    // The watcher of local git repositories lives here, above the triggers it feeds (app/ knows nothing of them).
    if let (Ok(runtime), Some((weak, repos))) = (tokio::runtime::Handle::try_current(), state.claim_git_watch()) {
        runtime.spawn(crate::triggers::git::watch::run(weak, repos, state.config().poll_interval));
    }
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
    durably(&app, next.run(request)).await
}

/// The answer `answer` makes, once what it depends on is on disk (see [`durable_layer`]).
fn durably<'a>(app: &'a AppState, answer: impl Future<Output = Response> + 'a) -> impl Future<Output = Response> + 'a {
    // Combinators rather than an `async fn`, which would hold `answer` twice (see `store::commit::tracking`).
    let store = app.store();
    store.tracking(answer).then(move |(response, tickets)| async move {
        match store.durable(&tickets).await {
            Ok(()) => response,
            Err(unavailable) => ApiError::from(unavailable).into_response(),
        }
    })
}

/// Gives every request an id, and every response (success, error, even a caught panic) the `x-amzn-RequestId`
/// header.
async fn request_id_layer(request: Request, next: Next) -> Response {
    with_request_id(request, |request| next.run(request)).await
}

/// The answer `answer` makes to `request`, which gets an id first (see [`request_id_layer`]).
async fn with_request_id<F: Future<Output = Response>>(
    mut request: Request,
    answer: impl FnOnce(Request) -> F,
) -> Response {
    let id = new_request_id();
    request.extensions_mut().insert(RequestId(id.clone()));
    with_id_header(answer(request).await, id)
}

/// A fresh request id.
fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `response` with the request id in its `x-amzn-RequestId` header (the id's bytes are moved, not copied).
fn with_id_header(mut response: Response, id: String) -> Response {
    if let Ok(value) = HeaderValue::from_maybe_shared(bytes::Bytes::from(id)) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// What the transport hands every request to: `POST /`, the AWS JSON endpoint that nearly every request is for, goes
/// straight to its handler with the request id, durability and panic handling the router's layers give every other
/// route ([`app`] routes it the same way), without the router's per-request routing and boxed layers; everything
/// else goes through the router.
#[derive(Clone)]
pub struct Front {
    router: Router,
    app: AppState,
}

/// The transport's front door for `state` (see [`Front`]).
pub fn front(state: AppState) -> Front {
    Front { router: app(state.clone()), app: state }
}

impl transport::Front for Front {
    fn answer(&self, peer: SocketAddr, mut request: Request) -> transport::Answer {
        if request.method() == axum::http::Method::POST && request.uri().path() == "/" {
            let app = self.app.clone();
            return Box::pin(async move {
                // What the router's layers do, with the id handed to the handler rather than through extensions.
                let id = new_request_id();
                let answer = durably(&app, async {
                    let handled = std::panic::AssertUnwindSafe(answer_aws(&app, &id, request));
                    handled.catch_unwind().await.unwrap_or_else(panic_response)
                })
                .await;
                with_id_header(answer, id)
            });
        }
        // The router's routes may ask who is calling (webhooks' IP ranges).
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let router = self.router.clone();
        // One debug line per request, as the AWS endpoint's; the path only (a query may carry a token).
        let logged = tracing::enabled!(tracing::Level::DEBUG)
            .then(|| (request.method().clone(), request.uri().path().chars().take(200).collect::<String>()));
        let started = Instant::now();
        Box::pin(async move {
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if let Some((method, path)) = logged {
                let elapsed_us = started.elapsed().as_micros();
                tracing::debug!(%method, %path, status = response.status().as_u16(), elapsed_us, "request");
            }
            response
        })
    }
}

/// `POST /`: one AWS JSON 1.1 request.
async fn aws_json(State(app): State<AppState>, request: Request) -> Response {
    let id = request.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    answer_aws(&app, &id, request).await
}

/// The answer to one AWS JSON 1.1 request whose id is `request_id`.
async fn answer_aws(app: &AppState, request_id: &str, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let op = route(parts.headers.get("x-amz-target").map(HeaderValue::as_bytes));
    let operation = op.as_ref().map_or("-", |op| op.name());
    let result = handle(app, request_id, &parts.uri, &parts.headers, body, op).await;
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
    // With --verify-signatures, who signed decides the account; the wall clock judges the signature's time.
    let (scope, principal) = match app.principals() {
        Some(principals) => {
            let (principal, region) = principals.verify("POST", uri, headers, &bytes).await?;
            (crate::state::Scope { account: principal.account.clone(), region }, Some(principal))
        }
        None => (scope_of(headers, uri.query(), app.defaults()), None),
    };
    let op = op?;
    check_content_type(headers)?;
    let base = || base_url(app, headers);
    let ctx = Ctx {
        store: app.store(),
        scope,
        principal,
        enforce: app.principals().is_some_and(|p| p.enforce()),
        catalogue: app.catalogue(),
        engine: app.engine(),
        request_id,
        base_url: &base,
    };
    operations::dispatch(&ctx, app.model(), op, &bytes)
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

/// `GET /`: a browser is sent to the dashboard; anything else is told how CodePipeline requests look, and where the
/// health check and the dashboard are.
async fn root_page(headers: HeaderMap) -> Response {
    if control::ui::wants_html(&headers) {
        return axum::response::Redirect::to(control::ui::PATH).into_response();
    }
    ApiError::new(
        ErrorCode::MethodNotAllowedException,
        format!(
            "This is codepipeline-local's AWS endpoint: CodePipeline requests are POST / with an X-Amz-Target header. \
             GET /health says whether it runs; the dashboard is at {} (open it in a browser)",
            control::ui::PATH
        ),
    )
    .into_response()
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
    state.set_local_addr(addr);
    // Init hooks: boot and start scripts before the server answers; ready scripts once it does; shutdown scripts
    // when it is asked to stop, while it still answers.
    state.run_init_stage(Stage::Boot).await;
    state.run_init_stage(Stage::Start).await;
    let config = state.config();
    tracing::info!(
        target: READY_TARGET,
        "codepipeline-local {} listening on http://{addr} (default region {}, default account {}). Ready.",
        env!("CARGO_PKG_VERSION"),
        config.default_region,
        config.default_account,
    );
    let timeouts = Timeouts {
        header: config.header_timeout,
        idle: config.idle_timeout,
        shutdown: config.shutdown_timeout,
        write: config.write_timeout,
    };
    let ready = state.clone();
    let ready = tokio::spawn(async move { ready.run_init_stage(Stage::Ready).await });
    let closing = state.clone();
    let shutdown = async move {
        shutdown.await;
        ready.abort();
        closing.run_init_stage(Stage::Shutdown).await;
        closing.close();
    };
    transport::serve(listener, front(state.clone()), timeouts, shutdown).await;
    state.stop_scheduler().await;
    tracing::info!("codepipeline-local stopped");
    Ok(())
}

/// A server running in the background, for tests and for embedding the emulator in another program: a Rust
/// project's tests can start one in their own process, without a container, and point the AWS SDK at it. It stops
/// when dropped (or, waiting for in-flight requests, with [`RunningServer::shutdown`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use aws_sdk_codepipeline::config::{BehaviorVersion, Credentials, Region};
///
/// let emulator = codepipeline_local::RunningServer::ephemeral().await?;
/// let config = aws_sdk_codepipeline::Config::builder()
///     .behavior_version(BehaviorVersion::latest())
///     .endpoint_url(emulator.url())
///     .region(Region::new("us-east-1"))
///     .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
/// #   .http_client(aws_smithy_http_client::Builder::new().build_http())
///     .build();
/// let client = aws_sdk_codepipeline::Client::from_conf(config);
/// let listed = client.list_pipelines().send().await?;
/// assert!(listed.pipelines().is_empty());
/// emulator.shutdown().await?;
/// # Ok(())
/// # }
/// ```
pub struct RunningServer {
    addr: SocketAddr,
    state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl RunningServer {
    /// Starts an emulator for a test: in memory, on a free loopback port, with every other setting at its default
    /// (`CODEPIPELINE_LOCAL_*` variables are not read, nor `/etc/localstack/init`); [`RunningServer::url`] is its
    /// endpoint.
    pub async fn ephemeral() -> io::Result<RunningServer> {
        let config = Config { host: "127.0.0.1".into(), port: 0, localstack_init_dir: None, ..Config::default() };
        RunningServer::start(config).await
    }

    /// Binds `config.host:config.port` and starts serving in a background task (port 0: a free port).
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
