//! The channel-split GRPO trainer.
//!
//! A step samples `B` tasks (from the curriculum's distribution `q` over sources, hints
//! shown with the hint piece's probability) and `G` answers per task from the policy. Piece
//! `c` gives reward `r_c`; the advantage splits by channel,
//! `A_c = w_c (r_c − mean_group(r_c)) / σ`, with `σ` shared (std of `r = Σ w_c r_c`), per
//! channel (std of `r_c`), or none (`σ = 1`, as in Dr. GRPO). The policy gradient `g = (1/BG) Σ_j A_j ∇log π(y_j|x_j)` then
//! splits into **cells** (credit channel × source):
//!
//! * reward channel `c`, source `s`: `(1/BG) Σ_{j∈s} A_{j,c} ρ_j ρʰ_j ∇log π(y_j|x_j)`, where
//!   `ρ_j = p₀(s)/q(s)` is the importance weight of reference sampling, `x_j` the observation
//!   **without** hint and `ρʰ_j = π(y_j|x_j)/π(y_j|xʰ_j)` (1 for unhinted samples): what
//!   unhinted sampling from the mixture would have contributed;
//! * curriculum: `(1/BG) Σ_j A_j (1 − ρ_j) ∇log π(y_j|xʰ_j)` — what sampling from `q` instead
//!   of `p₀` added;
//! * hint: `(1/BG) Σ_j A_j ρ_j (∇log π(y_j|xʰ_j) − ρʰ_j ∇log π(y_j|x_j))` — what sampling
//!   from the hinted observation added (the old convention, without `ρʰ`, was identically
//!   zero on every parameter the unhinted gold metric reads; docs/credit-split.md);
//! * `kl` (when β > 0): `−β ∇ (1/B) Σ_t KL(π_θ(·|x^h_t) ‖ π_θ₀(·|x^h_t))`, exact over answers;
//! * `weight_decay` (when λ > 0): `−λθ`, in a `(global)` source column.
//!
//! The cells sum to the ordinary gradient exactly (up to floating-point addition order), and
//! the [`SplitOptimizer`] turns them into per-cell steps that sum to the real step.

use gristmill_core::digest::Digest;
use gristmill_core::piece::{PieceKind, ScoreBatch};
use gristmill_core::policy::Response;
use gristmill_core::rng::{Purpose, StreamPrefix};
use gristmill_core::task::Task;
use gristmill_engine::{sample_answer, sample_index, Environment};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{Normalization, TrainConfig, SIGMA_EPS};
use crate::metric::{metric, metric_and_grad};
use crate::model::{log_softmax, softmax, Activations, Encoded, Model};
use crate::optim::owen::MAX_CELLS;
use crate::optim::SplitOptimizer;
use crate::LearnError;

/// What a credit channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A reward piece (its position in the environment's pieces).
    Reward(usize),
    /// The curriculum piece.
    Curriculum(usize),
    /// The hint piece.
    Hint(usize),
    /// KL to the initial policy.
    Kl,
    /// Weight decay.
    WeightDecay,
}

/// A row of the credit table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreditChannel {
    /// Piece id, or `kl` / `weight_decay`.
    pub id: String,
    /// What it is.
    pub kind: ChannelKind,
}

/// Tasks per parallel chunk of the gradient pass (fixed: the reduction order never depends
/// on the thread count).
const TASK_CHUNK: usize = 8;

/// What one step did.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Step number.
    pub step: u64,
    /// Parameters before the step.
    pub theta_before: Vec<f64>,
    /// Per-cell steps `Δθ_{c,s}`, flat `[channel][source column]` (see [`Trainer::cell`]).
    pub deltas: Vec<Vec<f64>>,
    /// The total gradient `g = Σ_cells g_cell` the optimizer stepped on.
    pub gradient: Vec<f64>,
    /// `M(θ)` before the step.
    pub metric_before: f64,
    /// `M(θ)` after the step.
    pub metric_after: f64,
    /// Mean training reward per reward channel (environment channel order).
    pub train_reward: Vec<f64>,
    /// Exact-match rate of the step's samples.
    pub train_gold: f64,
    /// Samples per source column (the last column, `(global)`, is always 0).
    pub samples_per_source: Vec<u64>,
    /// Digest of the run so far.
    pub digest: String,
    /// The step's tasks and per-sample records, when [`Trainer::influence`] is on.
    pub samples: Option<StepSamples>,
    /// Where the step's time went. Measured, never digested: results do not depend on it.
    pub timings: StepTimings,
}

/// Seconds spent in the phases of one step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTimings {
    /// Wall time of drawing tasks, sampling and scoring (parallel).
    pub rollout: f64,
    /// Thread time inside piece scoring, summed over tasks (part of `rollout`).
    pub scoring: f64,
    /// Wall time of the split gradient pass, including the optimizer.
    pub gradient: f64,
    /// Wall time of the split optimizer (part of `gradient`).
    pub optimizer: f64,
    /// Wall time of evaluating `M(θ_{t+1})` for the learning curve.
    pub metric: f64,
}

/// Per-sample records of a step, for training pieces on their measured effect.
#[derive(Debug, Clone)]
pub struct StepSamples {
    /// The tasks (as the policy saw them, hints included).
    pub tasks: Vec<gristmill_core::task::Task>,
    /// `∇M(θ_t)`, the gold-metric gradient before the step.
    pub metric_grad: Vec<f64>,
    /// One record per sample, task-major.
    pub samples: Vec<SampleRecord>,
}

/// What one sample did.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRecord {
    /// Task index within the step.
    pub task: usize,
    /// Source index.
    pub source: usize,
    /// Whether the task showed its hint.
    pub hinted: bool,
    /// The sampled answer.
    pub answer: i64,
    /// Influence `s_j = ∇M(θ_t)·∇log π(y_j|x_j)` on the observation the policy saw.
    pub influence: f64,
    /// Reward vector.
    pub rewards: Vec<f64>,
    /// Advantage per channel.
    pub advantages: Vec<f64>,
    /// `r − mean_group(r)` per channel.
    pub centred: Vec<f64>,
    /// Normaliser `1/(σ+ε)` (or 1) per channel.
    pub inv_sigma: Vec<f64>,
}

/// Trainer state that a checkpoint restores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Steps done.
    pub step: u64,
    /// Parameters.
    pub theta: Vec<f64>,
    /// Optimizer state.
    pub optimizer: SplitOptimizer,
    /// `M(θ)` now.
    pub metric: f64,
    /// Chained digest so far.
    pub digest: String,
}

/// A training run in progress. Its fields are private: a trainer is built from an
/// environment and a config ([`Trainer::new`]), steps ([`Trainer::step`]), is read through
/// accessors, restored from a checkpointed state ([`Trainer::restore`]), and takes a
/// retrained environment ([`Trainer::set_environment`]).
pub struct Trainer {
    /// The environment (its coalition decides which pieces train the policy).
    env: Environment,
    config: TrainConfig,
    model: Model,
    /// Initial parameters (for the KL pseudo-piece).
    theta0: Vec<f64>,
    /// The gold suite, encoded (never with hints).
    suite: Vec<Encoded>,
    /// Source of each suite task.
    suite_sources: Vec<usize>,
    /// Credit channels (rows).
    channels: Vec<CreditChannel>,
    state: TrainState,
    /// Record per-sample influences in every [`StepReport`] (costs one `∇M` per step).
    influence: bool,
}

/// The responses [`Trainer::sample_group`] drew for one task.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledGroup {
    /// Answer index of each response, in the task's answer space.
    pub picks: Vec<usize>,
    /// Reward vectors, flat `[response][channel]`.
    pub rewards: Vec<f64>,
    /// Gold score of each response (the environment's [`Environment::gold_score`]).
    pub gold: Vec<f64>,
    /// Wall seconds spent scoring (for the step's phase timings).
    pub score_secs: f64,
}

struct TaskRollout {
    source: usize,
    hinted: Encoded,
    plain: Encoded,
    act_h: Activations,
    act_0: Activations,
    p_h: Vec<f64>,
    p_0: Vec<f64>,
    picks: Vec<usize>,
    rewards: Vec<f64>,
    /// `π(y_g|x)/π(y_g|xʰ)` per response when the task showed its hint.
    hint_weights: Option<Vec<f64>>,
    /// Advantages, centred rewards and normalisers of the group (see [`Trainer::advantages`]).
    advantages: (Vec<f64>, Vec<f64>, Vec<f64>),
    values: Vec<i64>,
    gold: Vec<f64>,
    task: gristmill_core::task::Task,
    score_secs: f64,
}

impl Trainer {
    /// A trainer at step 0, seeded by the environment's validated spec (the one root seed).
    pub fn new(env: Environment, config: TrainConfig) -> Result<Trainer, LearnError> {
        let seed = env.seed();
        let spaces: Vec<_> = env.sources.iter().map(|s| s.answers()).collect();
        let dims: Vec<_> = env.sources.iter().map(|s| s.feature_dim()).collect();
        let model = Model::new(config.arch, &spaces, &dims);
        let theta0 = model.init(seed, config.init_scale);
        let tasks = env.eval_suite()?;
        let suite: Vec<Encoded> = tasks.iter().map(|t| model.encode(t)).collect();
        let suite_sources = tasks.iter().map(|t| t.key.source as usize).collect();
        let mut channels: Vec<CreditChannel> = env
            .channels
            .iter()
            .map(|&i| CreditChannel { id: env.pieces[i].id.clone(), kind: ChannelKind::Reward(i) })
            .collect();
        for (i, p) in env.pieces.iter().enumerate() {
            match p.kind {
                PieceKind::Curriculum => {
                    channels.push(CreditChannel { id: p.id.clone(), kind: ChannelKind::Curriculum(i) })
                }
                PieceKind::Hint => {
                    channels.push(CreditChannel { id: p.id.clone(), kind: ChannelKind::Hint(i) })
                }
                _ => {}
            }
        }
        if config.kl > 0.0 {
            channels.push(CreditChannel { id: "kl".into(), kind: ChannelKind::Kl });
        }
        if config.weight_decay > 0.0 {
            channels.push(CreditChannel { id: "weight_decay".into(), kind: ChannelKind::WeightDecay });
        }
        let cells = channels.len() * (env.sources.len() + 1);
        if cells > MAX_CELLS {
            return Err(LearnError::TooManyCells { cells, max: MAX_CELLS });
        }
        let optimizer = SplitOptimizer::new(
            config.optimizer,
            config.learning_rate,
            channels.len(),
            env.sources.len() + 1,
            model.len(),
        );
        let metric = metric(&model, &theta0, &suite)?;
        let mut d = Digest::new();
        d.str(env.spec.hash()).u64(seed).f64(metric);
        let state = TrainState { step: 0, theta: theta0.clone(), optimizer, metric, digest: d.hex() };
        Ok(Trainer { env, config, model, theta0, suite, suite_sources, channels, state, influence: false })
    }

    /// The environment.
    pub fn env(&self) -> &Environment {
        &self.env
    }

    /// Replaces the environment by one with the same sources and pieces (by id and kind):
    /// a retrained piece, a new channel weight, another coalition. Anything that would change
    /// the credit layout or the gold suite is refused.
    pub fn set_environment(&mut self, env: Environment) -> Result<(), LearnError> {
        let ids = |e: &Environment| -> Vec<(String, PieceKind)> {
            e.pieces.iter().map(|p| (p.id.clone(), p.kind)).collect()
        };
        let sources =
            |e: &Environment| -> Vec<String> { e.spec.spec().sources.iter().map(|s| s.id.clone()).collect() };
        if ids(&env) != ids(&self.env) || sources(&env) != sources(&self.env) || env.seed() != self.env.seed()
        {
            return Err(LearnError::Checkpoint(format!(
                "the new environment's pieces {:?}, sources {:?} or seed {} differ from the trainer's {:?}, {:?}, {}",
                ids(&env).iter().map(|p| &p.0).collect::<Vec<_>>(),
                sources(&env),
                env.seed(),
                ids(&self.env).iter().map(|p| &p.0).collect::<Vec<_>>(),
                sources(&self.env),
                self.env.seed()
            )));
        }
        self.env = env;
        Ok(())
    }

    /// Settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Policy shape.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Initial parameters.
    pub fn theta0(&self) -> &[f64] {
        &self.theta0
    }

    /// The root seed (the environment's).
    pub fn seed(&self) -> u64 {
        self.env.seed()
    }

    /// The gold suite, encoded (never with hints).
    pub fn suite(&self) -> &[Encoded] {
        &self.suite
    }

    /// Source of each suite task.
    pub fn suite_sources(&self) -> &[usize] {
        &self.suite_sources
    }

    /// Credit channels (rows of the credit table).
    pub fn channels(&self) -> &[CreditChannel] {
        &self.channels
    }

    /// The state a checkpoint restores.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// Parameters now.
    pub fn theta(&self) -> &[f64] {
        &self.state.theta
    }

    /// `M(θ)` now.
    pub fn current_metric(&self) -> f64 {
        self.state.metric
    }

    /// Steps done.
    pub fn steps_done(&self) -> u64 {
        self.state.step
    }

    /// Whether every [`StepReport`] records per-sample influences (costs one `∇M` a step).
    pub fn set_influence(&mut self, on: bool) {
        self.influence = on;
    }

    /// Number of source columns: one per source plus `(global)`.
    pub fn columns(&self) -> usize {
        self.env.sources.len() + 1
    }

    /// Flat index of cell (channel, column).
    pub fn cell(&self, channel: usize, column: usize) -> usize {
        channel * self.columns() + column
    }

    /// Column names: source ids, then `(global)`.
    pub fn column_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.env.spec.spec().sources.iter().map(|s| s.id.clone()).collect();
        v.push("(global)".into());
        v
    }

    /// `M` and `∇M` at `theta`.
    pub fn metric_and_grad(&self, theta: &[f64]) -> Result<(f64, Vec<f64>), LearnError> {
        metric_and_grad(&self.model, theta, &self.suite)
    }

    /// `M` at `theta`.
    pub fn metric(&self, theta: &[f64]) -> Result<f64, LearnError> {
        metric(&self.model, theta, &self.suite)
    }

    /// Restores a checkpointed state.
    pub fn restore(&mut self, state: TrainState) -> Result<(), LearnError> {
        if state.theta.len() != self.model.len() {
            return Err(LearnError::Checkpoint(format!(
                "checkpoint has {} parameters, the policy has {}",
                state.theta.len(),
                self.model.len()
            )));
        }
        if state.optimizer.layout() != self.state.optimizer.layout()
            || state.optimizer.kind != self.config.optimizer
        {
            return Err(LearnError::Checkpoint(format!(
                "checkpoint's optimizer ({:?}, cells {:?}) does not match the spec's ({:?}, cells {:?})",
                state.optimizer.kind,
                state.optimizer.layout(),
                self.config.optimizer,
                self.state.optimizer.layout()
            )));
        }
        self.state = state;
        Ok(())
    }

    fn rollout_task(
        &self,
        q: &[f64],
        hint_p: Option<f64>,
        weights: &[f64],
        step: u64,
        b: usize,
    ) -> Result<TaskRollout, LearnError> {
        let env = &self.env;
        let g_count = env.spec.spec().run.responses_per_task as usize;
        let seed = self.seed();
        let theta = &self.state.theta;
        let task = env.training_task(q, hint_p, seed, step, b as u64)?;
        let source = task.key.source as usize;
        let hinted = self.model.encode(&task);
        let act_h = self.model.forward(theta, &hinted);
        check(&act_h.logits, step, "logits")?;
        let p_h = softmax(&act_h.logits);
        let (plain, act_0, p_0) = if task.hint.is_some() {
            let plain = self.model.strip_hint(&hinted);
            let act = self.model.forward(theta, &plain);
            check(&act.logits, step, "logits")?;
            let p = softmax(&act.logits);
            (plain, act, p)
        } else {
            (hinted.clone(), act_h.clone(), p_h.clone())
        };
        let SampledGroup { picks, rewards, gold, score_secs } = self.sample_group(&task, &p_h, step, b)?;
        let values: Vec<i64> = picks.iter().map(|&y| task.answers.value(y)).collect();
        let advantages = self.advantages(&rewards, weights, g_count);
        let hint_weights = match task.hint {
            Some(_) => {
                // In log space: a probability that underflows must not give 0/0.
                let (lp_h, lp_0) = (log_softmax(&act_h.logits), log_softmax(&act_0.logits));
                let w: Vec<f64> = picks.iter().map(|&y| (lp_0[y] - lp_h[y]).exp()).collect();
                check(&w, step, "hint importance weights")?;
                Some(w)
            }
            None => None,
        };
        Ok(TaskRollout {
            hint_weights,
            source,
            hinted,
            plain,
            act_h,
            act_0,
            p_h,
            p_0,
            picks,
            rewards,
            advantages,
            values,
            gold,
            task,
            score_secs,
        })
    }

    /// The `G` responses of training slot `b` at `step` for `task` under answer
    /// probabilities `probs`: each drawn by inverse CDF of the slot's keyed sampling uniform
    /// and scored by every channel under its keyed score key. A caller that re-samples a
    /// changed task (a counterfactual observation) with the same `step` and `b` gets common
    /// random numbers with the real step. Non-finite rewards are an error naming the channel.
    pub fn sample_group(
        &self,
        task: &Task,
        probs: &[f64],
        step: u64,
        b: usize,
    ) -> Result<SampledGroup, LearnError> {
        let env = &self.env;
        let g_count = env.spec.spec().run.responses_per_task as usize;
        let seed = self.seed();
        let src = env.sources[task.key.source as usize].as_ref();
        let samples = StreamPrefix::new(seed, Purpose::SAMPLE, step);
        let first_index = sample_index(b, 0, g_count);
        let picks: Vec<usize> =
            (0..g_count).map(|g| sample_answer(probs, &samples, sample_index(b, g, g_count))).collect();
        let responses: Vec<Response> =
            picks.iter().map(|&y| Response::from_answer(src, task.answers.value(y))).collect();
        let channels = env.channels.len();
        let mut rewards = vec![0.0; g_count * channels];
        let scoring = std::time::Instant::now();
        let batch = ScoreBatch {
            tasks: std::slice::from_ref(task),
            responses: &responses,
            group_size: g_count,
            seed,
            step,
            first_index,
        };
        env.score_batch_to(&batch, &mut rewards, &mut Vec::new());
        let score_secs = scoring.elapsed().as_secs_f64();
        if let Some(k) = rewards.iter().position(|r| !r.is_finite()) {
            let piece = &env.pieces[env.channels[k % channels]];
            // A piece whose outside service failed says why: the engine's error carries it.
            if let Some(reason) = piece.scorer().and_then(|s| s.failure()) {
                return Err(LearnError::Engine(gristmill_engine::EngineError::NonFiniteReward {
                    step,
                    index: first_index + (k / channels) as u64,
                    channel: piece.id.clone(),
                    value: rewards[k],
                    reason: Some(reason),
                }));
            }
            return Err(LearnError::NonFinite {
                step: Some(step),
                channel: piece.id.clone(),
                value: rewards[k],
            });
        }
        let gold = responses.iter().map(|r| env.gold_score(task, r)).collect();
        Ok(SampledGroup { picks, rewards, gold, score_secs })
    }

    /// Per-sample, per-channel advantages of one group under this trainer's normalisation
    /// ([`group_advantages`]).
    pub fn advantages(
        &self,
        rewards: &[f64],
        weights: &[f64],
        g_count: usize,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        group_advantages(self.config.normalization, rewards, weights, g_count)
    }

    /// Runs one training step, in four phases: sample and score the step's groups
    /// ([`Trainer::rollouts`]), split the policy gradient into credit cells
    /// ([`Trainer::cell_gradients`]), split the optimizer's step over the cells, and record
    /// the step (metric, digest). Nothing is committed until every phase has succeeded, so a
    /// failing step leaves the last good state to checkpoint.
    pub fn step(&mut self) -> Result<StepReport, LearnError> {
        let step = self.state.step;
        let clock = std::time::Instant::now();
        let rollouts = self.rollouts(step)?;
        let samples = if self.influence { Some(self.sample_records(step, &rollouts)?) } else { None };
        let rollout_secs = clock.elapsed().as_secs_f64();

        let clock = std::time::Instant::now();
        let grads = self.cell_gradients(step, &rollouts)?;
        let mut gradient = vec![0.0; self.model.len()];
        for g in &grads {
            for (a, b) in gradient.iter_mut().zip(g) {
                *a += b;
            }
        }
        let optimizer_clock = std::time::Instant::now();
        let split = self.state.optimizer.propose(&grads);
        let optimizer_secs = optimizer_clock.elapsed().as_secs_f64();
        let mut theta = self.state.theta.clone();
        match &split.real {
            // Adam: the real update, of which the cells are the Owen split.
            Some(real) => theta.iter_mut().zip(real).for_each(|(t, x)| *t += x),
            // SGD: the cells are the step, applied in cell order.
            None => {
                for d in &split.cells {
                    theta.iter_mut().zip(d).for_each(|(t, x)| *t += x);
                }
            }
        }
        if let Some(v) = theta.iter().find(|v| !v.is_finite()) {
            return Err(LearnError::NonFinite { step: Some(step), channel: "parameters".into(), value: *v });
        }
        let gradient_secs = clock.elapsed().as_secs_f64();

        let clock = std::time::Instant::now();
        let metric_after = self.metric(&theta).map_err(|e| e.at_step(step))?;
        let metric_secs = clock.elapsed().as_secs_f64();
        let metric_before = self.state.metric;
        let theta_before = std::mem::replace(&mut self.state.theta, theta);
        self.state.optimizer.commit();
        let record = self.record(step, &rollouts, metric_after);
        Ok(StepReport {
            step,
            theta_before,
            deltas: split.cells,
            gradient,
            metric_before,
            metric_after,
            train_reward: record.train_reward,
            train_gold: record.train_gold,
            samples_per_source: record.samples_per_source,
            digest: self.state.digest.clone(),
            samples,
            timings: StepTimings {
                rollout: rollout_secs,
                scoring: rollouts.iter().map(|r| r.score_secs).sum(),
                gradient: gradient_secs,
                optimizer: optimizer_secs,
                metric: metric_secs,
            },
        })
    }

    /// Phase 1: the step's `B` tasks, each with its `G` sampled responses, rewards and
    /// advantages (in parallel, collected in task order).
    fn rollouts(&self, step: u64) -> Result<Vec<TaskRollout>, LearnError> {
        let env = &self.env;
        let b_count = env.spec.spec().run.tasks_per_step as usize;
        let q = env.sampling_distribution();
        let hint_p = env.hint().map(|h| h.probability);
        let weights = env.channel_weights();
        (0..b_count).into_par_iter().map(|b| self.rollout_task(&q, hint_p, &weights, step, b)).collect()
    }

    /// Per-sample records for trainable pieces: each sample's influence on `M` and its
    /// advantage terms (costs one `∇M`).
    fn sample_records(&self, step: u64, rollouts: &[TaskRollout]) -> Result<StepSamples, LearnError> {
        let g_count = self.env.spec.spec().run.responses_per_task as usize;
        let c_rew = self.env.channels.len();
        let (_, metric_grad) = self.metric_and_grad(&self.state.theta).map_err(|e| e.at_step(step))?;
        let mut records = Vec::with_capacity(rollouts.len() * g_count);
        for (t, r) in rollouts.iter().enumerate() {
            let (adv, centred, inv_sigma) = &r.advantages;
            let dz = self.model.jvp(&self.state.theta, &r.hinted, &r.act_h, &metric_grad);
            let mean_dz: f64 = r.p_h.iter().zip(&dz).map(|(p, d)| p * d).sum();
            for g in 0..g_count {
                records.push(SampleRecord {
                    task: t,
                    source: r.source,
                    hinted: r.task.hint.is_some(),
                    answer: r.values[g],
                    influence: dz[r.picks[g]] - mean_dz,
                    rewards: r.rewards[g * c_rew..(g + 1) * c_rew].to_vec(),
                    advantages: adv[g * c_rew..(g + 1) * c_rew].to_vec(),
                    centred: centred[g * c_rew..(g + 1) * c_rew].to_vec(),
                    inv_sigma: inv_sigma.clone(),
                });
            }
        }
        Ok(StepSamples {
            tasks: rollouts.iter().map(|r| r.task.clone()).collect(),
            metric_grad,
            samples: records,
        })
    }

    /// Phase 2: the policy gradient split into credit cells (see the module doc), summed
    /// over fixed chunks of tasks in chunk order; every cell checked finite.
    fn cell_gradients(&self, step: u64, rollouts: &[TaskRollout]) -> Result<Vec<Vec<f64>>, LearnError> {
        let env = &self.env;
        let run = &env.spec.spec().run;
        let (b_count, g_count) = (run.tasks_per_step as usize, run.responses_per_task as usize);
        let q = env.sampling_distribution();
        let p0 = env.mixture();
        let has_curriculum = env.curriculum().is_some();
        let hint_p = env.hint().map(|h| h.probability);
        let c_rew = env.channels.len();
        let cols = self.columns();
        let n_cells = self.channels.len() * cols;
        let p_len = self.model.len();
        let inv_bg = 1.0 / (b_count * g_count) as f64;

        // Row positions of the non-reward channels.
        let row_of = |pred: &dyn Fn(&ChannelKind) -> bool| self.channels.iter().position(|c| pred(&c.kind));
        let curriculum_row = row_of(&|k| matches!(k, ChannelKind::Curriculum(_)));
        let hint_row = row_of(&|k| matches!(k, ChannelKind::Hint(_)));
        let kl_row = row_of(&|k| matches!(k, ChannelKind::Kl));
        let wd_row = row_of(&|k| matches!(k, ChannelKind::WeightDecay));
        let curriculum_on = curriculum_row.filter(|_| has_curriculum);
        let hint_on = hint_row.filter(|_| hint_p.is_some());
        let partials: Vec<Vec<Vec<f64>>> = rollouts
            .par_chunks(TASK_CHUNK)
            .map(|chunk| {
                // Cells are allocated on first touch: most (channel, source) cells of a
                // chunk are empty.
                let mut grads = vec![Vec::<f64>::new(); n_cells];
                for r in chunk {
                    let adv = &r.advantages.0;
                    let s = r.source;
                    let rho = if has_curriculum { p0[s] / q[s] } else { 1.0 };
                    // dz for Σ_g coef_g (e_{y_g} − π).
                    let dz_of = |coef: &dyn Fn(usize) -> f64, p: &[f64]| -> Vec<f64> {
                        let total: f64 = (0..g_count).map(coef).sum();
                        let mut dz: Vec<f64> = p.iter().map(|pi| -total * pi).collect();
                        for g in 0..g_count {
                            dz[r.picks[g]] += coef(g);
                        }
                        dz
                    };
                    // ρʰ = π(y|x)/π(y|xʰ): what unhinted sampling would have contributed.
                    let rho_h = |g: usize| r.hint_weights.as_ref().map_or(1.0, |w| w[g]);
                    for c in 0..c_rew {
                        let dz = dz_of(&|g| adv[g * c_rew + c] * rho * rho_h(g) * inv_bg, &r.p_0);
                        let g = slot(&mut grads, c * cols + s, p_len);
                        self.model.backward(&self.state.theta, &r.plain, &r.act_0, &dz, g);
                    }
                    let a_total = |g: usize| (0..c_rew).map(|c| adv[g * c_rew + c]).sum::<f64>();
                    if let Some(row) = curriculum_on {
                        let dz = dz_of(&|g| a_total(g) * (1.0 - rho) * inv_bg, &r.p_h);
                        let g = slot(&mut grads, row * cols + s, p_len);
                        self.model.backward(&self.state.theta, &r.hinted, &r.act_h, &dz, g);
                    }
                    if let (Some(row), true) = (hint_on, r.hint_weights.is_some()) {
                        let g = slot(&mut grads, row * cols + s, p_len);
                        let dz_h = dz_of(&|g| a_total(g) * rho * inv_bg, &r.p_h);
                        self.model.backward(&self.state.theta, &r.hinted, &r.act_h, &dz_h, g);
                        let dz_0: Vec<f64> = dz_of(&|g| a_total(g) * rho * rho_h(g) * inv_bg, &r.p_0)
                            .iter()
                            .map(|v| -v)
                            .collect();
                        self.model.backward(&self.state.theta, &r.plain, &r.act_0, &dz_0, g);
                    }
                    if let Some(row) = kl_row {
                        // ∂KL(π‖π₀)/∂z_y = π_y (log π_y − log π₀_y − KL); ascent on −β·KL/B.
                        let a0 = self.model.forward(&self.theta0, &r.hinted);
                        // Log-softmax differences, not ln of probabilities: a probability that
                        // underflows to 0 must not turn the KL into 0·(−∞) = NaN.
                        let (lp, lp0) = (log_softmax(&r.act_h.logits), log_softmax(&a0.logits));
                        let log_ratio: Vec<f64> = lp.iter().zip(&lp0).map(|(a, b)| a - b).collect();
                        let kl: f64 = r.p_h.iter().zip(&log_ratio).map(|(p, l)| p * l).sum();
                        let coef = -self.config.kl / b_count as f64;
                        let dz: Vec<f64> =
                            r.p_h.iter().zip(&log_ratio).map(|(p, l)| coef * p * (l - kl)).collect();
                        let g = slot(&mut grads, row * cols + s, p_len);
                        self.model.backward(&self.state.theta, &r.hinted, &r.act_h, &dz, g);
                    }
                }
                grads
            })
            .collect();

        let mut grads = vec![vec![0.0; p_len]; n_cells];
        for part in partials {
            for (cell, g) in part.into_iter().enumerate() {
                if !g.is_empty() {
                    for (a, b) in grads[cell].iter_mut().zip(&g) {
                        *a += b;
                    }
                }
            }
        }
        if let Some(row) = wd_row {
            let lambda = self.config.weight_decay;
            let cell = row * cols + cols - 1;
            for (g, t) in grads[cell].iter_mut().zip(&self.state.theta) {
                *g = -lambda * t;
            }
        }
        for (cell, g) in grads.iter().enumerate() {
            if let Some(v) = g.iter().find(|v| !v.is_finite()) {
                return Err(LearnError::NonFinite {
                    step: Some(step),
                    channel: format!("gradient of {}", self.channels[cell / cols].id),
                    value: *v,
                });
            }
        }
        Ok(grads)
    }

    /// Phase 4: the step's training reward, gold rate and samples per source, and the chained
    /// digest over its tasks, answers, rewards, metric and parameters; advances the state.
    fn record(&mut self, step: u64, rollouts: &[TaskRollout], metric_after: f64) -> StepRecord {
        let c_rew = self.env.channels.len();
        let g_count = self.env.spec.spec().run.responses_per_task as usize;
        let mut train_reward = vec![0.0; c_rew];
        let mut samples_per_source = vec![0u64; self.columns()];
        let mut gold_sum = 0.0;
        let mut d = Digest::new();
        d.str(&self.state.digest).u64(step);
        for r in rollouts {
            samples_per_source[r.source] += g_count as u64;
            r.task.key.digest_into(&mut d);
            for (g, v) in r.values.iter().enumerate() {
                d.i64(*v).f64(r.gold[g]);
                gold_sum += r.gold[g];
            }
            d.f64s(&r.rewards);
            for row in r.rewards.chunks(c_rew.max(1)) {
                for (acc, v) in train_reward.iter_mut().zip(row) {
                    *acc += v;
                }
            }
        }
        let n = (rollouts.len() * g_count) as f64;
        train_reward.iter_mut().for_each(|x| *x /= n);
        d.f64(metric_after).f64s(&train_reward).f64s(&self.state.theta);
        self.state.digest = d.hex();
        self.state.metric = metric_after;
        self.state.step += 1;
        StepRecord { train_reward, train_gold: gold_sum / n, samples_per_source }
    }
}

/// What [`Trainer::record`] reports of a step.
struct StepRecord {
    train_reward: Vec<f64>,
    train_gold: f64,
    samples_per_source: Vec<u64>,
}

fn slot(grads: &mut [Vec<f64>], cell: usize, len: usize) -> &mut [f64] {
    if grads[cell].is_empty() {
        grads[cell] = vec![0.0; len];
    }
    &mut grads[cell]
}

fn check(z: &[f64], step: u64, channel: &str) -> Result<(), LearnError> {
    match z.iter().find(|v| !v.is_finite()) {
        Some(v) => Err(LearnError::NonFinite { step: Some(step), channel: channel.into(), value: *v }),
        None => Ok(()),
    }
}

/// Per-sample, per-channel advantages of one group of `g_count` samples (rewards and result
/// flat `[g][c]`, one weight per channel), with the centred
/// rewards `r − mean` (flat `[g][c]`) and the per-channel normaliser `1/(σ+ε)` (or 1),
/// so that `A = w · centred · inv_sigma` and `∂A/∂w = centred · inv_sigma`.
pub fn group_advantages(
    normalization: Normalization,
    rewards: &[f64],
    weights: &[f64],
    g_count: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let c_count = weights.len();
    let mut adv = vec![0.0; g_count * c_count];
    let mut centred_all = vec![0.0; g_count * c_count];
    let mut inv_sigma = vec![0.0; c_count];
    let mean = |c: usize| (0..g_count).map(|g| rewards[g * c_count + c]).sum::<f64>() / g_count as f64;
    let means: Vec<f64> = (0..c_count).map(mean).collect();
    let std_of = |xs: &mut dyn Iterator<Item = f64>, m: f64| -> f64 {
        let v: f64 = xs.map(|x| (x - m) * (x - m)).sum::<f64>() / g_count as f64;
        v.sqrt()
    };
    let shared_sigma = if normalization == Normalization::Shared {
        let combined: Vec<f64> = (0..g_count)
            .map(|g| (0..c_count).map(|c| weights[c] * rewards[g * c_count + c]).sum::<f64>())
            .collect();
        let m = combined.iter().sum::<f64>() / g_count as f64;
        std_of(&mut combined.iter().copied(), m)
    } else {
        0.0
    };
    for c in 0..c_count {
        // A channel that is constant over the group carries no signal; its advantage is
        // exactly zero (the float mean of equal values need not equal them).
        let first = rewards[c];
        if (0..g_count).all(|g| rewards[g * c_count + c] == first) {
            continue;
        }
        // Dividing by σ + ε, or multiplying by 1 when there is no σ: the division is kept
        // as a division so the shared and per-channel results match an ordinary GRPO
        // implementation to the last bit.
        let sigma = match normalization {
            Normalization::Shared => Some(shared_sigma),
            Normalization::PerChannel => {
                Some(std_of(&mut (0..g_count).map(|g| rewards[g * c_count + c]), means[c]))
            }
            Normalization::None => None,
        };
        inv_sigma[c] = sigma.map_or(1.0, |s| 1.0 / (s + SIGMA_EPS));
        for g in 0..g_count {
            centred_all[g * c_count + c] = rewards[g * c_count + c] - means[c];
            let centred = weights[c] * (rewards[g * c_count + c] - means[c]);
            adv[g * c_count + c] = match sigma {
                Some(s) => centred / (s + SIGMA_EPS),
                None => centred,
            };
        }
    }
    (adv, centred_all, inv_sigma)
}
