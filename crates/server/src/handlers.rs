//! The endpoints. Request and response shapes are documented in `openapi.json`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gristmill_core::episode::Episode;
use gristmill_core::policy::Response as TextResponse;
use gristmill_core::rng::{derive_seed, Purpose};
use gristmill_core::ParseError;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};

use crate::auth::Caller;
use crate::config::{ServerConfig, DEFAULT_MAX_BATCH};
use crate::de;
use crate::envs::EnvEntry;
use crate::error::{clip, ApiError, ErrorCode, ServerError};
use crate::extract::{ApiJson, ApiPath};
use crate::sessions::{Held, Kind};
use crate::state::AppState;
use gristmill_engine::{KeyError, WireKey};

/// Batches larger than this run on the blocking pool, so one big batch does not stall the
/// runtime's workers.
const INLINE_BATCH: usize = 64;

/// `value` as a JSON response with `status`.
pub(crate) fn json_bytes<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => raw_json(status, body),
        Err(e) => {
            let body = format!(
                "{{\"error\":{{\"code\":\"internal\",\"message\":{}}}}}",
                serde_json::Value::String(format!("serializing the response: {e}"))
            );
            raw_json(StatusCode::INTERNAL_SERVER_ERROR, body.into_bytes())
        }
    }
}

fn raw_json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn ok<T: Serialize>(value: &T) -> Response {
    json_bytes(StatusCode::OK, value)
}

/// Runs CPU work inline when small, on the blocking pool when large.
async fn cpu<R: Send + 'static>(
    size: usize,
    work: impl FnOnce() -> Result<R, ApiError> + Send + 'static,
) -> Result<R, ApiError> {
    if size <= INLINE_BATCH {
        return work();
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("worker failed: {e}")))?
}

fn check_batch(state: &AppState, what: &str, n: u64) -> Result<(), ApiError> {
    let max = state.config().max_batch;
    if n > max as u64 {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!("{what} is {n}, more than the limit of {max} per request (max_batch)"),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- health, docs, listing

/// The OpenAPI document, as committed in `crates/server/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// Where the committed document states `max_batch` (as `maximum` or `maxItems`).
pub(crate) const BATCH_MAXIMUMS: &[&str] = &[
    "/components/schemas/SampleTrainRequest/properties/count/maximum",
    "/components/schemas/SampleEvalRequest/properties/count/maximum",
    "/components/schemas/ScoreBatchRequest/properties/items/maxItems",
    "/components/schemas/ForkRequest/properties/n/maximum",
];

/// The document a server with `config` serves (see [`AppState::openapi_document`]).
pub(crate) fn served_openapi(config: &ServerConfig) -> Result<Vec<u8>, ServerError> {
    if config.max_batch == DEFAULT_MAX_BATCH && config.auth.is_none() {
        return Ok(OPENAPI_JSON.as_bytes().to_vec());
    }
    let broken = |what: String| ServerError::Config(format!("the committed openapi.json {what}"));
    let mut doc: serde_json::Value =
        serde_json::from_str(OPENAPI_JSON).map_err(|e| broken(format!("is not JSON: {e}")))?;
    for pointer in BATCH_MAXIMUMS {
        let slot = doc.pointer_mut(pointer).ok_or_else(|| broken(format!("has no {pointer}")))?;
        *slot = serde_json::Value::from(config.max_batch);
    }
    if config.auth.is_some() {
        // Tokens are required: drop the anonymous alternative.
        doc["security"] = serde_json::json!([{ "bearer": [] }]);
    }
    serde_json::to_vec_pretty(&doc).map_err(|e| broken(format!("does not serialize: {e}")))
}

pub(crate) async fn openapi(State(state): State<AppState>) -> Response {
    raw_json(StatusCode::OK, state.openapi_document().to_vec())
}

pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let (sessions, snapshots) = state.session_counts();
    let c = state.config();
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    ok(&serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "envs": state.env_names(),
        "sessions": sessions,
        "snapshots": snapshots,
        "connections": state.connection_count(),
        "auth": if c.auth.is_some() { "bearer" } else { "none" },
        "limits": {
            "body_limit_bytes": c.body_limit_bytes,
            "max_batch": c.max_batch,
            "max_sessions": c.max_sessions,
            "max_snapshots": c.max_snapshots,
            "session_idle_timeout_ms": ms(c.session_idle_timeout),
            "max_connections": c.max_connections,
            "header_read_timeout_ms": ms(c.header_read_timeout),
            "body_read_timeout_ms": ms(c.body_read_timeout),
            "keep_alive_timeout_ms": ms(c.keep_alive_timeout),
            "write_timeout_ms": ms(c.write_timeout),
        },
    }))
}

pub(crate) async fn list_envs(State(state): State<AppState>, _caller: Caller) -> Response {
    raw_json(StatusCode::OK, state.inner.envs_listing.clone())
}

pub(crate) async fn get_env(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(name): ApiPath,
) -> Result<Response, ApiError> {
    Ok(ok(&state.env(&name)?.listing))
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route; GET /openapi.json lists them")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "this route does not take that method; see GET /openapi.json")
}

// ---------------------------------------------------------------- sample

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum SplitName {
    #[default]
    Train,
    Eval,
}

impl<'de> Deserialize<'de> for SplitName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Split;
        impl serde::de::Visitor<'_> for Split {
            type Value = SplitName;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`train` or `eval`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SplitName, E> {
                match v {
                    "train" => Ok(SplitName::Train),
                    "eval" => Ok(SplitName::Eval),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(Split)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SampleRequest {
    env: String,
    #[serde(default, deserialize_with = "de::some_uint")]
    seed: Option<u64>,
    #[serde(default, deserialize_with = "de::some_uint")]
    step: Option<u64>,
    #[serde(deserialize_with = "de::uint")]
    count: u64,
    #[serde(default)]
    split: SplitName,
    #[serde(default, deserialize_with = "de::uint")]
    offset: u64,
}

#[derive(Serialize)]
struct SampledTask {
    task_key: String,
    prompt: String,
    source: String,
    family: &'static str,
    answer_format: &'static str,
    hinted: bool,
    /// A dataset task's row id.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// A dataset task's chat messages (when its prompt is a chat or has a system prompt).
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<gristmill_core::task::ChatMessage>>,
}

#[derive(Serialize)]
struct SampleResponse<'a> {
    env: &'a str,
    split: &'static str,
    tasks: Vec<SampledTask>,
}

pub(crate) async fn sample(
    State(state): State<AppState>,
    _caller: Caller,
    ApiJson(req): ApiJson<SampleRequest>,
) -> Result<Response, ApiError> {
    let entry = Arc::clone(state.env(&req.env)?);
    check_batch(&state, "count", req.count)?;
    // Indices offset, offset + 1, ... for `count` tasks, cut where the tasks end.
    let (offset, count) = (req.offset, req.count);
    let indices = (0..count).map_while(move |i| offset.checked_add(i));
    let keys: Vec<WireKey> = match req.split {
        SplitName::Train => {
            let seed = req.seed.ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidRequest, "`seed` is required for the train split")
            })?;
            let step = req.step.unwrap_or(0);
            indices.map(|index| WireKey::Train { seed, step, index }).collect()
        }
        SplitName::Eval => {
            if req.seed.is_some() || req.step.is_some() {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    "`seed` and `step` do not apply to the eval split: the gold suite is fixed by the spec's eval.seed",
                ));
            }
            let size = entry.env.spec.spec().eval.size as u64;
            indices.take_while(|&i| i < size).map(|index| WireKey::Eval { index }).collect()
        }
    };
    let split = match req.split {
        SplitName::Train => "train",
        SplitName::Eval => "eval",
    };
    let work_entry = Arc::clone(&entry);
    let tasks = cpu(keys.len(), move || {
        keys.into_iter()
            .map(|key| {
                let task = work_entry.task(key)?;
                let s = task.key.source as usize;
                let spec = &work_entry.env.spec;
                Ok(SampledTask {
                    task_key: key.to_string(),
                    prompt: task.observation_text(),
                    source: spec.spec().sources[s].id.clone(),
                    family: spec.source_families()[s].name,
                    answer_format: spec.source_families()[s].answer_format,
                    hinted: task.hint.is_some(),
                    id: task.body.reference.as_ref().map(|r| r.id.clone()),
                    messages: task
                        .body
                        .reference
                        .as_ref()
                        .filter(|r| !r.messages.is_empty())
                        .map(|r| r.messages.clone()),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await?;
    Ok(ok(&SampleResponse { env: &entry.name, split, tasks }))
}

// ---------------------------------------------------------------- score

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScoreItem {
    task_key: String,
    response: String,
    #[serde(default, deserialize_with = "de::some_uint")]
    sample: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScoreRequest {
    env: String,
    #[serde(default, deserialize_with = "de::some")]
    items: Option<Vec<ScoreItem>>,
    #[serde(default, deserialize_with = "de::some")]
    task_key: Option<String>,
    #[serde(default, deserialize_with = "de::some")]
    response: Option<String>,
    #[serde(default, deserialize_with = "de::some_uint")]
    sample: Option<u64>,
    #[serde(default)]
    eval: bool,
}

/// A parse error as a response repeats it: its text clipped to
/// [`ECHO_MAX_CHARS`](crate::ECHO_MAX_CHARS).
fn clipped(e: &ParseError) -> ParseError {
    match e {
        ParseError::Missing => ParseError::Missing,
        ParseError::Malformed(text) => ParseError::Malformed(clip(text)),
        ParseError::OutOfSpace(text) => ParseError::OutOfSpace(clip(text)),
    }
}

/// What a parse error means, without repeating the text (which `detail` holds).
fn parse_message(e: &ParseError, what: &str) -> String {
    match e {
        ParseError::Missing => format!("no {what} found in the text"),
        ParseError::Malformed(_) => format!("the {what} is not in the expected format (see `detail`)"),
        ParseError::OutOfSpace(_) => format!("the {what} is outside the {what} space (see `detail`)"),
    }
}

/// The parse outcome: `{"ok": true, "answer": n}` or
/// `{"ok": false, "reason": ..., "detail"?: ..., "message": ...}`, the text in `detail`
/// only, clipped.
struct ParseOutcome<'a>(&'a Result<i64, ParseError>);

impl Serialize for ParseOutcome<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Failed<'a> {
            ok: bool,
            #[serde(flatten)]
            error: &'a ParseError,
            message: String,
        }
        match self.0 {
            Ok(answer) => {
                let mut st = s.serialize_struct("ParseOk", 2)?;
                st.serialize_field("ok", &true)?;
                st.serialize_field("answer", answer)?;
                st.end()
            }
            Err(e) => {
                Failed { ok: false, error: &clipped(e), message: parse_message(e, "answer") }.serialize(s)
            }
        }
    }
}

#[derive(Serialize)]
struct Gold {
    /// The integer gold of a family's task, or a dataset task's gold as the data holds it.
    answer: serde_json::Value,
    text: String,
    correct: bool,
}

struct ScoreResult {
    entry: Arc<EnvEntry>,
    rewards: Vec<f64>,
    /// The parts of channels that have them (a rubric judge's items).
    sub_rewards: Vec<(String, Vec<(String, f64)>)>,
    answer: Result<i64, ParseError>,
    gold: Option<Gold>,
}

struct RewardMap<'a>(&'a [String], &'a [f64]);

impl Serialize for RewardMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.1.len()))?;
        for (id, v) in self.0.iter().zip(self.1) {
            m.serialize_entry(id, v)?;
        }
        m.end()
    }
}

impl Serialize for ScoreResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ScoreResult", 5)?;
        st.serialize_field("rewards", &RewardMap(&self.entry.channel_ids, &self.rewards))?;
        st.serialize_field("reward_vector", &self.rewards)?;
        st.serialize_field("parse", &ParseOutcome(&self.answer))?;
        if !self.sub_rewards.is_empty() {
            let parts: serde_json::Map<String, serde_json::Value> = self
                .sub_rewards
                .iter()
                .map(|(id, items)| {
                    (id.clone(), items.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect())
                })
                .collect();
            st.serialize_field("sub_rewards", &parts)?;
        }
        if let Some(g) = &self.gold {
            st.serialize_field("gold", g)?;
        }
        st.end()
    }
}

#[derive(Serialize)]
struct ScoreResponse<'a> {
    env: &'a str,
    channels: &'a [String],
    results: Vec<ScoreResult>,
}

fn score_one(entry: &Arc<EnvEntry>, i: usize, item: ScoreItem, eval: bool) -> Result<ScoreResult, ApiError> {
    let key: WireKey = item.task_key.parse().map_err(|why| match why {
        KeyError::Format(why) => ApiError::new(
            ErrorCode::BadTaskKey,
            format!("items[{i}].task_key `{}` is not a task key: {why}", clip(&item.task_key)),
        ),
        KeyError::OutOfRange(why) => ApiError::new(
            ErrorCode::UnknownTaskKey,
            format!("items[{i}].task_key `{}` names no task: {why}", clip(&item.task_key)),
        ),
    })?;
    let task =
        entry.task(key).map_err(|e| ApiError { message: format!("items[{i}]: {}", e.message), ..e })?;
    let source = entry.env.sources[task.key.source as usize].as_ref();
    let response = TextResponse::from_text(source, item.response);
    let rewards = entry.env.score(&task, &response, entry.score_key(key, item.sample));
    if let Some((c, v)) = rewards.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(ApiError::new(
            ErrorCode::Internal,
            format!(
                "items[{i}]: channel `{}` gave a non-finite reward {v}{}",
                entry.channel_ids[c],
                entry.env.pieces[entry.env.channels[c]]
                    .scorer()
                    .and_then(|s| s.failure())
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        ));
    }
    let gold = eval.then(|| {
        let correct = entry.env.gold_score(&task, &response) == 1.0;
        match &task.body.reference {
            None => Gold { answer: task.gold().into(), text: source.render_answer(task.gold()), correct },
            Some(r) => {
                let mut text = String::new();
                if r.render_gold_into(&mut text).is_err() {
                    text = r.gold_text().into_owned();
                }
                Gold { answer: r.gold.clone(), text, correct }
            }
        }
    });
    let sub_rewards = entry.env.sub_scores(&task, &response);
    Ok(ScoreResult { entry: Arc::clone(entry), rewards, sub_rewards, answer: response.answer, gold })
}

pub(crate) async fn score(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<ScoreRequest>,
) -> Result<Response, ApiError> {
    if req.eval {
        caller.require_gold()?;
    }
    let entry = Arc::clone(state.env(&req.env)?);
    let items = match (req.items, req.task_key, req.response) {
        (Some(items), None, None) if req.sample.is_none() => items,
        (None, Some(task_key), Some(response)) => vec![ScoreItem { task_key, response, sample: req.sample }],
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "give either `items` (a batch) or `task_key` and `response` (one item, with optional `sample`), not both",
            ))
        }
    };
    check_batch(&state, "the number of items", items.len() as u64)?;
    let eval = req.eval;
    let work_entry = Arc::clone(&entry);
    let results = cpu(items.len(), move || {
        items.into_iter().enumerate().map(|(i, item)| score_one(&work_entry, i, item, eval)).collect()
    })
    .await?;
    Ok(ok(&ScoreResponse { env: &entry.name, channels: &entry.channel_ids, results }))
}

// ---------------------------------------------------------------- episodes

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetRequest {
    env: String,
    #[serde(default, deserialize_with = "de::some")]
    episode: Option<String>,
    #[serde(deserialize_with = "de::uint")]
    seed: u64,
    #[serde(default, deserialize_with = "de::uint")]
    step: u64,
    #[serde(default, deserialize_with = "de::uint")]
    index: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepRequest {
    #[serde(default, deserialize_with = "de::some")]
    action: Option<String>,
    #[serde(default, deserialize_with = "de::some_uint")]
    action_index: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForkRequest {
    #[serde(deserialize_with = "de::uint")]
    n: u64,
}

/// An episode's visible state.
#[derive(Serialize, Clone)]
struct StateView {
    env: String,
    episode: String,
    observation: String,
    done: bool,
    total_reward: f64,
    steps_taken: u32,
    state_digest: String,
    action_count: usize,
}

impl StateView {
    fn of(held: &Held) -> StateView {
        let ep: &dyn Episode = held.state.as_ref();
        StateView {
            env: held.env.name.clone(),
            episode: held.env.episodes[held.source].id.clone(),
            observation: ep.observation(),
            done: ep.done(),
            total_reward: ep.total_reward(),
            steps_taken: ep.steps_taken(),
            state_digest: ep.state_digest(),
            action_count: ep.action_count(),
        }
    }
}

#[derive(Serialize)]
struct SessionView {
    session: String,
    #[serde(flatten)]
    state: StateView,
}

#[derive(Serialize)]
struct ActionTaken {
    index: usize,
    name: &'static str,
}

#[derive(Serialize)]
struct StepView {
    session: String,
    #[serde(flatten)]
    state: StateView,
    reward: f64,
    action: ActionTaken,
}

#[derive(Serialize)]
struct SnapshotView {
    token: String,
    session: String,
    #[serde(flatten)]
    state: StateView,
}

#[derive(Serialize)]
struct ForkView {
    token: String,
    sessions: Vec<SessionView>,
}

#[derive(Serialize)]
struct Closed {
    closed: String,
}

pub(crate) async fn reset(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<ResetRequest>,
) -> Result<Response, ApiError> {
    let entry = Arc::clone(state.env(&req.env)?);
    let (source, src) = entry.episode(req.episode.as_deref())?;
    let seed = derive_seed(req.seed, Purpose::EPISODE.with(&src.id), req.step, req.index);
    let held = Held {
        state: (src.family.reset)(&src.knobs, seed),
        env: Arc::clone(&entry),
        source,
        last_used: Instant::now(),
        owner: caller.owner,
    };
    let view = StateView::of(&held);
    let ids = state.inner.sessions.insert(Kind::Session, vec![held])?;
    let session = ids.into_iter().next().unwrap_or_default();
    Ok(ok(&SessionView { session, state: view }))
}

pub(crate) async fn get_session(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    let view = state.inner.sessions.with(Kind::Session, &id, caller.owner, |held| Ok(StateView::of(held)))?;
    Ok(ok(&SessionView { session: id, state: view }))
}

pub(crate) async fn step(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(req): ApiJson<StepRequest>,
) -> Result<Response, ApiError> {
    let (view, reward, action) = state.inner.sessions.with(Kind::Session, &id, caller.owner, |held| {
        let ep = &mut held.state;
        if ep.done() {
            return Err(ApiError::new(
                ErrorCode::EpisodeDone,
                format!(
                    "session `{id}` has ended after {} steps; reset or fork to continue",
                    ep.steps_taken()
                ),
            ));
        }
        let action = match (&req.action, req.action_index) {
            (Some(text), None) => ep.parse_action(text).map_err(|e| ApiError {
                code: ErrorCode::UnparsableAction,
                message: format!("the action did not parse: {}", parse_message(&e, "action")),
                parse: Some(clipped(&e)),
            })?,
            (None, Some(i)) => {
                let n = ep.action_count();
                if i >= n as u64 {
                    return Err(ApiError::new(
                        ErrorCode::InvalidAction,
                        format!("action_index {i} is out of range: this episode has actions 0..{n}"),
                    ));
                }
                i as usize
            }
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    "give exactly one of `action` (text) and `action_index`",
                ))
            }
        };
        let outcome = ep.step(action);
        let name = ep.action_name(action);
        Ok((StateView::of(held), outcome.reward, ActionTaken { index: action, name }))
    })?;
    Ok(ok(&StepView { session: id, state: view, reward, action }))
}

pub(crate) async fn snapshot(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    let sessions = &state.inner.sessions;
    let (copy, view) = sessions.with(Kind::Session, &id, caller.owner, |held| {
        let copy = Held {
            env: Arc::clone(&held.env),
            source: held.source,
            state: held.state.snapshot(),
            last_used: Instant::now(),
            owner: held.owner,
        };
        let view = StateView::of(&copy);
        Ok((copy, view))
    })?;
    let token = sessions.insert(Kind::Snapshot, vec![copy])?.into_iter().next().unwrap_or_default();
    Ok(ok(&SnapshotView { token, session: id, state: view }))
}

pub(crate) async fn fork(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(token): ApiPath,
    ApiJson(req): ApiJson<ForkRequest>,
) -> Result<Response, ApiError> {
    if req.n == 0 {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "`n` must be at least 1"));
    }
    check_batch(&state, "n", req.n)?;
    let sessions = &state.inner.sessions;
    let (copies, view) = sessions.with(Kind::Snapshot, &token, caller.owner, |held| {
        let now = Instant::now();
        let copies: Vec<Held> = (0..req.n)
            .map(|_| Held {
                env: Arc::clone(&held.env),
                source: held.source,
                state: held.state.snapshot(),
                last_used: now,
                owner: held.owner,
            })
            .collect();
        Ok((copies, StateView::of(held)))
    })?;
    let ids = sessions.insert(Kind::Session, copies)?;
    let sessions = ids.into_iter().map(|session| SessionView { session, state: view.clone() }).collect();
    Ok(ok(&ForkView { token, sessions }))
}

pub(crate) async fn close_session(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    state.inner.sessions.close(Kind::Session, &id, caller.owner)?;
    Ok(ok(&Closed { closed: id }))
}

pub(crate) async fn close_snapshot(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(token): ApiPath,
) -> Result<Response, ApiError> {
    state.inner.sessions.close(Kind::Snapshot, &token, caller.owner)?;
    Ok(ok(&Closed { closed: token }))
}
