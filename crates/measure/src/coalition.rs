//! Counterfactual credit on common random numbers: exact Shapley over all `2ⁿ` coalitions,
//! permutation-sampled Shapley with confidence intervals, and leave-one-out.
//!
//! Every coalition trains the same policy from the same initial parameters on the same seed,
//! so the task stream and the sampling uniforms are shared: two coalitions differ only
//! through their pieces. A coalition's value is `v(S) = M_T(S) − M_0`, the gold gain of a
//! `T`-step run with only `S` switched on.

use std::collections::BTreeMap;

use gristmill_core::rng::{stream, Purpose};
use gristmill_engine::{Coalition, Environment};
use gristmill_learn::{LearnError, TrainConfig, Trainer};
use rand::Rng;
use rayon::prelude::*;
use serde::Serialize;

/// The largest piece count exact Shapley accepts (`2¹⁰ = 1024` training runs).
pub const MAX_EXACT_PIECES: usize = 10;

/// Errors of counterfactual credit.
#[derive(Debug, thiserror::Error)]
pub enum CoalitionError {
    /// Too many pieces for exact Shapley.
    #[error(
        "exact Shapley needs 2^{n} = {runs} training runs for {n} pieces; the limit is {max} pieces \
         (2^{max} runs). Use the permutation-sampling estimate instead (`--method shapley-sampled`)"
    )]
    TooManyPieces {
        /// Pieces in the spec.
        n: usize,
        /// Runs that would be needed.
        runs: u128,
        /// The limit.
        max: usize,
    },
    /// Training failed.
    #[error(transparent)]
    Learn(#[from] LearnError),
}

/// Final metric of a `steps`-step run of coalition `mask` (bit `i` = piece `i` on).
pub fn coalition_metric(
    env: &Environment,
    config: &TrainConfig,
    seed: u64,
    steps: u64,
    mask: u64,
) -> Result<f64, LearnError> {
    let coalition = Coalition::from_mask(env.pieces.len(), mask);
    let mut trainer = Trainer::new(env.with_coalition(coalition), config.clone(), seed)?;
    for _ in 0..steps {
        trainer.step()?;
    }
    Ok(trainer.state.metric)
}

/// Final metrics of many coalitions, trained in parallel; keyed by mask.
pub fn coalition_metrics(
    env: &Environment,
    config: &TrainConfig,
    seed: u64,
    steps: u64,
    masks: &[u64],
) -> Result<BTreeMap<u64, f64>, LearnError> {
    let mut unique: Vec<u64> = masks.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let values: Vec<Result<f64, LearnError>> =
        unique.par_iter().map(|&m| coalition_metric(env, config, seed, steps, m)).collect();
    unique.into_iter().zip(values).map(|(m, v)| v.map(|v| (m, v))).collect()
}

/// Exact Shapley values from the metrics of all `2ⁿ` coalitions:
/// `φ_i = Σ_{S ∌ i} |S|!(n−|S|−1)!/n! · (v(S ∪ {i}) − v(S))`.
pub fn exact_shapley(n: usize, values: &BTreeMap<u64, f64>) -> Vec<f64> {
    let fact = |k: usize| (1..=k).map(|x| x as f64).product::<f64>();
    let nf = fact(n);
    (0..n)
        .map(|i| {
            let bit = 1u64 << i;
            let mut phi = 0.0;
            for mask in 0..(1u64 << n) {
                if mask & bit != 0 {
                    continue;
                }
                let s = mask.count_ones() as usize;
                let w = fact(s) * fact(n - s - 1) / nf;
                phi += w * (values[&(mask | bit)] - values[&mask]);
            }
            phi
        })
        .collect()
}

/// Exact Shapley by training all `2ⁿ` coalitions.
pub fn shapley(
    env: &Environment,
    config: &TrainConfig,
    seed: u64,
    steps: u64,
) -> Result<(Vec<f64>, BTreeMap<u64, f64>), CoalitionError> {
    let n = env.pieces.len();
    if n > MAX_EXACT_PIECES {
        return Err(CoalitionError::TooManyPieces { n, runs: 1u128 << n, max: MAX_EXACT_PIECES });
    }
    let masks: Vec<u64> = (0..(1u64 << n)).collect();
    let values = coalition_metrics(env, config, seed, steps, &masks)?;
    Ok((exact_shapley(n, &values), values))
}

/// A sampled Shapley estimate: mean marginal contribution over random orders, with a 95%
/// normal-approximation confidence half-width.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampledShapley {
    /// Estimates.
    pub mean: Vec<f64>,
    /// 95% half-widths (`1.96 · sd / √K`).
    pub half_width: Vec<f64>,
    /// Orders sampled.
    pub permutations: usize,
    /// Distinct coalitions trained.
    pub runs: usize,
}

/// Permutation-sampled Shapley over `permutations` keyed random orders.
pub fn sampled_shapley(
    env: &Environment,
    config: &TrainConfig,
    seed: u64,
    steps: u64,
    permutations: usize,
) -> Result<SampledShapley, LearnError> {
    let n = env.pieces.len();
    let orders: Vec<Vec<usize>> = (0..permutations)
        .map(|k| {
            let mut rng = stream(seed, Purpose::named("shapley-permutation"), 0, k as u64);
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                let j = rng.random_range(0..=i);
                order.swap(i, j);
            }
            order
        })
        .collect();
    let mut masks = vec![0u64];
    for order in &orders {
        let mut m = 0u64;
        for &i in order {
            m |= 1 << i;
            masks.push(m);
        }
    }
    let values = coalition_metrics(env, config, seed, steps, &masks)?;
    let mut samples = vec![Vec::with_capacity(permutations); n];
    for order in &orders {
        let mut m = 0u64;
        for &i in order {
            let next = m | 1 << i;
            samples[i].push(values[&next] - values[&m]);
            m = next;
        }
    }
    let k = permutations.max(1) as f64;
    let mean: Vec<f64> = samples.iter().map(|s| s.iter().sum::<f64>() / k).collect();
    let half_width = samples
        .iter()
        .zip(&mean)
        .map(|(s, m)| {
            if s.len() < 2 {
                return f64::INFINITY;
            }
            let var = s.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (s.len() - 1) as f64;
            1.96 * (var / s.len() as f64).sqrt()
        })
        .collect();
    Ok(SampledShapley { mean, half_width, permutations, runs: values.len() })
}

/// Leave-one-out: `v(N) − v(N ∖ {i})`, from `n + 1` runs.
pub fn leave_one_out(
    env: &Environment,
    config: &TrainConfig,
    seed: u64,
    steps: u64,
) -> Result<Vec<f64>, LearnError> {
    let n = env.pieces.len();
    let full = (1u64 << n) - 1;
    let mut masks = vec![full];
    masks.extend((0..n).map(|i| full & !(1 << i)));
    let values = coalition_metrics(env, config, seed, steps, &masks)?;
    Ok((0..n).map(|i| values[&full] - values[&(full & !(1 << i))]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_shapley_of_an_additive_game_is_its_weights() {
        // v(S) = Σ_{i∈S} a_i: Shapley must return a exactly (up to rounding).
        let a = [0.3, -0.1, 0.05];
        let values: BTreeMap<u64, f64> =
            (0..8u64).map(|m| (m, (0..3).filter(|i| m >> i & 1 == 1).map(|i| a[i]).sum())).collect();
        let phi = exact_shapley(3, &values);
        for i in 0..3 {
            assert!((phi[i] - a[i]).abs() < 1e-15);
        }
    }

    #[test]
    fn exact_shapley_splits_a_redundant_pair_evenly_and_is_efficient() {
        // Two redundant pieces: either alone gives 1, both give 1. LOO gives each 0.
        let values: BTreeMap<u64, f64> = [(0, 0.0), (1, 1.0), (2, 1.0), (3, 1.0)].into_iter().collect();
        let phi = exact_shapley(2, &values);
        assert_eq!(phi, vec![0.5, 0.5]);
        assert_eq!(phi.iter().sum::<f64>(), values[&3] - values[&0]);
    }
}
