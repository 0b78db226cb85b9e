//! # gristmill-measure
//!
//! What did each piece of an environment do to the model, and how much of the gain is
//! whose?
//!
//! * [`inrun`]: **in-run credit** — the path integral of `∇M` along every real training step,
//!   split by credit cell (piece × source). One run, no deletion; efficient up to a reported
//!   residual.
//! * [`coalition`]: counterfactual credit on common random numbers — exact Shapley over all
//!   `2ⁿ` coalitions, a permutation-sampled estimate with confidence intervals, and
//!   leave-one-out.
//! * [`standalone`]: each piece's proxy metric (agreement, pairwise accuracy, reward
//!   variance, entropy) to set beside its measured effect, and Kendall's τ between them.
//!
//! The integral needs nothing but `∇M` and the per-cell steps, so a trainer outside gristmill
//! can feed [`inrun::step_credit`]-style numbers too.
//!
//! Invariant: this crate knows nothing of task families; it sees an environment's pieces
//! and a trainer's steps.
#![warn(missing_docs)]

pub mod coalition;
pub mod inrun;
pub mod quadrature;
pub mod standalone;

pub use coalition::{
    coalition_metric, coalition_metrics, exact_shapley, leave_one_out, sampled_shapley, shapley,
    CoalitionError, SampledShapley, MAX_EXACT_PIECES,
};
pub use inrun::{step_credit, Conflict, CreditPoint, InRunCredit, StepCredit, DEFAULT_NODES};
pub use quadrature::gauss_legendre;
pub use standalone::{kendall_tau, standalone, Standalone};
