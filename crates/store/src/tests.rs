//! Tests that need the store's internals (the raw connection, the migration runner).
//! Tests of the public API live in `tests/store.rs`.

#[path = "../tests/common/mod.rs"]
mod common;

use rusqlite::Connection;

use super::*;
use common::TempDb;

fn store_with_run(store: &mut Store) -> RunId {
    store.put_spec("aa", "s", "name = 's'").unwrap();
    store.create_run(&NewRun::new(RunKind::Run, "aa", 1, 10)).unwrap()
}

#[test]
fn migrations_apply_in_order_and_only_once() {
    let db = TempDb::new("steps");
    let m1: schema::Migration = |c| c.execute_batch("CREATE TABLE a (x INTEGER);");
    let m2: schema::Migration = |c| c.execute_batch("CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (1);");
    let mut conn = Connection::open(&db.0).unwrap();
    schema::migrate(&mut conn, &db.0, &[m1]).unwrap();
    assert_eq!(schema::user_version(&conn).unwrap(), 1);
    // Re-running with the same list is a no-op (m1 again would fail: table exists).
    schema::migrate(&mut conn, &db.0, &[m1]).unwrap();
    // A longer list applies only the new tail: m1 is not re-run, m2 runs exactly once.
    schema::migrate(&mut conn, &db.0, &[m1, m2]).unwrap();
    schema::migrate(&mut conn, &db.0, &[m1, m2]).unwrap();
    assert_eq!(schema::user_version(&conn).unwrap(), 2);
    let rows: i64 = conn.query_row("SELECT count(*) FROM a", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 1);
    // And a shorter list means the file is from the future.
    let err = schema::migrate(&mut conn, &db.0, &[m1]).unwrap_err();
    assert!(matches!(err, StoreError::FutureSchema { found: 2, supported: 1, .. }), "{err}");
}

#[test]
fn failed_migration_keeps_the_previous_version_intact() {
    let db = TempDb::new("failed");
    let mut conn = Connection::open(&db.0).unwrap();
    let good: schema::Migration = |c| c.execute_batch("CREATE TABLE a (x INTEGER);");
    // The first statement of the bad migration succeeds, the second fails: the whole
    // migration must roll back, including the first statement.
    let bad: schema::Migration =
        |c| c.execute_batch("CREATE TABLE b (y INTEGER); INSERT INTO nowhere VALUES (1);");
    let err = schema::migrate(&mut conn, &db.0, &[good, bad]).unwrap_err();
    assert!(matches!(err, StoreError::Migration { version: 2, .. }), "{err}");
    assert!(err.to_string().contains("schema version 2"), "{err}");
    assert_eq!(schema::user_version(&conn).unwrap(), 1);
    let b_exists: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'b'", [], |r| r.get(0)).unwrap();
    assert_eq!(b_exists, 0);
}

#[test]
fn reader_snapshot_does_not_block_the_writer() {
    // The property WAL buys: a reader inside a read transaction keeps its snapshot while the
    // writer commits. With a rollback journal the writer's commit would need an exclusive
    // lock and fail with SQLITE_BUSY after the busy timeout.
    let db = TempDb::new("wal");
    let mut writer = Store::open(&db.0).unwrap();
    writer.conn.busy_timeout(Duration::from_millis(200)).unwrap();
    let first = store_with_run(&mut writer);

    let reader = Store::open(&db.0).unwrap();
    reader.conn.execute_batch("BEGIN").unwrap();
    assert_eq!(reader.list_runs(10).unwrap().len(), 1); // starts the read snapshot

    let second = writer.create_run(&NewRun::new(RunKind::Train, "aa", 2, 5)).unwrap();
    writer.put_step_metrics(second, 0, &[("gold", 1.0)]).unwrap();
    assert_eq!(reader.list_runs(10).unwrap().len(), 1, "the snapshot must not change mid-transaction");
    reader.conn.execute_batch("COMMIT").unwrap();

    let ids: Vec<RunId> = reader.list_runs(10).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![second, first]);
}

#[test]
fn sqlite_real_column_loses_negative_zero_but_packed_bits_keep_it() {
    // Documents why metrics are stored as bits: if SQLite ever stops normalising -0.0 in a
    // REAL column, the first assertion fails and the design note in `schema` should be
    // revisited.
    let mut store = Store::open_in_memory().unwrap();
    store.conn.execute_batch("CREATE TEMP TABLE r (v REAL NOT NULL); INSERT INTO r VALUES (-0.0);").unwrap();
    let raw: f64 = store.conn.query_row("SELECT v FROM r", [], |r| r.get(0)).unwrap();
    assert_eq!(raw.to_bits(), 0.0f64.to_bits(), "SQLite REAL normalises -0.0");
    let run = store_with_run(&mut store);
    store.put_step_metrics(run, 0, &[("z", -0.0)]).unwrap();
    let blob: Vec<u8> = store.conn.query_row("SELECT packed FROM step_metrics", [], |r| r.get(0)).unwrap();
    assert_eq!(blob.len(), 9, "one-byte name id + 8 bytes of bits");
    assert_eq!(store.step_metrics(run).unwrap()[0].value.to_bits(), (-0.0f64).to_bits());
}

#[test]
fn a_malformed_packed_step_is_reported_as_corrupt_naming_run_and_step() {
    let mut store = Store::open_in_memory().unwrap();
    let run = store_with_run(&mut store);
    store.put_step_metrics(run, 3, &[("gold", 1.0)]).unwrap();
    store.conn.execute("UPDATE step_metrics SET packed = x'01ff'", []).unwrap();
    for err in [
        store.step_metrics(run).unwrap_err(),
        store.metric_series(run, "gold").unwrap_err(),
        store.put_step_metrics(run, 3, &[("gold", 1.0)]).unwrap_err(),
    ] {
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains(&format!("run {run}, step 3"))),
            "{err:?}"
        );
    }
}

#[test]
fn schema_checks_guard_against_other_writers() {
    // The store validates first, but the file must also refuse bad rows written by others.
    let mut store = Store::open_in_memory().unwrap();
    let run = store_with_run(&mut store);
    let c = &store.conn;
    assert!(
        c.execute("UPDATE runs SET status = 'finished' WHERE id = ?1", [run.0]).is_err(),
        "finished needs digest"
    );
    assert!(c.execute("UPDATE runs SET status = 'bogus' WHERE id = ?1", [run.0]).is_err());
    assert!(c.execute("UPDATE runs SET digest = 'ABC' WHERE id = ?1", [run.0]).is_err(), "uppercase hex");
    assert!(c.execute("UPDATE runs SET config = '{not json' WHERE id = ?1", [run.0]).is_err());
    assert!(c.execute("UPDATE runs SET steps = 'ten' WHERE id = ?1", [run.0]).is_err(), "STRICT types");
    assert!(c.execute("INSERT INTO step_metrics VALUES (999, 0, x'01')", []).is_err(), "foreign key");
    assert!(c.execute("INSERT INTO step_metrics VALUES (?1, 0, x'')", [run.0]).is_err(), "empty packed step");
    assert!(c.execute("INSERT INTO step_metrics VALUES (?1, 0, 'text')", [run.0]).is_err(), "STRICT blob");
    assert!(c.execute("INSERT INTO metric_names (name) VALUES ('')", []).is_err(), "empty metric name");
}

#[test]
fn a_version_3_store_gets_its_metrics_packed_bit_for_bit() {
    // The version right before the packed layout, built with this crate's own migrations 1–3
    // (tests/store.rs opens a hand-built version-1 file instead).
    let db = TempDb::new("v3");
    let mut conn = Connection::open(&db.0).unwrap();
    schema::migrate(&mut conn, &db.0, &schema::MIGRATIONS[..3]).unwrap();
    assert_eq!(schema::user_version(&conn).unwrap(), 3);
    conn.execute_batch(
        "INSERT INTO specs VALUES ('aa', 's', 1);
         INSERT INTO spec_texts (spec_hash, digest, text, first_seen_ms)
              VALUES ('aa', '0000000000000000000000000000000000000000000000000000000000000000', '', 1);
         INSERT INTO runs (kind, spec_hash, seed, steps, threads, created_at_ms, updated_at_ms)
              VALUES ('train', 'aa', 1, 10, 1, 1, 1);",
    )
    .unwrap();
    let values = [-0.0, 5e-324, 0.1 + 0.2, f64::MAX, -1e-300, 1.0 / 3.0];
    let mut want = Vec::new();
    for step in [0u64, 7, 300] {
        for (i, v) in values.iter().enumerate() {
            let name = format!("n{}", values.len() - i); // ids will not follow this order
            let v = v * (step as f64 + 1.0);
            conn.execute(
                "INSERT INTO step_metrics VALUES (1, ?1, ?2, ?3, ?4)",
                rusqlite::params![step as i64, name, v.to_bits() as i64, v],
            )
            .unwrap();
            want.push((step, name, v.to_bits()));
        }
    }
    drop(conn);
    want.sort();

    let store = Store::open(&db.0).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let got: Vec<(u64, String, u64)> = store
        .step_metrics(RunId(1))
        .unwrap()
        .into_iter()
        .map(|m| (m.step, m.name, m.value.to_bits()))
        .collect();
    assert_eq!(got, want);
    let rows: i64 = store.conn.query_row("SELECT count(*) FROM step_metrics", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 3, "one row per step");
    let names: i64 = store.conn.query_row("SELECT count(*) FROM metric_names", [], |r| r.get(0)).unwrap();
    assert_eq!(names, values.len() as i64);
}
