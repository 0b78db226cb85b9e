//! Server settings and their defaults.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

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
    /// request. Larger batches get `413 batch_too_large`. Default 1024.
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            body_limit_bytes: 1 << 20,
            max_batch: 1024,
            max_sessions: 10_000,
            max_snapshots: 10_000,
            session_idle_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            worker_threads: None,
        }
    }
}

impl ServerConfig {
    /// Checks that every limit is usable (non-zero).
    pub fn check(&self) -> Result<(), ServerError> {
        let bad = |what: &str| Err(ServerError::Config(format!("{what} must be at least 1")));
        if self.body_limit_bytes == 0 {
            return bad("body_limit_bytes");
        }
        if self.max_batch == 0 {
            return bad("max_batch");
        }
        if self.max_sessions == 0 {
            return bad("max_sessions");
        }
        if self.max_snapshots == 0 {
            return bad("max_snapshots");
        }
        if self.session_idle_timeout.is_zero() {
            return Err(ServerError::Config("session_idle_timeout must be positive".into()));
        }
        if self.worker_threads == Some(0) {
            return bad("worker_threads");
        }
        Ok(())
    }
}
