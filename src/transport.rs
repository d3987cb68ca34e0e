//! The HTTP/1.1 connection layer: the accept loop, per-connection time bounds, and a graceful shutdown that ends
//! within a bound.
//!
//! Each connection is served by hyper in its own task, watched by a small state machine ([`Watch`]):
//!
//! | the connection is ...                              | it is closed when ...                                |
//! |----------------------------------------------------|------------------------------------------------------|
//! | idle (just opened, or its last response was sent)  | no byte of a next request arrives within `idle`      |
//! | receiving a request head                           | the head is not complete within `header` of its first byte |
//! | receiving a request body                           | no body data arrives for `body` (see `protocol::body`) |
//!
//! A request being answered is never cut short by these bounds. On shutdown the server stops accepting, lets each
//! connection finish the request it is answering and closes it, and after `shutdown` closes whatever is left (a
//! half-sent request, a client that stopped reading).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

/// The time bounds of connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first byte of a request to the end of its head.
    pub header: Duration,
    /// How long an open connection may wait for the first byte of its next request.
    pub idle: Duration,
    /// How long the server waits, after a shutdown was asked for, for connections to finish.
    pub shutdown: Duration,
}

/// What a connection is doing, for its time bounds.
#[derive(Debug)]
struct WatchState {
    /// Requests handed to the router whose responses have not been sent completely.
    in_flight: u32,
    /// Since when the connection has been idle (opened, or its last response sent), if it is.
    idle_since: Option<Instant>,
    /// When the first byte of the request head now arriving was read, if one is arriving.
    head_since: Option<Instant>,
}

/// The state of one connection, shared by its socket wrapper, its requests and its task.
#[derive(Debug)]
struct Watch {
    state: Mutex<WatchState>,
    /// Woken when a response has been sent, so the task arms the idle bound.
    changed: Notify,
}

impl Watch {
    fn new() -> Watch {
        let state = WatchState { in_flight: 0, idle_since: Some(Instant::now()), head_since: None };
        Watch { state: Mutex::new(state), changed: Notify::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes arrived from the client.
    fn read(&self) {
        let mut state = self.lock();
        if state.in_flight == 0 && state.head_since.is_none() {
            state.head_since = Some(Instant::now());
        }
    }

    /// A request's head is complete and the request goes to the router.
    fn request_started(&self) {
        let mut state = self.lock();
        state.in_flight += 1;
        state.idle_since = None;
        state.head_since = None;
    }

    /// A response has been sent (or given up).
    fn request_ended(&self) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.idle_since = Some(Instant::now());
            state.head_since = None;
        }
        drop(state);
        self.changed.notify_one();
    }

    /// When the connection is to be closed if nothing happens before, and why.
    fn deadline(&self, timeouts: &Timeouts) -> Option<(Instant, &'static str)> {
        let state = self.lock();
        if state.in_flight > 0 {
            return None;
        }
        match (state.head_since, state.idle_since) {
            (Some(head), _) => Some((head + timeouts.header, "the request head was not complete in time")),
            (None, Some(idle)) => Some((idle + timeouts.idle, "the connection was idle too long")),
            (None, None) => None,
        }
    }
}

/// The client socket, reporting reads to the connection's [`Watch`].
struct Watched {
    stream: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.watch.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Marks its request ended when dropped: when hyper has sent the response body, or dropped it.
struct InFlight(Arc<Watch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A response body that keeps its request in flight until it has been sent.
struct TrackedBody {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Hands a connection's requests to the router, with the peer's address and in-flight tracking.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    watch: Arc<Watch>,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.watch.request_started();
        let in_flight = InFlight(Arc::clone(&self.watch));
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        Box::pin(async move {
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok(response.map(|body| TrackedBody { body, _in_flight: in_flight }))
        })
    }
}

/// Serves one connection until it ends, a time bound closes it, or shutdown has let it finish.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    timeouts: Timeouts,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let watch = Arc::new(Watch::new());
    let io = TokioIo::new(Watched { stream, watch: Arc::clone(&watch) });
    let service = ConnectionService { router, peer, watch: Arc::clone(&watch) };
    let connection = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    if *stopping.borrow() {
        connection.as_mut().graceful_shutdown();
        draining = true;
    }
    loop {
        let deadline = watch.deadline(&timeouts);
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                return;
            }
            () = sleep_until(deadline.map(|(at, _)| at)), if deadline.is_some() => {
                if let Some((at, why)) = watch.deadline(&timeouts)
                    && at <= Instant::now()
                {
                    tracing::debug!(%peer, "closing a connection: {why}");
                    return;
                }
            }
            () = watch.changed.notified() => {}
            _ = stopping.changed(), if !draining => {
                // Idle connections close at once; one answering a request closes after its response.
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Accepts connections on `listener` and serves them with `router` until `shutdown` completes; then lets them
/// finish for at most `timeouts.shutdown` and closes the rest.
pub async fn serve<F>(listener: TcpListener, router: Router, timeouts: Timeouts, shutdown: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, router.clone(), timeouts, stopping.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let drained =
        tokio::time::timeout(timeouts.shutdown, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "connections still open {:?} after shutdown began were closed",
            timeouts.shutdown
        );
        connections.shutdown().await;
    }
}
