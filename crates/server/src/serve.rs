//! The router and the serving loops.

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use gristmill_engine::Environment;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth::Role;
use crate::config::ServerConfig;
use crate::conn::{accept_loop, Timeouts};
use crate::error::{ApiError, ErrorCode, ServerError};
use crate::handlers as h;
use crate::state::AppState;

/// Every route the router serves, as `(method, path)` in the OpenAPI document's spelling.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/openapi.json"),
    ("get", "/v1/envs"),
    ("get", "/v1/envs/{env}"),
    ("post", "/v1/sample"),
    ("post", "/v1/score"),
    ("post", "/v1/episodes/reset"),
    ("get", "/v1/sessions/{session}"),
    ("delete", "/v1/sessions/{session}"),
    ("post", "/v1/sessions/{session}/step"),
    ("post", "/v1/sessions/{session}/snapshot"),
    ("delete", "/v1/snapshots/{token}"),
    ("post", "/v1/snapshots/{token}/fork"),
];

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    ApiError::new(ErrorCode::Internal, "the request handler failed unexpectedly").into_response()
}

/// The HTTP API over `state`: every route in [`ROUTES`], JSON 404/405 for the rest, the
/// body limit, and a guard that turns a handler panic into a `500 internal` JSON error.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().body_limit_bytes;
    Router::new()
        .route("/health", get(h::health))
        .route("/openapi.json", get(h::openapi))
        .route("/v1/envs", get(h::list_envs))
        .route("/v1/envs/{env}", get(h::get_env))
        .route("/v1/sample", post(h::sample))
        .route("/v1/score", post(h::score))
        .route("/v1/episodes/reset", post(h::reset))
        .route("/v1/sessions/{session}", get(h::get_session).delete(h::close_session))
        .route("/v1/sessions/{session}/step", post(h::step))
        .route("/v1/sessions/{session}/snapshot", post(h::snapshot))
        .route("/v1/snapshots/{token}", axum::routing::delete(h::close_snapshot))
        .route("/v1/snapshots/{token}/fork", post(h::fork))
        .fallback(h::not_found)
        .method_not_allowed_fallback(h::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

/// Serves `state` on an already bound `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish (for at most `shutdown_grace`), and returns.
/// Runs the idle-session sweeper meanwhile. Connections are held to the config's timeouts
/// and to `max_connections` (see [`ServerConfig`]).
pub async fn serve_on<F>(listener: TcpListener, state: AppState, shutdown: F) -> Result<(), ServerError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let sweeper = {
        let state = state.clone();
        let every = state.inner.sessions.sweep_interval();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                state.sweep_expired();
            }
        })
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let signal = tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
        // Held until the serving loop is done with it.
        stop.closed().await;
    });
    let config = state.config();
    let (timeouts, grace) = (Timeouts::of(config), config.shutdown_grace);
    let registry = Arc::clone(&state.inner.connections);
    accept_loop(listener, router(state), registry, timeouts, grace, stopped).await;
    sweeper.abort();
    signal.abort();
    Ok(())
}

/// Binds `config.addr` and serves `envs` until `shutdown` completes (see [`serve_on`]).
pub async fn serve<F>(
    config: ServerConfig,
    envs: Vec<(String, Environment)>,
    shutdown: F,
) -> Result<(), ServerError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let addr = config.addr;
    let state = AppState::new(config, envs)?;
    let listener = TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })?;
    serve_on(listener, state, shutdown).await
}

/// A future that completes on SIGTERM or SIGINT (Ctrl-C elsewhere than Unix). The handlers
/// are installed when this is called, so a signal right after is not lost.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, ServerError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Builds a multi-thread runtime (`config.worker_threads`, default one per core), binds
/// `config.addr`, prints `gristmill-server: listening on http://ADDR (environments: …;
/// authentication)` to stderr, and serves
/// `envs` until SIGTERM or SIGINT, finishing in-flight requests before it returns.
pub fn serve_blocking(config: ServerConfig, envs: Vec<(String, Environment)>) -> Result<(), ServerError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = config.worker_threads {
        builder.worker_threads(n);
    }
    let addr = config.addr;
    let state = AppState::new(config, envs)?;
    let runtime = builder.build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })?;
        let local = listener.local_addr()?;
        let signal = shutdown_signal()?;
        let auth = match &state.config().auth {
            Some(t) => format!("bearer tokens: {} train, {} eval", t.count(Role::Train), t.count(Role::Eval)),
            None => "no authentication".to_string(),
        };
        eprintln!(
            "gristmill-server: listening on http://{local} (environments: {}; {auth})",
            state.env_names().join(", ")
        );
        serve_on(listener, state, signal).await?;
        eprintln!("gristmill-server: shut down");
        Ok(())
    })
}
