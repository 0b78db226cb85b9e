//! # gristmill-server
//!
//! The gristmill environment protocol over HTTP (axum and hyper on tokio): sample tasks, score
//! free-text responses into **reward vectors**, and drive multi-turn episodes with snapshot
//! and fork. Every number is the in-process engine's number: a task key regenerates its task
//! statelessly, and scoring runs `Environment::score` with a keyed `ScoreKey`, so the same
//! seed and the same calls give bit-identical tasks and rewards on any server, any thread
//! count. The full contract is the OpenAPI document `crates/server/openapi.json`, served at
//! `GET /openapi.json`.
//!
//! ## Endpoints
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/health` | status, environment names, live sessions and connections, whether tokens are required, the limits in force |
//! | GET | `/openapi.json` | this protocol's OpenAPI 3.1 document (with this server's `max_batch` and security requirement) |
//! | GET | `/v1/envs`, `/v1/envs/{env}` | environments: spec, channels (piece ids in reward-vector order), sources with answer formats, episode sources with action formats |
//! | POST | `/v1/sample` | `{env, seed, step?, count, offset?}` or `{env, split: "eval", count, offset?}` → tasks `{task_key, prompt, source, family, answer_format, hinted}`; gold withheld |
//! | POST | `/v1/score` | `{env, items: [{task_key, response, sample?}], eval?}` or `{env, task_key, response, sample?, eval?}` → per item `{rewards: {piece_id: r}, reward_vector, parse, gold?}` |
//! | POST | `/v1/episodes/reset` | `{env, episode?, seed, step?, index?}` → a new session |
//! | GET / DELETE | `/v1/sessions/{session}` | read / close a session |
//! | POST | `/v1/sessions/{session}/step` | `{action: text}` or `{action_index}` → reward, new state |
//! | POST | `/v1/sessions/{session}/snapshot` | store a copy of the state → its id, `token` |
//! | POST | `/v1/snapshots/{token}/fork` | `{n}` → `n` new sessions, each in the snapshot's state |
//! | DELETE | `/v1/snapshots/{token}` | drop a snapshot |
//!
//! Every session response carries `observation`, `done`, `total_reward`, `steps_taken`,
//! `state_digest` (and `action_count`). Integer fields take any JSON number with a whole
//! value in range (`12`, `12.0`, `1.2e1`), as JSON Schema's `integer` does; an optional field
//! is absent or of its type, never `null`.
//!
//! ## Keys, ids and determinism
//!
//! Task keys are `t-<seed hex>-<step>-<index>` (training slot `index` of step `step` under
//! root seed `seed`, drawn exactly as in-process training draws it: from the curriculum's or
//! the mixture's distribution, with the hint line when the hint piece shows one) and
//! `e-<index>` (task `index` of the gold suite, never hinted); see [`keys`]. Each has one
//! spelling: lowercase hex and decimals without leading zeros. A score uses
//! `ScoreKey { seed, step, index: sample }` (`{eval.seed, 0, sample}` for eval keys), with
//! `sample` defaulting to the task index; pass `b · G + g` to reproduce the engine's
//! rollout sample `g` of task `b`. Episode resets start from
//! `derive_seed(seed, EPISODE.with(episode_id), step, index)`, the seed the engine gives
//! episode `index` of step `step`.
//!
//! Session ids (`s-<32 hex>`) and snapshot ids (`snap-<32 hex>`) are 128 bits from the
//! operating system's CSPRNG (`getrandom`), so one id says nothing about another. They name
//! state; they never feed it, so determinism (tasks, episodes, rewards) is untouched.
//!
//! ## Free-text responses
//!
//! Responses are parsed by each family's documented rule (`TaskSource::parse_answer`,
//! listed as `answer_format`; actions by `Episode::parse_action`, listed as
//! `action_format`). The score result's `parse` is `{"ok": true, "answer": n}` or
//! `{"ok": false, "reason": "missing" | "malformed" | "out_of_space", "detail"?: text,
//! "message": text}`, the response's text only in `detail`. An unparsed response still gets
//! a reward vector (verifiers give 0). Gold (`{answer, text, correct}`) is included only
//! when the request sets `"eval": true`.
//!
//! A response repeats at most [`ECHO_MAX_CHARS`] (64) characters of any request text —
//! ids, keys, names, unparsable answers and actions, offending field names and values — a
//! longer one cut to 63 and `…`; an error message is at most [`MESSAGE_MAX_CHARS`] (1024).
//!
//! ## Limits, timeouts and errors
//!
//! [`ServerConfig`] holds the limits, with defaults: body 1 MiB, batch 1024 (tasks, items or
//! forks per request; the document's `maximum`s), 10 000 sessions, 10 000 snapshots, 300 s
//! session idle timeout, and 30 s of grace for in-flight requests at shutdown. Connections
//! are served by this crate's own accept loop over hyper, which holds every client to
//! `header_read_timeout` (10 s to send a request head, from the accept or from the request's
//! first byte), `body_read_timeout` (30 s for the body, then `408 request_timeout`),
//! `keep_alive_timeout` (60 s idle between requests) and `write_timeout` (30 s without
//! progress writing a response), and to `max_connections` (512): at the limit the
//! connection that has waited longest on its client is closed to make room (idle ones
//! first), never one whose request is being handled; when `accept` runs out of descriptors
//! the same rule frees one. So stalled clients cost a bounded number of descriptors for a
//! bounded time, and a normal client is served meanwhile.
//!
//! Every error is `{"error": {"code": "...", "message": "..."}}` with a 4xx status for bad
//! input (see [`ErrorCode`] for each code and status), including malformed JSON (always
//! 400, wherever the syntax error is), wrong content type, oversize bodies, unknown routes
//! and methods. SIGTERM and SIGINT stop the server gracefully: it stops accepting and
//! finishes in-flight requests ([`serve_blocking`]).
//!
//! ## Authentication
//!
//! Without tokens (the default) every caller may do everything; serve on loopback, or behind
//! something that controls access. With [`ServerConfig::auth`] set ([`Tokens`]: `--tokens
//! FILE` or `GRISTMILL_TOKENS`, lines of `<role> <token>`), every `/v1` route needs
//! `Authorization: Bearer <token>` (`401 unauthorized` otherwise; `/health` and
//! `/openapi.json` stay open), gold answers need a token of role `eval` (`403 forbidden`
//! for `train`), and sessions and snapshots belong to the token that created them: to any
//! other token they answer `404`, exactly like an id that never existed, so ids do not leak.
//! The server speaks plain HTTP; for TLS put it behind a reverse proxy — a minimal nginx and
//! Caddy configuration is in `docs/server.md`.
//!
//! ## Example
//!
//! ```
//! use gristmill_server::{load_env_str, serve_on, AppState, ServerConfig};
//! use std::io::{Read, Write};
//!
//! let spec = "name = 'arith'\n[[source]]\nid = 'add'\nfamily = 'addition'\n\
//!             [[piece]]\nid = 'gold'\nkind = 'exact_verifier'\n";
//! let env = load_env_str(spec, "inline").unwrap();
//! let state = AppState::new(ServerConfig::default(), vec![env]).unwrap();
//!
//! let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
//! let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
//! let addr = listener.local_addr().unwrap();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = runtime.spawn(serve_on(listener, state, async { stopped.await.ok(); }));
//!
//! let mut conn = std::net::TcpStream::connect(addr).unwrap();
//! let body = r#"{"env": "arith", "seed": 7, "count": 1}"#;
//! write!(conn, "POST /v1/sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
//!               Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
//! let mut reply = String::new();
//! conn.read_to_string(&mut reply).unwrap();
//! assert!(reply.starts_with("HTTP/1.1 200"));
//! assert!(reply.contains(r#""task_key":"t-7-0-0""#));
//!
//! stop.send(()).unwrap();
//! runtime.block_on(server).unwrap().unwrap();
//! ```
#![warn(missing_docs)]

mod auth;
mod config;
mod conn;
mod de;
mod envs;
mod error;
mod extract;
mod handlers;
mod serve;
mod sessions;
mod state;

pub use auth::{Role, Tokens, MAX_TOKEN_LEN, MIN_TOKEN_LEN, TOKENS_ENV};
pub use config::ServerConfig;
pub use envs::{load_env_str, load_envs};
pub use error::{ApiError, ErrorCode, ServerError, ECHO_MAX_CHARS, MESSAGE_MAX_CHARS};
pub use gristmill_engine::{keys, KeyError, WireKey};
pub use handlers::OPENAPI_JSON;
pub use serve::{router, serve, serve_blocking, serve_on, shutdown_signal, ROUTES};
pub use state::AppState;
