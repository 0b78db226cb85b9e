//! Gauss–Legendre quadrature on `[0, 1]`.
//!
//! Written by hand (Newton iteration on the Legendre recurrence) because it is twenty lines,
//! must be exact to the last bits we can get, and must not change under a dependency update:
//! the nodes enter every stored credit number.

/// Nodes and weights of the `q`-point Gauss–Legendre rule on `[0, 1]` (exact for
/// polynomials of degree `2q − 1`). Weights sum to 1.
pub fn gauss_legendre(q: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = Vec::with_capacity(q);
    let mut weights = Vec::with_capacity(q);
    for i in 0..q {
        // Chebyshev-like initial guess for the i-th root of P_q on [−1, 1].
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (q as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (p, d) = legendre(q, x);
            dp = d;
            let dx = p / d;
            x -= dx;
            if dx.abs() < 1e-16 {
                break;
            }
        }
        let (_, d) = legendre(q, x);
        if d.is_finite() {
            dp = d;
        }
        let w = 2.0 / ((1.0 - x * x) * dp * dp);
        nodes.push(0.5 * (1.0 - x));
        weights.push(0.5 * w);
    }
    // Ascending nodes.
    let mut pairs: Vec<(f64, f64)> = nodes.into_iter().zip(weights).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    pairs.into_iter().unzip()
}

/// `(P_q(x), P_q'(x))` by the three-term recurrence.
fn legendre(q: usize, x: f64) -> (f64, f64) {
    let (mut p0, mut p1) = (1.0, x);
    if q == 0 {
        return (1.0, 0.0);
    }
    for k in 2..=q {
        let kf = k as f64;
        let p2 = ((2.0 * kf - 1.0) * x * p1 - (kf - 1.0) * p0) / kf;
        p0 = p1;
        p1 = p2;
    }
    let d = q as f64 * (x * p1 - p0) / (x * x - 1.0);
    (p1, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrates_polynomials_of_degree_2q_minus_1_exactly() {
        for q in 1..=8 {
            let (x, w) = gauss_legendre(q);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-14, "q={q}");
            for deg in 0..2 * q {
                let approx: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(deg as i32)).sum();
                let exact = 1.0 / (deg as f64 + 1.0);
                // Tolerance: a few ulps times the number of nodes.
                assert!((approx - exact).abs() < 1e-14, "q={q} deg={deg}: {approx} vs {exact}");
            }
        }
    }

    #[test]
    fn two_point_rule_matches_closed_form() {
        let (x, w) = gauss_legendre(2);
        let a = 0.5 - 0.5 / 3f64.sqrt();
        assert!((x[0] - a).abs() < 1e-15 && (x[1] - (1.0 - a)).abs() < 1e-15);
        assert!((w[0] - 0.5).abs() < 1e-15 && (w[1] - 0.5).abs() < 1e-15);
    }
}
