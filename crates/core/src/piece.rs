//! Pieces: the parts of an environment that shape training.

use std::fmt;

use crate::params::ParamSpec;
use crate::policy::Response;
use crate::rng::{stream, KeyedRng, Purpose};
use crate::task::Task;

/// What a piece does to training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PieceKind {
    /// Scores a response against the task (exact, lenient, noisy).
    Verifier,
    /// A learned scorer.
    RewardModel,
    /// A dense reward term (partial credit, format, length).
    Shaping,
    /// Sampling weights over task sources and difficulty.
    Curriculum,
    /// Scaffolding added to the observation.
    Hint,
}

impl PieceKind {
    /// Whether the piece emits a reward channel (as opposed to shaping sampling or
    /// observations).
    pub fn is_reward(self) -> bool {
        matches!(self, PieceKind::Verifier | PieceKind::RewardModel | PieceKind::Shaping)
    }
    /// Snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            PieceKind::Verifier => "verifier",
            PieceKind::RewardModel => "reward_model",
            PieceKind::Shaping => "shaping",
            PieceKind::Curriculum => "curriculum",
            PieceKind::Hint => "hint",
        }
    }
}

impl fmt::Display for PieceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A piece kind as listed in specs (`kind = "noisy_verifier"`) with its parameters.
#[derive(Debug, Clone, Copy)]
pub struct PieceKindInfo {
    /// Name used in specs.
    pub name: &'static str,
    /// What it does.
    pub kind: PieceKind,
    /// One paragraph.
    pub doc: &'static str,
    /// Declared parameters.
    pub params: &'static [ParamSpec],
}

/// Where a score is computed: the key of any randomness the piece uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreKey {
    /// Run root seed.
    pub seed: u64,
    /// Training step (or batch number).
    pub step: u64,
    /// Sample index within the step.
    pub index: u64,
}

impl ScoreKey {
    /// The piece's own stream for this sample; `label` is the piece id, so two pieces never
    /// share draws.
    pub fn rng(&self, label: &str) -> KeyedRng {
        stream(self.seed, Purpose::PIECE.with(label), self.step, self.index)
    }
}

/// A run of consecutive samples of one step, scored together: response `j` answers
/// `tasks[j / group_size]` and has sample index `first_index + j`.
#[derive(Debug, Clone, Copy)]
pub struct ScoreBatch<'a> {
    /// The tasks of the run.
    pub tasks: &'a [Task],
    /// `group_size` responses per task, task after task.
    pub responses: &'a [Response],
    /// Responses per task (G).
    pub group_size: usize,
    /// Run root seed.
    pub seed: u64,
    /// Training step (or batch number).
    pub step: u64,
    /// Sample index of `responses[0]`.
    pub first_index: u64,
}

impl ScoreBatch<'_> {
    /// The task response `j` answers.
    #[inline]
    pub fn task(&self, j: usize) -> &Task {
        &self.tasks[j / self.group_size]
    }
    /// The score key of response `j`.
    #[inline]
    pub fn key(&self, j: usize) -> ScoreKey {
        ScoreKey { seed: self.seed, step: self.step, index: self.first_index + j as u64 }
    }
}

/// A piece that emits a reward channel.
pub trait RewardPiece: Send + Sync {
    /// The reward of `response` to `task`. Must be finite.
    fn score(&self, task: &Task, response: &Response, key: ScoreKey) -> f64;

    /// The rewards of every response of `batch`: `out[j]` for `batch.responses[j]`, equal bit
    /// for bit to [`score`](RewardPiece::score) of that sample. Rollouts score one channel
    /// over a run of samples at a time, so the default loop, compiled per piece, calls
    /// `score` without dynamic dispatch; pieces override it to hoist per-step work.
    fn score_batch(&self, batch: &ScoreBatch<'_>, out: &mut [f64]) {
        for (j, (slot, response)) in out.iter_mut().zip(batch.responses).enumerate() {
            *slot = self.score(batch.task(j), response, batch.key(j));
        }
    }

    /// Why the piece scored a non-finite value, if it knows: a piece that asks an outside
    /// service (a judge endpoint, a sandbox) scores NaN when the service fails, and the engine
    /// puts this reason in the error that stops the rollout.
    fn failure(&self) -> Option<String> {
        None
    }

    /// The named parts of this piece's reward for one response (a rubric judge's items);
    /// empty for a piece whose reward has no parts. gristmill-learn's trainers credit the
    /// piece as a whole; the language-model trainer credits each part as its own row (see
    /// [`sub_weights`](RewardPiece::sub_weights)).
    fn sub_scores(&self, _task: &Task, _response: &Response) -> Vec<(String, f64)> {
        Vec::new()
    }
    /// The parts' shares `(name, a_i)`, in `sub_scores` order, such that the reward is
    /// `Σ a_i · part_i` (a rubric judge: `weight_i / Σ weight`); empty for a piece whose
    /// reward has no parts.
    fn sub_weights(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
}
