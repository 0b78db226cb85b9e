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

/// A piece that emits a reward channel.
pub trait RewardPiece: Send + Sync {
    /// The reward of `response` to `task`. Must be finite.
    fn score(&self, task: &Task, response: &Response, key: ScoreKey) -> f64;
}
