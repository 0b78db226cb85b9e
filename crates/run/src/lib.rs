//! # gristmill-run
//!
//! A training run as a library type. [`Run`] owns the chain spec → environment → trainer →
//! credit ledger → checkpoint: it steps the trainer, feeds each step's path integral into
//! the [`CreditLedger`](gristmill_measure::CreditLedger), and records steps and checkpoints
//! into a [`RunSink`] (the SQLite run store, or nothing). The command line, the benches, the
//! trainable pieces and the Python package drive it; none of them rebuilds the loop.
//!
//! ```no_run
//! use gristmill_core::spec::Overrides;
//! use gristmill_run::{NoSink, Run};
//!
//! let text = std::fs::read_to_string("examples/learn.toml")?;
//! let env = gristmill_engine::load(&text, "examples/learn.toml", &Overrides { steps: Some(20), ..Default::default() })?;
//! let mut run = Run::new(env)?;
//! run.train(20, &mut NoSink, &mut |_| std::ops::ControlFlow::Continue(()))?;
//! let ledger = run.ledger().expect("credit is on by default");
//! println!("ΔM {:+.4}, residual {:+.1e}", ledger.delta_metric(), ledger.residual());
//! let bytes = run.checkpoint().encode(); // versioned; `Run::resume` reads it back
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Also here: the coalition runs behind exact Shapley, its sampled estimate and
//! leave-one-out ([`coalition`]), each piece's standalone metrics ([`standalone`]), the
//! typed reports ([`report`]), the checkpoint format ([`checkpoint`]) and the record of a run
//! an outside trainer trained ([`outside`]).
//!
//! Invariant: this crate knows nothing of the command line, HTTP or how results are
//! printed; it reaches storage only through [`RunSink`], and the credit arithmetic only
//! through `gristmill-measure`'s ledger and path integral.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod coalition;
pub mod exact;
pub mod outside;
pub mod report;
mod run;
pub mod sink;
pub mod standalone;

pub use checkpoint::{Checkpoint, CheckpointError, CHECKPOINT_FORMAT};
pub use exact::ExactMetric;
pub use outside::{NewOutsideRun, OutsideError, OutsideReport, OutsideRun, OUTSIDE_KIND};
pub use run::{Run, RunStep, Trained};
pub use sink::{NoSink, RunSink, StoreSink};

/// What can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The spec's policy does not train.
    #[error("the spec's policy `{policy}` does not train; a training run needs `loglinear` or `mlp`")]
    NotTrainable {
        /// The policy kind.
        policy: String,
    },
    /// Training failed.
    #[error(transparent)]
    Learn(#[from] gristmill_learn::LearnError),
    /// The environment failed.
    #[error(transparent)]
    Engine(#[from] gristmill_engine::EngineError),
    /// The ledger refused a step.
    #[error(transparent)]
    Ledger(#[from] gristmill_measure::LedgerError),
    /// Exact Shapley would need too many runs.
    #[error(transparent)]
    TooManyPieces(#[from] gristmill_measure::TooManyPieces),
    /// A checkpoint could not be read.
    #[error(transparent)]
    CheckpointFormat(#[from] CheckpointError),
    /// A checkpoint does not fit the spec.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] gristmill_store::StoreError),
    /// A step failed; the last good state was checkpointed first.
    #[error("stopped; last good state checkpointed at step {checkpointed_at}: {source}")]
    Stopped {
        /// Steps done at the checkpoint.
        checkpointed_at: u64,
        /// Why.
        source: Box<RunError>,
    },
}

impl RunError {
    /// Whether the run stopped because a piece's outside service failed (a judge's grader,
    /// the code sandbox's host): a failure that is not the run's and may pass, so the run can
    /// be resumed rather than failed.
    pub fn is_outside_failure(&self) -> bool {
        use gristmill_engine::EngineError::NonFiniteReward;
        match self {
            RunError::Stopped { source, .. } => source.is_outside_failure(),
            RunError::Engine(NonFiniteReward { reason: Some(_), .. }) => true,
            RunError::Learn(gristmill_learn::LearnError::Engine(NonFiniteReward {
                reason: Some(_), ..
            })) => true,
            _ => false,
        }
    }
}
