//! Live multi-turn sessions and stored snapshots.
//!
//! Ids are 128 random bits from the operating system's CSPRNG (`getrandom`), written as
//! `s-<32 lowercase hex>` and `snap-<32 lowercase hex>`: one spelling each, and not
//! guessable from any other id. Randomness here never touches determinism, which is about
//! tasks, episodes and rewards, never ids. Every entry has an owner (the token that created
//! it); to anyone else it does not exist.
//!
//! Locking: one short-held lock over the two id maps (insert, look up, remove, sweep), and
//! one lock per session or snapshot, taken after the map lock is released. The sweeper
//! takes a per-entry lock only with `try_lock` while it holds the map lock, so the two
//! orders never wait on each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gristmill_core::episode::Episode;

use crate::auth::Owner;
use crate::envs::EnvEntry;
use crate::error::{clip, ApiError, ErrorCode};

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
    /// Who created it.
    pub owner: Owner,
}

type Slot = Arc<Mutex<Held>>;

#[derive(Default)]
struct Maps {
    sessions: HashMap<u128, Slot>,
    snapshots: HashMap<u128, Slot>,
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
                "{} `{}` is unknown, closed, or expired (idle timeout {} ms)",
                self.noun(),
                clip(id),
                idle.as_millis()
            ),
        )
    }
    /// The wire id of number `n`.
    pub fn id(self, n: u128) -> String {
        format!("{}{n:032x}", self.prefix())
    }
}

/// `n` fresh random ids.
fn random_ids(n: usize) -> Result<Vec<u128>, ApiError> {
    let mut bytes = vec![0u8; n * 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        ApiError::new(ErrorCode::Internal, format!("the operating system's random source failed: {e}"))
    })?;
    Ok(bytes.chunks_exact(16).map(|c| u128::from_le_bytes(c.try_into().unwrap_or_default())).collect())
}

/// The session and snapshot tables with their limits.
pub(crate) struct Sessions {
    maps: Mutex<Maps>,
    max_sessions: usize,
    max_snapshots: usize,
    idle: Duration,
}

impl Sessions {
    pub fn new(max_sessions: usize, max_snapshots: usize, idle: Duration) -> Sessions {
        Sessions { maps: Mutex::new(Maps::default()), max_sessions, max_snapshots, idle }
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
        // Drawn before the lock is taken: one system call for the whole batch.
        let mut fresh = random_ids(new.len())?;
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
        // A clash with a live id (never seen in practice at 128 bits) draws again.
        let table = match kind {
            Kind::Session => &mut maps.sessions,
            Kind::Snapshot => &mut maps.snapshots,
        };
        let mut ids = Vec::with_capacity(new.len());
        for held in new {
            let mut n = fresh.pop().unwrap_or_default();
            while table.contains_key(&n) {
                n = random_ids(1)?[0];
            }
            table.insert(n, Arc::new(Mutex::new(held)));
            ids.push(kind.id(n));
        }
        Ok(ids)
    }

    /// The number of a wire id in its one spelling: the prefix and exactly 32 lowercase
    /// hex digits.
    fn number(kind: Kind, id: &str) -> Option<u128> {
        let digits = id.strip_prefix(kind.prefix())?;
        if digits.len() != 32 || !digits.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        u128::from_str_radix(digits, 16).ok()
    }

    /// Runs `f` on the entry `id` of `owner`, marking it used. An expired entry is removed
    /// and reported unknown, and so is another owner's (without touching it).
    pub fn with<R>(
        &self,
        kind: Kind,
        id: &str,
        owner: Owner,
        f: impl FnOnce(&mut Held) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let unknown = || kind.unknown(id, self.idle);
        let n = Self::number(kind, id).ok_or_else(unknown)?;
        let slot = self.slot(kind, n).ok_or_else(unknown)?;
        let mut held = lock(&slot);
        if held.owner != owner {
            return Err(unknown());
        }
        let now = Instant::now();
        if self.expired(&held, now) {
            drop(held);
            self.remove_slot(kind, n, &slot);
            return Err(unknown());
        }
        held.last_used = now;
        f(&mut held)
    }

    /// The entry numbered `n` of `kind`, if it exists.
    fn slot(&self, kind: Kind, n: u128) -> Option<Slot> {
        let maps = lock(&self.maps);
        let table = match kind {
            Kind::Session => &maps.sessions,
            Kind::Snapshot => &maps.snapshots,
        };
        table.get(&n).cloned()
    }

    fn remove_slot(&self, kind: Kind, n: u128, slot: &Slot) {
        let mut maps = lock(&self.maps);
        let table = match kind {
            Kind::Session => &mut maps.sessions,
            Kind::Snapshot => &mut maps.snapshots,
        };
        if table.get(&n).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            table.remove(&n);
        }
    }

    /// Removes the entry `id` of `owner`.
    pub fn close(&self, kind: Kind, id: &str, owner: Owner) -> Result<(), ApiError> {
        let unknown = || kind.unknown(id, self.idle);
        let n = Self::number(kind, id).ok_or_else(unknown)?;
        let slot = self.slot(kind, n).ok_or_else(unknown)?;
        let (mine, expired) = {
            let held = lock(&slot);
            (held.owner == owner, self.expired(&held, Instant::now()))
        };
        if !mine {
            return Err(unknown());
        }
        self.remove_slot(kind, n, &slot);
        // An entry past its idle timeout counts as already gone.
        if expired {
            Err(unknown())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_one_spelling() {
        let n = 0x0123_4567_89ab_cdef_0011_2233_4455_6677u128;
        let id = Kind::Session.id(n);
        assert_eq!(id, "s-0123456789abcdef0011223344556677");
        assert_eq!(Sessions::number(Kind::Session, &id), Some(n));
        assert_eq!(Kind::Snapshot.id(7), format!("snap-{}7", "0".repeat(31)));
        for bad in [
            "s-0123456789ABCDEF0011223344556677",
            "s-123456789abcdef0011223344556677",
            "s-00123456789abcdef0011223344556677",
            "s-+123456789abcdef0011223344556677",
            "s-77",
            "s-0077",
            "snap-0123456789abcdef0011223344556677",
            "",
        ] {
            assert_eq!(Sessions::number(Kind::Session, bad), None, "{bad}");
        }
        let ids = random_ids(64).unwrap();
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 64);
    }
}
