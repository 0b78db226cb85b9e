//! The parsed form of a math answer.

use crate::rational::Rational;

/// A number as written: its exact value when it has one that fits, its `f64` value, and
/// whether it was written with a decimal point or an exponent (a rounded measurement).
#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    /// The exact value (`None` for integers with more than 38 digits).
    pub exact: Option<Rational>,
    /// The value as `f64`.
    pub approx: f64,
    /// Written with a decimal point or exponent.
    pub decimal: bool,
}

/// Named constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Constant {
    /// π (`\pi`, `π`).
    Pi,
    /// Euler's number (`e` on its own).
    E,
    /// ∞ (`\infty`, `∞`).
    Infinity,
}

/// Functions of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// `\sin`
    Sin,
    /// `\cos`
    Cos,
    /// `\tan`
    Tan,
    /// `\ln` (and `\log_b x` as `\ln x / \ln b`)
    Ln,
    /// `\log`, base 10
    Log10,
    /// `\exp`
    Exp,
    /// `|x|`
    Abs,
}

/// A math answer: a scalar expression or a structure of them.
///
/// Subtraction is a `Sum` with a `Neg` term and division a `Product` with a `Recip` factor,
/// so that sums and products are flat lists: a long chain `1+1+...+1` is one node, not a
/// deep tree, which keeps evaluation depth bounded by the parser's nesting limit.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A number.
    Number(Literal),
    /// π, e or ∞.
    Const(Constant),
    /// A variable (`x`, or a Greek letter by its name, `theta`).
    Var(String),
    /// Text that is not math (`\text{Monday}`), compared as a normalized string.
    Text(String),
    /// `-x`
    Neg(Box<Expr>),
    /// `a + b + ...`
    Sum(Vec<Expr>),
    /// `a · b · ...` (explicit or implicit multiplication)
    Product(Vec<Expr>),
    /// `1 / x`
    Recip(Box<Expr>),
    /// `base ^ exponent`
    Pow(Box<Expr>, Box<Expr>),
    /// The `n`-th root (`\sqrt{x}` has `n = 2`).
    Root(Box<Expr>, u32),
    /// A function applied to an argument.
    Func(Func, Box<Expr>),
    /// `n!`
    Factorial(Box<Expr>),
    /// `\binom{n}{k}`
    Binom(Box<Expr>, Box<Expr>),
    /// `x\%` — the value is `x / 100`.
    Percent(Box<Expr>),
    /// `x^\circ` — the value is `x` (degrees are dropped, as benchmarks do).
    Degrees(Box<Expr>),
    /// `a = b` (or a chain `a = b = c`).
    Equation(Vec<Expr>),
    /// `x \in S`
    Member(Box<Expr>, Box<Expr>),
    /// `(a, b, ...)` — an ordered tuple; a pair also reads as an open interval.
    Tuple(Vec<Expr>),
    /// `\{a, b, ...\}` — order-insensitive.
    Set(Vec<Expr>),
    /// `a, b, ...` without brackets — compared like a set, as benchmarks list solutions.
    List(Vec<Expr>),
    /// An interval with its ends.
    Interval {
        /// Lower end.
        lo: Box<Expr>,
        /// Upper end.
        hi: Box<Expr>,
        /// `[` rather than `(`.
        lo_closed: bool,
        /// `]` rather than `)`.
        hi_closed: bool,
    },
    /// `A \cup B \cup ...` — order-insensitive.
    Union(Vec<Expr>),
}

impl Expr {
    /// Whether this is a structure (tuple, set, list, interval, union, equation, membership)
    /// rather than a scalar expression.
    pub fn is_structure(&self) -> bool {
        matches!(
            self,
            Expr::Equation(_)
                | Expr::Member(..)
                | Expr::Tuple(_)
                | Expr::Set(_)
                | Expr::List(_)
                | Expr::Interval { .. }
                | Expr::Union(_)
        )
    }
}
