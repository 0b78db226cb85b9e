//! Live multi-turn sessions and stored snapshots.
//!
//! Locking: one short-held lock over the two id maps (insert, look up, remove, sweep), and
//! one lock per session or snapshot, taken after the map lock is released. The sweeper
//! takes a per-entry lock only with `try_lock` while it holds the map lock, so the two
//! orders never wait on each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gristmill_core::episode::Episode;

use crate::envs::EnvEntry;
use crate::error::{ApiError, ErrorCode};

/// Locks, ignoring poisoning: every critical section leaves its data consistent (they are
/// single assignments, inserts and removals), so a panic elsewhere cannot corrupt it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An episode and where it came from. Used for both sessions and snapshots.
pub(crate) struct Held {
    pub env: Arc<EnvEntry>,
    /// Index of the episode source in `env.episodes`.
    pub source: usize,
    pub state: Box<dyn Episode>,
    pub last_used: Instant,
}

type Slot = Arc<Mutex<Held>>;

#[derive(Default)]
struct Maps {
    sessions: HashMap<u64, Slot>,
    snapshots: HashMap<u64, Slot>,
}

/// Which map an id lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Session,
    Snapshot,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Session => "s-",
            Kind::Snapshot => "snap-",
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::Snapshot => "snapshot",
        }
    }
    fn unknown(self, id: &str, idle: Duration) -> ApiError {
        let code = match self {
            Kind::Session => ErrorCode::UnknownSession,
            Kind::Snapshot => ErrorCode::UnknownSnapshot,
        };
        ApiError::new(
            code,
            format!(
                "{} `{id}` is unknown, closed, or expired (idle timeout {} ms)",
                self.noun(),
                idle.as_millis()
            ),
        )
    }
    /// The wire id of number `n`.
    pub fn id(self, n: u64) -> String {
        format!("{}{n}", self.prefix())
    }
}

/// The session and snapshot tables with their limits.
pub(crate) struct Sessions {
    maps: Mutex<Maps>,
    next: AtomicU64,
    max_sessions: usize,
    max_snapshots: usize,
    idle: Duration,
}

impl Sessions {
    pub fn new(max_sessions: usize, max_snapshots: usize, idle: Duration) -> Sessions {
        Sessions {
            maps: Mutex::new(Maps::default()),
            next: AtomicU64::new(1),
            max_sessions,
            max_snapshots,
            idle,
        }
    }

    /// Live sessions and stored snapshots (expired ones not yet swept included).
    pub fn counts(&self) -> (usize, usize) {
        let maps = lock(&self.maps);
        (maps.sessions.len(), maps.snapshots.len())
    }

    fn expired(&self, held: &Held, now: Instant) -> bool {
        now.saturating_duration_since(held.last_used) > self.idle
    }

    /// Drops every expired session and snapshot that is not in use right now.
    pub fn sweep(&self, now: Instant) {
        let mut maps = lock(&self.maps);
        let keep = |slot: &Slot| match slot.try_lock() {
            Ok(held) => !self.expired(&held, now),
            Err(std::sync::TryLockError::Poisoned(p)) => !self.expired(&p.into_inner(), now),
            Err(std::sync::TryLockError::WouldBlock) => true,
        };
        maps.sessions.retain(|_, slot| keep(slot));
        maps.snapshots.retain(|_, slot| keep(slot));
    }

    /// How often the sweeper should run.
    pub fn sweep_interval(&self) -> Duration {
        (self.idle / 4).clamp(Duration::from_millis(5), Duration::from_secs(5))
    }

    /// Stores new entries all at once, or none if that would pass the kind's limit.
    /// Returns their ids.
    pub fn insert(&self, kind: Kind, new: Vec<Held>) -> Result<Vec<String>, ApiError> {
        let limit = match kind {
            Kind::Session => self.max_sessions,
            Kind::Snapshot => self.max_snapshots,
        };
        let fits = |maps: &Maps| {
            let live = match kind {
                Kind::Session => maps.sessions.len(),
                Kind::Snapshot => maps.snapshots.len(),
            };
            live.checked_add(new.len()).is_some_and(|total| total <= limit)
        };
        let mut maps = lock(&self.maps);
        if !fits(&maps) {
            drop(maps);
            self.sweep(Instant::now());
            maps = lock(&self.maps);
            if !fits(&maps) {
                let live = match kind {
                    Kind::Session => maps.sessions.len(),
                    Kind::Snapshot => maps.snapshots.len(),
                };
                let code = match kind {
                    Kind::Session => ErrorCode::SessionLimit,
                    Kind::Snapshot => ErrorCode::SnapshotLimit,
                };
                return Err(ApiError::new(
                    code,
                    format!(
                        "{} {}s are live and the limit is {limit}; {} more requested (close some first)",
                        live,
                        kind.noun(),
                        new.len()
                    ),
                ));
            }
        }
        let first = self.next.fetch_add(new.len() as u64, Ordering::Relaxed);
        let table = match kind {
            Kind::Session => &mut maps.sessions,
            Kind::Snapshot => &mut maps.snapshots,
        };
        let mut ids = Vec::with_capacity(new.len());
        for (i, held) in new.into_iter().enumerate() {
            let n = first + i as u64;
            table.insert(n, Arc::new(Mutex::new(held)));
            ids.push(kind.id(n));
        }
        Ok(ids)
    }

    fn number(kind: Kind, id: &str) -> Option<u64> {
        let digits = id.strip_prefix(kind.prefix())?;
        if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// Runs `f` on the entry `id`, marking it used. An expired entry is removed and reported
    /// unknown.
    pub fn with<R>(
        &self,
        kind: Kind,
        id: &str,
        f: impl FnOnce(&mut Held) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let unknown = || kind.unknown(id, self.idle);
        let n = Self::number(kind, id).ok_or_else(unknown)?;
        let slot = {
            let maps = lock(&self.maps);
            let table = match kind {
                Kind::Session => &maps.sessions,
                Kind::Snapshot => &maps.snapshots,
            };
            table.get(&n).cloned().ok_or_else(unknown)?
        };
        let mut held = lock(&slot);
        let now = Instant::now();
        if self.expired(&held, now) {
            drop(held);
            self.remove_slot(kind, n, &slot);
            return Err(unknown());
        }
        held.last_used = now;
        f(&mut held)
    }

    fn remove_slot(&self, kind: Kind, n: u64, slot: &Slot) {
        let mut maps = lock(&self.maps);
        let table = match kind {
            Kind::Session => &mut maps.sessions,
            Kind::Snapshot => &mut maps.snapshots,
        };
        if table.get(&n).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            table.remove(&n);
        }
    }

    /// Removes the entry `id`.
    pub fn close(&self, kind: Kind, id: &str) -> Result<(), ApiError> {
        let unknown = || kind.unknown(id, self.idle);
        let n = Self::number(kind, id).ok_or_else(unknown)?;
        let removed = {
            let mut maps = lock(&self.maps);
            let table = match kind {
                Kind::Session => &mut maps.sessions,
                Kind::Snapshot => &mut maps.snapshots,
            };
            table.remove(&n)
        };
        let slot = removed.ok_or_else(unknown)?;
        // An entry past its idle timeout counts as already gone.
        let expired = self.expired(&lock(&slot), Instant::now());
        if expired {
            Err(unknown())
        } else {
            Ok(())
        }
    }
}
