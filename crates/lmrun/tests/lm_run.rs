//! The language-model trainer on a tiny random llama built in code (`tests/fixtures/lm-tiny.toml`:
//! two sources, three reward pieces, KL and weight decay): the split, both credited metrics,
//! determinism across thread counts, resume, coalitions, and typed errors.

use gristmill_engine::Coalition;
use gristmill_lm_run::{leave_one_out, LmCheckpoint, LmConfig, LmRun, LmRunError, GLOBAL_COLUMN};
use gristmill_testkit::{fixture, load};

/// The fixture with extra `[policy.params]` lines.
fn spec(extra: &str) -> String {
    fixture("lm-tiny").replace("checkpoint_every = 2\n", &format!("checkpoint_every = 2\n{extra}\n"))
}

fn config_of(text: &str) -> (gristmill_engine::Environment, LmConfig) {
    let env = load(text);
    let config = LmConfig::of(&env.spec).expect("an lm policy").unwrap_or_else(|e| panic!("{e}"));
    (env, config)
}

fn run_of(text: &str) -> LmRun {
    let (env, config) = config_of(text);
    LmRun::new(env, config).unwrap_or_else(|e| panic!("{e}"))
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

#[test]
fn every_step_splits_exactly_and_the_smooth_metric_closes() {
    let mut run = run_of(&spec(""));
    assert_eq!(run.rows(), ["exact", "length", "control", "kl", "weight_decay"]);
    assert_eq!(run.columns(), ["add", "cmp", GLOBAL_COLUMN]);
    let l0 = run.loglik_before().unwrap();
    let mut l_prev = l0;
    for _ in 0..4 {
        let s = run.step().unwrap();
        // The Owen split of Adam's step and the decoupled decay sum to the real step; the
        // shares are computed in f64, so the relative error is a few ulps.
        assert!(s.split_error <= 1e-12, "step {}: split error {:e}", s.step, s.split_error);
        // L is evaluated in float32 (the model's precision): each value carries a rounding
        // of ~1e-7 relative to |L| (measured residuals 5e-7..2e-6 with |L| ≈ 60), and
        // 4-node Gauss–Legendre is exact far below that at this step size.
        let l = s.loglik.as_ref().unwrap();
        let l_after = l.metric;
        let bound = 1e-6 * (l_prev.abs() + l_after.abs());
        assert!(
            l.residual.abs() <= bound,
            "step {}: residual {:e} > {bound:e} (ΔL {:e})",
            s.step,
            l.residual,
            l.delta_metric
        );
        assert!(
            l.delta_metric.abs() > 100.0 * bound,
            "the step must move L well past rounding ({:e})",
            l.delta_metric
        );
        l_prev = l_after;
        // The gold metric is estimated, with the paired standard error of ΔM.
        assert!(s.gold.as_ref().unwrap().delta_se.is_some());
    }
    // Weight decay lives in the (global) column only; reward pieces and KL never touch it.
    let ledger = run.loglik_ledger().unwrap();
    let cols = ledger.columns().len();
    for (r, id) in ledger.rows().iter().enumerate() {
        let row = &ledger.cells()[r * cols..(r + 1) * cols];
        if id == "weight_decay" {
            assert_eq!(&row[..cols - 1], &[0.0, 0.0]);
            assert_ne!(row[cols - 1], 0.0);
        } else if id == "exact" && run.mean_rewards()[0] == 0.0 {
            // A random model never answers right: no reward variation, no gradient, and
            // exactly no credit (not a small number).
            assert!(row.iter().all(|v| *v == 0.0), "{id}: {row:?}");
        } else {
            assert_eq!(row[cols - 1], 0.0, "{id} in (global)");
            assert!(row[..cols - 1].iter().any(|v| *v != 0.0), "{id} has no credit at all");
        }
    }
}

#[test]
fn the_same_digest_on_one_and_two_threads() {
    let text = spec("");
    let one = in_pool(1, || {
        let mut r = run_of(&text);
        r.advance(3).unwrap();
        (r.digest(), bits(&r.model().params()))
    });
    let two = in_pool(2, || {
        let mut r = run_of(&text);
        r.advance(3).unwrap();
        (r.digest(), bits(&r.model().params()))
    });
    assert_eq!(one, two);
}

#[test]
fn a_resumed_run_reaches_the_same_bits() {
    let text = spec("");
    let mut straight = run_of(&text);
    straight.advance(4).unwrap();
    let mut first = run_of(&text);
    first.advance(2).unwrap();
    let bytes = first.checkpoint().encode();
    drop(first);
    let (env, config) = config_of(&text);
    let mut resumed = LmRun::resume(env, config, &bytes).unwrap();
    assert_eq!(resumed.steps_done(), 2);
    resumed.advance(2).unwrap();
    assert_eq!(resumed.digest(), straight.digest());
    assert_eq!(bits(&resumed.model().params()), bits(&straight.model().params()));
    assert_eq!(resumed.loglik_ledger(), straight.loglik_ledger());
    assert_eq!(resumed.gold_ledger(), straight.gold_ledger());
}

#[test]
fn credit_does_not_change_the_trajectory() {
    let mut with = run_of(&spec(""));
    let mut without = run_of(&spec("credit_nodes = 0"));
    assert!(without.loglik_ledger().is_none());
    with.advance(3).unwrap();
    without.advance(3).unwrap();
    assert_eq!(bits(&with.model().params()), bits(&without.model().params()));
    // The full coalition of a leave-one-out computation is this very run (common random
    // numbers): its value is the run's final M, to the bit.
    let (env, config) = config_of(&spec(""));
    let (loo, values) = leave_one_out(&env, &config, 3, &mut |_| {}).unwrap();
    assert_eq!(loo.len(), 3);
    assert_eq!(values[&0b111].to_bits(), with.metric_now().unwrap().0.to_bits());
    assert!(loo.iter().all(|v| v.is_finite()));
}

#[test]
fn a_switched_off_piece_gets_exactly_nothing() {
    let (env, config) = config_of(&spec(""));
    let length = env.piece_index("length").unwrap();
    let mask = 0b111 & !(1u64 << length);
    let mut run = LmRun::new(env.with_coalition(Coalition::from_mask(3, mask)), config).unwrap();
    run.advance(2).unwrap();
    for ledger in [run.loglik_ledger().unwrap(), run.gold_ledger().unwrap()] {
        let cols = ledger.columns().len();
        let r = ledger.rows().iter().position(|x| x == "length").unwrap();
        assert!(ledger.cells()[r * cols..(r + 1) * cols].iter().all(|v| *v == 0.0));
    }
    // The others still learn.
    let l = run.loglik_ledger().unwrap();
    assert!(l.cells().iter().any(|v| *v != 0.0));
}

#[test]
fn bad_settings_are_typed_errors_naming_the_spec_parameter() {
    let err = |text: &str| {
        let (env, config) = config_of(text);
        LmRun::new(env, config).expect_err("must fail").to_string()
    };
    let e = err(&spec("").replace("lora_targets = \"q,v,o\"", "lora_targets = \"q,xq\""));
    assert!(e.contains("unknown LoRA target `xq`") && e.contains("policy.lora_targets"), "{e}");
    let e = err(&spec("").replace("tiny_context = 256", "tiny_context = 16"));
    assert!(e.contains("gold suite") && e.contains("context window of 16"), "{e}");
    let e = err(&spec("gold_completion = \"Answer: {gold} {oops}\""));
    assert!(e.contains("policy.gold_completion") && e.contains("only template variable"), "{e}");
    let e = err(&format!("{}\n[[piece]]\nid = \"hint\"\nkind = \"hint\"\n", spec("")));
    assert!(e.contains("piece `hint` is a hint"), "{e}");
    let env = load(&spec("").replace("lora_rank = 4", "lora_rank = 0"));
    let e = LmConfig::of(&env.spec).unwrap().unwrap_err().to_string();
    assert!(e.contains("nothing to train"), "{e}");
}

#[test]
fn a_diverging_step_is_refused_and_leaves_the_run_where_it_was() {
    // Decoupled decay of ηλ = 1000 multiplies the parameters by −999 a step: within a few
    // steps the forward pass overflows float32.
    let mut run = run_of(
        &spec("")
            .replace("learning_rate = 0.01", "learning_rate = 100.0")
            .replace("weight_decay = 0.01", "weight_decay = 10.0"),
    );
    let mut failed = None;
    for _ in 0..12 {
        let before = (run.steps_done(), bits(&run.model().params()), run.step_digest().to_string());
        match run.step() {
            Ok(_) => {}
            Err(e) => {
                failed = Some((e, before));
                break;
            }
        }
    }
    let (e, before) = failed.expect("ηλ = 1000 must diverge within 12 steps");
    assert!(matches!(e, LmRunError::Model { step: Some(_), .. } | LmRunError::NonFinite { .. }), "{e}");
    assert!(e.to_string().starts_with(&format!("step {}", before.0)), "{e}");
    assert_eq!((run.steps_done(), bits(&run.model().params()), run.step_digest().to_string()), before);
}

#[test]
fn checkpoints_of_another_format_are_refused_by_name() {
    let e = LmCheckpoint::decode(b"GMCHKPT\0\x02\0\0\0xx").unwrap_err().to_string();
    assert!(e.contains("gristmill-learn"), "{e}");
    let mut bytes = run_of(&spec("")).checkpoint().encode();
    bytes[8] = 9;
    let e = LmCheckpoint::decode(&bytes).unwrap_err().to_string();
    assert!(e.contains("format 9"), "{e}");
}

/// A user's dataset (`examples/word-problems.toml`: JSON Lines word problems with a system
/// prompt, math/numeric/match/layout verifiers) trained by the language model: the rows'
/// chat messages reach the model, every verifier is a credited row, and leave-one-out runs
/// on common random numbers.
#[test]
fn a_dataset_environment_trains_and_is_credited() {
    let root = gristmill_testkit::root();
    let data = root.join("examples/data/word_problems.jsonl");
    let text = gristmill_testkit::example("word-problems.toml")
        .replace("examples/data/word_problems.jsonl", data.to_str().unwrap())
        .replace("[policy]\nkind = \"oracle\"\nparams = { error_rate = 0.3 }\n", "")
        .replace("tasks_per_step = 16", "tasks_per_step = 2")
        .replace("responses_per_task = 4", "responses_per_task = 3")
        .replace("size = 24", "size = 2")
        + "\n[policy]\nkind = \"lm\"\n[policy.params]\nmodel = \"tiny\"\ntiny_context = 512\nlora_rank = 2\n\
           learning_rate = 0.01\nmax_new_tokens = 6\neval_samples = 2\n";
    let mut run = run_of(&text);
    assert_eq!(run.rows(), ["math", "numeric", "strict", "layout"]);
    for _ in 0..2 {
        let s = run.step().unwrap();
        let l = s.loglik.unwrap();
        assert!(l.residual.abs() <= 1e-6 * 2.0 * l.metric.abs().max(1.0), "{l:?}");
    }
    let (env, config) = config_of(&text);
    let (loo, values) = leave_one_out(&env, &config, 2, &mut |_| {}).unwrap();
    assert_eq!(loo.len(), 4);
    assert_eq!(values[&0b1111].to_bits(), run.metric_now().unwrap().0.to_bits());
}

/// A rubric judge (`examples/writing.toml`, a grader scripted over HTTP) trains the language
/// model with each rubric item as its own credit row: `rubric/on_task` and `rubric/concise`
/// take the judge's place, each credited, and the credit still closes on `L`.
#[test]
fn each_rubric_item_is_its_own_credited_row() {
    use gristmill_testkit::http::{chat_completion, ScriptedServer};
    // Verdicts that vary with the request (so items disagree), the same for the same request.
    let grader = ScriptedServer::start(|body| {
        let odd = body.bytes().map(u64::from).sum::<u64>();
        let yes = if body.contains("three sentences") { odd % 3 == 0 } else { odd % 2 == 0 };
        ("200 OK", chat_completion(if yes { "VERDICT: yes" } else { "VERDICT: no" }))
    });
    let root = gristmill_testkit::root();
    let text = gristmill_testkit::example("writing.toml")
        .replace("examples/data/writing.jsonl", root.join("examples/data/writing.jsonl").to_str().unwrap())
        .replace("http://127.0.0.1:8089/v1", &grader.url)
        .replace("[policy]\nkind = \"oracle\"\nparams = { error_rate = 0.3 }\n", "")
        .replace("tasks_per_step = 4", "tasks_per_step = 2")
        .replace("responses_per_task = 2", "responses_per_task = 4")
        + "\n[policy]\nkind = \"lm\"\n[policy.params]\nmodel = \"tiny\"\ntiny_context = 512\nlora_rank = 2\n\
           learning_rate = 0.01\nmax_new_tokens = 6\neval_samples = 2\n";
    let mut run = run_of(&text);
    assert_eq!(run.rows(), ["rubric/on_task", "rubric/concise", "length"]);
    for _ in 0..2 {
        let s = run.step().unwrap();
        let l = s.loglik.unwrap();
        assert!(l.residual.abs() <= 1e-6 * 2.0 * l.metric.abs().max(1.0), "{l:?}");
    }
    let l = run.loglik_ledger().unwrap();
    let on_task = l.row("rubric/on_task").unwrap();
    let concise = l.row("rubric/concise").unwrap();
    assert!(on_task != 0.0 && concise != 0.0 && on_task != concise, "{on_task} {concise}");
    assert!(grader.requests() > 0);
}
