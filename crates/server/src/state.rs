//! The shared state every handler reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use gristmill_engine::Environment;
use serde_json::{json, Value};

use crate::config::ServerConfig;
use crate::envs::EnvEntry;
use crate::error::{ApiError, ErrorCode, ServerError};
use crate::sessions::Sessions;

/// What a server serves: its config, its environments (immutable after start) and its
/// session tables. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: ServerConfig,
    pub envs: HashMap<String, Arc<EnvEntry>>,
    /// Names in the order given.
    pub names: Vec<String>,
    pub sessions: Sessions,
    /// The body of `GET /v1/envs`, serialized once.
    pub envs_listing: Vec<u8>,
}

impl AppState {
    /// Builds the state for `envs` (name, environment). Names must be unique and the list
    /// non-empty; the config's limits must be non-zero.
    pub fn new(config: ServerConfig, envs: Vec<(String, Environment)>) -> Result<AppState, ServerError> {
        config.check()?;
        if envs.is_empty() {
            return Err(ServerError::NoEnvironments);
        }
        let mut map: HashMap<String, Arc<EnvEntry>> = HashMap::with_capacity(envs.len());
        let mut names = Vec::with_capacity(envs.len());
        for (i, (name, env)) in envs.into_iter().enumerate() {
            if let Some(first) = names.iter().position(|n| *n == name) {
                return Err(ServerError::DuplicateEnv {
                    name,
                    first: format!("environment #{first}"),
                    second: format!("environment #{i}"),
                });
            }
            names.push(name.clone());
            map.insert(name.clone(), Arc::new(EnvEntry::new(name, env)));
        }
        let listing: Vec<&Value> = names.iter().filter_map(|n| map.get(n)).map(|e| &e.listing).collect();
        let envs_listing = serde_json::to_vec(&json!({ "envs": listing }))
            .map_err(|e| ServerError::Config(format!("serializing the environment listing: {e}")))?;
        let sessions = Sessions::new(config.max_sessions, config.max_snapshots, config.session_idle_timeout);
        Ok(AppState { inner: Arc::new(Inner { config, envs: map, names, sessions, envs_listing }) })
    }

    /// The config served with.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Environment names, in the order given.
    pub fn env_names(&self) -> &[String] {
        &self.inner.names
    }

    /// Live sessions and stored snapshots right now (including expired ones the sweeper
    /// has not dropped yet).
    pub fn session_counts(&self) -> (usize, usize) {
        self.inner.sessions.counts()
    }

    /// Drops expired sessions and snapshots now (the sweeper does this periodically).
    pub fn sweep_expired(&self) {
        self.inner.sessions.sweep(Instant::now());
    }

    pub(crate) fn env(&self, name: &str) -> Result<&Arc<EnvEntry>, ApiError> {
        self.inner.envs.get(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownEnv,
                format!("unknown environment `{}`; known: {}", clip(name), self.inner.names.join(", ")),
            )
        })
    }
}

/// A client-supplied string shortened for an error message.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
