//! Errors of piece construction.

use gristmill_core::TaskError;

/// A piece could not be built. Always names the piece id, so a spec with many pieces
/// points at the right one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("piece `{id}`: {problem}")]
pub struct PieceError {
    /// The piece id from the spec.
    pub id: String,
    /// What went wrong.
    pub problem: PieceProblem,
}

impl PieceError {
    /// A problem with piece `id`.
    pub fn new(id: &str, problem: impl Into<PieceProblem>) -> Self {
        PieceError { id: id.to_string(), problem: problem.into() }
    }
}

/// What went wrong while building a piece.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PieceProblem {
    /// The kind is not one of [`kinds`](crate::kinds).
    #[error("unknown piece kind `{0}`")]
    UnknownKind(String),
    /// A parameter is missing its declaration, has the wrong type, or is out of range.
    /// Core validates specs before `build`, so this only fires for hand-made [`Params`](
    /// gristmill_core::params::Params).
    #[error("parameter `{name}`: {message}")]
    BadParam {
        /// Parameter name.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The piece needs task sources (to sample from, or to train on) and there are none.
    #[error("needs at least one single-turn task source, and the environment has none")]
    NoSources,
    /// The [`BuildContext`](crate::BuildContext) slices disagree in length.
    #[error("inconsistent build context: {0}")]
    Context(String),
    /// Sampling or model weights are unusable.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// Generating a training task for the reward model failed.
    #[error("generating a training task failed: {0}")]
    Task(#[from] TaskError),
    /// The code sandbox cannot run on this host (isolation unavailable, no interpreter).
    #[error("the code sandbox cannot start: {0}")]
    Sandbox(String),
    /// Every attempted preference pair was degenerate (one-answer spaces) or a tie.
    #[error("no usable preference pairs in {attempts} attempts (answer spaces too small, or all ties)")]
    NoPairs {
        /// Attempts made.
        attempts: u64,
    },
}

/// A weight vector (curriculum probabilities or reward-model parameters) is unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightsError {
    /// No weights at all.
    #[error("no weights given")]
    Empty,
    /// The vector has the wrong length.
    #[error("expected {expected} weights, got {got}")]
    Length {
        /// Required length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// A weight is NaN or infinite, or beyond the documented magnitude bound.
    #[error("weight {index} is {value}; weights must be finite and at most {bound:e} in magnitude")]
    OutOfBounds {
        /// Position in the vector.
        index: usize,
        /// The offending value.
        value: f64,
        /// The magnitude bound.
        bound: f64,
    },
    /// A sampling weight is negative.
    #[error("weight {index} is {value}; sampling weights must be non-negative")]
    Negative {
        /// Position in the vector.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Every sampling weight is zero, so nothing could ever be sampled.
    #[error("all weights are zero; at least one must be positive")]
    AllZero,
}
