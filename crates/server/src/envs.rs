//! Loading specs into environments, and what the server keeps per environment.

use std::path::Path;

use gristmill_core::episode::EpisodeFamilyInfo;
use gristmill_core::params::Params;
use gristmill_core::piece::ScoreKey;
use gristmill_core::spec::Overrides;
use gristmill_core::task::Task;
use gristmill_engine::{EngineError, Environment};
use serde_json::{json, Value};

use crate::error::{clip, ApiError, ErrorCode, ServerError};
use gristmill_engine::WireKey;

/// Parses, validates and builds one spec's environment with the engine's one loader and
/// catalog (so every spec the `gristmill` binary accepts is served; the policy section plays
/// no part in serving). `origin` names the spec in errors. Returns the environment's name
/// (the spec's `name`) with it.
pub fn load_env_str(text: &str, origin: &str) -> Result<(String, Environment), ServerError> {
    let valid = gristmill_engine::load_spec(text, origin, &Overrides::default())?;
    let name = valid.spec().name.clone();
    let env = Environment::build(valid)
        .map_err(|source| ServerError::Build { origin: origin.to_string(), source })?;
    Ok((name, env))
}

/// Loads every spec file; the environment name is the spec's `name`, and two files with
/// the same name are an error naming both.
pub fn load_envs<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<(String, Environment)>, ServerError> {
    let mut out: Vec<(String, Environment)> = Vec::with_capacity(paths.len());
    let mut origins: Vec<String> = Vec::with_capacity(paths.len());
    for path in paths {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ServerError::Read { path: path.to_path_buf(), source })?;
        let origin = path.display().to_string();
        let (name, env) = load_env_str(&text, &origin)?;
        if let Some(i) = out.iter().position(|(n, _)| *n == name) {
            return Err(ServerError::DuplicateEnv { name, first: origins[i].clone(), second: origin });
        }
        origins.push(origin);
        out.push((name, env));
    }
    Ok(out)
}

/// One `[[episode]]` source of an environment.
pub(crate) struct EpisodeSource {
    pub id: String,
    pub family: EpisodeFamilyInfo,
    pub knobs: Params,
}

/// An environment as served: the engine's [`Environment`] plus what every request needs,
/// computed once.
pub(crate) struct EnvEntry {
    pub name: String,
    pub env: Environment,
    /// The training distribution over sources (`env.sampling_distribution()`).
    pub weights: Vec<f64>,
    /// The hint probability, when a hint piece is on.
    pub hint_p: Option<f64>,
    /// Channel ids in channel order.
    pub channel_ids: Vec<String>,
    pub episodes: Vec<EpisodeSource>,
    /// This environment's entry in `GET /v1/envs`.
    pub listing: Value,
}

impl EnvEntry {
    pub fn new(name: String, env: Environment) -> EnvEntry {
        let spec = &env.spec;
        let episodes: Vec<EpisodeSource> = spec
            .spec()
            .episodes
            .iter()
            .zip(spec.episode_families())
            .zip(spec.episode_knobs())
            .map(|((e, f), k)| EpisodeSource { id: e.id.clone(), family: *f, knobs: k.clone() })
            .collect();
        let mut entry = EnvEntry {
            weights: env.sampling_distribution(),
            hint_p: env.hint().map(|h| h.probability),
            channel_ids: env.channel_ids(),
            episodes,
            listing: Value::Null,
            name,
            env,
        };
        entry.listing = entry.build_listing();
        entry
    }

    fn build_listing(&self) -> Value {
        let env = &self.env;
        let spec = &env.spec;
        let pieces: Vec<Value> = env
            .pieces
            .iter()
            .map(|p| {
                json!({
                    "id": p.id,
                    "kind": p.kind_name,
                    "piece_kind": p.kind.name(),
                    "weight": p.weight,
                    "channel": p.kind.is_reward(),
                })
            })
            .collect();
        let sources: Vec<Value> = spec
            .spec()
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let space = env.sources[i].answers();
                json!({
                    "id": s.id,
                    "family": s.family,
                    "weight": s.weight,
                    "sampling_probability": self.weights.get(i).copied().unwrap_or(0.0),
                    "answer_format": spec.source_families()[i].answer_format,
                    "answer_space": { "lo": space.lo, "size": space.size },
                })
            })
            .collect();
        let episodes: Vec<Value> = self
            .episodes
            .iter()
            .map(|e| {
                let probe = (e.family.reset)(&e.knobs, 0);
                let actions: Vec<&str> = (0..probe.action_count()).map(|a| probe.action_name(a)).collect();
                json!({
                    "id": e.id,
                    "family": e.family.name,
                    "action_format": e.family.action_format,
                    "actions": actions,
                })
            })
            .collect();
        let eval = &spec.spec().eval;
        let eval_sources: Vec<&str> =
            spec.eval_sources().iter().map(|&i| spec.spec().sources[i].id.as_str()).collect();
        json!({
            "name": self.name,
            "description": spec.spec().description,
            "spec_hash": spec.hash(),
            "seed": spec.spec().run.seed,
            "channels": self.channel_ids,
            "channel_weights": env.channel_weights(),
            "pieces": pieces,
            "sources": sources,
            "episodes": episodes,
            "eval": { "size": eval.size, "seed": eval.seed, "sources": eval_sources },
            "hint_probability": self.hint_p,
            "spec": serde_json::to_value(spec.spec()).unwrap_or(Value::Null),
        })
    }

    /// Regenerates the task a wire key names.
    pub fn task(&self, key: WireKey) -> Result<Task, ApiError> {
        self.env.keyed_task(key).map_err(|e| match e {
            EngineError::NoSuchEvalTask { .. } => {
                ApiError::new(ErrorCode::UnknownTaskKey, format!("task key `{key}` of `{}`: {e}", self.name))
            }
            EngineError::Task(t) => {
                ApiError::new(ErrorCode::TaskGeneration, format!("task key `{key}`: {t}"))
            }
            other => ApiError::new(ErrorCode::Internal, format!("task key `{key}`: {other}")),
        })
    }

    /// The randomness key pieces score with (see [`gristmill_engine::keys`]).
    pub fn score_key(&self, key: WireKey, sample: Option<u64>) -> ScoreKey {
        self.env.keyed_score_key(key, sample)
    }

    /// The episode source called `id` (the first when `None`).
    pub fn episode(&self, id: Option<&str>) -> Result<(usize, &EpisodeSource), ApiError> {
        let found = match id {
            None => self.episodes.first().map(|e| (0, e)),
            Some(id) => self.episodes.iter().enumerate().find(|(_, e)| e.id == id),
        };
        found.ok_or_else(|| {
            let known: Vec<&str> = self.episodes.iter().map(|e| e.id.as_str()).collect();
            let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            let what = match id {
                Some(id) => format!("environment `{}` has no episode source `{}`", self.name, clip(id)),
                None => format!("environment `{}` has no episode source", self.name),
            };
            ApiError::new(ErrorCode::UnknownEpisode, format!("{what}; known: {known}"))
        })
    }
}
