//! The channel-split optimizer.
//!
//! Each credit cell `i` (a credit row × source column) brings its own gradient `g_i`; the
//! real gradient is `g = Σ_i g_i`. The optimizer returns one step share `Δθ_i` per cell such
//! that `Σ_i Δθ_i` is the step an ordinary optimizer takes on `g`:
//!
//! * **SGD**: `Δθ_i = η g_i`. Linear, so the split is exact and the cells are the step.
//! * **Adam**: the Owen value of Adam's update over the cells, each coalition of cells with
//!   its own first and second moments along the real trajectory ([`adam`], [`owen`]). Exact
//!   (the shares sum to the real Adam step), symmetric, null, and bounded by twice the
//!   largest step Adam can take on a coordinate ([`adam::adam_bound`]).
//!
//! The split this replaces kept one first moment per cell and the shared second moment of
//! the total gradient. It was exact but unbounded: where cells push a coordinate in
//! opposite directions the total gradient is small, `1/(√v̂+ε)` large, and each cell's share
//! is amplified up to `1/ε` while the real step stays about `η`. On the README example it
//! split ΔM = +0.16 as +2.02 and −1.79 (docs/credit-split.md).
//!
//! Steps are ascent steps: the trainer hands in gradients of the objective to maximise.

pub mod adam;
pub mod owen;

use serde::{Deserialize, Serialize};

pub use adam::{adam_bound, AdamHyper, AdamSplit};
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

/// One split step.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitStep {
    /// Each cell's share of the step, `[cell][parameter]`.
    pub cells: Vec<Vec<f64>>,
    /// The real step, when it is not simply the cells applied in order: Adam's update on
    /// the total gradient (the full coalition's), of which the cells are the Owen split.
    pub real: Option<Vec<f64>>,
}

/// Optimizer state, split by cell. Cells are laid out `[row][column]` (see
/// [`SplitOptimizer::new`]); rows are the pieces whose shares the Owen value takes first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "OptimizerState", try_from = "OptimizerState")]
pub struct SplitOptimizer {
    /// Rule.
    pub kind: OptimizerKind,
    /// Learning rate η.
    pub learning_rate: f64,
    /// Steps taken.
    pub t: u64,
    rows: usize,
    columns: usize,
    len: usize,
    adam: Option<AdamSplit>,
}

/// The serialized form of a [`SplitOptimizer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerState {
    kind: OptimizerKind,
    learning_rate: f64,
    t: u64,
    rows: usize,
    columns: usize,
    len: usize,
    adam: Option<adam::AdamSplitState>,
}

impl From<SplitOptimizer> for OptimizerState {
    fn from(o: SplitOptimizer) -> Self {
        OptimizerState {
            kind: o.kind,
            learning_rate: o.learning_rate,
            t: o.t,
            rows: o.rows,
            columns: o.columns,
            len: o.len,
            adam: o.adam.as_ref().map(AdamSplit::to_state),
        }
    }
}

impl TryFrom<OptimizerState> for SplitOptimizer {
    type Error = String;
    fn try_from(s: OptimizerState) -> Result<Self, String> {
        let adam = match (s.kind, s.adam) {
            (OptimizerKind::Sgd, None) => None,
            (OptimizerKind::Adam { .. }, Some(a)) => Some(AdamSplit::from_state(a, s.rows, s.len)?),
            _ => return Err("optimizer state does not match its rule".into()),
        };
        Ok(SplitOptimizer {
            kind: s.kind,
            learning_rate: s.learning_rate,
            t: s.t,
            rows: s.rows,
            columns: s.columns,
            len: s.len,
            adam,
        })
    }
}

impl SplitOptimizer {
    /// Fresh state for `rows × columns` cells over `len` parameters.
    pub fn new(kind: OptimizerKind, learning_rate: f64, rows: usize, columns: usize, len: usize) -> Self {
        let adam = matches!(kind, OptimizerKind::Adam { .. }).then(|| AdamSplit::new(rows, columns, len));
        SplitOptimizer { kind, learning_rate, t: 0, rows, columns, len, adam }
    }

    /// The Adam split's coalition blocks (see [`AdamSplit::blocks`]); empty for SGD.
    pub fn blocks(&self) -> Vec<(owen::CellSet, usize, usize, bool)> {
        self.adam.as_ref().map(AdamSplit::blocks).unwrap_or_default()
    }

    /// The cell layout `(rows, columns)`.
    pub fn layout(&self) -> (usize, usize) {
        (self.rows, self.columns)
    }

    /// How many parameters each step covers.
    pub fn parameters(&self) -> usize {
        self.len
    }

    /// The largest `|Δθ|` the optimizer can take on one coordinate at the next step, if it
    /// is bounded (Adam); each cell's share is at most twice this.
    pub fn step_bound(&self) -> Option<f64> {
        match self.kind {
            OptimizerKind::Sgd => None,
            OptimizerKind::Adam { beta1, beta2, eps } => {
                Some(adam_bound(AdamHyper { eta: self.learning_rate, beta1, beta2, eps }, self.t + 1))
            }
        }
    }

    /// One step: [`propose`](SplitOptimizer::propose) then [`commit`](SplitOptimizer::commit).
    pub fn step(&mut self, grads: &[Vec<f64>]) -> SplitStep {
        let step = self.propose(grads);
        self.commit();
        step
    }

    /// The next step's per-cell shares from per-cell gradients `grads[cell]` (an empty
    /// vector is an all-zero gradient), without moving the state: a caller that finds the
    /// step unusable (a non-finite parameter) drops it; one that keeps it commits.
    pub fn propose(&mut self, grads: &[Vec<f64>]) -> SplitStep {
        assert_eq!(grads.len(), self.rows * self.columns, "one gradient per cell");
        let eta = self.learning_rate;
        match (self.kind, self.adam.as_mut()) {
            (OptimizerKind::Adam { beta1, beta2, eps }, Some(adam)) => {
                let h = AdamHyper { eta, beta1, beta2, eps };
                let (cells, real) = adam.propose(h, self.t + 1, grads, self.len);
                SplitStep { cells, real: Some(real) }
            }
            _ => {
                SplitStep {
                    cells: grads
                        .iter()
                        .map(|g| {
                            if g.is_empty() {
                                vec![0.0; self.len]
                            } else {
                                g.iter().map(|x| eta * x).collect()
                            }
                        })
                        .collect(),
                    real: None,
                }
            }
        }
    }

    /// Keeps the proposed step.
    pub fn commit(&mut self) {
        if let Some(adam) = self.adam.as_mut() {
            adam.commit();
        }
        self.t += 1;
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
