//! Engine errors.

use gristmill_core::TaskError;

/// What can go wrong assembling or rolling out an environment.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A piece failed to build.
    #[error("piece `{id}`: {source}")]
    Piece {
        /// Piece id.
        id: String,
        /// Why (boxed: a piece error carries its parameter problems, and every engine
        /// result would otherwise pay for its size).
        source: Box<gristmill_pieces::PieceError>,
    },
    /// A task could not be generated.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// A task key names a source the environment does not have.
    #[error("unknown source index {index}")]
    UnknownSource {
        /// The index.
        index: u32,
    },
    /// A reward was not finite.
    #[error("step {step}: channel `{channel}` gave a non-finite reward {value} (sample {index})")]
    NonFiniteReward {
        /// Step.
        step: u64,
        /// Sample index.
        index: u64,
        /// Channel id.
        channel: String,
        /// The value.
        value: f64,
    },
    /// The spec could not be loaded.
    #[error(transparent)]
    Spec(#[from] gristmill_core::SpecError),
    /// A policy kind is not one the engine can roll out by itself.
    #[error("policy kind `{0}` is not a reference policy; trainable policies run through the learner")]
    NotReference(String),
}
