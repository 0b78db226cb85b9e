//! Errors of the core layer.

use std::fmt;

/// One problem in a spec, located by its field path (e.g. `piece[2].weight`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SpecProblem {
    /// Dotted field path, with list positions in brackets.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl SpecProblem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        SpecProblem { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a spec. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    /// Where the spec came from (a file path, or `<inline>`).
    pub origin: String,
    /// The problems, in the order they were found.
    pub problems: Vec<SpecProblem>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "{}: {} problem{}", self.origin, n, if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Why a response's text did not yield an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum ParseError {
    /// No `Answer:` line (or the family's marker) was found.
    #[error("no answer found in the response")]
    Missing,
    /// Text was found but is not in the family's format.
    #[error("answer `{0}` is not in the expected format")]
    Malformed(String),
    /// A well-formed answer outside the family's answer space.
    #[error("answer {0} is outside the answer space")]
    OutOfSpace(String),
}

/// A task could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// The split (train vs eval) could not be satisfied: the family's task universe is too
    /// small for the eval fraction.
    #[error("source `{source_id}`: no {split} task found in {attempts} attempts; the task universe is too small for the eval split")]
    SplitExhausted {
        /// Source id.
        source_id: String,
        /// `train` or `eval`.
        split: &'static str,
        /// Attempts made.
        attempts: u32,
    },
    /// A source could not produce a task (a dataset row could not be read).
    #[error("source `{source_id}`: {message}")]
    Source {
        /// Source id.
        source_id: String,
        /// What went wrong, naming the file, row and field where there is one.
        message: String,
    },
    /// A task key did not parse or names an unknown source.
    #[error("bad task key `{key}`: {why}")]
    BadKey {
        /// The key as given.
        key: String,
        /// What is wrong.
        why: String,
    },
}
