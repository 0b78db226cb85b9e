//! Typed errors. A solution's misbehaviour is never an error: it is a failing
//! [`Verdict`](crate::Verdict). Errors are about the host: configuration, missing isolation,
//! a busy sandbox, a failing system call.

use std::io;
use std::path::PathBuf;

use crate::isolation::Mechanism;

/// Everything that can go wrong on the host side.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// An isolation mechanism is unavailable and the policy is
    /// [`IsolationPolicy::Require`](crate::IsolationPolicy::Require).
    #[error("isolation mechanism '{mechanism}' is unavailable on this machine: {reason}")]
    IsolationUnavailable {
        /// The mechanism.
        mechanism: Mechanism,
        /// Why (usually the errno of the failing system call).
        reason: String,
    },
    /// The interpreter could not be found or run.
    #[error("python interpreter {path:?}: {reason}")]
    Interpreter {
        /// The configured or resolved path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
    /// The suite has no tests (a score over nothing is undefined).
    #[error("the test suite is empty")]
    NoTests,
    /// All concurrency slots are taken ([`Sandbox::try_run`](crate::Sandbox::try_run)).
    #[error("all {0} sandbox slots are busy")]
    Busy(usize),
    /// A set-up step in the child failed before the interpreter started.
    #[error("sandbox set-up failed in the child at '{step}': {source}")]
    ChildSetup {
        /// The step (e.g. `landlock_restrict_self`).
        step: &'static str,
        /// The errno.
        source: io::Error,
    },
    /// A system call in the host failed.
    #[error("{context}: {source}")]
    Io {
        /// What the host was doing.
        context: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The start-up self-test (a trivial solution inside the full sandbox) did not pass.
    #[error("sandbox self-test failed: {0}")]
    SelfTest(String),
}

impl SandboxError {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> SandboxError {
        move |source| SandboxError::Io { context, source }
    }
}
