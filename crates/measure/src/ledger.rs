//! The credit ledger: per-step contributions in, a credit table with its residual out.
//!
//! The ledger does not know who trained the model. gristmill's own trainer feeds it the
//! path integral of each step ([`crate::path_credit`]); an outside trainer (TRL, through the
//! Python package) feeds it first-order terms `Δθ_cell · ∇M` it computed itself. Either way,
//! per step it takes the metric before and after, each cell's contribution and, when the
//! metric is estimated, the standard error of the change; it accumulates per cell, reports
//! the residual `ΔM − Σ credit` (never hidden, never tuned away) and refuses malformed input
//! with a typed error. Its state is small and serializable, so a killed run's ledger resumes
//! from a checkpoint; the per-step curve is emitted step by step ([`StepCredit`]) for the
//! caller to store, not kept.

use serde::{Deserialize, Serialize};

use crate::path::Conflict;

/// What one step contributed, as any trainer reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepContribution {
    /// The step (0-based); steps must arrive in order, one after the other.
    pub step: u64,
    /// `M(θ_t)`.
    pub metric_before: f64,
    /// `M(θ_{t+1})`.
    pub metric_after: f64,
    /// Standard error of `M(θ_{t+1}) − M(θ_t)` when `M` is estimated (common random numbers
    /// make it the error of the difference, not of either value); `None` when exact.
    pub delta_se: Option<f64>,
    /// Each cell's credit for the step, flat `[row][column]`.
    pub cells: Vec<f64>,
    /// The step's opposition between rows, when the trainer computes it.
    pub conflict: Option<Conflict>,
}

/// What the ledger refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LedgerError {
    /// A step arrived out of order.
    #[error("step {got} arrived out of order: the ledger expects step {expected} next")]
    OutOfOrder {
        /// The step expected next.
        expected: u64,
        /// The step given.
        got: u64,
    },
    /// The contribution has the wrong number of cells.
    #[error("step {step}: {got} cell contributions, but the ledger has {expected} cells ({rows} rows × {columns} columns)")]
    CellCount {
        /// Step.
        step: u64,
        /// Cells given.
        got: usize,
        /// Cells expected.
        expected: usize,
        /// Rows.
        rows: usize,
        /// Columns.
        columns: usize,
    },
    /// A (row, column) that the ledger does not have.
    #[error("step {step}: unknown cell ({row}, {column}); rows are {rows:?}, columns {columns:?}")]
    UnknownCell {
        /// Step.
        step: u64,
        /// Row given.
        row: String,
        /// Column given.
        column: String,
        /// The ledger's rows.
        rows: Vec<String>,
        /// The ledger's columns.
        columns: Vec<String>,
    },
    /// A value was NaN or infinite.
    #[error("step {step}: {what} is {value}, not a finite number")]
    NonFinite {
        /// Step.
        step: u64,
        /// Which value.
        what: String,
        /// It.
        value: f64,
    },
    /// The metric before this step is not the metric after the last one.
    #[error("step {step}: metric before ({before}) is not the previous step's metric after ({previous})")]
    Discontinuous {
        /// Step.
        step: u64,
        /// Given.
        before: f64,
        /// The last step's `metric_after`.
        previous: f64,
    },
    /// A restored state does not fit.
    #[error("ledger state: {0}")]
    State(String),
}

/// One step as credited: the step's cells, the running totals and the residual.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepCredit {
    /// Step number.
    pub step: u64,
    /// Credit per cell for this step (flat `[row][column]`).
    pub cells: Vec<f64>,
    /// `M(θ_{t+1}) − M(θ_t)`.
    pub delta_metric: f64,
    /// `ΔM − Σ cells` for this step.
    pub residual: f64,
    /// `M` after the step.
    pub metric: f64,
    /// Cumulative credit per row after the step: the credit curve.
    pub rows: Vec<f64>,
    /// Standard error of the cumulative `ΔM` (when the metric is estimated).
    pub delta_se: Option<f64>,
}

/// The serializable state of a ledger: everything needed to resume it, nothing more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerState {
    /// Row names (pieces and pseudo-pieces).
    pub rows: Vec<String>,
    /// Column names (sources, then `(global)`).
    pub columns: Vec<String>,
    /// Cumulative credit per cell.
    pub cells: Vec<f64>,
    /// Cumulative `ΔM`.
    pub delta_metric: f64,
    /// Largest per-step `|residual|`.
    pub max_step_residual: f64,
    /// Cumulative opposition between rows.
    pub conflict: Conflict,
    /// Sum of the per-step `ΔM` variances (estimated metrics).
    pub delta_variance: Option<f64>,
    /// The next step expected.
    pub next_step: u64,
    /// `M` after the last step (continuity check).
    pub metric: Option<f64>,
}

/// Accumulates credit over a run.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditLedger {
    state: LedgerState,
}

impl CreditLedger {
    /// An empty ledger for the given rows and columns, expecting step 0 first.
    pub fn new(rows: Vec<String>, columns: Vec<String>) -> CreditLedger {
        CreditLedger::starting_at(rows, columns, 0)
    }

    /// An empty ledger whose first step is `step` (an outside trainer joining late).
    pub fn starting_at(rows: Vec<String>, columns: Vec<String>, step: u64) -> CreditLedger {
        let n = rows.len() * columns.len();
        let conflict = Conflict::zeros(rows.len(), columns.len());
        CreditLedger {
            state: LedgerState {
                rows,
                columns,
                cells: vec![0.0; n],
                delta_metric: 0.0,
                max_step_residual: 0.0,
                conflict,
                delta_variance: None,
                next_step: step,
                metric: None,
            },
        }
    }

    /// A ledger resumed from `state`, checked for consistency.
    pub fn from_state(state: LedgerState) -> Result<CreditLedger, LedgerError> {
        let (r, c) = (state.rows.len(), state.columns.len());
        if state.cells.len() != r * c {
            return Err(LedgerError::State(format!(
                "{} cells for {r} rows × {c} columns",
                state.cells.len()
            )));
        }
        if state.conflict.rows.len() != r * r || state.conflict.cells.len() != r * r * c {
            return Err(LedgerError::State("the conflict table does not fit the rows and columns".into()));
        }
        if let Some(v) = state.cells.iter().chain([&state.delta_metric]).find(|v| !v.is_finite()) {
            return Err(LedgerError::State(format!("non-finite value {v}")));
        }
        Ok(CreditLedger { state })
    }

    /// The state to checkpoint.
    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    /// Row names.
    pub fn rows(&self) -> &[String] {
        &self.state.rows
    }

    /// Column names.
    pub fn columns(&self) -> &[String] {
        &self.state.columns
    }

    /// Cumulative credit per cell, flat `[row][column]`.
    pub fn cells(&self) -> &[f64] {
        &self.state.cells
    }

    /// Cumulative `ΔM`.
    pub fn delta_metric(&self) -> f64 {
        self.state.delta_metric
    }

    /// Largest per-step `|residual|`.
    pub fn max_step_residual(&self) -> f64 {
        self.state.max_step_residual
    }

    /// Cumulative opposition between rows.
    pub fn conflict(&self) -> &Conflict {
        &self.state.conflict
    }

    /// The next step the ledger expects.
    pub fn next_step(&self) -> u64 {
        self.state.next_step
    }

    /// Standard error of the cumulative `ΔM`, when the metric is estimated.
    pub fn delta_se(&self) -> Option<f64> {
        self.state.delta_variance.map(f64::sqrt)
    }

    /// The flat index of cell `(row, column)`.
    pub fn cell_index(&self, step: u64, row: &str, column: &str) -> Result<usize, LedgerError> {
        let r = self.state.rows.iter().position(|x| x == row);
        let c = self.state.columns.iter().position(|x| x == column);
        match (r, c) {
            (Some(r), Some(c)) => Ok(r * self.state.columns.len() + c),
            _ => Err(LedgerError::UnknownCell {
                step,
                row: row.into(),
                column: column.into(),
                rows: self.state.rows.clone(),
                columns: self.state.columns.clone(),
            }),
        }
    }

    /// Records one step. Refuses a step out of order, the wrong number of cells, any
    /// non-finite number, and a `metric_before` that is not the last step's `metric_after`
    /// (bit for bit: the same metric computed twice must give the same bits).
    pub fn observe(&mut self, c: StepContribution) -> Result<StepCredit, LedgerError> {
        let st = &self.state;
        if c.step != st.next_step {
            return Err(LedgerError::OutOfOrder { expected: st.next_step, got: c.step });
        }
        if c.cells.len() != st.cells.len() {
            return Err(LedgerError::CellCount {
                step: c.step,
                got: c.cells.len(),
                expected: st.cells.len(),
                rows: st.rows.len(),
                columns: st.columns.len(),
            });
        }
        let finite = |what: String, value: f64| {
            if value.is_finite() {
                Ok(())
            } else {
                Err(LedgerError::NonFinite { step: c.step, what, value })
            }
        };
        finite("metric_before".into(), c.metric_before)?;
        finite("metric_after".into(), c.metric_after)?;
        if let Some(se) = c.delta_se {
            finite("delta_se".into(), se)?;
        }
        for (i, v) in c.cells.iter().enumerate() {
            let (r, col) = (i / st.columns.len(), i % st.columns.len());
            finite(format!("cell ({}, {})", st.rows[r], st.columns[col]), *v)?;
        }
        if let Some(previous) = st.metric {
            if previous.to_bits() != c.metric_before.to_bits() {
                return Err(LedgerError::Discontinuous { step: c.step, before: c.metric_before, previous });
            }
        }
        if let Some(k) = &c.conflict {
            let r = st.rows.len();
            if k.rows.len() != r * r || k.cells.len() != r * r * st.columns.len() {
                return Err(LedgerError::State(format!("step {}: the conflict table does not fit", c.step)));
            }
        }
        let st = &mut self.state;
        for (a, b) in st.cells.iter_mut().zip(&c.cells) {
            *a += b;
        }
        let delta_metric = c.metric_after - c.metric_before;
        st.delta_metric += delta_metric;
        let residual = delta_metric - c.cells.iter().sum::<f64>();
        st.max_step_residual = st.max_step_residual.max(residual.abs());
        if let Some(k) = &c.conflict {
            st.conflict.add(k);
        }
        if let Some(se) = c.delta_se {
            *st.delta_variance.get_or_insert(0.0) += se * se;
        }
        st.next_step = c.step + 1;
        st.metric = Some(c.metric_after);
        Ok(StepCredit {
            step: c.step,
            cells: c.cells,
            delta_metric,
            residual,
            metric: c.metric_after,
            rows: self.row_totals(),
            delta_se: self.delta_se(),
        })
    }

    /// [`observe`](CreditLedger::observe) with contributions named by `(row, column)`;
    /// cells not named contribute zero, a name the ledger does not have is an error.
    pub fn observe_named(
        &mut self,
        step: u64,
        metric_before: f64,
        metric_after: f64,
        delta_se: Option<f64>,
        named: &[(&str, &str, f64)],
    ) -> Result<StepCredit, LedgerError> {
        let mut cells = vec![0.0; self.state.cells.len()];
        for (row, column, v) in named {
            cells[self.cell_index(step, row, column)?] += v;
        }
        self.observe(StepContribution { step, metric_before, metric_after, delta_se, cells, conflict: None })
    }

    /// Total credit per row.
    pub fn row_totals(&self) -> Vec<f64> {
        let c = self.state.columns.len();
        (0..self.state.rows.len()).map(|r| self.state.cells[r * c..(r + 1) * c].iter().sum()).collect()
    }

    /// Total credit per column.
    pub fn column_totals(&self) -> Vec<f64> {
        let c = self.state.columns.len();
        (0..c).map(|j| (0..self.state.rows.len()).map(|r| self.state.cells[r * c + j]).sum()).collect()
    }

    /// `ΔM − Σ credit` over the run.
    pub fn residual(&self) -> f64 {
        self.state.delta_metric - self.state.cells.iter().sum::<f64>()
    }

    /// Credit of row `id`, if present.
    pub fn row(&self, id: &str) -> Option<f64> {
        let r = self.state.rows.iter().position(|x| x == id)?;
        Some(self.row_totals()[r])
    }

    /// The conflict index `Σ_rows |credit| / |ΔM|`: 1 when every piece's credit has the sign
    /// of the gain, large when big credits of opposite signs cancel. `None` when `ΔM = 0`.
    pub fn conflict_index(&self) -> Option<f64> {
        let total: f64 = self.row_totals().iter().map(|c| c.abs()).sum();
        (self.state.delta_metric != 0.0).then(|| total / self.state.delta_metric.abs())
    }
}
