//! The typed report of a language-model run (what the CLI prints and stores as JSON).

use std::collections::BTreeMap;

use gristmill_measure::CreditLedger;
use serde::Serialize;

use crate::{LmRun, LmRunError};

/// One credit row: a piece, `kl` or `weight_decay`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LmCreditRow {
    /// Row id.
    pub id: String,
    /// Credit on the estimated gold metric `M`.
    pub gold: f64,
    /// Credit on the log-likelihood metric `L`.
    pub loglik: f64,
    /// Gold credit per column (sources, then `(global)`).
    pub gold_by_column: Vec<f64>,
    /// Log-likelihood credit per column.
    pub loglik_by_column: Vec<f64>,
}

/// The in-run credit of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LmCredit {
    /// Columns: sources, then `(global)`.
    pub columns: Vec<String>,
    /// One row per piece and pseudo-piece.
    pub rows: Vec<LmCreditRow>,
    /// `ΔM` over the run (estimated on common random numbers).
    pub gold_delta: f64,
    /// Standard error of `ΔM` (paired over the common samples, summed over steps).
    pub gold_delta_se: f64,
    /// `ΔM − Σ gold credit`.
    pub gold_residual: f64,
    /// `ΔL` over the run.
    pub loglik_delta: f64,
    /// `ΔL − Σ log-likelihood credit`.
    pub loglik_residual: f64,
    /// Largest per-step `|residual|` of `L`.
    pub loglik_max_step_residual: f64,
}

/// What a language-model run reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LmReport {
    /// `"lm"`.
    pub policy: &'static str,
    /// The model and its training settings.
    pub model: String,
    /// Trainable parameters.
    pub trainable_params: usize,
    /// Steps done.
    pub steps: u64,
    /// Root seed.
    pub seed: u64,
    /// The run's digest.
    pub digest: String,
    /// `M(θ₀)`.
    pub gold_before: f64,
    /// `M` now.
    pub gold_after: f64,
    /// Standard error of `M` now (over the suite's samples).
    pub gold_se: f64,
    /// `L(θ₀)` (credit on).
    pub loglik_before: Option<f64>,
    /// `L` now (credit on).
    pub loglik_after: Option<f64>,
    /// Mean training reward per channel.
    pub mean_rewards: BTreeMap<String, f64>,
    /// Largest relative `‖Σ cells − Δθ‖∞ / ‖Δθ‖∞` over the steps.
    pub max_split_error: f64,
    /// In-run credit (credit on).
    pub credit: Option<LmCredit>,
}

fn by_row(l: &CreditLedger, r: usize) -> Vec<f64> {
    let c = l.columns().len();
    l.cells()[r * c..(r + 1) * c].to_vec()
}

impl LmRun {
    /// The run's report now (estimates `M` if it is not known at the current parameters).
    ///
    /// # Errors
    /// The model's errors evaluating `M`.
    pub fn report(&mut self) -> Result<LmReport, LmRunError> {
        let (gold_after, gold_se, loglik_after) = self.metric_now()?;
        let credit = match (self.gold_ledger(), self.loglik_ledger()) {
            (Some(g), Some(l)) => Some(LmCredit {
                columns: g.columns().to_vec(),
                rows: g
                    .rows()
                    .iter()
                    .enumerate()
                    .map(|(r, id)| {
                        let (gc, lc) = (by_row(g, r), by_row(l, r));
                        LmCreditRow {
                            id: id.clone(),
                            gold: gc.iter().sum(),
                            loglik: lc.iter().sum(),
                            gold_by_column: gc,
                            loglik_by_column: lc,
                        }
                    })
                    .collect(),
                gold_delta: g.delta_metric(),
                gold_delta_se: g.delta_se().unwrap_or(0.0),
                gold_residual: g.delta_metric() - g.cells().iter().sum::<f64>(),
                loglik_delta: l.delta_metric(),
                loglik_residual: l.delta_metric() - l.cells().iter().sum::<f64>(),
                loglik_max_step_residual: l.max_step_residual(),
            }),
            _ => None,
        };
        Ok(LmReport {
            policy: "lm",
            model: self.config().describe(),
            trainable_params: self.model().num_params(),
            steps: self.steps_done(),
            seed: self.env().seed(),
            digest: self.digest(),
            gold_before: self.gold_before(),
            gold_after,
            gold_se,
            loglik_before: self.loglik_before(),
            loglik_after,
            mean_rewards: self.env().channel_ids().into_iter().zip(self.mean_rewards()).collect(),
            max_split_error: self.max_split_error(),
            credit,
        })
    }
}
