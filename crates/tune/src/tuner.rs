//! Training pieces on their measured effect.
//!
//! After every policy step the [`Tuner`] updates each trainable piece from what that step
//! did to the gold metric `M` (never from training reward):
//!
//! * **curriculum** — logits `ℓ` of the sampling distribution `q = 0.9·softmax(ℓ) + 0.1/n`
//!   ascend the expected per-sample in-run credit: with `c_s` the step's credit of source `s`
//!   per sample drawn from it, `∂/∂ℓ_s Σ_k q_k c_k ∝ q_s (c_s − Σ_k q_k c_k)`;
//! * **shaping / verifier weight** `w = e^λ` — the one-step meta-gradient: with per-sample
//!   influence `s_j = ∇M·∇log π(y_j|x_j)`, `∂M/∂w ≈ η Σ_j s_j ∂A_j/∂w` and
//!   `∂A_j/∂w = (r_j − mean)/σ`;
//! * **reward-model parameters** `φ` (score `scale·φ·f`) — the same meta-gradient with
//!   `∂A_j/∂φ = w·scale·(f_j − mean_group f)/σ`;
//! * **hint probability** `p = sigmoid(λ)` — a one-step lookahead on the metric *without*
//!   hints ([`Tuner::hint_lookahead`]). The step's policy gradient is a mixture over the hint
//!   coin, `E[g] = Σ_b p g_b^h + (1 − p) g_b^0`, so `∂E[M(θ_{t+1})]/∂p ∝ ∇M·Σ_b (g_b^h − g_b^0)`:
//!   per task, what its group teaches `M` with the hint minus without it, the missing side
//!   re-sampled on the same uniforms. `M` never shows hints, so only the hint's effect on
//!   the hint-free policy counts. This is what sees reliance: while the policy still has to
//!   find the answer, a hinted group holds more correct samples and teaches `M` more; once
//!   the policy reads the answer off the hint, the hinted group is all correct, its
//!   advantages are zero and it teaches nothing, while the unhinted counterfactual still
//!   does — so `p` falls by itself, and what the hint taught was taught to the bare policy.
//!   (The hint's in-run credit measures what its sampling shift added to the updates taken,
//!   docs/credit-split.md; it does not say whether the bare policy will need the hint next
//!   step, which is what the lookahead asks.) The earlier first-order signal, hinted minus unhinted samples of the step, is kept as
//!   [`HintSignal::FirstOrder`] for comparison: it estimates the same effect from different
//!   tasks and cannot move at all when `p` is near 0 or 1 (no samples on one side).
//!
//! Each piece's parameters move by a [`PieceAdam`] step (signals have unknown scales). The
//! updated pieces replace the old ones in the trainer's environment before the next step.

use gristmill_core::piece::PieceKind;
use gristmill_core::policy::Response;
use gristmill_engine::{Coalition, EnvPiece, Environment};
use gristmill_learn::model::softmax;
use gristmill_learn::{LearnError, StepReport, TrainConfig, Trainer};
use gristmill_measure::DEFAULT_NODES;
use gristmill_pieces::{BuiltPiece, Curriculum, Hint};
use gristmill_run::{Run, RunError};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::adam::PieceAdam;

/// Learning rates per kind (Adam steps on the piece's own parameters).
pub mod rates {
    /// Curriculum logits.
    pub const CURRICULUM: f64 = 0.05;
    /// Log channel weight of a shaping term or verifier.
    pub const WEIGHT: f64 = 0.05;
    /// Reward-model parameters.
    pub const REWARD_MODEL: f64 = 0.05;
    /// Hint logit. A hint that starts always on sits at the 0.99 clamp (`λ ≈ 4.6`); at 0.2
    /// per step Adam can bring it below 0.1 within a few tens of steps once its lookahead
    /// turns negative (at 0.1 it was still at p ≈ 0.4–0.8 after 60 steps on
    /// examples/withdraw-hint-trained.toml).
    pub const HINT: f64 = 0.2;
}

/// The learnable parameters of one piece.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Learnable {
    /// Curriculum logits, one per source.
    Curriculum {
        /// `ℓ`.
        logits: Vec<f64>,
    },
    /// Log of a reward channel's weight.
    Weight {
        /// `λ = ln w`.
        log_weight: f64,
    },
    /// Reward-model weights `φ`.
    RewardModel {
        /// `φ`.
        weights: Vec<f64>,
    },
    /// Hint logit.
    Hint {
        /// `λ = logit p`.
        logit: f64,
    },
}

/// A piece being trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedPiece {
    /// Position in the environment's pieces.
    pub index: usize,
    /// Piece id.
    pub id: String,
    /// Current parameters.
    pub params: Learnable,
    adam: PieceAdam,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn curriculum_from_logits(logits: &[f64]) -> Vec<f64> {
    let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
    let s: f64 = e.iter().sum();
    let n = logits.len() as f64;
    e.iter().map(|x| 0.9 * x / s + 0.1 / n).collect()
}

impl TrainedPiece {
    /// Starts training piece `index` of `env` from its current configuration; `None` for
    /// kinds with nothing to train.
    pub fn start(env: &Environment, index: usize) -> Option<TrainedPiece> {
        let p = &env.pieces[index];
        let (params, rate) = match (&p.built, p.kind) {
            (BuiltPiece::Curriculum(c), _) => (
                Learnable::Curriculum { logits: c.weights.iter().map(|w| w.max(1e-12).ln()).collect() },
                rates::CURRICULUM,
            ),
            (BuiltPiece::Hint(h), _) => {
                let q = h.probability.clamp(0.01, 0.99);
                (Learnable::Hint { logit: (q / (1.0 - q)).ln() }, rates::HINT)
            }
            (BuiltPiece::RewardModel(m), _) => {
                (Learnable::RewardModel { weights: m.weights().to_vec() }, rates::REWARD_MODEL)
            }
            (BuiltPiece::Reward(_), PieceKind::Shaping | PieceKind::Verifier) => {
                (Learnable::Weight { log_weight: p.weight.max(1e-6).ln() }, rates::WEIGHT)
            }
            _ => return None,
        };
        let n = match &params {
            Learnable::Curriculum { logits } => logits.len(),
            Learnable::RewardModel { weights } => weights.len(),
            _ => 1,
        };
        Some(TrainedPiece { index, id: p.id.clone(), params, adam: PieceAdam::new(rate, n) })
    }

    /// The piece as configured by the current parameters.
    pub fn apply(&self, base: &EnvPiece) -> Result<EnvPiece, TuneError> {
        apply_learnable(&self.params, base)
    }

    /// A one-line description of the current value (for tables).
    pub fn describe(&self) -> String {
        match &self.params {
            Learnable::Curriculum { logits } => {
                let q = curriculum_from_logits(logits);
                format!("q = [{}]", q.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", "))
            }
            Learnable::Weight { log_weight } => format!("weight = {:.4}", log_weight.exp()),
            Learnable::RewardModel { weights } => {
                format!("φ = [{}]", weights.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", "))
            }
            Learnable::Hint { logit } => format!("p = {:.4}", sigmoid(*logit)),
        }
    }
}

/// `base` reconfigured with learned parameters `params`.
pub fn apply_learnable(params: &Learnable, base: &EnvPiece) -> Result<EnvPiece, TuneError> {
    let mut p = base.clone();
    match (params, &base.built) {
        (Learnable::Curriculum { logits }, BuiltPiece::Curriculum(_)) => {
            p.built = BuiltPiece::Curriculum(Curriculum { weights: curriculum_from_logits(logits) });
        }
        (Learnable::Hint { logit }, BuiltPiece::Hint(_)) => {
            p.built = BuiltPiece::Hint(Hint { probability: sigmoid(*logit) })
        }
        (Learnable::Weight { log_weight }, BuiltPiece::Reward(_)) => p.weight = log_weight.exp(),
        (Learnable::RewardModel { weights }, BuiltPiece::RewardModel(m)) => {
            let mut w = *m.weights();
            if weights.len() != w.len() {
                return Err(TuneError::Piece(
                    base.id.clone(),
                    format!("{} reward-model weights given, the model has {}", weights.len(), w.len()),
                ));
            }
            w.copy_from_slice(weights);
            let m =
                m.clone().with_weights(w).map_err(|e| TuneError::Piece(base.id.clone(), e.to_string()))?;
            p.built = BuiltPiece::RewardModel(m);
        }
        _ => return Err(TuneError::Piece(base.id.clone(), "parameters do not fit the piece kind".into())),
    }
    Ok(p)
}

/// Errors of piece training.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// Training the policy failed.
    #[error(transparent)]
    Learn(#[from] LearnError),
    /// The run failed (training, credit or the environment).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The environment could not be rebuilt (another seed).
    #[error(transparent)]
    Engine(#[from] gristmill_engine::EngineError),
    /// A piece could not take its new parameters.
    #[error("piece `{0}`: {1}")]
    Piece(String, String),
    /// An artifact that does not fit the target environment; `reason` names both sides.
    #[error("artifact {artifact} (piece `{piece}`) does not fit {target}: {reason}")]
    Misfit {
        /// The artifact's hash, shortened.
        artifact: String,
        /// The artifact's piece id.
        piece: String,
        /// The target, as the caller named it (e.g. a spec path).
        target: String,
        /// What differs (boxed: it carries both sides' records, and every `TuneError`
        /// result would otherwise pay for its size).
        reason: Box<crate::artifact::Misfit>,
    },
    /// An artifact document that cannot be used at all.
    #[error(transparent)]
    Artifact(#[from] crate::artifact::ArtifactError),
    /// A piece id the spec does not have.
    #[error("the spec has no piece `{id}`; its pieces are: {known}")]
    UnknownPiece {
        /// Asked for.
        id: String,
        /// What the spec has.
        known: String,
    },
}

/// A policy run whose trainable pieces learn from their measured effect as it goes.
pub struct Tuner {
    /// The run (its environment carries the current piece parameters; in-run credit on).
    run: Run,
    /// Pieces being trained.
    pub pieces: Vec<TrainedPiece>,
    /// `Σ_t Δθ_i·Δθ_j` over credit rows (for in-run alignment).
    pub gram: Vec<Vec<f64>>,
    /// What trains the hint probability.
    pub hint_signal: HintSignal,
}

/// The signal that trains a hint's probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HintSignal {
    /// One-step lookahead on the hint-free metric with a paired counterfactual per task
    /// (the default; see the module documentation).
    #[default]
    Lookahead,
    /// The earlier first-order signal: hinted minus unhinted samples of the step, compared
    /// across different tasks. Kept only so studies can compare the two.
    FirstOrder,
}

impl Tuner {
    /// A run of `env` in which the pieces at `train` (indices) learn. In-run credit is on
    /// with the default rule, whatever the spec says: the curriculum learns from it.
    pub fn new(env: Environment, mut config: TrainConfig, train: &[usize]) -> Result<Tuner, TuneError> {
        let pieces = train.iter().filter_map(|&i| TrainedPiece::start(&env, i)).collect();
        config.credit_nodes = DEFAULT_NODES;
        let mut run = Run::with_config(env, config)?;
        run.set_influence(true);
        let rows = run.trainer().channels().len();
        Ok(Tuner { run, pieces, gram: vec![vec![0.0; rows]; rows], hint_signal: HintSignal::default() })
    }

    /// The run.
    pub fn run(&self) -> &Run {
        &self.run
    }

    /// The trainer.
    pub fn trainer(&self) -> &Trainer {
        self.run.trainer()
    }

    /// Switches piece `index` off for the rest of the run (withdrawal).
    pub fn withdraw(&mut self, index: usize) -> Result<(), TuneError> {
        let env = self.trainer().env();
        let mut on = env.coalition.on.clone();
        on[index] = false;
        let env = env.with_coalition(Coalition { on });
        self.run.set_environment(env)?;
        self.pieces.retain(|p| p.index != index);
        Ok(())
    }

    /// Trains `steps` steps (policy and pieces).
    pub fn advance(&mut self, steps: u64) -> Result<(), TuneError> {
        for _ in 0..steps {
            self.step()?;
        }
        Ok(())
    }

    /// One policy step, then one update of every trainable piece.
    pub fn step(&mut self) -> Result<StepReport, TuneError> {
        let step = self.run.step()?;
        let report = step.report;
        let cells = step.credit.map(|c| c.cells).unwrap_or_default();
        self.accumulate_alignment(&report);
        let signals: Vec<Vec<f64>> =
            self.pieces.iter().map(|p| self.signal(p, &report, &cells)).collect::<Result<_, _>>()?;
        let mut env = self.trainer().env().clone();
        for (p, g) in self.pieces.iter_mut().zip(signals) {
            if g.iter().all(|x| *x == 0.0) {
                continue;
            }
            match &mut p.params {
                Learnable::Curriculum { logits } => p.adam.ascend(logits, &g),
                Learnable::RewardModel { weights } => p.adam.ascend(weights, &g),
                Learnable::Weight { log_weight } => p.adam.ascend(std::slice::from_mut(log_weight), &g),
                Learnable::Hint { logit } => p.adam.ascend(std::slice::from_mut(logit), &g),
            }
            let piece = p.apply(&env.pieces[p.index])?;
            env = env.with_piece(p.index, piece);
        }
        self.run.set_environment(env)?;
        Ok(report)
    }

    fn accumulate_alignment(&mut self, report: &StepReport) {
        let cols = self.trainer().columns();
        let rows = self.trainer().channels().len();
        let row_steps: Vec<Vec<f64>> = (0..rows)
            .map(|r| {
                let mut v = vec![0.0; report.theta_before.len()];
                for c in 0..cols {
                    for (a, b) in v.iter_mut().zip(&report.deltas[r * cols + c]) {
                        *a += b;
                    }
                }
                v
            })
            .collect();
        for i in 0..rows {
            for j in 0..rows {
                self.gram[i][j] += row_steps[i].iter().zip(&row_steps[j]).map(|(a, b)| a * b).sum::<f64>();
            }
        }
    }

    /// Cosine of the accumulated per-piece parameter steps of rows `i` and `j` (in-run
    /// alignment; negative means the pieces pushed the parameters against each other).
    pub fn alignment(&self, i: usize, j: usize) -> Option<f64> {
        let d = (self.gram[i][i] * self.gram[j][j]).sqrt();
        (d > 0.0).then(|| self.gram[i][j] / d)
    }

    /// The ascent direction for one piece's parameters from one step.
    fn signal(&self, p: &TrainedPiece, report: &StepReport, cells: &[f64]) -> Result<Vec<f64>, TuneError> {
        let t = self.trainer();
        let env = t.env();
        let Some(samples) = &report.samples else { return Ok(vec![]) };
        let n = samples.samples.len().max(1) as f64;
        Ok(match &p.params {
            Learnable::Curriculum { logits } => {
                let cols = t.columns();
                let rows = t.channels().len();
                let q = curriculum_from_logits(logits);
                let per_sample: Vec<Option<f64>> = (0..logits.len())
                    .map(|s| {
                        let k = report.samples_per_source[s];
                        (k > 0).then(|| (0..rows).map(|r| cells[r * cols + s]).sum::<f64>() / k as f64)
                    })
                    .collect();
                let mean: f64 = q.iter().zip(&per_sample).map(|(q, c)| q * c.unwrap_or(0.0)).sum();
                q.iter().zip(&per_sample).map(|(q, c)| c.map_or(0.0, |c| q * (c - mean))).collect()
            }
            Learnable::Weight { log_weight } => {
                let Some(ch) = env.channels.iter().position(|&i| i == p.index) else { return Ok(vec![0.0]) };
                let g: f64 = samples
                    .samples
                    .iter()
                    .map(|s| s.influence * s.centred[ch] * s.inv_sigma[ch])
                    .sum::<f64>()
                    / n;
                vec![g * log_weight.exp()]
            }
            Learnable::RewardModel { weights } => {
                let Some(ch) = env.channels.iter().position(|&i| i == p.index) else {
                    return Ok(vec![0.0; weights.len()]);
                };
                let BuiltPiece::RewardModel(m) = &env.pieces[p.index].built else {
                    return Ok(vec![0.0; weights.len()]);
                };
                let w = env.pieces[p.index].weight * m.scale();
                let g_count = env.spec.spec().run.responses_per_task as usize;
                let mut grad = vec![0.0; weights.len()];
                for group in samples.samples.chunks(g_count) {
                    let task = &samples.tasks[group[0].task];
                    let src = env.sources[task.key.source as usize].as_ref();
                    let feats: Vec<_> = group
                        .iter()
                        .map(|s| m.features(task, &Response::from_answer(src, s.answer)))
                        .collect();
                    let mean: Vec<f64> = (0..weights.len())
                        .map(|k| feats.iter().map(|f| f[k]).sum::<f64>() / group.len() as f64)
                        .collect();
                    for (s, f) in group.iter().zip(&feats) {
                        for k in 0..weights.len() {
                            grad[k] += s.influence * w * s.inv_sigma[ch] * (f[k] - mean[k]) / n;
                        }
                    }
                }
                grad
            }
            Learnable::Hint { logit } => {
                let p = sigmoid(*logit);
                let d = match self.hint_signal {
                    HintSignal::Lookahead => self.hint_lookahead(report)?,
                    HintSignal::FirstOrder => first_order_hint(samples),
                };
                d.map_or(vec![0.0], |d| vec![d * p * (1.0 - p)])
            }
        })
    }
}

/// The previous hint signal, kept for comparison in studies: the mean gold gain `A_j s_j` of
/// the step's hinted samples minus that of its unhinted ones. It estimates the same one-step
/// effect as [`HintSignal::Lookahead`] but from *different* tasks, so at small or large `p`
/// (few samples on one side) it is mostly noise.
fn first_order_hint(samples: &gristmill_learn::StepSamples) -> Option<f64> {
    let (mut sh, mut nh, mut su, mut nu) = (0.0, 0.0, 0.0, 0.0);
    for s in &samples.samples {
        let gain = s.influence * s.advantages.iter().sum::<f64>();
        if s.hinted {
            sh += gain;
            nh += 1.0;
        } else {
            su += gain;
            nu += 1.0;
        }
    }
    (nh > 0.0 && nu > 0.0).then(|| sh / nh - su / nu)
}

impl Tuner {
    /// The hint's one-step lookahead on the hint-free metric for the step `report` describes:
    /// `∂E[M(θ_{t+1})]/∂p` up to the positive factor `η/G` (plain SGD; Adam's preconditioner is
    /// left out). For every task of the step, what its group taught the hint-free metric
    /// (`Σ_g A_g s_g`, the group's policy gradient projected on `∇M`) with the hint minus
    /// without it, averaged over tasks. The side the step did not take is rolled out again on
    /// the same task with the same sampling uniforms and score keys (common random numbers),
    /// so each task gives a paired difference. `None` when the report carries no per-sample
    /// records. Call it before the environment's pieces change (as [`Tuner::step`] does).
    pub fn hint_lookahead(&self, report: &StepReport) -> Result<Option<f64>, TuneError> {
        let Some(samples) = report.samples.as_ref() else { return Ok(None) };
        let g_count = self.trainer().env().spec.spec().run.responses_per_task as usize;
        let weights = self.trainer().env().channel_weights();
        let theta = &report.theta_before;
        let total: Vec<f64> = samples
            .tasks
            .par_iter()
            .enumerate()
            .map(|(b, task)| {
                let group = &samples.samples[b * g_count..(b + 1) * g_count];
                let seen: f64 = group.iter().map(|s| s.influence * s.advantages.iter().sum::<f64>()).sum();
                let mut other = task.clone();
                other.hint = if task.hint.is_some() { None } else { Some(task.hint_digit()) };
                let unseen =
                    self.group_teaching(&other, b, report.step, theta, &samples.metric_grad, &weights)?;
                Ok(if task.hint.is_some() { seen - unseen } else { unseen - seen })
            })
            .collect::<Result<_, LearnError>>()?;
        Ok((!total.is_empty()).then(|| total.iter().sum::<f64>() / total.len() as f64))
    }

    /// `Σ_g A_g s_g` of the group the policy at `theta` would sample for `task` in slot `b`:
    /// the trainer's own sampling (same uniforms and score keys), so the counterfactual group
    /// differs from the real one only through the observation.
    fn group_teaching(
        &self,
        task: &gristmill_core::task::Task,
        b: usize,
        step: u64,
        theta: &[f64],
        metric_grad: &[f64],
        weights: &[f64],
    ) -> Result<f64, LearnError> {
        let t = self.trainer();
        let g_count = t.env().spec.spec().run.responses_per_task as usize;
        let enc = t.model().encode(task);
        let act = t.model().forward(theta, &enc);
        let probs = softmax(&act.logits);
        let dz = t.model().jvp(theta, &enc, &act, metric_grad);
        let mean_dz: f64 = probs.iter().zip(&dz).map(|(p, d)| p * d).sum();
        let group = t.sample_group(task, &probs, step, b)?;
        let c = weights.len();
        let (adv, _, _) = t.advantages(&group.rewards, weights, g_count);
        Ok((0..g_count)
            .map(|g| adv[g * c..(g + 1) * c].iter().sum::<f64>() * (dz[group.picks[g]] - mean_dz))
            .sum())
    }
}
