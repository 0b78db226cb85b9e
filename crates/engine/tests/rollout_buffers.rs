//! The fast rollout path changes no result: a batch reused step after step, rollouts that
//! skip the feature encoding, and chunked, channel-by-channel scoring all give the bits the
//! plain path gives; and a failure is reported at the same sample whatever the thread count.

use std::sync::Arc;

/// The example spec `examples/<name>`, loaded.
fn example(name: &str) -> gristmill_engine::Environment {
    gristmill_testkit::load(&gristmill_testkit::example(name))
}

use gristmill_core::digest::Digest;
use gristmill_core::piece::{RewardPiece, ScoreKey};
use gristmill_core::policy::{Policy, Response};
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{Task, TaskSource};
use gristmill_engine::{
    digest_batch, rollout_step, rollout_step_into, EngineError, EnvPiece, OraclePolicy, StepBatch,
};
use gristmill_pieces::BuiltPiece;

/// Every number of a batch, bit for bit (the digest sees `-0.0` and NaN payloads), plus the
/// task bodies, which the digest leaves out.
fn same_batch(a: &StepBatch, b: &StepBatch) {
    let bits = |batch: &StepBatch| {
        let mut d = Digest::new();
        digest_batch(&mut d, batch);
        d.hex()
    };
    assert_eq!(bits(a), bits(b));
    assert_eq!((a.step, a.group_size, a.channels, a.len()), (b.step, b.group_size, b.channels, b.len()));
    assert_eq!(a.tasks, b.tasks);
}

/// The oracle, declaring that it reads features, so rollouts encode them.
struct FeatureReadingOracle(OraclePolicy);

impl Policy for FeatureReadingOracle {
    fn name(&self) -> String {
        "feature-reading oracle".into()
    }
    fn respond_into(&self, task: &Task, source: &dyn TaskSource, rng: &mut KeyedRng, out: &mut Response) {
        self.0.respond_into(task, source, rng, out)
    }
}

#[test]
fn a_reused_batch_equals_a_fresh_one() {
    let policy = OraclePolicy { error_rate: 0.3 };
    let arith = example("arith.toml");
    let families = example("all-families.toml");
    // Dirty the buffers with batches of other shapes (B × G, channels, sources) and steps.
    let mut reused = rollout_step(&families, &policy, 3, 9).unwrap();
    for step in 0..3 {
        rollout_step_into(&arith, &policy, 7, step, &mut reused).unwrap();
        same_batch(&reused, &rollout_step(&arith, &policy, 7, step).unwrap());
        rollout_step_into(&families, &policy, 5, step, &mut reused).unwrap();
        same_batch(&reused, &rollout_step(&families, &policy, 5, step).unwrap());
    }
}

#[test]
fn skipping_features_changes_nothing_but_the_features() {
    let env = example("all-families.toml");
    let oracle = OraclePolicy { error_rate: 0.3 };
    assert!(!oracle.reads_features());
    let reader = FeatureReadingOracle(oracle);
    let skipped = rollout_step(&env, &oracle, 11, 2).unwrap();
    let encoded = rollout_step(&env, &reader, 11, 2).unwrap();
    for (s, e) in skipped.tasks.iter().zip(&encoded.tasks) {
        assert!(s.body.features.is_empty());
        assert_eq!(e.body.features.len(), env.sources[e.key.source as usize].feature_dim());
        assert_eq!(
            (s.key, &s.body.prompt, s.body.gold, s.hint),
            (e.key, &e.body.prompt, e.body.gold, e.hint)
        );
    }
    assert_eq!(skipped.answers, encoded.answers);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&skipped.rewards), bits(&encoded.rewards));
    assert_eq!(bits(&skipped.gold), bits(&encoded.gold));
}

/// A reward piece that is NaN on a few chosen samples of one step.
struct NanAt(Vec<u64>);

impl RewardPiece for NanAt {
    fn score(&self, _task: &Task, _response: &Response, key: ScoreKey) -> f64 {
        if self.0.contains(&key.index) {
            f64::NAN
        } else {
            0.5
        }
    }
}

#[test]
fn the_first_non_finite_reward_in_sample_order_is_reported_on_any_thread_count() {
    let env = example("arith.toml");
    let slot = env.channels[1];
    let piece = |bad: Vec<u64>| EnvPiece {
        built: BuiltPiece::Reward(Arc::new(NanAt(bad))),
        ..env.pieces[slot].clone()
    };
    // 64 tasks × 8 responses: samples 500 and 9 sit in different chunks and tasks; the
    // later one is listed first so that listing order cannot be what decides.
    let bad = env.with_piece(slot, piece(vec![500, 9, 200]));
    let policy = OraclePolicy { error_rate: 0.3 };
    for threads in [1, 2, 4] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let err = pool.install(|| rollout_step(&bad, &policy, 7, 0)).unwrap_err();
        match err {
            EngineError::NonFiniteReward { step, index, channel, value, .. } => {
                assert_eq!((step, index), (0, 9), "{threads} threads");
                assert_eq!(channel, env.pieces[slot].id);
                assert!(value.is_nan());
            }
            other => panic!("unexpected error {other}"),
        }
    }
    // The same piece without bad samples rolls out, and its channel reads 0.5 everywhere.
    let fine = env.with_piece(slot, piece(vec![]));
    let batch = rollout_step(&fine, &policy, 7, 0).unwrap();
    assert!((0..batch.len()).all(|j| batch.reward_vector(j)[1] == 0.5));
}
