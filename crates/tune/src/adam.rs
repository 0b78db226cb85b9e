//! A small deterministic Adam for piece parameters. Piece signals (per-source credit,
//! meta-gradients, hint effects) have unknown and drifting scales; Adam's per-coordinate
//! normalisation makes one learning rate per kind meaningful.

use serde::{Deserialize, Serialize};

/// Adam state for a parameter vector (ascent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PieceAdam {
    /// Step size.
    pub rate: f64,
    t: i32,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl PieceAdam {
    /// Fresh state for `n` parameters.
    pub fn new(rate: f64, n: usize) -> Self {
        PieceAdam { rate, t: 0, m: vec![0.0; n], v: vec![0.0; n] }
    }

    /// Moves `params` up the gradient `g`.
    pub fn ascend(&mut self, params: &mut [f64], g: &[f64]) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        self.t += 1;
        let (c1, c2) = (1.0 - B1.powi(self.t), 1.0 - B2.powi(self.t));
        for i in 0..params.len() {
            self.m[i] = B1 * self.m[i] + (1.0 - B1) * g[i];
            self.v[i] = B2 * self.v[i] + (1.0 - B2) * g[i] * g[i];
            params[i] += self.rate * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-12);
        }
    }
}
