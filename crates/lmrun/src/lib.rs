//! # gristmill-lm-run
//!
//! Reinforcement learning of a language model inside gristmill. [`LmRun`] trains
//! gristmill-lm's [`TrainableLm`](gristmill_lm::train::TrainableLm) (a GGUF model dequantized
//! to f32, or a tiny random llama built in code) with LoRA adapters or unfrozen layers on any
//! environment whose pieces score free text, and measures every piece's effect inside the run.
//!
//! ## A step
//!
//! 1. `B` training tasks (the environment's keyed draws), `G` responses each from one batched
//!    generation, sample `j` drawing from its own keyed stream `(seed, sample, step, j)`.
//! 2. Every reward channel scores every response; group advantages per channel
//!    (`gristmill_learn::group_advantages`: shared, per-channel or no σ).
//! 3. **Per-cell gradients** (cell = credit row × source column): the policy-gradient loss
//!    `(1/BG) Σ_j A_{j,c} n_j Σ_t ∇log π(y_{j,t}|…)` (`n_j = 1/|y_j|` by default, GRPO's token
//!    mean; `1` for the sequence sum; one mean over the batch's tokens with `token_batch`,
//!    then without the `1/BG`) is linear in each sample's advantage, so one forward and one
//!    backward carry every channel × source at once (`channel_gradients`, channel-batched);
//!    the KL to the reference model (k3 on the sampled tokens) is its own row.
//! 4. The split optimizer (`gristmill_learn::optim`): Adam's update split by the Owen value
//!    over the cells (exact, bounded), SGD's linearly; AdamW's decoupled decay `−ηλθ` is the
//!    `weight_decay` row in the `(global)` column. `Σ_cells Δθ_cell = Δθ` is checked at every
//!    step (`split_error`, relative ∞-norm).
//! 5. With credit on, two metrics are credited:
//!    - the **gold metric** `M` = expected gold score on the fixed gold suite, estimated with
//!      `K = eval_samples` samples per task drawn from the **same uniforms at every
//!      evaluation** (common random numbers), with its standard error, and `∇M` by the score
//!      function with a leave-one-out baseline on those samples; a cell's credit is
//!      `Δθ_cell · (∇M(θ_t) + ∇M(θ_{t+1}))/2` (trapezoid on the estimated gradient) and the
//!      residual `ΔM − Σ credit` is reported with the standard error of `ΔM` (paired over
//!      the common samples);
//!    - the **log-likelihood metric** `L` = mean teacher-forced `log π(gold completion | x)`
//!      over the suite, smooth in `θ`: its path integral `∫₀¹ ∇L(θ + sΔθ)·Δθ_cell ds` by
//!      Gauss–Legendre, exact up to quadrature and float32 rounding of the model.
//!
//! ## Determinism
//!
//! Every random number is keyed; the model's kernels compute every output from a fixed
//! sequence of operations whatever the thread count; scoring runs in parallel but collects in
//! sample order; sums run in fixed order. Same spec and seed ⇒ same digest on any thread
//! count, and a checkpoint ([`LmCheckpoint`]) resumes to the same bits: it holds the f64
//! master parameters and the optimizer's moments, and everything else is recomputed.
//!
//! ## Counterfactuals
//!
//! [`coalition_metric`] trains a coalition (pieces switched off, their channels zero) on the
//! same task streams and sampling uniforms, so leave-one-out and Shapley over pieces work for
//! language-model runs too ([`leave_one_out`], [`shapley`]).
//!
//! **Invariant:** this crate knows nothing of the command line, HTTP or printing; it reaches
//! storage only through `gristmill_run::RunSink`.
#![warn(missing_docs)]

mod checkpoint;
mod config;
mod report;
mod run;

use std::collections::BTreeMap;

use gristmill_engine::{Coalition, EngineError, Environment};
use gristmill_lm::train::TrainError;
use gristmill_measure::LedgerError;
use gristmill_store::StoreError;

pub use checkpoint::{LmCheckpoint, LmCheckpointError, LM_CHECKPOINT_FORMAT};
pub use config::{LmConfig, ModelChoice};
pub use report::{LmCredit, LmCreditRow, LmReport};
pub use run::{LmRun, LmStep, GLOBAL_COLUMN};

/// What can go wrong in a language-model run.
#[derive(Debug, thiserror::Error)]
pub enum LmRunError {
    /// The `[policy]` settings do not make a run.
    #[error("{0}")]
    Config(String),
    /// The spec asks for something this trainer does not do.
    #[error("not supported by the language-model trainer: {0}")]
    Unsupported(String),
    /// The model refused (a missing file, an unknown LoRA target, a sequence longer than the
    /// context…): `what` says which part of the spec or step it was doing.
    #[error("{}{what}: {source}", .step.map(|s| format!("step {s}: ")).unwrap_or_default())]
    Model {
        /// The step, if during training.
        step: Option<u64>,
        /// What was being done (or the spec parameters involved).
        what: String,
        /// The model's error.
        source: TrainError,
    },
    /// A response had no tokens.
    #[error("step {step}: sample {sample} generated no tokens")]
    EmptyGeneration {
        /// The step.
        step: u64,
        /// The sample.
        sample: usize,
    },
    /// A reward, gradient or parameter is NaN or infinite.
    #[error("step {step}: {what} is {value}")]
    NonFinite {
        /// The step.
        step: u64,
        /// What is not finite.
        what: String,
        /// The value.
        value: f64,
    },
    /// The environment refused.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The ledger refused a step.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The checkpoint cannot be used.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A step failed after the run was checkpointed at its last good state.
    #[error("stopped at step {checkpointed_at} (checkpointed there): {source}")]
    Stopped {
        /// Steps done and checkpointed.
        checkpointed_at: u64,
        /// The step's error.
        source: Box<LmRunError>,
    },
}

impl LmRunError {
    pub(crate) fn model(step: Option<u64>, what: &str, source: TrainError) -> LmRunError {
        LmRunError::Model { step, what: what.to_string(), source }
    }
}

/// `M` after a `steps`-step run of coalition `mask` (bit `i` = piece `i` on), without
/// in-run credit. Coalitions share the task streams and every sampling uniform.
///
/// # Errors
/// As [`LmRun::step`].
pub fn coalition_metric(
    env: &Environment,
    config: &LmConfig,
    steps: u64,
    mask: u64,
) -> Result<f64, LmRunError> {
    let coalition = Coalition::from_mask(env.pieces.len(), mask);
    let mut config = config.clone();
    config.credit_nodes = 0;
    let mut run = LmRun::new(env.with_coalition(coalition), config)?;
    run.advance(steps)?;
    Ok(run.metric_now()?.0)
}

/// `M` of every coalition in `masks` (one after the other: each holds its own model).
///
/// # Errors
/// As [`coalition_metric`].
pub fn coalition_metrics(
    env: &Environment,
    config: &LmConfig,
    steps: u64,
    masks: &[u64],
    on_done: &mut dyn FnMut(u64),
) -> Result<BTreeMap<u64, f64>, LmRunError> {
    let mut out = BTreeMap::new();
    for &m in masks {
        if let std::collections::btree_map::Entry::Vacant(e) = out.entry(m) {
            e.insert(coalition_metric(env, config, steps, m)?);
            on_done(m);
        }
    }
    Ok(out)
}

/// Leave-one-out per piece, `v(N) − v(N ∖ {i})`, from `n + 1` runs; also the values.
///
/// # Errors
/// As [`coalition_metric`].
pub fn leave_one_out(
    env: &Environment,
    config: &LmConfig,
    steps: u64,
    on_done: &mut dyn FnMut(u64),
) -> Result<(Vec<f64>, BTreeMap<u64, f64>), LmRunError> {
    let n = env.pieces.len();
    let values =
        coalition_metrics(env, config, steps, &gristmill_measure::leave_one_out_coalitions(n), on_done)?;
    Ok((gristmill_measure::leave_one_out(n, &values), values))
}

/// Exact Shapley over the pieces, from all `2ⁿ` coalition runs; also the values.
///
/// # Errors
/// As [`coalition_metric`], and too many pieces for exact enumeration.
pub fn shapley(
    env: &Environment,
    config: &LmConfig,
    steps: u64,
    on_done: &mut dyn FnMut(u64),
) -> Result<(Vec<f64>, BTreeMap<u64, f64>), LmRunError> {
    let n = env.pieces.len();
    let masks = gristmill_measure::all_coalitions(n).map_err(|e| LmRunError::Unsupported(e.to_string()))?;
    let values = coalition_metrics(env, config, steps, &masks, on_done)?;
    Ok((gristmill_measure::exact_shapley(n, &values), values))
}
