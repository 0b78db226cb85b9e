//! `reward_model`: a linear scorer fitted by Bradley–Terry on generated preference pairs.
//!
//! # Model
//!
//! `s(task, y) = scale · w · φ(task, y)` with `w ∈ ℝ⁸` and the fixed feature map `φ` of
//! [`answer_features`]. The features compare `y` with gold *lossily* (they see the gold
//! answer only through these eight numbers) and describe `y` itself:
//!
//! | k | name | definition | range |
//! |---|---|---|---|
//! | 0 | `exact` | `1[y = g]` | `[0, 1]` |
//! | 1 | `closeness` | `−min(1, \|y − g\| / size)` | `[−1, 0]` |
//! | 2 | `digit_match` | [`digit_match_fraction`]`(y, g)` | `[0, 1]` |
//! | 3 | `same_parity` | `1[y ≡ g (mod 2)]` | `[0, 1]` |
//! | 4 | `same_digit_count` | `1[len₁₀\|y\| = len₁₀\|g\|]` | `[0, 1]` |
//! | 5 | `same_last_digit` | `1[\|y\| mod 10 = \|g\| mod 10]` | `[0, 1]` |
//! | 6 | `position` | `norm(y) = clamp((y − lo) / (size − 1), 0, 1)` (0 if size = 1) | `[0, 1]` |
//! | 7 | `magnitude` | `clamp(\|y\| / max(\|lo\|, \|hi\|), 0, 1)` (0 if both are 0) | `[0, 1]` |
//!
//! where `g` is gold and `lo, hi, size` describe the task's answer space. There is no
//! constant feature: Bradley–Terry sees only score differences, so a constant is not
//! identifiable (and group-normalized advantages would remove it anyway).
//!
//! **Unparsed responses** get the lowest score the model can give any parsed answer:
//! `φ_unparsed = (lo_k if w_k ≥ 0 else hi_k)_k` over the feature ranges above, so
//! `s_unparsed = scale · Σ_k min(w_k lo_k, w_k hi_k) ≤ s(task, y)` for every `y`. The
//! identity `score = scale · w · features(task, response)` holds for every response,
//! parsed or not, which is what a meta-gradient on `w` needs.
//!
//! # Training data
//!
//! Pair attempt `j` (`j = 0, 1, …`) draws from the keyed stream
//! `(seed, BUILD.with(id), 1, j)` (held-out pairs: step `2`):
//! 1. a source by inverse CDF of the spec's mixture weights;
//! 2. a training task `generate_task(source, TaskKey { seed: derive_seed(seed,
//!    BUILD.with(id), 0, 0), source, index: j, split: Train })` (held-out: last argument `1`);
//! 3. two distinct candidates, each independently: gold w.p. 1/4, a near miss
//!    `g ± k`, `k` uniform in `1..=max(2, ⌈size/16⌉)`, w.p. 3/8 (reflected to the other side
//!    of gold if outside the space, uniform if both sides are), uniform over the space w.p. 3/8.
//!
//! True quality is `q(y) = 1` if `y = g`, else `−|y − g| / size`; the true preference is the
//! candidate with higher `q`, and pairs with `q(a) = q(b)` are skipped. The labeller's
//! margin is
//!
//! `m = q(a) − q(b) + bias · (norm(a) − norm(b))`
//!
//! and it reports `a ≻ b` iff `m > 0` (pairs with `m = 0` are skipped), then flips that
//! report with probability `label_noise`. So `bias > 0` prefers larger answers: it reverses
//! true preferences whose quality gap is smaller than `bias` times the position gap
//! (between two wrong answers a gap of a few `1/size`, so even `bias ≈ 0.5` reorders many;
//! gold beats any wrong answer by more than `1`, so only `bias > 1` can prefer a wrong answer
//! to gold). It is a deterministic labeller rather than a sampled Bradley–Terry one so that
//! `label_noise = 0` means exactly noise-free labels. The noise uniform is drawn for every
//! pair, so for one seed the pairs flipped at noise `ε₁ < ε₂` are a subset of those at `ε₂`.
//!
//! Held-out pairs are drawn the same way from their own streams and tasks, labelled by the
//! true preference (no bias, no noise).
//!
//! # Fit
//!
//! With `dᵢ = φ(preferred) − φ(other)`, maximize the L2-regularized mean log-likelihood
//!
//! `J(w) = (1/n) Σᵢ ln σ(w · dᵢ) − (l2/2) ‖w‖²`
//!
//! from `w = 0` by Newton's method (gradient `(1/n) Σ σ(−w·d) d − l2 w`, Hessian
//! `−(1/n) Σ σ(w·d) σ(−w·d) d dᵀ − l2 I`, solved by Cholesky with a `1e-10` diagonal jitter),
//! with a backtracking line search that accepts only strict increases of `J`; at most
//! [`NEWTON_ITERATIONS`] steps, stopping early when no step increases `J`. All sums run
//! sequentially in pair order in `f64`, so the same seed gives bit-identical weights.
//! `scale` multiplies the fitted scores; it does not enter the fit.
//!
//! The default `l2 = 1e-4` is small on purpose: `closeness` separates near misses by only
//! `1/size`, so ranking them needs a large weight, and a stronger penalty trades that
//! ranking away for a smaller norm (on one-digit sums, clean labels: held-out accuracy 0.995
//! at `1e-4`, 0.97 at `1e-3`).

use std::sync::Arc;

use gristmill_core::piece::{RewardPiece, ScoreKey};
use gristmill_core::policy::Response;
use gristmill_core::rng::{derive_seed, stream, KeyedRng, Purpose};
use gristmill_core::task::{generate_task, AnswerSpace, Split, Task, TaskKey};
use rand::Rng;

use crate::digits::{decimal_len, digit_match_fraction};
use crate::error::{PieceError, PieceProblem, WeightsError};
use crate::BuildContext;

/// Number of features in `φ`.
pub const FEATURES: usize = 8;

/// A weight (or feature) vector of the reward model.
pub type Weights = [f64; FEATURES];

/// Feature names, in order.
pub const FEATURE_NAMES: [&str; FEATURES] = [
    "exact",
    "closeness",
    "digit_match",
    "same_parity",
    "same_digit_count",
    "same_last_digit",
    "position",
    "magnitude",
];

/// `(min, max)` of each feature over every task and answer.
pub const FEATURE_RANGES: [(f64, f64); FEATURES] =
    [(0.0, 1.0), (-1.0, 0.0), (0.0, 1.0), (0.0, 1.0), (0.0, 1.0), (0.0, 1.0), (0.0, 1.0), (0.0, 1.0)];

/// Largest allowed `|w_k|`. With features in `[−1, 1]` and `scale ≤ 100` this bounds every
/// score by `8 · 10¹¹`, so scores stay finite whatever the meta-gradient does.
pub const MAX_ABS_WEIGHT: f64 = 1e9;

/// Maximum Newton steps of the fit.
pub const NEWTON_ITERATIONS: usize = 50;

/// Diagonal jitter added to the negative Hessian so Cholesky succeeds even with `l2 = 0`
/// and collinear features (e.g. `position = magnitude` on a `0..=n` answer space).
const JITTER: f64 = 1e-10;

/// Largest answer of `space`. Core's `AnswerSpace::hi` computes `lo + size − 1` left to
/// right, which overflows for spaces ending at `i64::MAX`; scoring must never panic.
#[inline]
fn hi_of(space: AnswerSpace) -> i64 {
    space.lo.saturating_add(i64::from(space.size.max(1)) - 1)
}

/// Whether `v` lies in `space` (overflow-free `AnswerSpace::contains`).
#[inline]
fn in_space(space: AnswerSpace, v: i64) -> bool {
    v >= space.lo && v <= hi_of(space)
}

/// `norm(y)`: the normalized position of `y` in the answer space, clamped to `[0, 1]`
/// (`0` for a one-answer space). This is the quantity the labeller's `bias` acts on.
#[inline]
pub fn position(space: AnswerSpace, y: i64) -> f64 {
    if space.size <= 1 {
        return 0.0;
    }
    // `y − lo` can overflow i64 for answers outside the space; then go through i128. Both
    // conversions round the same integer to the nearest f64, so they agree bit for bit.
    let off = match y.checked_sub(space.lo) {
        Some(d) => d as f64,
        None => (i128::from(y) - i128::from(space.lo)) as f64,
    };
    (off / f64::from(space.size - 1)).clamp(0.0, 1.0)
}

/// True quality of candidate `y`: `1` for gold, else `−|y − gold| / size`. Used to label
/// preference pairs; wrong answers are ordered by distance, and gold beats all of them.
#[inline]
pub fn quality(space: AnswerSpace, gold: i64, y: i64) -> f64 {
    if y == gold {
        1.0
    } else {
        -(y.abs_diff(gold) as f64) / f64::from(space.size.max(1))
    }
}

/// The feature map `φ(task, y)` for a parsed answer `y` (see the [module docs](self) for
/// the table). Every feature lies in its [`FEATURE_RANGES`] entry, for any `y`.
#[inline]
pub fn answer_features(space: AnswerSpace, gold: i64, y: i64) -> Weights {
    let (ay, ag) = (y.unsigned_abs(), gold.unsigned_abs());
    let size = f64::from(space.size.max(1));
    let closeness = -(y.abs_diff(gold) as f64 / size).min(1.0);
    let top = space.lo.unsigned_abs().max(hi_of(space).unsigned_abs());
    let magnitude = if top == 0 { 0.0 } else { (ay as f64 / top as f64).clamp(0.0, 1.0) };
    let b = |c: bool| if c { 1.0 } else { 0.0 };
    [
        b(y == gold),
        closeness,
        digit_match_fraction(y, gold),
        b(ay % 2 == ag % 2),
        b(decimal_len(ay) == decimal_len(ag)),
        b(ay % 10 == ag % 10),
        position(space, y),
        magnitude,
    ]
}

#[inline]
fn dot(a: &Weights, b: &Weights) -> f64 {
    let mut s = 0.0;
    for k in 0..FEATURES {
        s += a[k] * b[k];
    }
    s
}

/// Logistic function, evaluated without overflow on either side.
#[inline]
fn sigmoid(m: f64) -> f64 {
    if m >= 0.0 {
        1.0 / (1.0 + (-m).exp())
    } else {
        let e = m.exp();
        e / (1.0 + e)
    }
}

/// `ln σ(m)`, stable for large `|m|`.
#[inline]
fn log_sigmoid(m: f64) -> f64 {
    if m >= 0.0 {
        -(-m).exp().ln_1p()
    } else {
        m - m.exp().ln_1p()
    }
}

/// Settings of a reward model, as read from the spec's `params`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RewardModelConfig {
    /// Training pairs wanted (`pairs`).
    pub pairs: usize,
    /// Held-out pairs wanted (`heldout_pairs`).
    pub heldout_pairs: usize,
    /// Probability that a training label is flipped (`label_noise`, `[0, 0.5]`).
    pub label_noise: f64,
    /// Labeller's preference for larger answers (`bias`, `[−5, 5]`).
    pub bias: f64,
    /// Multiplier of the emitted score (`scale`, `[0, 100]`).
    pub scale: f64,
    /// L2 strength in the fit (`l2`, `[0, 10]`).
    pub l2: f64,
}

impl Default for RewardModelConfig {
    fn default() -> Self {
        RewardModelConfig {
            pairs: 2000,
            heldout_pairs: 1000,
            label_noise: 0.0,
            bias: 0.0,
            scale: 1.0,
            l2: 1e-4,
        }
    }
}

/// How a set of preference pairs is labelled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Labeller {
    /// The true preference (higher `q`), as held-out pairs are labelled.
    Truth,
    /// The biased, noisy labeller of the training set.
    Observed {
        /// Flip probability.
        label_noise: f64,
        /// Preference for larger answers.
        bias: f64,
    },
}

/// Which of the model's two pair streams to draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairSet {
    /// Training pairs: pair stream step 1, task seed index 0.
    Train,
    /// Held-out pairs: pair stream step 2, task seed index 1.
    Heldout,
}

/// Generated preference pairs, each stored as `d = φ(preferred) − φ(other)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreferenceData {
    /// One difference vector per usable pair.
    pub pairs: Vec<Weights>,
    /// Attempts made (usable + skipped).
    pub attempts: u64,
    /// Attempts skipped because the pair was a tie (`q(a) = q(b)`, or labeller margin 0).
    pub ties: u64,
    /// Attempts skipped because no two distinct candidates could be drawn.
    pub degenerate: u64,
}

/// Checks the context and returns the normalized total of the mixture weights.
fn check_context(ctx: &BuildContext) -> Result<f64, PieceProblem> {
    let n = ctx.sources.len();
    if n == 0 {
        return Err(PieceProblem::NoSources);
    }
    if ctx.source_ids.len() != n || ctx.source_weights.len() != n {
        return Err(PieceProblem::Context(format!(
            "{n} sources, {} source ids, {} source weights",
            ctx.source_ids.len(),
            ctx.source_weights.len()
        )));
    }
    for (index, &value) in ctx.source_weights.iter().enumerate() {
        if !value.is_finite() {
            return Err(WeightsError::OutOfBounds { index, value, bound: f64::MAX }.into());
        }
        if value < 0.0 {
            return Err(WeightsError::Negative { index, value }.into());
        }
    }
    let total: f64 = ctx.source_weights.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return Err(WeightsError::AllZero.into());
    }
    Ok(total)
}

/// Inverse CDF over positive weights; `u ∈ [0, 1)`. Same rule as the engine's source draw.
fn pick_source(weights: &[f64], total: f64, u: f64) -> usize {
    let mut acc = 0.0;
    let mut last = 0;
    for (i, &w) in weights.iter().enumerate() {
        if w > 0.0 {
            last = i;
            acc += w / total;
            if u < acc {
                return i;
            }
        }
    }
    last
}

/// One candidate answer: gold, a near miss, or uniform (see the module docs).
fn draw_candidate(rng: &mut KeyedRng, space: AnswerSpace, gold: i64) -> i64 {
    let u: f64 = rng.random();
    let uniform = |rng: &mut KeyedRng| space.value(rng.random_range(0..space.size) as usize);
    if u < 0.25 {
        gold
    } else if u < 0.625 {
        let radius = (space.size.div_ceil(16)).max(2);
        let k = i64::from(rng.random_range(1..=radius));
        let (up, down) = (gold.saturating_add(k), gold.saturating_sub(k));
        let (first, second) = if rng.random::<bool>() { (up, down) } else { (down, up) };
        if in_space(space, first) {
            first
        } else if in_space(space, second) {
            second
        } else {
            uniform(rng)
        }
    } else {
        uniform(rng)
    }
}

/// Draws up to `count` usable preference pairs for piece `id` (attempt budget
/// `8 · count + 64`), labelled by `labeller`. See the [module docs](self) for the procedure.
pub fn preference_pairs(
    ctx: &BuildContext,
    id: &str,
    set: PairSet,
    count: usize,
    labeller: Labeller,
) -> Result<PreferenceData, PieceProblem> {
    let total = check_context(ctx)?;
    let purpose = Purpose::BUILD.with(id);
    let (pair_step, task_index) = match set {
        PairSet::Train => (1, 0),
        PairSet::Heldout => (2, 1),
    };
    let task_seed = derive_seed(ctx.seed, purpose, 0, task_index);
    let budget = 8 * count as u64 + 64;
    let mut data = PreferenceData { pairs: Vec::with_capacity(count), ..PreferenceData::default() };
    while data.pairs.len() < count && data.attempts < budget {
        let j = data.attempts;
        data.attempts += 1;
        let mut rng = stream(ctx.seed, purpose, pair_step, j);
        let s = pick_source(ctx.source_weights, total, rng.random());
        let key = TaskKey { seed: task_seed, source: s as u32, index: j, split: Split::Train };
        let task = generate_task(ctx.sources[s], &ctx.source_ids[s], key, ctx.eval_fraction)?;
        let (space, gold) = (task.answers, task.gold());
        if space.size < 2 {
            data.degenerate += 1;
            continue;
        }
        let a = draw_candidate(&mut rng, space, gold);
        let mut b = draw_candidate(&mut rng, space, gold);
        for _ in 0..32 {
            if b != a {
                break;
            }
            b = draw_candidate(&mut rng, space, gold);
        }
        if a == b {
            data.degenerate += 1;
            continue;
        }
        let (qa, qb) = (quality(space, gold, a), quality(space, gold, b));
        if qa == qb {
            data.ties += 1;
            continue;
        }
        let prefer_a = match labeller {
            Labeller::Truth => qa > qb,
            Labeller::Observed { label_noise, bias } => {
                let m = qa - qb + bias * (position(space, a) - position(space, b));
                // Drawn before the tie check so every pair consumes the same numbers.
                let u: f64 = rng.random();
                if m == 0.0 {
                    data.ties += 1;
                    continue;
                }
                (m > 0.0) != (u < label_noise)
            }
        };
        let (fa, fb) = (answer_features(space, gold, a), answer_features(space, gold, b));
        let (win, lose) = if prefer_a { (fa, fb) } else { (fb, fa) };
        let mut d = [0.0; FEATURES];
        for k in 0..FEATURES {
            d[k] = win[k] - lose[k];
        }
        data.pairs.push(d);
    }
    Ok(data)
}

/// Mean Bradley–Terry log-likelihood `(1/n) Σᵢ ln σ(w · dᵢ)` of the pairs (`0` if none).
/// At `w = 0` it is `−ln 2`.
pub fn log_likelihood(pairs: &[Weights], w: &Weights) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    pairs.iter().map(|d| log_sigmoid(dot(w, d))).sum::<f64>() / pairs.len() as f64
}

/// The fit objective `J(w) = log_likelihood(pairs, w) − (l2/2) ‖w‖²`.
pub fn objective(pairs: &[Weights], w: &Weights, l2: f64) -> f64 {
    log_likelihood(pairs, w) - 0.5 * l2 * dot(w, w)
}

/// Fraction of pairs the scores `scale · w · φ` order correctly (`w · d > 0`); a tie counts
/// one half, so a constant scorer (e.g. `scale = 0`) scores `0.5`. `NaN`-free: `0.5` if no
/// pairs.
pub fn pairwise_accuracy_on(pairs: &[Weights], w: &Weights, scale: f64) -> f64 {
    if pairs.is_empty() {
        return 0.5;
    }
    let mut correct = 0.0;
    for d in pairs {
        let m = scale * dot(w, d);
        correct += if m > 0.0 {
            1.0
        } else if m == 0.0 {
            0.5
        } else {
            0.0
        };
    }
    correct / pairs.len() as f64
}

/// Solves `A x = b` for symmetric positive-definite `A` by Cholesky; `None` if `A` is not
/// numerically positive definite.
// Index loops mirror the textbook recurrences; iterator forms would obscure them.
#[allow(clippy::needless_range_loop)]
fn cholesky_solve(a: &[[f64; FEATURES]; FEATURES], b: &Weights) -> Option<Weights> {
    let mut l = [[0.0; FEATURES]; FEATURES];
    for i in 0..FEATURES {
        for j in 0..=i {
            let mut s = a[i][j];
            for k in 0..j {
                s -= l[i][k] * l[j][k];
            }
            if i == j {
                if !(s.is_finite() && s > 0.0) {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    let mut y = [0.0; FEATURES];
    for i in 0..FEATURES {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i][k] * y[k];
        }
        y[i] = s / l[i][i];
    }
    let mut x = [0.0; FEATURES];
    for i in (0..FEATURES).rev() {
        let mut s = y[i];
        for k in i + 1..FEATURES {
            s -= l[k][i] * x[k];
        }
        x[i] = s / l[i][i];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Maximizes [`objective`] by damped Newton from `w = 0` (see the [module docs](self)).
/// Returns the weights (each clamped to `±`[`MAX_ABS_WEIGHT`]) and the Newton steps taken.
#[allow(clippy::needless_range_loop)] // index loops mirror the gradient and Hessian sums
pub fn fit_bradley_terry(pairs: &[Weights], l2: f64) -> (Weights, usize) {
    let mut w = [0.0; FEATURES];
    if pairs.is_empty() {
        return (w, 0);
    }
    let n = pairs.len() as f64;
    let mut j = objective(pairs, &w, l2);
    let mut steps = 0;
    for _ in 0..NEWTON_ITERATIONS {
        let mut g = [0.0; FEATURES];
        let mut h = [[0.0; FEATURES]; FEATURES];
        for d in pairs {
            let m = dot(&w, d);
            let s_neg = sigmoid(-m);
            let curvature = sigmoid(m) * s_neg;
            for a in 0..FEATURES {
                g[a] += s_neg * d[a];
                for b in 0..=a {
                    h[a][b] += curvature * d[a] * d[b];
                }
            }
        }
        for a in 0..FEATURES {
            g[a] = g[a] / n - l2 * w[a];
            for b in 0..a {
                h[a][b] /= n;
                h[b][a] = h[a][b];
            }
            h[a][a] = h[a][a] / n + l2 + JITTER;
        }
        let Some(step) = cholesky_solve(&h, &g) else {
            break;
        };
        // Backtracking: Newton's full step can overshoot where the likelihood is flat
        // (separable data with small l2); accept only strict increases of J.
        let mut t = 1.0;
        let mut improved = false;
        for _ in 0..60 {
            let mut cand = w;
            for k in 0..FEATURES {
                cand[k] = (w[k] + t * step[k]).clamp(-MAX_ABS_WEIGHT, MAX_ABS_WEIGHT);
            }
            let jc = objective(pairs, &cand, l2);
            if jc > j {
                w = cand;
                j = jc;
                improved = true;
                break;
            }
            t *= 0.5;
        }
        if !improved {
            break;
        }
        steps += 1;
    }
    (w, steps)
}

/// What the fit did, for reports.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FitStats {
    /// Usable training pairs.
    pub train_pairs: usize,
    /// Training attempts made (usable + ties + degenerate).
    pub train_attempts: u64,
    /// Usable held-out pairs.
    pub heldout_pairs: usize,
    /// Newton steps taken.
    pub newton_steps: usize,
    /// Mean training log-likelihood at `w = 0` (`−ln 2`).
    pub initial_log_likelihood: f64,
    /// Mean training log-likelihood at the fitted `w`.
    pub final_log_likelihood: f64,
    /// Held-out pairwise accuracy of the fitted weights (kept when weights are replaced).
    pub fitted_accuracy: f64,
}

/// A trained linear reward model, `s(task, y) = scale · w · φ(task, y)`.
///
/// The score is linear in the parameters `w`: a meta-gradient stage can read
/// [`features`](RewardModel::features), step `w`, and install the result with
/// [`set_weights`](RewardModel::set_weights); [`pairwise_accuracy`](
/// RewardModel::pairwise_accuracy) then reports the new weights' held-out accuracy. Cloning
/// is cheap (the held-out pairs are shared).
#[derive(Debug, Clone)]
pub struct RewardModel {
    weights: Weights,
    scale: f64,
    config: RewardModelConfig,
    heldout: Arc<[Weights]>,
    accuracy: f64,
    stats: FitStats,
}

impl RewardModel {
    /// Generates training and held-out pairs for piece `id` and fits the model.
    pub fn train(ctx: &BuildContext, id: &str, config: RewardModelConfig) -> Result<RewardModel, PieceError> {
        let err = |p| PieceError::new(id, p);
        let labeller = Labeller::Observed { label_noise: config.label_noise, bias: config.bias };
        let train = preference_pairs(ctx, id, PairSet::Train, config.pairs, labeller).map_err(err)?;
        if train.pairs.is_empty() {
            return Err(err(PieceProblem::NoPairs { attempts: train.attempts }));
        }
        let heldout = preference_pairs(ctx, id, PairSet::Heldout, config.heldout_pairs, Labeller::Truth)
            .map_err(err)?;
        if heldout.pairs.is_empty() {
            return Err(err(PieceProblem::NoPairs { attempts: heldout.attempts }));
        }
        let (weights, newton_steps) = fit_bradley_terry(&train.pairs, config.l2);
        let scale = if config.scale.is_finite() { config.scale.clamp(0.0, 100.0) } else { 1.0 };
        let accuracy = pairwise_accuracy_on(&heldout.pairs, &weights, scale);
        let stats = FitStats {
            train_pairs: train.pairs.len(),
            train_attempts: train.attempts,
            heldout_pairs: heldout.pairs.len(),
            newton_steps,
            initial_log_likelihood: log_likelihood(&train.pairs, &[0.0; FEATURES]),
            final_log_likelihood: log_likelihood(&train.pairs, &weights),
            fitted_accuracy: accuracy,
        };
        Ok(RewardModel { weights, scale, config, heldout: heldout.pairs.into(), accuracy, stats })
    }

    /// The parameters `w`, in [`FEATURE_NAMES`] order.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// Replaces `w` (e.g. after a meta-gradient step) and recomputes the held-out accuracy.
    /// Errors, leaving the model unchanged, if a weight is non-finite or exceeds
    /// [`MAX_ABS_WEIGHT`] in magnitude.
    pub fn set_weights(&mut self, weights: Weights) -> Result<(), WeightsError> {
        for (index, &value) in weights.iter().enumerate() {
            if !(value.is_finite() && value.abs() <= MAX_ABS_WEIGHT) {
                return Err(WeightsError::OutOfBounds { index, value, bound: MAX_ABS_WEIGHT });
            }
        }
        self.weights = weights;
        self.accuracy = pairwise_accuracy_on(&self.heldout, &self.weights, self.scale);
        Ok(())
    }

    /// [`set_weights`](RewardModel::set_weights), by value.
    pub fn with_weights(mut self, weights: Weights) -> Result<RewardModel, WeightsError> {
        self.set_weights(weights)?;
        Ok(self)
    }

    /// The score multiplier `scale`.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The settings the model was trained with.
    pub fn config(&self) -> &RewardModelConfig {
        &self.config
    }

    /// What the fit did.
    pub fn fit_stats(&self) -> &FitStats {
        &self.stats
    }

    /// Pairwise accuracy of the current weights on the held-out pairs (true labels, no
    /// noise, no bias): the fraction of pairs whose better answer scores higher, ties ½.
    pub fn pairwise_accuracy(&self) -> f64 {
        self.accuracy
    }

    /// The held-out pairs as difference vectors `φ(better) − φ(worse)`.
    pub fn heldout_pairs(&self) -> &[Weights] {
        &self.heldout
    }

    /// The feature vector scored for an unparsed response: per feature, the end of its range
    /// that minimizes `w_k φ_k` (`lo_k` if `w_k ≥ 0`, else `hi_k`).
    pub fn unparsed_features(&self) -> Weights {
        let mut f = [0.0; FEATURES];
        for k in 0..FEATURES {
            let (lo, hi) = FEATURE_RANGES[k];
            f[k] = if self.weights[k] >= 0.0 { lo } else { hi };
        }
        f
    }

    /// `φ(task, response)`: [`answer_features`] of the parsed answer, or
    /// [`unparsed_features`](RewardModel::unparsed_features). Always
    /// `score = scale · w · features`.
    pub fn features(&self, task: &Task, response: &Response) -> Weights {
        match response.answer {
            Ok(y) => answer_features(task.answers, task.gold(), y),
            Err(_) => self.unparsed_features(),
        }
    }

    /// The score of answer `y` to `task`.
    pub fn score_answer(&self, task: &Task, y: i64) -> f64 {
        self.scale * dot(&self.weights, &answer_features(task.answers, task.gold(), y))
    }
}

impl RewardPiece for RewardModel {
    fn score(&self, task: &Task, response: &Response, _key: ScoreKey) -> f64 {
        self.scale * dot(&self.weights, &self.features(task, response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx_parts, key, parsed, task, unparsed, with_ctx};
    use gristmill_core::task::TaskSource;

    fn train(config: RewardModelConfig) -> RewardModel {
        train_as("rm", config)
    }

    /// `f` with the test sources' build context at `seed`.
    fn train_as(id: &str, config: RewardModelConfig) -> RewardModel {
        with_ctx(5, |ctx| RewardModel::train(ctx, id, config).unwrap())
    }

    #[test]
    fn features_follow_their_definitions() {
        let s = AnswerSpace::inclusive(0, 18);
        assert_eq!(answer_features(s, 12, 12), [1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 12.0 / 18.0, 12.0 / 18.0]);
        let f = answer_features(s, 12, 3);
        assert_eq!(f, [0.0, -9.0 / 19.0, 0.0, 0.0, 0.0, 0.0, 3.0 / 18.0, 3.0 / 18.0]);
        let s = AnswerSpace::inclusive(-9, 9);
        let f = answer_features(s, -4, 4);
        assert_eq!(f, [0.0, -8.0 / 19.0, 0.5, 1.0, 1.0, 1.0, 13.0 / 18.0, 4.0 / 9.0]);
        // Out-of-space answers stay in range.
        for y in [i64::MIN, -1000, 1000, i64::MAX] {
            let f = answer_features(s, 3, y);
            for k in 0..FEATURES {
                let (lo, hi) = FEATURE_RANGES[k];
                assert!(f[k] >= lo && f[k] <= hi, "{} = {} for y = {y}", FEATURE_NAMES[k], f[k]);
            }
        }
        assert_eq!(position(AnswerSpace::inclusive(4, 4), 4), 0.0);
    }

    /// Not a check: prints the accuracy figures quoted in reports
    /// (`cargo test -p gristmill-pieces figures -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn figures() {
        let seeds = 0..8u64;
        for pairs in [300usize, 2000] {
            for (noise, bias) in [
                (0.0, 0.0),
                (0.1, 0.0),
                (0.2, 0.0),
                (0.3, 0.0),
                (0.4, 0.0),
                (0.5, 0.0),
                (0.0, 0.5),
                (0.0, 2.0),
            ] {
                let accs: Vec<f64> = seeds
                    .clone()
                    .map(|seed| {
                        let cfg = RewardModelConfig { pairs, label_noise: noise, bias, ..Default::default() };
                        with_ctx(seed, |ctx| RewardModel::train(ctx, "rm", cfg).unwrap().pairwise_accuracy())
                    })
                    .collect();
                let mean = accs.iter().sum::<f64>() / accs.len() as f64;
                let (lo, hi) = accs.iter().fold((1.0f64, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
                println!("pairs {pairs:5} noise {noise:.1} bias {bias:.1}: accuracy mean {mean:.3} (min {lo:.3}, max {hi:.3})");
            }
        }
    }

    #[test]
    fn deterministic_bit_for_bit() {
        let cfg =
            RewardModelConfig { pairs: 500, heldout_pairs: 200, label_noise: 0.2, ..Default::default() };
        let a = train(cfg);
        let b = train(cfg);
        let bits = |m: &RewardModel| m.weights().map(f64::to_bits);
        assert_eq!(bits(&a), bits(&b));
        assert_eq!(a.pairwise_accuracy().to_bits(), b.pairwise_accuracy().to_bits());
        // A different piece id draws different pairs, hence different weights.
        let c = train_as("other", cfg);
        assert_ne!(bits(&a), bits(&c));
    }

    #[test]
    fn accuracy_high_without_noise_and_lower_with_noise() {
        let clean = train(RewardModelConfig::default());
        let noisy = train(RewardModelConfig { label_noise: 0.4, ..Default::default() });
        let coin = train(RewardModelConfig { label_noise: 0.5, ..Default::default() });
        assert!(clean.pairwise_accuracy() > 0.9, "clean accuracy {}", clean.pairwise_accuracy());
        assert!(
            noisy.pairwise_accuracy() < clean.pairwise_accuracy(),
            "noise 0.4: {} vs clean {}",
            noisy.pairwise_accuracy(),
            clean.pairwise_accuracy()
        );
        // Pure-noise labels carry no information about the truth.
        assert!(coin.pairwise_accuracy() < noisy.pairwise_accuracy());
        assert_eq!(clean.fit_stats().train_pairs, 2000);
        assert_eq!(clean.fit_stats().heldout_pairs, 1000);

        // With fewer pairs the cost of noise is large, not just present: mean over seeds.
        let mean_acc = |label_noise: f64| {
            let accs = (10..13).map(|seed| {
                let cfg =
                    RewardModelConfig { pairs: 300, heldout_pairs: 500, label_noise, ..Default::default() };
                with_ctx(seed, |ctx| RewardModel::train(ctx, "rm", cfg).unwrap().pairwise_accuracy())
            });
            accs.sum::<f64>() / 3.0
        };
        let (a0, a4) = (mean_acc(0.0), mean_acc(0.4));
        assert!(a0 > 0.95 && a4 < a0 - 0.05, "300 pairs: clean {a0:.3}, noise 0.4 {a4:.3}");
    }

    #[test]
    fn fit_increases_log_likelihood() {
        for noise in [0.0, 0.3] {
            let m = train(RewardModelConfig { pairs: 800, label_noise: noise, ..Default::default() });
            let st = m.fit_stats();
            assert!((st.initial_log_likelihood + std::f64::consts::LN_2).abs() < 1e-12);
            assert!(
                st.final_log_likelihood > st.initial_log_likelihood + 0.05,
                "noise {noise}: {} → {}",
                st.initial_log_likelihood,
                st.final_log_likelihood
            );
            assert!(st.newton_steps > 0);
        }
    }

    #[test]
    fn newton_reaches_a_stationary_point() {
        // On noisy (non-separable) data with l2 > 0 the optimum is interior: the gradient of
        // J must vanish there, and J must not increase along any coordinate.
        let lab = Labeller::Observed { label_noise: 0.3, bias: 0.0 };
        let data = with_ctx(1, |ctx| preference_pairs(ctx, "rm", PairSet::Train, 600, lab).unwrap());
        let l2 = 0.01;
        let (w, _) = fit_bradley_terry(&data.pairs, l2);
        let j = objective(&data.pairs, &w, l2);
        for k in 0..FEATURES {
            for h in [1e-4, -1e-4] {
                let mut v = w;
                v[k] += h;
                assert!(objective(&data.pairs, &v, l2) <= j + 1e-12, "coordinate {k} step {h}");
            }
        }
    }

    #[test]
    fn bias_prefers_larger_wrong_answers() {
        let fair = train(RewardModelConfig::default());
        let biased = train(RewardModelConfig { bias: 2.0, ..Default::default() });
        // Pairs of wrong answers where the larger one is one step further from gold, so
        // truly worse: a fair model should pick the smaller, closer one; the biased
        // labeller taught the other model to pick the larger.
        let larger_wins = |m: &RewardModel| {
            let (mut wins, mut n) = (0.0, 0.0);
            for g in 0..=18 {
                let t = task(g, 0, 18);
                for k in 1..=9 {
                    let (lo, hi) = (g - k, g + k + 1);
                    if lo < 0 || hi > 18 {
                        continue;
                    }
                    let (sl, sh) = (m.score_answer(&t, lo), m.score_answer(&t, hi));
                    wins += if sh > sl {
                        1.0
                    } else if sh == sl {
                        0.5
                    } else {
                        0.0
                    };
                    n += 1.0;
                }
            }
            wins / n
        };
        let (f, b) = (larger_wins(&fair), larger_wins(&biased));
        assert!(f < 0.25, "fair model prefers the larger, worse answer in {f:.3} of pairs");
        assert!(
            b > 0.8 && b > f + 0.5,
            "biased model prefers the larger, worse answer in only {b:.3} of pairs"
        );
        assert!(biased.weights()[6] > fair.weights()[6], "position weight");
        // The bias costs true accuracy.
        assert!(biased.pairwise_accuracy() < fair.pairwise_accuracy());
    }

    #[test]
    fn score_is_linear_in_weights_and_unparsed_is_lowest() {
        let m = train(RewardModelConfig { pairs: 300, heldout_pairs: 100, bias: -1.0, ..Default::default() });
        let t = task(7, 0, 18);
        let responses: Vec<Response> =
            (0..=18).map(parsed).chain([unparsed("nothing"), unparsed(&"9".repeat(100_000))]).collect();
        let low = m.score(&t, &unparsed("x"), key(0));
        for r in &responses {
            let s = m.score(&t, r, key(0));
            assert!(s.is_finite());
            assert!(s >= low, "{r:?}");
            let phi = m.features(&t, r);
            assert_eq!(s, m.scale() * dot(m.weights(), &phi));
        }
        // The floor holds over the whole feature box, not just this task.
        for g in -30..30 {
            for y in -40..40 {
                assert!(m.score_answer(&task(g, -30, 30), y) >= low - 1e-12);
            }
        }
    }

    #[test]
    fn set_weights_validates_and_updates_accuracy() {
        let mut m = train(RewardModelConfig { pairs: 300, heldout_pairs: 300, ..Default::default() });
        let fitted = m.pairwise_accuracy();
        let mut w = [0.0; FEATURES];
        m.set_weights(w).unwrap();
        assert_eq!(m.pairwise_accuracy(), 0.5);
        w[1] = -1.0; // prefers answers far from gold
        m.set_weights(w).unwrap();
        assert!(m.pairwise_accuracy() < 0.3);
        let before = *m.weights();
        assert!(m.set_weights([f64::NAN; FEATURES]).is_err());
        assert!(m.set_weights([2e9; FEATURES]).is_err());
        assert_eq!(*m.weights(), before);
        assert_eq!(m.fit_stats().fitted_accuracy, fitted);
        let back = m.clone().with_weights([0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
        assert!(back.pairwise_accuracy() > 0.9);
    }

    #[test]
    fn preference_data_respects_the_mixture() {
        // With all weight on one source, every pair comes from it; the second source's
        // answer space (−9..=9) would show as negative positions of gold otherwise.
        let (srcs, ids, _) = ctx_parts();
        let refs: Vec<&dyn TaskSource> = srcs.iter().map(|s| s.as_ref()).collect();
        let w = [1.0, 0.0];
        let ctx = BuildContext {
            seed: 2,
            sources: &refs,
            source_ids: &ids,
            source_weights: &w,
            eval_fraction: 0.2,
            verdicts: None,
        };
        let d = preference_pairs(&ctx, "rm", PairSet::Heldout, 200, Labeller::Truth).unwrap();
        assert_eq!(d.pairs.len(), 200);
        assert_eq!(d.attempts, 200 + d.ties + d.degenerate);
        // Truth labels: the preferred answer is never further from gold than the other.
        assert!(d.pairs.iter().all(|p| p[0] > 0.0 || p[1] > 0.0));
        let empty = BuildContext::without_sources(2);
        assert_eq!(
            preference_pairs(&empty, "rm", PairSet::Train, 10, Labeller::Truth),
            Err(PieceProblem::NoSources)
        );
    }
}
