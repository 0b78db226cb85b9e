//! Test helpers: tiny task sources of our own (the real families live in `gristmill-tasks`,
//! which this crate must not depend on) and hand-made tasks and responses.

use gristmill_core::piece::ScoreKey;
use gristmill_core::policy::Response;
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{
    parse_integer_answer, AnswerSpace, Features, Split, Task, TaskBody, TaskKey, TaskSource,
};
use gristmill_core::ParseError;
use rand::Rng;

/// "What is a + b?" for one-digit `a, b`: answers `0..=18`.
pub struct AddSource;

impl TaskSource for AddSource {
    fn family(&self) -> &'static str {
        "add1"
    }
    fn answers(&self) -> AnswerSpace {
        AnswerSpace::inclusive(0, 18)
    }
    fn feature_dim(&self) -> usize {
        2
    }
    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features) {
        let (a, b) = (rng.random_range(0..10i64), rng.random_range(0..10i64));
        body.prompt = format!("What is {a} + {b}?");
        body.features = if features == Features::Encode { vec![a as f64, b as f64] } else { vec![] };
        body.gold = a + b;
    }
    fn render_answer_into(&self, value: i64, out: &mut String) {
        *out = format!("Answer: {value}");
    }
    fn parse_answer(&self, text: &str) -> Result<i64, ParseError> {
        parse_integer_answer(text, self.answers())
    }
}

/// "What is a − b?" for one-digit `a, b`: answers `−9..=9` (exercises negative answers).
pub struct SubSource;

impl TaskSource for SubSource {
    fn family(&self) -> &'static str {
        "sub1"
    }
    fn answers(&self) -> AnswerSpace {
        AnswerSpace::inclusive(-9, 9)
    }
    fn feature_dim(&self) -> usize {
        2
    }
    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features) {
        let (a, b) = (rng.random_range(0..10i64), rng.random_range(0..10i64));
        body.prompt = format!("What is {a} - {b}?");
        body.features = if features == Features::Encode { vec![a as f64, b as f64] } else { vec![] };
        body.gold = a - b;
    }
    fn render_answer_into(&self, value: i64, out: &mut String) {
        *out = format!("Answer: {value}");
    }
    fn parse_answer(&self, text: &str) -> Result<i64, ParseError> {
        parse_integer_answer(text, self.answers())
    }
}

/// The two test sources, their ids, and mixture weights `[3, 1]`.
pub fn ctx_parts() -> (Vec<Box<dyn TaskSource>>, Vec<String>, Vec<f64>) {
    (vec![Box::new(AddSource), Box::new(SubSource)], vec!["add".into(), "sub".into()], vec![3.0, 1.0])
}

/// Runs `f` with a build context over [`ctx_parts`]'s two sources, at `seed`.
pub fn with_ctx<R>(seed: u64, f: impl FnOnce(&crate::BuildContext) -> R) -> R {
    let (srcs, ids, weights) = ctx_parts();
    let refs: Vec<&dyn TaskSource> = srcs.iter().map(|s| s.as_ref()).collect();
    let ctx = crate::BuildContext {
        seed,
        sources: &refs,
        source_ids: &ids,
        source_weights: &weights,
        eval_fraction: 0.2,
        verdicts: None,
    };
    f(&ctx)
}

/// A hand-made task with gold `gold` over `lo..=hi`.
pub fn task(gold: i64, lo: i64, hi: i64) -> Task {
    let span = (i128::from(hi) - i128::from(lo) + 1).min(i128::from(u32::MAX)) as u32;
    Task {
        key: TaskKey { seed: 0, source: 0, index: 0, split: Split::Train },
        body: TaskBody { prompt: "hand-made".into(), features: vec![], gold, reference: None },
        answers: AnswerSpace { lo, size: span },
        hint: None,
    }
}

/// The canonical response for answer `y`.
pub fn parsed(y: i64) -> Response {
    Response { text: format!("Answer: {y}"), answer: Ok(y) }
}

/// A response whose answer did not parse.
pub fn unparsed(text: &str) -> Response {
    Response { text: text.to_string(), answer: Err(ParseError::Missing) }
}

/// Score key for sample `index` of step 0, seed 1.
pub fn key(index: u64) -> ScoreKey {
    ScoreKey { seed: 1, step: 0, index }
}
