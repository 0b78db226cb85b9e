//! Starting the interpreter inside its namespaces, limits and Landlock domain.
//!
//! `std::process::Command` cannot put the child into a new PID namespace as its init (the
//! flag has to be given to `clone`, not to `unshare` in `pre_exec`), so the child is started
//! here with a raw `clone(2)` that behaves like `fork` plus namespace flags. Everything the
//! child needs — argument and environment vectors, the working directory, the limits, the
//! `uid_map` lines, the Landlock ruleset descriptor — is prepared in the parent; between
//! `clone` and `execve` the child makes raw system calls only (no allocation, no locks, no
//! glibc wrappers that broadcast to other threads, such as `setuid`). A failing step writes
//! `(step, errno)` to a close-on-exec pipe, which the parent reads until end-of-file (success:
//! `execve` closed it).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One resource limit applied in the child: `(resource, soft, hard)`.
pub(crate) type Rlimit = (libc::__rlimit_resource_t, u64, u64);

/// How the child changes its credentials.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Credentials {
    /// Host is root: switch to this uid/gid (no supplementary groups) before `execve`.
    Drop { uid: u32, gid: u32 },
    /// Host is not root: the child is in a new user namespace; map our own uid/gid there.
    OwnUserNamespace { uid: u32, gid: u32 },
    /// Leave credentials alone (degraded).
    Unchanged,
}

/// Everything the child does between `clone` and `execve`, prepared in the parent.
pub(crate) struct ChildPlan {
    exe: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    workdir: CString,
    rlimits: Vec<Rlimit>,
    clone_flags: libc::c_long,
    credentials: Credentials,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    landlock_fd: RawFd,
    netns_fd: RawFd,
}

impl ChildPlan {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        exe: &Path,
        argv: &[&[u8]],
        envp: &[Vec<u8>],
        workdir: &Path,
        rlimits: Vec<Rlimit>,
        clone_flags: libc::c_long,
        credentials: Credentials,
        landlock_fd: Option<RawFd>,
        netns_fd: Option<RawFd>,
    ) -> io::Result<ChildPlan> {
        let nul = |_| io::Error::new(io::ErrorKind::InvalidInput, "argument contains a NUL byte");
        let exe = CString::new(exe.as_os_str().as_bytes()).map_err(nul)?;
        let argv: Vec<CString> =
            argv.iter().map(|a| CString::new(*a)).collect::<Result<_, _>>().map_err(nul)?;
        let envp: Vec<CString> =
            envp.iter().map(|a| CString::new(a.clone())).collect::<Result<_, _>>().map_err(nul)?;
        let mut argv_ptrs: Vec<_> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<_> = envp.iter().map(|a| a.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        let (uid_map, gid_map) = match credentials {
            Credentials::OwnUserNamespace { uid, gid } => {
                (format!("{uid} {uid} 1\n").into_bytes(), format!("{gid} {gid} 1\n").into_bytes())
            }
            _ => (Vec::new(), Vec::new()),
        };
        Ok(ChildPlan {
            exe,
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            workdir: CString::new(workdir.as_os_str().as_bytes()).map_err(nul)?,
            rlimits,
            clone_flags,
            credentials,
            uid_map,
            gid_map,
            landlock_fd: landlock_fd.unwrap_or(-1),
            netns_fd: netns_fd.unwrap_or(-1),
        })
    }
}

/// The parent's ends of a started child.
pub(crate) struct Spawned {
    pub pid: libc::pid_t,
    /// Readable when the child has exited.
    pub pidfd: OwnedFd,
    /// Our end of the child's stdin (a socket, so writes can use `MSG_NOSIGNAL`).
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// The harness's result channel (the child's fd 3), if requested.
    pub results: Option<OwnedFd>,
}

/// The steps of the child's setup, named in errors.
const STEPS: &[&str] = &[
    "write /proc/self/setgroups",
    "write /proc/self/uid_map",
    "write /proc/self/gid_map",
    "setsid",
    "rearrange file descriptors",
    "close inherited file descriptors",
    "setrlimit",
    "chdir to the working directory",
    "setgroups",
    "setresgid",
    "setresuid",
    "prctl(PR_SET_PDEATHSIG)",
    "prctl(PR_SET_NO_NEW_PRIVS)",
    "landlock_restrict_self",
    "execve",
    "reset the signal mask",
    "setns to the shared network namespace",
];

/// The name of child setup step `i`.
pub(crate) fn step_name(i: u32) -> &'static str {
    STEPS.get(i as usize).copied().unwrap_or("unknown step")
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) }
        < 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Why the child could not be started.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// A system call in the parent failed.
    Parent(&'static str, io::Error),
    /// A setup step in the child failed.
    Child(&'static str, io::Error),
}

/// Raw `clone(2)` with fork semantics (no new stack, no shared memory) plus `flags`.
///
/// The stack, parent-tid, child-tid and TLS arguments are all zero, so their order (which
/// differs between architectures) does not matter.
pub(crate) fn raw_clone(flags: libc::c_long) -> io::Result<libc::pid_t> {
    // SAFETY: with a null stack clone behaves like fork; the caller handles the child side.
    let r = unsafe {
        libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as libc::c_long, 0usize, 0usize, 0usize, 0usize)
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as libc::pid_t)
    }
}

/// Starts the child described by `plan`.
pub(crate) fn spawn(plan: &ChildPlan, want_results: bool) -> Result<Spawned, SpawnError> {
    let p = |what| move |e| SpawnError::Parent(what, e);
    let (stdin_parent, stdin_child) = socketpair().map_err(p("socketpair"))?;
    let (stdout_r, stdout_w) = pipe().map_err(p("pipe"))?;
    let (stderr_r, stderr_w) = pipe().map_err(p("pipe"))?;
    let results = if want_results { Some(pipe().map_err(p("pipe"))?) } else { None };
    let (err_r, err_w) = pipe().map_err(p("pipe"))?;
    let srcs = [
        stdin_child.as_raw_fd(),
        stdout_w.as_raw_fd(),
        stderr_w.as_raw_fd(),
        results.as_ref().map(|r| r.1.as_raw_fd()).unwrap_or(-1),
    ];
    let err_w_raw = err_w.as_raw_fd();

    let pid = raw_clone(plan.clone_flags).map_err(p("clone"))?;
    if pid == 0 {
        // SAFETY: we are the freshly cloned child; child_main only makes raw system calls
        // on data prepared before the clone and never returns.
        unsafe { child_main(plan, srcs, err_w_raw) }
    }
    drop(stdin_child);
    drop(stdout_w);
    drop(stderr_w);
    drop(err_w);
    let results_r = results.map(|(r, w)| {
        drop(w);
        r
    });

    // Wait for the child's verdict on its own setup: EOF = execve succeeded.
    let mut buf = [0u8; 8];
    let mut got = 0;
    loop {
        // SAFETY: reading into a local buffer from our pipe end.
        let n = unsafe { libc::read(err_r.as_raw_fd(), buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if n == 0 {
            break;
        }
        got += n as usize;
        if got == buf.len() {
            break;
        }
    }
    if got == 8 {
        let step = u32::from_ne_bytes(buf[..4].try_into().unwrap());
        let errno = i32::from_ne_bytes(buf[4..].try_into().unwrap());
        reap(pid);
        return Err(SpawnError::Child(step_name(step), io::Error::from_raw_os_error(errno)));
    }

    // SAFETY: pidfd_open on our own child (a zombie still has a pid until we reap it).
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    if pidfd < 0 {
        let e = io::Error::last_os_error();
        kill_and_reap(pid);
        return Err(SpawnError::Parent("pidfd_open", e));
    }
    // SAFETY: a fresh descriptor we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    Ok(Spawned { pid, pidfd, stdin: stdin_parent, stdout: stdout_r, stderr: stderr_r, results: results_r })
}

/// SIGKILL `pid` and its process group, then reap it.
pub(crate) fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: signalling and waiting for our own child.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    reap(pid);
}

fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
}

/// Report a failed setup step and exit. Async-signal-safe.
unsafe fn fail(err_fd: RawFd, step: u32) -> ! {
    let errno = *libc::__errno_location();
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&step.to_ne_bytes());
    msg[4..].copy_from_slice(&errno.to_ne_bytes());
    libc::write(err_fd, msg.as_ptr().cast(), msg.len());
    libc::_exit(127);
}

unsafe fn write_file(path: &[u8], data: &[u8]) -> bool {
    // `path` is NUL-terminated by the caller.
    let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return false;
    }
    let ok = libc::write(fd, data.as_ptr().cast(), data.len()) == data.len() as isize;
    libc::close(fd);
    ok
}

/// The child side: raw system calls only, then `execve`.
unsafe fn child_main(plan: &ChildPlan, srcs: [RawFd; 4], err_fd: RawFd) -> ! {
    let mut err = err_fd;

    // 0. The sandbox's shared, empty network namespace (instead of a fresh one per child).
    if plan.netns_fd >= 0 && libc::setns(plan.netns_fd, libc::CLONE_NEWNET) < 0 {
        fail(err, 16);
    }

    // 1. Our own uid/gid maps in a new user namespace (non-root hosts).
    if let Credentials::OwnUserNamespace { .. } = plan.credentials {
        if !write_file(b"/proc/self/setgroups\0", b"deny") {
            fail(err, 0);
        }
        if !write_file(b"/proc/self/uid_map\0", &plan.uid_map) {
            fail(err, 1);
        }
        if !write_file(b"/proc/self/gid_map\0", &plan.gid_map) {
            fail(err, 2);
        }
    }

    // 2. A session and process group of its own (the whole group is killed at the end).
    if libc::setsid() < 0 {
        fail(err, 3);
    }

    // 3. Descriptors: stdin, stdout, stderr, results at 0..=3, the error pipe at 4
    //    (close-on-exec), nothing else. Move everything above 10 first so that no target
    //    overwrites a source.
    let mut high = [-1; 4];
    for (i, &s) in srcs.iter().enumerate() {
        if s >= 0 {
            high[i] = libc::fcntl(s, libc::F_DUPFD, 10);
            if high[i] < 0 {
                fail(err, 4);
            }
        }
    }
    let high_err = libc::fcntl(err, libc::F_DUPFD_CLOEXEC, 10);
    if high_err < 0 {
        fail(err, 4);
    }
    err = high_err;
    let mut high_landlock = -1;
    if plan.landlock_fd >= 0 {
        high_landlock = libc::fcntl(plan.landlock_fd, libc::F_DUPFD_CLOEXEC, 10);
        if high_landlock < 0 {
            fail(err, 4);
        }
    }
    for (i, &h) in high.iter().enumerate() {
        if h >= 0 && libc::dup2(h, i as RawFd) < 0 {
            fail(err, 4);
        }
    }
    if libc::dup3(high_err, 4, libc::O_CLOEXEC) < 0 {
        fail(err, 4);
    }
    err = 4;
    // Keep the Landlock ruleset until it is enforced: move it to 5.
    let mut landlock_fd = -1;
    if high_landlock >= 0 {
        if libc::dup3(high_landlock, 5, libc::O_CLOEXEC) < 0 {
            fail(err, 4);
        }
        landlock_fd = 5;
    }
    let first_closed = if landlock_fd >= 0 { 6 } else { 5 };
    if srcs[3] < 0 {
        libc::close(3);
    }
    if libc::syscall(libc::SYS_close_range, first_closed as libc::c_uint, libc::c_uint::MAX, 0u32) < 0 {
        // Kernels before 5.9: close one by one.
        let mut fd = first_closed;
        while fd < 65536 {
            libc::close(fd);
            fd += 1;
        }
    }

    // 4. Resource limits.
    for &(resource, soft, hard) in &plan.rlimits {
        let lim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
        if libc::setrlimit(resource, &lim) < 0 {
            fail(err, 6);
        }
    }

    // 5. Working directory.
    if libc::chdir(plan.workdir.as_ptr()) < 0 {
        fail(err, 7);
    }

    // 6. Credentials: drop root to the slot's uid (raw calls: this thread only).
    if let Credentials::Drop { uid, gid } = plan.credentials {
        if libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) < 0 {
            fail(err, 8);
        }
        if libc::syscall(libc::SYS_setresgid, gid, gid, gid) < 0 {
            fail(err, 9);
        }
        if libc::syscall(libc::SYS_setresuid, uid, uid, uid) < 0 {
            fail(err, 10);
        }
    }

    // 7. Die with the parent (set after the credential change, which clears it).
    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) < 0 {
        fail(err, 11);
    }
    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) < 0 {
        fail(err, 12);
    }

    // 8. Landlock.
    if landlock_fd >= 0 {
        if libc::syscall(libc::SYS_landlock_restrict_self, landlock_fd, 0u32) < 0 {
            fail(err, 13);
        }
        libc::close(landlock_fd);
    }

    // 9. A clean signal state: nothing blocked, SIGPIPE back to default.
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    if libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) < 0 {
        fail(err, 15);
    }
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);

    libc::execve(plan.exe.as_ptr(), plan.argv_ptrs.as_ptr(), plan.envp_ptrs.as_ptr());
    fail(err, 14);
}
