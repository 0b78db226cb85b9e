//! Policies and their responses.

use crate::error::ParseError;
use crate::rng::KeyedRng;
use crate::task::{Task, TaskSource};

/// A response as a policy wrote it, with the answer its family parsed from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Free text.
    pub text: String,
    /// The parsed answer, or why none could be read.
    pub answer: Result<i64, ParseError>,
}

impl Response {
    /// An empty response (no text, no answer), a buffer for [`Policy::respond_into`].
    pub fn empty() -> Response {
        Response { text: String::new(), answer: Err(ParseError::Missing) }
    }
    /// Overwrites `self` with the canonical response for answer `value`, reusing the text
    /// buffer.
    pub fn set_answer(&mut self, source: &dyn TaskSource, value: i64) {
        source.render_answer_into(value, &mut self.text);
        self.answer = Ok(value);
    }
    /// The canonical response for answer `value`: rendered and parsed by the family.
    pub fn from_answer(source: &dyn TaskSource, value: i64) -> Response {
        Response { text: source.render_answer(value), answer: Ok(value) }
    }
    /// A free-text response, parsed by the family's rule.
    pub fn from_text(source: &dyn TaskSource, text: String) -> Response {
        let answer = source.parse_answer(&text);
        Response { text, answer }
    }
}

/// Maps an observation to a distribution over responses.
///
/// All randomness comes from `rng`, a keyed stream the engine hands in, so a policy is
/// deterministic given its key wherever it runs.
pub trait Policy: Send + Sync {
    /// A short name for tables (e.g. `oracle(eps=0.3)`).
    fn name(&self) -> String;
    /// Samples one response to `task` (whose answers come from `source`) into `out`, reusing
    /// its buffers (rollout loops call this one).
    fn respond_into(&self, task: &Task, source: &dyn TaskSource, rng: &mut KeyedRng, out: &mut Response);
    /// Samples one response to `task` (whose answers come from `source`).
    fn respond(&self, task: &Task, source: &dyn TaskSource, rng: &mut KeyedRng) -> Response {
        let mut out = Response::empty();
        self.respond_into(task, source, rng, &mut out);
        out
    }
    /// Whether the policy reads `task.body.features`. Rollouts skip the feature encoding
    /// for policies that do not (reference policies, language models); the default is the
    /// safe `true`.
    fn reads_features(&self) -> bool {
        true
    }
}
