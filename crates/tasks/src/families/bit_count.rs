//! `bit_count`: the number of 1 bits of `n` (popcount), or its parity.
//!
//! **Knobs.** `bits` (4..=16, default 8): `n` is uniform in `0 ..= 2^bits − 1`. `mode`
//! (`popcount` | `parity`, default `popcount`).
//!
//! **Answer space.** popcount: `0 ..= bits` (9 answers at default knobs); parity: `0 ..= 1`
//! (0 even, 1 odd).
//!
//! **Features** (`2 + bits`, 10 at default): bias; `n / (2^bits − 1)`; then each bit of
//! `n`, least significant first, as 0.0 or 1.0. The popcount is the sum of the bit
//! features, so a log-linear policy can represent it exactly; the parity is their XOR,
//! which no log-linear policy can represent beyond chance — it needs a hidden layer.

use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{AnswerSpace, FamilyInfo, Features, TaskBody, TaskSource};
use rand::Rng;

use crate::common::{
    gold_and_features, prompt, single_turn, source_shape, INTEGER_INSTRUCTION, INTEGER_RULE,
};

const KNOBS: &[ParamSpec] = &[
    ParamSpec::int("bits", 4, 16, 8, "n is uniform in 0 ..= 2^bits - 1"),
    ParamSpec::choice(
        "mode",
        &["popcount", "parity"],
        "popcount",
        "popcount (number of 1 bits) or parity (0 even, 1 odd)",
    ),
];

/// The `bit_count` family.
pub const INFO: FamilyInfo = single_turn(
    "bit_count",
    "Counts the 1 bits in the binary representation of a decimal number below 2^`bits` \
(\"How many 1s are there in the binary representation of 173?\"), or, with `mode = parity`, \
asks whether that count is even (0) or odd (1). Features: bias, the scaled number, and its bits \
as 0/1 (popcount is linear in them; parity is their XOR).",
    INTEGER_RULE,
    KNOBS,
    build,
);

fn build(params: &Params) -> Box<dyn TaskSource> {
    Box::new(BitCountSource {
        bits: params.int("bits").clamp(4, 16) as u32,
        parity: params.choice("mode") == "parity",
    })
}

/// A configured `bit_count` source.
#[derive(Debug, Clone)]
pub struct BitCountSource {
    bits: u32,
    parity: bool,
}

impl TaskSource for BitCountSource {
    source_shape!(|s| answers: AnswerSpace::inclusive(0, if s.parity { 1 } else { s.bits as i64 }), features: 2 + s.bits as usize);

    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features) {
        let max = (1u32 << self.bits) - 1;
        let n = rng.random_range(0..=max);
        let ones = n.count_ones() as i64;
        let prompt = &mut body.prompt;
        prompt.clear();
        let gold = if self.parity {
            prompt!(
                prompt;
                "Is the number of 1s in the binary representation of ", n,
                " even or odd? Answer 0 if it is even and 1 if it is odd.\n", INTEGER_INSTRUCTION,
            );
            ones % 2
        } else {
            prompt!(prompt; "How many 1s are there in the binary representation of ", n, "?\n", INTEGER_INSTRUCTION);
            ones
        };
        let Some(f) = gold_and_features(body, gold, features) else { return };
        f.push(n as f64 / max as f64);
        f.extend((0..self.bits).map(|i| ((n >> i) & 1) as f64));
    }
}
