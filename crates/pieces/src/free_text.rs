//! Free-text verifiers: pieces that read a response's text rather than its parsed integer.
//!
//! Each wraps a [`gristmill_text`] verifier (answer extraction, then a comparison) or a
//! [`gristmill_sandbox`] code run. The gold comes from the task's free-text
//! [`Reference`](gristmill_core::task::Reference) when it has one (dataset tasks), else from
//! the integer gold of a procedural family written in decimal: so `numeric_verifier` with its
//! lenient extraction is the integer families' lenient option too (it reads "The answer is:
//! 12", which the families' strict `Answer:` rule does not).

use std::borrow::Cow;

use gristmill_core::piece::{RewardPiece, ScoreKey};
use gristmill_core::policy::Response;
use gristmill_core::task::{GoldKind, Task};
use gristmill_sandbox::{Sandbox, Test};
use gristmill_text::format::{JsonSource, Layout, Schema};
use gristmill_text::verify::{Check, Verifier};

/// The gold answer of a task as text: the reference's, or the integer gold in decimal.
pub fn gold_text(task: &Task) -> Cow<'_, str> {
    match &task.body.reference {
        Some(r) => r.gold_text(),
        None => Cow::Owned(task.gold().to_string()),
    }
}

/// A text verifier piece: `1` if the extracted answer matches the gold, else `0`.
#[derive(Debug, Clone)]
pub struct TextVerifier {
    verifier: Verifier,
}

impl TextVerifier {
    /// Wraps a configured verifier.
    pub fn new(verifier: Verifier) -> Self {
        TextVerifier { verifier }
    }
    /// The verifier's verdict on `text` for `task`.
    pub fn accepts(&self, task: &Task, text: &str) -> bool {
        self.verifier.verify(&gold_text(task), text).correct
    }
}

impl RewardPiece for TextVerifier {
    fn score(&self, task: &Task, response: &Response, _key: ScoreKey) -> f64 {
        f64::from(u8::from(self.accepts(task, &response.text)))
    }
}

/// The verifier the gold metric uses for a reference of `kind` (not for tests): the
/// comparison that kind names, with the most lenient extraction chain, so that the gold
/// metric counts a right answer however it is marked.
pub fn gold_verifier(kind: GoldKind) -> Option<Verifier> {
    let check = match kind {
        GoldKind::Text => Check::parse("exact", None),
        GoldKind::Number => Check::parse("numeric", None),
        GoldKind::Math => Check::parse("math", None),
        GoldKind::Choice => Check::parse("choice", Some("A-Z")),
        GoldKind::Tests => return None,
    }
    .expect("built-in checks parse");
    let extract = match kind {
        GoldKind::Text => "answer_line,answer_is,boxed",
        GoldKind::Choice => "answer_line,answer_is,boxed,whole",
        _ => "boxed,answer_is,answer_line,last_latex,last_number",
    };
    Some(Verifier::new(extract, None, check).expect("built-in extractors parse"))
}

/// `format_verifier`: `1` if the whole response matches a layout regex, else `0`.
#[derive(Debug, Clone)]
pub struct LayoutVerifier {
    layout: Layout,
}

impl LayoutVerifier {
    /// A layout check.
    pub fn new(layout: Layout) -> Self {
        LayoutVerifier { layout }
    }
}

impl RewardPiece for LayoutVerifier {
    fn score(&self, _task: &Task, response: &Response, _key: ScoreKey) -> f64 {
        f64::from(u8::from(self.layout.check(&response.text).is_ok()))
    }
}

/// `json_verifier`: `1` if the response holds JSON with the required fields and matching the
/// schema, else `0`.
#[derive(Debug, Clone)]
pub struct JsonVerifier {
    source: JsonSource,
    fields: Vec<String>,
    schema: Option<Schema>,
}

impl JsonVerifier {
    /// A JSON check: where the JSON is, the dotted paths that must be present, a schema.
    pub fn new(source: JsonSource, fields: Vec<String>, schema: Option<Schema>) -> Self {
        JsonVerifier { source, fields, schema }
    }
    /// Whether `text` passes.
    pub fn accepts(&self, text: &str) -> bool {
        let Ok(value) = gristmill_text::format::parse_json(text, self.source) else {
            return false;
        };
        let fields: Vec<&str> = self.fields.iter().map(String::as_str).collect();
        gristmill_text::format::require_fields(&value, &fields).is_ok()
            && self.schema.as_ref().is_none_or(|s| s.validate(&value).is_ok())
    }
}

impl RewardPiece for JsonVerifier {
    fn score(&self, _task: &Task, response: &Response, _key: ScoreKey) -> f64 {
        f64::from(u8::from(self.accepts(&response.text)))
    }
}

/// `code_verifier`: the fraction of a code task's unit tests that the response's solution
/// passes in the sandbox (the last fenced code block of the response, else the whole
/// response). `0` for a task without tests, or whose tests cannot be read.
///
/// A host failure (the sandbox cannot start a process at all) or unreadable tests are not a
/// verdict on the response: the piece scores NaN, which the engine refuses as a non-finite
/// reward naming the channel, step and sample, with the reason ([`RewardPiece::failure`]).
pub struct CodeVerifier {
    sandbox: Sandbox,
    failure: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeVerifier").field("config", self.sandbox.config()).finish()
    }
}

impl CodeVerifier {
    /// A verifier over `sandbox`.
    pub fn new(sandbox: Sandbox) -> Self {
        CodeVerifier { sandbox, failure: Default::default() }
    }
    /// The fraction of `task`'s tests that `text`'s solution passes.
    pub fn fraction_passed(&self, task: &Task, text: &str) -> Result<f64, String> {
        let Some(tests) = tests(task)? else { return Ok(0.0) };
        let code = solution_code(text);
        if code.trim().is_empty() {
            return Ok(0.0);
        }
        self.sandbox.run(code, &tests).map(|o| o.score).map_err(|e| e.to_string())
    }
}

impl RewardPiece for CodeVerifier {
    fn score(&self, task: &Task, response: &Response, _key: ScoreKey) -> f64 {
        match self.fraction_passed(task, &response.text) {
            Ok(score) => score,
            Err(reason) => {
                remember(&self.failure, format!("task {}: {reason}", task.key));
                f64::NAN
            }
        }
    }
    fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Keeps the first failure a piece met (later ones are usually the same cause).
pub(crate) fn remember(slot: &std::sync::Mutex<Option<String>>, reason: String) {
    let mut slot = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if slot.is_none() {
        *slot = Some(reason);
    }
}

/// The code a response proposes: the content of its last fenced block (any language tag),
/// else the whole response.
pub fn solution_code(text: &str) -> &str {
    gristmill_text::format::fenced_blocks(text).last().map_or(text, |(_, body)| body)
}

/// The unit tests of a code task: `None` when the task has no tests gold; an error when they
/// cannot be read. Each test is one of:
///
/// * a string `assert <condition>` (as MBPP and HumanEval-style datasets store them): the
///   condition is evaluated in the solution's namespace and must be `True`;
/// * `{"expr": "...", "expected": <JSON>}`: a call test compared as JSON in the parent;
/// * `{"stdin": "...", "stdout": "..."}`: the solution run as a program;
/// * the sandbox's own form, `{"kind": "call" | "stdio", ...}`.
pub fn tests(task: &Task) -> Result<Option<Vec<Test>>, String> {
    let Some(r) = &task.body.reference else { return Ok(None) };
    if r.kind != GoldKind::Tests {
        return Ok(None);
    }
    let items = r.gold.as_array().ok_or_else(|| format!("row `{}`: tests gold is not a list", r.id))?;
    items
        .iter()
        .enumerate()
        .map(|(i, t)| parse_test(t).map_err(|why| format!("row `{}`: test {i}: {why}", r.id)))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn parse_test(value: &serde_json::Value) -> Result<Test, String> {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            let cond = s.trim().strip_prefix("assert").filter(|c| c.starts_with([' ', '(']));
            let cond = cond.ok_or_else(|| format!("`{s}` is not an `assert <condition>` statement"))?;
            Ok(Test::call(format!("bool({})", cond.trim()), Value::Bool(true)))
        }
        Value::Object(o) if o.contains_key("kind") => {
            serde_json::from_value(value.clone()).map_err(|e| format!("not a sandbox test: {e}"))
        }
        Value::Object(o) => match (o.get("expr"), o.get("expected"), o.get("stdin"), o.get("stdout")) {
            (Some(Value::String(expr)), Some(expected), None, None) => {
                Ok(Test::call(expr.clone(), expected.clone()))
            }
            (None, None, Some(Value::String(stdin)), Some(Value::String(stdout))) => {
                Ok(Test::stdio(stdin.clone(), stdout.clone()))
            }
            _ => Err("expected {expr, expected} or {stdin, stdout}".into()),
        },
        other => Err(format!("expected a string or an object, found {other}")),
    }
}
