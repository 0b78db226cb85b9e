//! Shaping: dense reward terms that grade *how* a response is wrong or malformed.

use gristmill_core::piece::{RewardPiece, ScoreKey};
use gristmill_core::policy::Response;
use gristmill_core::task::Task;

use crate::digits::digit_match_fraction;

/// `partial_credit`: the fraction of matching digit positions between the parsed answer and
/// gold, [`digit_match_fraction`] (right-aligned, zero-padded, sign as a position when a
/// negative is involved); `0` when unparsed. In `[0, 1]`; `1` exactly when `y = gold`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartialCredit;

impl RewardPiece for PartialCredit {
    fn score(&self, task: &Task, response: &Response, _key: ScoreKey) -> f64 {
        match response.answer {
            Ok(y) => digit_match_fraction(y, task.gold()),
            Err(_) => 0.0,
        }
    }
}

/// `format_shaping`: `1` if the response parsed, else `−malformed_penalty`
/// (`malformed_penalty ∈ [0, 1]`, default `0`). Rewards the answer format only, never
/// correctness.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FormatShaping {
    /// Penalty for an unparsed response (the channel is `−malformed_penalty` then).
    pub malformed_penalty: f64,
}

impl RewardPiece for FormatShaping {
    fn score(&self, _task: &Task, response: &Response, _key: ScoreKey) -> f64 {
        if response.answer.is_ok() {
            1.0
        } else {
            -self.malformed_penalty
        }
    }
}

/// `length_shaping`: `r = −penalty · max(0, len − target_len) / target_len`, where `len` is
/// the response text's length in **bytes** (`str::len`: O(1) on the hot path; equal to the
/// character count for ASCII answers). `0` at or under the target, linear beyond it; it
/// looks at the text only, so it applies to unparsed responses too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LengthShaping {
    /// Target length in bytes (at least 1).
    target_len: usize,
    /// Penalty per target length of excess.
    penalty: f64,
}

impl LengthShaping {
    /// A length penalty; `target_len` is raised to at least 1 and a NaN/negative `penalty`
    /// becomes 0, so the channel is always finite.
    pub fn new(target_len: usize, penalty: f64) -> Self {
        let penalty = if penalty.is_finite() { penalty.max(0.0) } else { 0.0 };
        LengthShaping { target_len: target_len.max(1), penalty }
    }
    /// Target length in bytes.
    pub fn target_len(&self) -> usize {
        self.target_len
    }
    /// Penalty per target length of excess.
    pub fn penalty(&self) -> f64 {
        self.penalty
    }
}

impl RewardPiece for LengthShaping {
    fn score(&self, _task: &Task, response: &Response, _key: ScoreKey) -> f64 {
        let excess = response.text.len().saturating_sub(self.target_len);
        if excess == 0 {
            // Avoid returning −0.0, which would print oddly in logs.
            return 0.0;
        }
        -self.penalty * excess as f64 / self.target_len as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{key, parsed, task, unparsed};

    #[test]
    fn partial_credit_cases() {
        let p = PartialCredit;
        let t = task(42, 0, 999);
        assert_eq!(p.score(&t, &parsed(42), key(0)), 1.0);
        assert_eq!(p.score(&t, &parsed(43), key(0)), 0.5);
        assert_eq!(p.score(&t, &parsed(142), key(0)), 2.0 / 3.0);
        assert_eq!(p.score(&t, &parsed(7), key(0)), 0.0);
        assert_eq!(p.score(&t, &unparsed("Answer: 42"), key(0)), 0.0);
        let t = task(-7, -9, 9);
        assert_eq!(p.score(&t, &parsed(7), key(0)), 0.5);
        assert_eq!(p.score(&t, &parsed(-7), key(0)), 1.0);
        assert_eq!(p.score(&t, &parsed(-3), key(0)), 0.5);
    }

    #[test]
    fn format_shaping_values() {
        let t = task(1, 0, 9);
        let f = FormatShaping::default();
        assert_eq!(f.score(&t, &parsed(3), key(0)), 1.0);
        assert_eq!(f.score(&t, &unparsed("blah"), key(0)), 0.0);
        let f = FormatShaping { malformed_penalty: 0.25 };
        assert_eq!(f.score(&t, &unparsed("blah"), key(0)), -0.25);
        assert_eq!(f.score(&t, &parsed(1), key(0)), 1.0);
    }

    #[test]
    fn length_shaping_values() {
        let t = task(1, 0, 9);
        let l = LengthShaping::new(10, 2.0);
        let text = |n: usize| Response { text: "x".repeat(n), answer: Ok(1) };
        assert_eq!(l.score(&t, &text(0), key(0)), 0.0);
        assert_eq!(l.score(&t, &text(10), key(0)), 0.0);
        assert_eq!(l.score(&t, &text(11), key(0)), -0.2);
        assert_eq!(l.score(&t, &text(25), key(0)), -3.0);
        // Bytes, not characters: "é" is two bytes.
        let r = Response { text: "é".repeat(6), answer: Err(gristmill_core::ParseError::Missing) };
        assert_eq!(l.score(&t, &r, key(0)), -0.4);
        assert_eq!(LengthShaping::new(0, f64::NAN), LengthShaping::new(1, 0.0));
    }
}
