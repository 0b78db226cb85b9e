//! What an execution reports.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::isolation::IsolationReport;

/// The verdict on one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The parent's comparison with the expected value or output succeeded.
    Passed,
    /// The test ran to completion and the result differed (or could not be serialized).
    WrongAnswer,
    /// The solution raised an exception (call test) or exited with a non-zero status, or
    /// failed to load.
    RuntimeError,
    /// The wall-clock or CPU-time limit was reached.
    Timeout,
    /// The address-space limit was reached (`MemoryError`).
    MemoryLimit,
    /// The solution wrote more than `max_output_bytes`.
    OutputLimit,
    /// The interpreter died (signal, early exit, broken harness protocol) during the test.
    Crashed,
    /// The test never ran: the execution's time ran out, or an earlier failure (a broken
    /// protocol, a solution that could not load) ended it.
    NotRun,
}

/// One test's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// The verdict.
    pub verdict: Verdict,
    /// A short human-readable reason (empty for a pass): the exception, the exit status, the
    /// limit that was hit. Text in it may come from the solution.
    pub detail: String,
    /// Wall-clock time of the test (for a call test in a shared process, from its start
    /// to its result).
    #[serde(with = "secs")]
    pub wall_time: Duration,
}

impl TestResult {
    /// Did the test pass?
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }
}

/// A limit that an execution ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// A test's wall-clock limit.
    WallTime,
    /// The whole execution's wall-clock limit.
    TotalWallTime,
    /// `RLIMIT_CPU` (the kernel killed the process with its CPU time at the limit).
    CpuTime,
    /// `RLIMIT_AS` (`MemoryError`).
    Memory,
    /// The stdout/stderr (or result channel) cap.
    Output,
    /// `RLIMIT_FSIZE`, inferred from the solution's `OSError` (errno `EFBIG`).
    FileSize,
    /// `RLIMIT_NPROC`, inferred from the solution's `BlockingIOError` (errno `EAGAIN`).
    Processes,
    /// `RLIMIT_NOFILE`, inferred from the solution's `OSError` (errno `EMFILE`).
    OpenFiles,
}

/// The result of running one solution against a suite of tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// One result per test, in the suite's order.
    pub tests: Vec<TestResult>,
    /// How many tests passed.
    pub passed: usize,
    /// `passed / tests.len()`: the verifier's score in `[0, 1]`.
    pub score: f64,
    /// Wall-clock time of the whole execution, including set-up and clean-up.
    #[serde(with = "secs")]
    pub wall_time: Duration,
    /// CPU time (user + system) of the interpreter processes.
    #[serde(with = "secs")]
    pub cpu_time: Duration,
    /// How many interpreter processes were started.
    pub processes: usize,
    /// Every limit the execution ran into, sorted, without duplicates.
    pub limits_hit: Vec<LimitKind>,
    /// The isolation this execution ran under (see [`IsolationReport::missing`]).
    pub isolation: IsolationReport,
}

impl Outcome {
    /// Did the execution run into any limit?
    pub fn hit_limit(&self) -> bool {
        !self.limits_hit.is_empty()
    }

    /// Did every test pass?
    pub fn all_passed(&self) -> bool {
        self.passed == self.tests.len()
    }
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Duration::try_from_secs_f64(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
