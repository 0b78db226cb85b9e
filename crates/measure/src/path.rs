//! The credit integral of one step: `∫₀¹ ∇M(θ + sΔθ)·Δθ_cell ds` for every cell.
//!
//! For a step from `θ` to `θ + Δθ` with `Δθ = Σ_cells Δθ_cell`,
//! `M(θ + Δθ) − M(θ) = ∫₀¹ ∇M(θ + sΔθ)·Δθ ds = Σ_cells ∫₀¹ ∇M(θ + sΔθ)·Δθ_cell ds`,
//! and each cell's term is its credit, computed with a Gauss–Legendre rule. Anything that can
//! give `M` and `∇M` at a point ([`MetricGradient`]) can be integrated: gristmill's exact
//! enumeration, a language model's smooth teacher-forced metric, a test's closed form.

use serde::{Deserialize, Serialize};

use crate::quadrature::gauss_legendre;

/// The target metric and its gradient at any parameters: the seam through which a trainer's
/// metric reaches the credit integral. The ledger never sees the trainer behind it.
pub trait MetricGradient {
    /// What can go wrong evaluating it.
    type Error;
    /// `(M(θ), ∇M(θ))`.
    fn metric_and_gradient(&self, theta: &[f64]) -> Result<(f64, Vec<f64>), Self::Error>;
}

/// The default number of Gauss–Legendre nodes (the `credit_nodes` default of the trainable
/// policies' params is the same number).
///
/// Along one optimizer step `M(θ + sΔθ)` is smooth in `s`, and a `Q`-node rule is exact for
/// its degree-`2Q−1` Taylor part. Measured on `examples/learn.toml` (60 Adam steps): the
/// whole-run residual is 1.4e-9 with 3 nodes, 8.8e-12 with 4, 2.6e-14 with 5. Four is the
/// cheapest rule that stays 100× inside the `1e-9·max(1, |ΔM|)` efficiency bound; each node
/// costs one `∇M` per step (see BENCHMARKS.md for the overhead).
pub const DEFAULT_NODES: usize = 4;

/// A quadrature rule on `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Nodes, ascending.
    pub nodes: Vec<f64>,
    /// Weights (sum to 1).
    pub weights: Vec<f64>,
}

impl Rule {
    /// The `q`-node Gauss–Legendre rule (at least one node).
    pub fn gauss_legendre(q: usize) -> Rule {
        let (nodes, weights) = gauss_legendre(q.max(1));
        Rule { nodes, weights }
    }
}

/// How much pieces pull against each other, in units of the metric.
///
/// Per coordinate `k`, cell `i`'s credit is `c_ik = ḡ_k Δθ_ik`, with `ḡ` the
/// quadrature-weighted mean of `∇M` along the step (so `Σ_k c_ik` is the cell's credit).
/// The **opposition** of two rows `a` and `b` is `Σ_k min(|c_ak|, |c_bk|)` over the
/// coordinates where `c_ak` and `c_bk` have opposite signs: the credit each cancelled of
/// the other, coordinate by coordinate. It is zero for pieces that never disagree on a
/// coordinate, and bounded by the smaller of their absolute credits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Conflict {
    /// Row-level opposition, flat `[a][b]` (symmetric, zero diagonal), on row credits
    /// `c_ak = Σ_s c_{(a,s)k}`.
    pub rows: Vec<f64>,
    /// Opposition of the two rows' cells in one source column, flat `[a][b][column]`.
    pub cells: Vec<f64>,
}

impl Conflict {
    /// No opposition, for `rows × columns` cells.
    pub fn zeros(rows: usize, columns: usize) -> Conflict {
        Conflict { rows: vec![0.0; rows * rows], cells: vec![0.0; rows * rows * columns] }
    }

    /// Adds another step's opposition.
    pub fn add(&mut self, other: &Conflict) {
        self.rows.iter_mut().zip(&other.rows).for_each(|(a, b)| *a += b);
        self.cells.iter_mut().zip(&other.cells).for_each(|(a, b)| *a += b);
    }

    /// The opposition from per-coordinate credits `c[cell][k]` (`rows × columns` cells).
    pub fn of_coordinates(c: &[Vec<f64>], rows: usize, columns: usize) -> Conflict {
        let mut out = Conflict::zeros(rows, columns);
        let len = c.iter().map(Vec::len).max().unwrap_or(0);
        let row_credit: Vec<Vec<f64>> = (0..rows)
            .map(|a| {
                let mut v = vec![0.0; len];
                for s in 0..columns {
                    for (acc, x) in v.iter_mut().zip(&c[a * columns + s]) {
                        *acc += x;
                    }
                }
                v
            })
            .collect();
        for a in 0..rows {
            for b in a + 1..rows {
                let o = opposition(&row_credit[a], &row_credit[b]);
                out.rows[a * rows + b] = o;
                out.rows[b * rows + a] = o;
                for s in 0..columns {
                    let o = opposition(&c[a * columns + s], &c[b * columns + s]);
                    out.cells[(a * rows + b) * columns + s] = o;
                    out.cells[(b * rows + a) * columns + s] = o;
                }
            }
        }
        out
    }
}

/// `Σ_k min(|x_k|, |y_k|)` where `x_k y_k < 0`.
fn opposition(x: &[f64], y: &[f64]) -> f64 {
    x.iter()
        .zip(y)
        .filter(|(a, b)| a.signum() != b.signum() && **a != 0.0 && **b != 0.0)
        .map(|(a, b)| a.abs().min(b.abs()))
        .sum()
}

/// One step's credit integral.
#[derive(Debug, Clone, PartialEq)]
pub struct PathCredit {
    /// Credit per cell.
    pub cells: Vec<f64>,
    /// Opposition between rows.
    pub conflict: Conflict,
}

/// Integrates `metric`'s gradient along the step from `theta_before` to `theta_after`
/// against every cell's step share `deltas[cell]` (cells laid out `[row][column]`, `columns`
/// per row). Cells whose share is all zero are not integrated and get exactly zero.
pub fn path_credit<M: MetricGradient>(
    metric: &M,
    theta_before: &[f64],
    theta_after: &[f64],
    deltas: &[Vec<f64>],
    columns: usize,
    rule: &Rule,
) -> Result<PathCredit, M::Error> {
    let delta: Vec<f64> = theta_after.iter().zip(theta_before).map(|(a, b)| a - b).collect();
    let active: Vec<usize> = (0..deltas.len()).filter(|&i| deltas[i].iter().any(|v| *v != 0.0)).collect();
    let mut cells = vec![0.0; deltas.len()];
    let mut mean_grad = vec![0.0; delta.len()];
    for (s, w) in rule.nodes.iter().zip(&rule.weights) {
        let theta: Vec<f64> = theta_before.iter().zip(&delta).map(|(t, d)| t + s * d).collect();
        let (_, grad) = metric.metric_and_gradient(&theta)?;
        for &i in &active {
            let dot: f64 = grad.iter().zip(&deltas[i]).map(|(g, d)| g * d).sum();
            cells[i] += w * dot;
        }
        mean_grad.iter_mut().zip(&grad).for_each(|(m, g)| *m += w * g);
    }
    let per_coordinate: Vec<Vec<f64>> =
        deltas.iter().map(|d| d.iter().zip(&mean_grad).map(|(d, g)| d * g).collect()).collect();
    let conflict = Conflict::of_coordinates(&per_coordinate, deltas.len() / columns.max(1), columns);
    Ok(PathCredit { cells, conflict })
}
