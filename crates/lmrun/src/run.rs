//! [`LmRun`]: one language-model training run — sample, score, split, step, measure.

use std::ops::ControlFlow;

use gristmill_core::digest::Digest;
use gristmill_core::piece::ScoreKey;
use gristmill_core::policy::Response;
use gristmill_core::rng::{stream, KeyedRng, Purpose};
use gristmill_core::task::Task;
use gristmill_engine::{sample_index, Environment};
use gristmill_learn::group_advantages;
use gristmill_learn::optim::owen::MAX_CELLS;
use gristmill_learn::optim::SplitOptimizer;
use gristmill_lm::train::{
    GradMethod, GradRequest, Normalization as TokenNormalization, Sample, TrainableLm,
};
use gristmill_lm::{Message, SamplingParams};
use gristmill_measure::{Conflict, CreditLedger, Rule, StepContribution, StepCredit};
use gristmill_run::{RunSink, Trained};
use rayon::prelude::*;

use crate::checkpoint::LmCheckpoint;
use crate::config::{LmConfig, ModelChoice};
use crate::LmRunError;

/// The keyed stream of the gold suite's sampling uniforms: the same at every evaluation
/// (common random numbers), keyed by the eval seed, so `M(θ)` and `M(θ')` differ only where
/// the policy's change moves a sample across an inverse-CDF boundary.
const GOLD_SAMPLES: Purpose = Purpose::named("lm-gold-samples");

/// Samples per backward pass of the metrics' gradients (bounds their activation memory).
const GRAD_CHUNK: usize = 8;

/// The column of contributions that belong to no source (weight decay).
pub const GLOBAL_COLUMN: &str = "(global)";

/// One finished step.
#[derive(Debug, Clone)]
pub struct LmStep {
    /// The step number (0-based).
    pub step: u64,
    /// Metrics as stored: `train_gold`, `reward.<channel>`, `split_error`, and with credit
    /// `gold`, `gold_se`, `loglik`, `residual`, `credit.<row>`, `loglik.residual`,
    /// `loglik.credit.<row>`, `credit_source.<column>` (cumulative).
    pub metrics: Vec<(String, f64)>,
    /// The step as the gold ledger credited it.
    pub gold: Option<StepCredit>,
    /// The step as the log-likelihood ledger credited it.
    pub loglik: Option<StepCredit>,
    /// `‖Σ_cells Δθ_cell − Δθ‖∞ / ‖Δθ‖∞` of this step.
    pub split_error: f64,
    /// The step's sampled responses (text), in sample order.
    pub responses: Vec<String>,
}

/// The fixed gold suite: tasks, their prompts, and their gold completions.
struct Suite {
    tasks: Vec<Task>,
    prompts: Vec<Vec<u32>>,
    gold: Vec<Sample>,
}

/// The gold metric estimated at one parameter vector.
#[derive(Clone)]
struct GoldEval {
    /// Gold score of sample `k` of task `i` at `[i·K + k]`.
    values: Vec<f64>,
    mean: f64,
    /// `∇M` by the score function with a leave-one-out baseline (when asked).
    grad: Option<Vec<f64>>,
}

/// What is known at the current parameters (cached between steps).
#[derive(Clone)]
struct AtTheta {
    gold: GoldEval,
    loglik: Option<f64>,
}

/// A language-model training run. See the [crate doc](crate).
pub struct LmRun {
    env: Environment,
    config: LmConfig,
    model: TrainableLm,
    optimizer: SplitOptimizer,
    rows: Vec<String>,
    /// Per reward row: its channel, and for a part of a piece (a rubric judge's item) the
    /// part's index and share `a_i` of the channel's reward.
    reward_rows: Vec<(usize, Option<(usize, f64)>)>,
    columns: Vec<String>,
    kl_row: Option<usize>,
    wd_row: Option<usize>,
    suite: Suite,
    rule: Rule,
    steps_done: u64,
    digest: String,
    reward_sums: Vec<f64>,
    gold_before: f64,
    loglik_before: Option<f64>,
    gold_ledger: Option<CreditLedger>,
    loglik_ledger: Option<CreditLedger>,
    max_split_error: f64,
    at: Option<AtTheta>,
}

impl std::fmt::Debug for LmRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmRun").field("steps_done", &self.steps_done).field("rows", &self.rows).finish()
    }
}

fn relative_inf(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let err = a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    if scale > 0.0 {
        err / scale
    } else {
        err
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl LmRun {
    /// A run of `env` at step 0.
    ///
    /// # Errors
    /// [`LmRunError`]: the model (missing file, unknown LoRA target), an unsupported piece
    /// (curriculum, hint), a prompt longer than the context.
    pub fn new(env: Environment, config: LmConfig) -> Result<LmRun, LmRunError> {
        let mut run = LmRun::build(env, config)?;
        let credit = run.gold_ledger.is_some();
        let at = run.at_theta(credit)?;
        run.gold_before = at.gold.mean;
        run.loglik_before = at.loglik;
        let mut d = Digest::new();
        d.str(run.env.spec.hash()).u64(run.env.seed()).str(&run.config.describe()).f64s(&run.model.params());
        run.digest = d.hex();
        Ok(run)
    }

    /// A run resumed from a checkpoint's bytes (from the same spec).
    ///
    /// # Errors
    /// [`LmRunError::Checkpoint`] for bytes of another format or another spec (parameter
    /// count, optimizer layout, ledger rows), and the errors of [`new`](LmRun::new).
    pub fn resume(env: Environment, config: LmConfig, bytes: &[u8]) -> Result<LmRun, LmRunError> {
        let c = LmCheckpoint::decode(bytes).map_err(|e| LmRunError::Checkpoint(e.to_string()))?;
        let mut run = LmRun::build(env, config)?;
        let bad = |why: String| Err(LmRunError::Checkpoint(why));
        if c.params.len() != run.model.num_params() {
            return bad(format!(
                "the checkpoint has {} trainable parameters, the spec's model {}",
                c.params.len(),
                run.model.num_params()
            ));
        }
        if c.optimizer.layout() != run.optimizer.layout() || c.optimizer.parameters() != c.params.len() {
            return bad("the checkpoint's optimizer does not fit the spec's credit cells".into());
        }
        if c.reward_sums.len() != run.reward_sums.len() {
            return bad(format!(
                "the checkpoint has {} reward channels, the spec {}",
                c.reward_sums.len(),
                run.reward_sums.len()
            ));
        }
        match (&c.gold, &c.loglik, run.gold_ledger.is_some()) {
            (Some(g), Some(l), true) => {
                let g = CreditLedger::from_state(g.clone())?;
                if g.rows() != run.rows.as_slice() || g.columns() != run.columns.as_slice() {
                    return bad("the checkpoint's credit rows or columns differ from the spec's".into());
                }
                run.gold_ledger = Some(g);
                run.loglik_ledger = Some(CreditLedger::from_state(l.clone())?);
            }
            (None, None, false) => {}
            _ => {
                return bad(
                    "the checkpoint and the spec disagree on whether the run keeps in-run credit".into()
                )
            }
        }
        run.model.set_params(&c.params).map_err(|e| LmRunError::model(None, "checkpoint parameters", e))?;
        run.optimizer = c.optimizer;
        run.steps_done = c.steps_done;
        run.digest = c.digest;
        run.reward_sums = c.reward_sums;
        run.gold_before = c.gold_before;
        run.loglik_before = c.loglik_before;
        run.max_split_error = c.max_split_error;
        Ok(run)
    }

    /// Model, optimizer, credit layout and gold suite, without evaluating anything.
    fn build(env: Environment, config: LmConfig) -> Result<LmRun, LmRunError> {
        for p in env.pieces.iter() {
            if !p.kind.is_reward() {
                return Err(LmRunError::Unsupported(format!(
                    "piece `{}` is a {}; the language-model trainer supports reward pieces only \
                     (curriculum and hint credit need importance weights it does not compute yet)",
                    p.id,
                    p.kind.name()
                )));
            }
        }
        if !config.gold_completion.contains("{gold}") {
            return Err(LmRunError::Config(format!(
                "policy.gold_completion `{}` has no `{{gold}}` placeholder",
                config.gold_completion
            )));
        }
        if let Some(rest) = config.gold_completion.replace("{gold}", "").find(['{', '}']) {
            let _ = rest;
            return Err(LmRunError::Config(format!(
                "policy.gold_completion `{}`: the only template variable is `{{gold}}`",
                config.gold_completion
            )));
        }
        let model = match &config.model {
            ModelChoice::Tiny(t) => TrainableLm::tiny(t, &config.trainable),
            ModelChoice::File(path) => TrainableLm::load(path, &config.trainable),
        }
        .map_err(|e| {
            LmRunError::model(None, "policy.model / policy.lora_targets / policy.unfrozen_layers", e)
        })?;
        // One credit row per reward channel, or per part of a channel whose reward is a
        // weighted sum of named parts (a rubric judge's items).
        let mut rows = Vec::new();
        let mut reward_rows = Vec::new();
        for (ch, id) in env.channel_ids().into_iter().enumerate() {
            let parts = env.pieces[env.channels[ch]].scorer().map(|s| s.sub_weights()).unwrap_or_default();
            if parts.is_empty() {
                rows.push(id);
                reward_rows.push((ch, None));
            } else {
                for (k, (part, share)) in parts.into_iter().enumerate() {
                    rows.push(format!("{id}/{part}"));
                    reward_rows.push((ch, Some((k, share))));
                }
            }
        }
        let kl_row = (config.kl > 0.0).then(|| {
            rows.push("kl".into());
            rows.len() - 1
        });
        let wd_row = (config.weight_decay > 0.0).then(|| {
            rows.push("weight_decay".into());
            rows.len() - 1
        });
        if reward_rows.is_empty() {
            return Err(LmRunError::Unsupported("the spec has no reward piece: nothing to train on".into()));
        }
        let mut columns: Vec<String> = env.spec.spec().sources.iter().map(|s| s.id.clone()).collect();
        columns.push(GLOBAL_COLUMN.into());
        if rows.len() * columns.len() > MAX_CELLS {
            return Err(LmRunError::Unsupported(format!(
                "{} credit rows × {} columns = {} cells; the split optimizer takes at most {MAX_CELLS}",
                rows.len(),
                columns.len(),
                rows.len() * columns.len()
            )));
        }
        let optimizer = SplitOptimizer::new(
            config.optimizer,
            config.learning_rate,
            rows.len(),
            columns.len(),
            model.num_params(),
        );
        let tasks = env.eval_suite()?;
        let mut prompts = Vec::with_capacity(tasks.len());
        let mut gold = Vec::with_capacity(tasks.len());
        for (i, task) in tasks.iter().enumerate() {
            let prompt = prompt_tokens(&model, task)
                .map_err(|e| LmRunError::model(None, &format!("gold task {i}"), e))?;
            let source = env.sources[task.key.source as usize].as_ref();
            let gold_text = match &task.body.reference {
                None => source.render_answer(task.gold()),
                Some(r) => {
                    let mut s = String::new();
                    if r.render_gold_into(&mut s).is_err() {
                        s = r.gold_text().into_owned();
                    }
                    s
                }
            };
            let mut completion =
                model.tokenizer().encode(&config.gold_completion.replace("{gold}", &gold_text));
            completion.extend(model.eos());
            gold.push(Sample { prompt: prompt.clone(), completion });
            prompts.push(prompt);
        }
        let credit = config.credit_nodes > 0;
        let ledger = || CreditLedger::new(rows.clone(), columns.clone());
        let channels = env.channels.len();
        Ok(LmRun {
            rule: Rule::gauss_legendre(config.credit_nodes.max(1)),
            gold_ledger: credit.then(ledger),
            loglik_ledger: credit.then(ledger),
            env,
            config,
            model,
            optimizer,
            rows,
            reward_rows,
            columns,
            kl_row,
            wd_row,
            suite: Suite { tasks, prompts, gold },
            steps_done: 0,
            digest: String::new(),
            reward_sums: vec![0.0; channels],
            gold_before: f64::NAN,
            loglik_before: None,
            max_split_error: 0.0,
            at: None,
        })
    }

    /// The environment.
    pub fn env(&self) -> &Environment {
        &self.env
    }

    /// The training settings.
    pub fn config(&self) -> &LmConfig {
        &self.config
    }

    /// The model being trained.
    pub fn model(&self) -> &TrainableLm {
        &self.model
    }

    /// Steps done.
    pub fn steps_done(&self) -> u64 {
        self.steps_done
    }

    /// Credit rows: the reward channels, then `kl` and `weight_decay` when on.
    pub fn rows(&self) -> &[String] {
        &self.rows
    }

    /// Credit columns: the sources, then `(global)`.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// `M(θ₀)`, estimated.
    pub fn gold_before(&self) -> f64 {
        self.gold_before
    }

    /// `L(θ₀)` (the log-likelihood metric), when credit is on.
    pub fn loglik_before(&self) -> Option<f64> {
        self.loglik_before
    }

    /// The ledger of the estimated gold metric (credit on).
    pub fn gold_ledger(&self) -> Option<&CreditLedger> {
        self.gold_ledger.as_ref()
    }

    /// The ledger of the log-likelihood metric (credit on).
    pub fn loglik_ledger(&self) -> Option<&CreditLedger> {
        self.loglik_ledger.as_ref()
    }

    /// Largest relative split error of any step so far.
    pub fn max_split_error(&self) -> f64 {
        self.max_split_error
    }

    /// Mean training reward per channel over the steps done.
    pub fn mean_rewards(&self) -> Vec<f64> {
        let n = self.steps_done.max(1) as f64;
        self.reward_sums.iter().map(|s| s / n).collect()
    }

    /// `M` now, its standard error over the suite's samples, and `L` when credit is on.
    ///
    /// # Errors
    /// The model's errors (a prompt too long…).
    pub fn metric_now(&mut self) -> Result<(f64, f64, Option<f64>), LmRunError> {
        let credit = self.gold_ledger.is_some();
        let at = self.at_theta(credit)?;
        Ok((at.gold.mean, standard_error(&at.gold.values), at.loglik))
    }

    /// The chained digest over every step (samples, rewards, parameters), with the credit
    /// tables when kept.
    pub fn digest(&self) -> String {
        let mut d = Digest::new();
        d.str(&self.digest);
        for l in [&self.gold_ledger, &self.loglik_ledger].into_iter().flatten() {
            d.f64s(l.cells()).f64(l.delta_metric());
        }
        d.hex()
    }

    /// The chained digest of the steps alone (what a checkpoint records).
    pub fn step_digest(&self) -> &str {
        &self.digest
    }

    /// The checkpoint now.
    pub fn checkpoint(&self) -> LmCheckpoint {
        LmCheckpoint {
            steps_done: self.steps_done,
            params: self.model.params(),
            optimizer: self.optimizer.clone(),
            digest: self.digest.clone(),
            reward_sums: self.reward_sums.clone(),
            gold_before: self.gold_before,
            loglik_before: self.loglik_before,
            gold: self.gold_ledger.as_ref().map(|l| l.state().clone()),
            loglik: self.loglik_ledger.as_ref().map(|l| l.state().clone()),
            max_split_error: self.max_split_error,
        }
    }

    fn at_theta(&mut self, grad: bool) -> Result<AtTheta, LmRunError> {
        let step = self.steps_done;
        match &self.at {
            Some(at) if !grad || at.gold.grad.is_some() => Ok(at.clone()),
            _ => {
                let gold = self.gold_eval(grad, step)?;
                let loglik =
                    if self.gold_ledger.is_some() { Some(self.loglik(false, step)?.0) } else { None };
                let at = AtTheta { gold, loglik };
                self.at = Some(at.clone());
                Ok(at)
            }
        }
    }

    /// `M` at the current parameters: `K` samples of every gold task from the fixed
    /// uniforms, at temperature 1 and no top-p (the policy's own distribution, so that the
    /// score function `∇log π` is the gradient of the sampling distribution), and optionally
    /// `∇M = (1/EK) Σ_{i,k} (g_ik − b_ik) ∇log π(y_ik|x_i)` with the leave-one-out baseline
    /// `b_ik` = mean gold of task `i`'s other `K − 1` samples (unbiased: `b_ik` does not
    /// depend on `y_ik`).
    fn gold_eval(&self, grad: bool, step: u64) -> Result<GoldEval, LmRunError> {
        let (e, k) = (self.suite.tasks.len(), self.config.eval_samples);
        let eval_seed = self.env.spec.spec().eval.seed;
        let mut rngs: Vec<KeyedRng> =
            (0..(e * k) as u64).map(|i| stream(eval_seed, GOLD_SAMPLES, 0, i)).collect();
        let params = SamplingParams { temperature: 1.0, top_p: 1.0, ..self.config.sampling.clone() };
        let gens = self
            .model
            .generate(&self.suite.prompts, &params, &mut rngs)
            .map_err(|err| LmRunError::model(Some(step), "sampling the gold suite", err))?;
        let values: Vec<f64> = gens
            .par_iter()
            .enumerate()
            .map(|(j, g)| {
                let task = &self.suite.tasks[j / k];
                let source = self.env.sources[task.key.source as usize].as_ref();
                self.env.gold_score(task, &Response::from_text(source, g.text.clone()))
            })
            .collect();
        let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
        let grad = if grad {
            let n = (e * k) as f64;
            let weights: Vec<Vec<f64>> = values
                .iter()
                .enumerate()
                .map(|(j, g)| {
                    let i = j / k;
                    let others: f64 = values[i * k..(i + 1) * k].iter().sum::<f64>() - g;
                    vec![(g - others / (k - 1) as f64) / n]
                })
                .collect();
            // Only samples with a non-zero weight need a backward pass: a task whose K
            // samples all score alike contributes nothing (the baseline equals the score).
            let (samples, weights): (Vec<Sample>, Vec<f64>) = gens
                .iter()
                .enumerate()
                .map(|(j, g)| {
                    (
                        Sample { prompt: self.suite.prompts[j / k].clone(), completion: g.token_ids.clone() },
                        weights[j][0],
                    )
                })
                .filter(|(_, w)| *w != 0.0)
                .unzip();
            Some(self.weighted_gradient(&samples, &weights, step, "∇M on the gold suite")?.0)
        } else {
            None
        };
        Ok(GoldEval { values, mean, grad })
    }

    /// `L = (1/E) Σ_i log π(gold completion_i | x_i)` at the current parameters, and `∇L`.
    fn loglik(&self, grad: bool, step: u64) -> Result<(f64, Option<Vec<f64>>), LmRunError> {
        let e = self.suite.gold.len();
        let fail = |err| LmRunError::model(Some(step), "the gold completions' log-likelihood", err);
        if grad {
            let weights = vec![1.0 / e as f64; e];
            let (g, lps) = self.weighted_gradient(
                &self.suite.gold,
                &weights,
                step,
                "the gold completions' log-likelihood",
            )?;
            let l = lps.iter().map(|t| t.iter().sum::<f64>()).sum::<f64>() / e as f64;
            Ok((l, Some(g)))
        } else {
            let lps = self.model.logprobs(&self.suite.gold).map_err(fail)?;
            Ok((lps.iter().map(|t| t.iter().sum::<f64>()).sum::<f64>() / e as f64, None))
        }
    }

    /// `Σ_j w_j ∇log π(y_j | x_j)` and every sample's token log-probs, in chunks of
    /// [`GRAD_CHUNK`] samples (one backward each, summed in chunk order), so the activations
    /// held at once are a chunk's, not the whole suite's.
    fn weighted_gradient(
        &self,
        samples: &[Sample],
        weights: &[f64],
        step: u64,
        what: &str,
    ) -> Result<(Vec<f64>, Vec<Vec<f64>>), LmRunError> {
        let mut total = vec![0.0; self.model.num_params()];
        let mut logprobs = Vec::with_capacity(samples.len());
        for (chunk, w) in samples.chunks(GRAD_CHUNK).zip(weights.chunks(GRAD_CHUNK)) {
            let w: Vec<Vec<f64>> = w.iter().map(|x| vec![*x]).collect();
            let cg = self
                .model
                .channel_gradients(&GradRequest {
                    samples: chunk,
                    weights: &w,
                    normalization: TokenNormalization::Sequence,
                    kl_coef: None,
                    method: GradMethod::ChannelBatched,
                })
                .map_err(|err| LmRunError::model(Some(step), what, err))?;
            if let Some(g) = cg.channels.first() {
                total.iter_mut().zip(g).for_each(|(t, x)| *t += x);
            }
            logprobs.extend(cg.logprobs);
        }
        Ok((total, logprobs))
    }

    fn cell(&self, row: usize, column: usize) -> usize {
        row * self.columns.len() + column
    }

    /// One training step, credited when the run keeps credit. On error nothing changes.
    ///
    /// # Errors
    /// [`LmRunError`] naming the step: a sample longer than the context, a non-finite
    /// reward, gradient or parameter, the ledger's refusals.
    pub fn step(&mut self) -> Result<LmStep, LmRunError> {
        let t = self.steps_done;
        let credit = self.gold_ledger.is_some();
        let before = if credit { Some(self.at_theta(true)?) } else { None };
        let spec = self.env.spec.spec();
        let (b, g) = (spec.run.tasks_per_step as usize, spec.run.responses_per_task as usize);
        let seed = self.env.seed();
        let n_src = spec.sources.len();
        let mixture = self.env.mixture();
        let tasks: Vec<Task> = (0..b as u64)
            .into_par_iter()
            .map(|i| self.env.training_task(&mixture, None, seed, t, i))
            .collect::<Result<_, _>>()?;
        let prompts: Vec<Vec<u32>> = tasks
            .iter()
            .enumerate()
            .map(|(i, task)| {
                prompt_tokens(&self.model, task)
                    .map_err(|e| LmRunError::model(Some(t), &format!("prompt of task {i}"), e))
            })
            .collect::<Result<_, _>>()?;
        let mut rngs: Vec<KeyedRng> =
            (0..(b * g) as u64).map(|j| stream(seed, Purpose::SAMPLE, t, j)).collect();
        let gens = self
            .model
            .generate(&prompts, &self.config.sampling, &mut rngs)
            .map_err(|e| LmRunError::model(Some(t), "sampling", e))?;

        // Score every response with every channel, and against gold.
        let c = self.env.channels.len();
        let ids = self.env.channel_ids();
        let has_parts: Vec<bool> =
            (0..c).map(|ch| self.reward_rows.iter().any(|r| r.0 == ch && r.1.is_some())).collect();
        let scored: Vec<(Vec<f64>, f64, Vec<Vec<f64>>)> = gens
            .par_iter()
            .enumerate()
            .map(|(j, gen)| {
                let task = &tasks[j / g];
                let source = self.env.sources[task.key.source as usize].as_ref();
                let response = Response::from_text(source, gen.text.clone());
                let key = ScoreKey { seed, step: t, index: sample_index(j / g, j % g, g) };
                let rewards = self.env.score(task, &response, key);
                // The parts come from the verdicts `score` just cached (no second request).
                let parts = (0..c)
                    .map(|ch| match (has_parts[ch], self.env.coalition.on[self.env.channels[ch]]) {
                        (true, true) => self.env.pieces[self.env.channels[ch]]
                            .scorer()
                            .map(|s| s.sub_scores(task, &response).into_iter().map(|(_, v)| v).collect())
                            .unwrap_or_default(),
                        _ => Vec::new(),
                    })
                    .collect();
                (rewards, self.env.gold_score(task, &response), parts)
            })
            .collect();
        for (j, (r, _, _)) in scored.iter().enumerate() {
            if let Some((ch, v)) = r.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(LmRunError::NonFinite {
                    step: t,
                    what: format!("reward of channel `{}` for sample {j}", ids[ch]),
                    value: *v,
                });
            }
            if gens[j].token_ids.is_empty() {
                return Err(LmRunError::EmptyGeneration { step: t, sample: j });
            }
        }

        // Per-channel group advantages, placed in the column of the sample's source.
        let channel_weights = self.env.channel_weights();
        let token_batch = self.config.token_normalization == TokenNormalization::TokenBatch;
        let scale = if token_batch { 1.0 } else { 1.0 / (b * g) as f64 };
        // A part's advantage is its share of the channel's: `w_c a_i (part_i − mean part_i)/σ_c`
        // with the channel's own σ, so the parts' advantages sum to the channel's (the
        // trajectory is the one the channel alone would give) and each is credited.
        let rc = self.reward_rows.len();
        let mut weights = vec![vec![0.0; rc * n_src]; b * g];
        for i in 0..b {
            let rewards: Vec<f64> = (0..g).flat_map(|k| scored[i * g + k].0.iter().copied()).collect();
            let (adv, _, inv_sigma) =
                group_advantages(self.config.normalization, &rewards, &channel_weights, g);
            let s = tasks[i].key.source as usize;
            for (row, &(ch, part)) in self.reward_rows.iter().enumerate() {
                match part {
                    None => {
                        for k in 0..g {
                            weights[i * g + k][row * n_src + s] = adv[k * c + ch] * scale;
                        }
                    }
                    Some((p, share)) => {
                        let value = |k: usize| scored[i * g + k].2[ch].get(p).copied().unwrap_or(0.0);
                        let mean = (0..g).map(value).sum::<f64>() / g as f64;
                        if (0..g).all(|k| value(k) == value(0)) {
                            continue; // no signal: exactly zero, as for a constant channel
                        }
                        for k in 0..g {
                            weights[i * g + k][row * n_src + s] =
                                channel_weights[ch] * share * (value(k) - mean) * inv_sigma[ch] * scale;
                        }
                    }
                }
            }
        }
        let samples: Vec<Sample> = gens
            .iter()
            .enumerate()
            .map(|(j, gen)| Sample { prompt: prompts[j / g].clone(), completion: gen.token_ids.clone() })
            .collect();
        let kl_all = (self.config.kl > 0.0 && n_src == 1).then_some(self.config.kl * scale);
        let cg = self
            .model
            .channel_gradients(&GradRequest {
                samples: &samples,
                weights: &weights,
                normalization: self.config.token_normalization,
                kl_coef: kl_all,
                method: GradMethod::ChannelBatched,
            })
            .map_err(|e| LmRunError::model(Some(t), "the policy gradient", e))?;
        let p_len = self.model.num_params();
        let mut grads: Vec<Vec<f64>> = vec![Vec::new(); self.rows.len() * self.columns.len()];
        for (idx, gch) in cg.channels.into_iter().enumerate() {
            let (ch, s) = (idx / n_src, idx % n_src);
            let cell = self.cell(ch, s);
            grads[cell] = gch;
        }
        let mut kl_value = None;
        if let Some(row) = self.kl_row {
            if let Some(kl) = cg.kl {
                kl_value = Some(kl.value);
                grads[self.cell(row, 0)] = kl.grad;
            } else {
                // Several sources: the KL channel of each source's samples on their own; with
                // one mean over the batch's tokens, rescaled from the source's token count.
                let total_tokens: usize = samples.iter().map(|s| s.completion.len()).sum();
                let mut value = 0.0;
                for s in 0..n_src {
                    let own: Vec<Sample> = (0..b * g)
                        .filter(|&j| tasks[j / g].key.source as usize == s)
                        .map(|j| samples[j].clone())
                        .collect();
                    if own.is_empty() {
                        continue;
                    }
                    let tokens: usize = own.iter().map(|s| s.completion.len()).sum();
                    let coef = if token_batch {
                        self.config.kl * tokens as f64 / total_tokens as f64
                    } else {
                        self.config.kl * scale
                    };
                    let zero = vec![vec![0.0]; own.len()];
                    let kg = self
                        .model
                        .channel_gradients(&GradRequest {
                            samples: &own,
                            weights: &zero,
                            normalization: self.config.token_normalization,
                            kl_coef: Some(coef),
                            method: GradMethod::ChannelBatched,
                        })
                        .map_err(|e| LmRunError::model(Some(t), "the KL channel", e))?;
                    if let Some(kl) = kg.kl {
                        value += kl.value * coef / self.config.kl;
                        grads[self.cell(row, s)] = kl.grad;
                    }
                }
                kl_value = Some(value);
            }
        }
        for (cell, gr) in grads.iter().enumerate() {
            if let Some(v) = gr.iter().find(|v| !v.is_finite()) {
                return Err(LmRunError::NonFinite {
                    step: t,
                    what: format!("gradient of credit row `{}`", self.rows[cell / self.columns.len()]),
                    value: *v,
                });
            }
        }

        // The split step: Adam's (or SGD's) update split over the cells, AdamW's decay as
        // its own cell.
        let theta = self.model.params();
        let proposal = self.optimizer.propose(&grads);
        let mut cells = proposal.cells;
        let mut real = match proposal.real {
            Some(r) => r,
            None => (0..p_len).map(|x| cells.iter().map(|cl| cl[x]).sum()).collect(),
        };
        if let Some(row) = self.wd_row {
            let k = -self.config.learning_rate * self.config.weight_decay;
            let decay: Vec<f64> = theta.iter().map(|x| k * x).collect();
            real.iter_mut().zip(&decay).for_each(|(r, d)| *r += d);
            let cell = self.cell(row, n_src);
            cells[cell] = decay;
        }
        let summed: Vec<f64> = (0..p_len).map(|x| cells.iter().map(|cl| cl[x]).sum()).collect();
        let split_error = relative_inf(&summed, &real);
        let theta_after: Vec<f64> = theta.iter().zip(&real).map(|(a, d)| a + d).collect();
        if let Some((x, v)) = theta_after.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(LmRunError::NonFinite {
                step: t,
                what: format!("parameter {x} after the step"),
                value: *v,
            });
        }

        // Path integral of the log-likelihood metric along the step (exact up to quadrature),
        // and the gold metric's trapezoid on its estimated gradient at both ends.
        let mut loglik_cells = None;
        let mut loglik_conflict = None;
        if credit {
            let mut lc = vec![0.0; cells.len()];
            let mut mean_grad = vec![0.0; p_len];
            for (s, w) in self.rule.nodes.clone().iter().zip(self.rule.weights.clone()) {
                let point: Vec<f64> = theta.iter().zip(&real).map(|(a, d)| a + s * d).collect();
                self.set_params(&point, t)?;
                let grad = self.loglik(true, t);
                let grad = match grad {
                    Ok((_, Some(g))) => g,
                    Ok((_, None)) => vec![0.0; p_len],
                    Err(e) => {
                        self.set_params(&theta, t)?;
                        return Err(e);
                    }
                };
                for (i, d) in cells.iter().enumerate() {
                    lc[i] += w * dot(&grad, d);
                }
                mean_grad.iter_mut().zip(&grad).for_each(|(m, g)| *m += w * g);
            }
            loglik_conflict = Some(conflict(&cells, &mean_grad, self.rows.len(), self.columns.len()));
            loglik_cells = Some(lc);
        }
        self.set_params(&theta_after, t)?;
        self.at = None;
        let after = if credit {
            match self.at_theta(true) {
                Ok(a) => Some(a),
                Err(e) => {
                    self.set_params(&theta, t)?;
                    self.at = before.clone();
                    return Err(e);
                }
            }
        } else {
            None
        };
        self.optimizer.commit();

        // Record: metrics, ledgers, chained digest.
        let mut metrics = Vec::new();
        let train_gold = scored.iter().map(|(_, gold, _)| gold).sum::<f64>() / (b * g) as f64;
        metrics.push(("train_gold".to_string(), train_gold));
        let mut mean_reward = vec![0.0; c];
        for (r, _, _) in &scored {
            mean_reward.iter_mut().zip(r).for_each(|(m, v)| *m += v / (b * g) as f64);
        }
        for (id, r) in ids.iter().zip(&mean_reward) {
            metrics.push((format!("reward.{id}"), *r));
        }
        self.reward_sums.iter_mut().zip(&mean_reward).for_each(|(s, r)| *s += r);
        metrics.push(("split_error".to_string(), split_error));
        if let Some(v) = kl_value {
            metrics.push(("kl".to_string(), v));
        }
        self.max_split_error = self.max_split_error.max(split_error);
        let (mut gold_credit, mut loglik_credit) = (None, None);
        if let (Some(before), Some(after)) = (&before, &after) {
            let (g0, g1) =
                (before.gold.grad.as_ref().expect("grad"), after.gold.grad.as_ref().expect("grad"));
            let mid: Vec<f64> = g0.iter().zip(g1).map(|(a, b)| 0.5 * (a + b)).collect();
            let gold_cells: Vec<f64> = cells.iter().map(|d| dot(&mid, d)).collect();
            let diffs: Vec<f64> =
                after.gold.values.iter().zip(&before.gold.values).map(|(a, b)| a - b).collect();
            let gl = self.gold_ledger.as_mut().expect("credit on");
            let credited = gl.observe(StepContribution {
                step: t,
                metric_before: before.gold.mean,
                metric_after: after.gold.mean,
                delta_se: Some(standard_error(&diffs)),
                cells: gold_cells,
                conflict: Some(conflict(&cells, &mid, self.rows.len(), self.columns.len())),
            })?;
            metrics.push(("gold".to_string(), after.gold.mean));
            metrics.push(("gold_se".to_string(), standard_error(&after.gold.values)));
            metrics.push(("residual".to_string(), credited.residual));
            metrics.push(("residual_se".to_string(), credited.delta_se.unwrap_or(0.0)));
            for (id, total) in gl.rows().iter().zip(&credited.rows) {
                metrics.push((format!("credit.{id}"), *total));
            }
            let cols = self.columns.len();
            for (ci, id) in self.columns.iter().enumerate() {
                let total: f64 = gl.cells().iter().skip(ci).step_by(cols).sum();
                metrics.push((format!("credit_source.{id}"), total));
            }
            gold_credit = Some(credited);
            let ll = self.loglik_ledger.as_mut().expect("credit on");
            let (l0, l1) = (before.loglik.expect("loglik"), after.loglik.expect("loglik"));
            let credited = ll.observe(StepContribution {
                step: t,
                metric_before: l0,
                metric_after: l1,
                delta_se: None,
                cells: loglik_cells.expect("credit on"),
                conflict: loglik_conflict,
            })?;
            metrics.push(("loglik".to_string(), l1));
            metrics.push(("loglik.residual".to_string(), credited.residual));
            for (id, total) in ll.rows().iter().zip(&credited.rows) {
                metrics.push((format!("loglik.credit.{id}"), *total));
            }
            loglik_credit = Some(credited);
        }
        let mut d = Digest::new();
        d.str(&self.digest).u64(t);
        for (j, gen) in gens.iter().enumerate() {
            if j % g == 0 {
                tasks[j / g].key.digest_into(&mut d);
            }
            for &tok in &gen.token_ids {
                d.u64(u64::from(tok));
            }
            d.f64s(&scored[j].0).f64(scored[j].1);
        }
        // The chain covers what the trajectory is (samples, rewards, parameters), so a run
        // with credit and one without have the same chain; the credit tables join in
        // `digest()`.
        d.f64s(&theta_after);
        self.digest = d.hex();
        self.steps_done = t + 1;
        Ok(LmStep {
            step: t,
            metrics,
            gold: gold_credit,
            loglik: loglik_credit,
            split_error,
            responses: gens.into_iter().map(|g| g.text).collect(),
        })
    }

    fn set_params(&mut self, params: &[f64], step: u64) -> Result<(), LmRunError> {
        self.model.set_params(params).map_err(|e| LmRunError::model(Some(step), "setting the parameters", e))
    }

    /// Trains `steps` more steps, recording nothing.
    ///
    /// # Errors
    /// As [`step`](LmRun::step).
    pub fn advance(&mut self, steps: u64) -> Result<(), LmRunError> {
        for _ in 0..steps {
            self.step()?;
        }
        Ok(())
    }

    /// Trains until `until` steps are done, handing every step's metrics to `sink` and a
    /// checkpoint every `checkpoint_every` steps and at the end (without credit, `M` is
    /// estimated at those steps only). A failing step is checkpointed at the last good state
    /// before its error is returned; when `on_step` breaks, the run is checkpointed and stops.
    ///
    /// # Errors
    /// [`LmRunError::Stopped`] wrapping a step's error, and the sink's errors.
    pub fn train(
        &mut self,
        until: u64,
        sink: &mut dyn RunSink,
        on_step: &mut dyn FnMut(&LmStep) -> ControlFlow<()>,
    ) -> Result<Trained, LmRunError> {
        let every = self.config.checkpoint_every.max(1);
        while self.steps_done < until {
            match self.step() {
                Ok(mut step) => {
                    let flow = on_step(&step);
                    let done = self.steps_done;
                    let checkpoint = flow.is_break() || done.is_multiple_of(every) || done == until;
                    if checkpoint && self.gold_ledger.is_none() {
                        let (m, se, _) = self.metric_now()?;
                        step.metrics.push(("gold".into(), m));
                        step.metrics.push(("gold_se".into(), se));
                    }
                    sink.record_step(step.step, step.metrics)?;
                    if checkpoint {
                        sink.checkpoint(done, &self.checkpoint().encode(), &self.digest)?;
                    }
                    if flow.is_break() {
                        return Ok(Trained::Stopped { at: done });
                    }
                }
                Err(error) => {
                    let done = self.steps_done;
                    sink.checkpoint(done, &self.checkpoint().encode(), &self.digest)?;
                    return Err(LmRunError::Stopped { checkpointed_at: done, source: Box::new(error) });
                }
            }
        }
        Ok(Trained::Finished)
    }
}

/// Standard error of the mean of `values` (sample standard deviation / √n; 0 for n < 2).
fn standard_error(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
    (var / n as f64).sqrt()
}

fn conflict(cells: &[Vec<f64>], grad: &[f64], rows: usize, columns: usize) -> Conflict {
    let per: Vec<Vec<f64>> = cells.iter().map(|d| d.iter().zip(grad).map(|(a, b)| a * b).collect()).collect();
    Conflict::of_coordinates(&per, rows, columns)
}

/// A task's prompt tokens: a dataset row's own messages, or one user message.
fn prompt_tokens(model: &TrainableLm, task: &Task) -> Result<Vec<u32>, gristmill_lm::train::TrainError> {
    let messages: Vec<Message> = match &task.body.reference {
        Some(r) if !r.messages.is_empty() => {
            r.messages.iter().map(|m| Message { role: m.role.clone(), content: m.content.clone() }).collect()
        }
        _ => vec![Message::user(task.observation_text())],
    };
    model.chat_prompt(&messages)
}
