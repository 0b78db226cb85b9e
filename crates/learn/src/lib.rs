//! # gristmill-learn
//!
//! Policies with exact gradients, the exact gold metric, and the channel-split GRPO trainer.
//!
//! * [`model`]: log-linear and MLP policies over a finite answer space, with hand-written
//!   exact backward passes;
//! * [`metric`]: `M(θ)`, the expected gold score over the eval suite by enumeration, and
//!   `∇M(θ)`;
//! * [`trainer`]: a GRPO step whose advantage, gradient and optimizer step are all split by
//!   credit cell (channel × source), so that what each piece did to the parameters is known
//!   exactly;
//! * [`optim`]: SGD (linear) and Adam split by the Owen value of its update over the cells.
//!
//! ```no_run
//! # use gristmill_learn::{Trainer, TrainConfig};
//! # fn demo(env: gristmill_engine::Environment, config: TrainConfig) -> Result<(), gristmill_learn::LearnError> {
//! let mut trainer = Trainer::new(env, config)?; // seeded by the spec's root seed
//! let report = trainer.step()?;
//! let step: Vec<f64> = (0..report.theta_before.len())
//!     .map(|k| report.deltas.iter().map(|d| d[k]).sum())
//!     .collect(); // Σ_cells Δθ_cell = the real step
//! # Ok(()) }
//! ```
//!
//! Invariant: this crate knows environments only through `gristmill-engine`'s public API
//! and knows nothing of storage, credit reports or HTTP.
#![warn(missing_docs)]

pub mod config;
pub mod metric;
pub mod model;
pub mod optim;
pub mod trainer;

pub use config::{Normalization, TrainConfig};
pub use trainer::{
    group_advantages, ChannelKind, CreditChannel, SampleRecord, SampledGroup, StepReport, StepSamples,
    StepTimings, TrainState, Trainer,
};

use gristmill_engine::EngineError;

/// What can stop training.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// A logit, reward, gradient or parameter was NaN or infinite.
    #[error("non-finite value {value} in {channel}{}", step.map(|s| format!(" at step {s}")).unwrap_or_default())]
    NonFinite {
        /// The step, when known.
        step: Option<u64>,
        /// Which channel or quantity (`logits`, a piece id, `gradient of <piece>`, `parameters`).
        channel: String,
        /// The offending value.
        value: f64,
    },
    /// The environment failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The credit layout has more cells than the split optimizer can track.
    #[error(
        "{cells} credit cells (credit rows × (sources + 1)) exceed the split optimizer's limit of {max}; \
         use fewer pieces or sources"
    )]
    TooManyCells {
        /// Cells the spec needs.
        cells: usize,
        /// The limit.
        max: usize,
    },
    /// A checkpoint does not fit.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

impl LearnError {
    /// The same error, located at `step` if it had no step yet.
    pub fn at_step(self, step: u64) -> LearnError {
        match self {
            LearnError::NonFinite { step: None, channel, value } => {
                LearnError::NonFinite { step: Some(step), channel, value }
            }
            other => other,
        }
    }
}

impl From<gristmill_core::TaskError> for LearnError {
    fn from(e: gristmill_core::TaskError) -> Self {
        LearnError::Engine(EngineError::Task(e))
    }
}

#[cfg(test)]
mod model_tests;
