//! In-run credit: the path integral of `∇M` along each real step, split by cell.
//!
//! For a step from `θ` to `θ + Δθ` with `Δθ = Σ_i Δθ_i`,
//! `M(θ + Δθ) − M(θ) = ∫₀¹ ∇M(θ + sΔθ)·Δθ ds = Σ_i ∫₀¹ ∇M(θ + sΔθ)·Δθ_i ds`,
//! and cell `i`'s credit is its term, computed with a `Q`-node Gauss–Legendre rule. Summed
//! over steps, credits add up to `M(θ_T) − M(θ_0)` up to quadrature and rounding; the
//! difference is reported as the **residual** and never tuned away.

use gristmill_learn::{LearnError, StepReport, Trainer};
use serde::{Deserialize, Serialize};

use crate::quadrature::gauss_legendre;

/// The default number of Gauss–Legendre nodes (the `credit_nodes` default of
/// `gristmill-learn`'s policy params is the same number).
///
/// Along one optimizer step `M(θ + sΔθ)` is smooth in `s`, and a `Q`-node rule is exact for
/// its degree-`2Q−1` Taylor part. Measured on `examples/learn.toml` (60 Adam steps): the
/// whole-run residual is 1.4e-9 with 3 nodes, 8.8e-12 with 4, 2.6e-14 with 5. Four is the
/// cheapest rule that stays 100× inside the `1e-9·max(1, |ΔM|)` efficiency bound; each node
/// costs one `∇M` over the eval suite per step (see BENCHMARKS.md for the overhead).
pub const DEFAULT_NODES: usize = 4;

/// One step's credit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepCredit {
    /// Step number.
    pub step: u64,
    /// Credit per cell (flat `[row][column]`).
    pub cells: Vec<f64>,
    /// `M(θ_{t+1}) − M(θ_t)`.
    pub delta_metric: f64,
    /// `ΔM − Σ cells`.
    pub residual: f64,
    /// Opposition of every pair of rows at this step (see [`Conflict`]).
    pub conflict: Conflict,
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
    fn zeros(rows: usize, columns: usize) -> Conflict {
        Conflict { rows: vec![0.0; rows * rows], cells: vec![0.0; rows * rows * columns] }
    }

    fn add(&mut self, other: &Conflict) {
        self.rows.iter_mut().zip(&other.rows).for_each(|(a, b)| *a += b);
        self.cells.iter_mut().zip(&other.cells).for_each(|(a, b)| *a += b);
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

/// The step's opposition between rows, from the per-coordinate credits `c[cell][k]`.
fn step_conflict(c: &[Vec<f64>], rows: usize, columns: usize) -> Conflict {
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

/// Cumulative credit per row at one step (the credit curve).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditPoint {
    /// Steps done.
    pub step: u64,
    /// `M` after the step.
    pub metric: f64,
    /// Cumulative credit per row.
    pub rows: Vec<f64>,
}

/// Accumulates in-run credit over a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InRunCredit {
    /// Row names (credit channels: pieces and pseudo-pieces).
    pub rows: Vec<String>,
    /// Column names (sources, then `(global)`).
    pub columns: Vec<String>,
    /// Cumulative credit per cell.
    pub cells: Vec<f64>,
    /// Cumulative `ΔM`.
    pub delta_metric: f64,
    /// Largest per-step `|residual|`.
    pub max_step_residual: f64,
    /// Quadrature nodes.
    pub nodes: Vec<f64>,
    /// Quadrature weights.
    pub weights: Vec<f64>,
    /// Cumulative credit per row after every step.
    pub curve: Vec<CreditPoint>,
    /// Cumulative opposition between rows (see [`Conflict`]).
    pub conflict: Conflict,
}

impl InRunCredit {
    /// An empty table for `trainer`'s cells, with a `q`-node rule.
    pub fn new(trainer: &Trainer, q: usize) -> Self {
        let (nodes, weights) = gauss_legendre(q.max(1));
        let rows: Vec<String> = trainer.channels.iter().map(|c| c.id.clone()).collect();
        let columns = trainer.column_ids();
        let cells = vec![0.0; rows.len() * columns.len()];
        let conflict = Conflict::zeros(rows.len(), columns.len());
        InRunCredit {
            conflict,
            rows,
            columns,
            cells,
            delta_metric: 0.0,
            max_step_residual: 0.0,
            nodes,
            weights,
            curve: vec![],
        }
    }

    /// Credits the step `report` that `trainer` just took.
    pub fn observe(&mut self, trainer: &Trainer, report: &StepReport) -> Result<StepCredit, LearnError> {
        let sc = step_credit(trainer, report, &self.nodes, &self.weights)?;
        for (a, b) in self.cells.iter_mut().zip(&sc.cells) {
            *a += b;
        }
        self.delta_metric += sc.delta_metric;
        self.conflict.add(&sc.conflict);
        self.max_step_residual = self.max_step_residual.max(sc.residual.abs());
        self.curve.push(CreditPoint {
            step: report.step + 1,
            metric: report.metric_after,
            rows: self.row_totals(),
        });
        Ok(sc)
    }

    /// Total credit per row.
    pub fn row_totals(&self) -> Vec<f64> {
        let c = self.columns.len();
        (0..self.rows.len()).map(|r| self.cells[r * c..(r + 1) * c].iter().sum()).collect()
    }

    /// Total credit per column.
    pub fn column_totals(&self) -> Vec<f64> {
        let c = self.columns.len();
        (0..c).map(|j| (0..self.rows.len()).map(|r| self.cells[r * c + j]).sum()).collect()
    }

    /// `ΔM − Σ credit` over the whole run.
    pub fn residual(&self) -> f64 {
        self.delta_metric - self.cells.iter().sum::<f64>()
    }

    /// The conflict index `Σ_rows |credit| / |ΔM|`: 1 when every piece's credit has the sign
    /// of the gain, large when big credits of opposite signs cancel. `None` when `ΔM = 0`.
    pub fn conflict_index(&self) -> Option<f64> {
        let total: f64 = self.row_totals().iter().map(|c| c.abs()).sum();
        (self.delta_metric != 0.0).then(|| total / self.delta_metric.abs())
    }

    /// Credit of row `id`, if present.
    pub fn row(&self, id: &str) -> Option<f64> {
        let r = self.rows.iter().position(|x| x == id)?;
        Some(self.row_totals()[r])
    }
}

/// Credit of one step, with the given quadrature rule on `[0, 1]`.
pub fn step_credit(
    trainer: &Trainer,
    report: &StepReport,
    nodes: &[f64],
    weights: &[f64],
) -> Result<StepCredit, LearnError> {
    let theta0 = &report.theta_before;
    let delta: Vec<f64> = trainer.state.theta.iter().zip(theta0).map(|(a, b)| a - b).collect();
    let active: Vec<usize> =
        (0..report.deltas.len()).filter(|&i| report.deltas[i].iter().any(|v| *v != 0.0)).collect();
    let mut cells = vec![0.0; report.deltas.len()];
    let mut mean_grad = vec![0.0; delta.len()];
    for (s, w) in nodes.iter().zip(weights) {
        let theta: Vec<f64> = theta0.iter().zip(&delta).map(|(t, d)| t + s * d).collect();
        let (_, grad) = trainer.metric_and_grad(&theta).map_err(|e| e.at_step(report.step))?;
        for &i in &active {
            let dot: f64 = grad.iter().zip(&report.deltas[i]).map(|(g, d)| g * d).sum();
            cells[i] += w * dot;
        }
        mean_grad.iter_mut().zip(&grad).for_each(|(m, g)| *m += w * g);
    }
    let delta_metric = report.metric_after - report.metric_before;
    let residual = delta_metric - cells.iter().sum::<f64>();
    let per_coordinate: Vec<Vec<f64>> =
        report.deltas.iter().map(|d| d.iter().zip(&mean_grad).map(|(d, g)| d * g).collect()).collect();
    let columns = trainer.columns();
    let conflict = step_conflict(&per_coordinate, report.deltas.len() / columns, columns);
    Ok(StepCredit { step: report.step, cells, delta_metric, residual, conflict })
}
