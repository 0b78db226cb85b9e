//! Piece training and the withdrawal protocol on small, seeded runs.

use gristmill_engine::Environment;
use gristmill_learn::TrainConfig;
use gristmill_pieces::BuiltPiece;
use gristmill_tune::{withdraw, Tuner};

fn build(text: &str) -> (Environment, TrainConfig, u64) {
    let (env, config, seed) =
        gristmill_learn::environment_from_toml(text, "test").unwrap_or_else(|e| panic!("{e}"));
    (env, config.expect("trainable policy"), seed)
}

const SPEC: &str = r#"
name = "tune-test"
[run]
seed = 3
tasks_per_step = 32
responses_per_task = 8
[policy]
kind = "loglinear"
[[source]]
id = "count"
family = "counting"
[[source]]
id = "cmp"
family = "comparison"
[[piece]]
id = "gold"
kind = "exact_verifier"
[[piece]]
id = "partial"
kind = "partial_credit"
weight = 0.5
train = true
[[piece]]
id = "curriculum"
kind = "curriculum"
train = true
[[piece]]
id = "hint"
kind = "hint"
params = { probability = 1.0 }
[eval]
size = 128
"#;

#[test]
fn always_on_hint_is_not_withdrawable() {
    let (env, config, seed) = build(SPEC);
    let hint = env.piece_index("hint").unwrap();
    let r = withdraw(&env, &config, seed, hint, 30, 30, &[]).unwrap();
    // With the hint present the model looks far better than it is...
    assert!(r.drop > 0.05, "drop {}", r.drop);
    // ...and after withdrawal it keeps little of that over the never-had-it run.
    let retention = r.retention.unwrap();
    assert!(retention < 0.3, "retention {retention}");
    assert_eq!(r.metric_at_removal, r.metric_with - r.drop);
}

#[test]
fn trained_pieces_move_and_runs_replay_bit_for_bit() {
    let (env, config, seed) = build(SPEC);
    let train: Vec<usize> = ["partial", "curriculum"].iter().map(|id| env.piece_index(id).unwrap()).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut t = Tuner::new(env.clone(), config.clone(), seed, &train).unwrap();
            for _ in 0..12 {
                t.step().unwrap();
            }
            (t.trainer.state.digest.clone(), t.pieces.clone(), t.trainer.env.pieces[train[1]].built.clone())
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
