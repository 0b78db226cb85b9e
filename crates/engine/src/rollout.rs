//! One step of parallel, deterministic rollouts: `B` tasks × `G` responses, each scored by
//! every channel.

use gristmill_core::piece::ScoreBatch;
use gristmill_core::policy::Policy;
use gristmill_core::policy::Response;
use gristmill_core::rng::{Purpose, StreamPrefix};
use gristmill_core::task::{Features, Task};
use rand::Rng;
use rayon::prelude::*;

use crate::env::{Environment, TaskSlot};
use crate::error::EngineError;

/// The rollouts of one step. Sample `j` answers task `j / group_size`.
#[derive(Debug, Clone, PartialEq, Default)]
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

/// Tasks per unit of parallel work: enough samples that scoring a channel over the chunk
/// amortises its dynamic call, few enough that a chunk's responses stay in cache and two
/// cores get many chunks. Chunking never changes a result: every sample is a pure function
/// of its key.
fn tasks_per_chunk(group_size: usize) -> usize {
    (256 / group_size.max(1)).max(1)
}

/// Per-worker buffers reused from chunk to chunk.
#[derive(Default)]
struct ChunkScratch {
    responses: Vec<Response>,
    column: Vec<f64>,
}

/// The sample key of response `g` to task `b`: one index space per step.
pub fn sample_index(b: usize, g: usize, group_size: usize) -> u64 {
    (b * group_size + g) as u64
}

/// The index drawn from probabilities `p` by the inverse CDF of the uniform `u`: two
/// policies given the same `u` pick the same quantile (common random numbers).
pub fn inverse_cdf(p: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, pi) in p.iter().enumerate() {
        acc += pi;
        if u < acc {
            return i;
        }
    }
    p.len() - 1
}

/// The answer a policy with answer probabilities `probs` gives sample `index` of a step
/// whose sampling streams are `samples`: the inverse CDF of the sample's first keyed
/// uniform. Every learned policy samples through this, so coalitions and counterfactual
/// observations share their random numbers.
pub fn sample_answer(probs: &[f64], samples: &StreamPrefix, index: u64) -> usize {
    let u: f64 = samples.at(index).random();
    inverse_cdf(probs, u)
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
    let mut batch = StepBatch::default();
    rollout_step_into(env, policy, seed, step, &mut batch)?;
    Ok(batch)
}

/// [`rollout_step`] into an existing batch, reusing every buffer it holds (task prompts and
/// features, reward vectors): a loop that rolls out step after step into one batch
/// allocates almost nothing after its first step. On error the batch's contents are
/// unspecified.
pub fn rollout_step_into<P: Policy + ?Sized>(
    env: &Environment,
    policy: &P,
    seed: u64,
    step: u64,
    batch: &mut StepBatch,
) -> Result<(), EngineError> {
    let run = &env.spec.spec().run;
    let (b_count, g_count) = (run.tasks_per_step as usize, run.responses_per_task as usize);
    let channels = env.channels.len();
    let weights = env.sampling_distribution();
    let hint_p = env.hint().map(|h| h.probability);
    let samples = StreamPrefix::new(seed, Purpose::SAMPLE, step);
    let features = if policy.reads_features() { Features::Encode } else { Features::Skip };

    batch.step = step;
    batch.group_size = g_count;
    batch.channels = channels;
    batch.tasks.truncate(b_count);
    batch.tasks.resize_with(b_count, Task::empty);
    batch.answers.clear();
    batch.answers.resize(b_count * g_count, None);
    batch.gold.clear();
    batch.gold.resize(b_count * g_count, 0.0);
    // Chunks need a non-zero width; with no channels each sample gets one scratch slot that
    // is dropped afterwards.
    let stride = channels.max(1);
    batch.rewards.clear();
    batch.rewards.resize(b_count * g_count * stride, 0.0);

    // One chunk of tasks: generate them, sample every response, then score channel by
    // channel over the whole chunk (one dynamic call per piece per chunk, not per sample).
    let chunk_tasks = tasks_per_chunk(g_count);
    let fill = |first_task: usize,
                tasks: &mut [Task],
                answers: &mut [Option<i64>],
                rewards: &mut [f64],
                gold: &mut [f64],
                scratch: &mut ChunkScratch|
     -> Result<(), EngineError> {
        let n = tasks.len() * g_count;
        scratch.responses.resize_with(n, Response::empty);
        for (t, task) in tasks.iter_mut().enumerate() {
            let b = first_task + t;
            let slot = TaskSlot { weights: &weights, hint_probability: hint_p, seed, step, index: b as u64 };
            env.training_task_into(slot, features, task)?;
            let source = env.sources[task.key.source as usize].as_ref();
            for g in 0..g_count {
                let index = sample_index(b, g, g_count);
                policy.respond_into(
                    task,
                    source,
                    &mut samples.at(index),
                    &mut scratch.responses[t * g_count + g],
                );
            }
        }
        let responses = &scratch.responses[..n];
        let first_index = sample_index(first_task, 0, g_count);
        let score = ScoreBatch { tasks, responses, group_size: g_count, seed, step, first_index };
        env.score_batch_to(&score, &mut rewards[..n * channels], &mut scratch.column);
        for (j, response) in responses.iter().enumerate() {
            let vector = &rewards[j * channels..(j + 1) * channels];
            if let Some((c, v)) = vector.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                let piece = &env.pieces[env.channels[c]];
                return Err(EngineError::NonFiniteReward {
                    step,
                    index: first_index + j as u64,
                    channel: piece.id.clone(),
                    value: *v,
                    reason: piece.scorer().and_then(|s| s.failure()),
                });
            }
            gold[j] = env.gold_score(&tasks[j / g_count], response);
            answers[j] = response.answer.as_ref().ok().copied();
        }
        Ok(())
    };

    let per_chunk = chunk_tasks * g_count;
    let outcome = batch
        .tasks
        .par_chunks_mut(chunk_tasks)
        .zip(batch.answers.par_chunks_mut(per_chunk))
        .zip(batch.rewards.par_chunks_mut(per_chunk * stride))
        .zip(batch.gold.par_chunks_mut(per_chunk))
        .enumerate()
        .try_for_each_init(ChunkScratch::default, |scratch, (k, (((tasks, answers), rewards), gold))| {
            fill(k * chunk_tasks, tasks, answers, rewards, gold, scratch)
        });
    if outcome.is_err() {
        // Rayon reports whichever failure it met first in time, and a chunk generates all its
        // tasks before scoring any; report the first failure in task order instead, so the
        // error is as deterministic as the batch. Tasks are pure functions of their keys, so
        // rerunning them one by one, in order, finds it.
        let mut scratch = ChunkScratch::default();
        let mut task = [Task::empty()];
        let (mut answers, mut gold) = (vec![None; g_count], vec![0.0; g_count]);
        let mut rewards = vec![0.0; g_count * stride];
        for b in 0..b_count {
            fill(b, &mut task, &mut answers, &mut rewards, &mut gold, &mut scratch)?;
        }
        return outcome;
    }
    if channels == 0 {
        batch.rewards.clear();
    }
    Ok(())
}
