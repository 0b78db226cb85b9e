//! The schema and its versioned migrations.
//!
//! The schema version lives in SQLite's `PRAGMA user_version` (a header field, so it needs no
//! table of its own and changes atomically with the migration's DDL). Migration `i` takes a
//! database from version `i` to `i + 1`; each runs in its own transaction, so a crash
//! mid-migration leaves the previous version intact. Rules for adding one: append, never edit
//! or reorder an existing entry (files in the wild are at every version), and keep each
//! migration free of `BEGIN`/`COMMIT`. A migration is a Rust function, so it can compute what
//! SQL cannot (digests, packed values); most are one `execute_batch`.
//!
//! ## Tables
//!
//! | table | key | columns |
//! |---|---|---|
//! | `specs` | `hash` | `name`, `created_at_ms` |
//! | `spec_texts` | `id`; unique `(spec_hash, digest)` | `spec_hash` → specs, `digest` (BLAKE3 of `text`), `text` (TOML), `first_seen_ms` |
//! | `runs` | `id` (autoincrement) | `kind`, `spec_hash` → specs, `seed`, `steps`, `steps_done`, `threads`, `status`, `digest`, `summary` (JSON), `error`, `config` (JSON), `parent_id` → runs, `created_at_ms`, `updated_at_ms`, `spec_text_id` → spec_texts (the text it ran, or NULL) |
//! | `leases` | `run_id` → runs | `nonce`, `pid`, `host`, `boot_id`, `start_ticks` (the holder), `acquired_at_ms`, `heartbeat_at_ms` |
//! | `metric_names` | `id`; unique `name` | `name` (e.g. `gold`, `credit.<piece>`) |
//! | `step_metrics` | `(run_id, step)` | `packed` (BLOB: the step's (name id, f64 bits) pairs, format below) |
//! | `piece_summaries` | `(run_id, piece_id)` | `kind`, `summary` (JSON), `updated_at_ms` |
//! | `checkpoints` | `(run_id, step)` | `bytes` (BLOB), `digest` (digest so far), `created_at_ms` |
//! | `results` | `(run_id, name)` | `body` (JSON), `created_at_ms`, `updated_at_ms` |
//! | `artifacts` | `hash` | `kind`, `name`, `body` (JSON), `source_run_id` → runs, `created_at_ms` |
//!
//! Choices that are not obvious from the SQL:
//! - Tables are `STRICT`, so SQLite rejects a wrongly typed value instead of coercing it, and
//!   the status, digests (lowercase hex) and JSON columns (`json_valid`) carry CHECKs, as do
//!   "finished ⇒ digest" and "failed ⇒ error". The store checks the same things first to give
//!   typed errors; the CHECKs guard the file against other writers.
//! - `step_metrics` holds one row per (run, step) whose `packed` BLOB lists the step's metrics
//!   as (name id, IEEE-754 bits) pairs: in ascending id order, each the id into
//!   `metric_names` as an unsigned LEB128 varint, then the value's bits as 8 little-endian
//!   bytes (9 bytes per value while there are fewer than 128 names).
//!   Bits, because SQLite's REAL turns `-0.0` into `0.0` (and NaN into NULL) and run digests
//!   are checked bit for bit on replay. One row per step, because a row per value costs its
//!   key, its name and b-tree overhead every time: measured with 12 metrics per step
//!   (`cargo run --release -p gristmill-store --example growth -- --checkpoint-bytes 0`), the
//!   version-1 layout (a row per value with the name as text, bits and a REAL copy) took
//!   44.6 bytes per value, 536 bytes per step — 54 MB for 100k steps; a row per value with an
//!   interned name id took 22; the packed row takes ~11 (9 of payload). The price: SQL alone
//!   cannot read a value (no `SELECT avg(value)`; use [`Store::metric_series`](crate::Store::metric_series)),
//!   and [`metric_series`](crate::Store::metric_series) unpacks every step of the run (~11 MB
//!   for 100k steps; milliseconds).
//! - `runs.seed` holds the `u64` seed bit-cast to `i64` (seeds ≥ 2⁶³ look negative in SQL).
//! - Times are integer milliseconds since the Unix epoch, set by the store; they are
//!   informational and never part of a digest.
//! - `step_metrics` is `WITHOUT ROWID`: rows are small (~110 bytes for 12 metrics) and always
//!   read by their primary key prefix, so clustering by it saves a b-tree. `checkpoints` is
//!   not, since its rows carry large blobs.
//! - A spec's content hash is computed by the caller over the *canonical* spec, so texts that
//!   differ in comments or layout share it. `spec_texts` keeps each distinct text once, keyed
//!   by its digest within the hash; `runs.spec_text_id` says which one a run ran. The text is
//!   not part of `specs` so that the hash stays the key everything else refers to.
//! - `leases` has at most one row per run: the holder of a running run's lease. Releasing
//!   deletes the row; a takeover replaces it. A row left by a process that died stays until
//!   someone takes it over (the liveness rule is in [`crate::lease`]). Runs from before
//!   version 3 have no row: nobody holds them, so the first to acquire gets them.
//! - Foreign keys are enforced (`PRAGMA foreign_keys = ON` on every connection); nothing is
//!   ever deleted except pruned checkpoints and released leases.
//!
//! ## History
//!
//! 1. The initial schema; `specs.text` bound each hash to one text.
//! 2. `spec_texts`: every text of a hash is kept. The text of each version-1 spec moves there
//!    (first seen when the spec was created), `specs.text` is dropped, and each existing run
//!    gets `spec_text_id` pointing at its spec's (only) text.
//! 3. `leases`: one trainer per run. Created empty.
//! 4. Compact step metrics: `metric_names` interns the names (ids assigned in name order), and
//!    each (run, step) of the old `step_metrics` (a row per value: `name`, `bits`, `value`)
//!    becomes one row of packed (id, bits) pairs, bit for bit (the old `value REAL` copy is
//!    dropped). The new table takes the old name.

use std::path::Path;

use rusqlite::{params, Connection, TransactionBehavior};

use crate::error::StoreError;

/// Version 1: the initial schema (see the module docs). In a file of its own because the
/// migration tests build a version-1 store from the same text: a version, once released, is
/// never edited.
const V1: &str = include_str!("schema_v1.sql");

/// Version 2: a content hash keeps every source text that produced it (see the module docs).
const V2_SQL: &str = r#"
CREATE TABLE spec_texts (
    id            INTEGER PRIMARY KEY,
    spec_hash     TEXT NOT NULL REFERENCES specs (hash),
    digest        TEXT NOT NULL CHECK (length(digest) = 64 AND digest NOT GLOB '*[^0-9a-f]*'),
    text          TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    UNIQUE (spec_hash, digest)
) STRICT;
"#;

fn v2(tx: &Connection) -> rusqlite::Result<()> {
    tx.execute_batch(V2_SQL)?;
    // Version 1 bound each hash to one text, so every existing spec has exactly one text and
    // every existing run ran it.
    let specs: Vec<(String, String, i64)> = tx
        .prepare("SELECT hash, text, created_at_ms FROM specs ORDER BY hash")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut insert = tx
        .prepare("INSERT INTO spec_texts (spec_hash, digest, text, first_seen_ms) VALUES (?1, ?2, ?3, ?4)")?;
    for (hash, text, created_at_ms) in &specs {
        insert.execute(params![hash, crate::text_digest(text), text, created_at_ms])?;
    }
    tx.execute_batch(
        "ALTER TABLE specs DROP COLUMN text;
         ALTER TABLE runs ADD COLUMN spec_text_id INTEGER REFERENCES spec_texts (id);
         UPDATE runs SET spec_text_id = (SELECT id FROM spec_texts WHERE spec_texts.spec_hash = runs.spec_hash);",
    )
}

/// Version 3: run leases (see the module docs and [`crate::lease`]).
const V3: &str = r#"
CREATE TABLE leases (
    run_id          INTEGER NOT NULL PRIMARY KEY REFERENCES runs (id),
    nonce           TEXT NOT NULL CHECK (nonce <> ''),
    pid             INTEGER NOT NULL CHECK (pid > 0),
    host            TEXT NOT NULL,
    boot_id         TEXT,
    start_ticks     INTEGER CHECK (start_ticks IS NULL OR start_ticks >= 0),
    acquired_at_ms  INTEGER NOT NULL,
    heartbeat_at_ms INTEGER NOT NULL
) STRICT;
"#;

/// Version 4: compact step metrics (see the module docs and `crate::packed`).
const V4_SQL: &str = r#"
CREATE TABLE metric_names (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> '')
) STRICT;

CREATE TABLE step_metrics_packed (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    step   INTEGER NOT NULL CHECK (step >= 0),
    packed BLOB NOT NULL CHECK (length(packed) > 0),
    PRIMARY KEY (run_id, step)
) STRICT, WITHOUT ROWID;

INSERT INTO metric_names (name) SELECT DISTINCT name FROM step_metrics ORDER BY name;
"#;

fn v4(tx: &Connection) -> rusqlite::Result<()> {
    tx.execute_batch(V4_SQL)?;
    {
        // In primary-key order of the old table, so SQLite streams it without sorting.
        let mut old = tx.prepare(
            "SELECT m.run_id, m.step, n.id, m.bits FROM step_metrics m              JOIN metric_names n ON n.name = m.name ORDER BY m.run_id, m.step, m.name",
        )?;
        let mut insert =
            tx.prepare("INSERT INTO step_metrics_packed (run_id, step, packed) VALUES (?1, ?2, ?3)")?;
        let mut rows = old.query([])?;
        let mut current: Option<(i64, i64)> = None;
        let mut entries: Vec<crate::packed::Entry> = Vec::new();
        let mut flush = |key: (i64, i64), entries: &mut Vec<crate::packed::Entry>| {
            entries.sort_unstable_by_key(|e| e.0);
            let blob = crate::packed::pack(entries);
            entries.clear();
            insert.execute(params![key.0, key.1, blob]).map(|_| ())
        };
        while let Some(row) = rows.next()? {
            let key = (row.get::<_, i64>(0)?, row.get::<_, i64>(1)?);
            if current.is_some_and(|c| c != key) {
                flush(current.take().unwrap_or(key), &mut entries)?;
            }
            current = Some(key);
            entries.push((row.get(2)?, row.get::<_, i64>(3)? as u64));
        }
        if let Some(key) = current {
            flush(key, &mut entries)?;
        }
    }
    tx.execute_batch("DROP TABLE step_metrics; ALTER TABLE step_metrics_packed RENAME TO step_metrics;")
}

/// Version 5: a content-addressed cache of values computed outside gristmill (judge
/// verdicts), so that replays, coalition runs and resumed runs never ask twice. A value is
/// written once: the first one stored under a key is the one every later read gets.
const V5: &str = r#"
CREATE TABLE content_cache (
    namespace     TEXT NOT NULL CHECK (namespace <> ''),
    key           TEXT NOT NULL CHECK (key <> ''),
    value         TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
) STRICT, WITHOUT ROWID;
"#;

/// One migration: takes the database from its index in [`MIGRATIONS`] to the next version.
/// It runs inside the transaction [`migrate`] opens, so it must not `BEGIN` or `COMMIT`.
pub(crate) type Migration = fn(&Connection) -> rusqlite::Result<()>;

/// The ordered migrations: entry `i` takes a database from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[Migration] =
    &[|tx| tx.execute_batch(V1), v2, |tx| tx.execute_batch(V3), v4, |tx| tx.execute_batch(V5)];

/// The schema version this code writes: the number of migrations it knows.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Reads `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Brings the database at `path` up to `migrations.len()`, one transaction per migration.
///
/// Idempotent: a database already at the latest version is only read (no write lock, so
/// opening the store never waits for a running writer). Safe against a concurrent opener: the
/// version is re-read under the write lock before each migration, so two processes opening an
/// old file at once apply each migration exactly once.
pub(crate) fn migrate(
    conn: &mut Connection,
    path: &Path,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let supported = migrations.len() as u32;
    let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
    let future = |found| StoreError::FutureSchema { path: path.to_path_buf(), found, supported };

    let found = user_version(conn).map_err(open_err)?;
    if found > supported {
        return Err(future(found));
    }
    if found == supported {
        return Ok(());
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(open_err)?;
        let current = user_version(&tx).map_err(open_err)?;
        if current > supported {
            return Err(future(current));
        }
        if current == supported {
            return Ok(()); // someone else finished the job; dropping `tx` rolls back nothing
        }
        let version = current + 1;
        let failed = |source| StoreError::Migration { path: path.to_path_buf(), version, source };
        migrations[current as usize](&tx).map_err(failed)?;
        tx.pragma_update(None, "user_version", version).map_err(failed)?;
        tx.commit().map_err(failed)?;
    }
}
