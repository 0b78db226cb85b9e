//! # gristmill-sandbox
//!
//! Run an untrusted Python solution against a task's unit tests and report the fraction
//! passed — the engine of a code-execution verifier.
//!
//! ```
//! use gristmill_sandbox::{Sandbox, SandboxConfig, Test, Verdict};
//! use serde_json::json;
//!
//! let sandbox = Sandbox::new(SandboxConfig::default())?;
//! let solution = "def add(a, b):\n    return a + b\n";
//! let tests = [
//!     Test::call("add(2, 3)", json!(5)),        // evaluated in the child, compared here
//!     Test::call("add(-1, 1)", json!(0)),
//!     Test::call("add('a', 'b')", json!("ab")),
//! ];
//! let outcome = sandbox.run(solution, &tests)?;
//! assert_eq!(outcome.score, 1.0);
//! assert!(outcome.tests.iter().all(|t| t.verdict == Verdict::Passed));
//! assert!(!outcome.isolation.is_degraded());
//!
//! // Programs that read stdin and print are tested the same way.
//! let program = "a, b = map(int, input().split())\nprint(a + b)\n";
//! let outcome = sandbox.run(program, &[Test::stdio("2 3\n", "5\n")])?;
//! assert_eq!(outcome.passed, 1);
//! # Ok::<(), gristmill_sandbox::SandboxError>(())
//! ```
//!
//! **Tests never reveal expected answers.** The child receives the solution, the test
//! expressions (or stdin) and nothing else; the expected value stays in the parent, which
//! compares it with what the child produced ([`Expected`], [`OutputMatch`]). Call-test
//! results come back on a dedicated pipe in frames carrying a per-process random nonce
//! and must arrive in protocol order; a solution that exits early, forges frames, patches
//! the harness or swallows every exception can at best fail (see [the harness
//! protocol](crate#the-harness-protocol)).
//!
//! **Isolation** (Linux only): every interpreter is the init of its own PID and IPC
//! namespaces, has a network namespace apart from the host's (one empty namespace shared by
//! the sandbox's executions when root, see [`IsolationReport::network_namespace_shared`]), runs under a Landlock domain that can write only in its own temporary
//! directory and read only the interpreter's installation, as an unprivileged uid (one per
//! concurrency slot when the host is root, a user namespace otherwise), with `setrlimit`
//! limits on CPU, address space, file size, processes and open files, a cleared
//! environment, and a wall clock and output cap enforced by the parent. [`Sandbox::new`]
//! probes what works; a missing mechanism is an error unless
//! [`IsolationPolicy::AllowDegraded`] is chosen, and then it is stated in every
//! [`Outcome::isolation`]. `docs/sandbox.md` has the threat model.
//!
//! ## The harness protocol
//!
//! Call tests run under a small Python harness (`src/harness.py`). It reads one JSON
//! request from stdin — nonce, expressions, whether to serialize each value as JSON or
//! `repr` — loads `solution.py`, and for each test writes `S i` (started) and then `V i
//! <value>`, `U i` (unserializable) or `E i <exception>` to fd 3, ending with `D`. The
//! parent accepts only that exact order with the right nonce; a test passes only when the
//! parent's own comparison of the reported value with the expected one succeeds.
//!
//! ## Processes
//!
//! In [`ProcessMode::Shared`] (the default) one interpreter runs all call tests, and a
//! test that hangs, crashes or floods is charged to that test, after which a fresh
//! interpreter continues with the next; [`ProcessMode::PerTest`] starts one interpreter
//! per test. Stdin/stdout tests always get a process each.
#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!("gristmill-sandbox needs Linux (namespaces, Landlock, pidfd)");

mod compare;
mod config;
mod error;
mod harness;
mod isolation;
mod landlock;
mod outcome;
mod sandbox;
mod slots;
mod spawn;
mod suite;
mod watch;

pub use config::{IsolationPolicy, Limits, ProcessMode, SandboxConfig};
pub use error::SandboxError;
pub use isolation::{CredentialMode, IsolationReport, Mechanism};
pub use outcome::{LimitKind, Outcome, TestResult, Verdict};
pub use sandbox::Sandbox;
pub use suite::{Expected, OutputMatch, Test};
