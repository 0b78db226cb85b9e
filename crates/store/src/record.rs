//! The typed records the store reads and writes.

use std::fmt;
use std::num::{NonZeroU64, NonZeroUsize};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The id of a run: SQLite's integer row id, never reused (the table is `AUTOINCREMENT`), so an
/// id printed in a log or report names one run forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<i64> for RunId {
    fn from(id: i64) -> Self {
        RunId(id)
    }
}

impl From<RunId> for i64 {
    fn from(id: RunId) -> Self {
        id.0
    }
}

impl FromStr for RunId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(RunId)
    }
}

/// What a run does. The set is open (new commands add kinds), so unknown names read back as
/// [`RunKind::Other`] instead of failing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RunKind {
    /// `gristmill run`: plain rollouts/training of one spec.
    Run,
    /// Training a policy.
    Train,
    /// In-run or counterfactual credit computation.
    Credit,
    /// The withdrawal protocol.
    Withdraw,
    /// Tuning trainable pieces.
    Tune,
    /// Transferring trained pieces to a new policy or task family.
    Transfer,
    /// Any other kind, by name. [`RunKind::from`] never produces this for the names above.
    Other(String),
}

impl RunKind {
    /// The name stored in the `runs.kind` column.
    pub fn as_str(&self) -> &str {
        match self {
            RunKind::Run => "run",
            RunKind::Train => "train",
            RunKind::Credit => "credit",
            RunKind::Withdraw => "withdraw",
            RunKind::Tune => "tune",
            RunKind::Transfer => "transfer",
            RunKind::Other(name) => name,
        }
    }
}

impl From<&str> for RunKind {
    fn from(name: &str) -> Self {
        match name {
            "run" => RunKind::Run,
            "train" => RunKind::Train,
            "credit" => RunKind::Credit,
            "withdraw" => RunKind::Withdraw,
            "tune" => RunKind::Tune,
            "transfer" => RunKind::Transfer,
            other => RunKind::Other(other.to_string()),
        }
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a run is in its life. Every run starts [`Running`](RunStatus::Running) and moves at
/// most once to one of the other three; those are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Created and not yet ended (or the process died without ending it).
    Running,
    /// Completed every requested step; has a digest.
    Finished,
    /// Ended by an error; has an error text.
    Failed,
    /// Ended early on request (e.g. Ctrl-C); may be resumed from its latest checkpoint.
    Stopped,
}

impl RunStatus {
    /// The name stored in the `runs.status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Stopped => "stopped",
        }
    }

    /// Parses a stored status name.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "running" => RunStatus::Running,
            "finished" => RunStatus::Finished,
            "failed" => RunStatus::Failed,
            "stopped" => RunStatus::Stopped,
            _ => return None,
        })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored environment spec, keyed by its content hash.
///
/// The content hash is computed by the caller over the *canonical* spec (e.g. the TOML
/// re-serialised), so several source texts — differing in comments or layout — can share one
/// hash. The store keeps every one of them ([`SpecText`], [`Store::spec_texts`](crate::Store::spec_texts));
/// this record shows the first one stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecRecord {
    /// Content hash of the canonical spec (computed by the caller, e.g.
    /// `gristmill_core::digest::content_hash`).
    pub hash: String,
    /// The spec's name (the one given when the hash was first stored).
    pub name: String,
    /// The first source text stored under `hash`, exactly as given. Every text of the hash
    /// describes the same canonical spec, so any of them runs the same way.
    pub text: String,
    /// When the hash was first stored, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// One source text stored under a spec's content hash.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecText {
    /// The spec's content hash.
    pub hash: String,
    /// The digest of `text` ([`text_digest`](crate::text_digest): BLAKE3 of its UTF-8 bytes,
    /// 64 lowercase hex digits), which [`Store::put_spec`](crate::Store::put_spec) returns and a
    /// run records ([`RunRecord::spec_text`]).
    pub digest: String,
    /// The TOML text, exactly as given.
    pub text: String,
    /// When this text was first stored, in milliseconds since the Unix epoch.
    pub first_seen_ms: i64,
}

/// Everything needed to create a run; see [`Store::create_run`](crate::Store::create_run).
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// What the run does.
    pub kind: RunKind,
    /// Content hash of a spec already stored with [`Store::put_spec`](crate::Store::put_spec).
    pub spec_hash: String,
    /// The root seed. All 64 bits are kept (stored bit-cast into SQLite's signed integer, so
    /// seeds ≥ 2⁶³ look negative in a raw `sqlite3` session).
    pub seed: u64,
    /// Steps requested.
    pub steps: u64,
    /// Worker threads used (recorded for the log; results must not depend on it).
    pub threads: u32,
    /// Free-form configuration, e.g. the CLI overrides. Conventionally an object.
    pub config: Value,
    /// The run this one replays, resumes or forks, if any.
    pub parent: Option<RunId>,
}

impl NewRun {
    /// A run with one thread, an empty config object and no parent.
    pub fn new(kind: RunKind, spec_hash: impl Into<String>, seed: u64, steps: u64) -> Self {
        NewRun {
            kind,
            spec_hash: spec_hash.into(),
            seed,
            steps,
            threads: 1,
            config: Value::Object(Default::default()),
            parent: None,
        }
    }
}

/// A stored run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// Its id.
    pub id: RunId,
    /// What it does.
    pub kind: RunKind,
    /// Content hash of its spec.
    pub spec_hash: String,
    /// Digest of the spec text it ran ([`SpecText::digest`]), if the run recorded one
    /// ([`Store::create_run_with_spec_text`](crate::Store::create_run_with_spec_text)).
    pub spec_text: Option<String>,
    /// The root seed.
    pub seed: u64,
    /// Steps requested.
    pub steps: u64,
    /// Steps done so far (equal to `steps` once finished).
    pub steps_done: u64,
    /// Worker threads used.
    pub threads: u32,
    /// Where it is in its life.
    pub status: RunStatus,
    /// The result digest (lowercase hex); always present once finished.
    pub digest: Option<String>,
    /// The summary written when it finished.
    pub summary: Option<Value>,
    /// Why it failed; always present once failed.
    pub error: Option<String>,
    /// The configuration it was created with.
    pub config: Value,
    /// The run it replays, resumes or forks, if any.
    pub parent: Option<RunId>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Last change of the run row, milliseconds since the Unix epoch.
    pub updated_at_ms: i64,
}

/// One named number of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepMetric {
    /// The step.
    pub step: u64,
    /// The metric name, e.g. `gold`, `reward.<piece>`, `credit.<piece>`.
    pub name: String,
    /// The value, bit for bit as written (including the sign of zero).
    pub value: f64,
}

/// One piece's reward summary for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct PieceSummary {
    /// The piece id from the spec.
    pub piece_id: String,
    /// The piece kind (`verifier`, `reward_model`, …).
    pub kind: String,
    /// The summary itself.
    pub summary: Value,
}

/// A stored checkpoint: the opaque state a run resumes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The run it belongs to.
    pub run: RunId,
    /// The step it was taken after.
    pub step: u64,
    /// The serialized state, opaque to the store.
    pub bytes: Vec<u8>,
    /// The run digest so far (lowercase hex), to check a resumed run bit for bit.
    pub digest: String,
    /// When it was stored, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// A stored artifact: a versioned trained piece, keyed by the content hash of its config and
/// parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactRecord {
    /// Content hash (computed by the caller).
    pub hash: String,
    /// What it is, e.g. the piece kind.
    pub kind: String,
    /// A human label.
    pub name: String,
    /// The artifact itself.
    pub body: Value,
    /// The run that produced it, if any.
    pub source_run: Option<RunId>,
    /// When it was first stored, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
}

/// Which checkpoints [`Store::put_checkpoint`](crate::Store::put_checkpoint) keeps per run.
///
/// The default keeps all of them: nothing is deleted unless asked for, and older checkpoints
/// allow forking a run at an earlier step. Long runs should thin them: a checkpoint every 10
/// steps of a 100k-step run is 10 000 checkpoints, and `resume` only ever needs the latest.
/// [`LastAndEvery`](CheckpointRetention::LastAndEvery) keeps the few latest (to resume) and a
/// sparse trail of earlier ones (to fork from); its cost is bounded by
/// `(last + steps / every + 1) × checkpoint size`.
///
/// Pruning happens after each put, in the same transaction, so the latest checkpoint is never
/// missing; freed pages are reused by later checkpoints (the file does not shrink without
/// `VACUUM`, but it stops growing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointRetention {
    /// Keep every checkpoint.
    #[default]
    All,
    /// Keep only the checkpoints with the N highest steps of the run.
    Last(NonZeroUsize),
    /// Keep the `last` checkpoints with the highest steps, and the first checkpoint of every
    /// span of `every` steps (`[0, every)`, `[every, 2·every)`, …) — when checkpoint steps are
    /// multiples of `every`, exactly the steps divisible by it. A checkpoint kept for its span
    /// stays kept, so the trail does not move as the run goes on.
    LastAndEvery {
        /// How many of the latest checkpoints to keep.
        last: NonZeroUsize,
        /// The span, in steps, of which the first checkpoint is kept.
        every: NonZeroU64,
    },
}
