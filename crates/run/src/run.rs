//! The run: an environment, its trainer, the credit ledger fed by every step, and the loop
//! that records steps and checkpoints into a sink.

use std::ops::ControlFlow;

use gristmill_core::digest::Digest;
use gristmill_engine::Environment;
use gristmill_learn::{StepReport, TrainConfig, Trainer};
use gristmill_measure::{path_credit, CreditLedger, Rule, StepContribution, StepCredit};

use crate::checkpoint::Checkpoint;
use crate::exact::ExactMetric;
use crate::sink::RunSink;
use crate::RunError;

/// How [`Run::train`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trained {
    /// Every requested step is done.
    Finished,
    /// Interrupted and checkpointed after `at` steps; `Run::resume` continues from there.
    Stopped {
        /// Steps done.
        at: u64,
    },
}

/// One finished step of a run.
#[derive(Debug, Clone)]
pub struct RunStep {
    /// What the trainer did.
    pub report: StepReport,
    /// The step as the ledger credited it (when the run keeps in-run credit).
    pub credit: Option<StepCredit>,
    /// The step's metrics as stored: `gold`, `train_gold`, `reward.<piece>` and, with credit,
    /// `residual` and `credit.<row>` (cumulative).
    pub metrics: Vec<(String, f64)>,
}

/// A training run of one environment, from step 0 or from a checkpoint.
pub struct Run {
    trainer: Trainer,
    ledger: Option<CreditLedger>,
    rule: Rule,
    reward_sums: Vec<f64>,
    gold_before: f64,
}

impl Run {
    /// A run of `env` at step 0, with the training settings of its spec's `[policy]`.
    pub fn new(env: Environment) -> Result<Run, RunError> {
        let config = TrainConfig::of(&env.spec)
            .ok_or_else(|| RunError::NotTrainable { policy: env.spec.policy_kind().name.to_string() })?;
        Run::with_config(env, config)
    }

    /// A run of `env` at step 0 with `config` (in-run credit when `config.credit_nodes > 0`).
    pub fn with_config(env: Environment, config: TrainConfig) -> Result<Run, RunError> {
        let nodes = config.credit_nodes;
        let trainer = Trainer::new(env, config)?;
        let ledger = (nodes > 0).then(|| CreditLedger::new(row_ids(&trainer), trainer.column_ids()));
        let gold_before = trainer.current_metric();
        let reward_sums = vec![0.0; trainer.env().channels.len()];
        Ok(Run { trainer, ledger, rule: Rule::gauss_legendre(nodes.max(1)), reward_sums, gold_before })
    }

    /// [`with_config`](Run::with_config) with in-run credit off (coalition runs only need
    /// the final metric).
    pub fn without_credit(env: Environment, mut config: TrainConfig) -> Result<Run, RunError> {
        config.credit_nodes = 0;
        Run::with_config(env, config)
    }

    /// A run of `env` resumed from a checkpoint's bytes. The checkpoint must come from the
    /// same spec (its parameters and optimizer layout are checked).
    pub fn resume(env: Environment, config: TrainConfig, bytes: &[u8]) -> Result<Run, RunError> {
        let checkpoint = Checkpoint::decode(bytes)?;
        let mut run = Run::with_config(env, config)?;
        run.trainer.restore(checkpoint.trainer)?;
        run.ledger = match (checkpoint.ledger, run.ledger.is_some()) {
            (Some(state), true) => Some(CreditLedger::from_state(state)?),
            (None, false) => None,
            (Some(_), false) | (None, true) => {
                return Err(RunError::Checkpoint(
                    "the checkpoint and the spec disagree on whether the run keeps in-run credit".into(),
                ))
            }
        };
        if checkpoint.reward_sums.len() != run.reward_sums.len() {
            return Err(RunError::Checkpoint(format!(
                "the checkpoint has {} reward channels, the spec {}",
                checkpoint.reward_sums.len(),
                run.reward_sums.len()
            )));
        }
        run.reward_sums = checkpoint.reward_sums;
        Ok(run)
    }

    /// The trainer.
    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// The credit ledger, when the run keeps in-run credit.
    pub fn ledger(&self) -> Option<&CreditLedger> {
        self.ledger.as_ref()
    }

    /// `M(θ₀)`.
    pub fn gold_before(&self) -> f64 {
        self.gold_before
    }

    /// Mean training reward per channel over the steps done.
    pub fn mean_rewards(&self) -> Vec<f64> {
        let steps = self.trainer.steps_done().max(1) as f64;
        self.reward_sums.iter().map(|s| s / steps).collect()
    }

    /// Replaces the environment by a retrained one with the same pieces (see
    /// [`Trainer::set_environment`]).
    pub fn set_environment(&mut self, env: Environment) -> Result<(), RunError> {
        Ok(self.trainer.set_environment(env)?)
    }

    /// Records per-sample influences in every step report (trainable pieces read them).
    pub fn set_influence(&mut self, on: bool) {
        self.trainer.set_influence(on);
    }

    /// One training step, credited. On error nothing changes: the run stays at its last
    /// good state.
    pub fn step(&mut self) -> Result<RunStep, RunError> {
        let report = self.trainer.step()?;
        let mut metrics =
            vec![("gold".to_string(), report.metric_after), ("train_gold".to_string(), report.train_gold)];
        for (id, r) in self.trainer.env().channel_ids().iter().zip(&report.train_reward) {
            metrics.push((format!("reward.{id}"), *r));
        }
        let credit = match self.ledger.as_mut() {
            Some(ledger) => {
                let path = path_credit(
                    &ExactMetric(&self.trainer),
                    &report.theta_before,
                    self.trainer.theta(),
                    &report.deltas,
                    self.trainer.columns(),
                    &self.rule,
                )
                .map_err(|e| e.at_step(report.step))?;
                let credited = ledger.observe(StepContribution {
                    step: report.step,
                    metric_before: report.metric_before,
                    metric_after: report.metric_after,
                    delta_se: None,
                    cells: path.cells,
                    conflict: Some(path.conflict),
                })?;
                metrics.push(("residual".to_string(), credited.residual));
                for (id, total) in ledger.rows().iter().zip(&credited.rows) {
                    metrics.push((format!("credit.{id}"), *total));
                }
                Some(credited)
            }
            None => None,
        };
        for (s, r) in self.reward_sums.iter_mut().zip(&report.train_reward) {
            *s += r;
        }
        Ok(RunStep { report, credit, metrics })
    }

    /// Trains `steps` more steps, recording nothing.
    pub fn advance(&mut self, steps: u64) -> Result<(), RunError> {
        for _ in 0..steps {
            self.step()?;
        }
        Ok(())
    }

    /// Trains until `until` steps are done, handing every step's metrics to `sink` and a
    /// checkpoint every `checkpoint_every` steps and at the end. A failing step is
    /// checkpointed at the last good state before the error is returned, so nothing
    /// computed is lost. `on_step` is called after every step (progress); when it breaks
    /// (an interrupt), the run is checkpointed where it is and stops there.
    pub fn train(
        &mut self,
        until: u64,
        sink: &mut dyn RunSink,
        on_step: &mut dyn FnMut(&RunStep) -> ControlFlow<()>,
    ) -> Result<Trained, RunError> {
        let every = self.trainer.config().checkpoint_every.max(1);
        while self.trainer.steps_done() < until {
            match self.step() {
                Ok(step) => {
                    let flow = on_step(&step);
                    sink.record_step(step.report.step, step.metrics)?;
                    let done = self.trainer.steps_done();
                    if flow.is_break() {
                        sink.checkpoint(done, &self.checkpoint().encode(), &self.trainer.state().digest)?;
                        return Ok(Trained::Stopped { at: done });
                    }
                    if done.is_multiple_of(every) || done == until {
                        sink.checkpoint(done, &self.checkpoint().encode(), &self.trainer.state().digest)?;
                    }
                }
                Err(error) => {
                    let done = self.trainer.steps_done();
                    sink.checkpoint(done, &self.checkpoint().encode(), &self.trainer.state().digest)?;
                    return Err(RunError::Stopped { checkpointed_at: done, source: Box::new(error) });
                }
            }
        }
        Ok(Trained::Finished)
    }

    /// The checkpoint of the run now.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            trainer: self.trainer.state().clone(),
            ledger: self.ledger.as_ref().map(|l| l.state().clone()),
            reward_sums: self.reward_sums.clone(),
        }
    }

    /// The run's digest: the trainer's chained digest over every step, and the credit table.
    pub fn digest(&self) -> String {
        let mut d = Digest::new();
        d.str(&self.trainer.state().digest);
        if let Some(c) = &self.ledger {
            d.f64s(c.cells()).f64(c.delta_metric());
        }
        d.hex()
    }
}

/// The credit rows of a trainer: its channels' ids.
fn row_ids(trainer: &Trainer) -> Vec<String> {
    trainer.channels().iter().map(|c| c.id.clone()).collect()
}
