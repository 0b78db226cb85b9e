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
    /// A dataset source could not be opened (the error names the file, row and field).
    #[error("source `{id}`: {source}")]
    Dataset {
        /// Source id.
        id: String,
        /// Why.
        source: Box<gristmill_tasks::dataset::DatasetError>,
    },
    /// Code tasks need the sandbox for their gold metric, and it cannot start here.
    #[error("source `{id}` has unit-test gold, and the sandbox that checks it cannot start: {reason}")]
    GoldSandbox {
        /// Source id.
        id: String,
        /// The sandbox's reason.
        reason: String,
    },
    /// The policy chooses among integer answers and a source's tasks are free text.
    #[error("policy `{policy}` answers with integers from a finite answer space, and source `{source_id}` is a dataset of free-text tasks; use an `oracle` or language-model policy (`--policy lm:…` / `openai:…`)")]
    FreeTextPolicy {
        /// The policy kind.
        policy: String,
        /// The free-text source.
        source_id: String,
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
    /// An eval task key past the end of the gold suite.
    #[error("the gold suite has {size} tasks (e-0 .. e-{}), so e-{index} names none", size.saturating_sub(1))]
    NoSuchEvalTask {
        /// The index asked for.
        index: u64,
        /// The suite's size.
        size: u64,
    },
    /// A reward was not finite.
    #[error("step {step}: channel `{channel}` gave a non-finite reward {value} (sample {index}){}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    NonFiniteReward {
        /// Step.
        step: u64,
        /// Sample index.
        index: u64,
        /// Channel id.
        channel: String,
        /// The value.
        value: f64,
        /// Why, when the piece knows (its outside service failed).
        reason: Option<String>,
    },
    /// The spec could not be loaded.
    #[error(transparent)]
    Spec(#[from] gristmill_core::SpecError),
    /// A policy kind is not one the engine can roll out by itself.
    #[error("policy kind `{0}` is not a reference policy; trainable policies run through the learner")]
    NotReference(String),
}
