//! Configuration: the interpreter, the limits, what isolation is required, how many
//! executions may run at once.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Resource limits for one execution. Every field has a default (see [`Limits::default`]).
///
/// `cpu_time`, `memory_bytes`, `file_size_bytes`, `max_processes` and `max_open_files` are
/// `setrlimit` limits set in the child before `execve`; `wall_time`, `total_wall_time` and
/// `max_output_bytes` are enforced by the parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Wall-clock time per test (default 2 s). For a call test it runs from the moment the
    /// harness starts the test; loading the solution gets the same budget once per
    /// process. For a stdin/stdout test it covers the whole process.
    #[serde(with = "duration_secs")]
    pub wall_time: Duration,
    /// Wall-clock time for the whole execution, all tests together (default 20 s). Tests not
    /// started when it runs out are reported as [`NotRun`](crate::Verdict::NotRun).
    #[serde(with = "duration_secs")]
    pub total_wall_time: Duration,
    /// CPU time per test (`RLIMIT_CPU`, default 2 s, rounded up to whole seconds per
    /// process). A process that runs `k` call tests gets `k + 1` times this (loading counts
    /// as one). Soft and hard limits are equal, so the kernel sends `SIGKILL` at the limit
    /// (the interpreter is its PID namespace's init, which would ignore `SIGXCPU`).
    #[serde(with = "duration_secs")]
    pub cpu_time: Duration,
    /// Address space per process (`RLIMIT_AS`, default 512 MiB).
    pub memory_bytes: u64,
    /// Largest file the solution may write (`RLIMIT_FSIZE`, default 16 MiB).
    pub file_size_bytes: u64,
    /// Processes and threads (`RLIMIT_NPROC`, default 32). Counted per uid: each
    /// concurrency slot has its own uid when the host runs as root.
    pub max_processes: u64,
    /// Open file descriptors (`RLIMIT_NOFILE`, default 64).
    pub max_open_files: u64,
    /// Captured stdout plus stderr per process (default 4 MiB); the child is killed as soon
    /// as it writes more. The harness's result channel has the same cap.
    pub max_output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall_time: Duration::from_secs(2),
            total_wall_time: Duration::from_secs(20),
            cpu_time: Duration::from_secs(2),
            memory_bytes: 512 << 20,
            file_size_bytes: 16 << 20,
            max_processes: 32,
            max_open_files: 64,
            max_output_bytes: 4 << 20,
        }
    }
}

/// Whether every isolation mechanism must be available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IsolationPolicy {
    /// [`Sandbox::new`](crate::Sandbox::new) fails with
    /// [`SandboxError::IsolationUnavailable`](crate::SandboxError::IsolationUnavailable)
    /// unless every [`Mechanism`](crate::Mechanism) works on this machine. The default.
    #[default]
    Require,
    /// Run with whatever works. What is missing is stated in
    /// [`Sandbox::isolation`](crate::Sandbox::isolation) and in every
    /// [`Outcome::isolation`](crate::Outcome::isolation).
    AllowDegraded,
}

/// How call tests are spread over interpreter processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessMode {
    /// One interpreter loads the solution once and runs the call tests in order. A test that
    /// times out, crashes the interpreter or floods the output is charged to that test, and
    /// a fresh interpreter continues with the next one. The default: it pays the
    /// interpreter's start-up once per execution instead of once per test (see
    /// `docs/sandbox.md` for the measured difference).
    #[default]
    Shared,
    /// A fresh interpreter (and working directory) for every call test: no state can leak
    /// from one test to the next, at the cost of one start-up per test.
    PerTest,
}

/// How a [`Sandbox`](crate::Sandbox) is set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// The interpreter (default `python3`). A bare name is looked up in `/usr/local/bin`,
    /// `/usr/bin` and `/bin` — not in the host's `PATH`, whose entries (user shims such as
    /// pyenv's) are often not readable by the sandbox's unprivileged uid.
    pub python: PathBuf,
    /// Let the interpreter import `site` (and so site-packages). Off by default (`-S`): it
    /// saves about 8 ms per start and code-test solutions need only the standard library.
    pub import_site: bool,
    /// Resource limits.
    pub limits: Limits,
    /// Whether missing isolation is an error (default) or a stated, queryable degraded mode.
    pub isolation: IsolationPolicy,
    /// How call tests map onto interpreter processes.
    pub process_mode: ProcessMode,
    /// At most this many executions at once (default: the number of CPUs). Beyond it
    /// [`Sandbox::run`](crate::Sandbox::run) blocks and
    /// [`Sandbox::try_run`](crate::Sandbox::try_run) returns
    /// [`SandboxError::Busy`](crate::SandboxError::Busy).
    pub max_concurrent: usize,
    /// Where per-process working directories are created (default: the system temporary
    /// directory). Each is created empty, given to the sandbox's uid, and removed after
    /// the process is gone.
    pub work_root: PathBuf,
    /// When the host runs as root, slot `i` runs as uid and gid `uid_base + i`
    /// (default 61000). These ids should belong to nobody else on the machine.
    pub uid_base: u32,
    /// Paths the solution may read (and execute) besides the interpreter's own
    /// installation, which is found by asking the interpreter for `sys.prefix`.
    /// Defaults: `/usr`, `/lib`, `/lib64`, `/lib32`, `/bin`, `/etc/ld.so.cache`,
    /// `/etc/localtime`. Everything else — `/home`, `/root`, `/work`, `/tmp`, `/proc` — is
    /// unreadable.
    pub read_paths: Vec<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            python: PathBuf::from("python3"),
            import_site: false,
            limits: Limits::default(),
            isolation: IsolationPolicy::Require,
            process_mode: ProcessMode::Shared,
            max_concurrent: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            work_root: std::env::temp_dir(),
            uid_base: 61000,
            read_paths: ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/etc/ld.so.cache", "/etc/localtime"]
                .iter()
                .map(PathBuf::from)
                .collect(),
        }
    }
}

/// Durations in configuration files are written as (fractional) seconds.
mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}
