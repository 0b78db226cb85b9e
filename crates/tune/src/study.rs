//! The trainable-pieces study: gold-metric gain of pieces trained on their measured effect,
//! against the pieces as configured and against the best static configuration a grid search
//! finds with the same compute.
//!
//! **Compute** is counted in *rollout batches*: one batch is `B` tasks × `G` responses
//! sampled from the policy and scored by every piece — what one policy training step
//! samples. A run of `T` steps spends `T` batches; a trained hint also re-samples the
//! counterfactual side of every task (one more batch per step, see
//! [`HintSignal::Lookahead`](crate::HintSignal::Lookahead)). The grid search at equal compute gets the
//! trained arm's batches, split evenly over its configurations (each a short run of
//! `⌊budget / N⌋` steps, at least 1), picks the configuration with the best final `M` on each
//! seed, and is scored by that configuration's full-length run (the final run is **not**
//! charged, which favours the grid). What the batch count leaves out is listed beside it:
//! the trained arm also evaluates `∇M` on the gold suite `1 + nodes` times per step (per-sample
//! influence and in-run credit), which the static arms never do; and every arm selects or
//! is scored on the same gold suite, so the grid's choice is optimistic.

use gristmill_engine::Environment;
use gristmill_learn::{TrainConfig, Trainer};
use gristmill_measure::DEFAULT_NODES;
use gristmill_pieces::{BuiltPiece, Curriculum, Hint};
use rayon::prelude::*;
use serde::Serialize;

use crate::tuner::{Learnable, TrainedPiece, TuneError, Tuner};

/// One static value of one trainable piece.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StaticValue {
    /// Curriculum sampling weights over sources (spec order).
    Curriculum {
        /// Weights, summing to 1.
        weights: Vec<f64>,
    },
    /// A reward channel's weight (shaping term, verifier or reward model).
    Weight {
        /// `w`.
        weight: f64,
    },
    /// A hint's probability.
    Hint {
        /// `p`.
        probability: f64,
    },
}

impl StaticValue {
    fn describe(&self) -> String {
        match self {
            StaticValue::Curriculum { weights } => {
                format!("q = [{}]", weights.iter().map(|w| format!("{w:.2}")).collect::<Vec<_>>().join(", "))
            }
            StaticValue::Weight { weight } => format!("weight = {weight}"),
            StaticValue::Hint { probability } => format!("p = {probability}"),
        }
    }
}

/// A static configuration: one value per trainable piece (piece id, value).
pub type StaticConfig = Vec<(String, StaticValue)>;

/// Grid values per trainable piece kind. Channel weights span a factor of 8 around 0.5 (the
/// examples' configured weight); curricula put 60% on one source or spread evenly; hints
/// cover never to always.
pub mod grid_values {
    /// Channel weights of shaping terms and verifiers.
    pub const WEIGHT: &[f64] = &[0.25, 0.5, 1.0, 2.0];
    /// Channel weights of reward models (their parameters stay as built).
    pub const REWARD_MODEL_WEIGHT: &[f64] = &[0.25, 0.5, 1.0];
    /// Hint probabilities.
    pub const HINT: &[f64] = &[0.0, 0.25, 0.5, 0.75, 1.0];
    /// Share of a curriculum put on its emphasised source.
    pub const CURRICULUM_EMPHASIS: f64 = 0.6;
}

/// The grid over the pieces at `trainable`: the Cartesian product of each piece's values, in
/// piece order (the first piece varies slowest).
pub fn static_grid(env: &Environment, trainable: &[usize]) -> Vec<StaticConfig> {
    let mut grid: Vec<StaticConfig> = vec![vec![]];
    for &i in trainable {
        let Some(start) = TrainedPiece::start(env, i) else { continue };
        let values: Vec<StaticValue> = match start.params {
            Learnable::Curriculum { logits } => {
                let n = logits.len();
                let mut v = vec![StaticValue::Curriculum { weights: vec![1.0 / n as f64; n] }];
                if n > 1 {
                    let e = grid_values::CURRICULUM_EMPHASIS;
                    for s in 0..n {
                        let rest = (1.0 - e) / (n - 1) as f64;
                        let weights = (0..n).map(|k| if k == s { e } else { rest }).collect();
                        v.push(StaticValue::Curriculum { weights });
                    }
                }
                v
            }
            Learnable::Weight { .. } => {
                grid_values::WEIGHT.iter().map(|&weight| StaticValue::Weight { weight }).collect()
            }
            Learnable::RewardModel { .. } => grid_values::REWARD_MODEL_WEIGHT
                .iter()
                .map(|&weight| StaticValue::Weight { weight })
                .collect(),
            Learnable::Hint { .. } => {
                grid_values::HINT.iter().map(|&probability| StaticValue::Hint { probability }).collect()
            }
        };
        let id = &env.pieces[i].id;
        let mut next = Vec::with_capacity(grid.len() * values.len());
        for c in &grid {
            for v in &values {
                let mut c = c.clone();
                c.push((id.clone(), v.clone()));
                next.push(c);
            }
        }
        grid = next;
    }
    grid
}

/// `env` with the static configuration `config` in place.
pub fn apply_static(env: &Environment, config: &StaticConfig) -> Result<Environment, TuneError> {
    let mut env = env.clone();
    for (id, value) in config {
        let index = env.piece_index(id).ok_or_else(|| {
            let known = env.pieces.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ");
            TuneError::UnknownPiece { id: id.clone(), known }
        })?;
        let mut p = env.pieces[index].clone();
        match (value, &p.built) {
            (StaticValue::Curriculum { weights }, BuiltPiece::Curriculum(c))
                if weights.len() == c.weights.len() =>
            {
                p.built = BuiltPiece::Curriculum(Curriculum { weights: weights.clone() })
            }
            (StaticValue::Hint { probability }, BuiltPiece::Hint(_)) => {
                p.built = BuiltPiece::Hint(Hint { probability: *probability })
            }
            (StaticValue::Weight { weight }, BuiltPiece::Reward(_) | BuiltPiece::RewardModel(_)) => {
                p.weight = *weight
            }
            _ => {
                return Err(TuneError::Piece(
                    id.clone(),
                    format!("static value `{}` does not fit a `{}`", value.describe(), p.kind_name),
                ))
            }
        }
        env = env.with_piece(index, p);
    }
    Ok(env)
}

/// Compute spent by one arm on one seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Compute {
    /// Rollout batches (`B × G` responses sampled and scored), the unit budgets are equal in.
    pub rollout_batches: u64,
    /// Policy gradient steps.
    pub policy_steps: u64,
    /// Gold-suite gradient evaluations (`∇M`) beyond the per-step `M` every arm computes.
    pub metric_gradients: u64,
}

/// One arm of the study.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arm {
    /// Name of the arm.
    pub name: String,
    /// Final `M` per seed.
    pub metric: Vec<f64>,
    /// `metric − metric of the untrained arm`, per seed.
    pub gain: Vec<f64>,
    /// Mean gain over seeds.
    pub mean_gain: f64,
    /// Sample standard deviation of the gain over seeds (0 with one seed).
    pub sd_gain: f64,
    /// Compute per seed.
    pub compute: Compute,
    /// What the arm ended with, per seed (trained values or the selected configuration).
    pub configuration: Vec<String>,
}

/// The study on one spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudyReport {
    /// Steps per full-length run.
    pub steps: u64,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Trainable piece ids.
    pub pieces: Vec<String>,
    /// Configurations in the grid.
    pub grid_size: usize,
    /// Steps of each short run of the equal-compute grid search.
    pub grid_short_steps: u64,
    /// `M(θ₀)` per seed.
    pub metric_start: Vec<f64>,
    /// The pieces as configured in the spec.
    pub untrained: Arm,
    /// The pieces trained together on their measured effect.
    pub trained: Arm,
    /// Each piece trained alone (the others as configured), when there are several.
    pub trained_alone: Vec<Arm>,
    /// Grid search with the trained arm's rollout budget (winner scored at full length).
    pub grid_equal_compute: Arm,
    /// Best grid configuration by full-length runs of every configuration (`grid_size ×` the
    /// untrained arm's compute; selected on the metric it is scored by).
    pub grid_full: Arm,
    /// Each grid configuration with its full-length final `M` averaged over seeds.
    pub grid: Vec<(String, f64)>,
}

fn describe(config: &StaticConfig) -> String {
    config.iter().map(|(id, v)| format!("{id}: {}", v.describe())).collect::<Vec<_>>().join("; ")
}

fn static_run(env: &Environment, config: &TrainConfig, steps: u64) -> Result<f64, TuneError> {
    let mut run = gristmill_run::Run::without_credit(env.clone(), config.clone())?;
    run.advance(steps)?;
    Ok(run.trainer().current_metric())
}

fn arm(name: &str, metric: Vec<f64>, base: &[f64], compute: Compute, configuration: Vec<String>) -> Arm {
    let gain: Vec<f64> = metric.iter().zip(base).map(|(m, b)| m - b).collect();
    let n = gain.len().max(1) as f64;
    let mean_gain = gain.iter().sum::<f64>() / n;
    let sd_gain = if gain.len() > 1 {
        (gain.iter().map(|g| (g - mean_gain) * (g - mean_gain)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Arm { name: name.into(), metric, gain, mean_gain, sd_gain, compute, configuration }
}

/// How many runs [`study`] makes: per seed the untrained run, the joint trained run, each
/// piece trained alone (when there are several), and every grid configuration twice (full
/// length and short).
pub fn study_runs(env: &Environment, seeds: usize, trainable: &[usize]) -> u64 {
    let alone = if trainable.len() > 1 { trainable.len() } else { 0 };
    (seeds * (2 + alone + 2 * static_grid(env, trainable).len())) as u64
}

/// Runs the study on the pieces at `trainable`: per seed, the untrained run, the trained run,
/// every grid configuration at full length and at the equal-compute short length.
/// `progress` is called once per finished run (there are [`study_runs`] of them).
pub fn study(
    env: &Environment,
    config: &TrainConfig,
    seeds: &[u64],
    steps: u64,
    trainable: &[usize],
    progress: &(dyn Fn() + Sync),
) -> Result<StudyReport, TuneError> {
    let grid = static_grid(env, trainable);
    let n = grid.len().max(1) as u64;
    let hint_trained = trainable.iter().any(|&i| matches!(env.pieces[i].built, BuiltPiece::Hint(_)));
    let trained_batches = steps * if hint_trained { 2 } else { 1 };
    let short = (trained_batches / n).max(1);
    let tuned = |env: &Environment, set: &[usize]| -> Result<(f64, String), TuneError> {
        let mut t = Tuner::new(env.clone(), config.clone(), set)?;
        t.advance(steps)?;
        progress();
        let d = t.pieces.iter().map(|p| format!("{}: {}", p.id, p.describe())).collect::<Vec<_>>();
        Ok((t.trainer().current_metric(), d.join("; ")))
    };
    let singles: Vec<usize> = if trainable.len() > 1 { trainable.to_vec() } else { vec![] };
    type PerSeed = (f64, f64, f64, String, Vec<f64>, Vec<f64>, Vec<(f64, String)>);
    let per_seed: Vec<PerSeed> = seeds
        .par_iter()
        .map(|&seed| -> Result<PerSeed, TuneError> {
            // Each seed is its own root seed: the spec validated again with it, the
            // environment rebuilt, the grid's configurations applied to that.
            let env = &env.reseeded(seed)?;
            let envs: Vec<Environment> =
                grid.iter().map(|c| apply_static(env, c)).collect::<Result<_, _>>()?;
            let start = Trainer::new(env.clone(), config.clone())?.current_metric();
            let (untrained, trained) = rayon::join(
                || {
                    let r = static_run(env, config, steps);
                    progress();
                    r
                },
                || tuned(env, trainable),
            );
            let alone: Vec<(f64, String)> =
                singles.par_iter().map(|&i| tuned(env, &[i])).collect::<Result<_, _>>()?;
            let (trained, learned) = trained?;
            let runs = |len: u64| -> Result<Vec<f64>, TuneError> {
                envs.par_iter()
                    .map(|e| {
                        let r = static_run(e, config, len);
                        progress();
                        r
                    })
                    .collect()
            };
            Ok((start, untrained?, trained, learned, runs(steps)?, runs(short)?, alone))
        })
        .collect::<Result<_, _>>()?;

    let base: Vec<f64> = per_seed.iter().map(|r| r.1).collect();
    let best = |scores: &[f64]| -> usize {
        // Ties go to the earlier configuration, so the choice never depends on float noise
        // in the comparison order.
        let mut k = 0;
        for (i, s) in scores.iter().enumerate() {
            if *s > scores[k] {
                k = i;
            }
        }
        k
    };
    let equal_pick: Vec<usize> = per_seed.iter().map(|r| best(&r.5)).collect();
    let full_pick: Vec<usize> = per_seed.iter().map(|r| best(&r.4)).collect();
    let configured = trainable
        .iter()
        .filter_map(|&i| TrainedPiece::start(env, i).map(|p| format!("{}: {}", p.id, p.describe())))
        .collect::<Vec<_>>()
        .join("; ");
    let plain = Compute { rollout_batches: steps, policy_steps: steps, metric_gradients: 0 };
    let trained_compute = Compute {
        rollout_batches: trained_batches,
        policy_steps: steps,
        metric_gradients: steps * (1 + DEFAULT_NODES as u64),
    };
    let report = StudyReport {
        steps,
        seeds: seeds.to_vec(),
        pieces: trainable.iter().map(|&i| env.pieces[i].id.clone()).collect(),
        grid_size: grid.len(),
        grid_short_steps: short,
        metric_start: per_seed.iter().map(|r| r.0).collect(),
        untrained: arm(
            "untrained (as configured)",
            base.clone(),
            &base,
            plain,
            vec![configured; seeds.len()],
        ),
        trained: arm(
            "trained on measured effect",
            per_seed.iter().map(|r| r.2).collect(),
            &base,
            trained_compute,
            per_seed.iter().map(|r| r.3.clone()).collect(),
        ),
        trained_alone: singles
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                arm(
                    &format!("{} trained alone", env.pieces[i].id),
                    per_seed.iter().map(|r| r.6[k].0).collect(),
                    &base,
                    Compute { metric_gradients: steps * (1 + DEFAULT_NODES as u64), ..plain },
                    per_seed.iter().map(|r| r.6[k].1.clone()).collect(),
                )
            })
            .collect(),
        grid_equal_compute: arm(
            "grid search, equal compute",
            per_seed.iter().zip(&equal_pick).map(|(r, &k)| r.4[k]).collect(),
            &base,
            Compute { rollout_batches: short * n, policy_steps: short * n, metric_gradients: 0 },
            equal_pick.iter().map(|&k| describe(&grid[k])).collect(),
        ),
        grid_full: arm(
            "grid search, every configuration at full length",
            per_seed.iter().zip(&full_pick).map(|(r, &k)| r.4[k]).collect(),
            &base,
            Compute { rollout_batches: steps * n, policy_steps: steps * n, metric_gradients: 0 },
            full_pick.iter().map(|&k| describe(&grid[k])).collect(),
        ),
        grid: grid
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let m = per_seed.iter().map(|r| r.4[k]).sum::<f64>() / per_seed.len().max(1) as f64;
                (describe(c), m)
            })
            .collect(),
    };
    Ok(report)
}
