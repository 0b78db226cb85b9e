//! `gcd`: the greatest common divisor of two positive integers.
//!
//! **Knobs.** `max_value` (10..=2000, default 60): both numbers are in `1 ..= max_value`.
//! `shared_factor_rate` (0..=1, default 0.5): the probability that a pair is built as
//! `(g·x, g·y)` around a random factor `g >= 2` instead of drawn uniformly; uniform pairs
//! are coprime about 60% of the time, so this knob keeps the answers varied.
//!
//! **Answer space.** `1 ..= max_value` (60 answers at default knobs).
//!
//! **Features** (`6 + 2·|P| + |Q|`, where `P` are the primes 2..=13 and `Q` the prime powers
//! of `P` up to `max_value`; 32 at default, 46 at most): bias; `a / max`, `b / max`,
//! `min(a, b) / max`; `[a = b]`; `[min(a, b) divides max(a, b)]`; for each `p` in `P`,
//! `[p | a]` and `[p | b]`; for each `q` in `Q`, `[q | a and q | b]`. The common-divisor
//! indicators of a prime's powers sum to its exponent in the gcd, so `ln gcd` is linear in
//! them whenever the gcd is 13-smooth, and the divides indicator with `min / max` covers
//! the case `gcd = min(a, b)`.

use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{AnswerSpace, FamilyInfo, Features, TaskBody, TaskSource};
use rand::Rng;

use crate::common::{
    gold_and_features, prompt, single_turn, source_shape, INTEGER_INSTRUCTION, INTEGER_RULE,
};

const KNOBS: &[ParamSpec] = &[
    ParamSpec::int("max_value", 10, 2000, 60, "largest number (both numbers are 1 ..= max_value)"),
    ParamSpec::float(
        "shared_factor_rate",
        0.0,
        1.0,
        0.5,
        "probability that a pair is built around a common factor >= 2 rather than drawn uniformly",
    ),
];

const PRIMES: [u64; 6] = [2, 3, 5, 7, 11, 13];

/// The `gcd` family.
pub const INFO: FamilyInfo = single_turn(
    "gcd",
    "Finds the greatest common divisor of two numbers in 1..=`max_value` (\"What is the \
greatest common divisor of 36 and 48?\"); `shared_factor_rate` of the pairs are built around a \
common factor so the answers are not mostly 1. Features: bias, scaled values and minimum, \
equality and divisibility flags, divisibility of each number by the primes 2..=13, and \
common-divisibility by each power of those primes.",
    INTEGER_RULE,
    KNOBS,
    build,
);

fn build(params: &Params) -> Box<dyn TaskSource> {
    Box::new(GcdSource::new(
        params.int("max_value").clamp(10, 2000) as u64,
        params.float("shared_factor_rate"),
    ))
}

/// A configured `gcd` source.
#[derive(Debug, Clone)]
pub struct GcdSource {
    max: u64,
    shared_rate: f64,
    /// Prime powers (of [`PRIMES`]) up to `max`.
    powers: Vec<u64>,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl GcdSource {
    fn new(max: u64, shared_rate: f64) -> Self {
        let mut powers = Vec::new();
        for p in PRIMES {
            let mut q = p;
            while q <= max {
                powers.push(q);
                q *= p;
            }
        }
        GcdSource { max, shared_rate: shared_rate.clamp(0.0, 1.0), powers }
    }
}

impl TaskSource for GcdSource {
    source_shape!(|s| answers: AnswerSpace::inclusive(1, s.max as i64), features: 6 + 2 * PRIMES.len() + s.powers.len());

    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features) {
        let (a, b) = if rng.random::<f64>() < self.shared_rate {
            let g = rng.random_range(2..=self.max / 2);
            let top = self.max / g;
            (g * rng.random_range(1..=top), g * rng.random_range(1..=top))
        } else {
            (rng.random_range(1..=self.max), rng.random_range(1..=self.max))
        };
        let prompt = &mut body.prompt;
        prompt.clear();
        prompt!(prompt; "What is the greatest common divisor of ", a, " and ", b, "?\n", INTEGER_INSTRUCTION);
        let (lo, hi) = (a.min(b), a.max(b));
        let flag = |c: bool| if c { 1.0 } else { 0.0 };
        let scale = self.max as f64;
        let Some(f) = gold_and_features(body, gcd(a, b) as i64, features) else { return };
        f.extend_from_slice(&[a as f64 / scale, b as f64 / scale, lo as f64 / scale]);
        f.push(flag(a == b));
        f.push(flag(hi % lo == 0));
        for p in PRIMES {
            f.push(flag(a % p == 0));
            f.push(flag(b % p == 0));
        }
        for &q in &self.powers {
            f.push(flag(a % q == 0 && b % q == 0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcd_is_right() {
        assert_eq!(gcd(36, 48), 12);
        assert_eq!(gcd(7, 13), 1);
        assert_eq!(gcd(9, 9), 9);
        assert_eq!(gcd(1, 60), 1);
    }

    #[test]
    fn prime_powers_are_listed() {
        assert_eq!(GcdSource::new(60, 0.5).powers, [2, 4, 8, 16, 32, 3, 9, 27, 5, 25, 7, 49, 11, 13]);
        assert_eq!(GcdSource::new(2000, 0.5).powers.len(), 28);
    }
}
