//! Deterministic transcendental functions for feature encodings.
//!
//! `f64::ln`, `sin` and `cos` call the platform's libm, whose last bit may differ between
//! operating systems and library versions. Features feed learned policies whose every number
//! is digested, so the few transcendental values the families need are computed here with
//! IEEE basic operations only (`+ - * /` in a fixed order), which round identically
//! everywhere. They are accurate to a few ulps, which is all an encoding needs.

/// `ln 2`, as the nearest `f64` (a literal, so it is the same bits everywhere).
const LN_2: f64 = std::f64::consts::LN_2;
/// `2π`, as the nearest `f64`.
const TAU: f64 = std::f64::consts::TAU;

/// Natural logarithm of a positive finite `x`; returns 0 for `x <= 0` or non-finite `x`
/// (callers only pass values `>= 1`; the guard keeps the function total).
pub(crate) fn ln(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 || x.is_infinite() {
        return 0.0;
    }
    // Split x = m * 2^e with m in [1, 2) by scaling, not by bit tricks, so subnormals need
    // no special case; inputs here are small integers anyway.
    let mut m = x;
    let mut e = 0i32;
    while m >= 2.0 {
        m *= 0.5;
        e += 1;
    }
    while m < 1.0 {
        m *= 2.0;
        e -= 1;
    }
    // Centre m on 1 so the atanh series below converges fast (|s| <= 0.172).
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln m = 2 atanh(s), s = (m - 1) / (m + 1).
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    let mut k = 1.0;
    for _ in 0..16 {
        sum += term / k;
        term *= s2;
        k += 2.0;
    }
    e as f64 * LN_2 + 2.0 * sum
}

/// `(cos, sin)` of `2π k / m`, for `m >= 1`.
pub(crate) fn cos_sin_turn(k: u64, m: u64) -> (f64, f64) {
    let m = m.max(1);
    let k = k % m;
    // Reduce to x in [-π, π] by the turn fraction, which is exact in rationals.
    let frac = k as f64 / m as f64;
    let x = if frac > 0.5 { (frac - 1.0) * TAU } else { frac * TAU };
    // Taylor series; 30 terms bound the truncation error by π^61/61! < 1e-50.
    let x2 = x * x;
    let mut cos = 0.0;
    let mut sin = 0.0;
    let mut c_term = 1.0; // x^(2n) / (2n)!
    let mut s_term = x; // x^(2n+1) / (2n+1)!
    let mut n = 0.0;
    for _ in 0..30 {
        cos += c_term;
        sin += s_term;
        c_term *= -x2 / ((2.0 * n + 1.0) * (2.0 * n + 2.0));
        s_term *= -x2 / ((2.0 * n + 2.0) * (2.0 * n + 3.0));
        n += 1.0;
    }
    (cos, sin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_std_closely() {
        for i in 1..5000u32 {
            let x = i as f64 * 0.37;
            let d = (ln(x) - x.ln()).abs();
            assert!(d <= 4.0 * f64::EPSILON * x.ln().abs().max(1.0), "ln({x}): {} vs {}", ln(x), x.ln());
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), 0.0);
        assert_eq!(ln(-3.0), 0.0);
        assert_eq!(ln(f64::NAN), 0.0);
    }

    #[test]
    fn cos_sin_match_std_closely() {
        for m in 1..60u64 {
            for k in 0..m {
                let (c, s) = cos_sin_turn(k, m);
                let t = std::f64::consts::TAU * k as f64 / m as f64;
                assert!((c - t.cos()).abs() < 1e-14, "cos {k}/{m}");
                assert!((s - t.sin()).abs() < 1e-14, "sin {k}/{m}");
            }
        }
    }
}
