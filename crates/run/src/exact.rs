//! The trainer's exact gold metric behind the credit ledger's seam.

use gristmill_learn::{LearnError, Trainer};
use gristmill_measure::MetricGradient;

/// `M` and `∇M` of a trainer's gold suite, computed exactly by enumeration: what gristmill's
/// own runs integrate along every step.
pub struct ExactMetric<'a>(pub &'a Trainer);

impl MetricGradient for ExactMetric<'_> {
    type Error = LearnError;
    fn metric_and_gradient(&self, theta: &[f64]) -> Result<(f64, Vec<f64>), LearnError> {
        self.0.metric_and_grad(theta)
    }
}
