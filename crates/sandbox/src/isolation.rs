//! Which isolation mechanisms work on this machine, found by trying them once at start-up.

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize};

use crate::landlock;
use crate::spawn::raw_clone;

/// An isolation mechanism the sandbox relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// A network namespace of its own (`CLONE_NEWNET`): no interfaces but a loopback that is
    /// down, so no connection to anything, the host's loopback included.
    NetworkNamespace,
    /// A PID namespace of its own (`CLONE_NEWPID`) with the interpreter as its init: when it
    /// exits or is killed, the kernel kills every process it left behind, whatever session
    /// or process group they moved to.
    PidNamespace,
    /// Landlock: reads only beneath the interpreter's installation and the configured read
    /// paths, writes only beneath the working directory.
    Landlock,
    /// Not running as the host's user: a dedicated uid per slot when the host is root, or
    /// the host's uid inside a new user namespace (no capabilities outside it) when not.
    UnprivilegedUser,
}

impl Mechanism {
    /// Every mechanism, in a fixed order.
    pub const ALL: [Mechanism; 4] = [
        Mechanism::NetworkNamespace,
        Mechanism::PidNamespace,
        Mechanism::Landlock,
        Mechanism::UnprivilegedUser,
    ];
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mechanism::NetworkNamespace => "network namespace",
            Mechanism::PidNamespace => "pid namespace",
            Mechanism::Landlock => "landlock",
            Mechanism::UnprivilegedUser => "unprivileged user",
        })
    }
}

/// How the child's credentials differ from the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialMode {
    /// The host is root; slot `i` runs as uid/gid `uid_base + i` with no supplementary
    /// groups and no capabilities.
    DedicatedUid {
        /// The uid of slot 0.
        uid_base: u32,
    },
    /// The host is not root; the child runs as the host's uid inside a new user namespace
    /// that owns its other namespaces.
    UserNamespace,
    /// The child runs with the host's credentials (degraded).
    Unchanged,
}

/// The isolation an execution runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationReport {
    /// A network namespace apart from the host's.
    pub network_namespace: bool,
    /// Whether that namespace is one empty namespace shared by this sandbox's executions
    /// (root hosts with Landlock ABI ≥ 6, which keeps abstract Unix sockets from crossing
    /// between executions; it has only a loopback interface that is down, and no child has
    /// the capability to bring it up) rather than a fresh one per process. Sharing saves
    /// about a millisecond per process and the kernel's asynchronous teardown work.
    pub network_namespace_shared: bool,
    /// A private PID namespace.
    pub pid_namespace: bool,
    /// A private System V IPC namespace (not required; reported).
    pub ipc_namespace: bool,
    /// The Landlock ABI version in use; `None` when Landlock is unavailable. ABI ≥ 4 also
    /// denies TCP bind/connect, ABI ≥ 6 also confines signals and abstract Unix sockets to
    /// the sandbox.
    pub landlock_abi: Option<u32>,
    /// How credentials are dropped.
    pub credentials: CredentialMode,
    /// Why each missing mechanism is missing.
    pub reasons: Vec<(Mechanism, String)>,
}

impl IsolationReport {
    /// Is `m` in force?
    pub fn has(&self, m: Mechanism) -> bool {
        match m {
            Mechanism::NetworkNamespace => self.network_namespace,
            Mechanism::PidNamespace => self.pid_namespace,
            Mechanism::Landlock => self.landlock_abi.is_some(),
            Mechanism::UnprivilegedUser => self.credentials != CredentialMode::Unchanged,
        }
    }

    /// The mechanisms not in force (empty: full isolation).
    pub fn missing(&self) -> Vec<Mechanism> {
        Mechanism::ALL.into_iter().filter(|&m| !self.has(m)).collect()
    }

    /// Is any mechanism missing?
    pub fn is_degraded(&self) -> bool {
        !self.missing().is_empty()
    }

    pub(crate) fn reason(&self, m: Mechanism) -> String {
        self.reasons
            .iter()
            .find(|(k, _)| *k == m)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| "unavailable".into())
    }
}

/// Starts a child with `flags` that runs `then` (raw syscalls only) and exits 0; returns
/// whether it was created and exited 0.
fn try_clone(flags: libc::c_long, then: impl Fn() -> bool) -> io::Result<()> {
    let pid = raw_clone(flags)?;
    if pid == 0 {
        let ok = then();
        // SAFETY: leaving the probe child without running any destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(io::Error::other("the probe child failed"))
    }
}

/// The probed isolation, and the `clone` flags that achieve it.
pub(crate) struct Probe {
    pub report: IsolationReport,
    pub clone_flags: libc::c_long,
    /// The shared network namespace to `setns` into, when one is used.
    pub netns: Option<OwnedFd>,
}

/// A new, empty network namespace, held by a descriptor. A short-lived thread unshares
/// (namespaces are per thread) and opens its own namespace file.
fn empty_netns() -> io::Result<OwnedFd> {
    std::thread::spawn(|| {
        // SAFETY: unshare affects only this thread, which exits right after.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from(std::fs::File::open("/proc/thread-self/ns/net")?))
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("netns thread panicked")))
}

/// Tries every mechanism once.
pub(crate) fn probe(uid_base: u32) -> Probe {
    let mut reasons = Vec::new();
    // SAFETY: plain getter.
    let root = unsafe { libc::geteuid() } == 0;
    let mut base: libc::c_long = 0;
    let credentials = if root {
        let drop = || {
            // SAFETY: raw credential calls in the probe child.
            unsafe {
                libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) == 0
                    && libc::syscall(libc::SYS_setresgid, uid_base, uid_base, uid_base) == 0
                    && libc::syscall(libc::SYS_setresuid, uid_base, uid_base, uid_base) == 0
            }
        };
        match try_clone(0, drop) {
            Ok(()) => CredentialMode::DedicatedUid { uid_base },
            Err(e) => {
                reasons.push((Mechanism::UnprivilegedUser, format!("cannot switch to uid {uid_base}: {e}")));
                CredentialMode::Unchanged
            }
        }
    } else {
        match try_clone(libc::CLONE_NEWUSER as libc::c_long, || true) {
            Ok(()) => {
                base = libc::CLONE_NEWUSER as libc::c_long;
                CredentialMode::UserNamespace
            }
            Err(e) => {
                reasons.push((
                    Mechanism::UnprivilegedUser,
                    format!("not root and clone(CLONE_NEWUSER) failed: {e}"),
                ));
                CredentialMode::Unchanged
            }
        }
    };
    let landlock_abi = match landlock::abi_version() {
        Ok(v) if v >= 1 => Some(v),
        Ok(v) => {
            reasons.push((Mechanism::Landlock, format!("landlock ABI {v}")));
            None
        }
        Err(e) => {
            reasons.push((Mechanism::Landlock, format!("landlock_create_ruleset: {e}")));
            None
        }
    };
    let mut flags = base;
    let mut ns =
        |flag: libc::c_int, m: Option<Mechanism>| match try_clone(base | flag as libc::c_long, || true) {
            Ok(()) => {
                flags |= flag as libc::c_long;
                true
            }
            Err(e) => {
                if let Some(m) = m {
                    reasons.push((m, format!("clone with {} failed: {e}", m)));
                }
                false
            }
        };
    let mut netns = None;
    // Share one namespace only when no child can reconfigure it: dropped credentials (no
    // CAP_NET_ADMIN) and Landlock scoping of abstract Unix sockets.
    let dropped = matches!(credentials, CredentialMode::DedicatedUid { .. });
    let network_namespace = if dropped && landlock_abi.is_some_and(|v| v >= 6) {
        match empty_netns() {
            Ok(fd) => {
                netns = Some(fd);
                true
            }
            Err(_) => ns(libc::CLONE_NEWNET, Some(Mechanism::NetworkNamespace)),
        }
    } else {
        ns(libc::CLONE_NEWNET, Some(Mechanism::NetworkNamespace))
    };
    let pid_namespace = ns(libc::CLONE_NEWPID, Some(Mechanism::PidNamespace));
    let ipc_namespace = ns(libc::CLONE_NEWIPC, None);
    Probe {
        report: IsolationReport {
            network_namespace,
            network_namespace_shared: netns.is_some(),
            pid_namespace,
            ipc_namespace,
            landlock_abi,
            credentials,
            reasons,
        },
        clone_flags: flags,
        netns,
    }
}
