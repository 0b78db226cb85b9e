//! `modular`: `(a op b) mod m` for a fixed modulus.
//!
//! **Knobs.** `modulus` (2..=50, default 7); `digits` (1..=3, default 2): operands are in
//! `0 ..= 10^digits − 1`; `op` (`add` | `sub` | `mul` | `mixed`, default `add`), where
//! `mixed` draws one of the three per task. Subtraction uses the non-negative remainder
//! (`(3 − 5) mod 7 = 5`), and the prompt says so.
//!
//! **Answer space.** `0 ..= modulus − 1` (7 answers at default knobs, 50 at most).
//!
//! **Features** (`14 + 2·modulus`, 28 at default): bias; one-hot of the operation (add, sub,
//! mul); one-hot of `a mod m`; one-hot of `b mod m`; the Fourier pairs
//! `cos, sin(2π a/m)` and `cos, sin(2π b/m)`; the four products `cos_a·cos_b`,
//! `sin_a·sin_b`, `sin_a·cos_b`, `cos_a·sin_b`; then `a / max` and `b / max`. The products
//! are the angle-sum terms: `cos(2π(a ± b)/m)` and `sin(2π(a ± b)/m)` are linear in them, so
//! a log-linear policy can represent modular addition and subtraction exactly
//! (`logit_y = s·cos(2π(y − (a ± b))/m)`). Modular multiplication is not linear in any of
//! these; the residue one-hots leave it learnable by a small MLP.

use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{AnswerSpace, FamilyInfo, Features, TaskBody, TaskSource};
use rand::Rng;

use crate::common::{
    gold_and_features, one_hot, prompt, single_turn, source_shape, INTEGER_INSTRUCTION, INTEGER_RULE,
};
use crate::detmath;

const KNOBS: &[ParamSpec] = &[
    ParamSpec::int("modulus", 2, 50, 7, "the modulus m; answers are 0 ..= m - 1"),
    ParamSpec::int("digits", 1, 3, 2, "decimal digits per operand (operands are 0 ..= 10^digits - 1)"),
    ParamSpec::choice(
        "op",
        &["add", "sub", "mul", "mixed"],
        "add",
        "operation: add, sub, mul, or mixed (one of the three per task)",
    ),
];

/// The `modular` family.
pub const INFO: FamilyInfo = single_turn(
    "modular",
    "Computes (a + b), (a − b) or (a × b) modulo a fixed modulus, with the non-negative \
remainder (\"What is (47 + 85) mod 7?\"). Knobs set the modulus, the operand digits and the \
operation. Features: bias, operation one-hot, residue one-hots of both operands, their Fourier \
(cos, sin) pairs with the four angle-sum products, and both operands scaled to [0, 1].",
    INTEGER_RULE,
    KNOBS,
    build,
);

fn build(params: &Params) -> Box<dyn TaskSource> {
    let ops: &'static [Op] = match params.choice("op") {
        "sub" => &[Op::Sub],
        "mul" => &[Op::Mul],
        "mixed" => &[Op::Add, Op::Sub, Op::Mul],
        _ => &[Op::Add],
    };
    Box::new(ModularSource::new(
        params.int("modulus").clamp(2, 50) as u64,
        params.int("digits").clamp(1, 3) as u32,
        ops,
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
}

/// A configured `modular` source.
#[derive(Debug, Clone)]
pub struct ModularSource {
    modulus: u64,
    max: u64,
    ops: &'static [Op],
    /// `(cos, sin)(2π r / m)` per residue `r`, computed once.
    turns: Vec<(f64, f64)>,
    /// The prompt after the second operand, per operation: it depends only on the modulus
    /// and the operation, so it is written once here rather than in pieces per task.
    tails: [String; 3],
}

impl ModularSource {
    fn new(modulus: u64, digits: u32, ops: &'static [Op]) -> Self {
        let turns = (0..modulus).map(|r| detmath::cos_sin_turn(r, modulus)).collect();
        let m = modulus;
        let tail = |op: Op| {
            format!(
                ") mod {m}?\nHere `x mod {m}` is the remainder of x divided by {m}, a whole number from 0 to {}{}.\n{INTEGER_INSTRUCTION}",
                m - 1,
                if op == Op::Sub { ", also when x is negative" } else { "" }
            )
        };
        let tails = [tail(Op::Add), tail(Op::Sub), tail(Op::Mul)];
        ModularSource { modulus, max: 10u64.pow(digits) - 1, ops, turns, tails }
    }
}

impl TaskSource for ModularSource {
    source_shape!(|s| answers: AnswerSpace::inclusive(0, s.modulus as i64 - 1), features: 14 + 2 * s.modulus as usize);

    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features) {
        let op =
            if self.ops.len() == 1 { self.ops[0] } else { self.ops[rng.random_range(0..self.ops.len())] };
        let a = rng.random_range(0..=self.max);
        let b = rng.random_range(0..=self.max);
        let m = self.modulus;
        let (sym, gold) = match op {
            Op::Add => (" + ", (a + b) % m),
            Op::Sub => (" - ", (a as i64 - b as i64).rem_euclid(m as i64) as u64),
            Op::Mul => (" × ", (a * b) % m),
        };
        let prompt = &mut body.prompt;
        prompt.clear();
        prompt!(prompt; "What is (", a, sym, b, &self.tails[op as usize]);
        let (ra, rb) = ((a % m) as usize, (b % m) as usize);
        let ((ca, sa), (cb, sb)) = (self.turns[ra], self.turns[rb]);
        let Some(f) = gold_and_features(body, gold as i64, features) else { return };
        one_hot(f, 3, op as usize);
        one_hot(f, m as usize, ra);
        one_hot(f, m as usize, rb);
        f.extend_from_slice(&[ca, sa, cb, sb, ca * cb, sa * sb, sa * cb, ca * sb]);
        f.push(a as f64 / self.max as f64);
        f.push(b as f64 / self.max as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angle_sum_features_represent_addition_and_subtraction() {
        // cos(2π(a+b)/m) = ca·cb − sa·sb and sin(2π(a−b)/m) = sa·cb − ca·sb: the products in
        // the encoding carry exactly the sum and difference angles.
        let src = ModularSource::new(7, 2, &[Op::Add]);
        for a in 0..7u64 {
            for b in 0..7u64 {
                let ((ca, sa), (cb, sb)) = (src.turns[a as usize], src.turns[b as usize]);
                let (c_sum, _) = detmath::cos_sin_turn((a + b) % 7, 7);
                let (_, s_diff) = detmath::cos_sin_turn((a + 7 - b) % 7, 7);
                assert!((ca * cb - sa * sb - c_sum).abs() < 1e-12);
                assert!((sa * cb - ca * sb - s_diff).abs() < 1e-12);
            }
        }
    }
}
