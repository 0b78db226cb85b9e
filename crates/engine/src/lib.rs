//! # gristmill-engine
//!
//! Parallel, deterministic rollouts of gristmill environments.
//!
//! An [`Environment`] is assembled from a validated spec; [`rollout_step`] draws `B`
//! training tasks, samples `G` responses per task from any [`Policy`](gristmill_core::policy::Policy)
//! and scores each with every channel, returning reward **vectors**. [`run_rollouts`] runs
//! many steps and digests every number, so `gristmill replay` can prove a run bit for bit.
//! Multi-turn sources are stepped by [`episode_step`]: snapshot, fork `N`, step in parallel.
//!
//! A loop that rolls out step after step should hold one [`StepBatch`] and call
//! [`rollout_step_into`]: every buffer (prompts, features, reward vectors) is reused, and the
//! result is bit-identical to a fresh [`rollout_step`]. Policies that never read features
//! say so ([`Policy::reads_features`](gristmill_core::policy::Policy::reads_features)) and
//! the encoding is skipped.
//!
//! ```no_run
//! use gristmill_core::spec::Overrides;
//! use gristmill_engine::{load, run_rollouts, OraclePolicy};
//! let text = std::fs::read_to_string("examples/arith.toml").unwrap();
//! let env = load(&text, "arith.toml", &Overrides::default()).unwrap();
//! let out = run_rollouts(&env, &OraclePolicy { error_rate: 0.3 }, 7, 5, 0.3, &|_| {}).unwrap();
//! println!("{} {}", out.gold_mean, out.digest);
//! ```
//!
//! Invariant: nothing here reads a clock, a global RNG or the thread count. Every draw is
//! keyed (`gristmill_core::rng`), and every reduction runs in a fixed order.
#![warn(missing_docs)]

mod env;
mod episodes;
mod error;
pub mod keys;
mod load;
mod policy;
mod rollout;
mod run;

pub use env::{catalog, Coalition, DataDigest, EnvPiece, Environment, Services, TaskSlot};
pub use episodes::{episode_step, reference_action, EpisodeBatch};
pub use error::EngineError;
pub use keys::{KeyError, WireKey};
pub use load::{load, load_spec, load_spec_bytes};
pub use policy::{
    reference_policy, OraclePolicy, UniformPolicy, POLICY_KINDS, REFERENCE_POLICIES, TRAINABLE_POLICIES,
};
pub use rollout::{inverse_cdf, rollout_step, rollout_step_into, sample_answer, sample_index, StepBatch};
pub use run::{agreement, digest_batch, run_rollouts, EpisodeSummary, PieceSummary, RunOutcome, StepMetrics};
