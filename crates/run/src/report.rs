//! Typed reports: what `gristmill run`, `resume` and `credit` print and write as JSON, and
//! what the store keeps as a run's summary.

use std::collections::BTreeMap;

use gristmill_measure::{kendall_tau, CreditLedger, Rule};
use gristmill_store::StepMetric;
use serde::Serialize;

use crate::coalition::{leave_one_out, sampled_shapley, shapley};
use crate::run::Run;
use crate::standalone::{standalone, Standalone};
use crate::RunError;

/// One piece in a training run's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PieceReport {
    /// Kind name.
    pub kind: String,
    /// Channel weight.
    pub weight: f64,
    /// Mean training reward (reward pieces).
    pub mean_reward: Option<f64>,
    /// In-run credit.
    pub inrun: Option<f64>,
}

/// One pair of credit rows and how much they cancelled each other.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictPair {
    /// First row.
    pub a: String,
    /// Second row.
    pub b: String,
    /// Row-level opposition (see `gristmill_measure::Conflict`).
    pub opposition: f64,
    /// Opposition per source column.
    pub by_source: Vec<(String, f64)>,
    /// The source with the most opposition.
    pub worst_source: String,
}

/// Pairs with non-zero opposition, largest first.
pub fn conflict_pairs(c: &CreditLedger) -> Vec<ConflictPair> {
    let (n, cols) = (c.rows().len(), c.columns().len());
    let mut out = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            let opposition = c.conflict().rows.get(a * n + b).copied().unwrap_or(0.0);
            if opposition <= 0.0 {
                continue;
            }
            let by_source: Vec<(String, f64)> = (0..cols)
                .map(|s| {
                    (
                        c.columns()[s].clone(),
                        c.conflict().cells.get((a * n + b) * cols + s).copied().unwrap_or(0.0),
                    )
                })
                .collect();
            let worst_source =
                by_source.iter().max_by(|x, y| x.1.total_cmp(&y.1)).map(|x| x.0.clone()).unwrap_or_default();
            out.push(ConflictPair {
                a: c.rows()[a].clone(),
                b: c.rows()[b].clone(),
                opposition,
                by_source,
                worst_source,
            });
        }
    }
    out.sort_by(|x, y| y.opposition.total_cmp(&x.opposition));
    out
}

/// A run's in-run credit table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreditTable {
    /// Cumulative `ΔM`.
    pub delta_metric: f64,
    /// `ΔM − Σ credit`.
    pub residual: f64,
    /// Largest per-step `|residual|`.
    pub max_step_residual: f64,
    /// Row names.
    pub rows: Vec<String>,
    /// Column names.
    pub columns: Vec<String>,
    /// Credit per cell, flat `[row][column]`.
    pub cells: Vec<f64>,
    /// Credit per column.
    pub sources: Vec<f64>,
    /// `Σ|credit| / |ΔM|`.
    pub conflict_index: Option<f64>,
    /// Opposing pairs, largest first.
    pub conflict: Vec<ConflictPair>,
}

impl CreditTable {
    /// The table of a ledger.
    pub fn of(c: &CreditLedger) -> CreditTable {
        CreditTable {
            delta_metric: c.delta_metric(),
            residual: c.residual(),
            max_step_residual: c.max_step_residual(),
            rows: c.rows().to_vec(),
            columns: c.columns().to_vec(),
            cells: c.cells().to_vec(),
            sources: c.column_totals(),
            conflict_index: c.conflict_index(),
            conflict: conflict_pairs(c),
        }
    }
}

/// One step of a run's learning curve: its stored metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Step (0-based).
    pub step: u64,
    /// Metric name → value.
    #[serde(flatten)]
    pub values: BTreeMap<String, f64>,
}

/// The learning curve from stored step metrics (ordered by step).
pub fn curve(metrics: Vec<StepMetric>) -> Vec<CurvePoint> {
    let mut by_step: BTreeMap<u64, BTreeMap<String, f64>> = BTreeMap::new();
    for m in metrics {
        by_step.entry(m.step).or_default().insert(m.name, m.value);
    }
    by_step.into_iter().map(|(step, values)| CurvePoint { step, values }).collect()
}

/// The report of a training run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainReport {
    /// Store id of the run.
    pub run_id: i64,
    /// Spec content hash.
    pub spec_hash: String,
    /// Root seed.
    pub seed: u64,
    /// Steps requested.
    pub steps: u64,
    /// The run's digest.
    pub digest: String,
    /// `M(θ₀)`.
    pub gold_before: f64,
    /// `M` now.
    pub gold_after: f64,
    /// Per piece, by id.
    pub pieces: BTreeMap<String, PieceReport>,
    /// The learning curve.
    pub curve: Vec<CurvePoint>,
    /// In-run credit, when kept.
    pub credit: Option<CreditTable>,
}

impl TrainReport {
    /// The report of `run` (stored as run `run_id`, learning curve `curve`).
    pub fn of(run: &Run, run_id: i64, curve: Vec<CurvePoint>) -> TrainReport {
        let trainer = run.trainer();
        let env = trainer.env();
        let mean = run.mean_rewards();
        let ledger = run.ledger();
        let pieces = env
            .pieces
            .iter()
            .map(|p| {
                let ch = env.channels.iter().position(|&i| env.pieces[i].id == p.id);
                let report = PieceReport {
                    kind: p.kind_name.to_string(),
                    weight: p.weight,
                    mean_reward: ch.map(|c| mean[c]),
                    inrun: ledger.and_then(|l| l.row(&p.id)),
                };
                (p.id.clone(), report)
            })
            .collect();
        TrainReport {
            run_id,
            spec_hash: env.spec.hash().to_string(),
            seed: env.seed(),
            steps: env.spec.spec().run.steps,
            digest: run.digest(),
            gold_before: run.gold_before(),
            gold_after: trainer.current_metric(),
            pieces,
            curve,
            credit: ledger.map(CreditTable::of),
        }
    }
}

/// Which credit methods a [`CreditReport`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methods {
    /// In-run credit (one run).
    pub inrun: bool,
    /// Exact Shapley (`2ⁿ` runs).
    pub shapley: bool,
    /// Sampled Shapley with this many orders.
    pub sampled: Option<usize>,
    /// Leave-one-out (`n + 1` runs).
    pub loo: bool,
}

/// A piece in a credit report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PieceCredit {
    /// Piece id.
    pub id: String,
    /// Kind name.
    pub kind: String,
    /// The headline proxy value.
    pub standalone: Option<f64>,
    /// Which proxy.
    pub standalone_metric: &'static str,
    /// Every proxy.
    pub standalone_detail: Standalone,
    /// In-run credit.
    pub inrun: Option<f64>,
    /// Shapley value (exact or sampled).
    pub shapley: Option<f64>,
    /// 95% half-width of a sampled Shapley value.
    pub shapley_ci95: Option<f64>,
    /// Leave-one-out.
    pub loo: Option<f64>,
}

/// A pseudo-piece's in-run credit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PseudoCredit {
    /// `kl` or `weight_decay`.
    pub id: String,
    /// In-run credit.
    pub inrun: f64,
}

/// Credit per source column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceCredit {
    /// Column names.
    pub columns: Vec<String>,
    /// Credit per column.
    pub credit: Vec<f64>,
}

/// The whole credit table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellTable {
    /// Row names.
    pub rows: Vec<String>,
    /// Column names.
    pub columns: Vec<String>,
    /// Credit per cell, flat `[row][column]`.
    pub values: Vec<f64>,
}

/// Cumulative credit per row after a step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreditPoint {
    /// Steps done.
    pub step: u64,
    /// `M` after the step.
    pub metric: f64,
    /// Cumulative credit per row.
    pub rows: Vec<f64>,
}

/// Rank agreement of one proxy with the measured effects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TauReport {
    /// The proxy.
    pub metric: &'static str,
    /// The pieces that share it.
    pub pieces: Vec<String>,
    /// Kendall τ against in-run credit.
    pub vs_inrun: Option<f64>,
    /// Kendall τ against Shapley.
    pub vs_shapley: Option<f64>,
}

/// A coalition's final metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoalitionValue {
    /// Bit `i` = piece `i` on.
    pub mask: u64,
    /// `M_T`.
    pub metric: f64,
}

/// The report of `gristmill credit`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreditReport {
    /// Store id of the run (set once stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// Spec hash (set once stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    /// Root seed (set once stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Steps per run (set once stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// `M(θ₀)`.
    pub metric_before: f64,
    /// `M` after the in-run run.
    pub metric_after: Option<f64>,
    /// In-run `ΔM`.
    pub delta_metric: Option<f64>,
    /// In-run residual.
    pub residual: Option<f64>,
    /// Largest per-step residual.
    pub max_step_residual: Option<f64>,
    /// Gauss–Legendre nodes.
    pub quadrature_nodes: Option<usize>,
    /// Per piece.
    pub pieces: Vec<PieceCredit>,
    /// KL and weight decay.
    pub pseudo_pieces: Vec<PseudoCredit>,
    /// Per source.
    pub sources: Option<SourceCredit>,
    /// The table.
    pub cells: Option<CellTable>,
    /// Cumulative credit per row after every step.
    pub curve: Option<Vec<CreditPoint>>,
    /// `Σ|in-run| / |ΔM|`.
    pub conflict_index: Option<f64>,
    /// Opposing pairs.
    pub conflict: Option<Vec<ConflictPair>>,
    /// Proxies against effects.
    pub kendall_tau: Vec<TauReport>,
    /// Every coalition's final metric (exact Shapley).
    pub coalitions: Option<Vec<CoalitionValue>>,
    /// `Σ Shapley`, `= M_T(all) − M_T(none)`.
    pub shapley_efficiency_target: Option<f64>,
}

impl CreditReport {
    /// In-run credit, counterfactual credit by `methods`, standalone metrics and Kendall τ
    /// for `env` trained `steps` steps (its spec's steps) with `config`. `on_step` sees each
    /// in-run step (progress); `on_phase` is told when the coalition runs start.
    pub fn compute(
        env: &gristmill_engine::Environment,
        config: &gristmill_learn::TrainConfig,
        methods: Methods,
        on_step: &mut dyn FnMut(u64),
        on_phase: &mut dyn FnMut(&str),
    ) -> Result<CreditReport, RunError> {
        let n = env.pieces.len();
        let steps = env.spec.spec().run.steps;
        // Exact Shapley is refused before any work when it cannot be afforded.
        if methods.shapley {
            gristmill_measure::all_coalitions(n)?;
        }
        let mut config = config.clone();
        config.credit_nodes = config.credit_nodes.max(1);
        let mut run = Run::with_config(env.clone(), config.clone())?;
        let metric_before = run.trainer().current_metric();
        let standalone = standalone(run.trainer())?;
        let mut curve = Vec::new();
        let ledger = if methods.inrun {
            run.train(steps, &mut crate::NoSink, &mut |s| {
                if let Some(c) = &s.credit {
                    curve.push(CreditPoint {
                        step: s.report.step + 1,
                        metric: c.metric,
                        rows: c.rows.clone(),
                    });
                }
                on_step(s.report.step + 1);
                std::ops::ControlFlow::Continue(())
            })?;
            run.ledger().cloned()
        } else {
            None
        };
        on_phase("coalition runs");
        let (mut shapley_values, mut shapley_hw, mut coalitions) = (None, None, None);
        if methods.shapley {
            let (phi, values) = shapley(env, &config, steps)?;
            shapley_values = Some(phi);
            coalitions =
                Some(values.into_iter().map(|(mask, metric)| CoalitionValue { mask, metric }).collect());
        } else if let Some(k) = methods.sampled {
            let s = sampled_shapley(env, &config, steps, k)?;
            shapley_values = Some(s.mean);
            shapley_hw = Some(s.half_width);
        }
        let loo = if methods.loo { Some(leave_one_out(env, &config, steps)?) } else { None };
        let inrun_of = |id: &str| ledger.as_ref().and_then(|c| c.row(id));
        let pieces: Vec<PieceCredit> = env
            .pieces
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let s = &standalone[i];
                PieceCredit {
                    id: p.id.clone(),
                    kind: p.kind_name.to_string(),
                    standalone: s.value,
                    standalone_metric: s.metric,
                    standalone_detail: s.clone(),
                    inrun: inrun_of(&p.id),
                    shapley: shapley_values.as_ref().map(|v| v[i]),
                    shapley_ci95: shapley_hw.as_ref().map(|v| v[i]),
                    loo: loo.as_ref().map(|v| v[i]),
                }
            })
            .collect();
        let pseudo_pieces = ["kl", "weight_decay"]
            .iter()
            .filter_map(|id| inrun_of(id).map(|v| PseudoCredit { id: id.to_string(), inrun: v }))
            .collect();
        // Rank agreement of each proxy with each measured effect, over the pieces that share
        // the proxy (an entropy and an agreement rate are not on one scale).
        let mut proxies: Vec<&'static str> =
            standalone.iter().filter(|s| s.value.is_some()).map(|s| s.metric).collect();
        proxies.sort_unstable();
        proxies.dedup();
        let kendall_tau = proxies
            .iter()
            .map(|m| {
                let idx: Vec<usize> =
                    (0..n).filter(|&i| standalone[i].metric == *m && standalone[i].value.is_some()).collect();
                let tau = |effect: &dyn Fn(usize) -> Option<f64>| {
                    let (a, b): (Vec<f64>, Vec<f64>) =
                        idx.iter().filter_map(|&i| Some((standalone[i].value?, effect(i)?))).unzip();
                    kendall_tau(&a, &b)
                };
                TauReport {
                    metric: m,
                    pieces: idx.iter().map(|&i| env.pieces[i].id.clone()).collect(),
                    vs_inrun: tau(&|i| inrun_of(&env.pieces[i].id)),
                    vs_shapley: tau(&|i| shapley_values.as_ref().map(|v| v[i])),
                }
            })
            .collect();
        let l = ledger.as_ref();
        Ok(CreditReport {
            run_id: None,
            spec_hash: None,
            seed: None,
            steps: None,
            metric_before,
            metric_after: l.map(|_| run.trainer().current_metric()),
            delta_metric: l.map(|c| c.delta_metric()),
            residual: l.map(|c| c.residual()),
            max_step_residual: l.map(|c| c.max_step_residual()),
            quadrature_nodes: l.map(|_| Rule::gauss_legendre(config.credit_nodes).nodes.len()),
            pieces,
            pseudo_pieces,
            sources: l.map(|c| SourceCredit { columns: c.columns().to_vec(), credit: c.column_totals() }),
            cells: l.map(|c| CellTable {
                rows: c.rows().to_vec(),
                columns: c.columns().to_vec(),
                values: c.cells().to_vec(),
            }),
            curve: l.map(|_| curve),
            conflict_index: l.and_then(|c| c.conflict_index()),
            conflict: l.map(conflict_pairs),
            kendall_tau,
            coalitions,
            shapley_efficiency_target: shapley_values.as_ref().map(|v| v.iter().sum::<f64>()),
        })
    }
}
