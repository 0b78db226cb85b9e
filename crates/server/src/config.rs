//! Server settings and their defaults.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::auth::Tokens;
use crate::error::ServerError;

/// Everything the server can be told, with stated defaults (see [`ServerConfig::default`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub addr: SocketAddr,
    /// Largest request body accepted, in bytes; larger bodies get `413 body_too_large`.
    /// Default 1 MiB.
    pub body_limit_bytes: usize,
    /// Largest batch: tasks per sample request, items per score request, forks per fork
    /// request. Larger batches get `422 batch_too_large` (the OpenAPI document states the
    /// limit as the `maximum` of those fields). Default 1024.
    pub max_batch: usize,
    /// Live multi-turn sessions at once; a reset or fork past it gets `429 session_limit`.
    /// Default 10 000.
    pub max_sessions: usize,
    /// Stored snapshots at once; a snapshot past it gets `429 snapshot_limit`. Default 10 000.
    pub max_snapshots: usize,
    /// A session or snapshot not used for this long is dropped (a background sweeper runs
    /// every `timeout / 4`, at least every 5 s, and every access checks it too). Default 300 s.
    pub session_idle_timeout: Duration,
    /// After shutdown is requested, how long in-flight requests may take to finish before
    /// their connections are dropped (a client stalled mid-request cannot hold the server
    /// up forever). Default 30 s.
    pub shutdown_grace: Duration,
    /// Worker threads of the runtime [`serve_blocking`](crate::serve_blocking) builds
    /// (`None`: one per core). Results never depend on it.
    pub worker_threads: Option<usize>,
    /// Longest a client may take to send a request head (request line and headers),
    /// counted from the accept for a connection's first request and from the request's
    /// first byte on a kept-alive connection. Past it the connection is closed without a
    /// reply. Default 10 s.
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request body, counted from the end of its head.
    /// Past it the request gets `408 request_timeout` and the connection is closed.
    /// Default 30 s.
    pub body_read_timeout: Duration,
    /// Longest a kept-alive connection may wait for its next request; then it is closed.
    /// Default 60 s.
    pub keep_alive_timeout: Duration,
    /// Longest a response write may make no progress (a client that stops reading); then
    /// the connection is closed. Default 30 s.
    pub write_timeout: Duration,
    /// Most open connections. At the limit a new connection makes room by closing the one
    /// that has waited longest on its client (idle between requests first, then stalled in
    /// a head or a body); connections whose request is being handled are never closed, and
    /// when every connection has one, new connections wait in the listen backlog until one
    /// ends. Keep it below the process's descriptor limit. Default 512.
    pub max_connections: usize,
    /// Bearer tokens the server accepts (`None`: no authentication, every caller may do
    /// everything). See [`Tokens`] for the file format and what each role may do.
    pub auth: Option<Tokens>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            body_limit_bytes: 1 << 20,
            max_batch: DEFAULT_MAX_BATCH,
            max_sessions: 10_000,
            max_snapshots: 10_000,
            session_idle_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            worker_threads: None,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_connections: 512,
            auth: None,
        }
    }
}

/// The default `max_batch`, which the committed OpenAPI document states as its maximums.
pub(crate) const DEFAULT_MAX_BATCH: usize = 1024;

impl ServerConfig {
    /// Checks that every limit is usable (non-zero).
    pub fn check(&self) -> Result<(), ServerError> {
        let bad = |what: &str| Err(ServerError::Config(format!("{what} must be at least 1")));
        let counts = [
            ("body_limit_bytes", self.body_limit_bytes),
            ("max_batch", self.max_batch),
            ("max_sessions", self.max_sessions),
            ("max_snapshots", self.max_snapshots),
            ("max_connections", self.max_connections),
        ];
        for (what, n) in counts {
            if n == 0 {
                return bad(what);
            }
        }
        let durations = [
            ("session_idle_timeout", self.session_idle_timeout),
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("keep_alive_timeout", self.keep_alive_timeout),
            ("write_timeout", self.write_timeout),
        ];
        for (what, d) in durations {
            if d.is_zero() {
                return Err(ServerError::Config(format!("{what} must be positive")));
            }
        }
        if self.worker_threads == Some(0) {
            return bad("worker_threads");
        }
        Ok(())
    }
}
