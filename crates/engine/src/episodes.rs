//! Multi-turn rollouts: start episodes, take a prefix, snapshot, fork `N` copies and step
//! them in parallel.

use gristmill_core::episode::{fork, Episode};
use gristmill_core::rng::{derive_seed, stream, KeyedRng, Purpose};
use rand::Rng;
use rayon::prelude::*;

use crate::env::Environment;

/// The outcome of one step's episodes for one episode source.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeBatch {
    /// Return (total reward) of every fork, episode-major.
    pub returns: Vec<f64>,
    /// Environment steps taken in all forks (after the snapshot).
    pub steps: u64,
    /// Forks taken.
    pub forks: u64,
    /// State digest of every fork's final state, episode-major.
    pub final_digests: Vec<String>,
}

/// A reference agent for episodes: the oracle action, or a uniform action with probability
/// `epsilon` (or when the family has no oracle).
pub fn reference_action(episode: &dyn Episode, epsilon: f64, rng: &mut KeyedRng) -> usize {
    let u: f64 = rng.random();
    match episode.oracle_action() {
        Some(a) if u >= epsilon => a,
        _ => rng.random_range(0..episode.action_count()),
    }
}

/// Runs one step of episode source `which`: `episodes_per_step` episodes, each reset from a
/// keyed seed, advanced `prefix_steps`, snapshotted and forked `forks` times; the forks are
/// stepped to the end in parallel with the reference agent.
pub fn episode_step(env: &Environment, which: usize, epsilon: f64, seed: u64, step: u64) -> EpisodeBatch {
    let spec = &env.spec.spec().episodes[which];
    let family = &env.spec.episode_families()[which];
    let knobs = &env.spec.episode_knobs()[which];
    let purpose = Purpose::EPISODE.with(&spec.id);
    let forks_per = spec.forks as usize;
    let per_episode: Vec<(Vec<f64>, u64, Vec<String>)> = (0..spec.episodes_per_step as u64)
        .into_par_iter()
        .map(|e| {
            let mut root = (family.reset)(knobs, derive_seed(seed, purpose, step, e));
            let mut prefix_rng = stream(seed, purpose, step, u64::MAX - e);
            for _ in 0..spec.prefix_steps {
                if root.done() {
                    break;
                }
                let a = reference_action(root.as_ref(), epsilon, &mut prefix_rng);
                root.step(a);
            }
            let forks = fork(root.as_ref(), forks_per);
            let results: Vec<(f64, u64, String)> = forks
                .into_par_iter()
                .enumerate()
                .map(|(f, mut ep)| {
                    let mut rng = stream(seed, purpose, step, e * forks_per as u64 + f as u64);
                    let mut steps = 0;
                    while !ep.done() {
                        let a = reference_action(ep.as_ref(), epsilon, &mut rng);
                        ep.step(a);
                        steps += 1;
                    }
                    (ep.total_reward(), steps, ep.state_digest())
                })
                .collect();
            let steps = results.iter().map(|r| r.1).sum();
            let returns = results.iter().map(|r| r.0).collect();
            let digests = results.into_iter().map(|r| r.2).collect();
            (returns, steps, digests)
        })
        .collect();
    let mut batch = EpisodeBatch { returns: vec![], steps: 0, forks: 0, final_digests: vec![] };
    for (returns, steps, digests) in per_episode {
        batch.forks += returns.len() as u64;
        batch.returns.extend(returns);
        batch.steps += steps;
        batch.final_digests.extend(digests);
    }
    batch
}
