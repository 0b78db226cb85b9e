//! Differentiable policies over a finite answer space, with exact log-prob gradients.
//!
//! One parameter vector `θ` serves every source of an environment. Answers live in the
//! **union** answer space of the sources; a task's softmax runs only over its own source's
//! slice of it. Features are padded to the widest source and followed by 11 hint features
//! (a presence flag and the one-hot hinted digit), so one model sees every source and
//! training on one source can move the metric on another: that cross-source effect is what
//! per-source credit measures.
//!
//! Two architectures, both written by hand in f64 (see ARCHITECTURE.md for why):
//!
//! * **log-linear**: `z_y = x·W[:, y] + x·V[:, d(y)]`, where `d(y)` is the last decimal digit
//!   of answer `y` — a weight per (feature, answer) plus a weight per (feature, last digit)
//!   that is shared across answers;
//! * **MLP**: `h = tanh(W₁x + b₁)`, `z_y = W₂[y]·h + b₂[y] + V₂[d(y)]·h`.

use gristmill_core::rng::{stream, Purpose};
use gristmill_core::task::{AnswerSpace, Task};
use rand::Rng;

/// Number of hint features appended to every encoding.
pub const HINT_FEATURES: usize = 11;

/// Which architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Log-linear over (task features × answer).
    LogLinear,
    /// One hidden tanh layer of the given width.
    Mlp {
        /// Hidden width.
        hidden: usize,
    },
}

/// The shape of a policy: architecture, input width and union answer space.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Architecture.
    pub arch: Arch,
    /// Input width `D` (widest source's features + hint features).
    pub input: usize,
    /// The union answer space.
    pub space: AnswerSpace,
}

/// A task encoded for the model: input vector and the slice of the union space it answers in.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// Input `x` (length `D`).
    pub x: Vec<f64>,
    /// First answer index (in the union space) of the task's own space.
    pub start: usize,
    /// Size of the task's own space.
    pub len: usize,
    /// Index (within the task's slice) of the gold answer.
    pub gold: usize,
}

/// Forward-pass intermediates needed by the backward pass.
#[derive(Debug, Clone, Default)]
pub struct Activations {
    /// Hidden layer (MLP only).
    pub h: Vec<f64>,
    /// Logits over the task's slice.
    pub logits: Vec<f64>,
}

fn last_digit(v: i64) -> usize {
    (v.unsigned_abs() % 10) as usize
}

impl Model {
    /// A model for sources with the given answer spaces and feature widths.
    pub fn new(arch: Arch, spaces: &[AnswerSpace], feature_dims: &[usize]) -> Model {
        let lo = spaces.iter().map(|s| s.lo).min().unwrap_or(0);
        let hi = spaces.iter().map(|s| s.hi()).max().unwrap_or(0);
        let input = feature_dims.iter().copied().max().unwrap_or(0) + HINT_FEATURES;
        Model { arch, input, space: AnswerSpace::inclusive(lo, hi) }
    }

    /// Number of answers `K` in the union space.
    pub fn answers(&self) -> usize {
        self.space.size as usize
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        let (d, k) = (self.input, self.answers());
        match self.arch {
            Arch::LogLinear => d * k + d * 10,
            Arch::Mlp { hidden: h } => h * d + h + k * h + k + 10 * h,
        }
    }

    /// Whether the model has no parameters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Initial parameters: zero output layers, so every policy starts uniform (at chance);
    /// the MLP's input layer is drawn from the keyed `INIT` stream with std `scale/√D`.
    pub fn init(&self, seed: u64, scale: f64) -> Vec<f64> {
        let mut theta = vec![0.0; self.len()];
        if let Arch::Mlp { hidden } = self.arch {
            let mut rng = stream(seed, Purpose::INIT, 0, 0);
            let std = scale / (self.input as f64).sqrt();
            for w in &mut theta[..hidden * self.input] {
                // Irwin–Hall(12) − 6: a unit-variance, bounded normal approximation that
                // needs no distribution crate and is exactly reproducible.
                let s: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
                *w = std * s;
            }
        }
        theta
    }

    /// Encodes a task: features padded to `D − 11`, then the hint features.
    pub fn encode(&self, task: &Task) -> Encoded {
        let mut x = vec![0.0; self.input];
        let f = &task.body.features;
        x[..f.len()].copy_from_slice(f);
        if let Some(d) = task.hint {
            let base = self.input - HINT_FEATURES;
            x[base] = 1.0;
            x[base + 1 + d as usize % 10] = 1.0;
        }
        let start = (task.answers.lo - self.space.lo) as usize;
        let gold = task.answers.index_of(task.gold()).unwrap_or(0);
        Encoded { x, start, len: task.answers.size as usize, gold }
    }

    /// The same encoding without its hint.
    pub fn strip_hint(&self, e: &Encoded) -> Encoded {
        let mut out = e.clone();
        let base = self.input - HINT_FEATURES;
        out.x[base..].iter_mut().for_each(|v| *v = 0.0);
        out
    }

    /// Logits over the task's slice.
    pub fn forward(&self, theta: &[f64], e: &Encoded) -> Activations {
        let (d, k) = (self.input, self.answers());
        let x = &e.x;
        match self.arch {
            Arch::LogLinear => {
                let (w, v) = theta.split_at(d * k);
                // Digit scores first: 10 dot products shared by all answers.
                let mut dig = [0.0f64; 10];
                for (i, &xi) in x.iter().enumerate() {
                    if xi != 0.0 {
                        let row = &v[i * 10..i * 10 + 10];
                        for t in 0..10 {
                            dig[t] += xi * row[t];
                        }
                    }
                }
                let mut logits = vec![0.0; e.len];
                for (i, &xi) in x.iter().enumerate() {
                    if xi != 0.0 {
                        let row = &w[i * k + e.start..i * k + e.start + e.len];
                        for (z, wi) in logits.iter_mut().zip(row) {
                            *z += xi * wi;
                        }
                    }
                }
                for (y, z) in logits.iter_mut().enumerate() {
                    *z += dig[last_digit(self.space.value(e.start + y))];
                }
                Activations { h: Vec::new(), logits }
            }
            Arch::Mlp { hidden } => {
                let (w1, rest) = theta.split_at(hidden * d);
                let (b1, rest) = rest.split_at(hidden);
                let (w2, rest) = rest.split_at(k * hidden);
                let (b2, v2) = rest.split_at(k);
                let h: Vec<f64> = (0..hidden)
                    .map(|j| {
                        let row = &w1[j * d..(j + 1) * d];
                        (b1[j] + row.iter().zip(x).map(|(a, b)| a * b).sum::<f64>()).tanh()
                    })
                    .collect();
                let dig: Vec<f64> = (0..10)
                    .map(|t| v2[t * hidden..(t + 1) * hidden].iter().zip(&h).map(|(a, b)| a * b).sum())
                    .collect();
                let logits = (0..e.len)
                    .map(|y| {
                        let a = e.start + y;
                        let row = &w2[a * hidden..(a + 1) * hidden];
                        b2[a]
                            + row.iter().zip(&h).map(|(p, q)| p * q).sum::<f64>()
                            + dig[last_digit(self.space.value(a))]
                    })
                    .collect();
                Activations { h, logits }
            }
        }
    }

    /// Accumulates `scale · ∂(dz · z)/∂θ` into `grad`, where `z` are the logits of the
    /// forward pass `act` on `e`. Linear in `dz`, so callers can sum many per-sample
    /// coefficients into one `dz` and pay one backward pass per task.
    pub fn backward(&self, theta: &[f64], e: &Encoded, act: &Activations, dz: &[f64], grad: &mut [f64]) {
        let (d, k) = (self.input, self.answers());
        let x = &e.x;
        let mut ddig = [0.0f64; 10];
        for (y, g) in dz.iter().enumerate() {
            ddig[last_digit(self.space.value(e.start + y))] += g;
        }
        match self.arch {
            Arch::LogLinear => {
                let (gw, gv) = grad.split_at_mut(d * k);
                for (i, &xi) in x.iter().enumerate() {
                    if xi != 0.0 {
                        let row = &mut gw[i * k + e.start..i * k + e.start + e.len];
                        for (g, dzy) in row.iter_mut().zip(dz) {
                            *g += xi * dzy;
                        }
                        let vrow = &mut gv[i * 10..i * 10 + 10];
                        for t in 0..10 {
                            vrow[t] += xi * ddig[t];
                        }
                    }
                }
            }
            Arch::Mlp { hidden } => {
                let h = &act.h;
                let (_, rest) = theta.split_at(hidden * d + hidden);
                let (w2, rest) = rest.split_at(k * hidden);
                let (_, v2) = rest.split_at(k);
                let (gw1, grest) = grad.split_at_mut(hidden * d);
                let (gb1, grest) = grest.split_at_mut(hidden);
                let (gw2, grest) = grest.split_at_mut(k * hidden);
                let (gb2, gv2) = grest.split_at_mut(k);
                let mut dh = vec![0.0; hidden];
                for (y, &g) in dz.iter().enumerate() {
                    if g == 0.0 {
                        continue;
                    }
                    let a = e.start + y;
                    gb2[a] += g;
                    let row = &w2[a * hidden..(a + 1) * hidden];
                    let grow = &mut gw2[a * hidden..(a + 1) * hidden];
                    for j in 0..hidden {
                        grow[j] += g * h[j];
                        dh[j] += g * row[j];
                    }
                }
                for (t, &g) in ddig.iter().enumerate() {
                    if g == 0.0 {
                        continue;
                    }
                    let row = &v2[t * hidden..(t + 1) * hidden];
                    let grow = &mut gv2[t * hidden..(t + 1) * hidden];
                    for j in 0..hidden {
                        grow[j] += g * h[j];
                        dh[j] += g * row[j];
                    }
                }
                for j in 0..hidden {
                    let da = dh[j] * (1.0 - h[j] * h[j]);
                    if da == 0.0 {
                        continue;
                    }
                    gb1[j] += da;
                    let grow = &mut gw1[j * d..(j + 1) * d];
                    for (g, xi) in grow.iter_mut().zip(x) {
                        *g += da * xi;
                    }
                }
            }
        }
    }
}

impl Model {
    /// The directional derivative of the logits along `direction` in parameter space,
    /// `δz = (∂z/∂θ)·direction` (forward mode). With `direction = ∇M` this gives each
    /// sample's influence `∇M·∇log π(y|x) = δz_y − π·δz` without a per-sample gradient.
    pub fn jvp(&self, theta: &[f64], e: &Encoded, act: &Activations, direction: &[f64]) -> Vec<f64> {
        match self.arch {
            // Log-linear logits are linear in θ: the JVP is the forward pass at `direction`.
            Arch::LogLinear => self.forward(direction, e).logits,
            Arch::Mlp { hidden } => {
                let (d, k) = (self.input, self.answers());
                let x = &e.x;
                let (_, rest) = theta.split_at(hidden * d + hidden);
                let (w2, rest) = rest.split_at(k * hidden);
                let (_, v2) = rest.split_at(k);
                let (dw1, drest) = direction.split_at(hidden * d);
                let (db1, drest) = drest.split_at(hidden);
                let (dw2, drest) = drest.split_at(k * hidden);
                let (db2, dv2) = drest.split_at(k);
                let h = &act.h;
                let dh: Vec<f64> = (0..hidden)
                    .map(|j| {
                        let pre =
                            db1[j] + dw1[j * d..(j + 1) * d].iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
                        (1.0 - h[j] * h[j]) * pre
                    })
                    .collect();
                let dot = |w: &[f64], v: &[f64]| w.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
                let ddig: Vec<f64> = (0..10)
                    .map(|t| {
                        let r = t * hidden..(t + 1) * hidden;
                        dot(&dv2[r.clone()], h) + dot(&v2[r], &dh)
                    })
                    .collect();
                (0..e.len)
                    .map(|y| {
                        let a = e.start + y;
                        let r = a * hidden..(a + 1) * hidden;
                        db2[a]
                            + dot(&dw2[r.clone()], h)
                            + dot(&w2[r], &dh)
                            + ddig[last_digit(self.space.value(a))]
                    })
                    .collect()
            }
        }
    }
}

/// Softmax of logits (max-shifted, so it never overflows for finite logits).
pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|z| (z - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Log-softmax of logits: `z_y − log Σ exp z`, finite for finite logits.
pub fn log_softmax(logits: &[f64]) -> Vec<f64> {
    let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + logits.iter().map(|z| (z - m).exp()).sum::<f64>().ln();
    logits.iter().map(|z| z - lse).collect()
}

/// The inverse CDF draw every policy samples with (re-exported from the engine).
pub use gristmill_engine::inverse_cdf;
