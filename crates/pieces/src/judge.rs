//! `judge`: a rubric judge over an OpenAI-compatible endpoint, as a reward piece.
//!
//! The piece's channel is the rubric's weighted total in `[0, 1]`; each item's score is a
//! sub-channel of it ([`JudgePiece::item_scores`]). Verdicts come from the
//! [`VerdictCache`] the environment hands the piece — the run store's when the command has
//! one — keyed by content (grader model, rendered prompt, sampling parameters), so a replay,
//! a coalition run or a resumed run asks the grader nothing it was asked before, and with
//! `mode = "offline"` never contacts it at all.
//!
//! ```toml
//! [[piece]]
//! id = "style"
//! kind = "judge"
//! [piece.params]
//! endpoint = { url = "http://127.0.0.1:8000/v1", model = "grader", timeout_ms = 20000 }
//! items = [
//!   { id = "answers", question = "Does the response answer the question?", weight = 2.0 },
//!   { id = "clear", question = "How clear is the response?", verdict = { scale = 10 } },
//! ]
//! retry = { retries = 3, backoff_ms = 200 }
//! ```

use std::sync::{Arc, Mutex};

use gristmill_core::piece::{RewardPiece, ScoreKey};
use gristmill_core::policy::Response;
use gristmill_core::task::Task;
use gristmill_judge::{Judge, JudgeRequest, JudgeScore, Mode, RubricConfig, VerdictCache};

use crate::free_text::{gold_text, remember};

/// The fields of a judge's rubric given as piece parameters (every [`RubricConfig`] field but
/// `id`, which is the piece id).
pub const RUBRIC_FIELDS: [&str; 6] = ["endpoint", "items", "sampling", "retry", "template", "verdict"];

/// A rubric judge as a reward piece.
pub struct JudgePiece {
    judge: Judge,
    show_gold: bool,
    failure: Mutex<Option<String>>,
}

impl std::fmt::Debug for JudgePiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JudgePiece").field("judge", &self.judge).finish()
    }
}

/// Why a judge's parameters do not make a rubric: the parameter at fault and the message.
#[derive(Debug)]
pub struct RubricProblem {
    /// The parameter (one of [`RUBRIC_FIELDS`], or `mode`).
    pub param: String,
    /// What is wrong, with the path inside the parameter.
    pub message: String,
}

impl JudgePiece {
    /// A judge from its parameters as JSON values (see [`RUBRIC_FIELDS`]; `null` for a field
    /// not given), over `cache` (a fresh in-memory one when `None`).
    pub fn from_params(
        id: &str,
        fields: &[(&str, &serde_json::Value)],
        offline: bool,
        show_gold: bool,
        cache: Option<Arc<dyn VerdictCache>>,
    ) -> Result<JudgePiece, RubricProblem> {
        let mut object = serde_json::Map::new();
        object.insert("id".into(), id.into());
        for (name, value) in fields {
            if !value.is_null() {
                object.insert((*name).to_string(), (*value).clone());
            }
        }
        for required in ["endpoint", "items"] {
            if !object.contains_key(required) {
                return Err(RubricProblem {
                    param: required.into(),
                    message: "is required for a judge".into(),
                });
            }
        }
        let value = serde_json::Value::Object(object);
        let config: RubricConfig = serde_path_to_error::deserialize(&value).map_err(|e| {
            let path = e.path().to_string();
            let param =
                path.split(['.', '[']).next().filter(|p| RUBRIC_FIELDS.contains(p)).unwrap_or("items");
            RubricProblem { param: param.to_string(), message: format!("at `{path}`: {}", e.inner()) }
        })?;
        let judge = Judge::new(config)
            .map_err(|e| RubricProblem { param: "items".into(), message: e.to_string() })?;
        let judge = match cache {
            Some(cache) => judge.with_cache(cache),
            None => judge,
        };
        let judge = judge.with_mode(if offline { Mode::Offline } else { Mode::Online });
        Ok(JudgePiece { judge, show_gold, failure: Mutex::new(None) })
    }

    /// The judge.
    pub fn judge(&self) -> &Judge {
        &self.judge
    }

    /// Every item's score and the total, for `response` to `task` (the sub-channels).
    pub fn item_scores(
        &self,
        task: &Task,
        response: &str,
    ) -> Result<JudgeScore, gristmill_judge::JudgeError> {
        let key = task.key.to_string();
        let gold = self.show_gold.then(|| gold_text(task));
        let mut request = JudgeRequest::new(&key, &task.body.prompt, response);
        if let Some(g) = &gold {
            request = request.with_gold(g);
        }
        self.judge.score(&request)
    }
}

impl RewardPiece for JudgePiece {
    fn score(&self, task: &Task, response: &Response, _key: ScoreKey) -> f64 {
        match self.item_scores(task, &response.text) {
            Ok(score) => score.total,
            Err(e) => {
                remember(&self.failure, e.to_string());
                f64::NAN
            }
        }
    }
    fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
    /// Each item's share of the total, `weight / Σ weight`, named as in `sub_scores`.
    fn sub_weights(&self) -> Vec<(String, f64)> {
        let items = &self.judge.config().items;
        let total: f64 = items.iter().map(|i| i.weight).sum();
        items
            .iter()
            .enumerate()
            .map(|(k, i)| (i.id.clone().unwrap_or_else(|| k.to_string()), i.weight / total))
            .collect()
    }
    /// Each item's score, named by its id (or its index), from the verdicts `score` cached.
    fn sub_scores(&self, task: &Task, response: &Response) -> Vec<(String, f64)> {
        match self.item_scores(task, &response.text) {
            Ok(score) => score
                .items
                .into_iter()
                .map(|i| (i.id.unwrap_or_else(|| i.index.to_string()), i.score))
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}
