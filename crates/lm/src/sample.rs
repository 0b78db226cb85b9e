//! Sampling parameters, generations, and the keyed token sampler.

use gristmill_core::rng::KeyedRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::LmError;

/// How responses are sampled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingParams {
    /// Softmax temperature; 0 is greedy (argmax, lowest id on ties).
    pub temperature: f64,
    /// Nucleus sampling: keep the most likely tokens up to this much probability (1 = all).
    pub top_p: f64,
    /// Maximum tokens generated per response.
    pub max_new_tokens: u32,
    /// Generation stops when the text contains one of these; the text is cut before it.
    pub stop: Vec<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams { temperature: 1.0, top_p: 1.0, max_new_tokens: 128, stop: Vec::new() }
    }
}

impl SamplingParams {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`LmError::Request`] naming the bad parameter.
    pub fn validate(&self) -> Result<(), LmError> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(LmError::Request(format!("temperature {} must be finite and ≥ 0", self.temperature)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(LmError::Request(format!("top_p {} must be in (0, 1]", self.top_p)));
        }
        if self.max_new_tokens == 0 {
            return Err(LmError::Request("max_new_tokens must be at least 1".into()));
        }
        if self.stop.iter().any(|s| s.is_empty()) {
            return Err(LmError::Request("stop strings must not be empty".into()));
        }
        Ok(())
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// An end-of-turn token or a stop string.
    Stop,
    /// `max_new_tokens` reached.
    Length,
}

/// One sampled response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The response text (control tokens removed, cut before any stop string).
    pub text: String,
    /// Token ids generated, including a final end-of-turn token (empty when a remote server
    /// does not report ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_ids: Vec<u32>,
    /// The text of each generated token (as the server reports it, for remote models).
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Log-probability of each generated token under the model (temperature 1, no top-p: the
    /// policy's own distribution `log π(y_t | x, y_<t)`), aligned with `tokens`. Empty when a
    /// remote server does not offer log-probs.
    #[serde(default)]
    pub logprobs: Vec<f64>,
    /// Why generation ended.
    pub finish: Finish,
    /// Tokens in the prompt (as the model saw it, template included), if known.
    #[serde(default)]
    pub prompt_tokens: Option<usize>,
}

impl Generation {
    /// Sum of the token log-probs: `log π(y | x)`.
    pub fn logprob(&self) -> f64 {
        self.logprobs.iter().sum()
    }
}

/// Log-sum-exp of `logits` in f64, or `None` if any logit is NaN or all are −∞.
pub(crate) fn log_normalizer(logits: &[f32]) -> Option<f64> {
    let mut max = f64::NEG_INFINITY;
    for &l in logits {
        if l.is_nan() {
            return None;
        }
        max = max.max(l as f64);
    }
    if !max.is_finite() {
        return None;
    }
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    Some(max + sum.ln())
}

/// Draws one token from `logits` under `params` with one uniform from `rng`; returns the
/// token and its log-probability under the untempered model distribution.
///
/// Deterministic given the logits' bits and the stream: sums run in index order (or in
/// the fixed sorted order for top-p, ties broken by token id).
pub(crate) fn sample_token(
    logits: &[f32],
    params: &SamplingParams,
    rng: &mut KeyedRng,
) -> Option<(u32, f64)> {
    let lse = log_normalizer(logits)?;
    let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let token = if params.temperature == 0.0 {
        let mut best = 0usize;
        for (i, &l) in logits.iter().enumerate() {
            if l > logits[best] {
                best = i;
            }
        }
        best
    } else {
        let t = params.temperature;
        let weights: Vec<f64> = logits.iter().map(|&l| ((l as f64 - max) / t).exp()).collect();
        let u: f64 = rng.random();
        if params.top_p < 1.0 {
            let mut order: Vec<usize> = (0..weights.len()).collect();
            order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
            let total: f64 = order.iter().map(|&i| weights[i]).sum();
            let mut kept = 0.0;
            let mut n = 0;
            for &i in &order {
                kept += weights[i];
                n += 1;
                if kept >= params.top_p * total {
                    break;
                }
            }
            pick(order[..n].iter().copied(), &weights, u * kept)
        } else {
            let total: f64 = weights.iter().sum();
            pick(0..weights.len(), &weights, u * total)
        }
    };
    Some((token as u32, logits[token] as f64 - lse))
}

/// The first index where the running sum of weights exceeds `target` (the last positive one
/// if rounding leaves `target` past the end).
fn pick(order: impl Iterator<Item = usize>, weights: &[f64], target: f64) -> usize {
    let mut acc = 0.0;
    let mut last = 0;
    for i in order {
        if weights[i] > 0.0 {
            acc += weights[i];
            last = i;
            if target < acc {
                return i;
            }
        }
    }
    last
}

/// The byte position of the earliest stop string in `text`, if any.
pub(crate) fn find_stop(text: &str, stop: &[String]) -> Option<usize> {
    stop.iter().filter_map(|s| text.find(s.as_str())).min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gristmill_core::rng::{stream, Purpose};

    #[test]
    fn sampler_is_keyed_and_respects_temperature_and_top_p() {
        let logits = [0.0f32, 2.0, 1.0, -1.0];
        let greedy = SamplingParams { temperature: 0.0, ..Default::default() };
        let (t, lp) = sample_token(&logits, &greedy, &mut stream(1, Purpose::SAMPLE, 0, 0)).unwrap();
        assert_eq!(t, 1);
        let lse = log_normalizer(&logits).unwrap();
        assert_eq!(lp, 2.0 - lse);
        // Same key, same draws.
        let p = SamplingParams::default();
        let draw = |i| sample_token(&logits, &p, &mut stream(1, Purpose::SAMPLE, 0, i)).unwrap();
        for i in 0..20 {
            assert_eq!(draw(i), draw(i));
        }
        // top_p small enough keeps only the argmax.
        let nucleus = SamplingParams { top_p: 0.1, ..Default::default() };
        for i in 0..50 {
            assert_eq!(sample_token(&logits, &nucleus, &mut stream(2, Purpose::SAMPLE, 0, i)).unwrap().0, 1);
        }
        // Frequencies follow the softmax at temperature 1.
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            counts[draw(i).0 as usize] += 1;
        }
        let p1 = (2.0 - lse).exp();
        assert!((counts[1] as f64 / 4000.0 - p1).abs() < 0.03, "{counts:?} vs {p1}");
        assert!(sample_token(&[f32::NAN, 0.0], &p, &mut stream(1, Purpose::SAMPLE, 0, 0)).is_none());
    }

    #[test]
    fn params_are_validated() {
        assert!(SamplingParams::default().validate().is_ok());
        for bad in [
            SamplingParams { temperature: -1.0, ..Default::default() },
            SamplingParams { top_p: 0.0, ..Default::default() },
            SamplingParams { max_new_tokens: 0, ..Default::default() },
            SamplingParams { stop: vec![String::new()], ..Default::default() },
        ] {
            assert!(matches!(bad.validate(), Err(LmError::Request(_))));
        }
        assert_eq!(find_stop("ab\nAnswer: 3\n\nmore", &["\n\n".into(), "zz".into()]), Some(12));
    }
}
