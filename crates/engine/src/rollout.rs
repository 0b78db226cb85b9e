//! One step of parallel, deterministic rollouts: `B` tasks × `G` responses, each scored by
//! every channel.

use gristmill_core::piece::ScoreKey;
use gristmill_core::policy::Policy;
use gristmill_core::rng::{stream, Purpose};
use gristmill_core::task::Task;
use rayon::prelude::*;

use crate::env::Environment;
use crate::error::EngineError;

/// The rollouts of one step. Sample `j` answers task `j / group_size`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepBatch {
    /// Step number.
    pub step: u64,
    /// Responses per task (G).
    pub group_size: usize,
    /// Number of channels (C).
    pub channels: usize,
    /// The tasks (B).
    pub tasks: Vec<Task>,
    /// Parsed answer per sample (`None` when the response did not parse).
    pub answers: Vec<Option<i64>>,
    /// Reward vectors, flat `[sample][channel]` (length B × G × C).
    pub rewards: Vec<f64>,
    /// Gold score per sample (1 if the answer is the gold answer).
    pub gold: Vec<f64>,
}

impl StepBatch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.answers.len()
    }
    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }
    /// The reward vector of sample `j`.
    pub fn reward_vector(&self, j: usize) -> &[f64] {
        &self.rewards[j * self.channels..(j + 1) * self.channels]
    }
}

/// The sample key of response `g` to task `b`: one index space per step.
pub fn sample_index(b: usize, g: usize, group_size: usize) -> u64 {
    (b * group_size + g) as u64
}

/// Rolls out one step: draws `B` training tasks (keyed by `seed` and `step`), samples `G`
/// responses to each from `policy`, and scores every response with every channel.
///
/// Work is split over rayon's pool by task; results are collected in task order, so the
/// batch is bit-identical for any thread count.
pub fn rollout_step<P: Policy + ?Sized>(
    env: &Environment,
    policy: &P,
    seed: u64,
    step: u64,
) -> Result<StepBatch, EngineError> {
    let run = &env.spec.spec.run;
    let (b_count, g_count) = (run.tasks_per_step as usize, run.responses_per_task as usize);
    let weights = env.sampling_distribution();
    let hint_p = env.hint().map(|h| h.probability);
    let channels = env.channels.len();

    type Group = (Task, Vec<Option<i64>>, Vec<f64>, Vec<f64>);
    let groups: Vec<Result<Group, EngineError>> = (0..b_count)
        .into_par_iter()
        .map(|b| {
            let task = env.training_task(&weights, hint_p, seed, step, b as u64)?;
            let source = env.sources[task.key.source as usize].as_ref();
            let mut answers = Vec::with_capacity(g_count);
            let mut rewards = Vec::with_capacity(g_count * channels);
            let mut gold = Vec::with_capacity(g_count);
            for g in 0..g_count {
                let index = sample_index(b, g, g_count);
                let mut rng = stream(seed, Purpose::SAMPLE, step, index);
                let response = policy.respond(&task, source, &mut rng);
                let start = rewards.len();
                env.score_into(&task, &response, ScoreKey { seed, step, index }, &mut rewards);
                if let Some((c, v)) = rewards[start..].iter().enumerate().find(|(_, v)| !v.is_finite()) {
                    return Err(EngineError::NonFiniteReward {
                        step,
                        index,
                        channel: env.pieces[env.channels[c]].id.clone(),
                        value: *v,
                    });
                }
                let answer = response.answer.ok();
                gold.push(if answer == Some(task.gold()) { 1.0 } else { 0.0 });
                answers.push(answer);
            }
            Ok((task, answers, rewards, gold))
        })
        .collect();

    let mut batch = StepBatch {
        step,
        group_size: g_count,
        channels,
        tasks: Vec::with_capacity(b_count),
        answers: Vec::with_capacity(b_count * g_count),
        rewards: Vec::with_capacity(b_count * g_count * channels),
        gold: Vec::with_capacity(b_count * g_count),
    };
    for group in groups {
        let (task, answers, rewards, gold) = group?;
        batch.tasks.push(task);
        batch.answers.extend(answers);
        batch.rewards.extend(rewards);
        batch.gold.extend(gold);
    }
    Ok(batch)
}
