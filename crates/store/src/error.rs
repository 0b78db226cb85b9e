//! The one error type of the store.

use std::path::PathBuf;

use crate::lease::LeaseHolder;
use crate::record::{RunId, RunStatus};

/// Everything that can go wrong in the run store. Each variant names what failed (the file,
/// the schema version, the run id, the step and metric) so a message alone locates the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or configured (missing directory, not a SQLite
    /// file, permissions, …).
    #[error("cannot open run store {path}: {source}")]
    Open {
        /// The file we tried to open.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The file system refused write-ahead logging (typically a network file system). The
    /// store requires WAL so that readers (`gristmill runs`, reports) never block a training
    /// run that is writing, and vice versa.
    #[error(
        "run store {path}: WAL journal mode is unavailable (SQLite kept journal_mode={mode}); \
         put the database on a local file system"
    )]
    WalUnavailable {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite reported instead of `wal`.
        mode: String,
    },
    /// The database was written by a newer gristmill whose schema this code does not know.
    /// Refusing is the only safe option: writing to it could violate invariants we cannot see.
    #[error(
        "run store {path} has schema version {found}, newer than version {supported} known to this \
         gristmill; upgrade gristmill or use another database file"
    )]
    FutureSchema {
        /// The database file.
        path: PathBuf,
        /// The version found in the file (`PRAGMA user_version`).
        found: u32,
        /// The newest version this code knows ([`SCHEMA_VERSION`](crate::SCHEMA_VERSION)).
        supported: u32,
    },
    /// Applying a migration failed; the database stays at the previous version (each migration
    /// runs in its own transaction).
    #[error("run store {path}: migration to schema version {version} failed: {source}")]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The version the failed migration would have produced.
        version: u32,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// No run has this id.
    #[error("run {0} not found in the run store")]
    RunNotFound(RunId),
    /// No spec has this content hash (a run must name a stored spec).
    #[error("spec {0} not found in the run store")]
    SpecNotFound(String),
    /// A run names a spec text that is not stored under its spec's hash.
    #[error("spec {hash} has no stored text with digest {digest}")]
    SpecTextNotFound {
        /// The spec's content hash.
        hash: String,
        /// The text digest that was asked for.
        digest: String,
    },
    /// A status change was asked of a run that is no longer running.
    #[error("run {id} is {status}, so it cannot be {action}")]
    NotRunning {
        /// The run.
        id: RunId,
        /// Its current status.
        status: RunStatus,
        /// What was attempted, e.g. `"marked finished"`.
        action: &'static str,
    },
    /// Another live holder has the run's lease: some other process is training it.
    #[error(
        "run {run} is leased to {holder} (last heartbeat {:.1} s ago), which is alive: another \
         process is training this run",
        *heartbeat_age_ms as f64 / 1000.0
    )]
    LeaseHeld {
        /// The run.
        run: RunId,
        /// The holder, with its pid and host.
        holder: Box<LeaseHolder>,
        /// How old the holder's last heartbeat is, in milliseconds.
        heartbeat_age_ms: i64,
    },
    /// A write that changes a run came from a store handle that does not hold the run's lease
    /// (it never acquired it, released it, or lost it to a takeover after it was judged dead).
    #[error(
        "run {run} cannot be {action} through this store handle: it does not hold the run's lease \
         ({}); acquire it with acquire_lease first",
        describe_holder(holder.as_deref())
    )]
    LeaseNotHeld {
        /// The run.
        run: RunId,
        /// What was attempted, e.g. `"given step metrics"`.
        action: &'static str,
        /// Who holds the lease instead, if anyone.
        holder: Option<Box<LeaseHolder>>,
    },
    /// A metric value is NaN or infinite. SQLite would silently store NaN as NULL, so such
    /// values are refused before anything of the batch is written.
    #[error("run {run}, step {step}: metric `{name}` is {value}, not a finite number; refusing to store it")]
    NonFinite {
        /// The run.
        run: RunId,
        /// The step.
        step: u64,
        /// The metric name.
        name: String,
        /// The offending value.
        value: f64,
    },
    /// A metric already stored for this (run, step, name) has different bits. Rewriting a
    /// step with identical values is allowed (a resumed run recomputes steps after its last
    /// checkpoint); different values mean the run is not deterministic, which must surface.
    #[error(
        "run {run}, step {step}: metric `{name}` is already stored as {stored:?} \
         (bits {:#018x}); refusing to overwrite it with {new:?} (bits {:#018x})",
        stored.to_bits(),
        new.to_bits()
    )]
    MetricConflict {
        /// The run.
        run: RunId,
        /// The step.
        step: u64,
        /// The metric name.
        name: String,
        /// The value already stored.
        stored: f64,
        /// The value that was offered.
        new: f64,
    },
    /// A checkpoint for this (run, step) is already stored with different bytes or digest.
    #[error("run {run}: a different checkpoint for step {step} is already stored")]
    CheckpointConflict {
        /// The run.
        run: RunId,
        /// The step.
        step: u64,
    },
    /// A different spec text is already stored under this content hash. No longer returned
    /// (since schema version 2 a hash keeps every text that produced it); kept so that code
    /// matching on it still compiles.
    #[error("spec {0}: a different text is already stored under this content hash")]
    SpecConflict(String),
    /// A different artifact (kind or body) is already stored under this content hash.
    #[error("artifact {0}: a different artifact is already stored under this content hash")]
    ArtifactConflict(String),
    /// A digest is not lowercase hexadecimal (the form `gristmill_core::digest` produces).
    #[error("{what} must be non-empty lowercase hex, got {value:?}")]
    InvalidDigest {
        /// Which digest, e.g. `"digest of run 3"`.
        what: String,
        /// The offending text.
        value: String,
    },
    /// A step count or step index does not fit SQLite's signed 64-bit integers.
    #[error("{what} = {value} is too large for the run store (at most {})", i64::MAX)]
    OutOfRange {
        /// What the number is, e.g. `"steps of a new run"`.
        what: String,
        /// The number.
        value: u64,
    },
    /// A content-cache namespace or key is empty.
    #[error("a content-cache {0} must not be empty")]
    EmptyCacheName(&'static str),
    /// A JSON column could not be written or read back.
    #[error("JSON for {what}: {source}")]
    Json {
        /// Which column of which row.
        what: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// A stored value violates the store's own invariants (e.g. an unknown status). Only
    /// possible if the file was edited by hand.
    #[error("run store holds an unreadable value: {0}")]
    Corrupt(String),
    /// Any other SQLite failure, with what the store was doing at the time.
    #[error("{context}: {source}")]
    Sqlite {
        /// What the store was doing, e.g. `"insert step metrics of run 3"`.
        context: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
}

fn describe_holder(holder: Option<&LeaseHolder>) -> String {
    match holder {
        Some(h) => format!("{h} holds it"),
        None => "nobody holds it".to_string(),
    }
}

/// Attaches what the store was doing to a SQLite error. The context is built lazily so the
/// hot path (bulk metric inserts) formats nothing unless something fails.
pub(crate) trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { context: context(), source })
    }
}
