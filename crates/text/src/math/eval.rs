//! Evaluation of scalar expressions: exactly over rationals where possible, else in `f64`.
//!
//! Recursion here follows the tree, whose depth the parser bounds, so it cannot overflow
//! the stack; every exact operation is checked, so it cannot overflow an integer.

use super::ast::{Constant, Expr, Func};
use super::Limits;
use crate::rational::Rational;

/// The largest `n` whose `n!` fits an `i128` (33! ≈ 8.7e36; 34! ≈ 3.0e38 does not).
const MAX_EXACT_FACTORIAL: i128 = 33;

/// The exact rational value, if the expression is rational and every step fits: integers,
/// fractions, decimals, integer powers (`|n| <= max_exponent`), roots of perfect powers,
/// percentages, factorials. `None` for π, variables, functions, irrational roots, division
/// by zero and overflow — the caller then compares numerically.
pub(crate) fn exact(e: &Expr, lim: &Limits) -> Option<Rational> {
    match e {
        Expr::Number(l) => l.exact,
        Expr::Neg(x) => exact(x, lim)?.checked_neg(),
        Expr::Sum(terms) => terms.iter().try_fold(Rational::ZERO, |acc, t| acc.checked_add(exact(t, lim)?)),
        Expr::Product(fs) => fs.iter().try_fold(Rational::ONE, |acc, f| acc.checked_mul(exact(f, lim)?)),
        Expr::Recip(x) => exact(x, lim)?.checked_recip(),
        Expr::Pow(b, x) => {
            let base = exact(b, lim)?;
            let power = exact(x, lim)?;
            if power.is_integer() {
                base.checked_pow(power.numer(), lim.max_exponent)
            } else {
                // b^(p/q) is rational when b is a perfect q-th power
                let q = u32::try_from(power.denom()).ok().filter(|q| *q <= 64)?;
                base.exact_root(q)?.checked_pow(power.numer(), lim.max_exponent)
            }
        }
        Expr::Root(x, n) => exact(x, lim)?.exact_root(*n),
        Expr::Percent(x) => exact(x, lim)?.checked_div(Rational::from_int(100)),
        Expr::Degrees(x) => exact(x, lim),
        Expr::Factorial(x) => {
            let n = exact(x, lim)?;
            if !n.is_integer() || !(0..=MAX_EXACT_FACTORIAL).contains(&n.numer()) {
                return None;
            }
            (1..=n.numer()).try_fold(Rational::ONE, |acc, k| acc.checked_mul(Rational::from_int(k)))
        }
        Expr::Binom(n, k) => {
            let (n, k) = (exact(n, lim)?, exact(k, lim)?);
            if !n.is_integer() || !k.is_integer() || n.numer() < 0 || k.numer() < 0 || k.numer() > n.numer() {
                return if k.is_integer() && n.is_integer() && k.numer() > n.numer() {
                    Some(Rational::ZERO)
                } else {
                    None
                };
            }
            // C(n, k) = prod_{i=1..k} (n - k + i) / i, every prefix an integer; at most
            // max_exponent steps so a huge k cannot loop for long.
            let k = k.numer().min(n.numer() - k.numer());
            if k as u64 > lim.max_exponent {
                return None;
            }
            (1..=k).try_fold(Rational::ONE, |acc, i| {
                acc.checked_mul(Rational::from_int(n.numer() - k + i))?.checked_div(Rational::from_int(i))
            })
        }
        Expr::Func(Func::Abs, x) => {
            let v = exact(x, lim)?;
            if v < Rational::ZERO {
                v.checked_neg()
            } else {
                Some(v)
            }
        }
        _ => None,
    }
}

/// The `f64` value with variables bound by `env`; NaN where undefined (a free variable,
/// text, a structure, a negative number under an even root) and ±∞ on overflow.
pub(crate) fn approx(e: &Expr, env: &[(&str, f64)], lim: &Limits) -> f64 {
    let ap = |x: &Expr| approx(x, env, lim);
    match e {
        Expr::Number(l) => l.approx,
        Expr::Const(Constant::Pi) => std::f64::consts::PI,
        Expr::Const(Constant::E) => std::f64::consts::E,
        Expr::Const(Constant::Infinity) => f64::INFINITY,
        Expr::Var(v) => env.iter().find(|(name, _)| name == v).map_or(f64::NAN, |(_, x)| *x),
        Expr::Neg(x) => -ap(x),
        Expr::Sum(terms) => terms.iter().map(ap).sum(),
        Expr::Product(fs) => fs.iter().map(ap).product(),
        Expr::Recip(x) => 1.0 / ap(x),
        Expr::Pow(b, x) => {
            let base = ap(b);
            // A negative base with an exponent p/q, q odd, has a real value: (-8)^(1/3) = -2.
            if base < 0.0 {
                if let Some(p) = exact(x, lim).filter(|p| !p.is_integer() && p.denom() % 2 == 1) {
                    let magnitude = (-base).powf(p.to_f64());
                    return if p.numer() % 2 == 0 { magnitude } else { -magnitude };
                }
            }
            base.powf(ap(x))
        }
        Expr::Root(x, n) => {
            let v = ap(x);
            if v < 0.0 && n % 2 == 1 {
                -(-v).powf(1.0 / *n as f64)
            } else if *n == 2 {
                v.sqrt()
            } else {
                v.powf(1.0 / *n as f64)
            }
        }
        Expr::Func(f, x) => {
            let v = ap(x);
            match f {
                Func::Sin => v.sin(),
                Func::Cos => v.cos(),
                Func::Tan => v.tan(),
                Func::Ln => v.ln(),
                Func::Log10 => v.log10(),
                Func::Exp => v.exp(),
                Func::Abs => v.abs(),
            }
        }
        Expr::Factorial(x) => {
            let n = ap(x);
            if n.fract() != 0.0 || !(0.0..=170.0).contains(&n) {
                return f64::NAN;
            }
            (1..=n as u32).map(f64::from).product()
        }
        Expr::Binom(n, k) => {
            let (n, k) = (ap(n), ap(k));
            if n.fract() != 0.0 || k.fract() != 0.0 || k < 0.0 || n < 0.0 || k > 1e6 {
                return f64::NAN;
            }
            if k > n {
                return 0.0;
            }
            let k = k.min(n - k);
            (1..=k as u64).map(|i| (n - k + i as f64) / i as f64).product()
        }
        Expr::Percent(x) => ap(x) / 100.0,
        Expr::Degrees(x) => ap(x),
        Expr::Text(_)
        | Expr::Equation(_)
        | Expr::Member(..)
        | Expr::Tuple(_)
        | Expr::Set(_)
        | Expr::List(_)
        | Expr::Interval { .. }
        | Expr::Union(_) => f64::NAN,
    }
}

/// Call `f` on every node of the tree, parents first.
pub(crate) fn walk<'e>(e: &'e Expr, f: &mut impl FnMut(&'e Expr)) {
    f(e);
    match e {
        Expr::Number(_) | Expr::Const(_) | Expr::Var(_) | Expr::Text(_) => {}
        Expr::Neg(x)
        | Expr::Recip(x)
        | Expr::Root(x, _)
        | Expr::Func(_, x)
        | Expr::Factorial(x)
        | Expr::Percent(x)
        | Expr::Degrees(x) => walk(x, f),
        Expr::Pow(a, b) | Expr::Binom(a, b) | Expr::Member(a, b) | Expr::Interval { lo: a, hi: b, .. } => {
            walk(a, f);
            walk(b, f);
        }
        Expr::Sum(xs)
        | Expr::Product(xs)
        | Expr::Equation(xs)
        | Expr::Tuple(xs)
        | Expr::Set(xs)
        | Expr::List(xs)
        | Expr::Union(xs) => xs.iter().for_each(|x| walk(x, f)),
    }
}

/// Whether any number in the tree was written with a decimal point or an exponent.
pub(crate) fn has_decimal(e: &Expr) -> bool {
    let mut found = false;
    walk(e, &mut |n| found |= matches!(n, Expr::Number(l) if l.decimal));
    found
}

/// Add the tree's variable names to `out` (no duplicates).
pub(crate) fn collect_vars<'e>(e: &'e Expr, out: &mut Vec<&'e str>) {
    walk(e, &mut |n| {
        if let Expr::Var(v) = n {
            if !out.contains(&v.as_str()) {
                out.push(v);
            }
        }
    });
}

/// Whether the tree holds text.
pub(crate) fn has_text(e: &Expr) -> bool {
    let mut found = false;
    walk(e, &mut |n| found |= matches!(n, Expr::Text(_)));
    found
}

/// `±1` for the literal `∞` / `-∞` (also `+\infty`), else `None`.
pub(crate) fn infinity_sign(e: &Expr) -> Option<i8> {
    match e {
        Expr::Const(Constant::Infinity) => Some(1),
        Expr::Neg(x) => infinity_sign(x).map(|s| -s),
        _ => None,
    }
}
