//! The sandbox: set-up once, then executions that turn a solution and a suite into an
//! [`Outcome`].

use std::collections::BTreeSet;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::compare;
use crate::config::{IsolationPolicy, ProcessMode, SandboxConfig};
use crate::error::SandboxError;
use crate::harness::{self, CallInput, Driver, Phase, Reported};
use crate::isolation::{self, CredentialMode, IsolationReport};
use crate::landlock::{self, PathRule, Ruleset};
use crate::outcome::{LimitKind, Outcome, TestResult, Verdict};
use crate::slots::Slots;
use crate::spawn::{self, ChildPlan, Credentials, Rlimit, SpawnError};
use crate::suite::Test;
use crate::watch::{self, Exit, Killed, Report, ResultSink, Watch};

/// Where a bare interpreter name is looked up.
const SYSTEM_BIN: [&str; 3] = ["/usr/local/bin", "/usr/bin", "/bin"];
/// Devices the solution may use: `(path, rights)`.
const DEVICES: [(&str, u64); 4] = [
    ("/dev/null", landlock::fs::READ_FILE | landlock::fs::WRITE_FILE | landlock::fs::TRUNCATE),
    ("/dev/zero", landlock::fs::READ_FILE),
    ("/dev/urandom", landlock::fs::READ_FILE),
    ("/dev/random", landlock::fs::READ_FILE),
];
/// Longest `detail` text kept per test.
const DETAIL_MAX: usize = 300;

/// A configured code sandbox. Cheap to share between threads (`&Sandbox` is `Sync`); at
/// most [`SandboxConfig::max_concurrent`] executions run at once.
#[derive(Debug)]
pub struct Sandbox {
    config: SandboxConfig,
    python: PathBuf,
    read_rules: Vec<PathRule>,
    isolation: IsolationReport,
    clone_flags: libc::c_long,
    netns: Option<OwnedFd>,
    slots: Slots,
}

/// Which program the child runs.
#[derive(Clone, Copy)]
enum Program {
    /// The call-test harness (`-c`), which loads `solution.py`.
    Harness,
    /// `solution.py` as `__main__`.
    Script,
}

impl Sandbox {
    /// Checks the configuration, finds the interpreter, probes which isolation mechanisms
    /// work on this machine and runs a self-test (a trivial solution through the full
    /// sandbox, both test forms).
    ///
    /// With [`IsolationPolicy::Require`] (the default) a missing mechanism is
    /// [`SandboxError::IsolationUnavailable`]; with [`IsolationPolicy::AllowDegraded`] it is
    /// recorded in [`Sandbox::isolation`].
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        validate(&config)?;
        let python = resolve_python(&config.python)?;
        let mut read_rules: Vec<PathRule> = config
            .read_paths
            .iter()
            .map(|p| PathRule { path: p.clone(), access: landlock::READ_EXEC })
            .collect();
        for prefix in interpreter_prefixes(&python)? {
            if !read_rules.iter().any(|r| prefix.starts_with(&r.path)) {
                read_rules.push(PathRule { path: prefix, access: landlock::READ_EXEC });
            }
        }
        read_rules.retain(|r| landlock::exists(&r.path));
        for (dev, access) in DEVICES {
            read_rules.push(PathRule { path: dev.into(), access });
        }
        let probe = isolation::probe(config.uid_base);
        if config.isolation == IsolationPolicy::Require {
            if let Some(&m) = probe.report.missing().first() {
                return Err(SandboxError::IsolationUnavailable {
                    mechanism: m,
                    reason: probe.report.reason(m),
                });
            }
        }
        let sandbox = Sandbox {
            slots: Slots::new(config.max_concurrent),
            config,
            python,
            read_rules,
            isolation: probe.report,
            clone_flags: probe.clone_flags,
            netns: probe.netns,
        };
        sandbox.self_test()?;
        Ok(sandbox)
    }

    /// The isolation every execution of this sandbox runs under.
    pub fn isolation(&self) -> &IsolationReport {
        &self.isolation
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The interpreter it runs (resolved, canonical path).
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// Runs `solution` (Python source) against `tests`, waiting for a free slot if
    /// [`SandboxConfig::max_concurrent`] executions are already running.
    ///
    /// Whatever the solution does is reported in the [`Outcome`]; an `Err` means the host
    /// could not run it at all (an empty suite, a failing system call).
    pub fn run(&self, solution: &str, tests: &[Test]) -> Result<Outcome, SandboxError> {
        self.execute(solution, tests, true)
    }

    /// Like [`Sandbox::run`], but returns [`SandboxError::Busy`] instead of waiting.
    pub fn try_run(&self, solution: &str, tests: &[Test]) -> Result<Outcome, SandboxError> {
        self.execute(solution, tests, false)
    }

    fn execute(&self, solution: &str, tests: &[Test], wait: bool) -> Result<Outcome, SandboxError> {
        if tests.is_empty() {
            return Err(SandboxError::NoTests);
        }
        let slot = self.slots.acquire(wait).ok_or(SandboxError::Busy(self.slots.capacity()))?;
        let start = Instant::now();
        let mut exec = Execution {
            sandbox: self,
            slot: slot.index,
            solution,
            tests,
            total_deadline: start + self.config.limits.total_wall_time,
            results: vec![None; tests.len()],
            limits_hit: BTreeSet::new(),
            processes: 0,
            cpu: Duration::ZERO,
        };
        exec.run_calls()?;
        exec.run_stdio()?;
        drop(slot);
        let results: Vec<TestResult> = exec
            .results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| failed(Verdict::NotRun, "not run".into(), Duration::ZERO)))
            .collect();
        let passed = results.iter().filter(|r| r.passed()).count();
        Ok(Outcome {
            score: passed as f64 / results.len() as f64,
            passed,
            tests: results,
            wall_time: start.elapsed(),
            cpu_time: exec.cpu,
            processes: exec.processes,
            limits_hit: exec.limits_hit.into_iter().collect(),
            isolation: self.isolation.clone(),
        })
    }

    fn self_test(&self) -> Result<(), SandboxError> {
        let solution =
            "import sys\nif __name__ == '__main__':\n    print(sys.stdin.readline().strip()[::-1])\n";
        let tests = [Test::call("sum([1, 2, 3])", serde_json::json!(6)), Test::stdio("gnip\n", "ping\n")];
        let outcome = self.run(solution, &tests)?;
        if !outcome.all_passed() {
            let why: Vec<String> =
                outcome.tests.iter().map(|t| format!("{:?}: {}", t.verdict, t.detail)).collect();
            return Err(SandboxError::SelfTest(format!(
                "a trivial solution did not pass under {} ({})",
                self.python.display(),
                why.join("; ")
            )));
        }
        Ok(())
    }

    fn credentials(&self, slot: usize) -> Credentials {
        // SAFETY: plain getters.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        match self.isolation.credentials {
            CredentialMode::DedicatedUid { uid_base } => {
                let id = uid_base + slot as u32;
                Credentials::Drop { uid: id, gid: id }
            }
            CredentialMode::UserNamespace => Credentials::OwnUserNamespace { uid, gid },
            CredentialMode::Unchanged => Credentials::Unchanged,
        }
    }
}

/// One execution in progress.
struct Execution<'a> {
    sandbox: &'a Sandbox,
    slot: usize,
    solution: &'a str,
    tests: &'a [Test],
    total_deadline: Instant,
    results: Vec<Option<TestResult>>,
    limits_hit: BTreeSet<LimitKind>,
    processes: usize,
    cpu: Duration,
}

fn failed(verdict: Verdict, mut detail: String, wall_time: Duration) -> TestResult {
    if detail.len() > DETAIL_MAX {
        let mut cut = DETAIL_MAX;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push('…');
    }
    TestResult { verdict, detail, wall_time }
}

/// The last non-empty line of the solution's stderr (a traceback's "Type: message").
fn last_line(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr);
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}

/// Which limit, if any, an exception message points at.
fn exception_limit(msg: &str) -> Option<LimitKind> {
    if msg.starts_with("MemoryError") {
        Some(LimitKind::Memory)
    } else if msg.contains("[Errno 27]") {
        Some(LimitKind::FileSize)
    } else if msg.contains("[Errno 24]") {
        Some(LimitKind::OpenFiles)
    } else if msg.starts_with("BlockingIOError") && msg.contains("[Errno 11]") {
        Some(LimitKind::Processes)
    } else {
        None
    }
}

impl Execution<'_> {
    fn limits(&self) -> &crate::config::Limits {
        &self.sandbox.config.limits
    }

    fn set(&mut self, index: usize, r: TestResult) {
        self.results[index] = Some(r);
    }

    fn exception(&mut self, index: usize, msg: String, wall: Duration) {
        let limit = exception_limit(&msg);
        if let Some(l) = limit {
            self.limits_hit.insert(l);
        }
        let verdict =
            if limit == Some(LimitKind::Memory) { Verdict::MemoryLimit } else { Verdict::RuntimeError };
        self.set(index, failed(verdict, msg, wall));
    }

    /// The verdict for a process that ended without finishing its work.
    fn abnormal(&mut self, rep: &Report, cpu_limit: Duration, harness: bool) -> (Verdict, String) {
        let limits = self.limits().clone();
        let (verdict, detail, limit) = match &rep.killed {
            Some(Killed::WallTime) => (
                Verdict::Timeout,
                format!("wall-clock limit of {:.3} s", limits.wall_time.as_secs_f64()),
                Some(LimitKind::WallTime),
            ),
            Some(Killed::TotalWallTime) => (
                Verdict::Timeout,
                format!("the execution's wall-clock limit of {:.3} s", limits.total_wall_time.as_secs_f64()),
                Some(LimitKind::TotalWallTime),
            ),
            Some(Killed::Output) => (
                Verdict::OutputLimit,
                format!("more than {} bytes of output", limits.max_output_bytes),
                Some(LimitKind::Output),
            ),
            Some(Killed::Protocol(m)) => (Verdict::Crashed, format!("harness protocol violated: {m}"), None),
            None => match rep.exit {
                // Nothing inside the sandbox can SIGKILL its init (the kernel protects it), and the
                // parent records its own kills, so an unexplained SIGKILL is RLIMIT_CPU (or the
                // host's OOM killer). The rusage of a killed multi-threaded process reads up to
                // ~10% below the kernel's own count, hence a generous margin.
                Exit::Signal(s)
                    if s == libc::SIGXCPU || (s == libc::SIGKILL && rep.cpu >= cpu_limit.mul_f64(0.5)) =>
                {
                    (
                        Verdict::Timeout,
                        format!("CPU-time limit of {:.0} s", cpu_limit.as_secs_f64()),
                        Some(LimitKind::CpuTime),
                    )
                }
                Exit::Signal(s) => (Verdict::Crashed, format!("killed by signal {s}"), None),
                Exit::Code(c) => {
                    let line = last_line(&rep.stderr);
                    match exception_limit(&line) {
                        Some(LimitKind::Memory) => (Verdict::MemoryLimit, line, Some(LimitKind::Memory)),
                        limit if !harness && c != 0 => {
                            (Verdict::RuntimeError, format!("exit status {c}: {line}"), limit)
                        }
                        limit => {
                            (Verdict::Crashed, format!("interpreter exited with status {c}: {line}"), limit)
                        }
                    }
                }
            },
        };
        if let Some(l) = limit {
            self.limits_hit.insert(l);
        }
        (verdict, detail)
    }

    fn out_of_time(&mut self, pending: &[usize]) -> bool {
        if Instant::now() < self.total_deadline {
            return false;
        }
        self.limits_hit.insert(LimitKind::TotalWallTime);
        for &i in pending {
            self.set(
                i,
                failed(Verdict::NotRun, "the execution's wall-clock limit ran out".into(), Duration::ZERO),
            );
        }
        true
    }

    fn run_calls(&mut self) -> Result<(), SandboxError> {
        let mut pending: Vec<usize> =
            (0..self.tests.len()).filter(|&i| matches!(self.tests[i], Test::Call { .. })).collect();
        while !pending.is_empty() {
            if self.out_of_time(&pending) {
                return Ok(());
            }
            let batch = match self.sandbox.config.process_mode {
                ProcessMode::Shared => pending.clone(),
                ProcessMode::PerTest => vec![pending[0]],
            };
            let (settled, abort) = self.run_harness(&batch)?;
            pending.drain(..settled);
            if let Some(why) = abort {
                for &i in &pending {
                    self.set(i, failed(Verdict::NotRun, why.clone(), Duration::ZERO));
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// Runs one harness process over `batch`; returns how many of its tests are settled
    /// and, if the rest must not run, why.
    fn run_harness(&mut self, batch: &[usize]) -> Result<(usize, Option<String>), SandboxError> {
        let tests = self.tests;
        let nonce = harness::nonce().map_err(SandboxError::io("getrandom"))?;
        let inputs: Vec<CallInput<'_>> = batch
            .iter()
            .map(|&i| match &tests[i] {
                Test::Call { expr, expected } => CallInput { index: i, expr, json: expected.wants_json() },
                Test::Stdio { .. } => unreachable!("only call tests are batched"),
            })
            .collect();
        let request = harness::request(&nonce, self.limits().max_output_bytes, &inputs);
        let mut driver = Driver::new(&nonce, self.limits().max_output_bytes as usize, batch.to_vec());
        let cpu_limit = self.cpu_limit(batch.len() as u32 + 1);
        let started = Instant::now();
        let rep = {
            let mut feed = |b: &[u8]| driver.feed(b);
            self.run_process(Program::Harness, &request, cpu_limit, Some(&mut feed))?
        };
        let n = batch.len();
        // Everything reported in order is judged by the parent's comparison.
        let mut done = 0;
        for (k, r) in driver.reported.iter().enumerate() {
            let Some((reported, wall)) = r else { break };
            let i = batch[k];
            let Test::Call { expected, .. } = &tests[i] else { unreachable!() };
            match reported {
                Reported::Value(v) => {
                    if compare::value_matches(expected, v) {
                        self.set(
                            i,
                            TestResult { verdict: Verdict::Passed, detail: String::new(), wall_time: *wall },
                        );
                    } else {
                        self.set(i, failed(Verdict::WrongAnswer, format!("got {v}"), *wall));
                    }
                }
                Reported::Unserializable(m) => self
                    .set(i, failed(Verdict::WrongAnswer, format!("value cannot be serialized: {m}"), *wall)),
                Reported::Exception(m) => self.exception(i, m.clone(), *wall),
            }
            done = k + 1;
        }
        if let Some(msg) = driver.load_error.clone() {
            let wall = started.elapsed();
            let limit = exception_limit(&msg);
            if let Some(l) = limit {
                self.limits_hit.insert(l);
            }
            let verdict =
                if limit == Some(LimitKind::Memory) { Verdict::MemoryLimit } else { Verdict::RuntimeError };
            for &i in batch {
                self.set(i, failed(verdict, format!("solution failed to load: {msg}"), wall));
            }
            return Ok((n, None));
        }
        if driver.phase == Phase::Finished {
            return Ok((n, None));
        }
        let (verdict, detail) = self.abnormal(&rep, cpu_limit, true);
        match driver.phase {
            Phase::Loading => {
                let wall = started.elapsed();
                for &i in batch {
                    self.set(i, failed(verdict, format!("while loading the solution: {detail}"), wall));
                }
                Ok((n, None))
            }
            Phase::Running(k) | Phase::Between(k) => {
                let wall = if matches!(driver.phase, Phase::Running(_)) {
                    driver.current_started().elapsed()
                } else {
                    Duration::ZERO
                };
                let k = k.min(done);
                if k < n {
                    self.set(batch[k], failed(verdict, detail.clone(), wall));
                }
                let abort = match &rep.killed {
                    Some(Killed::Protocol(_)) => Some(format!("not run: {detail}")),
                    Some(Killed::TotalWallTime) => {
                        Some("the execution's wall-clock limit ran out".to_string())
                    }
                    _ => None,
                };
                Ok(((k + 1).min(n), abort))
            }
            Phase::Finished => unreachable!(),
        }
    }

    fn run_stdio(&mut self) -> Result<(), SandboxError> {
        let tests = self.tests;
        let pending: Vec<usize> =
            (0..self.tests.len()).filter(|&i| matches!(self.tests[i], Test::Stdio { .. })).collect();
        for (k, &i) in pending.iter().enumerate() {
            if self.out_of_time(&pending[k..]) {
                return Ok(());
            }
            let Test::Stdio { stdin, expected_stdout, matching } = &tests[i] else { unreachable!() };
            let cpu_limit = self.cpu_limit(1);
            let started = Instant::now();
            let rep = self.run_process(Program::Script, stdin.as_bytes(), cpu_limit, None)?;
            let wall = started.elapsed();
            let finished = rep.killed.is_none() && rep.exit == Exit::Code(0);
            let result = if finished {
                if compare::output_matches(expected_stdout, &rep.stdout, *matching) {
                    TestResult { verdict: Verdict::Passed, detail: String::new(), wall_time: wall }
                } else {
                    let got =
                        String::from_utf8_lossy(&rep.stdout[..rep.stdout.len().min(DETAIL_MAX)]).into_owned();
                    failed(Verdict::WrongAnswer, format!("output differs; got {got:?}"), wall)
                }
            } else {
                let (verdict, detail) = self.abnormal(&rep, cpu_limit, false);
                failed(verdict, detail, wall)
            };
            self.set(i, result);
        }
        Ok(())
    }

    /// `RLIMIT_CPU` for a process running `units` units of work (tests plus loading).
    fn cpu_limit(&self, units: u32) -> Duration {
        let secs = (self.limits().cpu_time.as_secs_f64() * units as f64).ceil().max(1.0);
        Duration::from_secs_f64(secs)
    }

    /// Starts one interpreter in a fresh working directory, watches it, cleans up.
    fn run_process(
        &mut self,
        program: Program,
        stdin: &[u8],
        cpu_limit: Duration,
        on_results: Option<&mut ResultSink<'_>>,
    ) -> Result<Report, SandboxError> {
        let sb = self.sandbox;
        let limits = &sb.config.limits;
        let creds = sb.credentials(self.slot);
        let dir = tempfile::Builder::new()
            .prefix("gristmill-sandbox-")
            .tempdir_in(&sb.config.work_root)
            .map_err(SandboxError::io("creating the working directory"))?;
        let wd = dir.path().to_path_buf();
        let mut f =
            std::fs::File::create(wd.join("solution.py")).map_err(SandboxError::io("writing solution.py"))?;
        f.write_all(self.solution.as_bytes()).map_err(SandboxError::io("writing solution.py"))?;
        drop(f);
        std::fs::set_permissions(wd.join("solution.py"), std::fs::Permissions::from_mode(0o644))
            .map_err(SandboxError::io("chmod solution.py"))?;
        if let Credentials::Drop { uid, gid } = creds {
            std::os::unix::fs::chown(&wd, Some(uid), Some(gid))
                .map_err(SandboxError::io("chown the working directory"))?;
        }
        let ruleset = match sb.isolation.landlock_abi {
            Some(abi) => {
                let mut rules = sb.read_rules.clone();
                rules.push(PathRule { path: wd.clone(), access: landlock::WORKDIR });
                Some(Ruleset::build(abi, &rules).map_err(SandboxError::io("building the landlock ruleset"))?)
            }
            None => None,
        };

        let exe = sb.python.as_os_str().as_encoded_bytes();
        let mut argv: Vec<&[u8]> = vec![exe, b"-I"];
        if !sb.config.import_site {
            argv.push(b"-S");
        }
        argv.push(b"-B");
        match program {
            Program::Harness => argv.extend([b"-c".as_slice(), harness::SCRIPT.as_bytes()]),
            Program::Script => argv.push(b"solution.py"),
        }
        let wd_bytes = wd.as_os_str().as_encoded_bytes();
        let envp: Vec<Vec<u8>> = vec![
            b"PATH=/usr/local/bin:/usr/bin:/bin".to_vec(),
            [b"HOME=".as_slice(), wd_bytes].concat(),
            [b"TMPDIR=".as_slice(), wd_bytes].concat(),
            b"LANG=C.UTF-8".to_vec(),
        ];
        let cpu = cpu_limit.as_secs();
        let rlimits: Vec<Rlimit> = vec![
            (libc::RLIMIT_CPU, cpu, cpu),
            (libc::RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
            (libc::RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes),
            (libc::RLIMIT_NPROC, limits.max_processes, limits.max_processes),
            (libc::RLIMIT_NOFILE, limits.max_open_files, limits.max_open_files),
            (libc::RLIMIT_CORE, 0, 0),
        ];
        let plan = ChildPlan::new(
            &sb.python,
            &argv,
            &envp,
            &wd,
            rlimits,
            sb.clone_flags,
            creds,
            ruleset.as_ref().map(|r| r.raw_fd()),
            sb.netns.as_ref().map(|f| f.as_raw_fd()),
        )
        .map_err(|e| SandboxError::Config(e.to_string()))?;

        let spawned = spawn::spawn(&plan, matches!(program, Program::Harness));
        drop(ruleset);
        let spawned = match spawned {
            Ok(s) => s,
            Err(SpawnError::Parent(context, source)) => return Err(SandboxError::Io { context, source }),
            Err(SpawnError::Child(step, source)) => return Err(SandboxError::ChildSetup { step, source }),
        };
        self.processes += 1;
        let report = watch::watch(
            spawned,
            Watch {
                stdin,
                wall_time: limits.wall_time,
                total_deadline: self.total_deadline,
                max_output: limits.max_output_bytes,
                on_results,
            },
        )
        .map_err(SandboxError::io("watching the child"));
        if !sb.isolation.pid_namespace {
            if let Credentials::Drop { uid, .. } = creds {
                sweep_uid(uid);
            }
        }
        remove_dir(dir)?;
        let report = report?;
        self.cpu += report.cpu;
        Ok(report)
    }
}

/// Without a PID namespace, processes that left the process group survive it; as root,
/// kill everything the slot's uid still runs.
fn sweep_uid(uid: u32) {
    let Ok(pid) = spawn::raw_clone(0) else { return };
    if pid == 0 {
        // SAFETY: raw calls in the child: become the slot's uid, kill all it can, exit.
        unsafe {
            if libc::syscall(libc::SYS_setresuid, uid, uid, uid) == 0 {
                libc::kill(-1, libc::SIGKILL);
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// Removes a working directory, whatever permissions the solution left on what it made.
fn remove_dir(dir: tempfile::TempDir) -> Result<(), SandboxError> {
    let path = dir.path().to_path_buf();
    if dir.close().is_ok() {
        return Ok(());
    }
    fn open_up(p: &Path) {
        if let Ok(m) = p.symlink_metadata() {
            if m.is_dir() {
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
                if let Ok(rd) = std::fs::read_dir(p) {
                    for e in rd.flatten() {
                        open_up(&e.path());
                    }
                }
            }
        }
    }
    open_up(&path);
    std::fs::remove_dir_all(&path).map_err(SandboxError::io("removing the working directory"))
}

fn validate(c: &SandboxConfig) -> Result<(), SandboxError> {
    let l = &c.limits;
    let bad = |what: &str| Err(SandboxError::Config(what.to_string()));
    if c.max_concurrent == 0 {
        return bad("max_concurrent must be at least 1");
    }
    if l.wall_time.is_zero() || l.total_wall_time.is_zero() || l.cpu_time.is_zero() {
        return bad("time limits must be positive");
    }
    if l.memory_bytes < 32 << 20 {
        return bad("memory_bytes below 32 MiB cannot start the interpreter");
    }
    if l.max_processes == 0 || l.max_open_files < 8 || l.max_output_bytes == 0 {
        return bad("max_processes must be ≥ 1, max_open_files ≥ 8, max_output_bytes ≥ 1");
    }
    if c.uid_base == 0 || c.uid_base.checked_add(c.max_concurrent as u32).is_none() {
        return bad("uid_base must be non-zero and leave room for max_concurrent uids");
    }
    if !c.work_root.is_dir() {
        return Err(SandboxError::Config(format!("work_root {} is not a directory", c.work_root.display())));
    }
    Ok(())
}

fn resolve_python(p: &Path) -> Result<PathBuf, SandboxError> {
    let err = |reason: String| SandboxError::Interpreter { path: p.to_path_buf(), reason };
    let candidate = if p.components().count() > 1 || p.is_absolute() {
        p.to_path_buf()
    } else {
        SYSTEM_BIN
            .iter()
            .map(|d| Path::new(d).join(p))
            .find(|c| c.is_file())
            .ok_or_else(|| err(format!("not found in {}", SYSTEM_BIN.join(", "))))?
    };
    let real = candidate.canonicalize().map_err(|e| err(e.to_string()))?;
    let mode = real.metadata().map_err(|e| err(e.to_string()))?.permissions().mode();
    if mode & 0o111 == 0 {
        return Err(err("not executable".into()));
    }
    Ok(real)
}

/// The interpreter's installation directories (`sys.prefix` and friends), asked of the
/// interpreter itself (the interpreter is trusted; the solution is not involved).
fn interpreter_prefixes(python: &Path) -> Result<Vec<PathBuf>, SandboxError> {
    let err = |reason: String| SandboxError::Interpreter { path: python.to_path_buf(), reason };
    let out = std::process::Command::new(python)
        .args([
            "-I",
            "-S",
            "-c",
            "import sys\nfor p in {sys.prefix, sys.base_prefix, sys.exec_prefix}: print(p)",
        ])
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(format!("{}: {}", out.status, last_line(&out.stderr))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(PathBuf::from).collect())
}
