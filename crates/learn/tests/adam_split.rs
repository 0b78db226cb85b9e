//! The Owen split of Adam's update on cases whose answer is computed by hand, and against
//! a brute-force reference that keeps a dense state for every coalition.
//!
//! Tolerances: the split and the hand formulas evaluate the same terms in a different
//! order; every term is at most `2η` in size, and there are at most a few hundred of them,
//! so rounding differences stay below `1e-13·η` (stated per assertion where tighter).

use gristmill_learn::optim::{adam_bound, AdamHyper, OptimizerKind, ReferenceOptimizer, SplitOptimizer};
use proptest::prelude::*;

const ETA: f64 = 0.05;
const B1: f64 = 0.9;
const B2: f64 = 0.999;
const EPS: f64 = 1e-8;

fn adam() -> OptimizerKind {
    OptimizerKind::Adam { beta1: B1, beta2: B2, eps: EPS }
}

/// `grads[cell]` for a one-parameter layout.
fn one(values: &[f64]) -> Vec<Vec<f64>> {
    values.iter().map(|&v| vec![v]).collect()
}

/// Adam's first-step update on a gradient `g`: `η g/(|g| + ε)` (with the bias corrections
/// `m̂ = g`, `v̂ = g²` written out).
fn first_step(g: f64) -> f64 {
    let m_hat = (1.0 - B1) * g / (1.0 - B1);
    let v_hat = (1.0 - B2) * g * g / (1.0 - B2);
    ETA * m_hat / (v_hat.sqrt() + EPS)
}

#[test]
fn two_opposed_channels_on_adams_first_step_split_as_computed_by_hand() {
    // One coordinate, g₁ = +1, g₂ = −2: Shapley over two players,
    // φ₁ = ½U(g₁) + ½(U(g₁+g₂) − U(g₂)), φ₂ = ½U(g₂) + ½(U(g₁+g₂) − U(g₁)).
    let mut opt = SplitOptimizer::new(adam(), ETA, 2, 1, 1);
    let step = opt.step(&one(&[1.0, -2.0]));
    let (u1, u2, u12) = (first_step(1.0), first_step(-2.0), first_step(-1.0));
    let phi1 = 0.5 * u1 + 0.5 * (u12 - u2);
    let phi2 = 0.5 * u2 + 0.5 * (u12 - u1);
    assert!((step.cells[0][0] - phi1).abs() < 1e-16, "{} vs {phi1}", step.cells[0][0]);
    assert!((step.cells[1][0] - phi2).abs() < 1e-16, "{} vs {phi2}", step.cells[1][0]);
    // ≈ +η/2 and −3η/2: channel 2 undoes channel 1 and pushes on; the real step is −η.
    assert!((phi1 - ETA / 2.0).abs() < 1e-9 && (phi2 + 1.5 * ETA).abs() < 1e-9);
    assert_eq!(step.real.as_deref(), Some(&[u12][..]));
}

#[test]
fn nearly_cancelling_channels_stay_bounded_where_the_linear_split_explodes() {
    // g₁ = +1, g₂ = −1 + 1e−6: the total is 1e−6. The linear split with the shared
    // second moment gives channel 1 a share of η·1/(1e−6 + ε) ≈ 1e6·η / 1.01.
    let (g1, g2) = (1.0, -1.0 + 1e-6);
    let linear = ETA * g1 / (((g1 + g2) * (g1 + g2)).sqrt() + EPS);
    assert!(linear > 9e5 * ETA, "the old split's share {linear}");
    let mut opt = SplitOptimizer::new(adam(), ETA, 2, 1, 1);
    let step = opt.step(&one(&[g1, g2]));
    let bound = adam_bound(AdamHyper { eta: ETA, beta1: B1, beta2: B2, eps: EPS }, 1);
    assert_eq!(bound, ETA);
    for c in 0..2 {
        assert!(step.cells[c][0].abs() <= 2.0 * bound, "cell {c}: {}", step.cells[c][0]);
    }
    let (u1, u2, u12) = (first_step(g1), first_step(g2), first_step(g1 + g2));
    assert!((step.cells[0][0] - (0.5 * u1 + 0.5 * (u12 - u2))).abs() < 1e-16);
    assert!((step.cells[0][0] + step.cells[1][0] - u12).abs() < 1e-16);
}

#[test]
fn identical_channels_get_identical_shares_bit_for_bit() {
    let mut opt = SplitOptimizer::new(adam(), ETA, 3, 1, 4);
    let mut rng = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    for _ in 0..30 {
        let shared: Vec<f64> = (0..4).map(|_| next()).collect();
        let other: Vec<f64> = (0..4).map(|_| next() * 3.0).collect();
        // Rows 0 and 2 are the same channel twice; row 1 differs.
        let step = opt.step(&[shared.clone(), other, shared]);
        for k in 0..4 {
            assert_eq!(step.cells[0][k].to_bits(), step.cells[2][k].to_bits(), "coordinate {k}");
        }
    }
}

#[test]
fn one_channel_alone_is_ordinary_adam_bit_for_bit() {
    let mut opt = SplitOptimizer::new(adam(), ETA, 1, 1, 3);
    let mut reference = ReferenceOptimizer::new(adam(), ETA, 3);
    for t in 0..25 {
        let g: Vec<f64> = (0..3).map(|k| ((t * 7 + k * 3) % 11) as f64 - 5.0).collect();
        let step = opt.step(std::slice::from_ref(&g));
        let expected = reference.step(&g);
        assert_eq!(step.cells[0], expected, "step {t}");
        assert_eq!(step.real.as_deref(), Some(&expected[..]));
    }
}

#[test]
fn a_channel_scaled_by_zero_gets_exactly_zero_and_leaves_the_other_ordinary_adam() {
    let mut opt = SplitOptimizer::new(adam(), ETA, 2, 1, 3);
    let mut reference = ReferenceOptimizer::new(adam(), ETA, 3);
    for t in 0..25 {
        let g: Vec<f64> = (0..3).map(|k| ((t * 5 + k) % 7) as f64 - 3.0).collect();
        let zero: Vec<f64> = g.iter().map(|x| 0.0 * x).collect();
        let step = opt.step(&[g.clone(), zero]);
        assert!(step.cells[1].iter().all(|&v| v == 0.0), "step {t}: {:?}", step.cells[1]);
        assert_eq!(step.cells[0], reference.step(&g), "step {t}");
    }
}

#[test]
fn momentum_carried_from_earlier_steps_counts_for_the_channel_that_built_it() {
    // Step 1: only channel 1 pushes; step 2: only channel 2. At step 2 channel 1's
    // coalition still holds m = β₁(1−β₁), v = β₂(1−β₂); the real moments are those of the
    // history (1, 1). No coalition's second moment exceeds the real one, so the split is
    // the linear one with the real preconditioner: channel 1 gets its momentum's step.
    let mut opt = SplitOptimizer::new(adam(), ETA, 2, 1, 1);
    opt.step(&one(&[1.0, 0.0]));
    let step = opt.step(&one(&[0.0, 1.0]));
    let (c1, c2) = (1.0 - B1 * B1, 1.0 - B2 * B2);
    let v_real = B2 * (1.0 - B2) + (1.0 - B2);
    let update = |m: f64, v: f64| ETA * (m / c1) / ((v / c2).sqrt().max((v_real / c2).sqrt()) + EPS);
    let u1 = update(B1 * (1.0 - B1), B2 * (1.0 - B2));
    let u2 = update(1.0 - B1, 1.0 - B2);
    let u12 = update(B1 * (1.0 - B1) + (1.0 - B1), v_real);
    let phi1 = 0.5 * u1 + 0.5 * (u12 - u2);
    let phi2 = 0.5 * u2 + 0.5 * (u12 - u1);
    assert!((step.cells[0][0] - phi1).abs() < 1e-16, "{} vs {phi1}", step.cells[0][0]);
    assert!((step.cells[1][0] - phi2).abs() < 1e-16, "{} vs {phi2}", step.cells[1][0]);
    // = η (m₁/c₁)/(√v̂ + ε): 0.09/0.19 of a step, from a channel silent at this step.
    let linear = ETA * (B1 * (1.0 - B1) / c1) / ((v_real / c2).sqrt() + EPS);
    assert!((phi1 - linear).abs() < 1e-16 && phi1 > 0.47 * ETA, "{phi1} vs {linear}");
}

#[test]
fn aligned_channels_get_the_linear_split_with_the_real_preconditioner() {
    // Channels that never cancel: no coalition's second moment exceeds the real one, the
    // game is additive, and each share is η m̂_c / (√v̂ + ε), the familiar linear split. A
    // channel a thousand times smaller gets a thousand times less (no dust premium: Adam
    // fed that channel alone would step as far as the large one).
    let mut opt = SplitOptimizer::new(adam(), ETA, 3, 1, 2);
    let (mut m, mut v) = (vec![[0.0f64; 2]; 3], [0.0f64; 2]);
    for t in 1..=20u64 {
        let base = [1.0 + (t % 3) as f64, 0.5 + (t % 5) as f64 * 0.1];
        let grads: Vec<Vec<f64>> =
            [1.0, 0.4, 1e-3].iter().map(|s| base.iter().map(|b| s * b).collect()).collect();
        let step = opt.step(&grads);
        let (c1, c2) = (1.0 - B1.powi(t as i32), 1.0 - B2.powi(t as i32));
        for k in 0..2 {
            let total: f64 = grads.iter().fold(0.0, |a, g| a + g[k]);
            v[k] = B2 * v[k] + (1.0 - B2) * total * total;
            for c in 0..3 {
                m[c][k] = B1 * m[c][k] + (1.0 - B1) * grads[c][k];
                let linear = ETA * (m[c][k] / c1) / ((v[k] / c2).sqrt() + EPS);
                let got = step.cells[c][k];
                assert!((got - linear).abs() <= 1e-15 * ETA, "step {t} cell {c}: {got} vs {linear}");
            }
        }
        assert!(step.cells[2][0] < 1.1e-3 * step.cells[0][0], "the small channel's share is small");
    }
}

#[test]
fn sgd_is_the_linear_split_unchanged() {
    let mut opt = SplitOptimizer::new(OptimizerKind::Sgd, 0.5, 2, 2, 2);
    let grads = vec![vec![1.0, -2.0], vec![], vec![0.25, 3.0], vec![-1.0, 1.0]];
    let step = opt.step(&grads);
    assert_eq!(step.real, None);
    assert_eq!(step.cells, vec![vec![0.5, -1.0], vec![0.0, 0.0], vec![0.125, 1.5], vec![-0.5, 0.5]]);
}

/// The Owen value from its definition, with a dense state for every one of the `2^K`
/// coalitions: the reference the sparse, growing implementation is checked against.
struct BruteForce {
    rows: usize,
    columns: usize,
    t: u64,
    /// `[coalition mask][parameter] → (m, v)`.
    state: Vec<Vec<(f64, f64)>>,
}

impl BruteForce {
    fn new(rows: usize, columns: usize, len: usize) -> Self {
        BruteForce { rows, columns, t: 0, state: vec![vec![(0.0, 0.0); len]; 1 << (rows * columns)] }
    }

    fn step(&mut self, grads: &[Vec<f64>]) -> Vec<Vec<f64>> {
        self.t += 1;
        let cells = self.rows * self.columns;
        let len = grads[0].len();
        let (c1, c2) = (1.0 - B1.powi(self.t as i32), 1.0 - B2.powi(self.t as i32));
        let mut u = vec![vec![0.0; len]; 1 << cells];
        for (mask, state) in self.state.iter_mut().enumerate() {
            for k in 0..len {
                let g: f64 = (0..cells).filter(|c| mask >> c & 1 == 1).map(|c| grads[c][k]).sum();
                let (m, v) = &mut state[k];
                *m = B1 * *m + (1.0 - B1) * g;
                *v = B2 * *v + (1.0 - B2) * g * g;
            }
        }
        let full = (1 << cells) - 1;
        for (mask, state) in self.state.iter().enumerate() {
            for k in 0..len {
                // U(S) = η m̂_S / (max(√v̂_S, √v̂_all) + ε).
                let (m, v) = state[k];
                let real = (self.state[full][k].1 / c2).sqrt();
                u[mask][k] = ETA * (m / c1) / ((v / c2).sqrt().max(real) + EPS);
            }
        }
        let fact = |n: usize| (1..=n).map(|x| x as f64).product::<f64>();
        let w = |n: usize, q: usize| fact(q) * fact(n - q - 1) / fact(n);
        let row_mask = |r: usize| ((1usize << self.columns) - 1) << (r * self.columns);
        let mut phi = vec![vec![0.0; len]; cells];
        for cell in 0..cells {
            let a = cell / self.columns;
            for q in 0..(1usize << self.rows) {
                if q >> a & 1 == 1 {
                    continue;
                }
                let full: usize =
                    (0..self.rows).filter(|r| q >> r & 1 == 1).map(row_mask).fold(0, |x, y| x | y);
                let wq = w(self.rows, q.count_ones() as usize);
                let others = row_mask(a) & !(1 << cell);
                for t in 0..(1usize << cells) {
                    if t & !others != 0 {
                        continue;
                    }
                    let wt = w(self.columns, t.count_ones() as usize);
                    for k in 0..len {
                        phi[cell][k] += wq * wt * (u[full | t | 1 << cell][k] - u[full | t][k]);
                    }
                }
            }
        }
        phi
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random sparse gradients on 2 rows × 2 columns, cells switching on at random steps:
    /// the split equals the brute-force Owen value, sums to the real step, and every share
    /// stays within twice the largest step Adam can take.
    #[test]
    fn matches_the_brute_force_owen_value_and_stays_bounded(
        history in prop::collection::vec(prop::collection::vec(prop::option::weighted(0.6, -3.0f64..3.0), 4 * 3), 1..12),
        cancel in prop::bool::ANY,
    ) {
        let (rows, columns, len) = (2, 2, 3);
        let mut opt = SplitOptimizer::new(adam(), ETA, rows, columns, len);
        let mut brute = BruteForce::new(rows, columns, len);
        let mut reference = ReferenceOptimizer::new(adam(), ETA, len);
        let h = AdamHyper { eta: ETA, beta1: B1, beta2: B2, eps: EPS };
        for (t, values) in history.iter().enumerate() {
            let mut grads: Vec<Vec<f64>> =
                (0..4).map(|c| (0..len).map(|k| values[c * len + k].unwrap_or(0.0)).collect()).collect();
            if cancel {
                // Row 1 nearly cancels row 0 on column 0.
                grads[2] = grads[0].iter().map(|v| -v * (1.0 + 1e-7)).collect();
            }
            let bound = adam_bound(h, t as u64 + 1);
            let step = opt.step(&grads);
            let expected = brute.step(&grads);
            let total: Vec<f64> = (0..len).map(|k| grads.iter().fold(0.0, |a, g| a + g[k])).collect();
            let real = step.real.clone().unwrap();
            prop_assert_eq!(&real, &reference.step(&total));
            for k in 0..len {
                let sum: f64 = step.cells.iter().map(|c| c[k]).sum();
                prop_assert!((sum - real[k]).abs() <= 1e-13 * ETA, "Σ shares {} vs real {}", sum, real[k]);
                for (c, want) in expected.iter().enumerate() {
                    let v = step.cells[c][k];
                    prop_assert!(v.abs() <= 2.0 * bound * (1.0 + 1e-12), "cell {} share {} > 2·B = {}", c, v, 2.0 * bound);
                    prop_assert!((v - want[k]).abs() <= 1e-13 * ETA, "cell {} coordinate {}: {} vs brute force {}", c, k, v, want[k]);
                }
            }
        }
    }
}

#[test]
fn a_checkpointed_optimizer_resumes_to_the_same_bits() {
    let grads = |t: usize| -> Vec<Vec<f64>> {
        (0..6)
            .map(|c| {
                (0..5)
                    .map(|k| {
                        if (t + c + k).is_multiple_of(3) {
                            0.0
                        } else {
                            ((t * 31 + c * 7 + k) % 13) as f64 - 6.0
                        }
                    })
                    .collect()
            })
            .collect()
    };
    let mut a = SplitOptimizer::new(adam(), ETA, 3, 2, 5);
    for t in 0..7 {
        a.step(&grads(t));
    }
    let json = serde_json::to_string(&a).unwrap();
    let mut b: SplitOptimizer = serde_json::from_str(&json).unwrap();
    assert_eq!(a, b);
    for t in 7..15 {
        assert_eq!(a.step(&grads(t)), b.step(&grads(t)), "step {t}");
    }
    // A state that does not fit is refused with a reason.
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["len"] = serde_json::json!(4);
    let err = serde_json::from_value::<SplitOptimizer>(value).unwrap_err().to_string();
    assert!(err.contains("parameter"), "{err}");
}
