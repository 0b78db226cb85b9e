//! The run store through its public API.

mod common;

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gristmill_store::{
    text_digest, CheckpointRetention, NewRun, RunId, RunKind, RunStatus, Store, StoreError, SCHEMA_VERSION,
};
use serde_json::json;

use common::TempDb;

const SPEC: &str = "5eed";

fn with_run(store: &mut Store, steps: u64) -> RunId {
    store.put_spec(SPEC, "addition", "name = 'addition'\n").unwrap();
    store.create_run(&NewRun::new(RunKind::Run, SPEC, 7, steps)).unwrap()
}

/// Awkward values whose bits must survive: rounding residue, extremes, subnormals, signed zero.
const AWKWARD: [f64; 12] = [
    0.1 + 0.2,
    1e-300,
    -0.0,
    0.0,
    5e-324, // smallest subnormal
    f64::MIN_POSITIVE,
    f64::MAX,
    f64::MIN,
    1.0 / 3.0,
    std::f64::consts::PI,
    -1e300,
    2.0e-308 / 3.0, // a subnormal with many mantissa bits
];

// --- opening and migrations ------------------------------------------------------------------

/// Every schema object's SQL, by name.
fn schema_sql(raw: &rusqlite::Connection) -> Vec<Option<String>> {
    let mut stmt = raw.prepare("SELECT sql FROM sqlite_master ORDER BY name").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn fresh_file_gets_schema_and_wal_and_reopen_is_idempotent() {
    let db = TempDb::new("fresh");
    let run = {
        let mut store = Store::open(db.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.path(), Some(db.path()));
        with_run(&mut store, 3)
    };
    // WAL is a property of the file: an independent connection must see it.
    let raw = rusqlite::Connection::open(db.path()).unwrap();
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let schema_before = schema_sql(&raw);
    drop(raw);

    for _ in 0..2 {
        let store = Store::open(db.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.run(run).unwrap().steps, 3, "data survives reopening");
    }
    let raw = rusqlite::Connection::open(db.path()).unwrap();
    let schema_after = schema_sql(&raw);
    assert_eq!(schema_before, schema_after);
}

#[test]
fn database_from_the_future_is_refused() {
    let db = TempDb::new("future");
    drop(Store::open(db.path()).unwrap());
    let raw = rusqlite::Connection::open(db.path()).unwrap();
    raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    drop(raw);

    let err = Store::open(db.path()).unwrap_err();
    match &err {
        StoreError::FutureSchema { path, found, supported } => {
            assert_eq!((path.as_path(), *found, *supported), (db.path(), SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected FutureSchema, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&db.path().display().to_string()) && msg.contains("newer"), "{msg}");
}

#[test]
fn a_file_that_is_not_a_database_is_an_open_error_naming_it() {
    let db = TempDb::new("garbage");
    std::fs::write(db.path(), b"this is not a SQLite database, just some bytes that go on for a while")
        .unwrap();
    let err = Store::open(db.path()).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains(&db.path().display().to_string()), "{err}");
}

/// The schema of version 1 as gristmill shipped it: the crate's own file, pinned by its digest
/// below, so that the migration test opens what files in the wild hold and an edit of the
/// released version fails a test instead of passing silently.
const V1_DDL: &str = include_str!("../src/schema_v1.sql");
const V1_DIGEST: &str = "4febee089c46a9fe8cf2b255a6ef768d207bb0a4b92f84ad4f6c9bc7497a341e";

/// The metric (run, step, name, value) rows the version-1 file of the migration test holds.
fn version_1_metrics() -> Vec<(i64, u64, String, f64)> {
    let mut rows = Vec::new();
    for run in [1i64, 2] {
        for step in [0u64, 1, 2, 9, 10, 1000] {
            for (i, v) in AWKWARD.iter().enumerate() {
                // Names in an order unlike their sorted order, and one name per run only.
                let name = if i == 11 { format!("only.run{run}") } else { format!("m.{}", 11 - i) };
                rows.push((run, step, name, *v * (step as f64 + 1.0) * if run == 2 { -1.0 } else { 1.0 }));
            }
        }
    }
    rows
}

/// Writes a version-1 store by hand, as the gristmill of schema version 1 left it: two specs,
/// a finished run and a running one (the process died), metrics, checkpoints, a result.
fn write_version_1_store(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", "wal").unwrap();
    c.execute_batch(V1_DDL).unwrap();
    c.pragma_update(None, "user_version", 1).unwrap();
    c.execute_batch(
        "INSERT INTO specs VALUES ('5eed', 'addition', 'name = ''addition''\n', 100);
         INSERT INTO specs VALUES ('beef', 'maze', '# maze\nname = ''maze''\n', 200);
         INSERT INTO runs (kind, spec_hash, seed, steps, steps_done, threads, status, digest, summary,
                           config, created_at_ms, updated_at_ms)
              VALUES ('train', '5eed', -1, 1001, 1001, 2, 'finished', 'ab', '{\"gold\":0.5}', '{}', 300, 400);
         INSERT INTO runs (kind, spec_hash, seed, steps, steps_done, threads, status, config, parent_id,
                           created_at_ms, updated_at_ms)
              VALUES ('train', 'beef', 7, 2000, 11, 1, 'running', '{}', 1, 500, 600);
         INSERT INTO checkpoints VALUES (2, 10, x'00ff01', '0a', 550);
         INSERT INTO checkpoints VALUES (2, 1000, x'02', '0b', 560);
         INSERT INTO results VALUES (1, 'credit', '{\"residual\":-0.0}', 410, 410);",
    )
    .unwrap();
    let mut insert = c.prepare("INSERT INTO step_metrics VALUES (?1, ?2, ?3, ?4, ?5)").unwrap();
    for (run, step, name, value) in version_1_metrics() {
        insert.execute(rusqlite::params![run, step as i64, name, value.to_bits() as i64, value]).unwrap();
    }
}

#[test]
fn the_released_version_1_schema_is_unchanged() {
    assert_eq!(text_digest(V1_DDL), V1_DIGEST, "src/schema_v1.sql was edited; add a migration instead");
}

#[test]
fn a_version_1_store_is_migrated_and_reads_back_bit_for_bit() {
    let db = TempDb::new("v1");
    write_version_1_store(db.path());
    let mut store = Store::open(db.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);

    // Specs: each hash has its one text, and the runs of version 1 ran it.
    for (hash, text) in [("5eed", "name = 'addition'\n"), ("beef", "# maze\nname = 'maze'\n")] {
        let spec = store.spec(hash).unwrap().unwrap();
        assert_eq!((spec.text.as_str(), spec.created_at_ms), (text, if hash == "5eed" { 100 } else { 200 }));
        let texts = store.spec_texts(hash).unwrap();
        assert_eq!(texts.len(), 1);
        assert_eq!(
            (texts[0].digest.clone(), texts[0].first_seen_ms),
            (text_digest(text), spec.created_at_ms)
        );
    }
    let finished = store.run(RunId(1)).unwrap();
    assert_eq!((finished.status, finished.seed, finished.steps_done), (RunStatus::Finished, u64::MAX, 1001));
    assert_eq!(finished.spec_text, Some(text_digest("name = 'addition'\n")));
    let running = store.run(RunId(2)).unwrap();
    assert_eq!((running.status, running.parent), (RunStatus::Running, Some(RunId(1))));
    assert_eq!(store.result(RunId(1), "credit").unwrap(), Some(json!({ "residual": -0.0 })));

    // Every metric, bit for bit, in (step, name) order, and each series.
    let expected = version_1_metrics();
    for run in [RunId(1), RunId(2)] {
        let mut want: Vec<(u64, String, u64)> = expected
            .iter()
            .filter(|(r, ..)| *r == run.0)
            .map(|(_, step, name, v)| (*step, name.clone(), v.to_bits()))
            .collect();
        want.sort();
        let got: Vec<(u64, String, u64)> = store
            .step_metrics(run)
            .unwrap()
            .into_iter()
            .map(|m| (m.step, m.name, m.value.to_bits()))
            .collect();
        assert_eq!(got, want, "run {run}");
        for name in ["m.0", "m.11", &format!("only.run{run}")] {
            let series: Vec<(u64, u64)> =
                store.metric_series(run, name).unwrap().into_iter().map(|(s, v)| (s, v.to_bits())).collect();
            let want_series: Vec<(u64, u64)> =
                want.iter().filter(|(_, n, _)| n == name).map(|(s, _, b)| (*s, *b)).collect();
            assert_eq!(series, want_series, "run {run}, {name}");
        }
    }
    assert!(store.metric_series(RunId(1), "only.run2").unwrap().is_empty());

    // Checkpoints survive; the running run (its process is long gone) can be taken up again.
    assert_eq!(store.checkpoint_steps(RunId(2)).unwrap(), vec![10, 1000]);
    assert_eq!(store.latest_checkpoint(RunId(2)).unwrap().unwrap().bytes, vec![2]);
    // And the migrated file takes new writes: a new text under an old hash, a new run.
    store.put_spec("5eed", "addition", "# edited\nname = 'addition'\n").unwrap();
    assert_eq!(store.spec_texts("5eed").unwrap().len(), 2);
    let new = store.create_run(&NewRun::new(RunKind::Train, "5eed", 1, 5)).unwrap();
    store.put_step_metrics(new, 0, &[("m.0", -0.0)]).unwrap();
    assert!(store.metric_series(new, "m.0").unwrap()[0].1.is_sign_negative());
    drop(store);
    // Reopening does not migrate again.
    assert_eq!(Store::open(db.path()).unwrap().step_metrics(RunId(1)).unwrap().len(), 6 * 12);
}

#[test]
fn in_memory_store_has_the_schema() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.path(), None);
    assert!(store.list_runs(10).unwrap().is_empty());
}

// --- specs and runs --------------------------------------------------------------------------

#[test]
fn specs_round_trip_and_storing_a_text_again_is_a_no_op() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.spec(SPEC).unwrap(), None);
    assert!(store.spec_texts(SPEC).unwrap().is_empty());
    let digest = store.put_spec(SPEC, "addition", "name = 'addition'\n").unwrap();
    assert_eq!(digest, text_digest("name = 'addition'\n"));
    assert_eq!(digest.len(), 64);
    // Idempotent: the same text is stored once, and the first name is kept.
    assert_eq!(store.put_spec(SPEC, "renamed", "name = 'addition'\n").unwrap(), digest);
    let spec = store.spec(SPEC).unwrap().unwrap();
    assert_eq!(
        (spec.hash.as_str(), spec.name.as_str(), spec.text.as_str()),
        (SPEC, "addition", "name = 'addition'\n")
    );
    assert!(spec.created_at_ms > 0);
    assert_eq!(store.spec_texts(SPEC).unwrap().len(), 1);
}

#[test]
fn a_spec_edited_only_in_a_comment_is_stored_beside_the_first_text() {
    // The caller hashes the canonical spec (comments and layout dropped), so two texts that
    // differ only in a comment arrive under one content hash. Both must be accepted and kept.
    let mut store = Store::open_in_memory().unwrap();
    let first = "name = 'addition'\n";
    let edited = "# tuned the comment only\nname = 'addition'\n";
    let d1 = store.put_spec(SPEC, "addition", first).unwrap();
    std::thread::sleep(Duration::from_millis(2)); // distinct first-seen times
    let d2 = store.put_spec(SPEC, "addition", edited).unwrap();
    assert_ne!(d1, d2);
    assert_eq!(store.put_spec(SPEC, "addition", edited).unwrap(), d2, "idempotent");

    // `spec` keeps showing the first text; `spec_texts` lists both, oldest first.
    assert_eq!(store.spec(SPEC).unwrap().unwrap().text, first);
    let texts = store.spec_texts(SPEC).unwrap();
    let got: Vec<(&str, &str, &str)> =
        texts.iter().map(|t| (t.hash.as_str(), t.digest.as_str(), t.text.as_str())).collect();
    assert_eq!(got, vec![(SPEC, d1.as_str(), first), (SPEC, d2.as_str(), edited)]);
    assert!(texts[0].first_seen_ms <= texts[1].first_seen_ms);
    assert_eq!(store.spec_text(SPEC, &d2).unwrap().unwrap().text, edited);
    assert_eq!(store.spec_text(SPEC, &text_digest("other")).unwrap(), None);

    // A run records which text it ran; a plain `create_run` records none.
    let with_text = store.create_run_with_spec_text(&NewRun::new(RunKind::Run, SPEC, 7, 1), &d2).unwrap();
    assert_eq!(store.run(with_text).unwrap().spec_text.as_deref(), Some(d2.as_str()));
    let plain = store.create_run(&NewRun::new(RunKind::Run, SPEC, 7, 1)).unwrap();
    assert_eq!(store.run(plain).unwrap().spec_text, None);
    // A digest that is not a text of the run's spec is refused, naming both.
    let stray = text_digest("name = 'stray'\n");
    let err = store.create_run_with_spec_text(&NewRun::new(RunKind::Run, SPEC, 7, 1), &stray).unwrap_err();
    assert!(
        matches!(&err, StoreError::SpecTextNotFound { hash, digest } if hash == SPEC && *digest == stray),
        "{err:?}"
    );
    assert_eq!(store.list_runs(10).unwrap().len(), 2);
}

#[test]
fn runs_round_trip_every_field() {
    let mut store = Store::open_in_memory().unwrap();
    let parent = with_run(&mut store, 10);
    let config = json!({ "seed": 1, "steps": 20, "threads": null, "lr": 0.1 + 0.2 });
    let new = NewRun {
        kind: RunKind::Other("replay".into()),
        spec_hash: SPEC.into(),
        seed: u64::MAX, // needs all 64 bits
        steps: 20,
        threads: 8,
        config: config.clone(),
        parent: Some(parent),
    };
    let id = store.create_run(&new).unwrap();
    let r = store.run(id).unwrap();
    assert_eq!(r.id, id);
    assert_eq!(r.kind, RunKind::Other("replay".into()));
    assert_eq!(r.spec_hash, SPEC);
    assert_eq!(r.seed, u64::MAX);
    assert_eq!((r.steps, r.steps_done, r.threads), (20, 0, 8));
    assert_eq!(r.status, RunStatus::Running);
    assert_eq!((r.digest, r.summary, r.error), (None, None, None));
    assert_eq!(r.config, config);
    assert_eq!(r.parent, Some(parent));
    assert!(r.created_at_ms > 0 && r.updated_at_ms >= r.created_at_ms);

    store.set_progress(id, 12).unwrap();
    assert_eq!(store.run(id).unwrap().steps_done, 12);
    let summary = json!({ "gold": 0.1 + 0.2, "tiny": 1e-300, "pieces": ["a", "b"] });
    store.finish_run(id, "0123456789abcdef", &summary).unwrap();
    let r = store.run(id).unwrap();
    assert_eq!(r.status, RunStatus::Finished);
    assert_eq!(r.steps_done, 20, "finished means every requested step was done");
    assert_eq!(r.digest.as_deref(), Some("0123456789abcdef"));
    assert_eq!(r.summary, Some(summary));
    // JSON floats come back with their exact bits.
    let gold = r.summary.as_ref().unwrap()["gold"].as_f64().unwrap();
    assert_eq!(gold.to_bits(), (0.1f64 + 0.2).to_bits());
    assert_eq!(r.summary.as_ref().unwrap()["tiny"].as_f64().unwrap().to_bits(), 1e-300f64.to_bits());
}

#[test]
fn known_kinds_round_trip_as_their_variants() {
    let mut store = Store::open_in_memory().unwrap();
    store.put_spec(SPEC, "s", "").unwrap();
    for kind in
        [RunKind::Run, RunKind::Train, RunKind::Credit, RunKind::Withdraw, RunKind::Tune, RunKind::Transfer]
    {
        let id = store.create_run(&NewRun::new(kind.clone(), SPEC, 0, 1)).unwrap();
        assert_eq!(store.run(id).unwrap().kind, kind);
    }
}

#[test]
fn list_runs_is_newest_first_and_limited() {
    let mut store = Store::open_in_memory().unwrap();
    let ids: Vec<RunId> = (0..5).map(|_| with_run(&mut store, 1)).collect();
    let listed: Vec<RunId> = store.list_runs(3).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![ids[4], ids[3], ids[2]]);
    assert_eq!(store.list_runs(100).unwrap().len(), 5);
    assert!(store.list_runs(0).unwrap().is_empty());
}

#[test]
fn status_moves_once_from_running() {
    let mut store = Store::open_in_memory().unwrap();
    let failed = with_run(&mut store, 5);
    store.fail_run(failed, "policy diverged at step 3").unwrap();
    let r = store.run(failed).unwrap();
    assert_eq!((r.status, r.error.as_deref()), (RunStatus::Failed, Some("policy diverged at step 3")));

    let stopped = with_run(&mut store, 5);
    store.set_progress(stopped, 2).unwrap();
    store.stop_run(stopped).unwrap();
    let r = store.run(stopped).unwrap();
    assert_eq!((r.status, r.steps_done), (RunStatus::Stopped, 2));

    // An ended run cannot be finished, failed, stopped or progressed: a digest is never overwritten.
    let err = store.finish_run(failed, "ab", &json!({})).unwrap_err();
    assert!(matches!(err, StoreError::NotRunning { status: RunStatus::Failed, .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("run {failed} is failed")), "{err}");
    let finished = with_run(&mut store, 1);
    store.finish_run(finished, "ab", &json!(null)).unwrap();
    assert!(matches!(store.finish_run(finished, "cd", &json!(null)), Err(StoreError::NotRunning { .. })));
    assert_eq!(store.run(finished).unwrap().digest.as_deref(), Some("ab"));
    assert!(matches!(store.fail_run(stopped, "late"), Err(StoreError::NotRunning { .. })));
    assert!(matches!(store.stop_run(finished), Err(StoreError::NotRunning { .. })));
    assert!(matches!(store.set_progress(finished, 9), Err(StoreError::NotRunning { .. })));

    // A stopped run is paused, not ended: leasing it again sets it running (and nothing else);
    // finished and failed runs stay ended.
    let me = gristmill_store::lease::LeaseHolder::this_process();
    store.acquire_lease(stopped, &me).unwrap();
    let r = store.run(stopped).unwrap();
    assert_eq!((r.status, r.steps_done), (RunStatus::Running, 2));
    store.set_progress(stopped, 3).unwrap();
    for ended in [failed, finished] {
        let err = store.acquire_lease(ended, &me).unwrap_err();
        assert!(matches!(err, StoreError::NotRunning { .. }), "{err:?}");
    }
}

#[test]
fn missing_run_errors_name_the_id() {
    let mut store = Store::open_in_memory().unwrap();
    let missing = RunId(424242);
    let err = store.run(missing).unwrap_err();
    assert!(matches!(err, StoreError::RunNotFound(RunId(424242))), "{err:?}");
    assert!(err.to_string().contains("424242"), "{err}");
    // Every run-scoped call says the same, reads included (not an empty list).
    assert!(matches!(store.step_metrics(missing), Err(StoreError::RunNotFound(_))));
    assert!(matches!(store.latest_checkpoint(missing), Err(StoreError::RunNotFound(_))));
    assert!(matches!(store.put_step_metrics(missing, 0, &[("gold", 1.0)]), Err(StoreError::RunNotFound(_))));
    assert!(matches!(store.fail_run(missing, "x"), Err(StoreError::RunNotFound(_))));
    assert!(matches!(store.put_result(missing, "x", &json!(1)), Err(StoreError::RunNotFound(_))));
    // A parent or source run that does not exist is refused too.
    store.put_spec(SPEC, "s", "").unwrap();
    let orphan = NewRun { parent: Some(missing), ..NewRun::new(RunKind::Run, SPEC, 0, 1) };
    assert!(matches!(store.create_run(&orphan), Err(StoreError::RunNotFound(RunId(424242)))));
    assert!(matches!(
        store.put_artifact("h", "k", "n", &json!({}), Some(missing)),
        Err(StoreError::RunNotFound(_))
    ));
}

#[test]
fn a_run_needs_a_stored_spec() {
    let mut store = Store::open_in_memory().unwrap();
    let err = store.create_run(&NewRun::new(RunKind::Run, "feed", 0, 1)).unwrap_err();
    assert!(matches!(&err, StoreError::SpecNotFound(h) if h == "feed"), "{err:?}");
    assert!(store.list_runs(10).unwrap().is_empty());
}

#[test]
fn digests_must_be_lowercase_hex() {
    let mut store = Store::open_in_memory().unwrap();
    let run = with_run(&mut store, 1);
    for bad in ["", "ABCD", "12 34", "xyz"] {
        let err = store.finish_run(run, bad, &json!({})).unwrap_err();
        assert!(matches!(err, StoreError::InvalidDigest { .. }), "{bad:?}: {err:?}");
        assert!(matches!(store.put_checkpoint(run, 1, b"x", bad), Err(StoreError::InvalidDigest { .. })));
    }
    assert_eq!(store.run(run).unwrap().status, RunStatus::Running);
}

#[test]
fn steps_beyond_i64_are_refused_not_wrapped() {
    let mut store = Store::open_in_memory().unwrap();
    let run = with_run(&mut store, 1);
    let err = store.create_run(&NewRun::new(RunKind::Run, SPEC, 0, u64::MAX)).unwrap_err();
    assert!(matches!(err, StoreError::OutOfRange { value: u64::MAX, .. }), "{err:?}");
    assert!(matches!(
        store.put_step_metrics(run, 1 << 63, &[("g", 1.0)]),
        Err(StoreError::OutOfRange { .. })
    ));
}

// --- step metrics ----------------------------------------------------------------------------

#[test]
fn metrics_round_trip_bit_exactly_through_a_file() {
    let db = TempDb::new("bits");
    let run = {
        let mut store = Store::open(db.path()).unwrap();
        let run = with_run(&mut store, 2);
        let metrics: Vec<(String, f64)> =
            AWKWARD.iter().enumerate().map(|(i, v)| (format!("m{i:02}"), *v)).collect();
        store.put_step_metrics(run, 0, &metrics).unwrap();
        run
    };
    let store = Store::open(db.path()).unwrap(); // read back from disk, not a cache
    let stored = store.step_metrics(run).unwrap();
    assert_eq!(stored.len(), AWKWARD.len());
    for (i, (m, v)) in stored.iter().zip(AWKWARD).enumerate() {
        assert_eq!((m.step, m.name.as_str()), (0, format!("m{i:02}").as_str()));
        assert_eq!(m.value.to_bits(), v.to_bits(), "{} stored as {:?}, expected {v:?}", m.name, m.value);
    }
    let series = store.metric_series(run, "m02").unwrap();
    assert_eq!(series.len(), 1);
    assert!(series[0].1 == 0.0 && series[0].1.is_sign_negative(), "-0.0 keeps its sign");
}

#[test]
fn metrics_are_ordered_by_step_then_name() {
    let mut store = Store::open_in_memory().unwrap();
    let run = with_run(&mut store, 12);
    // Written out of order; steps 2 and 10 check numeric (not text) step order.
    store.put_step_metrics(run, 10, &[("reward.b", 1.0), ("gold", 2.0)]).unwrap();
    store.put_step_metrics(run, 2, &[("reward.a", 3.0), ("credit.a", 4.0)]).unwrap();
    let got: Vec<(u64, String, f64)> =
        store.step_metrics(run).unwrap().into_iter().map(|m| (m.step, m.name, m.value)).collect();
    let want = vec![
        (2, "credit.a".to_string(), 4.0),
        (2, "reward.a".to_string(), 3.0),
        (10, "gold".to_string(), 2.0),
        (10, "reward.b".to_string(), 1.0),
    ];
    assert_eq!(got, want);
    assert_eq!(store.metric_series(run, "gold").unwrap(), vec![(10, 2.0)]);
}

#[test]
fn non_finite_metrics_are_refused_naming_run_step_and_metric() {
    let mut store = Store::open_in_memory().unwrap();
    let run = with_run(&mut store, 10);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = store.put_step_metrics(run, 7, &[("gold", 0.5), ("reward.verifier", bad)]).unwrap_err();
        match &err {
            StoreError::NonFinite { run: r, step, name, value } => {
                assert_eq!((*r, *step, name.as_str()), (run, 7, "reward.verifier"));
                assert_eq!(value.to_bits(), bad.to_bits());
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
        let msg = err.to_string();
        for needle in [format!("run {run}"), "step 7".to_string(), "reward.verifier".to_string()] {
            assert!(msg.contains(&needle), "{msg:?} should mention {needle:?}");
        }
    }
    // Nothing of the refused call was written, not even the finite value before the bad one.
    assert!(store.step_metrics(run).unwrap().is_empty());
}

#[test]
fn rewriting_a_metric_must_be_bit_identical() {
    let mut store = Store::open_in_memory().unwrap();
    let run = with_run(&mut store, 10);
    store.put_step_metrics(run, 3, &[("gold", 0.25), ("z", -0.0)]).unwrap();
    // A resumed run recomputing step 3 with the same bits is fine …
    store.put_step_metrics(run, 3, &[("gold", 0.25), ("z", -0.0)]).unwrap();
    // … a different value is a determinism failure, and +0.0 differs from -0.0.
    let err = store.put_step_metrics(run, 3, &[("z", 0.0)]).unwrap_err();
    assert!(
        matches!(&err, StoreError::MetricConflict { run: r, step: 3, name, .. } if *r == run && name == "z"),
        "{err:?}"
    );
    assert!(err.to_string().contains("step 3") && err.to_string().contains("`z`"), "{err}");
    // The conflicting call wrote nothing, even the metrics before the conflict.
    let err = store.put_step_metrics(run, 3, &[("new", 1.0), ("gold", 0.5)]).unwrap_err();
    assert!(matches!(err, StoreError::MetricConflict { .. }));
    let names: Vec<String> = store.step_metrics(run).unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(names, vec!["gold", "z"]);
}

// --- summaries, checkpoints, results, artifacts ----------------------------------------------

#[test]
fn piece_summaries_round_trip_and_are_replaced() {
    let mut store = Store::open_in_memory().unwrap();
    let run = with_run(&mut store, 1);
    store.put_piece_summary(run, "verifier", "verifier", &json!({ "mean": 0.5 })).unwrap();
    store.put_piece_summary(run, "length", "shaping", &json!({ "mean": -0.1, "std": 1e-300 })).unwrap();
    store.put_piece_summary(run, "verifier", "verifier", &json!({ "mean": 0.75 })).unwrap();
    let got = store.piece_summaries(run).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].piece_id.as_str(), got[0].kind.as_str()), ("length", "shaping"));
    assert_eq!(got[0].summary, json!({ "mean": -0.1, "std": 1e-300 }));
    assert_eq!((got[1].piece_id.as_str(), &got[1].summary), ("verifier", &json!({ "mean": 0.75 })));
}

#[test]
fn latest_checkpoint_is_the_highest_step() {
    let mut store = Store::open_in_memory().unwrap();
    let run = with_run(&mut store, 100);
    assert_eq!(store.latest_checkpoint(run).unwrap(), None);
    // Written out of order: "latest" means highest step, not last written.
    store.put_checkpoint(run, 10, b"state@10", "0a").unwrap();
    store.put_checkpoint(run, 30, &[0, 255, 0, 1], "1e").unwrap();
    store.put_checkpoint(run, 20, b"state@20", "14").unwrap();
    let cp = store.latest_checkpoint(run).unwrap().unwrap();
    assert_eq!(
        (cp.run, cp.step, cp.bytes.as_slice(), cp.digest.as_str()),
        (run, 30, &[0u8, 255, 0, 1][..], "1e")
    );
    assert_eq!(store.checkpoint_steps(run).unwrap(), vec![10, 20, 30], "all kept by default");

    // Same step again: identical is fine, different is a conflict.
    store.put_checkpoint(run, 20, b"state@20", "14").unwrap();
    let err = store.put_checkpoint(run, 20, b"other", "14").unwrap_err();
    assert!(matches!(err, StoreError::CheckpointConflict { step: 20, .. }), "{err:?}");
    assert!(matches!(
        store.put_checkpoint(run, 20, b"state@20", "15"),
        Err(StoreError::CheckpointConflict { .. })
    ));

    // Another run's checkpoints are its own.
    let other = with_run(&mut store, 100);
    store.put_checkpoint(other, 99, b"x", "ff").unwrap();
    assert_eq!(store.latest_checkpoint(run).unwrap().unwrap().step, 30);
}

#[test]
fn checkpoint_retention_prunes_to_the_newest_steps() {
    let mut store = Store::open_in_memory().unwrap();
    let run = with_run(&mut store, 100);
    let other = with_run(&mut store, 100);
    store.put_checkpoint(other, 1, b"o", "01").unwrap();
    for step in [10, 20, 30] {
        store.put_checkpoint(run, step, b"s", "ab").unwrap();
    }
    assert_eq!(store.prune_checkpoints(run, NonZeroUsize::new(2).unwrap()).unwrap(), 1);
    assert_eq!(store.checkpoint_steps(run).unwrap(), vec![20, 30]);

    store.set_checkpoint_retention(CheckpointRetention::Last(NonZeroUsize::new(2).unwrap()));
    store.put_checkpoint(run, 40, b"s", "ab").unwrap();
    assert_eq!(store.checkpoint_steps(run).unwrap(), vec![30, 40]);
    assert_eq!(store.latest_checkpoint(run).unwrap().unwrap().step, 40);
    assert_eq!(store.checkpoint_steps(other).unwrap(), vec![1], "pruning is per run");
}

/// What `LastAndEvery { last, every }` keeps of `steps`: a model of the rule, independent of
/// the SQL that implements it.
fn thinned(steps: &[u64], last: usize, every: u64) -> Vec<u64> {
    let mut sorted = steps.to_vec();
    sorted.sort_unstable();
    sorted.dedup(); // a rewritten checkpoint is one checkpoint
    let mut keep: Vec<u64> = sorted.iter().rev().take(last).copied().collect();
    let mut span = None;
    for &s in &sorted {
        if span != Some(s / every) {
            span = Some(s / every);
            keep.push(s);
        }
    }
    keep.sort_unstable();
    keep.dedup();
    keep
}

#[test]
fn checkpoint_retention_keeps_the_last_n_and_the_first_of_every_span() {
    let retention = |last, every| CheckpointRetention::LastAndEvery {
        last: NonZeroUsize::new(last).unwrap(),
        every: NonZeroU64::new(every).unwrap(),
    };
    // Aligned: checkpoints every 10 steps, every 100th kept.
    let mut store = Store::open_in_memory().unwrap();
    store.set_checkpoint_retention(retention(3, 100));
    let run = with_run(&mut store, 1000);
    let mut written = Vec::new();
    for step in (10..=1000).step_by(10) {
        store.put_checkpoint(run, step, format!("state@{step}").as_bytes(), "ab").unwrap();
        written.push(step);
        // After every put: the latest is there, and exactly what the rule says.
        assert_eq!(store.latest_checkpoint(run).unwrap().unwrap().step, step);
        assert_eq!(store.checkpoint_steps(run).unwrap(), thinned(&written, 3, 100), "after {step}");
    }
    let mut want: Vec<u64> = vec![10]; // the first of span [0, 100)
    want.extend((100..=900).step_by(100));
    want.extend([980, 990, 1000]);
    assert_eq!(store.checkpoint_steps(run).unwrap(), want);
    assert_eq!(store.latest_checkpoint(run).unwrap().unwrap().bytes, b"state@1000");

    // Unaligned (every 7 steps, spans of 50), and a resume that rewrites the last steps.
    store.set_checkpoint_retention(retention(2, 50));
    let run = with_run(&mut store, 500);
    let mut written = Vec::new();
    for step in (7..=500).step_by(7).chain([490, 497]) {
        store.put_checkpoint(run, step, format!("state@{step}").as_bytes(), "ab").unwrap();
        written.push(step);
        assert_eq!(store.checkpoint_steps(run).unwrap(), thinned(&written, 2, 50), "after {step}");
    }
    assert_eq!(
        store.checkpoint_steps(run).unwrap(),
        vec![7, 56, 105, 154, 203, 252, 301, 350, 406, 455, 490, 497]
    );

    // Applied after the fact to a run that kept everything.
    store.set_checkpoint_retention(CheckpointRetention::All);
    let run = with_run(&mut store, 100);
    for step in 1..=100 {
        store.put_checkpoint(run, step, b"s", "ab").unwrap();
    }
    assert_eq!(store.apply_checkpoint_retention(run, retention(1, 25)).unwrap(), 100 - 5);
    assert_eq!(store.checkpoint_steps(run).unwrap(), vec![1, 25, 50, 75, 100]);
    assert_eq!(store.apply_checkpoint_retention(run, CheckpointRetention::All).unwrap(), 0);
}

#[test]
fn results_round_trip_and_are_replaced() {
    let mut store = Store::open_in_memory().unwrap();
    let run = with_run(&mut store, 1);
    assert_eq!(store.result(run, "credit").unwrap(), None);
    let table = json!({ "rows": [{ "piece": "a", "credit": 0.1 + 0.2 }], "residual": -0.0 });
    store.put_result(run, "credit", &table).unwrap();
    store.put_result(run, "withdrawal", &json!({ "retention": 0.9 })).unwrap();
    assert_eq!(store.result(run, "credit").unwrap(), Some(table.clone()));
    store.put_result(run, "withdrawal", &json!({ "retention": 0.8 })).unwrap();
    assert_eq!(
        store.results(run).unwrap(),
        vec![("credit".to_string(), table), ("withdrawal".to_string(), json!({ "retention": 0.8 }))]
    );
}

#[test]
fn artifacts_round_trip_by_hash_and_kind() {
    let mut store = Store::open_in_memory().unwrap();
    let run = with_run(&mut store, 1);
    let body = json!({ "weights": [0.1 + 0.2, -1e-300], "config": { "b": 1, "a": 2 } });
    store.put_artifact("c0ffee", "curriculum", "curr-v1", &body, Some(run)).unwrap();
    store.put_artifact("c0ffee", "curriculum", "curr-v1-again", &body, None).unwrap(); // idempotent
    store.put_artifact("beef", "reward_model", "rm", &json!({}), None).unwrap();
    store.put_artifact("0dd", "curriculum", "curr-v2", &json!({ "weights": [] }), None).unwrap();

    let a = store.artifact("c0ffee").unwrap().unwrap();
    assert_eq!((a.hash.as_str(), a.kind.as_str(), a.name.as_str()), ("c0ffee", "curriculum", "curr-v1"));
    assert_eq!((a.body, a.source_run), (body.clone(), Some(run)));
    assert_eq!(store.artifact("nope").unwrap(), None);

    let curricula: Vec<String> = store.artifacts("curriculum").unwrap().into_iter().map(|a| a.hash).collect();
    assert_eq!(curricula.len(), 2);
    assert!(curricula.contains(&"c0ffee".to_string()) && curricula.contains(&"0dd".to_string()));
    assert_eq!(store.artifacts("reward_model").unwrap().len(), 1);

    let err = store.put_artifact("c0ffee", "curriculum", "x", &json!({ "weights": [] }), None).unwrap_err();
    assert!(matches!(&err, StoreError::ArtifactConflict(h) if h == "c0ffee"), "{err:?}");
    assert!(matches!(
        store.put_artifact("c0ffee", "hint", "x", &body, None),
        Err(StoreError::ArtifactConflict(_))
    ));
}

// --- transactions and concurrency ------------------------------------------------------------

#[test]
fn a_failed_batch_writes_nothing() {
    let mut store = Store::open_in_memory().unwrap();
    let run = with_run(&mut store, 10);
    let err = store
        .batch(|b| {
            b.put_step_metrics(run, 0, &[("gold", 1.0)])?;
            b.set_progress(run, 1)?;
            b.put_checkpoint(run, 0, b"state", "aa")?;
            b.put_step_metrics(run, 1, &[("gold", f64::NAN)]) // fails last
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::NonFinite { step: 1, .. }), "{err:?}");
    assert!(store.step_metrics(run).unwrap().is_empty());
    assert_eq!(store.run(run).unwrap().steps_done, 0);
    assert_eq!(store.latest_checkpoint(run).unwrap(), None);

    // And a successful one writes everything, with the caller's own error type.
    let done: Result<u64, Box<dyn std::error::Error>> = store.batch(|b| {
        b.put_step_metrics(run, 0, &[("gold", 1.0)])?;
        b.set_progress(run, 1)?;
        Ok(1)
    });
    assert_eq!(done.unwrap(), 1);
    assert_eq!(store.step_metrics(run).unwrap().len(), 1);
    assert_eq!(store.run(run).unwrap().steps_done, 1);
}

#[test]
fn a_reader_works_while_a_writer_is_mid_transaction() {
    let db = TempDb::new("concurrent");
    let mut writer = Store::open(db.path()).unwrap();
    let first = with_run(&mut writer, 10);
    writer.put_step_metrics(first, 0, &[("gold", 0.5)]).unwrap();

    let (in_tx_tx, in_tx_rx) = mpsc::channel::<RunId>();
    let (resume_tx, resume_rx) = mpsc::channel::<()>();
    let path = db.path().to_path_buf();
    let reader = std::thread::scope(|s| {
        s.spawn(move || {
            writer
                .batch(|b| {
                    let second = b.create_run(&NewRun::new(RunKind::Train, SPEC, 8, 10))?;
                    b.put_step_metrics(first, 1, &[("gold", 0.75)])?;
                    in_tx_tx.send(second).unwrap();
                    resume_rx.recv().unwrap(); // hold the write transaction open
                    Ok::<_, StoreError>(())
                })
                .unwrap();
        });

        let second = in_tx_rx.recv().unwrap();
        // The writer holds its write lock now. A new reader opens, and reads without waiting
        // (well under the busy timeout) and without seeing uncommitted rows.
        let started = Instant::now();
        let reader = Store::open(&path).unwrap();
        let runs: Vec<RunId> = reader.list_runs(10).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(runs, vec![first]);
        assert_eq!(reader.step_metrics(first).unwrap().len(), 1);
        assert!(matches!(reader.run(second), Err(StoreError::RunNotFound(_))));
        assert!(started.elapsed() < Duration::from_secs(2), "reader waited {:?}", started.elapsed());

        resume_tx.send(()).unwrap();
        reader // the scope joins the writer, which commits
    });
    // The same reader connection now sees the commit.
    assert_eq!(reader.list_runs(10).unwrap().len(), 2);
    assert_eq!(reader.step_metrics(first).unwrap().len(), 2);
}

#[test]
fn integrity_check_passes_on_a_sound_file_and_names_damage() {
    let dir = std::env::temp_dir().join(format!("gristmill-integrity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("runs.db");
    {
        let mut store = Store::open(&path).unwrap();
        let run = with_run(&mut store, 5000);
        for step in 0..5000 {
            store.put_step_metrics(run, step, &[("gold", step as f64 * 1e-3), ("loss", 1.0)]).unwrap();
        }
        store.check_integrity().unwrap();
    }
    // Damage the middle of a page of the metrics table (not the header page, so it still opens).
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 16 * 4096, "{} bytes", bytes.len());
    let page = 4096 * (bytes.len() / 4096 - 2);
    for b in &mut bytes[page + 100..page + 3000] {
        *b = 0xA5;
    }
    std::fs::write(&path, bytes).unwrap();
    let err = Store::open(&path).and_then(|s| s.check_integrity()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_) | StoreError::Sqlite { .. }), "{err:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_content_cache_keeps_the_first_value_per_key_across_connections() {
    let db = TempDb::new("cache");
    let mut a = Store::open(db.path()).unwrap();
    let mut b = Store::open(db.path()).unwrap();
    assert_eq!(a.cached("judge-verdict", "k1").unwrap(), None);
    assert!(a.cache_put("judge-verdict", "k1", "{\"v\":1}").unwrap());
    // Insert-if-absent: a second value under the same key is ignored, from any connection.
    assert!(!b.cache_put("judge-verdict", "k1", "{\"v\":2}").unwrap());
    assert_eq!(b.cached("judge-verdict", "k1").unwrap().as_deref(), Some("{\"v\":1}"));
    // Namespaces are apart.
    assert_eq!(b.cached("other", "k1").unwrap(), None);
    assert!(b.cache_put("other", "k1", "x").unwrap());
    assert_eq!((a.cached_count("judge-verdict").unwrap(), a.cached_count("other").unwrap()), (1, 1));
    // An empty namespace or key is an error, not a silently ignored row.
    assert!(matches!(a.cache_put("", "k", "x"), Err(StoreError::EmptyCacheName("namespace"))));
    assert!(matches!(a.cache_put("n", "", "x"), Err(StoreError::EmptyCacheName("key"))));
}
