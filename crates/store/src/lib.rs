//! # gristmill-store
//!
//! ```
//! use gristmill_store::{NewRun, RunKind, RunStatus, Store};
//! use serde_json::json;
//!
//! let mut store = Store::open_in_memory()?; // the CLI uses Store::open("gristmill.db")
//! store.put_spec("9f2c", "addition", "name = 'addition'\n")?;
//! let run = store.create_run(&NewRun::new(RunKind::Run, "9f2c", 7, 2))?;
//! for step in 0..2 {
//!     store.put_step_metrics(run, step, &[("gold", 0.1 + 0.2), ("reward.verifier", -0.0)])?;
//! }
//! store.finish_run(run, "00ff", &json!({ "gold": 0.3 }))?;
//!
//! let record = store.run(run)?;
//! assert_eq!((record.status, record.steps_done), (RunStatus::Finished, 2));
//! let metrics = store.step_metrics(run)?; // ordered by (step, name)
//! assert_eq!(metrics[0].value, 0.1 + 0.2); // bit for bit …
//! assert!(metrics[1].value.is_sign_negative()); // … including the sign of zero
//! assert!(store.put_step_metrics(run, 2, &[("gold", f64::NAN)]).is_err());
//! # Ok::<(), gristmill_store::StoreError>(())
//! ```
//!
//! The run store: one SQLite file holding every run gristmill made — the spec it ran (by
//! content hash), its seed and configuration, its per-step metrics, per-piece summaries,
//! checkpoints, reports and the trained pieces (artifacts) it produced.
//!
//! ## Guarantees
//!
//! - **Nothing is half-written.** Every write method is one transaction; writes that belong
//!   together go in one [`Batch`] ([`Store::batch`]). A crash leaves the file at the last
//!   commit.
//! - **Numbers come back bit for bit.** Step metrics are stored as their IEEE-754 bits, because
//!   SQLite's REAL turns `-0.0` into `0.0` (and NaN into NULL) and run digests are checked bit
//!   for bit on replay. NaN and infinities are refused with [`StoreError::NonFinite`].
//! - **A run's size grows linearly, and slowly.** A step's metrics are one row of packed
//!   (name id, bits) pairs, ~11 bytes per value; with a checkpoint retention policy the
//!   checkpoints a run keeps grow with its length divided by the policy's span, and pages freed
//!   by pruning are reused. See [`schema`] for the layout and its measurements.
//! - **Nothing is silently overwritten.** Writing a step metric or checkpoint that is already
//!   stored succeeds only if it is bit-identical (a resumed run recomputes the steps after its
//!   checkpoint; a difference means broken determinism). An artifact hash is bound to one
//!   content. A spec hash (the caller's, over the canonical spec) keeps every source text that
//!   produced it — texts differing only in comments share a hash — and a run can record which
//!   one it ran ([`Store::create_run_with_spec_text`]). Per-piece summaries and named results
//!   are reports, and are replaced.
//! - **One trainer per run.** A running run is *leased* to one holder — a process, named by
//!   its pid, host and a per-process random nonce ([`LeaseHolder`]) — and every write that
//!   changes the run (step metrics, checkpoints, progress, finishing, failing, stopping) is
//!   refused with [`StoreError::LeaseNotHeld`] unless it comes through the store handle that
//!   holds the lease. [`Store::create_run`] leases the new run to its creator; taking up an
//!   existing run (`resume`) starts with [`Store::acquire_lease`], which fails at once with
//!   [`StoreError::LeaseHeld`] naming the holder's pid and host while that holder is alive,
//!   and takes the lease over when it is dead: on the same host, when its process is gone
//!   (`kill(pid, 0)`) or its pid belongs to a process with another start time; on another
//!   host, when its heartbeat is older than the [lease timeout](Store::set_lease_timeout). The
//!   full rule is in [`lease`]. Every lease-checked write renews the heartbeat
//!   ([`Store::heartbeat`] does it alone); finishing, failing and stopping release the lease.
//!   Every lease change is one `BEGIN IMMEDIATE` transaction, so racing processes cannot both
//!   win. Per-piece summaries, results and artifacts are reports about a run, not its
//!   training state, and need no lease.
//! - **Readers and the writer do not block each other** (WAL journal mode): `gristmill runs`
//!   works while a training run is writing.
//! - **Schemas are versioned** ([`SCHEMA_VERSION`], kept in `PRAGMA user_version`); opening a
//!   file from a newer gristmill fails with [`StoreError::FutureSchema`].
//!
//! ## Representation choices
//!
//! - JSON columns (run config and summary, piece summaries, results, artifacts) are
//!   [`serde_json::Value`] in and out, stored as validated JSON text. A `Value` cannot hold NaN
//!   or infinities: `serde_json` turns them into `null` when *you* convert, so do not put
//!   numbers that must survive exactly there unless they are finite (finite floats do
//!   round-trip exactly; the crate enables serde_json's `float_roundtrip`).
//! - Durability is `synchronous = NORMAL`, the usual WAL setting: a killed process loses
//!   nothing committed and the file is never corrupted; a power cut may lose the last commits
//!   (a run then resumes from an earlier checkpoint). `FULL` would fsync on every step.
//! - Checkpoints are all kept by default. Long runs should set a retention policy
//!   ([`Store::set_checkpoint_retention`]), e.g. [`CheckpointRetention::LastAndEvery`] with the
//!   last 3 and the first of every 1000 steps; it is applied in the transaction of each
//!   checkpoint, so the latest one is never missing.
//!
//! The tables, and the reasons behind their layout, are documented in [`schema`].
#![warn(missing_docs)]

mod batch;
mod error;
pub mod lease;
mod packed;
mod record;
pub mod schema;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde_json::Value;

pub use batch::Batch;
use error::Context;
pub use error::StoreError;
pub use lease::{Acquired, Lease, LeaseHolder, StaleReason};
pub use record::{
    ArtifactRecord, Checkpoint, CheckpointRetention, NewRun, PieceSummary, RunId, RunKind, RunRecord,
    RunStatus, SpecRecord, SpecText, StepMetric,
};
pub use schema::SCHEMA_VERSION;

/// How long a write waits for another process's write lock before giving up. Writes are short
/// (one step at a time), so a wait this long means something is stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How old a lease's heartbeat must be before a holder on another host counts as dead, unless
/// [`Store::set_lease_timeout`] says otherwise. Long enough for a checkpoint interval of slow
/// steps; a holder on this host is judged by its pid instead (see [`lease`]).
pub const DEFAULT_LEASE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A handle on the run store. Writes take `&mut self` (each is a transaction; the borrow checker
/// thereby rules out nesting one inside a [`Batch`]); reads take `&self`.
///
/// One `Store` is one SQLite connection: it can move between threads but not be shared by them;
/// open one per thread or process (any number of readers and one writer at a time).
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
    retention: CheckpointRetention,
    lease_timeout: Duration,
    /// The leases this handle holds: run → the nonce of the holder it acquired them as.
    leases: HashMap<RunId, String>,
}

impl Store {
    /// Opens (creating if needed) the store at `path`, switches it to WAL mode and applies any
    /// pending migrations.
    ///
    /// # Errors
    /// [`StoreError::Open`] if the file cannot be opened or is not a SQLite database,
    /// [`StoreError::WalUnavailable`] if the file system refuses WAL,
    /// [`StoreError::FutureSchema`] if the file comes from a newer gristmill,
    /// [`StoreError::Migration`] if a migration fails (the file keeps its previous version).
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |source| StoreError::Open { path: path.clone(), source };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        // Switching to WAL is persistent (a property of the file), but re-asking is cheap and
        // also catches a file system that silently refuses.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0)).map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::WalUnavailable { path, mode });
        }
        schema::migrate(&mut conn, &path, schema::MIGRATIONS)?;
        Ok(Store::with_connection(conn, Some(path)))
    }

    /// A fresh store in memory, for tests. It has the full schema but no WAL (SQLite keeps
    /// in-memory databases in `memory` journal mode) and vanishes when dropped.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let open_err = |source| StoreError::Open { path: path.clone(), source };
        let mut conn = Connection::open_in_memory().map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        schema::migrate(&mut conn, &path, schema::MIGRATIONS)?;
        Ok(Store::with_connection(conn, None))
    }

    fn with_connection(conn: Connection, path: Option<PathBuf>) -> Store {
        Store {
            conn,
            path,
            retention: CheckpointRetention::default(),
            lease_timeout: DEFAULT_LEASE_TIMEOUT,
            leases: HashMap::new(),
        }
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version of the open database (equal to [`SCHEMA_VERSION`] after opening).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        schema::user_version(&self.conn).ctx(|| "read the schema version".to_string())
    }

    /// Runs SQLite's `PRAGMA integrity_check` over the whole file (pages, indexes, constraints)
    /// and fails with [`StoreError::Corrupt`] listing what it found. Reads every page: meant
    /// for checks after a crash or a copy, not for every open.
    pub fn check_integrity(&self) -> Result<(), StoreError> {
        let ctx = || "run PRAGMA integrity_check".to_string();
        let mut stmt = self.conn.prepare("PRAGMA integrity_check").ctx(ctx)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).ctx(ctx)?;
        let found = rows.collect::<Result<Vec<_>, _>>().ctx(ctx)?;
        if found == ["ok"] {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!("integrity check: {}", found.join("; "))))
        }
    }

    /// Which checkpoints per run [`put_checkpoint`](Store::put_checkpoint) keeps.
    pub fn checkpoint_retention(&self) -> CheckpointRetention {
        self.retention
    }

    /// Sets which checkpoints per run [`put_checkpoint`](Store::put_checkpoint) keeps from now
    /// on (a property of this handle, not of the file), e.g. the last 3 and the first of every
    /// 1000 steps for a long run.
    pub fn set_checkpoint_retention(&mut self, retention: CheckpointRetention) {
        self.retention = retention;
    }

    /// Runs `f` in one write transaction: everything it writes commits together when it returns
    /// `Ok`, and nothing is written when it returns `Err` (or panics).
    ///
    /// ```
    /// # use gristmill_store::{NewRun, RunKind, Store};
    /// # let mut store = Store::open_in_memory()?;
    /// # store.put_spec("9f2c", "addition", "")?;
    /// # let run = store.create_run(&NewRun::new(RunKind::Run, "9f2c", 7, 10))?;
    /// store.batch(|b| {
    ///     b.put_step_metrics(run, 4, &[("gold", 0.5)])?;
    ///     b.set_progress(run, 5)?;
    ///     b.put_checkpoint(run, 4, b"state", "ab12")
    /// })?;
    /// # Ok::<(), gristmill_store::StoreError>(())
    /// ```
    pub fn batch<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&Batch<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx(|| "begin a write transaction".to_string())?;
        let batch = Batch {
            tx,
            retention: self.retention,
            now_ms: now_ms(),
            lease_timeout: self.lease_timeout,
            leases: RefCell::new(self.leases.clone()),
            renewed: RefCell::default(),
            metric_ids: RefCell::default(),
        };
        let out = f(&batch)?; // on error `batch` drops here, which rolls back
        let Batch { tx, leases, .. } = batch;
        tx.commit().ctx(|| "commit a write transaction".to_string())?;
        self.leases = leases.into_inner();
        Ok(out)
    }

    // --- specs ---------------------------------------------------------------------------

    /// Stores a spec text under its content hash and returns the text's digest
    /// ([`text_digest`]).
    ///
    /// The hash is the caller's, computed over the canonical spec, so texts that differ only in
    /// comments or layout share it: each distinct text is kept (with the time it was first
    /// seen), [`spec`](Store::spec) shows the first, [`spec_texts`](Store::spec_texts) lists them
    /// all. Idempotent: storing a text that is already stored under `hash` is a no-op; the name
    /// given with the hash's first text is kept.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if a stored text has this text's digest but other bytes (only
    /// possible if the file was edited by hand).
    pub fn put_spec(&mut self, hash: &str, name: &str, text: &str) -> Result<String, StoreError> {
        self.batch(|b| b.put_spec(hash, name, text))
    }

    /// The spec stored under `hash`, if any, with the first text stored under it (the one the
    /// hash was created with; later texts of the hash are in [`spec_texts`](Store::spec_texts)).
    pub fn spec(&self, hash: &str) -> Result<Option<SpecRecord>, StoreError> {
        self.conn
            .query_row(
                "SELECT s.hash, s.name, t.text, s.created_at_ms FROM specs s \
                 JOIN spec_texts t ON t.spec_hash = s.hash WHERE s.hash = ?1 \
                 ORDER BY t.first_seen_ms, t.id LIMIT 1",
                [hash],
                |r| {
                    Ok(SpecRecord {
                        hash: r.get(0)?,
                        name: r.get(1)?,
                        text: r.get(2)?,
                        created_at_ms: r.get(3)?,
                    })
                },
            )
            .optional()
            .ctx(|| format!("read spec {hash}"))
    }

    /// Every text stored under `hash`, in the order they were first stored (empty if the hash
    /// is unknown).
    pub fn spec_texts(&self, hash: &str) -> Result<Vec<SpecText>, StoreError> {
        let ctx = || format!("list texts of spec {hash}");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT spec_hash, digest, text, first_seen_ms FROM spec_texts WHERE spec_hash = ?1 \
                 ORDER BY first_seen_ms, id",
            )
            .ctx(ctx)?;
        let rows = stmt.query_map([hash], SpecText::read).ctx(ctx)?;
        rows.map(|row| row.ctx(ctx)).collect()
    }

    /// The text with this digest stored under `hash`, if any — e.g. the one a run ran
    /// ([`RunRecord::spec_text`]).
    pub fn spec_text(&self, hash: &str, digest: &str) -> Result<Option<SpecText>, StoreError> {
        self.conn
            .query_row(
                "SELECT spec_hash, digest, text, first_seen_ms FROM spec_texts \
                 WHERE spec_hash = ?1 AND digest = ?2",
                [hash, digest],
                SpecText::read,
            )
            .optional()
            .ctx(|| format!("read text {digest} of spec {hash}"))
    }

    // --- runs ----------------------------------------------------------------------------

    /// Creates a run with status [`Running`](RunStatus::Running), leased to this process
    /// ([`LeaseHolder::this_process`]) through this handle, and returns its id.
    ///
    /// # Errors
    /// [`StoreError::SpecNotFound`] if the spec was not stored first,
    /// [`StoreError::RunNotFound`] if the parent does not exist.
    pub fn create_run(&mut self, run: &NewRun) -> Result<RunId, StoreError> {
        self.batch(|b| b.create_run(run))
    }

    /// Like [`create_run`](Store::create_run), and records which text of the spec the run ran:
    /// `spec_text` is the digest [`put_spec`](Store::put_spec) returned (it shows up as
    /// [`RunRecord::spec_text`]).
    ///
    /// # Errors
    /// As [`create_run`](Store::create_run), and [`StoreError::SpecTextNotFound`] if no text
    /// with that digest is stored under the run's spec hash.
    pub fn create_run_with_spec_text(&mut self, run: &NewRun, spec_text: &str) -> Result<RunId, StoreError> {
        self.batch(|b| b.create_run_with_spec_text(run, spec_text))
    }

    /// The run with this id.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`] naming the id.
    pub fn run(&self, id: RunId) -> Result<RunRecord, StoreError> {
        let row = self
            .conn
            .query_row(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"), [id.0], RunRow::read)
            .optional()
            .ctx(|| format!("read run {id}"))?;
        row.ok_or(StoreError::RunNotFound(id))?.into_record()
    }

    /// The `limit` most recent runs, newest first.
    pub fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let ctx = || "list runs".to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?1"))
            .ctx(ctx)?;
        let rows = stmt.query_map([limit], RunRow::read).ctx(ctx)?;
        rows.map(|row| row.ctx(ctx)?.into_record()).collect()
    }

    /// Records how many steps a running run has done. Needs the run's lease.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`], [`StoreError::NotRunning`] if the run has ended,
    /// [`StoreError::LeaseNotHeld`].
    pub fn set_progress(&mut self, id: RunId, steps_done: u64) -> Result<(), StoreError> {
        self.batch(|b| b.set_progress(id, steps_done))
    }

    /// Marks a running run finished: records its digest (lowercase hex) and summary, and sets
    /// `steps_done` to the steps requested ("finished" means every requested step was done; a
    /// run that ends early is [stopped](Store::stop_run)). Needs the run's lease, and releases
    /// it.
    ///
    /// # Errors
    /// [`StoreError::InvalidDigest`], [`StoreError::RunNotFound`],
    /// [`StoreError::NotRunning`] if the run has already ended — a digest is never overwritten —
    /// [`StoreError::LeaseNotHeld`].
    pub fn finish_run(&mut self, id: RunId, digest: &str, summary: &Value) -> Result<(), StoreError> {
        self.batch(|b| b.finish_run(id, digest, summary))
    }

    /// Marks a running run failed, with the error text. Needs the run's lease, and releases it.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`], [`StoreError::NotRunning`] if the run has already ended,
    /// [`StoreError::LeaseNotHeld`].
    pub fn fail_run(&mut self, id: RunId, error: &str) -> Result<(), StoreError> {
        self.batch(|b| b.fail_run(id, error))
    }

    /// Marks a running run stopped early (interrupted, not failed): it keeps its checkpoints
    /// and [`acquire_lease`](Store::acquire_lease) takes it up again. Needs the run's lease,
    /// and releases it.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`], [`StoreError::NotRunning`] if the run has already ended,
    /// [`StoreError::LeaseNotHeld`].
    pub fn stop_run(&mut self, id: RunId) -> Result<(), StoreError> {
        self.batch(|b| b.stop_run(id))
    }

    // --- leases --------------------------------------------------------------------------

    /// Takes the lease of a running run for `holder` (usually [`LeaseHolder::this_process`]),
    /// so that this handle may change the run: metrics, checkpoints, progress, finishing,
    /// failing, stopping. [`create_run`](Store::create_run) already leases a new run to its
    /// creator; acquire it to take up an existing run (`resume`). Acquiring a
    /// [stopped](Store::stop_run) run sets it running again in the same transaction.
    ///
    /// Acquiring a lease the holder already has renews it. A lease held by another holder is
    /// taken over only if that holder is dead by the rule in [`lease`] (same host: its process
    /// is gone; other host: its heartbeat is older than the [lease
    /// timeout](Store::set_lease_timeout)). The check and the change are one `BEGIN IMMEDIATE`
    /// transaction, so of several processes racing for a lease exactly one gets it.
    ///
    /// The lease is held by this handle; another handle (or process) that writes to the run
    /// gets [`StoreError::LeaseNotHeld`]. Identity is per process: another handle of this
    /// process acquiring as [`LeaseHolder::this_process`] is the same holder, so it renews the
    /// lease and may write too — the lease guards against other processes, not other handles.
    ///
    /// ```
    /// use gristmill_store::{Acquired, LeaseHolder, NewRun, RunKind, Store};
    /// # let mut store = Store::open_in_memory()?;
    /// # store.put_spec("9f2c", "addition", "")?;
    /// # let run = store.create_run(&NewRun::new(RunKind::Train, "9f2c", 7, 100))?;
    /// # store.release_lease(run)?;
    /// // `resume`: take the run up before training a single step.
    /// match store.acquire_lease(run, &LeaseHolder::this_process())? {
    ///     Acquired::New | Acquired::Renewed => {}
    ///     Acquired::TookOver { previous, reason } => {
    ///         eprintln!("run {run}: took the lease over from {} ({reason})", previous.holder)
    ///     }
    /// }
    /// store.put_step_metrics(run, 0, &[("gold", 0.5)])?;
    /// # Ok::<(), gristmill_store::StoreError>(())
    /// ```
    ///
    /// # Errors
    /// [`StoreError::LeaseHeld`] at once, naming the live holder's pid and host;
    /// [`StoreError::RunNotFound`]; [`StoreError::NotRunning`] if the run has finished or
    /// failed.
    pub fn acquire_lease(&mut self, id: RunId, holder: &LeaseHolder) -> Result<Acquired, StoreError> {
        self.batch(|b| b.acquire_lease(id, holder))
    }

    /// Gives up this handle's lease of a run without ending it (finishing, failing and
    /// stopping release it themselves). A run nobody holds is left as it is.
    ///
    /// # Errors
    /// [`StoreError::LeaseNotHeld`] if another holder has the lease, [`StoreError::RunNotFound`].
    pub fn release_lease(&mut self, id: RunId) -> Result<(), StoreError> {
        self.batch(|b| b.release_lease(id))
    }

    /// Renews the heartbeat of this handle's lease of a run. Every write that needs the lease
    /// renews it too, so a trainer that checkpoints more often than the lease timeout needs no
    /// other heartbeat; call this in long stretches without writes.
    ///
    /// # Errors
    /// [`StoreError::LeaseNotHeld`] if this handle does not hold the lease (e.g. it was taken
    /// over because the heartbeat expired: stop training), [`StoreError::RunNotFound`],
    /// [`StoreError::NotRunning`].
    pub fn heartbeat(&mut self, id: RunId) -> Result<(), StoreError> {
        self.batch(|b| b.heartbeat(id))
    }

    /// The lease of a run as stored, if anyone holds it.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`].
    pub fn lease(&self, id: RunId) -> Result<Option<Lease>, StoreError> {
        require_run(&self.conn, id)?;
        batch::read_lease(&self.conn, id)
    }

    /// How old the heartbeat of a holder on another host must be before
    /// [`acquire_lease`](Store::acquire_lease) takes its lease over.
    pub fn lease_timeout(&self) -> Duration {
        self.lease_timeout
    }

    /// Sets the [lease timeout](Store::lease_timeout) of this handle (default
    /// [`DEFAULT_LEASE_TIMEOUT`]). It must exceed the longest gap between two heartbeats of any
    /// holder plus the clock skew between hosts; every process sharing a store should use the
    /// same value.
    pub fn set_lease_timeout(&mut self, timeout: Duration) {
        self.lease_timeout = timeout;
    }

    // --- step metrics --------------------------------------------------------------------

    /// Stores the named numbers of one step of a running run, all in one transaction. Needs the
    /// run's lease.
    ///
    /// Writing a (step, name) that is already stored is accepted only if the bits are equal.
    ///
    /// # Errors
    /// [`StoreError::NonFinite`] naming run, step and metric if any value is NaN or infinite
    /// (then nothing is written), [`StoreError::MetricConflict`] if a stored value differs,
    /// [`StoreError::RunNotFound`], [`StoreError::NotRunning`], [`StoreError::LeaseNotHeld`].
    pub fn put_step_metrics<S: AsRef<str>>(
        &mut self,
        id: RunId,
        step: u64,
        metrics: &[(S, f64)],
    ) -> Result<(), StoreError> {
        self.batch(|b| b.put_step_metrics(id, step, metrics))
    }

    /// All step metrics of a run, ordered by (step, name), values bit-exact.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`].
    pub fn step_metrics(&self, id: RunId) -> Result<Vec<StepMetric>, StoreError> {
        require_run(&self.conn, id)?;
        let names = self.metric_names()?;
        let mut out = Vec::new();
        self.for_each_packed_step(id, |step, entries| {
            let first = out.len();
            for (name_id, bits) in entries {
                let name = names.get(&name_id).ok_or_else(|| {
                    StoreError::Corrupt(format!("run {id}, step {step}: unknown metric name id {name_id}"))
                })?;
                out.push(StepMetric { step, name: name.clone(), value: f64::from_bits(bits) });
            }
            out[first..].sort_unstable_by(|a, b| a.name.cmp(&b.name));
            Ok(())
        })?;
        Ok(out)
    }

    /// One metric of a run as a series of (step, value), ordered by step, values bit-exact.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`].
    pub fn metric_series(&self, id: RunId, name: &str) -> Result<Vec<(u64, f64)>, StoreError> {
        require_run(&self.conn, id)?;
        let ctx = || format!("read metric {name} of run {id}");
        let name_id: Option<i64> = self
            .conn
            .query_row("SELECT id FROM metric_names WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .ctx(ctx)?;
        let Some(name_id) = name_id else { return Ok(Vec::new()) };
        // Every step of the run is unpacked to find one name: 9 bytes per value, so a
        // 100k-step run of 12 metrics reads ~11 MB — milliseconds, and no index to maintain.
        let mut out = Vec::new();
        self.for_each_packed_step(id, |step, entries| {
            if let Ok(i) = entries.binary_search_by_key(&name_id, |e| e.0) {
                out.push((step, f64::from_bits(entries[i].1)));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Every metric name, by id.
    fn metric_names(&self) -> Result<HashMap<i64, String>, StoreError> {
        let ctx = || "read metric names".to_string();
        let mut stmt = self.conn.prepare_cached("SELECT id, name FROM metric_names").ctx(ctx)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).ctx(ctx)?;
        rows.map(|row| row.ctx(ctx)).collect()
    }

    /// Calls `f` with each stored step of a run, ascending, and its unpacked entries.
    fn for_each_packed_step(
        &self,
        id: RunId,
        mut f: impl FnMut(u64, Vec<packed::Entry>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let ctx = || format!("read step metrics of run {id}");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT step, packed FROM step_metrics WHERE run_id = ?1 ORDER BY step")
            .ctx(ctx)?;
        let mut rows = stmt.query([id.0]).ctx(ctx)?;
        while let Some(row) = rows.next().ctx(ctx)? {
            let step = to_u64(row.get::<_, i64>(0).ctx(ctx)?, || format!("step of run {id}"))?;
            // Borrowed, not copied: the column is a STRICT `BLOB NOT NULL`.
            let blob = row.get_ref(1).ctx(ctx)?.as_blob().map_err(|e| {
                StoreError::Corrupt(format!("the packed metrics of run {id}, step {step}: {e}"))
            })?;
            let entries = packed::unpack(blob).ok_or_else(|| {
                StoreError::Corrupt(format!("the packed metrics of run {id}, step {step} are malformed"))
            })?;
            f(step, entries)?;
        }
        Ok(())
    }

    // --- piece summaries -----------------------------------------------------------------

    /// Stores (or replaces) one piece's reward summary for a run.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`].
    pub fn put_piece_summary(
        &mut self,
        id: RunId,
        piece_id: &str,
        kind: &str,
        summary: &Value,
    ) -> Result<(), StoreError> {
        self.batch(|b| b.put_piece_summary(id, piece_id, kind, summary))
    }

    /// The piece summaries of a run, ordered by piece id.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`].
    pub fn piece_summaries(&self, id: RunId) -> Result<Vec<PieceSummary>, StoreError> {
        require_run(&self.conn, id)?;
        let ctx = || format!("read piece summaries of run {id}");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT piece_id, kind, summary FROM piece_summaries WHERE run_id = ?1 ORDER BY piece_id",
            )
            .ctx(ctx)?;
        let rows = stmt
            .query_map([id.0], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })
            .ctx(ctx)?;
        rows.map(|row| {
            let (piece_id, kind, text) = row.ctx(ctx)?;
            let summary = parse_json(&text, || format!("summary of piece {piece_id} in run {id}"))?;
            Ok(PieceSummary { piece_id, kind, summary })
        })
        .collect()
    }

    // --- checkpoints ---------------------------------------------------------------------

    /// Stores a checkpoint of a run taken after `step`, with the run digest so far, then
    /// prunes older ones according to the [retention](Store::set_checkpoint_retention) — in the
    /// same transaction. The run must be running and this handle must hold its lease.
    ///
    /// # Errors
    /// [`StoreError::InvalidDigest`], [`StoreError::RunNotFound`], [`StoreError::NotRunning`],
    /// [`StoreError::LeaseNotHeld`],
    /// [`StoreError::CheckpointConflict`] if a different checkpoint is stored for that step.
    pub fn put_checkpoint(
        &mut self,
        id: RunId,
        step: u64,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(), StoreError> {
        self.batch(|b| b.put_checkpoint(id, step, bytes, digest))
    }

    /// The checkpoint with the highest step of a run, if any: what `resume` loads.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`].
    pub fn latest_checkpoint(&self, id: RunId) -> Result<Option<Checkpoint>, StoreError> {
        require_run(&self.conn, id)?;
        let ctx = || format!("read latest checkpoint of run {id}");
        let row = self
            .conn
            .query_row(
                "SELECT step, bytes, digest, created_at_ms FROM checkpoints WHERE run_id = ?1 \
                 ORDER BY step DESC LIMIT 1",
                [id.0],
                |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .ctx(ctx)?;
        row.map(|(step, bytes, digest, created_at_ms)| {
            Ok(Checkpoint { run: id, step: to_u64(step, ctx)?, bytes, digest, created_at_ms })
        })
        .transpose()
    }

    /// The steps of the stored checkpoints of a run, ascending.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`].
    pub fn checkpoint_steps(&self, id: RunId) -> Result<Vec<u64>, StoreError> {
        require_run(&self.conn, id)?;
        let ctx = || format!("list checkpoints of run {id}");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT step FROM checkpoints WHERE run_id = ?1 ORDER BY step")
            .ctx(ctx)?;
        let rows = stmt.query_map([id.0], |r| r.get::<_, i64>(0)).ctx(ctx)?;
        rows.map(|row| to_u64(row.ctx(ctx)?, ctx)).collect()
    }

    /// Deletes all but the `keep_last` highest-step checkpoints of a run; returns how many were
    /// deleted. (SQLite reuses the freed pages; the file does not shrink without `VACUUM`.)
    /// While the run is running this needs its lease; an ended run's checkpoints may be pruned
    /// by anyone.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`], [`StoreError::LeaseNotHeld`].
    pub fn prune_checkpoints(&mut self, id: RunId, keep_last: NonZeroUsize) -> Result<usize, StoreError> {
        self.batch(|b| b.prune_checkpoints(id, keep_last))
    }

    /// Applies a retention policy to a run's stored checkpoints now, e.g. to thin a store
    /// written with [`CheckpointRetention::All`]; returns how many were deleted. The same rules
    /// as [`prune_checkpoints`](Store::prune_checkpoints) apply (the lease while running;
    /// `VACUUM` to shrink the file).
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`], [`StoreError::LeaseNotHeld`].
    pub fn apply_checkpoint_retention(
        &mut self,
        id: RunId,
        retention: CheckpointRetention,
    ) -> Result<usize, StoreError> {
        self.batch(|b| b.apply_checkpoint_retention(id, retention))
    }

    // --- results -------------------------------------------------------------------------

    /// Stores (or replaces) a named report of a run, e.g. a credit table.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`].
    pub fn put_result(&mut self, id: RunId, name: &str, body: &Value) -> Result<(), StoreError> {
        self.batch(|b| b.put_result(id, name, body))
    }

    /// The named report of a run, if stored.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`].
    pub fn result(&self, id: RunId, name: &str) -> Result<Option<Value>, StoreError> {
        require_run(&self.conn, id)?;
        let what = || format!("result {name} of run {id}");
        let text: Option<String> = self
            .conn
            .query_row("SELECT body FROM results WHERE run_id = ?1 AND name = ?2", params![id.0, name], |r| {
                r.get(0)
            })
            .optional()
            .ctx(|| format!("read {}", what()))?;
        text.map(|t| parse_json(&t, what)).transpose()
    }

    /// All reports of a run as (name, body), ordered by name.
    ///
    /// # Errors
    /// [`StoreError::RunNotFound`].
    pub fn results(&self, id: RunId) -> Result<Vec<(String, Value)>, StoreError> {
        require_run(&self.conn, id)?;
        let ctx = || format!("read results of run {id}");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, body FROM results WHERE run_id = ?1 ORDER BY name")
            .ctx(ctx)?;
        let rows =
            stmt.query_map([id.0], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).ctx(ctx)?;
        rows.map(|row| {
            let (name, text) = row.ctx(ctx)?;
            let body = parse_json(&text, || format!("result {name} of run {id}"))?;
            Ok((name, body))
        })
        .collect()
    }

    // --- artifacts -----------------------------------------------------------------------

    /// Stores a versioned artifact (a trained piece) under its content hash. Idempotent:
    /// storing the same kind and body again is a no-op (the first name and source are kept).
    ///
    /// # Errors
    /// [`StoreError::ArtifactConflict`] if a different kind or body is stored under `hash`,
    /// [`StoreError::RunNotFound`] if `source_run` does not exist.
    pub fn put_artifact(
        &mut self,
        hash: &str,
        kind: &str,
        name: &str,
        body: &Value,
        source_run: Option<RunId>,
    ) -> Result<(), StoreError> {
        self.batch(|b| b.put_artifact(hash, kind, name, body, source_run))
    }

    /// The artifact stored under `hash`, if any.
    pub fn artifact(&self, hash: &str) -> Result<Option<ArtifactRecord>, StoreError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE hash = ?1"),
                [hash],
                ArtifactRow::read,
            )
            .optional()
            .ctx(|| format!("read artifact {hash}"))?;
        row.map(ArtifactRow::into_record).transpose()
    }

    // --- content cache ---------------------------------------------------------------------

    /// The value cached under `(namespace, key)`, if any (e.g. a judge verdict under its
    /// content key).
    pub fn cached(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT value FROM content_cache WHERE namespace = ?1 AND key = ?2")
            .and_then(|mut stmt| stmt.query_row([namespace, key], |r| r.get(0)).optional())
            .ctx(|| format!("read cached {namespace} {key}"))
    }

    /// Caches `value` under `(namespace, key)` unless a value is already there; returns
    /// whether it was written. The first value stored is the one every later read gets.
    ///
    /// # Errors
    /// [`StoreError::EmptyCacheName`] for an empty namespace or key (`INSERT OR IGNORE` would
    /// otherwise drop the row silently).
    pub fn cache_put(&mut self, namespace: &str, key: &str, value: &str) -> Result<bool, StoreError> {
        for (what, text) in [("namespace", namespace), ("key", key)] {
            if text.is_empty() {
                return Err(StoreError::EmptyCacheName(what));
            }
        }
        let n = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO content_cache (namespace, key, value, created_at_ms) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut stmt| stmt.execute(params![namespace, key, value, now_ms()]))
            .ctx(|| format!("cache {namespace} {key}"))?;
        Ok(n == 1)
    }

    /// How many values are cached under `namespace`.
    pub fn cached_count(&self, namespace: &str) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM content_cache WHERE namespace = ?1", [namespace], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .ctx(|| format!("count cached {namespace}"))
    }

    /// All artifacts of a kind, oldest first.
    pub fn artifacts(&self, kind: &str) -> Result<Vec<ArtifactRecord>, StoreError> {
        let ctx = || format!("list artifacts of kind {kind}");
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE kind = ?1 ORDER BY created_at_ms, hash"
            ))
            .ctx(ctx)?;
        let rows = stmt.query_map([kind], ArtifactRow::read).ctx(ctx)?;
        rows.map(|row| row.ctx(ctx)?.into_record()).collect()
    }
}

/// Per-connection settings (they are not stored in the file, so every open sets them).
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// The digest the store keys a spec text by: BLAKE3 of its UTF-8 bytes as 64 lowercase hex
/// digits. [`Store::put_spec`] returns it; it is exposed so callers can name a text without
/// storing it first.
pub fn text_digest(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

fn now_ms() -> i64 {
    // A clock before 1970 is a broken clock; 0 is as good an answer as any, and times are
    // informational only (never part of a digest).
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The status of a run, or `None` if there is no such run.
pub(crate) fn run_status(conn: &Connection, id: RunId) -> Result<Option<RunStatus>, StoreError> {
    let status: Option<String> = conn
        .query_row("SELECT status FROM runs WHERE id = ?1", [id.0], |r| r.get(0))
        .optional()
        .ctx(|| format!("look up run {id}"))?;
    status
        .map(|s| {
            RunStatus::parse(&s)
                .ok_or_else(|| StoreError::Corrupt(format!("run {id} has unknown status {s:?}")))
        })
        .transpose()
}

/// Fails with [`StoreError::RunNotFound`] unless the run exists. Checked explicitly (not left
/// to the foreign keys) so the error names the id, and so reads of a missing run are an error
/// rather than an empty list.
pub(crate) fn require_run(conn: &Connection, id: RunId) -> Result<(), StoreError> {
    let found: Option<i64> = conn
        .query_row("SELECT 1 FROM runs WHERE id = ?1", [id.0], |r| r.get(0))
        .optional()
        .ctx(|| format!("look up run {id}"))?;
    found.map(|_| ()).ok_or(StoreError::RunNotFound(id))
}

pub(crate) fn to_i64(value: u64, what: impl FnOnce() -> String) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { what: what(), value })
}

fn to_u64(value: i64, what: impl FnOnce() -> String) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{} is negative ({value})", what())))
}

/// Digests are lowercase hex, as `gristmill_core::digest` writes them; one spelling only, so
/// digests compare as strings.
pub(crate) fn check_digest(digest: &str, what: impl FnOnce() -> String) -> Result<(), StoreError> {
    if !digest.is_empty() && digest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(StoreError::InvalidDigest { what: what(), value: digest.to_string() })
    }
}

pub(crate) fn json_text(value: &Value, what: impl FnOnce() -> String) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Json { what: what(), source })
}

pub(crate) fn parse_json(text: &str, what: impl FnOnce() -> String) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Json { what: what(), source })
}

const RUN_COLUMNS: &str = "id, kind, spec_hash, seed, steps, steps_done, threads, status, digest, summary, \
                           error, config, parent_id, created_at_ms, updated_at_ms, \
                           (SELECT digest FROM spec_texts WHERE spec_texts.id = runs.spec_text_id)";

/// A `runs` row as SQLite types. Reading happens in two stages because the row closure can
/// only return SQLite errors, while decoding (JSON, status names) has errors of its own.
struct RunRow {
    id: i64,
    kind: String,
    spec_hash: String,
    seed: i64,
    steps: i64,
    steps_done: i64,
    threads: i64,
    status: String,
    digest: Option<String>,
    summary: Option<String>,
    error: Option<String>,
    config: String,
    parent: Option<i64>,
    created_at_ms: i64,
    updated_at_ms: i64,
    spec_text: Option<String>,
}

impl RunRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<RunRow> {
        Ok(RunRow {
            id: r.get(0)?,
            kind: r.get(1)?,
            spec_hash: r.get(2)?,
            seed: r.get(3)?,
            steps: r.get(4)?,
            steps_done: r.get(5)?,
            threads: r.get(6)?,
            status: r.get(7)?,
            digest: r.get(8)?,
            summary: r.get(9)?,
            error: r.get(10)?,
            config: r.get(11)?,
            parent: r.get(12)?,
            created_at_ms: r.get(13)?,
            updated_at_ms: r.get(14)?,
            spec_text: r.get(15)?,
        })
    }

    fn into_record(self) -> Result<RunRecord, StoreError> {
        let id = RunId(self.id);
        let status = RunStatus::parse(&self.status)
            .ok_or_else(|| StoreError::Corrupt(format!("run {id} has unknown status {:?}", self.status)))?;
        let threads = u32::try_from(self.threads)
            .map_err(|_| StoreError::Corrupt(format!("run {id} has thread count {}", self.threads)))?;
        Ok(RunRecord {
            id,
            kind: RunKind::from(self.kind.as_str()),
            spec_hash: self.spec_hash,
            spec_text: self.spec_text,
            seed: self.seed as u64, // undo the bit-cast of `create_run`
            steps: to_u64(self.steps, || format!("steps of run {id}"))?,
            steps_done: to_u64(self.steps_done, || format!("steps done of run {id}"))?,
            threads,
            status,
            digest: self.digest,
            summary: self.summary.map(|s| parse_json(&s, || format!("summary of run {id}"))).transpose()?,
            error: self.error,
            config: parse_json(&self.config, || format!("config of run {id}"))?,
            parent: self.parent.map(RunId),
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
        })
    }
}

impl SpecText {
    fn read(r: &Row<'_>) -> rusqlite::Result<SpecText> {
        Ok(SpecText { hash: r.get(0)?, digest: r.get(1)?, text: r.get(2)?, first_seen_ms: r.get(3)? })
    }
}

const ARTIFACT_COLUMNS: &str = "hash, kind, name, body, source_run_id, created_at_ms";

/// An `artifacts` row as SQLite types; see [`RunRow`] for why.
struct ArtifactRow {
    hash: String,
    kind: String,
    name: String,
    body: String,
    source_run: Option<i64>,
    created_at_ms: i64,
}

impl ArtifactRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<ArtifactRow> {
        Ok(ArtifactRow {
            hash: r.get(0)?,
            kind: r.get(1)?,
            name: r.get(2)?,
            body: r.get(3)?,
            source_run: r.get(4)?,
            created_at_ms: r.get(5)?,
        })
    }

    fn into_record(self) -> Result<ArtifactRecord, StoreError> {
        let body = parse_json(&self.body, || format!("body of artifact {}", self.hash))?;
        Ok(ArtifactRecord {
            hash: self.hash,
            kind: self.kind,
            name: self.name,
            body,
            source_run: self.source_run.map(RunId),
            created_at_ms: self.created_at_ms,
        })
    }
}
