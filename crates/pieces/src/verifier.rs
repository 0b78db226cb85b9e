//! Verifiers: 0/1 judgements of a response against the task's gold answer.
//!
//! Every verifier scores an unparsed response (`answer: Err(_)`) as `0`: with no answer
//! there is nothing to judge, and no verifier may pay for malformed output.

use gristmill_core::piece::{RewardPiece, ScoreBatch, ScoreKey};
use gristmill_core::policy::Response;
use gristmill_core::rng::{stream, Purpose, StreamPrefix};
use gristmill_core::task::Task;
use rand::Rng;

use crate::digits::text_contains_decimal;

/// The exact verdict: `1` if the parsed answer equals the gold answer, else `0`.
#[inline]
pub fn exact_verdict(task: &Task, response: &Response) -> f64 {
    match response.answer {
        Ok(y) if y == task.gold() => 1.0,
        _ => 0.0,
    }
}

/// `exact_verifier`: `r = 1[y = gold]`, `0` when unparsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExactVerifier;

impl RewardPiece for ExactVerifier {
    fn score(&self, task: &Task, response: &Response, _key: ScoreKey) -> f64 {
        exact_verdict(task, response)
    }
}

/// The acceptance rule of a [`LenientVerifier`]. Both rules are deliberately exploitable;
/// they exist so that gristmill can measure what a policy learns from a verifier that
/// accepts wrong answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LenientRule {
    /// Accept `|y − gold| ≤ k`.
    OffByK {
        /// Tolerance.
        k: u64,
    },
    /// Accept if the decimal digits of `|gold|` occur as a substring of the response text
    /// (anywhere: reasoning included), e.g. `Answer: 142` for gold `42`.
    ContainsDigits,
}

/// `lenient_verifier`: `r = 1` if the parsed answer equals gold or the [`LenientRule`]
/// accepts the response, else `0`; `0` when unparsed (so `contains_digits` needs a parsed
/// answer, but then looks at the whole text). Never stricter than [`ExactVerifier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LenientVerifier {
    /// The acceptance rule.
    pub rule: LenientRule,
}

impl LenientVerifier {
    /// Whether the response is accepted.
    #[inline]
    pub fn accepts(&self, task: &Task, response: &Response) -> bool {
        let Ok(y) = response.answer else {
            return false;
        };
        let gold = task.gold();
        if y == gold {
            return true;
        }
        match self.rule {
            // abs_diff cannot overflow, unlike `(y - gold).abs()`.
            LenientRule::OffByK { k } => y.abs_diff(gold) <= k,
            LenientRule::ContainsDigits => text_contains_decimal(&response.text, gold.unsigned_abs()),
        }
    }
}

impl RewardPiece for LenientVerifier {
    fn score(&self, task: &Task, response: &Response, _key: ScoreKey) -> f64 {
        if self.accepts(task, response) {
            1.0
        } else {
            0.0
        }
    }
}

/// `noisy_verifier`: the exact verdict, flipped with probability `flip_rate` by one
/// uniform `u` from the piece's keyed stream, [`ScoreKey::rng`]`(piece_id)`:
/// `r = v XOR 1[u < flip_rate]` with `v = 1[y = gold]`.
///
/// The flip is therefore a deterministic function of `(seed, step, index, piece_id)`: the
/// same sample is judged the same way on replay and in every coalition, and two noisy
/// verifiers with different ids flip independently. Unparsed responses score `0` and are
/// never flipped (there is no answer to misjudge).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoisyVerifier {
    flip_rate: f64,
    // `Purpose::PIECE.with(id)` hashed once here rather than per score; `stream(seed,
    // purpose, step, index)` is then bit-identical to `ScoreKey::rng(id)`.
    purpose: Purpose,
}

impl NoisyVerifier {
    /// A noisy verifier for piece `piece_id`. `flip_rate` is clamped into `[0, 1]` (NaN → 0).
    pub fn new(piece_id: &str, flip_rate: f64) -> Self {
        let flip_rate = if flip_rate.is_nan() { 0.0 } else { flip_rate.clamp(0.0, 1.0) };
        NoisyVerifier { flip_rate, purpose: Purpose::PIECE.with(piece_id) }
    }
    /// The flip probability.
    pub fn flip_rate(&self) -> f64 {
        self.flip_rate
    }
    /// Whether the verdict of the sample at `key` is flipped.
    #[inline]
    pub fn flips(&self, key: ScoreKey) -> bool {
        // No stream is built when the answer is certain either way.
        if self.flip_rate <= 0.0 {
            return false;
        }
        if self.flip_rate >= 1.0 {
            return true;
        }
        let u: f64 = stream(key.seed, self.purpose, key.step, key.index).random();
        u < self.flip_rate
    }
}

impl NoisyVerifier {
    /// The verdict given whether this sample flips.
    #[inline]
    fn verdict(task: &Task, response: &Response, flips: bool) -> f64 {
        if response.answer.is_err() {
            return 0.0;
        }
        let v = exact_verdict(task, response);
        if flips {
            1.0 - v
        } else {
            v
        }
    }
}

impl RewardPiece for NoisyVerifier {
    fn score(&self, task: &Task, response: &Response, key: ScoreKey) -> f64 {
        Self::verdict(task, response, self.flips(key))
    }

    fn score_batch(&self, batch: &ScoreBatch<'_>, out: &mut [f64]) {
        // The same draws as `flips`, with the step's part of every key derived once.
        let prefix = StreamPrefix::new(batch.seed, self.purpose, batch.step);
        let rate = self.flip_rate;
        for (j, (slot, response)) in out.iter_mut().zip(batch.responses).enumerate() {
            let flips = rate >= 1.0 || (rate > 0.0 && prefix.uniform(batch.first_index + j as u64) < rate);
            *slot = Self::verdict(batch.task(j), response, flips);
        }
    }
}

/// `random_reward`: a control channel, `r ~ U[0, 1)` from the piece's own keyed stream for
/// each sample, independent of the response. Whatever it does to the gold metric is noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomReward {
    purpose: Purpose,
}

impl RandomReward {
    /// The control for piece `piece_id`.
    pub fn new(piece_id: &str) -> Self {
        RandomReward { purpose: Purpose::PIECE.with(piece_id) }
    }
}

impl RewardPiece for RandomReward {
    fn score(&self, _task: &Task, _response: &Response, key: ScoreKey) -> f64 {
        stream(key.seed, self.purpose, key.step, key.index).random()
    }

    fn score_batch(&self, batch: &ScoreBatch<'_>, out: &mut [f64]) {
        let prefix = StreamPrefix::new(batch.seed, self.purpose, batch.step);
        for (j, slot) in out.iter_mut().enumerate().take(batch.responses.len()) {
            *slot = prefix.uniform(batch.first_index + j as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{key, parsed, task, unparsed};

    #[test]
    fn random_reward_ignores_the_answer_and_is_keyed() {
        let r = RandomReward::new("rand");
        let t = task(42, 0, 99);
        let k = key(9);
        assert_eq!(r.score(&t, &parsed(42), k), r.score(&t, &parsed(7), k));
        assert_eq!(r.score(&t, &parsed(42), k), r.score(&t, &unparsed("x"), k));
        assert_ne!(r.score(&t, &parsed(42), k), r.score(&t, &parsed(42), key(10)));
        let mean: f64 = (0..20_000).map(|i| r.score(&t, &parsed(1), key(i))).sum::<f64>() / 20_000.0;
        // U[0,1) mean 0.5, sd of the mean 0.289/√20000 ≈ 0.002; 5σ = 0.01.
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }

    #[test]
    fn exact_verifier_values() {
        let t = task(42, 0, 99);
        let v = ExactVerifier;
        assert_eq!(v.score(&t, &parsed(42), key(0)), 1.0);
        assert_eq!(v.score(&t, &parsed(41), key(0)), 0.0);
        assert_eq!(v.score(&t, &parsed(-42), key(0)), 0.0);
        assert_eq!(v.score(&t, &unparsed("Answer: 42"), key(0)), 0.0);
    }

    #[test]
    fn off_by_k_boundary() {
        let t = task(10, 0, 99);
        let v = LenientVerifier { rule: LenientRule::OffByK { k: 2 } };
        let accepted: Vec<i64> = (0..=99).filter(|&y| v.score(&t, &parsed(y), key(0)) == 1.0).collect();
        assert_eq!(accepted, vec![8, 9, 10, 11, 12]);
        let v0 = LenientVerifier { rule: LenientRule::OffByK { k: 0 } };
        let accepted: Vec<i64> = (0..=99).filter(|&y| v0.score(&t, &parsed(y), key(0)) == 1.0).collect();
        assert_eq!(accepted, vec![10]);
        // Extreme values do not overflow.
        let t = task(i64::MAX, i64::MIN, i64::MAX);
        assert_eq!(v.score(&t, &parsed(i64::MIN), key(0)), 0.0);
        assert_eq!(v.score(&t, &parsed(i64::MAX - 2), key(0)), 1.0);
        assert_eq!(v.score(&t, &unparsed("Answer: 9"), key(0)), 0.0);
    }

    #[test]
    fn contains_digits_substring() {
        let t = task(42, 0, 999);
        let v = LenientVerifier { rule: LenientRule::ContainsDigits };
        assert_eq!(v.score(&t, &parsed(142), key(0)), 1.0);
        assert_eq!(v.score(&t, &parsed(420), key(0)), 1.0);
        assert_eq!(v.score(&t, &parsed(42), key(0)), 1.0);
        assert_eq!(v.score(&t, &parsed(24), key(0)), 0.0);
        assert_eq!(v.score(&t, &parsed(43), key(0)), 0.0);
        // The digits may sit anywhere in the text, e.g. in the reasoning.
        let r = Response { text: "maybe 42? no. Answer: 7".into(), answer: Ok(7) };
        assert_eq!(v.score(&t, &r, key(0)), 1.0);
        // Unparsed responses are never accepted, digits or not.
        assert_eq!(v.score(&t, &unparsed("0123456789 42"), key(0)), 0.0);
        // Negative gold: the digits of |gold| suffice.
        let t = task(-42, -99, 99);
        assert_eq!(v.score(&t, &parsed(42), key(0)), 1.0);
        assert_eq!(v.score(&t, &parsed(-4), key(0)), 0.0);
    }

    #[test]
    fn noisy_verifier_matches_score_key_stream_and_is_deterministic() {
        let v = NoisyVerifier::new("noisy", 0.3);
        for i in 0..200 {
            let k = key(i);
            let u: f64 = k.rng("noisy").random();
            assert_eq!(v.flips(k), u < 0.3, "the piece must use ScoreKey::rng(piece_id)");
            assert_eq!(v.flips(k), v.flips(k));
        }
    }

    #[test]
    fn noisy_verifier_differs_across_piece_ids() {
        let a = NoisyVerifier::new("a", 0.5);
        let b = NoisyVerifier::new("b", 0.5);
        let n = 4000;
        let same = (0..n).filter(|&i| a.flips(key(i)) == b.flips(key(i))).count();
        // Independent fair coins agree half the time: 2000 ± 5σ (σ = √(4000/4) ≈ 31.6).
        assert!((same as f64 - 2000.0).abs() < 160.0, "agreement {same}/{n}");
    }

    #[test]
    fn noisy_verifier_flip_rate_is_binomial() {
        let p = 0.2;
        let v = NoisyVerifier::new("nv", p);
        let t = task(5, 0, 18);
        let n = 40_000u64;
        let mut flipped = 0u64;
        for i in 0..n {
            let k = ScoreKey { seed: 11, step: i / 100, index: i % 100 };
            // Alternate right and wrong answers: a flip shows as a verdict ≠ exact.
            let y = if i % 2 == 0 { 5 } else { 6 };
            let r = v.score(&t, &parsed(y), k);
            if r != exact_verdict(&t, &parsed(y)) {
                flipped += 1;
            }
        }
        let mean = p * n as f64;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (flipped as f64 - mean).abs() < 5.0 * sd,
            "{flipped} flips of {n}, expected {mean} ± 5·{sd:.1}"
        );
    }

    #[test]
    fn noisy_verifier_edges() {
        let t = task(5, 0, 18);
        let never = NoisyVerifier::new("x", 0.0);
        let always = NoisyVerifier::new("x", 1.0);
        for i in 0..50 {
            assert_eq!(never.score(&t, &parsed(5), key(i)), 1.0);
            assert_eq!(always.score(&t, &parsed(5), key(i)), 0.0);
            assert_eq!(always.score(&t, &parsed(6), key(i)), 1.0);
            assert_eq!(always.score(&t, &unparsed("junk"), key(i)), 0.0);
        }
        assert_eq!(NoisyVerifier::new("x", f64::NAN).flip_rate(), 0.0);
        assert_eq!(NoisyVerifier::new("x", 7.0).flip_rate(), 1.0);
    }
}
