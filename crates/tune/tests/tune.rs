//! Piece training and the withdrawal protocol on small, seeded runs.

use gristmill_core::spec::Overrides;
use gristmill_engine::Environment;
use gristmill_learn::TrainConfig;
use gristmill_pieces::BuiltPiece;
use gristmill_testkit::{fixture, load_with, trainable};
use gristmill_tune::{
    apply_static, grid_values, metric_with_piece, static_grid, study, study_runs, withdraw, HintSignal,
    Tuner, WithdrawReport,
};

fn example(name: &str) -> (Environment, TrainConfig) {
    trainable(&gristmill_testkit::example(name))
}

/// The withdrawal of the hint in one of the two hint examples, at the spec's own split
/// (half the steps with the hint, half without).
fn withdraw_example(name: &str, seed: Option<u64>) -> WithdrawReport {
    let env = load_with(&gristmill_testkit::example(name), &Overrides { seed, steps: None });
    let config = TrainConfig::of(&env.spec).unwrap();
    let hint = env.piece_index("hint").unwrap();
    let train: Vec<usize> =
        env.spec.spec().pieces.iter().enumerate().filter(|(_, p)| p.train).map(|(i, _)| i).collect();
    let steps = env.spec.spec().run.steps;
    withdraw(&env, &config, hint, steps / 2, steps - steps / 2, &train, HintSignal::Lookahead).unwrap()
}

// Bounds shared by the single-seed and the multi-seed tests. Low retention: more than half of
// what the kept hint shows leaves with it (seeds 3–13 give 0.08–0.42; the shipped seed 0.11).
// High retention: at least 80% stays (seeds 3–13 give 0.97–1.10; the shipped seed 1.07).
const LOW_RETENTION: f64 = 0.5;
const HIGH_RETENTION: f64 = 0.8;

fn check_always_on(r: &WithdrawReport) {
    // The hint gives the whole answer (a residue mod 7 is its own last digit), so with it the
    // model looks nearly perfect, and about half of M vanishes at removal (0.44–0.50 over seeds).
    assert!(r.metric_with > 0.95, "M with hint {}", r.metric_with);
    assert!(r.drop > 0.3, "drop {}", r.drop);
    assert_eq!(r.metric_at_removal, r.metric_with - r.drop);
    let retention = r.retention.expect("the kept hint gains far more than MIN_RETAINABLE_GAIN");
    assert!(retention < LOW_RETENTION, "retention {retention}");
}

fn check_trained(r: &WithdrawReport) {
    // The trained hint has withdrawn itself before it is removed: by step 60, p fell from 0.99
    // to 0.02–0.21 over seeds 3–13, so little vanishes at removal (drop 0.007–0.095, against
    // 0.44–0.50 for the always-on hint)...
    let p: f64 = r.piece_at_removal.as_deref().unwrap().trim_start_matches("p = ").parse().unwrap();
    assert!(p < 0.25, "p at removal {p}");
    assert!(r.drop < 0.15, "drop {}", r.drop);
    // ...while it gave a real gain (0.057–0.18 over never having it; a ratio over much less
    // would be seed noise), and nearly all of it stays after withdrawal.
    assert!(r.gain_kept_piece > 0.04, "gain of the kept hint {}", r.gain_kept_piece);
    let retention = r.retention.unwrap();
    assert!(retention > HIGH_RETENTION, "retention {retention}");
}

#[test]
fn always_on_hint_is_not_withdrawable() {
    check_always_on(&withdraw_example("withdraw-hint.toml", None));
}

#[test]
fn trained_hint_is_withdrawable() {
    let trained = withdraw_example("withdraw-hint-trained.toml", None);
    check_trained(&trained);
    let always = withdraw_example("withdraw-hint.toml", None);
    // Same spec, same seeds, only `train = true` differs: the never-had-it runs coincide, so
    // the two retentions share their baseline.
    assert_eq!(trained.metric_never, always.metric_never);
    // Per seed the gap is 0.58–0.96 over seeds 3–13.
    assert!(trained.retention.unwrap() > always.retention.unwrap() + 0.5);
}

/// The two hint examples on eleven seeds (about 10 s in the test profile):
/// `cargo test -p gristmill-tune --test tune -- --ignored hint_retention_holds_on_seeds`
#[test]
#[ignore]
fn hint_retention_holds_on_seeds() {
    for seed in 3..=13 {
        let always = withdraw_example("withdraw-hint.toml", Some(seed));
        let trained = withdraw_example("withdraw-hint-trained.toml", Some(seed));
        eprintln!(
            "seed {seed}: always-on retention {:?}, trained {:?} ({:?})",
            always.retention, trained.retention, trained.piece_at_removal
        );
        check_always_on(&always);
        check_trained(&trained);
    }
}

#[test]
fn retention_is_not_reported_for_a_piece_that_gives_nothing() {
    // A hint with probability 0 is never shown: the kept and never-had-it runs train on the
    // same samples and end bit-identical, so there is no gain to retain.
    let text = gristmill_testkit::edit(
        &gristmill_testkit::example("withdraw-hint.toml"),
        "probability = 1.0",
        "probability = 0.0",
    );
    let (env, config) = trainable(&text);
    let hint = env.piece_index("hint").unwrap();
    let r = withdraw(&env, &config, hint, 5, 5, &[], HintSignal::Lookahead).unwrap();
    assert_eq!(r.metric_kept, r.metric_never);
    assert_eq!(r.gain_kept_piece, 0.0);
    assert_eq!(r.retention, None);
    assert!(r.retention_note.as_deref().unwrap().contains("too little"), "{:?}", r.retention_note);
}

#[test]
fn hint_lookahead_is_paired_and_sees_reliance() {
    let (env, config) = example("withdraw-hint.toml");
    let hint = env.piece_index("hint").unwrap();
    let mut t = Tuner::new(env, config, &[]).unwrap();
    // At θ₀ = 0 the policy is uniform whether or not it sees the hint, so the counterfactual
    // group draws the same answers on the same uniforms and teaches M exactly as much: the
    // paired difference is exactly zero, not merely small.
    let first = t.step().unwrap();
    assert_eq!(t.hint_lookahead(&first).unwrap(), Some(0.0));
    // While the policy still has to find the answer (steps 1–12, hinted training accuracy
    // below ~0.7), a hinted group holds more correct samples and teaches M more...
    let mut early = 0.0;
    for _ in 1..=12 {
        let r = t.step().unwrap();
        early += t.hint_lookahead(&r).unwrap().unwrap();
    }
    assert!(early > 0.0, "early lookahead {early}");
    // ...once it reads the answer off the hint (hinted M ≈ 0.99 by step 30), hinted groups
    // are all or nearly all correct and teach little, their unhinted counterfactuals still
    // teach M, and hints cost hint-free gain. Single steps are noisy (one wrong hinted answer
    // gets a large advantage), so the test sums 20 of them.
    for _ in 13..30 {
        t.step().unwrap();
    }
    assert!(metric_with_piece(t.trainer(), hint).unwrap() > 0.95);
    let mut late = 0.0;
    for _ in 30..50 {
        let r = t.step().unwrap();
        late += t.hint_lookahead(&r).unwrap().unwrap();
    }
    assert!(late < 0.0, "late lookahead {late}");
}

#[test]
fn trained_hint_replays_bit_for_bit_on_any_thread_count() {
    let (env, config) = example("withdraw-hint-trained.toml");
    let hint = env.piece_index("hint").unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut t = Tuner::new(env.clone(), config.clone(), &[hint]).unwrap();
            t.advance(15).unwrap();
            (t.trainer().state().digest.clone(), t.pieces.clone())
        })
    };
    let (d1, p1) = run(1);
    let (d4, p4) = run(4);
    assert_eq!(d1, d4);
    assert_eq!(p1, p4);
    assert_ne!(p1[0].describe(), "p = 0.9900", "the hint must have moved");
}

#[test]
fn trained_pieces_move_and_runs_replay_bit_for_bit() {
    let (env, config) = trainable(&fixture("tune-small"));
    let train: Vec<usize> = ["partial", "curriculum"].iter().map(|id| env.piece_index(id).unwrap()).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut t = Tuner::new(env.clone(), config.clone(), &train).unwrap();
            t.advance(12).unwrap();
            (
                t.trainer().state().digest.clone(),
                t.pieces.clone(),
                t.trainer().env().pieces[train[1]].built.clone(),
            )
        })
    };
    let (d1, p1, c1) = run(1);
    let (d2, p2, _) = run(3);
    assert_eq!(d1, d2);
    assert_eq!(p1, p2);
    let BuiltPiece::Curriculum(c) = c1 else { panic!("curriculum") };
    assert!((c.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!(c.weights.iter().all(|w| *w >= 0.05), "the 10% uniform floor keeps every source alive");
    assert_ne!(c.weights, vec![0.5, 0.5], "the curriculum must have moved");
    let weight = env.pieces[train[0]].weight;
    let trained_weight = p1.iter().find(|p| p.id == "partial").unwrap().describe();
    assert_ne!(trained_weight, format!("weight = {weight:.4}"));
}

#[test]
fn study_arms_are_the_runs_they_claim_and_the_grid_is_consistent() {
    let (env, config) = example("withdraw-hint-trained.toml");
    let hint = env.piece_index("hint").unwrap();
    let steps = 10;
    let r = study(&env, &config, &[3, 4], steps, &[hint], &|| {}).unwrap();
    assert_eq!(r.grid_size, grid_values::HINT.len());
    assert!(r.untrained.gain.iter().all(|g| *g == 0.0));
    // The trained hint re-samples every task's other side: twice the rollouts of a plain run.
    assert_eq!(r.trained.compute.rollout_batches, 2 * steps);
    assert!(r.grid_equal_compute.compute.rollout_batches <= r.trained.compute.rollout_batches);
    assert_eq!(r.grid_short_steps, 2 * steps / grid_values::HINT.len() as u64);
    for (k, &seed) in r.seeds.iter().enumerate() {
        // The equal-compute winner is scored by its full-length run, so it can only tie or
        // lose to the best full-length configuration.
        assert!(r.grid_equal_compute.metric[k] <= r.grid_full.metric[k]);
        // The arms are exactly the runs they name: the spec validated again with the seed.
        let seeded = env.reseeded(seed).unwrap();
        let mut plain = gristmill_learn::Trainer::new(seeded.clone(), config.clone()).unwrap();
        let mut tuned = Tuner::new(seeded, config.clone(), &[hint]).unwrap();
        for _ in 0..steps {
            plain.step().unwrap();
            tuned.step().unwrap();
        }
        assert_eq!(r.untrained.metric[k], plain.current_metric());
        assert_eq!(r.trained.metric[k], tuned.trainer().current_metric());
    }
    // A grid entry is the full-length run of its configuration, averaged over the seeds.
    let first = &static_grid(&env, &[hint])[0];
    let direct: f64 = r
        .seeds
        .iter()
        .map(|&seed| {
            let e = apply_static(&env.reseeded(seed).unwrap(), first).unwrap();
            let mut t = gristmill_learn::Trainer::new(e, config.clone()).unwrap();
            for _ in 0..steps {
                t.step().unwrap();
            }
            t.current_metric()
        })
        .sum::<f64>()
        / r.seeds.len() as f64;
    assert_eq!(r.grid[0], ("hint: p = 0".to_string(), direct));
    assert_eq!(study_runs(&env, 2, &[hint]), 2 * (2 + 2 * grid_values::HINT.len() as u64));
}
