//! Tests: what the child sees (an expression, or stdin) and what stays in the parent (the
//! expected value or output).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One unit test. Only the *input* half ever reaches the sandboxed process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Test {
    /// Evaluate a Python expression after the solution is loaded (its top-level names are in
    /// scope), e.g. `add(2, 3)`, and compare the value with `expected` in the parent.
    Call {
        /// The expression, evaluated with `eval` in the solution's namespace.
        expr: String,
        /// The expected value; never sent to the child.
        expected: Expected,
    },
    /// Run the solution as a program (`__name__ == "__main__"`) with `stdin` as its
    /// standard input, and compare its standard output with `expected_stdout` in the
    /// parent. A pass also requires exit status 0.
    Stdio {
        /// Standard input for the program.
        stdin: String,
        /// The expected standard output; never sent to the child.
        expected_stdout: String,
        /// How outputs are compared.
        #[serde(default)]
        matching: OutputMatch,
    },
}

impl Test {
    /// A call test compared as JSON: `Test::call("add(2, 3)", json!(5))`.
    pub fn call(expr: impl Into<String>, expected: Value) -> Test {
        Test::Call { expr: expr.into(), expected: Expected::Json(expected) }
    }

    /// A call test compared by `repr` of the returned value: `Test::call_repr("f()", "{1, 2}")`.
    pub fn call_repr(expr: impl Into<String>, repr: impl Into<String>) -> Test {
        Test::Call { expr: expr.into(), expected: Expected::Repr(repr.into()) }
    }

    /// A stdin/stdout test compared line by line with trailing whitespace ignored.
    pub fn stdio(stdin: impl Into<String>, expected_stdout: impl Into<String>) -> Test {
        Test::Stdio {
            stdin: stdin.into(),
            expected_stdout: expected_stdout.into(),
            matching: OutputMatch::Lines,
        }
    }

    /// The same test with a different output comparison (no effect on call tests).
    pub fn with_matching(mut self, m: OutputMatch) -> Test {
        if let Test::Stdio { matching, .. } = &mut self {
            *matching = m;
        }
        self
    }
}

/// The expected result of a call test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Expected {
    /// The child sends `json.dumps(value, allow_nan=False)`; the parent parses it and compares
    /// structurally. Numbers compare by value (`5 == 5.0`, as in Python), booleans are not
    /// numbers, object key order does not matter, tuples are arrays, and dictionary keys
    /// become strings (JSON's rule). A value `json` cannot encode is a wrong answer.
    Json(Value),
    /// Like [`Expected::Json`], but numbers within `tolerance` (absolute, or relative to the
    /// larger magnitude) are equal.
    JsonApprox {
        /// The expected value.
        value: Value,
        /// Absolute or relative tolerance for every number in it.
        tolerance: f64,
    },
    /// The child sends `repr(value)`; the parent compares the strings exactly.
    Repr(String),
}

impl Expected {
    /// Does the child need to serialize this test's value as JSON (else `repr`)?
    pub(crate) fn wants_json(&self) -> bool {
        !matches!(self, Expected::Repr(_))
    }
}

/// How a stdin/stdout test's output is compared with the expected output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputMatch {
    /// Byte for byte.
    Exact,
    /// Line by line, ignoring trailing whitespace on each line, `\r\n` versus `\n`, and
    /// trailing empty lines. The default.
    #[default]
    Lines,
    /// As sequences of whitespace-separated tokens.
    Tokens,
}
