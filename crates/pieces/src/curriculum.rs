//! Curriculum and hint: pieces that shape which tasks are seen and what the policy reads,
//! rather than how responses are rewarded.

use gristmill_core::rng::{stream, Purpose};
use rand::Rng;

use crate::error::WeightsError;

/// `curriculum`: a static distribution over the environment's task sources.
///
/// Difficulty is not a separate axis: a difficulty level is a **separate source** in the
/// spec (the same family with different knobs, e.g. `add1` with `digits = 1` and `add3`
/// with `digits = 3`), so one weight vector over sources is also a distribution over
/// difficulty, and per-source credit is per-difficulty credit.
///
/// Invariant: `weights` are probabilities (non-negative, finite, summing to 1), one per
/// source in spec order. Build them with [`Curriculum::from_weights`] or
/// [`Curriculum::uniform`]; the field is public so the engine can read it cheaply.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Curriculum {
    /// Sampling probability of each source, in spec order; sums to 1.
    pub weights: Vec<f64>,
}

impl Curriculum {
    /// Normalizes non-negative raw weights `w` to `p_i = w_i / Σ_j w_j`.
    ///
    /// Errors if `raw` is empty, any weight is negative, NaN or infinite, or all are zero.
    pub fn from_weights(raw: &[f64]) -> Result<Curriculum, WeightsError> {
        if raw.is_empty() {
            return Err(WeightsError::Empty);
        }
        for (index, &value) in raw.iter().enumerate() {
            if !value.is_finite() {
                return Err(WeightsError::OutOfBounds { index, value, bound: f64::MAX });
            }
            if value < 0.0 {
                return Err(WeightsError::Negative { index, value });
            }
        }
        let total: f64 = raw.iter().sum();
        if total <= 0.0 {
            return Err(WeightsError::AllZero);
        }
        // Finite weights can still sum to +inf (e.g. two of f64::MAX); scale first then.
        let weights = if total.is_finite() {
            raw.iter().map(|w| w / total).collect()
        } else {
            let m = raw.iter().fold(0.0f64, |a, &b| a.max(b));
            let scaled: Vec<f64> = raw.iter().map(|w| w / m).collect();
            let t: f64 = scaled.iter().sum();
            scaled.iter().map(|w| w / t).collect()
        };
        Ok(Curriculum { weights })
    }

    /// The uniform distribution over `n` sources (`p_i = 1/n`); empty when `n = 0`.
    pub fn uniform(n: usize) -> Curriculum {
        Curriculum { weights: vec![1.0 / n as f64; n] }
    }

    /// Shannon entropy in nats, `H = −Σ_i p_i ln p_i` (with `0 ln 0 = 0`): `ln n` for the
    /// uniform curriculum over `n` sources, `0` for one that always picks the same source.
    pub fn entropy(&self) -> f64 {
        self.weights.iter().filter(|&&p| p > 0.0).map(|&p| -p * p.ln()).sum()
    }
}

/// `hint`: show the hint (the last digit of the gold answer, rendered by core's
/// `Task::observation_text`) with probability `probability` per training sample.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Hint {
    /// Probability that a training task shows its hint, in `[0, 1]`.
    pub probability: f64,
}

impl Hint {
    /// Whether the hint is shown for training slot `index` at `step` of the run with root
    /// `seed`: `u < probability` for one uniform `u` of the keyed stream
    /// `(seed, Purpose::HINT, step, index)`. The decision depends on the key only, so every
    /// coalition that has the hint shows it on the same samples (common random numbers).
    #[inline]
    pub fn shows(&self, seed: u64, step: u64, index: u64) -> bool {
        // Certain cases decide without building a stream; `u ∈ [0, 1)` agrees with both.
        if self.probability.is_nan() || self.probability <= 0.0 {
            return false;
        }
        if self.probability >= 1.0 {
            return true;
        }
        let u: f64 = stream(seed, Purpose::HINT, step, index).random();
        u < self.probability
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curriculum_normalizes() {
        let c = Curriculum::from_weights(&[1.0, 3.0, 0.0]).unwrap();
        assert_eq!(c.weights, vec![0.25, 0.75, 0.0]);
        let c = Curriculum::from_weights(&[f64::MAX, f64::MAX]).unwrap();
        assert_eq!(c.weights, vec![0.5, 0.5]);
        assert_eq!(Curriculum::from_weights(&[]), Err(WeightsError::Empty));
        assert_eq!(Curriculum::from_weights(&[0.0, 0.0]), Err(WeightsError::AllZero));
        assert!(matches!(
            Curriculum::from_weights(&[1.0, -1.0]),
            Err(WeightsError::Negative { index: 1, .. })
        ));
        assert!(matches!(
            Curriculum::from_weights(&[f64::NAN]),
            Err(WeightsError::OutOfBounds { index: 0, .. })
        ));
    }

    #[test]
    fn curriculum_entropy() {
        for n in 1..=7 {
            let h = Curriculum::uniform(n).entropy();
            assert!((h - (n as f64).ln()).abs() < 1e-12, "n = {n}: {h}");
        }
        assert_eq!(Curriculum::from_weights(&[0.0, 5.0]).unwrap().entropy(), 0.0);
        let h = Curriculum::from_weights(&[1.0, 3.0]).unwrap().entropy();
        let want = -(0.25f64 * 0.25f64.ln() + 0.75 * 0.75f64.ln());
        assert!((h - want).abs() < 1e-15);
        assert_eq!(Curriculum::uniform(0).entropy(), 0.0);
    }

    #[test]
    fn hint_probability_is_binomial() {
        for &p in &[0.1, 0.5, 0.85] {
            let h = Hint { probability: p };
            let n = 30_000u64;
            let shown = (0..n).filter(|&i| h.shows(3, i / 1000, i % 1000)).count() as f64;
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!((shown - p * n as f64).abs() < 5.0 * sd, "p = {p}: {shown} of {n}");
        }
    }

    #[test]
    fn hint_uses_the_keyed_hint_stream() {
        let h = Hint { probability: 0.4 };
        for i in 0..100 {
            let u: f64 = stream(9, Purpose::HINT, 2, i).random();
            assert_eq!(h.shows(9, 2, i), u < 0.4);
        }
        assert!(!(0..100).any(|i| Hint { probability: 0.0 }.shows(1, 0, i)));
        assert!((0..100).all(|i| Hint { probability: 1.0 }.shows(1, 0, i)));
        assert!(!Hint { probability: f64::NAN }.shows(1, 0, 0));
    }
}
