//! The HTTP/1.1 connection layer: the accept loop, per-connection time bounds, and a graceful shutdown that ends
//! within a bound.
//!
//! Each connection is served by hyper in its own task, watched by a small state machine (`Watch`):
//!
//! | the connection is ...                              | it is closed when ...                                |
//! |----------------------------------------------------|------------------------------------------------------|
//! | idle (just opened, or its last response was sent)  | no byte of a next request arrives within `idle`      |
//! | receiving a request head                           | the head is not complete within `header` of its first byte |
//! | receiving a request body                           | no body data arrives for `body` (see `protocol::body`) |
//! | sending, to a client that stopped reading          | no byte could be written for `write`                 |
//!
//! A request being answered is never cut short by the first three bounds; the last closes a connection whatever it
//! is doing (a live event stream whose reader stopped reading, a large answer to a client that went away), so that
//! no reader can pin a connection and its buffers. On shutdown the server stops accepting, lets each
//! connection finish the request it is answering and closes it, and after `shutdown` closes whatever is left (a
//! half-sent request, a client that stopped reading).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The time bounds of connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first byte of a request to the end of its head.
    pub header: Duration,
    /// How long an open connection may wait for the first byte of its next request.
    pub idle: Duration,
    /// How long the server waits, after a shutdown was asked for, for connections to finish.
    pub shutdown: Duration,
    /// How long a response may wait for the client to take more of it.
    pub write: Duration,
}

/// What one connection is doing, for its time bounds; shared by its socket wrapper, its requests and its task.
/// Atomics rather than a lock: the socket reports every read, so the common path is two relaxed loads.
#[derive(Debug)]
struct Watch {
    /// When the connection was opened; the times below count milliseconds from it, plus one (0 is "none").
    opened: Instant,
    /// Requests handed to the router whose responses have not been sent completely.
    in_flight: AtomicU32,
    /// Since when the connection has been idle (opened, or its last response sent), if it is.
    idle_since: AtomicU64,
    /// When the first byte of the request head now arriving was read, if one is arriving.
    head_since: AtomicU64,
    /// Since when a write has been waiting for the client to read, if one is.
    write_blocked_since: AtomicU64,
}

impl Watch {
    fn new() -> Watch {
        Watch {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(1),
            head_since: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
        }
    }

    /// Now, as a time of this connection (never 0).
    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1).saturating_add(1)
    }

    fn at(&self, time: u64) -> Instant {
        self.opened + Duration::from_millis(time.saturating_sub(1))
    }

    /// Bytes arrived from the client.
    fn read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0 && self.head_since.load(Ordering::Relaxed) == 0 {
            self.head_since.store(self.now(), Ordering::Relaxed);
        }
    }

    /// A write could not proceed: the client's receive window and the socket's buffer are full.
    fn write_blocked(&self) {
        if self.write_blocked_since.load(Ordering::Relaxed) == 0 {
            self.write_blocked_since.store(self.now(), Ordering::Relaxed);
        }
    }

    /// A write went through.
    fn wrote(&self) {
        if self.write_blocked_since.load(Ordering::Relaxed) != 0 {
            self.write_blocked_since.store(0, Ordering::Relaxed);
        }
    }

    /// A request's head is complete and the request goes to the router.
    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.idle_since.store(0, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
    }

    /// A response has been sent (or given up).
    fn request_ended(&self) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.head_since.store(0, Ordering::Relaxed);
            self.idle_since.store(self.now(), Ordering::Relaxed);
        }
    }

    /// When the connection is to be closed if nothing happens before, and why; `None` while a request is being
    /// answered.
    fn deadline(&self, timeouts: &Timeouts) -> Option<(Instant, &'static str)> {
        let blocked = self.write_blocked_since.load(Ordering::Relaxed);
        if blocked != 0 {
            return Some((self.at(blocked) + timeouts.write, "the client stopped reading"));
        }
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        match (self.head_since.load(Ordering::Relaxed), self.idle_since.load(Ordering::Relaxed)) {
            (0, 0) => None,
            (0, idle) => Some((self.at(idle) + timeouts.idle, "the connection was idle too long")),
            (head, _) => Some((self.at(head) + timeouts.header, "the request head was not complete in time")),
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

impl Watched {
    /// Reports whether a write went through or waits for the client.
    fn noted<T>(&self, polled: Poll<T>) -> Poll<T> {
        match polled {
            Poll::Pending => self.watch.write_blocked(),
            Poll::Ready(_) => self.watch.wrote(),
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.noted(polled)
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
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.noted(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Marks its request ended when dropped: when hyper has sent the response body, or dropped it.
pub struct InFlight(Arc<Watch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A response body that keeps its request in flight until it has been sent.
pub struct TrackedBody {
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

/// What connections hand their requests to (the server's is `server::Front`).
pub trait Front: Clone + Send + Sync + 'static {
    /// The answer to `request`, which came from `peer`.
    fn answer(&self, peer: SocketAddr, request: Request<Body>) -> Answer;
}

/// An answer being made.
pub type Answer = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// Hands a connection's requests to the front door, tracking which are in flight.
#[derive(Clone)]
struct ConnectionService<S> {
    router: S,
    watch: Arc<Watch>,
    /// The client's address, handed to the front door with every request.
    peer: SocketAddr,
}

impl<S: Front> hyper::service::Service<Request<Incoming>> for ConnectionService<S> {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Answering;

    fn call(&self, request: Request<Incoming>) -> Answering {
        self.watch.request_started();
        let in_flight = Some(InFlight(Arc::clone(&self.watch)));
        Answering { answer: self.router.answer(self.peer, request.map(Body::new)), in_flight }
    }
}

/// The answer to a request, whose body keeps the request in flight until it is sent (a named future, so that no
/// second allocation wraps the front door's).
pub struct Answering {
    answer: Answer,
    in_flight: Option<InFlight>,
}

impl Future for Answering {
    type Output = Result<Response<TrackedBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let response = std::task::ready!(this.answer.as_mut().poll(cx));
        let Some(in_flight) = this.in_flight.take() else {
            // Polled again after it was answered: a bug in the caller; answer nothing more.
            return Poll::Pending;
        };
        Poll::Ready(Ok(response.map(|body| TrackedBody { body, _in_flight: in_flight })))
    }
}

/// Serves one connection until it ends, a time bound closes it, or shutdown has let it finish.
async fn serve_connection<S: Front>(
    stream: TcpStream,
    peer: SocketAddr,
    router: S,
    timeouts: Timeouts,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let watch = Arc::new(Watch::new());
    let io = TokioIo::new(Watched { stream, watch: Arc::clone(&watch) });
    let service = ConnectionService { router, watch: Arc::clone(&watch), peer };
    let connection = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = *stopping.borrow();
    if draining {
        connection.as_mut().graceful_shutdown();
    }
    let stop = stopping.changed();
    tokio::pin!(stop);
    // One timer, checked when it fires rather than re-armed on every request: while requests are answered it comes
    // back every `idle`, and once the connection is idle it fires at the real deadline.
    let check_every = timeouts.idle.min(timeouts.header).min(timeouts.write);
    let timer = tokio::time::sleep(check_every);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            biased;
            served = connection.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                return;
            }
            () = timer.as_mut() => {
                let now = Instant::now();
                match watch.deadline(&timeouts) {
                    Some((at, why)) if at <= now => {
                        tracing::debug!(%peer, "closing a connection: {why}");
                        return;
                    }
                    Some((at, _)) => timer.as_mut().reset(at),
                    None => timer.as_mut().reset(now + check_every),
                }
            }
            _ = &mut stop, if !draining => {
                // Idle connections close at once; one answering a request closes after its response.
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// Accepts connections on `listener` and serves them with `router` until `shutdown` completes; then lets them
/// finish for at most `timeouts.shutdown` and closes the rest.
pub async fn serve<S, F>(listener: TcpListener, router: S, timeouts: Timeouts, shutdown: F)
where
    S: Front,
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
