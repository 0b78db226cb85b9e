//! Connections: the accept loop, the connection limit, and the timeouts that close stalled
//! clients.
//!
//! Each connection is in one of four phases, kept in a [`Slot`] that the socket wrapper
//! ([`Guarded`]), the per-request service and the request body ([`TrackedBody`]) update:
//!
//! | phase | from | deadline | enforced by |
//! |---|---|---|---|
//! | `HEAD` | accept, or the first byte of a request on a kept-alive connection | `header_read_timeout` | the connection is dropped ([`Watched`]) |
//! | `BUSY` | the head is parsed; the handler runs | none (handlers are bounded) | |
//! | `BODY` | the handler waits for body bytes that have not come | `body_read_timeout` from the end of the head | the body fails: `408 request_timeout`, then close |
//! | `IDLE` | the response is produced | `keep_alive_timeout` | the connection is dropped |
//!
//! A response write that makes no progress for `write_timeout` fails the connection in any
//! phase. At `max_connections`, a new connection makes room by closing the connection that
//! has waited longest on its client: `IDLE` ones first, then `HEAD` and `BODY` ones, oldest
//! first; `BUSY` ones are never closed. When all are `BUSY`, the acceptor waits for one to
//! end (new connections queue in the kernel's backlog). When `accept` itself fails for lack
//! of descriptors, the same rule frees one and the acceptor tries again at once; when there
//! is none to free, it backs off for [`ACCEPT_BACKOFF`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::{Instant, Sleep};

use crate::config::ServerConfig;
use crate::sessions::lock;

const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;
const BODY: u8 = 3;

/// How long the acceptor pauses after an `accept` failure that is not about one connection
/// (out of descriptors or memory).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// The timeouts every connection is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub header: Duration,
    pub body: Duration,
    pub keep_alive: Duration,
    pub write: Duration,
}

impl Timeouts {
    pub fn of(config: &ServerConfig) -> Timeouts {
        Timeouts {
            header: config.header_read_timeout,
            body: config.body_read_timeout,
            keep_alive: config.keep_alive_timeout,
            write: config.write_timeout,
        }
    }
}

/// One connection's phase, when it began, and the signal that closes it.
pub(crate) struct Slot {
    phase: AtomicU8,
    /// Microseconds from the registry's epoch to the start of the phase.
    since: AtomicU64,
    evict: Notify,
}

impl Slot {
    fn enter(&self, phase: u8, at: u64) {
        self.since.store(at, Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
    }

    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }

    fn since(&self) -> u64 {
        self.since.load(Ordering::Relaxed)
    }
}

/// Every open connection, and the connection limit.
pub(crate) struct Registry {
    epoch: Instant,
    max: usize,
    live: Mutex<HashMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
    /// Connections whose task has not ended (evicted ones included until they close).
    open: AtomicUsize,
    /// A connection ended: room for a waiting accept.
    freed: Notify,
    /// The last connection ended.
    drained: Notify,
}

impl Registry {
    pub fn new(max: usize) -> Registry {
        Registry {
            epoch: Instant::now(),
            max,
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            freed: Notify::new(),
            drained: Notify::new(),
        }
    }

    /// Microseconds since the epoch.
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn at(&self, us: u64) -> Instant {
        self.epoch + Duration::from_micros(us)
    }

    /// Open connections (not counting evicted ones that are still closing).
    pub fn live(&self) -> usize {
        lock(&self.live).len()
    }

    /// The connection to close for room: idle first, then the longest stalled.
    fn victim(live: &HashMap<u64, Arc<Slot>>) -> Option<u64> {
        live.iter()
            .filter(|(_, s)| s.phase() != BUSY)
            .min_by_key(|(_, s)| (s.phase() != IDLE, s.since()))
            .map(|(id, _)| *id)
    }

    /// Closes the connection [`Registry::victim`] picks; false if every one is busy.
    pub fn evict_one(&self) -> bool {
        let mut live = lock(&self.live);
        match Self::victim(&live).and_then(|id| live.remove(&id)) {
            Some(slot) => {
                slot.evict.notify_one();
                true
            }
            None => false,
        }
    }

    /// Closes every connection now.
    fn evict_all(&self) {
        for (_, slot) in lock(&self.live).drain() {
            slot.evict.notify_one();
        }
    }

    /// Registers a new connection if there is room, making room if it can.
    fn try_admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut live = lock(&self.live);
        if live.len() >= self.max {
            let slot = Self::victim(&live).and_then(|id| live.remove(&id))?;
            slot.evict.notify_one();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            phase: AtomicU8::new(HEAD),
            since: AtomicU64::new(self.now_us()),
            evict: Notify::new(),
        });
        live.insert(id, Arc::clone(&slot));
        self.open.fetch_add(1, Ordering::AcqRel);
        Some(Admitted { registry: Arc::clone(self), id, slot })
    }

    /// Registers a new connection, waiting for room while every connection is busy; `None`
    /// if `stop` turns true first.
    async fn admit(self: &Arc<Self>, stop: &mut watch::Receiver<bool>) -> Option<Admitted> {
        loop {
            let mut freed = pin!(self.freed.notified());
            freed.as_mut().enable();
            if let Some(admitted) = self.try_admit() {
                return Some(admitted);
            }
            tokio::select! {
                _ = freed => {}
                _ = stop.wait_for(|s| *s) => return None,
            }
        }
    }

    /// Waits until every connection has ended.
    async fn wait_drained(&self) {
        loop {
            let mut drained = pin!(self.drained.notified());
            drained.as_mut().enable();
            if self.open.load(Ordering::Acquire) == 0 {
                return;
            }
            drained.await;
        }
    }
}

/// A registered connection; dropping it deregisters it.
struct Admitted {
    registry: Arc<Registry>,
    id: u64,
    slot: Arc<Slot>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        lock(&self.registry.live).remove(&self.id);
        self.registry.freed.notify_one();
        if self.registry.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.registry.drained.notify_waiters();
        }
    }
}

/// Arms `timer` for `deadline` (re-arming only when it would fire too late or has fired)
/// and polls it: ready once the deadline has passed.
fn poll_deadline(timer: &mut Option<Pin<Box<Sleep>>>, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
    if Instant::now() >= deadline {
        return Poll::Ready(());
    }
    let t = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
    if t.deadline() > deadline || t.is_elapsed() {
        t.as_mut().reset(deadline);
    }
    // A timer that fires early (armed for an earlier phase) wakes the task, whose next poll
    // finds the deadline not yet passed and re-arms it.
    match t.as_mut().poll(cx) {
        Poll::Ready(()) if Instant::now() >= deadline => Poll::Ready(()),
        Poll::Ready(()) => {
            t.as_mut().reset(deadline);
            let _ = t.as_mut().poll(cx);
            Poll::Pending
        }
        Poll::Pending => Poll::Pending,
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

type Http1 = hyper::server::conn::http1::Connection<TokioIo<Guarded>, ConnService>;

/// A connection held to its phase deadline: after every poll of the connection (which is
/// where phases change) the deadline of the phase it is in now is armed; past it, the
/// connection is dropped, which closes it.
struct Watched {
    conn: Pin<Box<Http1>>,
    slot: Arc<Slot>,
    registry: Arc<Registry>,
    timeouts: Timeouts,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Watched {
    fn deadline(&self) -> Option<Instant> {
        let limit = match self.slot.phase() {
            IDLE => self.timeouts.keep_alive,
            HEAD => self.timeouts.header,
            _ => return None,
        };
        Some(self.registry.at(self.slot.since()) + limit)
    }
}

impl Future for Watched {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.conn.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        match this.deadline() {
            Some(deadline) => poll_deadline(&mut this.timer, deadline, cx),
            None => Poll::Pending,
        }
    }
}

/// The socket: marks the first byte of each request, and holds hyper to `write_timeout`
/// while it waits to write.
struct Guarded {
    tcp: TcpStream,
    slot: Arc<Slot>,
    registry: Arc<Registry>,
    timeouts: Timeouts,
    write_timer: Option<Pin<Box<Sleep>>>,
    /// When the current run of pending writes began.
    write_blocked: Option<Instant>,
}

impl Guarded {
    fn poll_write_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let since = *self.write_blocked.get_or_insert_with(Instant::now);
        ready!(poll_deadline(&mut self.write_timer, since + self.timeouts.write, cx));
        Poll::Ready(timed_out("the client did not read the response within write_timeout"))
    }

    fn wrote<T>(&mut self, r: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => self.poll_write_stall(cx).map(Err),
            done => {
                self.write_blocked = None;
                done
            }
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if buf.filled().len() > before && this.slot.phase() == IDLE {
            // The first byte of the next request: its head is on the clock now.
            this.slot.enter(HEAD, this.registry.now_us());
        }
        r
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.tcp).poll_write(cx, buf);
        this.wrote(r, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        this.wrote(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.tcp).poll_flush(cx);
        this.wrote(r, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.tcp).poll_shutdown(cx);
        this.wrote(r, cx)
    }
}

/// The body did not arrive within `body_read_timeout`.
#[derive(Debug)]
pub(crate) struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive within body_read_timeout")
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body on the clock: while the handler waits for bytes that have not come, the
/// connection is in `BODY`; past the deadline the body fails with [`BodyTimeout`].
struct TrackedBody {
    inner: Incoming,
    slot: Arc<Slot>,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if this.slot.phase() == BODY {
                    this.slot.phase.store(BUSY, Ordering::Release);
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if this.slot.phase() == BUSY {
                    // Keeps `since` (the end of the head): stalls are ranked by request age.
                    this.slot.phase.store(BODY, Ordering::Release);
                }
                ready!(poll_deadline(&mut this.timer, this.deadline, cx));
                Poll::Ready(Some(Err(Box::new(BodyTimeout))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

/// The router as one connection's hyper service: marks the phases around each request.
#[derive(Clone)]
struct ConnService {
    router: Router,
    slot: Arc<Slot>,
    registry: Arc<Registry>,
    body_timeout: Duration,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let now = self.registry.now_us();
        self.slot.enter(BUSY, now);
        let deadline = self.registry.at(now) + self.body_timeout;
        let req: Request = req.map(|inner| {
            Body::new(TrackedBody { inner, slot: Arc::clone(&self.slot), deadline, timer: None })
        });
        let mut router = self.router.clone();
        let (slot, registry) = (Arc::clone(&self.slot), Arc::clone(&self.registry));
        Box::pin(async move {
            let response = tower_service::Service::call(&mut router, req).await;
            slot.enter(IDLE, registry.now_us());
            response
        })
    }
}

/// Serves one connection until it ends, is evicted, or (after `stop`) finishes its request.
async fn run_connection(
    tcp: TcpStream,
    admitted: Admitted,
    router: Router,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) {
    let slot = Arc::clone(&admitted.slot);
    let registry = Arc::clone(&admitted.registry);
    let io = Guarded {
        tcp,
        slot: Arc::clone(&slot),
        registry: Arc::clone(&registry),
        timeouts,
        write_timer: None,
        write_blocked: None,
    };
    let service = ConnService {
        router,
        slot: Arc::clone(&slot),
        registry: Arc::clone(&registry),
        body_timeout: timeouts.body,
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(io), service);
    let mut watched =
        Watched { conn: Box::pin(conn), slot: Arc::clone(&slot), registry, timeouts, timer: None };
    let mut draining = false;
    loop {
        tokio::select! {
            biased;
            _ = &mut watched => break,
            _ = slot.evict.notified() => break,
            _ = stop.wait_for(|s| *s), if !draining => {
                draining = true;
                watched.conn.as_mut().graceful_shutdown();
            }
        }
    }
    drop(watched);
    drop(admitted);
}

/// Errors of `accept` that concern one incoming connection only.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Accepts and serves connections until `stop` turns true; then stops accepting, lets
/// every connection finish its request (idle ones close at once) for at most `grace`, and
/// closes whatever is left.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    registry: Arc<Registry>,
    timeouts: Timeouts,
    grace: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, _peer)) => {
                // Small request/response pairs: never wait for Nagle.
                let _ = tcp.set_nodelay(true);
                let Some(admitted) = registry.admit(&mut stop).await else { break };
                tokio::spawn(run_connection(tcp, admitted, router.clone(), timeouts, stop.clone()));
            }
            Err(e) if is_connection_error(&e) => {}
            Err(_) => {
                // Out of descriptors (or memory): free one if a connection waits on its
                // client and retry as soon as it has closed, else back off.
                if registry.evict_one() {
                    // Lets the evicted connection's task run and close its socket.
                    tokio::task::yield_now().await;
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, registry.wait_drained()).await.is_err() {
        registry.evict_all();
        // Evicted connections close on their next poll; do not wait on a stuck one forever.
        let _ = tokio::time::timeout(Duration::from_secs(1), registry.wait_drained()).await;
    }
}
