//! A rollout run: `steps` steps of a reference policy, summarised per piece and digested.

use gristmill_core::digest::Digest;
use gristmill_core::policy::Policy;
use serde::Serialize;

use crate::env::Environment;
use crate::episodes::episode_step;
use crate::error::EngineError;
use crate::rollout::{rollout_step_into, StepBatch};

/// Named numbers of one step, in a fixed order (the order they are digested and stored).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepMetrics {
    /// Step number.
    pub step: u64,
    /// `(name, value)` pairs, e.g. `gold`, `reward.<piece>`, `agreement.<piece>`.
    pub values: Vec<(String, f64)>,
}

/// Per-piece summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PieceSummary {
    /// Piece id.
    pub id: String,
    /// Kind name.
    pub kind: String,
    /// Channel weight.
    pub weight: f64,
    /// Mean reward over all samples (reward pieces).
    pub mean_reward: Option<f64>,
    /// Pairwise agreement with gold within groups (reward pieces; see [`agreement`]).
    pub agreement: Option<f64>,
}

/// Per-episode-source summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpisodeSummary {
    /// Episode source id.
    pub id: String,
    /// Mean return over all forks.
    pub mean_return: f64,
    /// Forks stepped.
    pub forks: u64,
    /// Environment steps taken.
    pub steps: u64,
}

/// The result of a rollout run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutcome {
    /// Per-step metrics.
    pub steps: Vec<StepMetrics>,
    /// Per-piece summaries, in spec order.
    pub pieces: Vec<PieceSummary>,
    /// Per-episode-source summaries.
    pub episodes: Vec<EpisodeSummary>,
    /// Mean gold score over all samples.
    pub gold_mean: f64,
    /// Samples rolled out.
    pub samples: u64,
    /// Digest over every sample and every stored number, hex (and over the data digests,
    /// when the environment reads datasets).
    pub digest: String,
    /// The outside data the run read (datasets), empty for procedural sources only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<crate::env::DataDigest>,
}

/// Pairwise agreement of one channel with gold inside one batch: over pairs of responses to
/// the same task whose gold scores differ, the fraction the channel orders the same way
/// (ties count one half). Scale-free, so verifiers, shaping and reward models compare on one
/// footing. Returns `(agreeing, pairs)`.
pub fn agreement(batch: &StepBatch, channel: usize) -> (f64, u64) {
    let g = batch.group_size;
    let (mut agree, mut pairs) = (0.0, 0u64);
    for t in 0..batch.tasks.len() {
        for a in 0..g {
            for b in a + 1..g {
                let (ja, jb) = (t * g + a, t * g + b);
                let dg = batch.gold[ja] - batch.gold[jb];
                if dg == 0.0 {
                    continue;
                }
                pairs += 1;
                let dr = batch.reward_vector(ja)[channel] - batch.reward_vector(jb)[channel];
                if dr == 0.0 {
                    agree += 0.5;
                } else if (dr > 0.0) == (dg > 0.0) {
                    agree += 1.0;
                }
            }
        }
    }
    (agree, pairs)
}

/// Feeds every sample of a batch to the digest, in sample order.
pub fn digest_batch(d: &mut Digest, batch: &StepBatch) {
    d.u64(batch.step);
    for t in &batch.tasks {
        t.key.digest_into(d);
        d.i64(t.gold()).u64(t.hint.map_or(u64::MAX, u64::from));
    }
    for (j, a) in batch.answers.iter().enumerate() {
        d.i64(a.unwrap_or(i64::MIN)).f64(batch.gold[j]).f64s(batch.reward_vector(j));
    }
}

/// Runs `steps` steps of `policy` on `env` with root `seed`, calling `progress(step)` after
/// each. Metrics and the digest are reduced in step and sample order, never in completion
/// order, so the outcome does not depend on the thread count.
pub fn run_rollouts<P: Policy + ?Sized>(
    env: &Environment,
    policy: &P,
    seed: u64,
    steps: u64,
    episode_epsilon: f64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<RunOutcome, EngineError> {
    let c = env.channels.len();
    let ids = env.channel_ids();
    let mut digest = Digest::new();
    digest.str(env.spec.hash()).u64(seed).u64(steps);
    // A dataset's bytes are part of what the run depends on; procedural runs add nothing, so
    // their digests are what they always were.
    let data = env.data_digests();
    for d in &data {
        digest.str(&d.source).str(&d.blake3);
    }
    let (mut reward_sums, mut agree_sums, mut pair_sums) = (vec![0.0; c], vec![0.0; c], vec![0u64; c]);
    let (mut gold_sum, mut samples) = (0.0, 0u64);
    let n_ep = env.spec.spec().episodes.len();
    let (mut ep_returns, mut ep_forks, mut ep_steps) = (vec![0.0; n_ep], vec![0u64; n_ep], vec![0u64; n_ep]);
    let mut per_step = Vec::with_capacity(steps as usize);
    let mut batch = StepBatch::default();
    for step in 0..steps {
        rollout_step_into(env, policy, seed, step, &mut batch)?;
        let batch = &batch;
        digest_batch(&mut digest, batch);
        let n = batch.len() as f64;
        let gold: f64 = batch.gold.iter().sum();
        gold_sum += gold;
        samples += batch.len() as u64;
        let mut values = vec![("gold".to_string(), gold / n)];
        for ch in 0..c {
            let sum: f64 = (0..batch.len()).map(|j| batch.reward_vector(j)[ch]).sum();
            reward_sums[ch] += sum;
            values.push((format!("reward.{}", ids[ch]), sum / n));
            let (agree, pairs) = agreement(batch, ch);
            agree_sums[ch] += agree;
            pair_sums[ch] += pairs;
            if pairs > 0 {
                values.push((format!("agreement.{}", ids[ch]), agree / pairs as f64));
            }
        }
        for e in 0..n_ep {
            let eb = episode_step(env, e, episode_epsilon, seed, step);
            for d in &eb.final_digests {
                digest.str(d);
            }
            digest.f64s(&eb.returns);
            let total: f64 = eb.returns.iter().sum();
            ep_returns[e] += total;
            ep_forks[e] += eb.forks;
            ep_steps[e] += eb.steps;
            values.push((
                format!("episode.{}.return", env.spec.spec().episodes[e].id),
                total / eb.forks as f64,
            ));
        }
        for (name, v) in &values {
            digest.str(name).f64(*v);
        }
        per_step.push(StepMetrics { step, values });
        progress(step);
    }
    let pieces = env
        .pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let ch = env.channels.iter().position(|&x| x == i);
            PieceSummary {
                id: p.id.clone(),
                kind: p.kind_name.to_string(),
                weight: p.weight,
                mean_reward: ch.map(|ch| reward_sums[ch] / samples as f64),
                agreement: ch
                    .and_then(|ch| (pair_sums[ch] > 0).then(|| agree_sums[ch] / pair_sums[ch] as f64)),
            }
        })
        .collect();
    let episodes = (0..n_ep)
        .map(|e| EpisodeSummary {
            id: env.spec.spec().episodes[e].id.clone(),
            mean_return: ep_returns[e] / ep_forks[e].max(1) as f64,
            forks: ep_forks[e],
            steps: ep_steps[e],
        })
        .collect();
    let gold_mean = gold_sum / samples as f64;
    digest.f64(gold_mean);
    Ok(RunOutcome { steps: per_step, pieces, episodes, gold_mean, samples, digest: digest.hex(), data })
}
