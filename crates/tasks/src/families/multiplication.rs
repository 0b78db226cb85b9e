//! `multiplication`: the product of a `digits`-digit number and a small factor.
//!
//! **Knobs.** `digits` (1..=2, default 1): the first factor `a` has exactly that many digits
//! (1..=9 or 10..=99). `max_factor` (2..=20, default 9): the second factor `b` is in
//! `1 ..= max_factor`.
//!
//! **Answer space.** `a_min ..= a_max · max_factor`: `1 ..= 81` (81 answers) at default
//! knobs, `10 ..= 1980` at max knobs.
//!
//! **Features** (`1 + 10·digits + (max_factor + 1) + 4`, 25 at default): bias; one-hot
//! digits of `a` (units first); one-hot of `b`; `a / a_max`, `b / max_factor`; and
//! `ln a / ln P`, `ln b / ln P` with `P` the largest product. The log features make the
//! product exactly representable by a log-linear policy, since `ln(ab) = ln a + ln b`
//! and `logit_y = s(ln y · (ln a + ln b) − (ln y)²/2)` peaks at `y = ab`.

use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{AnswerSpace, FamilyInfo, Features, TaskBody, TaskSource};
use rand::Rng;

use crate::common::{
    digit, gold_and_features, one_hot, prompt, single_turn, source_shape, INTEGER_INSTRUCTION, INTEGER_RULE,
};
use crate::detmath;

const KNOBS: &[ParamSpec] = &[
    ParamSpec::int("digits", 1, 2, 1, "decimal digits of the first factor (exactly that many)"),
    ParamSpec::int("max_factor", 2, 20, 9, "largest second factor (the second factor is 1 ..= max_factor)"),
];

/// The `multiplication` family.
pub const INFO: FamilyInfo = single_turn(
    "multiplication",
    "Multiplies a number with exactly `digits` digits by a factor in 1..=`max_factor` \
(\"What is 7 × 8?\"). Features: bias, one-hot digits of the first factor, one-hot of the second, \
both factors scaled to [0, 1], and their deterministic natural logs scaled by the log of the \
largest product.",
    INTEGER_RULE,
    KNOBS,
    build,
);

fn build(params: &Params) -> Box<dyn TaskSource> {
    Box::new(MultiplicationSource::new(
        params.int("digits").clamp(1, 2) as u32,
        params.int("max_factor").clamp(2, 20) as u64,
    ))
}

/// A configured `multiplication` source.
#[derive(Debug, Clone)]
pub struct MultiplicationSource {
    digits: u32,
    a_min: u64,
    a_max: u64,
    max_factor: u64,
    /// `ln v / ln(a_max · max_factor)` for `v` in `0 ..= max(a_max, max_factor)`, computed
    /// once so generation does no transcendental work.
    ln_scaled: Vec<f64>,
}

impl MultiplicationSource {
    fn new(digits: u32, max_factor: u64) -> Self {
        let a_min = if digits == 1 { 1 } else { 10u64.pow(digits - 1) };
        let a_max = 10u64.pow(digits) - 1;
        let top = detmath::ln((a_max * max_factor) as f64);
        let ln_scaled = (0..=a_max.max(max_factor)).map(|v| detmath::ln(v as f64) / top).collect();
        MultiplicationSource { digits, a_min, a_max, max_factor, ln_scaled }
    }
}

impl TaskSource for MultiplicationSource {
    source_shape!(|s| answers: AnswerSpace::inclusive(s.a_min as i64, (s.a_max * s.max_factor) as i64), features: 1 + 10 * s.digits as usize + (s.max_factor as usize + 1) + 4);

    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features) {
        let a = rng.random_range(self.a_min..=self.a_max);
        let b = rng.random_range(1..=self.max_factor);
        let prompt = &mut body.prompt;
        prompt.clear();
        prompt!(prompt; "What is ", a, " × ", b, "?\n", INTEGER_INSTRUCTION);
        let Some(f) = gold_and_features(body, (a * b) as i64, features) else { return };
        for p in 0..self.digits {
            one_hot(f, 10, digit(a, p));
        }
        one_hot(f, self.max_factor as usize + 1, b as usize);
        f.push(a as f64 / self.a_max as f64);
        f.push(b as f64 / self.max_factor as f64);
        f.push(self.ln_scaled[a as usize]);
        f.push(self.ln_scaled[b as usize]);
    }
}
