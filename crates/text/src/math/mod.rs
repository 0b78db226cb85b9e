//! Math answer equivalence: parse a final answer written in LaTeX-ish notation and decide
//! whether it equals the gold answer.
//!
//! ```
//! use gristmill_text::math::{equivalent, Basis, MathOptions};
//!
//! let opts = MathOptions::default();
//! assert!(equivalent(r"\frac{1}{2}", "0.5", &opts).unwrap().equal);
//! assert!(equivalent(r"2\sqrt{3}", r"\sqrt{12}", &opts).unwrap().equal);
//! assert!(!equivalent("(1,2]", "(1,2)", &opts).unwrap().equal);
//! assert!(equivalent(r"\{1,2,3\}", r"\{3,1,2\}", &opts).unwrap().equal);
//! let v = equivalent("x^2-1", "(x-1)(x+1)", &opts).unwrap();
//! assert!(v.equal && v.basis == Basis::Points);
//! assert!(equivalent("x = 3", "3", &opts).unwrap().equal); // configurable: EquationPolicy
//! assert!(equivalent("10^{10^{10}}", "2", &opts).is_err()); // too large to decide: an error, at once
//! ```
//!
//! **What is compared how** (the [`Basis`] of a [`Verdict`]):
//!
//! * identical trees are equal (`Structural`), whatever they contain;
//! * two numbers without a decimal point are compared as exact rationals (`Exact`) —
//!   `\frac{6}{4}` = `1.5`'s exact value, `2^{10}` = `1024` — falling back to `f64` when an
//!   intermediate does not fit an `i128`;
//! * if either side is written with a decimal point (`0.333`), it is a rounded value and the
//!   sides are compared in `f64` with [`MathOptions::tolerance`] (`Numeric`); exact forms that
//!   are irrational (`\sqrt{2}`, `\pi`) are compared in `f64` with the much tighter
//!   [`MathOptions::symbolic`];
//! * expressions with variables are evaluated at five fixed points (`Points`), with the
//!   variables of both sides bound, so `x^2` and `y^2` differ;
//! * tuples are ordered; sets, bare lists (`1, 2`) and unions are order-insensitive;
//!   intervals compare their brackets and ends; a pair `(a, b)` is also the open interval;
//! * `x = 3` against `3` compares the right-hand side ([`EquationPolicy`]);
//! * `50\%` against `0.5` or `50`: either reading; `30^\circ` is `30`; units in `\text{}`
//!   or after a number (`5 cm`) are dropped; text answers compare as normalized strings.
//!
//! **Limits.** Inputs longer than [`Limits::max_bytes`], nested deeper than
//! [`Limits::max_depth`], or listing more than [`Limits::max_items`] items are refused with
//! an error; powers with exponents above [`Limits::max_exponent`] are not expanded exactly,
//! and a value too large for `f64` makes the comparison [`MathError::Undecidable`].

mod ast;
mod eval;
mod lex;
mod parse;

use std::str::FromStr;

use thiserror::Error;

pub use ast::{Constant, Expr, Func, Literal};

use crate::error::ConfigError;
use crate::number::Tolerance;

/// Guards that keep hostile input cheap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest answer parsed, in bytes (default 4096).
    pub max_bytes: usize,
    /// Deepest nesting (default 128; a parenthesis costs two levels).
    pub max_depth: usize,
    /// Largest integer exponent expanded exactly (default 4096).
    pub max_exponent: u64,
    /// Most items in one list, tuple, set or equation chain (default 256).
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 4096, max_depth: 128, max_exponent: 4096, max_items: 256 }
    }
}

/// What to do when exactly one side is an equation (`x = 3` against `3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EquationPolicy {
    /// `"rhs"` (default): compare the right-hand side of the equation — for the gold side
    /// only when it assigns a variable (`x = 3`, not `2x + y = 3`), as math benchmarks write
    /// gold answers that way.
    #[default]
    Rhs,
    /// `"strict"`: an equation only equals an equation.
    Strict,
}

impl FromStr for EquationPolicy {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim() {
            "rhs" => Ok(EquationPolicy::Rhs),
            "strict" => Ok(EquationPolicy::Strict),
            other => Err(ConfigError::UnknownValue {
                option: "equations",
                value: other.to_string(),
                expected: "rhs, strict",
            }),
        }
    }
}

/// How to compare.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MathOptions {
    /// Tolerance when either side is written with a decimal point or exponent. Default
    /// `abs 5e-7, rel 1e-9`: a value correctly rounded to six decimals is accepted.
    pub tolerance: Tolerance,
    /// Tolerance for exact forms compared in `f64` (irrational values, point evaluation,
    /// exact arithmetic that overflowed). Default `abs 1e-12, rel 1e-9`: only float noise.
    pub symbolic: Tolerance,
    /// `x = 3` against `3`.
    pub equations: EquationPolicy,
    /// Input guards.
    pub limits: Limits,
}

impl Default for MathOptions {
    fn default() -> Self {
        MathOptions {
            tolerance: Tolerance::default(),
            symbolic: Tolerance { abs: 1e-12, rel: 1e-9 },
            equations: EquationPolicy::Rhs,
            limits: Limits::default(),
        }
    }
}

/// Why an answer could not be parsed or compared.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MathError {
    /// Nothing to parse.
    #[error("empty answer")]
    Empty,
    /// Longer than [`Limits::max_bytes`].
    #[error("answer of {len} bytes is longer than the limit of {max}")]
    TooLong {
        /// The length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Nested deeper than [`Limits::max_depth`].
    #[error("answer nested deeper than the limit of {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// More items than [`Limits::max_items`].
    #[error("more than {max} items in one list")]
    TooManyItems {
        /// The limit.
        max: usize,
    },
    /// A token where it cannot be.
    #[error("unexpected '{found}' at byte {at}")]
    Unexpected {
        /// Byte offset.
        at: usize,
        /// What was found.
        found: String,
    },
    /// The answer stops in the middle.
    #[error("unexpected end of answer")]
    UnexpectedEnd,
    /// A LaTeX command this parser does not know.
    #[error("unknown command \\{name}")]
    UnknownCommand {
        /// The command, without the backslash.
        name: String,
    },
    /// A known form this parser deliberately does not handle.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What.
        what: &'static str,
    },
    /// Both sides parsed but they cannot be compared (a value beyond `f64`, an expression
    /// undefined at the evaluation points).
    #[error("cannot decide: {reason}")]
    Undecidable {
        /// Why.
        reason: &'static str,
    },
}

/// How a verdict was reached (for a structure, the weakest basis any element needed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Basis {
    /// The parsed trees are identical.
    Structural,
    /// Exact rational arithmetic.
    Exact,
    /// Normalized text.
    Text,
    /// `f64` values within a tolerance.
    Numeric,
    /// Evaluation at fixed points.
    Points,
}

/// The outcome of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the answers are equivalent.
    pub equal: bool,
    /// How that was decided.
    pub basis: Basis,
}

/// Parse an answer (surrounding `$`, `\boxed{}` and `\left`/`\right` are ignored).
pub fn parse(input: &str, limits: &Limits) -> Result<Expr, MathError> {
    if input.len() > limits.max_bytes {
        return Err(MathError::TooLong { len: input.len(), max: limits.max_bytes });
    }
    let tokens = lex::lex(input)?;
    parse::Parser::new(tokens, limits).parse_answer()
}

/// Parse both answers and compare them.
pub fn equivalent(gold: &str, answer: &str, opts: &MathOptions) -> Result<Verdict, MathError> {
    let gold = parse(gold, &opts.limits)?;
    let answer = parse(answer, &opts.limits)?;
    compare(&gold, &answer, opts)
}

/// Compare two parsed answers (parse the gold once and compare many responses to it).
pub fn compare(gold: &Expr, answer: &Expr, opts: &MathOptions) -> Result<Verdict, MathError> {
    let mut c = Comparer { opts, basis: Basis::Structural };
    let equal = c.top(gold, answer)?;
    Ok(Verdict { equal, basis: c.basis })
}

/// Fixed evaluation points: irrational-looking values of both signs, away from the
/// integers where factors like `x - 1` vanish.
const POINTS: [f64; 5] = [0.5772156649, 1.3247179572, -0.7390851332, 2.6854520011, -1.6180339887];

struct Comparer<'o> {
    opts: &'o MathOptions,
    basis: Basis,
}

fn is_assignment(sides: &[Expr]) -> bool {
    sides.len() >= 2 && matches!(sides[0], Expr::Var(_))
}

impl Comparer<'_> {
    fn used(&mut self, basis: Basis) {
        self.basis = self.basis.max(basis);
    }

    fn top(&mut self, g: &Expr, a: &Expr) -> Result<bool, MathError> {
        if g == a {
            return Ok(true);
        }
        let rhs = self.opts.equations == EquationPolicy::Rhs;
        match (g, a) {
            (Expr::Equation(_), Expr::Equation(_)) | (Expr::Member(..), Expr::Member(..)) => self.eq(g, a),
            (Expr::Equation(gs), _) if rhs && is_assignment(gs) => self.eq(gs.last().expect("two sides"), a),
            (Expr::Member(_, s), _) if rhs => self.eq(s, a),
            (_, Expr::Equation(sides)) if rhs => self.eq(g, sides.last().expect("two sides")),
            (_, Expr::Member(_, s)) if rhs => self.eq(g, s),
            _ => self.eq(g, a),
        }
    }

    fn eq(&mut self, g: &Expr, a: &Expr) -> Result<bool, MathError> {
        if g == a {
            return Ok(true);
        }
        use Expr::*;
        match (g, a) {
            (Set(x) | List(x), Set(y) | List(y)) | (Union(x), Union(y)) => self.same_members(x, y),
            (Tuple(x), Tuple(y)) => self.pairwise(x, y),
            (
                Interval { lo, hi, lo_closed, hi_closed },
                Interval { lo: lo2, hi: hi2, lo_closed: lc2, hi_closed: hc2 },
            ) => Ok(lo_closed == lc2 && hi_closed == hc2 && self.eq(lo, lo2)? && self.eq(hi, hi2)?),
            // A pair `(a, b)` is also the open interval from a to b.
            (Tuple(x), Interval { lo, hi, lo_closed: false, hi_closed: false })
            | (Interval { lo, hi, lo_closed: false, hi_closed: false }, Tuple(x))
                if x.len() == 2 =>
            {
                Ok(self.eq(&x[0], lo)? && self.eq(&x[1], hi)?)
            }
            (Equation(x), Equation(y)) => {
                let (x0, x1, y0, y1) = (&x[0], &x[x.len() - 1], &y[0], &y[y.len() - 1]);
                Ok((self.eq(x0, y0)? && self.eq(x1, y1)?) || (self.eq(x0, y1)? && self.eq(x1, y0)?))
            }
            (Member(x, s), Member(y, t)) => Ok(self.eq(x, y)? && self.eq(s, t)?),
            // a one-element set or list against its element
            (Set(x) | List(x), e) | (e, Set(x) | List(x)) if x.len() == 1 && !e.is_structure() => {
                self.eq(&x[0], e)
            }
            _ if g.is_structure() || a.is_structure() => Ok(false),
            _ => self.scalar(g, a),
        }
    }

    fn pairwise(&mut self, x: &[Expr], y: &[Expr]) -> Result<bool, MathError> {
        if x.len() != y.len() {
            return Ok(false);
        }
        for (p, q) in x.iter().zip(y) {
            if !self.eq(p, q)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Every member of each side equals some member of the other (so duplicates do not
    /// matter, as in a set).
    fn same_members(&mut self, x: &[Expr], y: &[Expr]) -> Result<bool, MathError> {
        for (xs, ys) in [(x, y), (y, x)] {
            for p in xs {
                let mut found = false;
                for q in ys {
                    // An undecidable pair is just not a match here; the other orders may match.
                    if self.eq(p, q).unwrap_or(false) {
                        found = true;
                        break;
                    }
                }
                if !found {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    fn scalar(&mut self, g: &Expr, a: &Expr) -> Result<bool, MathError> {
        if eval::has_text(g) || eval::has_text(a) {
            self.used(Basis::Text);
            return Ok(match (text_of(g), text_of(a)) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            });
        }
        if self.value_eq(g, a)? {
            return Ok(true);
        }
        // A percentage on one side only also matches its number: 50\% against 50.
        match (g, a) {
            (Expr::Percent(inner), other) if !matches!(other, Expr::Percent(_)) => {
                self.value_eq(inner, other)
            }
            (other, Expr::Percent(inner)) if !matches!(other, Expr::Percent(_)) => {
                self.value_eq(other, inner)
            }
            _ => Ok(false),
        }
    }

    fn value_eq(&mut self, g: &Expr, a: &Expr) -> Result<bool, MathError> {
        let lim = &self.opts.limits;
        let decimal = eval::has_decimal(g) || eval::has_decimal(a);
        let tol = if decimal { self.opts.tolerance } else { self.opts.symbolic };
        let mut vars = Vec::new();
        eval::collect_vars(g, &mut vars);
        eval::collect_vars(a, &mut vars);
        if vars.is_empty() {
            if eval::infinity_sign(g).is_some() || eval::infinity_sign(a).is_some() {
                self.used(Basis::Exact);
                return Ok(eval::infinity_sign(g) == eval::infinity_sign(a));
            }
            if !decimal {
                if let (Some(x), Some(y)) = (eval::exact(g, lim), eval::exact(a, lim)) {
                    self.used(Basis::Exact);
                    return Ok(x == y);
                }
            }
            let (x, y) = (eval::approx(g, &[], lim), eval::approx(a, &[], lim));
            if !(x.is_finite() && y.is_finite()) {
                return Err(MathError::Undecidable { reason: "a value is undefined or beyond f64" });
            }
            self.used(Basis::Numeric);
            return Ok(tol.close(x, y));
        }
        self.used(Basis::Points);
        let mut valid = 0;
        let mut env: Vec<(&str, f64)> = vars.iter().map(|v| (*v, 0.0)).collect();
        for k in 0..POINTS.len() {
            for (j, slot) in env.iter_mut().enumerate() {
                slot.1 = POINTS[(k + 2 * j) % POINTS.len()] + 0.31 * j as f64;
            }
            let (x, y) = (eval::approx(g, &env, lim), eval::approx(a, &env, lim));
            if !(x.is_finite() && y.is_finite()) {
                continue; // outside one side's domain at this point
            }
            valid += 1;
            if !tol.close(x, y) {
                return Ok(false);
            }
        }
        if valid < 3 {
            return Err(MathError::Undecidable { reason: "expressions undefined at the evaluation points" });
        }
        Ok(true)
    }
}

/// Text, a variable or a product of them as a lower-case string without spaces
/// (`\text{Monday}` and `Monday` — parsed as M·o·n·d·a·y — meet here).
fn text_of(e: &Expr) -> Option<String> {
    match e {
        Expr::Text(t) => Some(t.to_lowercase().split_whitespace().collect()),
        Expr::Var(v) => Some(v.to_lowercase()),
        Expr::Product(fs) => fs.iter().map(text_of).collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
