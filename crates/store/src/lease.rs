//! Leases: which process is training a run, and when a holder counts as dead.
//!
//! A run being trained is leased to one holder — a process, named by its pid, host and a
//! random nonce — and every write that changes the run checks that the writing handle holds
//! the lease (see the crate docs). This module holds the identity of a process and the rule
//! that decides whether a recorded holder is still alive; the table lives in [`schema`](crate::schema)
//! and the transactions in [`Batch`](crate::Batch).
//!
//! # When a holder is dead
//!
//! A lease is taken over only if its holder is dead, judged by the process that wants it:
//!
//! 1. **Same host** (the lease's host name is this machine's):
//!    - the machine has rebooted since the lease was taken (the boot ids differ) — dead;
//!    - `kill(pid, 0)` says no such process (`ESRCH`), or the process is a zombie — dead;
//!    - a process with that pid exists but started at another time than the holder did
//!      (`/proc/<pid>/stat` field 22, in clock ticks since boot) — the pid was reused, dead;
//!    - otherwise it is alive, however old its heartbeat: a live but stuck trainer must be
//!      killed, not silently raced.
//!
//!    Where the pid cannot be checked (no `kill` on this platform) the other-host rule applies.
//! 2. **Other host**: dead once its heartbeat is older than the lease timeout
//!    ([`Store::set_lease_timeout`](crate::Store::set_lease_timeout), default
//!    [`DEFAULT_LEASE_TIMEOUT`](crate::DEFAULT_LEASE_TIMEOUT)). Wall clocks of different
//!    machines are compared, so the timeout must exceed both the longest gap between two
//!    heartbeats and the clock skew between the hosts.
//!
//! Host names identify machines: two containers that share a store file but not a pid
//! namespace must have different host names, or a live holder in one would look dead to the
//! other.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use crate::record::RunId;

/// Who holds (or wants) a lease: a process on a host.
///
/// [`LeaseHolder::this_process`] is the identity a process uses; tests and tools may build
/// others (e.g. to stand for a process on another machine).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseHolder {
    /// The process id.
    pub pid: u32,
    /// The host name (`gethostname`).
    pub host: String,
    /// A random value drawn once per process, telling this process apart from any earlier or
    /// later one with the same pid (and from other holders a test makes up). Two holders are
    /// the same holder exactly when their nonces are equal.
    pub nonce: String,
    /// The host's boot id (Linux: `/proc/sys/kernel/random/boot_id`), if known: a lease from
    /// an earlier boot of this host is dead.
    pub boot_id: Option<String>,
    /// When the process started, in clock ticks since boot (Linux: `/proc/<pid>/stat` field
    /// 22), if known: a process with the same pid but another start time is not the holder.
    pub start_ticks: Option<u64>,
}

impl LeaseHolder {
    /// This process: its pid, host name, boot id, start time and a nonce drawn once per
    /// process (a forked child draws its own).
    pub fn this_process() -> LeaseHolder {
        static THIS: Mutex<Option<LeaseHolder>> = Mutex::new(None);
        let pid = std::process::id();
        let mut this = THIS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*this {
            Some(holder) if holder.pid == pid => holder.clone(),
            _ => {
                let holder = LeaseHolder {
                    pid,
                    host: host_name(),
                    nonce: random_nonce(pid),
                    boot_id: boot_id(),
                    start_ticks: probe(pid).start_ticks(),
                };
                *this = Some(holder.clone());
                holder
            }
        }
    }
}

impl fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} on host {}", self.pid, self.host)
    }
}

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The leased run.
    pub run: RunId,
    /// Who holds it.
    pub holder: LeaseHolder,
    /// When the holder acquired it, milliseconds since the Unix epoch.
    pub acquired_at_ms: i64,
    /// The holder's last heartbeat (acquisition, [`Store::heartbeat`](crate::Store::heartbeat)
    /// or any write that needed the lease), milliseconds since the Unix epoch.
    pub heartbeat_at_ms: i64,
}

/// What [`Store::acquire_lease`](crate::Store::acquire_lease) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// Nobody held the lease; now the holder does.
    New,
    /// The holder already held it; its heartbeat is renewed.
    Renewed,
    /// Another holder held it but is dead; the lease is the new holder's now.
    TookOver {
        /// The dead holder's lease as it was.
        previous: Lease,
        /// Why that holder counts as dead.
        reason: StaleReason,
    },
}

/// Why a lease's holder counts as dead (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleReason {
    /// Same host: the host has rebooted since the lease was taken.
    Rebooted,
    /// Same host: no process has the holder's pid (or it is a zombie).
    ProcessGone,
    /// Same host: a process has the holder's pid but started at another time.
    PidReused,
    /// Another host (or a pid that cannot be checked): the last heartbeat is older than the
    /// lease timeout.
    HeartbeatExpired {
        /// How old the heartbeat was, in milliseconds.
        age_ms: i64,
    },
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaleReason::Rebooted => f.write_str("its host has rebooted since"),
            StaleReason::ProcessGone => f.write_str("the process is gone"),
            StaleReason::PidReused => f.write_str("its pid now belongs to another process"),
            StaleReason::HeartbeatExpired { age_ms } => {
                write!(f, "its last heartbeat is {:.1} s old", *age_ms as f64 / 1000.0)
            }
        }
    }
}

/// Whether `lease` is dead, judged from this machine at `now_ms` (the rule in the module docs):
/// `None` means its holder is alive.
pub(crate) fn staleness(lease: &Lease, now_ms: i64, timeout: Duration) -> Option<StaleReason> {
    let local = LeaseHolder::this_process();
    let holder = &lease.holder;
    if holder.host == local.host {
        if let (Some(then), Some(now)) = (&holder.boot_id, &local.boot_id) {
            if then != now {
                return Some(StaleReason::Rebooted);
            }
        }
        match probe(holder.pid) {
            Probe::Gone => return Some(StaleReason::ProcessGone),
            Probe::Running { start_ticks } => {
                return match (holder.start_ticks, start_ticks) {
                    (Some(then), Some(now)) if then != now => Some(StaleReason::PidReused),
                    _ => None,
                };
            }
            Probe::Unknown => {} // cannot look: fall back on the heartbeat
        }
    }
    let age_ms = now_ms.saturating_sub(lease.heartbeat_at_ms);
    let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
    (age_ms > timeout_ms).then_some(StaleReason::HeartbeatExpired { age_ms })
}

/// What this machine can tell about a pid.
enum Probe {
    /// No such process, or a zombie.
    Gone,
    /// A process with that pid exists, started at `start_ticks` if known.
    Running { start_ticks: Option<u64> },
    /// This platform cannot tell.
    Unknown,
}

impl Probe {
    fn start_ticks(&self) -> Option<u64> {
        match self {
            Probe::Running { start_ticks } => *start_ticks,
            Probe::Gone | Probe::Unknown => None,
        }
    }
}

#[cfg(unix)]
fn probe(pid: u32) -> Probe {
    let Ok(raw) = libc::pid_t::try_from(pid) else { return Probe::Unknown };
    if raw <= 0 {
        return Probe::Unknown; // kill(0 or -1, …) would address groups, not a process
    }
    // SAFETY: signal 0 sends nothing; kill only checks that the process exists and that we
    // may signal it. No memory is involved.
    if unsafe { libc::kill(raw, 0) } != 0 {
        let errno = std::io::Error::last_os_error().raw_os_error();
        if errno == Some(libc::ESRCH) {
            return Probe::Gone;
        }
        // EPERM: the process exists but belongs to another user. Anything else: assume it
        // exists; wrongly calling a live holder dead is the one mistake to avoid.
    }
    match proc_stat(pid) {
        Some(stat) if stat.zombie => Probe::Gone,
        Some(stat) => Probe::Running { start_ticks: Some(stat.start_ticks) },
        None => Probe::Running { start_ticks: None },
    }
}

#[cfg(not(unix))]
fn probe(_pid: u32) -> Probe {
    Probe::Unknown
}

/// The fields of `/proc/<pid>/stat` the liveness rule reads.
struct ProcStat {
    zombie: bool,
    start_ticks: u64,
}

/// Reads `/proc/<pid>/stat` (Linux); `None` where there is no such file.
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat(&text)
}

/// Parses `pid (comm) state ppid … starttime …`. The command name may hold spaces and
/// parentheses, so fields are counted from the last `)`: the state is field 3 and the start
/// time field 22.
fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = *fields.first()?;
    let start_ticks = fields.get(22 - 3)?.parse().ok()?;
    Some(ProcStat { zombie: matches!(state, "Z" | "X" | "x"), start_ticks })
}

#[cfg(unix)]
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `len` bytes; gethostname writes at most that many.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if rc == 0 && len > 0 {
        String::from_utf8_lossy(&buf[..len]).into_owned()
    } else {
        std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown-host".to_string())
    }
}

#[cfg(not(unix))]
fn host_name() -> String {
    std::env::var("COMPUTERNAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".to_string())
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// 128 random bits as hex. `RandomState` keys come from the operating system's random source;
/// the pid and the time are mixed in so that even equal keys (they are per thread, then
/// incremented) would give distinct nonces.
fn random_nonce(pid: u32) -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    (0..2u8)
        .map(|half| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u8(half);
            h.write_u32(pid);
            h.write_u128(nanos);
            format!("{:016x}", h.finish())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 \
                    1000 100 18446744073709551615";
        let stat = parse_proc_stat(line).unwrap();
        assert_eq!((stat.zombie, stat.start_ticks), (false, 987654));
        let zombie = "7 (x) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        assert!(parse_proc_stat(zombie).unwrap().zombie);
        assert!(parse_proc_stat("7 (truncated) S 1").is_none());
    }

    #[test]
    fn this_process_is_stable_and_alive() {
        let me = LeaseHolder::this_process();
        assert_eq!(me, LeaseHolder::this_process(), "one nonce per process");
        assert_eq!(me.pid, std::process::id());
        assert_eq!(me.nonce.len(), 32);
        assert!(!me.host.is_empty());
        let lease = Lease { run: RunId(1), holder: me.clone(), acquired_at_ms: 0, heartbeat_at_ms: 0 };
        // Alive whatever the heartbeat's age: the process exists with its start time.
        assert_eq!(staleness(&lease, i64::MAX, Duration::ZERO), None);
        if cfg!(target_os = "linux") {
            assert!(me.start_ticks.is_some() && me.boot_id.is_some());
            let reused = LeaseHolder { start_ticks: me.start_ticks.map(|t| t + 1), ..me.clone() };
            let lease = Lease { holder: reused, ..lease.clone() };
            assert_eq!(staleness(&lease, 0, Duration::MAX), Some(StaleReason::PidReused));
            let rebooted = LeaseHolder { boot_id: Some("another-boot".into()), ..me.clone() };
            let lease = Lease { holder: rebooted, ..lease };
            assert_eq!(staleness(&lease, 0, Duration::MAX), Some(StaleReason::Rebooted));
        }
    }

    #[test]
    fn other_hosts_are_judged_by_their_heartbeat() {
        let far = LeaseHolder { host: "elsewhere.invalid".into(), ..LeaseHolder::this_process() };
        let lease = Lease { run: RunId(1), holder: far, acquired_at_ms: 0, heartbeat_at_ms: 10_000 };
        let timeout = Duration::from_secs(5);
        assert_eq!(staleness(&lease, 15_000, timeout), None, "exactly the timeout is still alive");
        assert_eq!(staleness(&lease, 15_001, timeout), Some(StaleReason::HeartbeatExpired { age_ms: 5_001 }));
    }
}
