//! The bench environment: the embedded spec, its single-response variants, and the pairing
//! of built-in families with reasoning-gym datasets.

use std::path::Path;

use anyhow::{anyhow, Context};
use gristmill_core::policy::Policy;
use gristmill_core::spec::{limits, EnvSpec, ValidSpec};
use gristmill_engine::{catalog, reference_policy};

/// `bench/rollouts.toml`, compiled in so the binary runs from any directory.
pub const EMBEDDED: &str = include_str!("../../../bench/rollouts.toml");

/// How the embedded spec is named in messages and reports.
pub const EMBEDDED_ORIGIN: &str = "bench/rollouts.toml (embedded)";

/// The reasoning-gym dataset each built-in family stands in for (see `bench/rollouts.toml`
/// for why each pairing was chosen). Families not listed have no peer.
pub const PEER_PAIRS: &[(&str, &str)] = &[
    ("addition", "chain_sum"),
    ("modular", "basic_arithmetic"),
    ("gcd", "gcd"),
    ("counting", "leg_counting"),
];

/// The reasoning-gym dataset paired with `family`, if any.
pub fn peer_dataset(family: &str) -> Option<&'static str> {
    PEER_PAIRS.iter().find(|(f, _)| *f == family).map(|(_, d)| *d)
}

/// A validated bench spec and where it came from.
pub struct BenchSpec {
    /// The validated spec.
    pub valid: ValidSpec,
    /// File path, or [`EMBEDDED_ORIGIN`].
    pub origin: String,
}

/// Loads `path` (or the embedded spec), validates it against the built-in catalog, and
/// checks that its policy is a reference policy (the bench rolls out without training).
pub fn load(path: Option<&Path>) -> anyhow::Result<BenchSpec> {
    let (text, origin) = match path {
        Some(p) => (
            std::fs::read_to_string(p).with_context(|| format!("reading spec {}", p.display()))?,
            p.display().to_string(),
        ),
        None => (EMBEDDED.to_string(), EMBEDDED_ORIGIN.to_string()),
    };
    let valid = EnvSpec::parse(&text, &origin)?.validate(&catalog(&[]), &origin)?;
    policy(&valid)?;
    Ok(BenchSpec { valid, origin })
}

/// The spec's reference policy.
pub fn policy(valid: &ValidSpec) -> anyhow::Result<Box<dyn Policy>> {
    reference_policy(valid.policy_kind.name, &valid.policy_params).ok_or_else(|| {
        anyhow!(
            "policy kind `{}` is not a reference policy; the bench needs `oracle` or `uniform`",
            valid.policy_kind.name
        )
    })
}

/// The ε of the reference agent that steps episodes: the oracle's error rate, or 1 (all
/// uniform) for the uniform policy.
pub fn episode_epsilon(valid: &ValidSpec) -> f64 {
    if valid.policy_kind.name == "oracle" {
        valid.policy_params.float("error_rate")
    } else {
        1.0
    }
}

/// The spec cut down for the per-item comparison: only the sources at `sources` (spec
/// order), one response per task (so every item generates its own task), the same number
/// of samples per step as the original (capped at the task limit), no episodes, and no
/// curriculum (its weights are per source). Pieces are otherwise unchanged.
pub fn items_variant(bench: &BenchSpec, sources: &[usize], label: &str) -> anyhow::Result<ValidSpec> {
    let original = &bench.valid.spec;
    let mut spec = original.clone();
    spec.sources = sources
        .iter()
        .map(|&i| original.sources.get(i).cloned().ok_or_else(|| anyhow!("no source at position {i}")))
        .collect::<anyhow::Result<_>>()?;
    spec.pieces.retain(|p| p.kind != "curriculum");
    spec.episodes.clear();
    spec.eval.sources = None;
    let samples = u64::from(original.run.tasks_per_step) * u64::from(original.run.responses_per_task);
    spec.run.tasks_per_step = samples.min(u64::from(limits::MAX_TASKS_PER_STEP)) as u32;
    spec.run.responses_per_task = 1;
    let origin = format!("{} [items: {label}]", bench.origin);
    Ok(spec.validate(&catalog(&[]), &origin)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_spec_is_valid_and_every_source_has_a_peer() {
        let bench = load(None).unwrap();
        let spec = &bench.valid.spec;
        assert_eq!(spec.pieces.len(), 6);
        assert_eq!(spec.episodes.len(), 1);
        for s in &spec.sources {
            assert!(peer_dataset(&s.family).is_some(), "{}", s.family);
        }
        let one = items_variant(&bench, &[2], "gcd").unwrap();
        assert_eq!(one.spec.sources.len(), 1);
        assert_eq!(one.spec.sources[0].family, "gcd");
        assert_eq!(one.spec.run.responses_per_task, 1);
        assert_eq!(
            u64::from(one.spec.run.tasks_per_step),
            u64::from(spec.run.tasks_per_step) * u64::from(spec.run.responses_per_task)
        );
        assert!(items_variant(&bench, &[9], "none").is_err());
    }
}
