//! `Environment` and `Task`: a spec loaded by the engine's one loader, its tasks by wire key,
//! and per-piece scoring into a reward matrix.

use std::path::PathBuf;
use std::sync::Arc;

use gristmill_core::policy::Response;
use gristmill_core::spec::Overrides;
use gristmill_engine::{EngineError, KeyError, WireKey};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use rayon::prelude::*;

use crate::{to_bytes, GristmillError, ScoringError, ShapeError, SpecError, TaskKeyError};

/// Most tasks one `sample` call draws or one `score` call scores: a request past it is a
/// mistake (or hostile), refused before any work.
pub const MAX_BATCH: usize = 1 << 20;

/// An environment: a validated spec built into sources and pieces.
#[pyclass(frozen, module = "gristmill._native")]
pub struct Environment {
    pub(crate) env: Arc<gristmill_engine::Environment>,
    pub(crate) text: String,
    origin: String,
}

/// One task: what to show the model, and the key that regenerates it.
#[pyclass(frozen, get_all, module = "gristmill._native")]
pub struct Task {
    /// The wire key (`t-<seed hex>-<step>-<index>` or `e-<index>`).
    pub key: String,
    /// The prompt as text (with the hint line, when the task is hinted).
    pub prompt: String,
    /// The source's id in the spec.
    pub source: String,
    /// The source's family.
    pub family: String,
    /// The gold answer as text.
    pub gold: String,
    /// Whether a hint piece hinted it.
    pub hinted: bool,
    /// A dataset row's id.
    pub row_id: Option<String>,
    roles: Vec<(String, String)>,
}

#[pymethods]
impl Task {
    /// The prompt as chat messages: a dataset's own messages (system prompt included), or
    /// one user message holding `prompt`.
    #[getter]
    fn messages<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for (role, content) in &self.roles {
            let d = PyDict::new(py);
            d.set_item("role", role)?;
            d.set_item("content", content)?;
            list.append(d)?;
        }
        Ok(list)
    }

    fn __repr__(&self) -> String {
        format!("Task(key={:?}, source={:?}, gold={:?})", self.key, self.source, self.gold)
    }
}

fn engine_error(origin: &str, e: EngineError) -> PyErr {
    match e {
        EngineError::Spec(_) => SpecError::new_err(format!("{e}")),
        other => SpecError::new_err(format!("{origin}: {other}")),
    }
}

fn check_batch(what: &str, n: usize) -> PyResult<()> {
    if n > MAX_BATCH {
        return Err(ShapeError::new_err(format!(
            "{what} is {n}, more than the limit of {MAX_BATCH} per call"
        )));
    }
    Ok(())
}

impl Environment {
    fn parse_key(text: &str, i: usize) -> PyResult<WireKey> {
        text.parse().map_err(|why| {
            let clipped: String = text.chars().take(80).collect();
            match why {
                KeyError::Format(why) => {
                    TaskKeyError::new_err(format!("keys[{i}] `{clipped}` is not a task key: {why}"))
                }
                KeyError::OutOfRange(why) => {
                    TaskKeyError::new_err(format!("keys[{i}] `{clipped}` names no task: {why}"))
                }
            }
        })
    }

    fn keyed(&self, key: WireKey, i: usize) -> PyResult<gristmill_core::task::Task> {
        let name = &self.env.spec.spec().name;
        self.env.keyed_task(key).map_err(|e| match e {
            EngineError::NoSuchEvalTask { .. } => {
                TaskKeyError::new_err(format!("keys[{i}] `{key}` of `{name}`: {e}"))
            }
            other => GristmillError::new_err(format!("keys[{i}] `{key}`: {other}")),
        })
    }

    fn task_object(&self, key: WireKey, task: &gristmill_core::task::Task) -> Task {
        let s = task.key.source as usize;
        let spec = &self.env.spec;
        let source = self.env.sources[s].as_ref();
        let prompt = task.observation_text();
        let (gold, row_id, roles) = match &task.body.reference {
            None => (source.render_answer(task.gold()), None, vec![("user".to_string(), prompt.clone())]),
            Some(r) => {
                let mut gold = String::new();
                if r.render_gold_into(&mut gold).is_err() {
                    gold = r.gold_text().into_owned();
                }
                let roles = if r.messages.is_empty() {
                    vec![("user".to_string(), prompt.clone())]
                } else {
                    r.messages.iter().map(|m| (m.role.clone(), m.content.clone())).collect()
                };
                (gold, Some(r.id.clone()), roles)
            }
        };
        Task {
            key: key.to_string(),
            prompt,
            source: spec.spec().sources[s].id.clone(),
            family: spec.source_families()[s].name.to_string(),
            gold,
            hinted: task.hint.is_some(),
            row_id,
            roles,
        }
    }

    /// Refuses `keys` and `responses` of different lengths, or too many.
    fn check_lengths(&self, keys: &[String], responses: &[String]) -> PyResult<()> {
        if keys.len() != responses.len() {
            return Err(ShapeError::new_err(format!(
                "{} task keys but {} responses: give one response per key",
                keys.len(),
                responses.len()
            )));
        }
        check_batch("the number of responses", keys.len())
    }
}

#[pymethods]
impl Environment {
    /// Loads a spec from TOML text; `origin` names it in errors.
    #[staticmethod]
    #[pyo3(signature = (text, origin = "<string>"))]
    fn from_toml(text: &str, origin: &str) -> PyResult<Environment> {
        let env = gristmill_engine::load(text, origin, &Overrides::default())
            .map_err(|e| engine_error(origin, e))?;
        Ok(Environment { env: Arc::new(env), text: text.to_string(), origin: origin.to_string() })
    }

    /// Loads a spec file.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Environment> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| SpecError::new_err(format!("cannot read spec {origin}: {e}")))?;
        Environment::from_toml(&text, &origin)
    }

    /// The spec's `name`.
    #[getter]
    fn name(&self) -> String {
        self.env.spec.spec().name.clone()
    }

    /// The spec's root seed (`run.seed`).
    #[getter]
    fn seed(&self) -> u64 {
        self.env.seed()
    }

    /// The spec's content hash.
    #[getter]
    fn spec_hash(&self) -> String {
        self.env.spec.hash().to_string()
    }

    /// The spec text as loaded.
    #[getter]
    fn spec_text(&self) -> String {
        self.text.clone()
    }

    /// Where the spec came from.
    #[getter]
    fn origin(&self) -> String {
        self.origin.clone()
    }

    /// Reward channel ids (the pieces that score), in column order.
    #[getter]
    fn channels(&self) -> Vec<String> {
        self.env.channel_ids()
    }

    /// Each channel's weight in the combined reward.
    #[getter]
    fn weights(&self) -> Vec<f64> {
        self.env.channel_weights()
    }

    /// The sources' ids.
    #[getter]
    fn sources(&self) -> Vec<String> {
        self.env.spec.spec().sources.iter().map(|s| s.id.clone()).collect()
    }

    /// Size of the gold eval suite.
    #[getter]
    fn eval_size(&self) -> u32 {
        self.env.spec.spec().eval.size
    }

    /// `count` training tasks of step `step` under root seed `seed` (the spec's by default),
    /// slots `offset .. offset + count`: exactly the tasks gristmill's own trainer would draw.
    #[pyo3(signature = (step, count, seed = None, offset = 0))]
    fn sample(
        &self,
        py: Python<'_>,
        step: u64,
        count: usize,
        seed: Option<u64>,
        offset: u64,
    ) -> PyResult<Vec<Task>> {
        check_batch("count", count)?;
        let seed = seed.unwrap_or(self.env.seed());
        let keys: Vec<WireKey> = (0..count as u64)
            .map_while(|i| offset.checked_add(i))
            .map(|index| WireKey::Train { seed, step, index })
            .collect();
        py.detach(|| {
            keys.par_iter()
                .enumerate()
                .map(|(i, &key)| Ok(self.task_object(key, &self.keyed(key, i)?)))
                .collect()
        })
    }

    /// The gold eval suite, in order (`e-0`, `e-1`, …).
    fn eval_tasks(&self, py: Python<'_>) -> PyResult<Vec<Task>> {
        let n = self.env.spec.spec().eval.size as u64;
        py.detach(|| {
            (0..n)
                .into_par_iter()
                .map(|index| {
                    let key = WireKey::Eval { index };
                    Ok(self.task_object(key, &self.keyed(key, index as usize)?))
                })
                .collect()
        })
    }

    /// The task a key names.
    fn task(&self, key: &str) -> PyResult<Task> {
        let k = Self::parse_key(key, 0)?;
        Ok(self.task_object(k, &self.keyed(k, 0)?))
    }

    /// Scores `responses[i]` to the task `keys[i]` with every reward channel: `bytes` of a
    /// row-major `len(keys) × len(channels)` float64 matrix. `samples[i]` is the score
    /// randomness index (default: the task's index). A non-finite reward is an error
    /// naming the channel and the response.
    #[pyo3(signature = (keys, responses, samples = None))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        keys: Vec<String>,
        responses: Vec<String>,
        samples: Option<Vec<u64>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.check_lengths(&keys, &responses)?;
        if let Some(s) = &samples {
            if s.len() != keys.len() {
                return Err(ShapeError::new_err(format!(
                    "{} samples for {} responses: give one sample index per response, or none",
                    s.len(),
                    keys.len()
                )));
            }
        }
        let env = &self.env;
        let channels = env.channel_ids();
        // One parallel pass per response: regenerate its task, parse, score every channel.
        let rows: Vec<PyResult<Vec<f64>>> = py.detach(|| {
            keys.par_iter()
                .zip(responses.into_par_iter())
                .enumerate()
                .map(|(i, (key, text))| {
                    let key = &Self::parse_key(key, i)?;
                    let task = self.keyed(*key, i)?;
                    let source = env.sources[task.key.source as usize].as_ref();
                    let response = Response::from_text(source, text);
                    let sample = samples.as_ref().map(|s| s[i]);
                    let rewards = env.score(&task, &response, env.keyed_score_key(*key, sample));
                    match crate::non_finite(&rewards) {
                        None => Ok(rewards),
                        Some((c, v)) => {
                            let why = env.pieces[env.channels[c]]
                                .scorer()
                                .and_then(|s| s.failure())
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default();
                            Err(ScoringError::new_err(format!(
                                "responses[{i}] (task `{key}`): channel `{}` gave {v}{why}",
                                channels[c]
                            )))
                        }
                    }
                })
                .collect()
        });
        let mut flat = Vec::with_capacity(rows.len() * channels.len());
        for row in rows {
            flat.extend(row?);
        }
        Ok(PyBytes::new(py, &to_bytes(&flat)))
    }

    /// The gold score (1 correct, 0 not) of `responses[i]` to `keys[i]`: `bytes` of
    /// `len(keys)` float64 values.
    fn gold<'py>(
        &self,
        py: Python<'py>,
        keys: Vec<String>,
        responses: Vec<String>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.check_lengths(&keys, &responses)?;
        let env = &self.env;
        let scores: Vec<PyResult<f64>> = py.detach(|| {
            keys.par_iter()
                .zip(responses.into_par_iter())
                .enumerate()
                .map(|(i, (key, text))| {
                    let task = self.keyed(Self::parse_key(key, i)?, i)?;
                    let source = env.sources[task.key.source as usize].as_ref();
                    Ok(env.gold_score(&task, &Response::from_text(source, text)))
                })
                .collect()
        });
        let scores: Vec<f64> = scores.into_iter().collect::<PyResult<_>>()?;
        Ok(PyBytes::new(py, &to_bytes(&scores)))
    }

    fn __repr__(&self) -> String {
        format!("Environment(name={:?}, channels={:?})", self.env.spec.spec().name, self.env.channel_ids())
    }
}
