//! # gristmill-measure
//!
//! What did each piece of an environment do to the model, and how much of the gain is
//! whose? The credit arithmetic, usable by any trainer:
//!
//! * [`ledger`]: the [`CreditLedger`] — per-step contributions in (from gristmill's trainer,
//!   or first-order terms from an outside trainer), a credit table per piece × source with
//!   its residual out; typed errors for malformed input; a small resumable state.
//! * [`path`]: the in-run credit integral of one step, `∫₀¹ ∇M(θ + sΔθ)·Δθ_cell ds`, for
//!   any metric behind the [`MetricGradient`] seam, and the [`Conflict`] between pieces.
//! * [`shapley`]: exact and permutation-sampled Shapley, and leave-one-out, from coalition
//!   values.
//! * [`rank`]: Kendall's τ between a proxy and a measured effect.
//!
//! ```
//! use gristmill_measure::{CreditLedger, StepContribution};
//!
//! // Two pieces on one source, fed by hand (an outside trainer would compute the terms).
//! let mut ledger = CreditLedger::new(vec!["verifier".into(), "format".into()], vec!["math".into()]);
//! ledger.observe(StepContribution {
//!     step: 0, metric_before: 0.20, metric_after: 0.25, delta_se: None,
//!     cells: vec![0.04, 0.01], conflict: None,
//! })?;
//! assert_eq!(ledger.row("verifier"), Some(0.04));
//! assert!(ledger.residual().abs() < 1e-15);
//! // Out of order, or NaN, or an unknown cell: a typed error, nothing recorded.
//! assert!(ledger.observe_named(5, 0.25, 0.3, None, &[("verifier", "math", 0.05)]).is_err());
//! # Ok::<(), gristmill_measure::LedgerError>(())
//! ```
//!
//! Invariant: this crate knows nothing of task families, environments, policies or the
//! trainer; it sees numbers (a metric and its gradient, per-cell step shares, coalition
//! values) and depends on `gristmill-core` only for the keyed random streams.
#![warn(missing_docs)]

pub mod ledger;
pub mod path;
pub mod quadrature;
pub mod rank;
pub mod shapley;

pub use ledger::{CreditLedger, LedgerError, LedgerState, StepContribution, StepCredit};
pub use path::{path_credit, Conflict, MetricGradient, PathCredit, Rule, DEFAULT_NODES};
pub use quadrature::gauss_legendre;
pub use rank::kendall_tau;
pub use shapley::{
    all_coalitions, exact_shapley, leave_one_out, leave_one_out_coalitions, permutation_orders,
    sampled_shapley, SampledShapley, TooManyPieces, MAX_EXACT_PIECES,
};
