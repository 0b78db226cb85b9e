//! `addition`: the sum of two non-negative integers.
//!
//! **Knobs.** `digits` (1..=3, default 2): operands are drawn from `0 ..= 10^digits − 1`.
//! `carry` (`any` | `none` | `some`, default `any`): `any` draws operands uniformly, `none`
//! only pairs whose column sums never carry, `some` only pairs with at least one carry.
//!
//! **Answer space.** `0 ..= 2(10^digits − 1)` for `any` (199 answers at default knobs),
//! `0 ..= 10^digits − 1` for `none`, `10 ..= 2(10^digits − 1)` for `some`.
//!
//! **Features** (`1 + 20·digits + 2`, 43 at default): a bias 1.0; for each operand and each
//! decimal position (units first) a one-hot of the digit; then `a / max` and `b / max`.
//! The two scalars make the answer exactly representable by a log-linear policy
//! (`logit_y = s(y·(a + b) − y²/2)`), while the digit one-hots let richer policies learn
//! column-wise addition with carries.

use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{AnswerSpace, FamilyInfo, Features, TaskBody, TaskSource};
use rand::Rng;

use crate::common::{
    digit, gold_and_features, one_hot, prompt, single_turn, INTEGER_INSTRUCTION, INTEGER_RULE,
};

const KNOBS: &[ParamSpec] = &[
    ParamSpec::int("digits", 1, 3, 2, "decimal digits per operand (operands are 0 ..= 10^digits - 1)"),
    ParamSpec::choice(
        "carry",
        &["any", "none", "some"],
        "any",
        "column carries: any (uniform operands), none (no column carries), some (at least one carry)",
    ),
];

/// The `addition` family.
pub const INFO: FamilyInfo = single_turn(
    "addition",
    "Adds two non-negative integers of up to `digits` decimal digits (\"What is 23 + 58?\"). \
The `carry` knob restricts tasks to pairs without any column carry (easiest) or with at least \
one carry (hardest). Features: bias, one-hot digits of both operands, and both operands scaled \
to [0, 1].",
    INTEGER_RULE,
    KNOBS,
    build,
);

fn build(params: &Params) -> Box<dyn TaskSource> {
    let carry = match params.choice("carry") {
        "none" => Carry::None,
        "some" => Carry::Some,
        _ => Carry::Any,
    };
    Box::new(AdditionSource::new(params.int("digits").clamp(1, 3) as u32, carry))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carry {
    Any,
    None,
    Some,
}

/// A configured `addition` source.
#[derive(Debug, Clone)]
pub struct AdditionSource {
    digits: u32,
    carry: Carry,
    max: u64,
}

impl AdditionSource {
    fn new(digits: u32, carry: Carry) -> Self {
        AdditionSource { digits, carry, max: 10u64.pow(digits) - 1 }
    }

    fn has_carry(&self, a: u64, b: u64) -> bool {
        // The first carry arises in a column without an incoming carry, so checking raw
        // column sums is exact.
        (0..self.digits).any(|p| digit(a, p) + digit(b, p) >= 10)
    }

    fn draw(&self, rng: &mut KeyedRng) -> (u64, u64) {
        match self.carry {
            Carry::Any => (rng.random_range(0..=self.max), rng.random_range(0..=self.max)),
            Carry::None => {
                let (mut a, mut b, mut scale) = (0, 0, 1);
                for _ in 0..self.digits {
                    // Uniform over the 55 carry-free column pairs (index k ↦ (x, y), x + y <= 9).
                    let mut k = rng.random_range(0..55u64);
                    let mut x = 0;
                    while k > 9 - x {
                        k -= 10 - x;
                        x += 1;
                    }
                    a += x * scale;
                    b += k * scale;
                    scale *= 10;
                }
                (a, b)
            }
            Carry::Some => {
                // At least 45% of uniform pairs carry, so 64 redraws essentially never run out;
                // the fallback keeps the function total and deterministic.
                let mut pair = (0, 0);
                for _ in 0..64 {
                    pair = (rng.random_range(0..=self.max), rng.random_range(0..=self.max));
                    if self.has_carry(pair.0, pair.1) {
                        return pair;
                    }
                }
                let (a, b) = pair;
                (a - a % 10 + 9, b - b % 10 + (b % 10).max(1))
            }
        }
    }
}

impl TaskSource for AdditionSource {
    fn family(&self) -> &'static str {
        INFO.name
    }

    fn answers(&self) -> AnswerSpace {
        match self.carry {
            Carry::Any => AnswerSpace::inclusive(0, 2 * self.max as i64),
            Carry::None => AnswerSpace::inclusive(0, self.max as i64),
            Carry::Some => AnswerSpace::inclusive(10, 2 * self.max as i64),
        }
    }

    fn feature_dim(&self) -> usize {
        1 + 20 * self.digits as usize + 2
    }

    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features) {
        let (a, b) = self.draw(rng);
        let prompt = &mut body.prompt;
        prompt.clear();
        prompt!(prompt; "What is ", a, " + ", b, "?\n", INTEGER_INSTRUCTION);
        let Some(f) = gold_and_features(body, (a + b) as i64, features) else { return };
        for v in [a, b] {
            for p in 0..self.digits {
                one_hot(f, 10, digit(v, p));
            }
        }
        f.push(a as f64 / self.max as f64);
        f.push(b as f64 / self.max as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gristmill_core::rng::{stream, Purpose};

    #[test]
    fn carry_modes_hold() {
        for digits in 1..=3 {
            let none = AdditionSource::new(digits, Carry::None);
            let some = AdditionSource::new(digits, Carry::Some);
            for i in 0..500 {
                let mut rng = stream(1, Purpose::TASK, digits as u64, i);
                let (a, b) = none.draw(&mut rng);
                assert!(!none.has_carry(a, b) && a <= none.max && b <= none.max, "{a}+{b}");
                let (a, b) = some.draw(&mut rng);
                assert!(some.has_carry(a, b) && a <= some.max && b <= some.max, "{a}+{b}");
            }
        }
    }

    #[test]
    fn carry_free_pairs_are_all_reachable() {
        // The index-to-pair map must hit each of the 55 carry-free digit pairs.
        let src = AdditionSource::new(1, Carry::None);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..3000 {
            seen.insert(src.draw(&mut stream(2, Purpose::TASK, 0, i)));
        }
        assert_eq!(seen.len(), 55);
    }
}
