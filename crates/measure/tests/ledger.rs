//! The credit ledger fed with synthetic steps, as an outside trainer would feed it, and the
//! path integral on a metric whose integral is known in closed form.

use gristmill_measure::{
    path_credit, Conflict, CreditLedger, LedgerError, MetricGradient, Rule, StepContribution,
};

fn ledger() -> CreditLedger {
    CreditLedger::new(vec!["verifier".into(), "format".into()], vec!["math".into(), "(global)".into()])
}

fn step(step: u64, before: f64, after: f64, cells: [f64; 4]) -> StepContribution {
    StepContribution {
        step,
        metric_before: before,
        metric_after: after,
        delta_se: None,
        cells: cells.to_vec(),
        conflict: None,
    }
}

#[test]
fn efficiency_holds_exactly_when_the_contributions_sum_to_the_change() {
    // Dyadic numbers: every sum below is exact in binary floating point, so the residual is
    // exactly zero, not merely small.
    let mut l = ledger();
    l.observe(step(0, 0.25, 0.375, [0.0625, 0.03125, 0.03125, 0.0])).unwrap();
    let s = l.observe(step(1, 0.375, 0.3125, [-0.125, 0.125, -0.0625, 0.0])).unwrap();
    assert_eq!(s.residual, 0.0);
    assert_eq!(s.rows, vec![0.09375, -0.03125]);
    assert_eq!(l.residual(), 0.0);
    assert_eq!(l.delta_metric(), 0.0625);
    assert_eq!(l.row("format"), Some(-0.03125));
    assert_eq!(l.column_totals(), vec![-0.09375, 0.15625]);
    // Σ|credit| / |ΔM| = (0.09375 + 0.03125) / 0.0625: the format piece worked against the gain.
    assert_eq!(l.conflict_index(), Some(2.0));
}

#[test]
fn a_residual_is_reported_not_hidden() {
    let mut l = ledger();
    let s = l.observe(step(0, 0.5, 0.75, [0.125, 0.0, 0.0, 0.0])).unwrap();
    assert_eq!(s.residual, 0.125);
    assert_eq!(l.max_step_residual(), 0.125);
}

#[test]
fn malformed_steps_are_typed_errors_and_record_nothing() {
    let mut l = ledger();
    l.observe(step(0, 0.25, 0.375, [0.0625, 0.0625, 0.0, 0.0])).unwrap();
    let before = l.clone();
    let cases: Vec<(StepContribution, &str)> = vec![
        (step(2, 0.375, 0.5, [0.0; 4]), "step 2 arrived out of order: the ledger expects step 1 next"),
        (step(0, 0.375, 0.5, [0.0; 4]), "step 0 arrived out of order"),
        (
            StepContribution { cells: vec![0.0; 3], ..step(1, 0.375, 0.5, [0.0; 4]) },
            "step 1: 3 cell contributions, but the ledger has 4 cells (2 rows × 2 columns)",
        ),
        (
            step(1, 0.375, 0.5, [0.0, f64::NAN, 0.0, 0.0]),
            "step 1: cell (verifier, (global)) is NaN, not a finite number",
        ),
        (step(1, 0.375, f64::INFINITY, [0.0; 4]), "step 1: metric_after is inf"),
        (
            step(1, 0.4, 0.5, [0.0; 4]),
            "step 1: metric before (0.4) is not the previous step's metric after (0.375)",
        ),
        (
            StepContribution { delta_se: Some(f64::NAN), ..step(1, 0.375, 0.5, [0.0; 4]) },
            "step 1: delta_se is NaN",
        ),
    ];
    for (c, message) in cases {
        let e = l.observe(c).unwrap_err().to_string();
        assert!(e.starts_with(message), "{e}");
        assert_eq!(l, before, "a refused step changed the ledger: {message}");
    }
    let e = l.observe_named(1, 0.375, 0.5, None, &[("verifier", "code", 0.1)]).unwrap_err();
    assert!(
        matches!(e, LedgerError::UnknownCell { ref row, ref column, .. } if row == "verifier" && column == "code")
    );
    assert!(e.to_string().contains("columns [\"math\", \"(global)\"]"), "{e}");
    assert_eq!(l, before);
}

#[test]
fn named_contributions_and_standard_errors_accumulate() {
    let mut l = CreditLedger::starting_at(vec!["a".into(), "b".into()], vec!["s".into()], 7);
    l.observe_named(7, 0.5, 0.625, Some(0.03), &[("a", "s", 0.125)]).unwrap();
    let s = l.observe_named(8, 0.625, 0.5, Some(0.04), &[("b", "s", -0.0625), ("b", "s", -0.0625)]).unwrap();
    assert_eq!(l.cells(), &[0.125, -0.125]);
    // Independent per-step errors of ΔM add in quadrature: √(0.03² + 0.04²) = 0.05.
    assert!((s.delta_se.unwrap() - 0.05).abs() < 1e-15);
    assert_eq!(l.next_step(), 9);
}

#[test]
fn the_state_round_trips_and_a_damaged_state_is_refused() {
    let mut l = ledger();
    l.observe(step(0, 0.25, 0.375, [0.0625, 0.0625, 0.0, 0.0])).unwrap();
    let back = CreditLedger::from_state(l.state().clone()).unwrap();
    assert_eq!(back, l);
    let mut bad = l.state().clone();
    bad.cells.pop();
    assert!(CreditLedger::from_state(bad)
        .unwrap_err()
        .to_string()
        .contains("3 cells for 2 rows × 2 columns"));
    let mut bad = l.state().clone();
    bad.conflict = Conflict::zeros(3, 2);
    assert!(CreditLedger::from_state(bad).is_err());
}

/// `M(θ) = a·θ + ½ θᵀHθ` with a diagonal `H`: its gradient is linear in `θ`, so the path
/// integral of a cell's share is `(a + Hθ₀)·Δ_c + ½ (HΔ)·Δ_c` exactly, and any
/// Gauss–Legendre rule with one node or more integrates it to rounding.
struct Quadratic {
    a: Vec<f64>,
    h: Vec<f64>,
}

impl MetricGradient for Quadratic {
    type Error = std::convert::Infallible;
    fn metric_and_gradient(&self, theta: &[f64]) -> Result<(f64, Vec<f64>), Self::Error> {
        let m = theta.iter().enumerate().map(|(k, t)| self.a[k] * t + 0.5 * self.h[k] * t * t).sum();
        Ok((m, theta.iter().enumerate().map(|(k, t)| self.a[k] + self.h[k] * t).collect()))
    }
}

#[test]
fn the_path_integral_is_exact_on_a_quadratic_metric() {
    let q = Quadratic { a: vec![0.3, -0.2, 0.1], h: vec![-1.0, 0.5, 2.0] };
    let theta0 = [0.1, 0.4, -0.3];
    // Two rows × one column; the cells' shares sum to the step.
    let deltas = vec![vec![0.05, -0.02, 0.01], vec![-0.03, 0.04, 0.02]];
    let delta: Vec<f64> = (0..3).map(|k| deltas[0][k] + deltas[1][k]).collect();
    let theta1: Vec<f64> = (0..3).map(|k| theta0[k] + delta[k]).collect();
    for nodes in [1, 2, 4] {
        let p = path_credit(&q, &theta0, &theta1, &deltas, 1, &Rule::gauss_legendre(nodes)).unwrap();
        for (c, d) in deltas.iter().enumerate() {
            let exact: f64 =
                (0..3).map(|k| (q.a[k] + q.h[k] * theta0[k]) * d[k] + 0.5 * q.h[k] * delta[k] * d[k]).sum();
            assert!((p.cells[c] - exact).abs() < 1e-16, "{nodes} nodes, cell {c}: {} vs {exact}", p.cells[c]);
        }
        let (m0, _) = q.metric_and_gradient(&theta0).unwrap();
        let (m1, _) = q.metric_and_gradient(&theta1).unwrap();
        assert!((p.cells.iter().sum::<f64>() - (m1 - m0)).abs() < 1e-16, "efficiency with {nodes} nodes");
    }
    // The rows disagree on coordinates 0 and 1: their opposition is the smaller credit there.
    let p = path_credit(&q, &theta0, &theta1, &deltas, 1, &Rule::gauss_legendre(2)).unwrap();
    assert!(p.conflict.rows[1] > 0.0 && p.conflict.rows[1] == p.conflict.rows[2]);
    assert_eq!(p.conflict.rows[0], 0.0);
}
