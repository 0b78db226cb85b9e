//! The exact gold metric `M(θ)` and its exact gradient.
//!
//! `M(θ) = (1/N) Σ_t Σ_y π_θ(y|x_t) gold_t(y) = (1/N) Σ_t π_θ(g_t|x_t)`: the expected gold score
//! over the eval suite, computed by enumerating every answer, so it has no sampling noise.
//! With `z` the logits, `∂π_g/∂z = π_g (e_g − π)`, which one backward pass turns into `∇M`.
//!
//! Reductions are parallel over fixed chunks of the suite and summed in chunk order, so the
//! bits do not depend on the thread count.

use rayon::prelude::*;

use crate::model::{softmax, Encoded, Model};
use crate::LearnError;

/// Tasks per parallel chunk; fixed so that the reduction tree never depends on threads.
pub const CHUNK: usize = 32;

/// `M(θ)`.
pub fn metric(model: &Model, theta: &[f64], suite: &[Encoded]) -> Result<f64, LearnError> {
    if suite.is_empty() {
        return Ok(0.0);
    }
    let partials: Vec<Result<f64, LearnError>> = suite
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut s = 0.0;
            for e in chunk {
                let act = model.forward(theta, e);
                check_logits(&act.logits)?;
                s += softmax(&act.logits)[e.gold];
            }
            Ok(s)
        })
        .collect();
    let mut total = 0.0;
    for p in partials {
        total += p?;
    }
    Ok(total / suite.len() as f64)
}

/// `M(θ)` and `∇M(θ)`.
pub fn metric_and_grad(
    model: &Model,
    theta: &[f64],
    suite: &[Encoded],
) -> Result<(f64, Vec<f64>), LearnError> {
    let n = suite.len().max(1) as f64;
    let partials: Vec<Result<(f64, Vec<f64>), LearnError>> = suite
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut grad = vec![0.0; model.len()];
            let mut s = 0.0;
            for e in chunk {
                let act = model.forward(theta, e);
                check_logits(&act.logits)?;
                let p = softmax(&act.logits);
                let pg = p[e.gold];
                s += pg;
                let dz: Vec<f64> = p
                    .iter()
                    .enumerate()
                    .map(|(y, py)| pg * (if y == e.gold { 1.0 } else { 0.0 } - py) / n)
                    .collect();
                model.backward(theta, e, &act, &dz, &mut grad);
            }
            Ok((s, grad))
        })
        .collect();
    let mut total = 0.0;
    let mut grad = vec![0.0; model.len()];
    for p in partials {
        let (s, g) = p?;
        total += s;
        for (a, b) in grad.iter_mut().zip(&g) {
            *a += b;
        }
    }
    Ok((total / n, grad))
}

/// Per-task gold probabilities `π(g_t|x_t)` (for per-source metrics).
pub fn gold_probabilities(model: &Model, theta: &[f64], suite: &[Encoded]) -> Result<Vec<f64>, LearnError> {
    suite
        .par_iter()
        .map(|e| {
            let act = model.forward(theta, e);
            check_logits(&act.logits)?;
            Ok(softmax(&act.logits)[e.gold])
        })
        .collect()
}

fn check_logits(z: &[f64]) -> Result<(), LearnError> {
    match z.iter().find(|v| !v.is_finite()) {
        Some(v) => Err(LearnError::NonFinite { step: None, channel: "logits".into(), value: *v }),
        None => Ok(()),
    }
}
