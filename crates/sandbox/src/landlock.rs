//! Landlock, spoken directly through its three system calls.
//!
//! The ruleset is built in the parent (it opens paths and allocates) and only
//! `landlock_restrict_self` runs in the forked child, where nothing may allocate. The
//! `landlock` crate builds and enforces in one object, which does not fit that split, so the
//! dozen constants and two structs of the kernel ABI (`include/uapi/linux/landlock.h`) are
//! written out here.
//!
//! What the ruleset says: read and execute beneath the interpreter's directories, read a
//! few device and configuration files, do everything except execute and create devices
//! beneath the working directory; nothing else on the filesystem. From ABI 4, every TCP bind
//! and connect is denied (no port rules); from ABI 6, signals and abstract Unix sockets are
//! scoped to the sandbox's own domain.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const CREATE_RULESET_VERSION: u32 = 1 << 0;
const RULE_PATH_BENEATH: libc::c_int = 1;

/// `LANDLOCK_ACCESS_FS_*`.
pub(crate) mod fs {
    pub const EXECUTE: u64 = 1 << 0;
    pub const WRITE_FILE: u64 = 1 << 1;
    pub const READ_FILE: u64 = 1 << 2;
    pub const READ_DIR: u64 = 1 << 3;
    pub const REMOVE_DIR: u64 = 1 << 4;
    pub const REMOVE_FILE: u64 = 1 << 5;
    pub const MAKE_CHAR: u64 = 1 << 6;
    pub const MAKE_DIR: u64 = 1 << 7;
    pub const MAKE_REG: u64 = 1 << 8;
    pub const MAKE_SOCK: u64 = 1 << 9;
    pub const MAKE_FIFO: u64 = 1 << 10;
    pub const MAKE_BLOCK: u64 = 1 << 11;
    pub const MAKE_SYM: u64 = 1 << 12;
    /// ABI 2.
    pub const REFER: u64 = 1 << 13;
    /// ABI 3.
    pub const TRUNCATE: u64 = 1 << 14;
    /// ABI 5.
    pub const IOCTL_DEV: u64 = 1 << 15;
    /// The rights that make sense on a file (not a directory) in a path-beneath rule.
    pub const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;
}

/// `LANDLOCK_ACCESS_NET_*` (ABI 4).
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
/// `LANDLOCK_SCOPE_*` (ABI 6).
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version this kernel offers, or the reason there is none.
pub(crate) fn abi_version() -> Result<u32, io::Error> {
    // SAFETY: the documented version query: null attribute, size 0, the version flag.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as u32)
    }
}

/// Every filesystem right the given ABI knows about.
fn fs_rights(abi: u32) -> u64 {
    use fs::*;
    let mut all = EXECUTE
        | WRITE_FILE
        | READ_FILE
        | READ_DIR
        | REMOVE_DIR
        | REMOVE_FILE
        | MAKE_CHAR
        | MAKE_DIR
        | MAKE_REG
        | MAKE_SOCK
        | MAKE_FIFO
        | MAKE_BLOCK
        | MAKE_SYM;
    if abi >= 2 {
        all |= REFER;
    }
    if abi >= 3 {
        all |= TRUNCATE;
    }
    if abi >= 5 {
        all |= IOCTL_DEV;
    }
    all
}

/// Read and execute: what the interpreter needs from its own installation.
pub(crate) const READ_EXEC: u64 = fs::EXECUTE | fs::READ_FILE | fs::READ_DIR;
/// What the solution may do in its working directory: everything but executing files and
/// creating device nodes (and ioctl on devices).
pub(crate) const WORKDIR: u64 = fs::WRITE_FILE
    | fs::READ_FILE
    | fs::READ_DIR
    | fs::REMOVE_DIR
    | fs::REMOVE_FILE
    | fs::MAKE_DIR
    | fs::MAKE_REG
    | fs::MAKE_SOCK
    | fs::MAKE_FIFO
    | fs::MAKE_SYM
    | fs::REFER
    | fs::TRUNCATE;

/// One path rule: a path and the rights granted beneath it.
#[derive(Debug, Clone)]
pub(crate) struct PathRule {
    pub path: std::path::PathBuf,
    pub access: u64,
}

/// A Landlock ruleset ready to be enforced by `restrict_self` in the child.
#[derive(Debug)]
pub(crate) struct Ruleset {
    fd: OwnedFd,
}

impl Ruleset {
    /// Builds a ruleset for `abi` granting exactly `rules` (paths that do not exist are
    /// skipped: a rule for a missing path grants nothing anyway).
    pub(crate) fn build(abi: u32, rules: &[PathRule]) -> io::Result<Ruleset> {
        let handled = fs_rights(abi);
        let attr = RulesetAttr {
            handled_access_fs: handled,
            handled_access_net: if abi >= 4 { NET_BIND_TCP | NET_CONNECT_TCP } else { 0 },
            scoped: if abi >= 6 { SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL } else { 0 },
        };
        // Older kernels take the prefix of the struct they know.
        let size = match abi {
            0..=3 => 8,
            4 | 5 => 16,
            _ => std::mem::size_of::<RulesetAttr>(),
        };
        // SAFETY: attr is a valid, initialised struct of at least `size` bytes.
        let fd = unsafe {
            libc::syscall(libc::SYS_landlock_create_ruleset, &attr as *const RulesetAttr, size, 0u32)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a fresh descriptor (close-on-exec) that we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        for rule in rules {
            let c = CString::new(rule.path.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
            // SAFETY: c is a valid C string; O_PATH opens without reading.
            let pfd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
            if pfd < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::NotFound {
                    continue;
                }
                return Err(io::Error::new(e.kind(), format!("{}: {e}", rule.path.display())));
            }
            // SAFETY: pfd was just opened and is ours.
            let pfd = unsafe { OwnedFd::from_raw_fd(pfd) };
            let is_dir = std::fs::metadata(&rule.path).map(|m| m.is_dir()).unwrap_or(false);
            let mut access = rule.access & handled;
            if !is_dir {
                access &= fs::FILE_RIGHTS;
            }
            if access == 0 {
                continue;
            }
            let beneath = PathBeneathAttr { allowed_access: access, parent_fd: pfd.as_raw_fd() };
            // SAFETY: valid ruleset fd, rule type and attribute pointer.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    fd.as_raw_fd(),
                    RULE_PATH_BENEATH,
                    &beneath as *const PathBeneathAttr,
                    0u32,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(
                    e.kind(),
                    format!("landlock rule for {}: {e}", rule.path.display()),
                ));
            }
        }
        Ok(Ruleset { fd })
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Does `path` exist (used to skip rules for paths this machine lacks)?
pub(crate) fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}
