//! Timed cases: whole rollout steps and whole episode steps, repeated in an explicit rayon
//! pool until a wall budget is spent.

use std::time::{Duration, Instant};

use anyhow::Context;
use gristmill_core::digest::Digest;
use gristmill_core::policy::Policy;
use gristmill_engine::{digest_batch, episode_step, rollout_step, rollout_step_into, Environment, StepBatch};
use rayon::ThreadPool;
use serde::Serialize;

/// Untimed steps run before the clock starts (allocator, caches, pool threads). Their
/// digests are the determinism cross-check: every case runs the same warm-up steps.
pub const WARMUP_STEPS: u64 = 2;

/// A rayon pool with exactly `threads` workers.
pub fn pool(threads: usize) -> anyhow::Result<ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("bench-{threads}t-{i}"))
        .build()
        .with_context(|| format!("building a rayon pool of {threads} threads"))
}

/// One timed single-turn case.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutCase {
    /// Pool threads.
    pub threads: usize,
    /// Timed steps.
    pub steps: u64,
    /// Rollouts in the timed steps (tasks × responses per step, summed).
    pub rollouts: u64,
    /// Wall seconds of the timed steps.
    pub seconds: f64,
    /// Rollouts per second.
    pub rollouts_per_s: f64,
    /// Rollouts per second per pool thread.
    pub per_core: f64,
    /// CPU time and run-queue wait of the process during the timed steps.
    pub cpu: Option<CpuUse>,
    /// Digest of each warm-up step's batch (every task, answer, gold score and reward).
    pub warmup_digests: Vec<String>,
}

/// Rolls out steps `0..WARMUP_STEPS` untimed (digesting each), then steps
/// `WARMUP_STEPS..` until `budget` has passed, into one reused batch; the time covers
/// `rollout_step_into` (task generation, sampling, scoring, writing the batch).
pub fn rollouts(
    pool: &ThreadPool,
    threads: usize,
    env: &Environment,
    policy: &dyn Policy,
    budget: Duration,
) -> anyhow::Result<RolloutCase> {
    pool.install(|| {
        let seed = env.seed();
        let mut warmup_digests = Vec::with_capacity(WARMUP_STEPS as usize);
        for step in 0..WARMUP_STEPS {
            let batch = rollout_step(env, policy, seed, step)?;
            let mut d = Digest::new();
            digest_batch(&mut d, &batch);
            warmup_digests.push(d.hex());
        }
        let (mut step, mut rollouts) = (WARMUP_STEPS, 0u64);
        // One batch reused step after step, as a training loop would hold it.
        let mut batch = StepBatch::default();
        let sched = SchedTotals::read();
        let start = Instant::now();
        let elapsed = loop {
            rollout_step_into(env, policy, seed, step, &mut batch)?;
            rollouts += batch.len() as u64;
            step += 1;
            let elapsed = start.elapsed();
            if elapsed >= budget {
                break elapsed;
            }
        };
        let seconds = elapsed.as_secs_f64();
        let cpu = CpuUse::since(sched, seconds);
        let rate = rollouts as f64 / seconds;
        Ok(RolloutCase {
            threads,
            steps: step - WARMUP_STEPS,
            rollouts,
            seconds,
            rollouts_per_s: rate,
            per_core: rate / threads as f64,
            cpu,
            warmup_digests,
        })
    })
}

/// One timed multi-turn case.
#[derive(Debug, Clone, Serialize)]
pub struct EpisodeCase {
    /// Pool threads.
    pub threads: usize,
    /// Timed steps (each starts `episodes_per_step` episodes and forks each `forks` ways).
    pub steps: u64,
    /// Forks stepped to the end.
    pub forks: u64,
    /// Environment steps taken in the forks.
    pub env_steps: u64,
    /// Wall seconds.
    pub seconds: f64,
    /// Forks per second.
    pub forks_per_s: f64,
    /// Environment steps per second.
    pub env_steps_per_s: f64,
    /// CPU time and run-queue wait of the process during the timed steps.
    pub cpu: Option<CpuUse>,
    /// Digest of the warm-up steps' fork final states and returns.
    pub warmup_digest: String,
}

/// Like [`rollouts`], for episode source `which`, timed with [`episode_step`]: reset,
/// prefix, snapshot, fork, and step every fork to the end.
pub fn episodes(
    pool: &ThreadPool,
    threads: usize,
    env: &Environment,
    which: usize,
    epsilon: f64,
    budget: Duration,
) -> EpisodeCase {
    pool.install(|| {
        let seed = env.seed();
        let mut d = Digest::new();
        for step in 0..WARMUP_STEPS {
            let batch = episode_step(env, which, epsilon, seed, step);
            for s in &batch.final_digests {
                d.str(s);
            }
            d.f64s(&batch.returns);
        }
        let (mut step, mut forks, mut env_steps) = (WARMUP_STEPS, 0u64, 0u64);
        let sched = SchedTotals::read();
        let start = Instant::now();
        let elapsed = loop {
            let batch = episode_step(env, which, epsilon, seed, step);
            forks += batch.forks;
            env_steps += batch.steps;
            drop(batch);
            step += 1;
            let elapsed = start.elapsed();
            if elapsed >= budget {
                break elapsed;
            }
        };
        let seconds = elapsed.as_secs_f64();
        EpisodeCase {
            threads,
            steps: step - WARMUP_STEPS,
            forks,
            env_steps,
            seconds,
            forks_per_s: forks as f64 / seconds,
            env_steps_per_s: env_steps as f64 / seconds,
            cpu: CpuUse::since(sched, seconds),
            warmup_digest: d.hex(),
        }
    })
}

/// How busy the process was during a case, from the kernel's per-thread scheduler
/// statistics (`/proc/self/task/*/schedstat`, Linux only).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuUse {
    /// CPU time all threads ran, per wall second (cores' worth).
    pub cores_used: f64,
    /// Time threads were runnable but waiting for a CPU, per wall second: CPU that other
    /// processes took from the case. Near 0 on an idle machine.
    pub cores_waited: f64,
}

impl CpuUse {
    fn since(before: Option<SchedTotals>, seconds: f64) -> Option<CpuUse> {
        let (before, after) = (before?, SchedTotals::read()?);
        let per_s = |a: u64, b: u64| a.saturating_sub(b) as f64 / 1e9 / seconds;
        Some(CpuUse {
            cores_used: per_s(after.run_ns, before.run_ns),
            cores_waited: per_s(after.wait_ns, before.wait_ns),
        })
    }
}

/// Run and run-queue wait nanoseconds summed over the process's threads.
#[derive(Debug, Clone, Copy)]
struct SchedTotals {
    run_ns: u64,
    wait_ns: u64,
}

impl SchedTotals {
    fn read() -> Option<SchedTotals> {
        let mut totals = SchedTotals { run_ns: 0, wait_ns: 0 };
        for entry in std::fs::read_dir("/proc/self/task").ok()? {
            let text = std::fs::read_to_string(entry.ok()?.path().join("schedstat")).ok()?;
            let mut fields = text.split_whitespace().map(str::parse::<u64>);
            totals.run_ns += fields.next()?.ok()?;
            totals.wait_ns += fields.next()?.ok()?;
        }
        Some(totals)
    }
}
