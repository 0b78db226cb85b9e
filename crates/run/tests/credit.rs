//! Exactness properties of in-run credit on real runs: efficiency, symmetry, null, and
//! agreement with an independent brute-force quadrature; and the counterfactual methods.

use gristmill_learn::{TrainConfig, Trainer};
use gristmill_measure::{gauss_legendre, path_credit, CreditLedger, Rule, DEFAULT_NODES};
use gristmill_run::coalition::{leave_one_out, shapley};
use gristmill_run::{ExactMetric, Run};
use gristmill_testkit::{fixture, trainable, with_policy};

/// The credit fixture with `policy` as its `[policy]` body and `pieces` appended.
fn spec(policy: &str, pieces: &str) -> String {
    format!("{}\n{pieces}", with_policy(&fixture("credit-base"), policy))
}

const PIECES: &str = r#"
[[piece]]
id = "gold"
kind = "exact_verifier"
[[piece]]
id = "partial"
kind = "partial_credit"
weight = 0.5
[[piece]]
id = "noisy"
kind = "noisy_verifier"
weight = 0.5
params = { flip_rate = 0.3 }
[[piece]]
id = "curriculum"
kind = "curriculum"
params = { source_weights = [2.0, 1.0] }
[[piece]]
id = "hint"
kind = "hint"
params = { probability = 0.3 }

"#;

fn build(text: &str) -> (gristmill_engine::Environment, TrainConfig) {
    trainable(text)
}

fn run_credit(text: &str, steps: u64) -> (Run, CreditLedger) {
    let (env, config) = build(text);
    let mut run = Run::with_config(env, config).unwrap();
    run.advance(steps).unwrap();
    let ledger = run.ledger().expect("credit is on").clone();
    (run, ledger)
}

#[test]
fn efficiency_credit_sums_to_the_metric_change() {
    for policy in [
        r#"kind = "loglinear"
params = { kl = 0.05, weight_decay = 0.01 }"#,
        r#"kind = "mlp"
params = { hidden = 8, normalization = "per_channel" }"#,
    ] {
        let (run, c) = run_credit(&spec(policy, PIECES), 12);
        let t = run.trainer();
        let total_change = t.current_metric() - t.metric(t.theta0()).unwrap();
        assert!((c.delta_metric() - total_change).abs() < 1e-14, "ΔM telescopes");
        assert!(c.delta_metric().abs() > 1e-3, "the run must actually move M for this test to mean anything");
        // The efficiency bound: |residual| ≤ 1e-9 · max(1, |ΔM|). Four Gauss–Legendre nodes
        // leave ~1e-11 on these steps (the quadrature error), far inside it.
        assert!(
            c.residual().abs() <= 1e-9 * c.delta_metric().abs().max(1.0),
            "{policy}: residual {}",
            c.residual()
        );
        // The table is consistent: rows and columns both sum to the total.
        let rows: f64 = c.row_totals().iter().sum();
        let cols: f64 = c.column_totals().iter().sum();
        assert!((rows - cols).abs() < 1e-14);
    }
}

#[test]
fn symmetry_identical_pieces_get_identical_credit() {
    let pieces = r#"
[[piece]]
id = "a"
kind = "exact_verifier"
weight = 0.7
[[piece]]
id = "b"
kind = "exact_verifier"
weight = 0.7
[[piece]]
id = "partial"
kind = "partial_credit"
weight = 0.5
"#;
    for policy in [
        r#"kind = "loglinear""#,
        r#"kind = "loglinear"
params = { normalization = "per_channel", optimizer = "sgd", learning_rate = 1.0 }"#,
    ] {
        let (_, c) = run_credit(&spec(policy, pieces), 8);
        let (a, b) = (c.row("a").unwrap(), c.row("b").unwrap());
        assert!(a != 0.0);
        // Identical channels produce bit-identical gradients and steps, so the credit is
        // bit-identical, not merely close.
        assert_eq!(a.to_bits(), b.to_bits(), "{a} vs {b}");
    }
}

#[test]
fn null_zero_weight_and_constant_channels_get_exactly_zero() {
    let pieces = r#"
[[piece]]
id = "gold"
kind = "exact_verifier"
[[piece]]
id = "zero"
kind = "partial_credit"
weight = 0.0
[[piece]]
id = "constant"
kind = "format_shaping"
weight = 2.0
"#;
    let (_, c) = run_credit(&spec(r#"kind = "loglinear""#, pieces), 8);
    assert!(c.row("gold").unwrap().abs() > 1e-4);
    assert_eq!(c.row("zero").unwrap(), 0.0);
    // Canonical responses always parse, so format shaping is constant: zero advantage.
    assert_eq!(c.row("constant").unwrap(), 0.0);
}

#[test]
fn each_channel_matches_an_independent_brute_force_integral() {
    let (env, config) = build(&spec(
        r#"kind = "mlp"
params = { hidden = 6, learning_rate = 0.1 }"#,
        PIECES,
    ));
    let mut t = Trainer::new(env, config).unwrap();
    for _ in 0..3 {
        t.step().unwrap();
    }
    let report = t.step().unwrap();
    let cols = t.columns();
    let credit = |q: usize| {
        path_credit(
            &ExactMetric(&t),
            &report.theta_before,
            t.theta(),
            &report.deltas,
            cols,
            &Rule::gauss_legendre(q),
        )
        .unwrap()
    };
    let (gl, gl_default) = (credit(8), credit(DEFAULT_NODES));
    assert_eq!(gauss_legendre(8).0.len(), 8);
    // Composite Simpson with 400 panels, evaluated independently: error O(h⁴·max|f⁗|/180)
    // with h = 1/400, below 1e-13 for the O(1e-2) derivatives of this step.
    let n = 400;
    let delta: Vec<f64> = t.theta().iter().zip(&report.theta_before).map(|(a, b)| a - b).collect();
    let mut simpson = vec![0.0; report.deltas.len()];
    for k in 0..=n {
        let s = k as f64 / n as f64;
        let coef = if k == 0 || k == n {
            1.0
        } else if k % 2 == 1 {
            4.0
        } else {
            2.0
        } / (3.0 * n as f64);
        let theta: Vec<f64> = report.theta_before.iter().zip(&delta).map(|(a, d)| a + s * d).collect();
        let (_, grad) = t.metric_and_grad(&theta).unwrap();
        for (cell, d) in report.deltas.iter().enumerate() {
            simpson[cell] += coef * grad.iter().zip(d).map(|(g, d)| g * d).sum::<f64>();
        }
    }
    let mut nonzero = 0;
    for (cell, (a, b)) in gl.cells.iter().zip(&simpson).enumerate() {
        // The implementation: an 8-node rule agrees with Simpson to rounding.
        assert!((a - b).abs() < 1e-13, "cell {cell}: Gauss–Legendre(8) {a} vs Simpson {b}");
        // The default rule's quadrature error on this (large, lr 0.1) step: ~5e-10 here.
        let d = gl_default.cells[cell];
        assert!((d - b).abs() < 2e-9, "cell {cell}: Gauss–Legendre({DEFAULT_NODES}) {d} vs Simpson {b}");
        if a.abs() > 1e-6 {
            nonzero += 1;
        }
    }
    assert!(nonzero >= 3, "the step must spread over several cells");
}

#[test]
fn shapley_is_efficient_and_loo_fails_on_redundant_verifiers() {
    // Two copies of the same verifier: either alone teaches what both teach.
    let pieces = r#"
[[piece]]
id = "v1"
kind = "exact_verifier"
[[piece]]
id = "v2"
kind = "exact_verifier"
"#;
    let text = spec(
        r#"kind = "loglinear"
params = { normalization = "per_channel" }"#,
        pieces,
    )
    .replace("steps = 12", "steps = 6");
    let (env, config) = build(&text);
    let (phi, values) = shapley(&env, &config, 6).unwrap();
    let full = values[&3] - values[&0];
    assert!((phi.iter().sum::<f64>() - full).abs() < 1e-15, "efficiency");
    assert_eq!(phi[0].to_bits(), phi[1].to_bits(), "symmetric pieces, identical Shapley");
    let loo = leave_one_out(&env, &config, 6).unwrap();
    // With per-channel σ, one copy alone gives the same normalised advantage as... two
    // copies summed: v({1}) = v({2}) and LOO sees only the small difference v(N) − v({i}).
    assert!(loo[0].abs() < phi[0].abs(), "LOO {} should be below Shapley {}", loo[0], phi[0]);
}
