//! The shared state every handler reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use gristmill_engine::Environment;
use serde_json::{json, Value};

use crate::config::ServerConfig;
use crate::conn::Registry;
use crate::envs::EnvEntry;
use crate::error::{clip, ApiError, ErrorCode, ServerError};
use crate::handlers::served_openapi;
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
    /// The body of `GET /openapi.json`: the committed document with this config's limits
    /// and security requirement.
    pub openapi: Vec<u8>,
    /// Open connections and their limit.
    pub connections: Arc<Registry>,
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
        let openapi = served_openapi(&config)?;
        let connections = Arc::new(Registry::new(config.max_connections));
        Ok(AppState {
            inner: Arc::new(Inner { config, envs: map, names, sessions, envs_listing, openapi, connections }),
        })
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

    /// Open connections right now (across every `serve_on` of this state).
    pub fn connection_count(&self) -> usize {
        self.inner.connections.live()
    }

    /// The OpenAPI document this state serves at `GET /openapi.json`: the committed
    /// [`OPENAPI_JSON`](crate::OPENAPI_JSON) itself under the default `max_batch` without
    /// tokens, else that document with the configured `max_batch` as its batch maximums and,
    /// with tokens, the bearer token required.
    pub fn openapi_document(&self) -> &[u8] {
        &self.inner.openapi
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
