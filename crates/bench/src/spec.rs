//! The bench environment: the embedded spec, its single-response variants, and the pairing
//! of built-in families with reasoning-gym datasets.

use std::path::Path;

use anyhow::{anyhow, Context};
use gristmill_core::policy::Policy;
use gristmill_core::spec::{limits, EnvSpec, PieceSpec, ValidSpec};
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
    let valid = EnvSpec::parse(&text, &origin)?.validate(&catalog(), &origin)?;
    policy(&valid)?;
    Ok(BenchSpec { valid, origin })
}

/// The spec's reference policy.
pub fn policy(valid: &ValidSpec) -> anyhow::Result<Box<dyn Policy>> {
    reference_policy(valid.policy_kind().name, valid.policy_params()).ok_or_else(|| {
        anyhow!(
            "policy kind `{}` is not a reference policy; the bench needs `oracle` or `uniform`",
            valid.policy_kind().name
        )
    })
}

/// The ε of the reference agent that steps episodes: the oracle's error rate, or 1 (all
/// uniform) for the uniform policy.
pub fn episode_epsilon(valid: &ValidSpec) -> f64 {
    if valid.policy_kind().name == "oracle" {
        valid.policy_params().float("error_rate")
    } else {
        1.0
    }
}

/// The spec cut down for the per-item comparison: only the sources at `sources` (spec
/// order), one response per task (so every item generates its own task), the same number
/// of samples per step as the original (capped at the task limit), no episodes, and no
/// curriculum (its weights are per source). Pieces are otherwise unchanged.
pub fn items_variant(bench: &BenchSpec, sources: &[usize], label: &str) -> anyhow::Result<ValidSpec> {
    let original = bench.valid.spec();
    let mut spec: EnvSpec = original.clone();
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
    Ok(spec.validate(&catalog(), &origin)?)
}

/// Responses per task in the matched-work comparison: the peer scores two answers per item.
pub const MATCHED_RESPONSES: u32 = 2;

/// The spec cut down to the peer's own work per item: only the sources at `sources`, only
/// the exact verifier (a family's gold check, as `score_answer` is the dataset's), and
/// [`MATCHED_RESPONSES`] responses per task, so one item = generate a task + score two
/// answers. Samples per step as in [`items_variant`].
pub fn matched_variant(bench: &BenchSpec, sources: &[usize], label: &str) -> anyhow::Result<ValidSpec> {
    let items = items_variant(bench, sources, label)?;
    let mut spec = items.spec().clone();
    spec.pieces = vec![PieceSpec {
        id: "exact".into(),
        kind: "exact_verifier".into(),
        weight: 1.0,
        params: Default::default(),
        train: false,
    }];
    spec.run.responses_per_task = MATCHED_RESPONSES;
    spec.run.tasks_per_step = (spec.run.tasks_per_step / MATCHED_RESPONSES).max(1);
    let origin = format!("{} [matched: {label}]", bench.origin);
    Ok(spec.validate(&catalog(), &origin)?)
}

/// The matched-work policy: the oracle at error rate 1/2 (so on average one of the two
/// answers per task is gold and one is wrong, as the peer scores gold and gold + 1), whose
/// answer is then read back from its text by the family's parsing rule, as the peer's
/// `score_answer` parses the answer string it is given.
pub struct ParsedOracle(pub gristmill_engine::OraclePolicy);

impl ParsedOracle {
    /// The oracle at error rate 1/2.
    pub fn new() -> Self {
        ParsedOracle(gristmill_engine::OraclePolicy { error_rate: 0.5 })
    }
}

impl Policy for ParsedOracle {
    fn name(&self) -> String {
        format!("parsed {}", self.0.name())
    }
    fn reads_features(&self) -> bool {
        false
    }
    fn respond_into(
        &self,
        task: &gristmill_core::task::Task,
        source: &dyn gristmill_core::task::TaskSource,
        rng: &mut gristmill_core::rng::KeyedRng,
        out: &mut gristmill_core::policy::Response,
    ) {
        self.0.respond_into(task, source, rng, out);
        out.answer = source.parse_answer(&out.text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_spec_is_valid_and_every_source_has_a_peer() {
        let bench = load(None).unwrap();
        let spec = &bench.valid.spec();
        assert_eq!(spec.pieces.len(), 6);
        assert_eq!(spec.episodes.len(), 1);
        for s in &spec.sources {
            assert!(peer_dataset(&s.family).is_some(), "{}", s.family);
        }
        let one = items_variant(&bench, &[2], "gcd").unwrap();
        assert_eq!(one.spec().sources.len(), 1);
        assert_eq!(one.spec().sources[0].family, "gcd");
        assert_eq!(one.spec().run.responses_per_task, 1);
        assert_eq!(
            u64::from(one.spec().run.tasks_per_step),
            u64::from(spec.run.tasks_per_step) * u64::from(spec.run.responses_per_task)
        );
        assert!(items_variant(&bench, &[9], "none").is_err());
        let matched = matched_variant(&bench, &[0, 3], "two").unwrap();
        assert_eq!(matched.spec().sources.len(), 2);
        assert_eq!(matched.spec().pieces.len(), 1);
        assert_eq!(matched.spec().pieces[0].kind, "exact_verifier");
        assert_eq!(matched.spec().run.responses_per_task, MATCHED_RESPONSES);
    }

    #[test]
    fn parsed_oracle_reads_back_what_it_wrote() {
        use gristmill_core::rng::{stream, Purpose};
        let bench = load(None).unwrap();
        let env =
            gristmill_engine::Environment::build(matched_variant(&bench, &[0], "add").unwrap()).unwrap();
        let policy = ParsedOracle::new();
        let (mut gold, n) = (0, 2000);
        for i in 0..n {
            let task = env.task(gristmill_core::task::TaskKey {
                seed: 1,
                source: 0,
                index: i,
                split: gristmill_core::task::Split::Train,
            });
            let task = task.unwrap();
            let source = env.sources[0].as_ref();
            let r = policy.respond(&task, source, &mut stream(1, Purpose::SAMPLE, 0, i));
            // Parsing the text gives back exactly the answer the oracle chose on this key.
            let chosen = policy.0.respond(&task, source, &mut stream(1, Purpose::SAMPLE, 0, i));
            assert_eq!(r.answer, chosen.answer, "{}", r.text);
            assert!(r.answer.is_ok(), "{}", r.text);
            gold += u32::from(r.answer == Ok(task.gold()));
        }
        // Half gold (binomial sd ~22 of 2000): the mix of the peer's gold and wrong answers.
        assert!((f64::from(gold) - 1000.0).abs() < 5.0 * 22.4, "{gold} gold of {n}");
    }
}
