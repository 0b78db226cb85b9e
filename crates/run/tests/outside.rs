//! An outside trainer's ledger in the run store: what it stores, what it refuses, and that a
//! run killed between checkpoints resumes to the same table as one never interrupted.

use gristmill_measure::StepContribution;
use gristmill_run::outside::{NewOutsideRun, OutsideError, OutsideRun, OUTSIDE_KIND};
use gristmill_store::Store;
use gristmill_testkit::{fixture, load, scratch_dir};

/// Step `t` of a made-up outside run: 2 rows × 1 column, `M` rising by `0.01 + 0.001 t`, the
/// cells explaining all but a residual of `1e-4`.
fn step(t: u64) -> StepContribution {
    let delta = |s: u64| 0.01 + 0.001 * s as f64;
    // Folded the same way every time, so one step's `after` is the next one's `before` bit for bit.
    let metric = |n: u64| (0..n).fold(0.2, |m, s| m + delta(s));
    let delta = delta(t);
    StepContribution {
        step: t,
        metric_before: metric(t),
        metric_after: metric(t + 1),
        delta_se: Some(0.002),
        cells: vec![0.75 * (delta - 1e-4), 0.25 * (delta - 1e-4)],
        conflict: None,
    }
}

fn rows() -> Vec<String> {
    vec!["exact".into(), "format".into()]
}

fn create(store: Store) -> OutsideRun {
    let env = load(&fixture("credit-base"));
    let text = fixture("credit-base");
    let new = NewOutsideRun {
        spec: &env.spec,
        spec_text: &text,
        trainer: "trl",
        rows: rows(),
        columns: vec!["all".into()],
        steps: 6,
        config: serde_json::json!({"lr": 1e-4}),
    };
    OutsideRun::create(store, new).expect("create")
}

#[test]
fn a_killed_outside_run_resumes_from_its_checkpoint_to_the_same_table() {
    let whole = {
        let mut run = create(Store::open_in_memory().unwrap());
        for t in 0..6 {
            run.observe(step(t)).unwrap();
        }
        run.finish().unwrap()
    };

    let db = scratch_dir("outside-resume").join("runs.db");
    let id = {
        let mut run = create(Store::open(&db).unwrap());
        for t in 0..3 {
            run.observe(step(t)).unwrap();
        }
        run.checkpoint().unwrap();
        // Observed but never checkpointed: lost with the process, redone after the resume.
        run.observe(step(3)).unwrap();
        run.id()
    };
    let mut run = OutsideRun::resume(Store::open(&db).unwrap(), id).unwrap();
    assert_eq!(run.ledger().next_step(), 3, "the ledger resumes at the checkpoint");
    let refused = run.observe(step(4)).unwrap_err();
    assert!(refused.to_string().contains("expects step 3 next"), "{refused}");
    for t in 3..6 {
        run.observe(step(t)).unwrap();
    }
    let resumed = run.finish().unwrap();
    // Same arithmetic in the same order: the tables are equal bit for bit, ids aside.
    assert_eq!(resumed.credit, whole.credit);
    assert_eq!(resumed.steps, 6);
    assert_eq!(resumed.gold_after, whole.gold_after);
    assert_eq!(resumed.delta_se, whole.delta_se);
    let total: f64 = (0..6).map(|t| 0.01 + 0.001 * t as f64).sum();
    assert!((resumed.credit.delta_metric - total).abs() < 1e-12, "{}", resumed.credit.delta_metric);
    // Efficiency with its residual: six steps of 1e-4 each, to rounding.
    assert!((resumed.credit.residual - 6e-4).abs() < 1e-12, "{}", resumed.credit.residual);
    let cells: f64 = resumed.credit.cells.iter().sum();
    assert!((cells + resumed.credit.residual - resumed.credit.delta_metric).abs() < 1e-15);

    let store = Store::open(&db).unwrap();
    let record = store.run(id).unwrap();
    assert_eq!(record.kind.as_str(), OUTSIDE_KIND);
    let stored = store.result(id, "credit").unwrap().expect("the credit result is stored");
    assert_eq!(stored["trainer"], "trl");
    assert_eq!(stored["credit"]["rows"], serde_json::json!(["exact", "format"]));
    let curve = store.metric_series(id, "credit/exact").unwrap();
    assert_eq!(curve.len(), 6, "one point per step, the lost step stored once: {curve:?}");
    assert_eq!(curve.last().unwrap().1, resumed.credit.cells[0]);
    assert_eq!(store.metric_series(id, "delta_se").unwrap().len(), 6);
}

#[test]
fn an_outside_run_refuses_bad_steps_and_other_runs() {
    let mut run = create(Store::open_in_memory().unwrap());
    let mut nan = step(0);
    nan.metric_after = f64::NAN;
    let e = run.observe(nan).unwrap_err();
    assert!(matches!(e, OutsideError::Ledger(_)) && e.to_string().contains("not a finite number"), "{e}");
    let mut short = step(0);
    short.cells.pop();
    let e = run.observe(short).unwrap_err();
    assert!(e.to_string().contains("1 cell contributions, but the ledger has 2 cells"), "{e}");

    let db = scratch_dir("outside-kind").join("runs.db");
    let mut store = Store::open(&db).unwrap();
    let env = load(&fixture("credit-base"));
    store.put_spec(env.spec.hash(), "x", "").unwrap();
    let other = store
        .create_run(&gristmill_store::NewRun::new(gristmill_store::RunKind::Train, env.spec.hash(), 1, 1))
        .unwrap();
    let e = OutsideRun::resume(store, other).err().expect("a train run is not an outside run");
    assert!(e.to_string().contains("not one an outside trainer recorded"), "{e}");
}
