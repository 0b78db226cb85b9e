//! The parent's side of one running child: feed stdin, read stdout, stderr and the result
//! channel with caps, enforce the wall-clock deadlines, and reap.
//!
//! One thread, one `poll(2)` loop over the child's pidfd and pipes. Nothing is buffered
//! beyond the caps: past `max_output_bytes` the child is killed and its pipes are closed
//! unread.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::spawn::{set_nonblocking, Spawned};

/// Why the parent killed the child.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Killed {
    /// The per-test (or load) wall-clock deadline passed.
    WallTime,
    /// The whole execution's deadline passed.
    TotalWallTime,
    /// stdout + stderr exceeded the cap (or the result channel did).
    Output,
    /// The result channel broke the protocol.
    Protocol(String),
}

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Exited with this status.
    Code(i32),
    /// Terminated by this signal.
    Signal(i32),
}

/// Everything observed about one child.
#[derive(Debug)]
pub(crate) struct Report {
    pub exit: Exit,
    pub killed: Option<Killed>,
    pub stdout: Vec<u8>,
    /// The first `STDERR_KEEP` bytes of stderr.
    pub stderr: Vec<u8>,
    pub cpu: Duration,
}

const STDERR_KEEP: usize = 16 << 10;

/// Receives bytes from the result channel; `Ok(true)` restarts the wall clock, `Err` is a
/// protocol violation.
pub(crate) type ResultSink<'f> = dyn FnMut(&[u8]) -> Result<bool, String> + 'f;

/// Parameters for [`watch`].
pub(crate) struct Watch<'a, 'f> {
    pub stdin: &'a [u8],
    pub wall_time: Duration,
    pub total_deadline: Instant,
    pub max_output: u64,
    /// Called with bytes from the result channel. `Ok(true)` restarts the wall clock.
    pub on_results: Option<&'a mut ResultSink<'f>>,
}

struct Stream {
    fd: Option<OwnedFd>,
}

impl Stream {
    fn raw(&self) -> RawFd {
        self.fd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)
    }
}

fn read_some(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: reading into a local buffer from a descriptor we own.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn kill_group(pid: libc::pid_t) {
    // SAFETY: signalling our own child and its process group; with a PID namespace killing
    // its init kills everything in it.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// Runs the loop until the child has exited and been reaped.
pub(crate) fn watch(child: Spawned, mut w: Watch<'_, '_>) -> io::Result<Report> {
    let pid = child.pid;
    let mut stdin = Stream { fd: Some(child.stdin) };
    let mut out = Stream { fd: Some(child.stdout) };
    let mut err = Stream { fd: Some(child.stderr) };
    let mut res = Stream { fd: child.results };
    for s in [&stdin, &out, &err, &res] {
        if s.fd.is_some() {
            if let Err(e) = set_nonblocking(s.raw()) {
                kill_group(pid);
                reap(pid)?;
                return Err(e);
            }
        }
    }
    let mut written = 0usize;
    if w.stdin.is_empty() {
        close_stdin(&mut stdin);
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut output_bytes = 0u64;
    let mut result_bytes = 0u64;
    let mut killed: Option<Killed> = None;
    let mut exited = false;
    let mut deadline = (Instant::now() + w.wall_time).min(w.total_deadline);
    let mut buf = vec![0u8; 1 << 16];
    let mut drain_until: Option<Instant> = None;

    loop {
        let now = Instant::now();
        if killed.is_none() && !exited && now >= deadline {
            killed = Some(if now >= w.total_deadline { Killed::TotalWallTime } else { Killed::WallTime });
        }
        if killed.is_some()
            && (out.fd.is_some() || err.fd.is_some() || res.fd.is_some() || stdin.fd.is_some())
        {
            kill_group(pid);
            // Stop reading: nothing after the kill counts.
            stdin.fd = None;
            out.fd = None;
            err.fd = None;
            res.fd = None;
        }
        if exited {
            let open = out.fd.is_some() || err.fd.is_some() || res.fd.is_some();
            let grace_over = drain_until.is_some_and(|t| now >= t);
            if !open || grace_over {
                break;
            }
        }
        let mut fds = [
            libc::pollfd {
                fd: if exited { -1 } else { child.pidfd.as_raw_fd() },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd { fd: out.raw(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: err.raw(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: res.raw(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: stdin.raw(), events: libc::POLLOUT, revents: 0 },
        ];
        let wake = if exited {
            drain_until.unwrap_or(now)
        } else if killed.is_some() {
            now + Duration::from_secs(1)
        } else {
            deadline
        };
        let timeout_ms =
            wake.saturating_duration_since(now).as_micros().div_ceil(1000).min(60_000) as libc::c_int;
        // SAFETY: fds is a valid array of pollfd; negative fds are ignored by poll.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            kill_group(pid);
            reap(pid)?;
            return Err(e);
        }
        let ready = |i: usize| fds[i].fd >= 0 && fds[i].revents != 0;

        if ready(4) {
            let rest = &w.stdin[written..];
            // SAFETY: sending from a live slice on our socket; MSG_NOSIGNAL: no SIGPIPE.
            let r = unsafe {
                libc::send(
                    stdin.raw(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if r > 0 {
                written += r as usize;
                if written == w.stdin.len() {
                    close_stdin(&mut stdin);
                }
            } else if r < 0 {
                let e = io::Error::last_os_error();
                if !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) {
                    // The child closed its stdin: it simply does not get the rest.
                    stdin.fd = None;
                }
            }
        }
        for (i, stream) in [(1, &mut out), (2, &mut err)] {
            if !ready(i) {
                continue;
            }
            match read_some(stream.raw(), &mut buf) {
                Ok(0) => stream.fd = None,
                Ok(k) => {
                    output_bytes += k as u64;
                    if output_bytes > w.max_output {
                        if killed.is_none() {
                            killed = Some(Killed::Output);
                        }
                    } else if i == 1 {
                        stdout.extend_from_slice(&buf[..k]);
                    } else {
                        let room = STDERR_KEEP.saturating_sub(stderr.len());
                        stderr.extend_from_slice(&buf[..k.min(room)]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => stream.fd = None,
            }
        }
        if ready(3) {
            match read_some(res.raw(), &mut buf) {
                Ok(0) => res.fd = None,
                Ok(k) => {
                    result_bytes += k as u64;
                    if result_bytes > w.max_output {
                        killed.get_or_insert(Killed::Output);
                    } else if let Some(f) = w.on_results.as_mut() {
                        match f(&buf[..k]) {
                            Ok(true) => deadline = (Instant::now() + w.wall_time).min(w.total_deadline),
                            Ok(false) => {}
                            Err(msg) => {
                                killed.get_or_insert(Killed::Protocol(msg));
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => res.fd = None,
            }
        }
        if ready(0) && !exited {
            exited = true;
            // With a PID namespace everything in it is dead by now and the pipes reach EOF
            // at once; without one, kill the process group and give stragglers a moment.
            kill_group(pid);
            drain_until = Some(Instant::now() + Duration::from_millis(200));
        }
    }
    let (exit, cpu) = reap(pid)?;
    Ok(Report { exit, killed, stdout, stderr, cpu })
}

fn close_stdin(stdin: &mut Stream) {
    if let Some(fd) = stdin.fd.take() {
        // SAFETY: half-closing our own socket so the child sees end-of-file.
        unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) };
    }
}

/// Waits for `pid` (already exited or killed) and returns its status and CPU time.
fn reap(pid: libc::pid_t) -> io::Result<(Exit, Duration)> {
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let tv =
        |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    let cpu = tv(ru.ru_utime) + tv(ru.ru_stime);
    let exit = if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    };
    Ok((exit, cpu))
}
