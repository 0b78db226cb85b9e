//! Counterfactual credit on common random numbers: the coalition runs that exact Shapley,
//! its permutation-sampled estimate and leave-one-out need, trained in parallel.
//!
//! Every coalition trains the same policy from the same initial parameters on the same seed,
//! so the task stream and the sampling uniforms are shared: two coalitions differ only
//! through their pieces. A coalition's value is `M_T(S)`, the gold metric after a `T`-step
//! run with only `S` switched on; the arithmetic is `gristmill_measure::shapley`'s.

use std::collections::BTreeMap;

use gristmill_engine::{Coalition, Environment};
use gristmill_learn::TrainConfig;
use gristmill_measure::{
    all_coalitions, exact_shapley, leave_one_out_coalitions, permutation_orders, SampledShapley,
};
use rayon::prelude::*;

use crate::run::Run;
use crate::RunError;

/// Final metric of a `steps`-step run of coalition `mask` (bit `i` = piece `i` on), without
/// in-run credit.
pub fn coalition_metric(
    env: &Environment,
    config: &TrainConfig,
    steps: u64,
    mask: u64,
) -> Result<f64, RunError> {
    let coalition = Coalition::from_mask(env.pieces.len(), mask);
    let mut run = Run::without_credit(env.with_coalition(coalition), config.clone())?;
    run.advance(steps)?;
    Ok(run.trainer().current_metric())
}

/// Final metrics of many coalitions, trained in parallel; keyed by mask.
pub fn coalition_metrics(
    env: &Environment,
    config: &TrainConfig,
    steps: u64,
    masks: &[u64],
) -> Result<BTreeMap<u64, f64>, RunError> {
    let mut unique: Vec<u64> = masks.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let values: Vec<Result<f64, RunError>> =
        unique.par_iter().map(|&m| coalition_metric(env, config, steps, m)).collect();
    unique.into_iter().zip(values).map(|(m, v)| v.map(|v| (m, v))).collect()
}

/// Exact Shapley by training all `2ⁿ` coalitions; also returns their values.
pub fn shapley(
    env: &Environment,
    config: &TrainConfig,
    steps: u64,
) -> Result<(Vec<f64>, BTreeMap<u64, f64>), RunError> {
    let n = env.pieces.len();
    let masks = all_coalitions(n)?;
    let values = coalition_metrics(env, config, steps, &masks)?;
    Ok((exact_shapley(n, &values), values))
}

/// Permutation-sampled Shapley over `permutations` keyed random orders (keyed by the run's
/// root seed).
pub fn sampled_shapley(
    env: &Environment,
    config: &TrainConfig,
    steps: u64,
    permutations: usize,
) -> Result<SampledShapley, RunError> {
    let n = env.pieces.len();
    let (orders, masks) = permutation_orders(n, env.seed(), permutations);
    let values = coalition_metrics(env, config, steps, &masks)?;
    Ok(gristmill_measure::sampled_shapley(n, &orders, &values))
}

/// Leave-one-out: `v(N) − v(N ∖ {i})`, from `n + 1` runs.
pub fn leave_one_out(env: &Environment, config: &TrainConfig, steps: u64) -> Result<Vec<f64>, RunError> {
    let n = env.pieces.len();
    let values = coalition_metrics(env, config, steps, &leave_one_out_coalitions(n))?;
    Ok(gristmill_measure::leave_one_out(n, &values))
}
