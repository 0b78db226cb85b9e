//! The in-process model behind an OpenAI-compatible HTTP API.
//!
//! Routes: `GET /v1/models`, `POST /v1/chat/completions` (non-streaming; `n` up to 16,
//! `temperature`, `top_p`, `max_tokens` / `max_completion_tokens`, `stop`, `seed`,
//! `logprobs`). Choice `j` of a request is sampled from the keyed stream
//! `(seed, sample, 0, j)`, so the same request gives the same bits. Bad requests get
//! OpenAI-style `{"error": {...}}` bodies with status 400.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gristmill_core::rng::{stream, Purpose};
use serde_json::{json, Value};

use crate::error::LmError;
use crate::local::LocalModel;
use crate::sample::{Finish, SamplingParams};
use crate::template::Message;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on (port 0 picks a free port).
    pub addr: SocketAddr,
    /// The model name reported by `/v1/models` and in responses (any name is accepted in
    /// requests).
    pub model_name: String,
    /// Requests computed at once (others wait).
    pub concurrency: usize,
}

struct AppState {
    model: Arc<LocalModel>,
    name: String,
    gate: tokio::sync::Semaphore,
    counter: std::sync::atomic::AtomicU64,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let kind = if status.is_client_error() { "invalid_request_error" } else { "server_error" };
    (status, Json(json!({ "error": { "message": message.into(), "type": kind } }))).into_response()
}

/// A running server; dropped or [shut down](Server::shutdown), it stops.
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The OpenAI base URL (`http://ADDR/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
    /// Stops accepting requests and waits for the server thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }
    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn router(model: Arc<LocalModel>, config: &ServeConfig) -> Router {
    let state = Arc::new(AppState {
        model,
        name: config.model_name.clone(),
        gate: tokio::sync::Semaphore::new(config.concurrency.max(1)),
        counter: std::sync::atomic::AtomicU64::new(0),
    });
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/health", get(|| async { "ok" }))
        .with_state(state)
}

/// Starts serving in a background thread and returns once the socket is bound.
///
/// # Errors
/// [`LmError::Http`] naming the address if it cannot be bound.
pub fn spawn(model: Arc<LocalModel>, config: ServeConfig) -> Result<Server, LmError> {
    let bind_err = |e: std::io::Error| LmError::Http {
        url: format!("http://{}", config.addr),
        why: format!("cannot listen: {e}"),
        retryable: false,
    };
    let listener = std::net::TcpListener::bind(config.addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    let app = router(model, &config);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let thread = std::thread::Builder::new()
        .name("gristmill-serve".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await;
            });
        })
        .map_err(bind_err)?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Server { addr, stop: Some(tx), thread: Some(thread) }),
        Ok(Err(why)) => Err(LmError::Http { url: format!("http://{addr}"), why, retryable: false }),
        Err(_) => Err(LmError::Http {
            url: format!("http://{addr}"),
            why: "server thread died".into(),
            retryable: false,
        }),
    }
}

/// Serves until Ctrl-C. `on_ready` is called with the bound address.
///
/// # Errors
/// As [`spawn`].
pub fn serve(
    model: Arc<LocalModel>,
    config: ServeConfig,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), LmError> {
    let server = spawn(model, config)?;
    on_ready(server.addr());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LmError::Http { url: server.base_url(), why: e.to_string(), retryable: false })?;
    rt.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    server.shutdown();
    Ok(())
}

async fn models(State(s): State<Arc<AppState>>) -> Response {
    Json(json!({ "object": "list", "data": [{ "id": s.name, "object": "model", "owned_by": "gristmill" }] }))
        .into_response()
}

/// The parsed parts of a chat-completions request.
struct ChatRequest {
    messages: Vec<Message>,
    params: SamplingParams,
    seed: u64,
    n: usize,
    logprobs: bool,
}

fn parse_request(body: &[u8]) -> Result<ChatRequest, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let obj = v.as_object().ok_or("body is not a JSON object")?;
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err("streaming is not supported".into());
    }
    let messages: Vec<Message> =
        serde_json::from_value(obj.get("messages").cloned().ok_or("`messages` is required")?)
            .map_err(|e| format!("`messages`: {e} (contents must be strings)"))?;
    if messages.is_empty() {
        return Err("`messages` is empty".into());
    }
    let num = |k: &str, default: f64| -> Result<f64, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => x.as_f64().ok_or(format!("`{k}` must be a number")),
        }
    };
    let max_tokens = match obj.get("max_completion_tokens").or_else(|| obj.get("max_tokens")) {
        None | Some(Value::Null) => 128,
        Some(x) => x
            .as_u64()
            .filter(|&m| (1..=4096).contains(&m))
            .ok_or("`max_tokens` must be an integer in 1..=4096")?,
    };
    let stop = match obj.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or("`stop` must be strings".to_string()))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`stop` must be a string or a list of strings".into()),
    };
    let n = match obj.get("n") {
        None | Some(Value::Null) => 1,
        Some(x) => {
            x.as_u64().filter(|&n| (1..=16).contains(&n)).ok_or("`n` must be an integer in 1..=16")? as usize
        }
    };
    let seed = match obj.get("seed") {
        None | Some(Value::Null) => 0,
        Some(x) => x.as_u64().or_else(|| x.as_i64().map(|i| i as u64)).ok_or("`seed` must be an integer")?,
    };
    let params = SamplingParams {
        temperature: num("temperature", 1.0)?,
        top_p: num("top_p", 1.0)?,
        max_new_tokens: max_tokens as u32,
        stop,
    };
    params.validate().map_err(|e| e.to_string())?;
    let logprobs = obj.get("logprobs").and_then(Value::as_bool).unwrap_or(false);
    Ok(ChatRequest { messages, params, seed, n, logprobs })
}

async fn chat(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    let req = match parse_request(&body) {
        Ok(r) => r,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let Ok(_permit) = s.gate.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down");
    };
    let model = s.model.clone();
    let ChatRequest { messages, params, seed, n, logprobs } = req;
    let work = tokio::task::spawn_blocking(move || {
        let prompt = model.chat_prompt(&messages)?;
        let mut rngs: Vec<_> = (0..n as u64).map(|j| stream(seed, Purpose::SAMPLE, 0, j)).collect();
        let gens = model.generate(&prompt, &params, &mut rngs)?;
        Ok::<_, LmError>((prompt.len(), gens))
    })
    .await;
    let (prompt_len, gens) = match work {
        Ok(Ok(x)) => x,
        Ok(Err(LmError::Request(why))) => return error(StatusCode::BAD_REQUEST, why),
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("generation task failed: {e}")),
    };
    let id = s.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let completion_tokens: usize = gens.iter().map(|g| g.tokens.len()).sum();
    let choices: Vec<Value> = gens
        .iter()
        .enumerate()
        .map(|(j, g)| {
            let lp = logprobs.then(|| {
                let content: Vec<Value> = g
                    .tokens
                    .iter()
                    .zip(&g.logprobs)
                    .map(|(t, lp)| json!({ "token": t, "logprob": lp, "bytes": t.as_bytes(), "top_logprobs": [] }))
                    .collect();
                json!({ "content": content })
            });
            json!({
                "index": j,
                "message": { "role": "assistant", "content": g.text },
                "finish_reason": match g.finish { Finish::Stop => "stop", Finish::Length => "length" },
                "logprobs": lp,
            })
        })
        .collect();
    let created =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Json(json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
        "created": created,
        "model": s.name,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_len,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_len + completion_tokens,
        },
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_validated() {
        let ok = parse_request(
            br#"{"model":"x","messages":[{"role":"user","content":"hi"}],"stop":"\n","n":2,"seed":5}"#,
        )
        .unwrap();
        assert_eq!((ok.n, ok.seed, ok.params.stop.clone()), (2, 5, vec!["\n".to_string()]));
        for (body, needle) in [
            (&b"nope"[..], "not JSON"),
            (br#"{"messages":[]}"#, "empty"),
            (br#"{"messages":[{"role":"user","content":"x"}],"stream":true}"#, "streaming"),
            (br#"{"messages":[{"role":"user","content":"x"}],"temperature":-1}"#, "temperature"),
            (br#"{"messages":[{"role":"user","content":"x"}],"n":99}"#, "`n`"),
            (br#"{"messages":[{"role":"user"}]}"#, "messages"),
        ] {
            let err = parse_request(body).err().unwrap_or_default();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }
}
