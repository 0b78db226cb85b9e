//! The channel-split optimizer.
//!
//! Each credit cell `i` (a channel × source pair) brings its own gradient `g_i`; the real
//! gradient is `g = Σ_i g_i`. The optimizer returns one step `Δθ_i` per cell such that
//! `Σ_i Δθ_i` is the step an ordinary optimizer takes on `g`:
//!
//! * SGD: `Δθ_i = η g_i` — linear, so the split is exact.
//! * Adam: one first-moment buffer per cell, `m_i ← β₁ m_i + (1−β₁) g_i` (their sum is the
//!   ordinary buffer `m`), and the shared second moment from the total gradient,
//!   `v ← β₂ v + (1−β₂) g²`. Then `Δθ_i = η (m_i / (1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)`, and
//!   `Σ_i Δθ_i = η m̂ / (√v̂ + ε)`, the ordinary Adam step.
//!
//! Steps are ascent steps: the trainer hands in gradients of the objective to maximise.

use serde::{Deserialize, Serialize};

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum OptimizerKind {
    /// Plain gradient ascent.
    Sgd,
    /// Adam with the given hyper-parameters.
    Adam {
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator guard.
        eps: f64,
    },
}

/// Optimizer state, split by cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitOptimizer {
    /// Rule.
    pub kind: OptimizerKind,
    /// Learning rate η.
    pub learning_rate: f64,
    /// Steps taken.
    pub t: u64,
    /// First moments per cell (Adam).
    pub m: Vec<Vec<f64>>,
    /// Shared second moment (Adam).
    pub v: Vec<f64>,
}

impl SplitOptimizer {
    /// Fresh state for `cells` cells over `len` parameters.
    pub fn new(kind: OptimizerKind, learning_rate: f64, cells: usize, len: usize) -> Self {
        let (m, v) = match kind {
            OptimizerKind::Sgd => (Vec::new(), Vec::new()),
            OptimizerKind::Adam { .. } => (vec![vec![0.0; len]; cells], vec![0.0; len]),
        };
        SplitOptimizer { kind, learning_rate, t: 0, m, v }
    }

    /// One step: per-cell steps `Δθ_i` from per-cell gradients `g_i`.
    pub fn step(&mut self, grads: &[Vec<f64>]) -> Vec<Vec<f64>> {
        self.t += 1;
        let eta = self.learning_rate;
        match self.kind {
            OptimizerKind::Sgd => grads.iter().map(|g| g.iter().map(|x| eta * x).collect()).collect(),
            OptimizerKind::Adam { beta1, beta2, eps } => {
                let len = self.v.len();
                let mut total = vec![0.0; len];
                for g in grads {
                    for (a, b) in total.iter_mut().zip(g) {
                        *a += b;
                    }
                }
                for (v, g) in self.v.iter_mut().zip(&total) {
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                }
                let c1 = 1.0 - beta1.powi(self.t as i32);
                let c2 = 1.0 - beta2.powi(self.t as i32);
                let denom: Vec<f64> = self.v.iter().map(|v| (v / c2).sqrt() + eps).collect();
                self.m
                    .iter_mut()
                    .zip(grads)
                    .map(|(m, g)| {
                        m.iter_mut()
                            .zip(g)
                            .zip(&denom)
                            .map(|((mi, gi), di)| {
                                *mi = beta1 * *mi + (1.0 - beta1) * gi;
                                eta * (*mi / c1) / di
                            })
                            .collect()
                    })
                    .collect()
            }
        }
    }
}

/// An ordinary, unsplit Adam/SGD on the total gradient: the reference the split optimizer
/// is tested against.
#[derive(Debug, Clone)]
pub struct ReferenceOptimizer {
    kind: OptimizerKind,
    learning_rate: f64,
    t: u64,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl ReferenceOptimizer {
    /// Fresh state.
    pub fn new(kind: OptimizerKind, learning_rate: f64, len: usize) -> Self {
        ReferenceOptimizer { kind, learning_rate, t: 0, m: vec![0.0; len], v: vec![0.0; len] }
    }
    /// One ascent step on `g`.
    pub fn step(&mut self, g: &[f64]) -> Vec<f64> {
        self.t += 1;
        match self.kind {
            OptimizerKind::Sgd => g.iter().map(|x| self.learning_rate * x).collect(),
            OptimizerKind::Adam { beta1, beta2, eps } => {
                let c1 = 1.0 - beta1.powi(self.t as i32);
                let c2 = 1.0 - beta2.powi(self.t as i32);
                (0..g.len())
                    .map(|i| {
                        self.m[i] = beta1 * self.m[i] + (1.0 - beta1) * g[i];
                        self.v[i] = beta2 * self.v[i] + (1.0 - beta2) * g[i] * g[i];
                        self.learning_rate * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + eps)
                    })
                    .collect()
            }
        }
    }
}
