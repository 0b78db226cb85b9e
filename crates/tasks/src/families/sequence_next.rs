//! `sequence_next`: the next term of an arithmetic or geometric sequence.
//!
//! **Knobs.** `terms` (3..=6, default 4): how many terms are shown. `max_diff` (1..=20,
//! default 5): arithmetic steps are in `±1 ..= ±max_diff`. `kind` (`arithmetic` |
//! `geometric` | `mixed`, default `mixed`). Geometric sequences have ratio 2 or 3 and either
//! grow (`3, 6, 12, 24, ?`) or shrink by that ratio (`96, 48, 24, 12, ?`); `mixed` draws
//! arithmetic half the time.
//!
//! **Answer space.** `0 ..= H` with `H = 10·max_diff + 20` (71 answers at default knobs,
//! 221 at most). The next term is drawn first and the shown terms are built back from it,
//! so every answer lies in the space and every shown term is non-negative.
//!
//! **Features** (19): bias; a one-hot of the kind (arithmetic, growing, shrinking); then a
//! block of four per kind, zero unless the task is of that kind: `last / S`, `prev / S`,
//! `ln last / ln S`, `ln prev / ln S` (with `S` the largest term that kind can show, and
//! `ln` of values below 1 taken as 0); a one-hot of the ratio (2, 3; zero for arithmetic);
//! and the arithmetic step `d / max_diff`. Arithmetic answers are `2·last − prev` and
//! geometric answers satisfy `ln y = 2 ln last − ln prev`, so in each kind's block the
//! answer is linear in the features (in `y` or in `ln y`), which a log-linear policy with
//! a quadratic-in-`y` (or `ln y`) weight profile can represent.

use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{AnswerSpace, FamilyInfo, Features, TaskBody, TaskSource};
use rand::Rng;

use crate::common::{
    gold_and_features, one_hot, prompt, single_turn, source_shape, INTEGER_INSTRUCTION, INTEGER_RULE,
};
use crate::detmath;

const KNOBS: &[ParamSpec] = &[
    ParamSpec::int("terms", 3, 6, 4, "number of terms shown"),
    ParamSpec::int(
        "max_diff",
        1,
        20,
        5,
        "largest arithmetic step magnitude (answers are 0 ..= 10*max_diff + 20)",
    ),
    ParamSpec::choice(
        "kind",
        &["arithmetic", "geometric", "mixed"],
        "mixed",
        "arithmetic, geometric (ratio 2 or 3, growing or shrinking), or mixed (half arithmetic)",
    ),
];

/// Largest answer of a shrinking geometric sequence; keeps its shown terms readable
/// (at most 30·3^6 = 21870).
const SHRINK_MAX_ANSWER: u64 = 30;

/// The `sequence_next` family.
pub const INFO: FamilyInfo = single_turn(
    "sequence_next",
    "Shows `terms` terms of an arithmetic sequence (step up to ±`max_diff`) or a geometric \
one (ratio 2 or 3, growing or shrinking) and asks for the next term (\"What number comes next in \
the sequence 3, 8, 13, 18, ...?\"). Features: bias, kind one-hot, per-kind scaled and log-scaled \
last two terms, ratio one-hot and the scaled arithmetic step.",
    INTEGER_RULE,
    KNOBS,
    build,
);

fn build(params: &Params) -> Box<dyn TaskSource> {
    let (arith, geo) = match params.choice("kind") {
        "arithmetic" => (true, false),
        "geometric" => (false, true),
        _ => (true, true),
    };
    Box::new(SequenceNextSource::new(
        params.int("terms").clamp(3, 6) as u32,
        params.int("max_diff").clamp(1, 20) as u64,
        arith,
        geo,
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Arithmetic = 0,
    Growing = 1,
    Shrinking = 2,
}

/// A configured `sequence_next` source.
#[derive(Debug, Clone)]
pub struct SequenceNextSource {
    terms: u32,
    max_diff: u64,
    arith: bool,
    geo: bool,
    hi: u64,
    /// Per kind: (largest shown term, its ln), the feature scales.
    scale: [(f64, f64); 3],
}

impl SequenceNextSource {
    fn new(terms: u32, max_diff: u64, arith: bool, geo: bool) -> Self {
        let hi = 10 * max_diff + 20;
        let with_ln = |s: u64| (s as f64, detmath::ln(s as f64));
        let scale = [
            with_ln(hi + terms as u64 * max_diff),
            with_ln(hi),
            with_ln(SHRINK_MAX_ANSWER * 3u64.pow(terms)),
        ];
        SequenceNextSource { terms, max_diff, arith, geo, hi, scale }
    }

    /// Draws (kind, ratio or 0, step or 0, next term) and writes the shown terms into `shown`.
    fn draw(&self, rng: &mut KeyedRng, shown: &mut [u64; 6]) -> (Kind, u64, i64, u64) {
        let k = self.terms;
        let arithmetic = !self.geo || (self.arith && rng.random::<bool>());
        if arithmetic {
            let d = rng.random_range(1..=self.max_diff) as i64 * if rng.random::<bool>() { 1 } else { -1 };
            // A rising sequence needs its first term non-negative: y - k·d >= 0.
            let y_min = if d > 0 { k as u64 * d as u64 } else { 0 };
            let y = rng.random_range(y_min..=self.hi);
            for (i, t) in shown.iter_mut().take(k as usize).enumerate() {
                *t = (y as i64 - (k as i64 - i as i64) * d) as u64;
            }
            return (Kind::Arithmetic, 0, d, y);
        }
        // Growing needs a first term >= 1 with first · r^k <= hi; prefer it when feasible.
        let ratios: &[u64] = if 3u64.pow(k) <= self.hi {
            &[2, 3]
        } else if 2u64.pow(k) <= self.hi {
            &[2]
        } else {
            &[]
        };
        if !ratios.is_empty() && rng.random::<bool>() {
            let r = ratios[rng.random_range(0..ratios.len())];
            let first = rng.random_range(1..=self.hi / r.pow(k));
            for (i, t) in shown.iter_mut().take(k as usize).enumerate() {
                *t = first * r.pow(i as u32);
            }
            return (Kind::Growing, r, 0, first * r.pow(k));
        }
        let r = rng.random_range(2..=3u64);
        let y = rng.random_range(1..=SHRINK_MAX_ANSWER.min(self.hi));
        for (i, t) in shown.iter_mut().take(k as usize).enumerate() {
            *t = y * r.pow(k - i as u32);
        }
        (Kind::Shrinking, r, 0, y)
    }
}

impl TaskSource for SequenceNextSource {
    source_shape!(|s| answers: AnswerSpace::inclusive(0, s.hi as i64), features: 19);

    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features) {
        let mut shown = [0u64; 6];
        let (kind, ratio, step, next) = self.draw(rng, &mut shown);
        let shown = &shown[..self.terms as usize];

        let prompt = &mut body.prompt;
        prompt.clear();
        prompt.push_str("What number comes next in the sequence ");
        for t in shown {
            prompt!(prompt; *t, ", ");
        }
        prompt!(prompt; "...?\n", INTEGER_INSTRUCTION);

        let (last, prev) = (shown[shown.len() - 1], shown[shown.len() - 2]);
        let Some(f) = gold_and_features(body, next as i64, features) else { return };
        one_hot(f, 3, kind as usize);
        for (i, &(s, ln_s)) in self.scale.iter().enumerate() {
            if i == kind as usize {
                let ln = |v: u64| detmath::ln(v as f64) / ln_s;
                f.extend_from_slice(&[last as f64 / s, prev as f64 / s, ln(last), ln(prev)]);
            } else {
                f.extend_from_slice(&[0.0; 4]);
            }
        }
        f.push(if ratio == 2 { 1.0 } else { 0.0 });
        f.push(if ratio == 3 { 1.0 } else { 0.0 });
        f.push(step as f64 / self.max_diff as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gristmill_core::rng::{stream, Purpose};

    #[test]
    fn sequences_continue_correctly() {
        for (terms, max_diff) in [(3, 1), (4, 5), (6, 1), (6, 20)] {
            let src = SequenceNextSource::new(terms, max_diff, true, true);
            let mut kinds = [0usize; 3];
            for i in 0..400 {
                let mut shown = [0u64; 6];
                let (kind, r, d, y) = src.draw(&mut stream(6, Purpose::TASK, terms as u64, i), &mut shown);
                kinds[kind as usize] += 1;
                let s = &shown[..terms as usize];
                let seq: Vec<i64> = s.iter().map(|&v| v as i64).chain([y as i64]).collect();
                for w in seq.windows(2) {
                    match kind {
                        Kind::Arithmetic => assert_eq!(w[1] - w[0], d, "{seq:?}"),
                        Kind::Growing => assert_eq!(w[1], w[0] * r as i64, "{seq:?}"),
                        Kind::Shrinking => assert_eq!(w[0], w[1] * r as i64, "{seq:?}"),
                    }
                }
                assert!(src.answers().contains(y as i64));
            }
            assert!(kinds[0] > 100 && kinds[2] > 30, "{terms} {max_diff}: {kinds:?}");
        }
    }
}
