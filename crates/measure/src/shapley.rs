//! Counterfactual credit from coalition values: exact Shapley over all `2ⁿ` coalitions,
//! permutation-sampled Shapley with confidence intervals, and leave-one-out.
//!
//! A coalition is a bitmask over the pieces (bit `i` = piece `i` on) and its value `v(S)`
//! is whatever the caller measured for it, e.g. the final gold metric of a run trained with
//! only `S` switched on. Training the runs is the caller's business (gristmill-run does it on
//! common random numbers); this module only does the arithmetic.

use std::collections::BTreeMap;

use gristmill_core::rng::{stream, Purpose};
use rand::Rng;
use serde::Serialize;

/// The largest piece count exact Shapley accepts (`2¹⁰ = 1024` training runs).
pub const MAX_EXACT_PIECES: usize = 10;

/// Exact Shapley needs too many runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "exact Shapley needs 2^{n} = {runs} training runs for {n} pieces; the limit is {max} pieces \\
     (2^{max} runs). Use the permutation-sampling estimate instead (`--method shapley-sampled`)"
)]
pub struct TooManyPieces {
    /// Pieces in the spec.
    pub n: usize,
    /// Runs that would be needed.
    pub runs: u128,
    /// The limit.
    pub max: usize,
}

/// Every coalition mask of `n` pieces, or the refusal when `n` is past [`MAX_EXACT_PIECES`].
pub fn all_coalitions(n: usize) -> Result<Vec<u64>, TooManyPieces> {
    if n > MAX_EXACT_PIECES {
        return Err(TooManyPieces { n, runs: 1u128 << n, max: MAX_EXACT_PIECES });
    }
    Ok((0..(1u64 << n)).collect())
}

/// Exact Shapley values from the values of all `2ⁿ` coalitions:
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

/// `permutations` keyed random orders of `n` pieces (Fisher–Yates on the stream
/// `(seed, "shapley-permutation", 0, k)`), and the coalitions their prefixes need.
pub fn permutation_orders(n: usize, seed: u64, permutations: usize) -> (Vec<Vec<usize>>, Vec<u64>) {
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
    (orders, masks)
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
    /// Distinct coalitions valued.
    pub runs: usize,
}

/// The sampled estimate from the orders of [`permutation_orders`] and their coalitions' values.
pub fn sampled_shapley(n: usize, orders: &[Vec<usize>], values: &BTreeMap<u64, f64>) -> SampledShapley {
    let mut samples = vec![Vec::with_capacity(orders.len()); n];
    for order in orders {
        let mut m = 0u64;
        for &i in order {
            let next = m | 1 << i;
            samples[i].push(values[&next] - values[&m]);
            m = next;
        }
    }
    let k = orders.len().max(1) as f64;
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
    SampledShapley { mean, half_width, permutations: orders.len(), runs: values.len() }
}

/// The coalitions leave-one-out needs: everything, and everything but each piece.
pub fn leave_one_out_coalitions(n: usize) -> Vec<u64> {
    let full = (1u64 << n) - 1;
    let mut masks = vec![full];
    masks.extend((0..n).map(|i| full & !(1 << i)));
    masks
}

/// Leave-one-out, `v(N) − v(N ∖ {i})`, from those coalitions' values.
pub fn leave_one_out(n: usize, values: &BTreeMap<u64, f64>) -> Vec<f64> {
    let full = (1u64 << n) - 1;
    (0..n).map(|i| values[&full] - values[&(full & !(1 << i))]).collect()
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
        assert_eq!(leave_one_out(2, &values), vec![0.0, 0.0]);
    }

    #[test]
    fn sampled_orders_are_permutations_and_their_estimate_is_efficient_per_order() {
        let (orders, masks) = permutation_orders(5, 7, 12);
        assert_eq!(orders.len(), 12);
        for o in &orders {
            let mut s = o.clone();
            s.sort();
            assert_eq!(s, (0..5).collect::<Vec<_>>());
        }
        // v(S) = |S|²: each order's marginals telescope to v(all) − v(∅) = 25.
        let values: BTreeMap<u64, f64> =
            masks.iter().map(|&m| (m, (m.count_ones() as f64).powi(2))).collect();
        let est = sampled_shapley(5, &orders, &values);
        assert!((est.mean.iter().sum::<f64>() - 25.0).abs() < 1e-12);
        assert_eq!(all_coalitions(11).unwrap_err().runs, 2048);
    }
}
