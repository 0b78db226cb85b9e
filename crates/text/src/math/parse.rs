//! Recursive-descent parser from tokens to [`Expr`].
//!
//! Precedence, loosest first: `,` (a list) · `=` and `\in` · `\cup` · `+ -` · `× / ÷` and
//! implicit multiplication · unary `-` · `^` and postfix `% ! ^\circ` · primaries. Every
//! recursive step counts against [`Limits::max_depth`], and so does every postfix wrap, so
//! no input can build a tree deeper than the limit.

use super::ast::{Constant, Expr, Func, Literal};
use super::lex::{Tok, Token};
use super::{Limits, MathError};
use crate::rational::{parse_decimal_digits, Rational};

const UNIT_WORDS: &[&str] = &[
    "cm",
    "mm",
    "km",
    "m",
    "kg",
    "g",
    "mg",
    "lb",
    "lbs",
    "oz",
    "ft",
    "feet",
    "foot",
    "inch",
    "inches",
    "yd",
    "yards",
    "mi",
    "miles",
    "mile",
    "meter",
    "meters",
    "metres",
    "km/h",
    "mph",
    "kmh",
    "hr",
    "hrs",
    "hour",
    "hours",
    "min",
    "mins",
    "minute",
    "minutes",
    "sec",
    "secs",
    "seconds",
    "second",
    "days",
    "day",
    "weeks",
    "years",
    "year",
    "dollars",
    "dollar",
    "cents",
    "cent",
    "units",
    "unit",
    "sq",
    "square",
    "cubic",
    "degrees",
    "degree",
    "deg",
    "liters",
    "litres",
    "liter",
    "ml",
    "mL",
    "L",
    "people",
    "students",
    "ways",
    "inches",
    "pounds",
    "ounces",
    "grams",
    "kilograms",
    "meters",
    "cups",
    "apples",
    "marbles",
    "points",
    "percent",
];

const GREEK: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
];

pub(crate) struct Parser<'a> {
    toks: Vec<Token<'a>>,
    i: usize,
    depth: usize,
    limits: &'a Limits,
}

type R<T> = Result<T, MathError>;

impl<'a> Parser<'a> {
    pub(crate) fn new(toks: Vec<Token<'a>>, limits: &'a Limits) -> Self {
        Parser { toks, i: 0, depth: 0, limits }
    }

    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.i).map(|t| t.tok)
    }

    fn peek_at(&self, k: usize) -> Option<Tok<'a>> {
        self.toks.get(self.i + k).map(|t| t.tok)
    }

    fn eat(&mut self, tok: Tok<'_>) -> bool {
        if self.peek() == Some(tok) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn unexpected(&self) -> MathError {
        match self.toks.get(self.i) {
            Some(t) => MathError::Unexpected { at: t.at, found: describe(t.tok) },
            None => MathError::UnexpectedEnd,
        }
    }

    fn expect(&mut self, tok: Tok<'_>) -> R<()> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// Run `f` one nesting level deeper, refusing to go past the limit.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(MathError::TooDeep { max: self.limits.max_depth });
        }
        let out = f(self);
        self.depth -= 1;
        out
    }

    pub(crate) fn parse_answer(&mut self) -> R<Expr> {
        if self.toks.is_empty() {
            return Err(MathError::Empty);
        }
        let e = self.list()?;
        if self.i < self.toks.len() {
            return Err(self.unexpected());
        }
        Ok(e)
    }

    /// `item (, item)*` — a bare list if there is a comma.
    fn list(&mut self) -> R<Expr> {
        let items = self.items()?;
        Ok(if items.len() == 1 { items.into_iter().next().expect("one") } else { Expr::List(items) })
    }

    fn items(&mut self) -> R<Vec<Expr>> {
        let mut items = vec![self.item()?];
        while self.eat(Tok::Comma) {
            if items.len() >= self.limits.max_items {
                return Err(MathError::TooManyItems { max: self.limits.max_items });
            }
            items.push(self.item()?);
        }
        Ok(items)
    }

    fn item(&mut self) -> R<Expr> {
        let first = self.union()?;
        if self.eat(Tok::In) {
            return Ok(Expr::Member(Box::new(first), Box::new(self.union()?)));
        }
        if matches!(self.peek(), Some(Tok::Less(_) | Tok::Greater(_))) {
            return self.inequality(first);
        }
        if self.peek() != Some(Tok::Equals) {
            return Ok(first);
        }
        let mut sides = vec![first];
        while self.eat(Tok::Equals) {
            if sides.len() >= self.limits.max_items {
                return Err(MathError::TooManyItems { max: self.limits.max_items });
            }
            sides.push(self.union()?);
        }
        Ok(Expr::Equation(sides))
    }

    /// `x > 2`, `x \le 3`, `2 < x`, `1 < x \le 3`: the set of values of one variable, read
    /// as the interval it is (so it equals `(2, \infty)`).
    fn inequality(&mut self, first: Expr) -> R<Expr> {
        let mut sides = vec![first];
        let mut ops = Vec::new(); // (less, strict)
        while let Some(tok @ (Tok::Less(_) | Tok::Greater(_))) = self.peek() {
            self.i += 1;
            ops.push(match tok {
                Tok::Less(strict) => (true, strict),
                Tok::Greater(strict) => (false, strict),
                _ => unreachable!(),
            });
            sides.push(self.union()?);
        }
        let unsupported =
            MathError::Unsupported { what: "inequalities other than one variable against bounds" };
        let inf = |neg: bool| {
            let e = Expr::Const(Constant::Infinity);
            if neg {
                Expr::Neg(Box::new(e))
            } else {
                e
            }
        };
        let is_var = |e: &Expr| matches!(e, Expr::Var(_));
        match (sides.len(), ops.as_slice()) {
            (2, [(less, strict)]) => {
                let (var_left, bound) = if is_var(&sides[0]) {
                    (true, sides.pop().expect("two"))
                } else if is_var(&sides[1]) {
                    (false, sides.swap_remove(0))
                } else {
                    return Err(unsupported);
                };
                // x < b and b > x bound from above
                let above = *less == var_left;
                Ok(if above {
                    Expr::Interval {
                        lo: Box::new(inf(true)),
                        hi: Box::new(bound),
                        lo_closed: false,
                        hi_closed: !strict,
                    }
                } else {
                    Expr::Interval {
                        lo: Box::new(bound),
                        hi: Box::new(inf(false)),
                        lo_closed: !strict,
                        hi_closed: false,
                    }
                })
            }
            (3, [(l1, s1), (l2, s2)]) if l1 == l2 && is_var(&sides[1]) => {
                let hi = sides.pop().expect("three");
                let _var = sides.pop();
                let lo = sides.pop().expect("three");
                let (lo, hi, lo_strict, hi_strict) = if *l1 { (lo, hi, s1, s2) } else { (hi, lo, s2, s1) };
                Ok(Expr::Interval {
                    lo: Box::new(lo),
                    hi: Box::new(hi),
                    lo_closed: !lo_strict,
                    hi_closed: !hi_strict,
                })
            }
            _ => Err(unsupported),
        }
    }

    fn union(&mut self) -> R<Expr> {
        let first = self.sum()?;
        if self.peek() != Some(Tok::Cup) {
            return Ok(first);
        }
        let mut parts = vec![first];
        while self.eat(Tok::Cup) {
            parts.push(self.sum()?);
        }
        Ok(Expr::Union(parts))
    }

    /// Terms with `+` and `-`; one `\pm` (or `\mp`) makes the pair of both readings, a
    /// [`Expr::List`] (`1 \pm \sqrt{2}` is the two roots).
    fn sum(&mut self) -> R<Expr> {
        let mut pm: Option<(usize, bool)> = None; // (term index, plus first)
        let mut terms = Vec::new();
        let mut pm_sign = |p: &mut Self, terms: &Vec<Expr>| -> R<Option<bool>> {
            let plus_first = match p.peek() {
                Some(Tok::Cmd("pm")) => true,
                Some(Tok::Cmd("mp")) => false,
                _ => return Ok(None),
            };
            if pm.is_some() {
                return Err(MathError::Unsupported { what: "more than one \\pm" });
            }
            p.i += 1;
            pm = Some((terms.len(), plus_first));
            Ok(Some(plus_first))
        };
        pm_sign(self, &terms)?;
        terms.push(self.term()?);
        loop {
            if self.eat(Tok::Plus) {
                terms.push(self.term()?);
            } else if self.eat(Tok::Minus) {
                terms.push(Expr::Neg(Box::new(self.term()?)));
            } else if pm_sign(self, &terms)?.is_some() {
                terms.push(self.term()?);
            } else {
                break;
            }
        }
        let join = |mut terms: Vec<Expr>| {
            if terms.len() == 1 {
                terms.pop().expect("one")
            } else {
                Expr::Sum(terms)
            }
        };
        Ok(match pm {
            None => join(terms),
            Some((k, plus_first)) => {
                let mut minus = terms.clone();
                minus[k] = Expr::Neg(Box::new(minus[k].clone()));
                let (first, second) =
                    if plus_first { (join(terms), join(minus)) } else { (join(minus), join(terms)) };
                Expr::List(vec![first, second])
            }
        })
    }

    fn term(&mut self) -> R<Expr> {
        let mut factors = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(Tok::Times) => {
                    self.i += 1;
                    factors.push(self.unary()?);
                }
                Some(Tok::Slash) => {
                    self.i += 1;
                    factors.push(Expr::Recip(Box::new(self.unary()?)));
                }
                Some(Tok::Num(_)) if factors.len() == 1 && self.mixed_number_ahead(&factors[0]) => {
                    let whole = factors.pop().expect("one");
                    factors.push(self.mixed_number(whole)?);
                }
                Some(Tok::Cmd("frac"))
                    if factors.len() == 1 && self.latex_mixed_number_ahead(&factors[0]) =>
                {
                    // `2\frac{1}{3}` is the mixed number 7/3, as math benchmarks write it
                    self.i += 1;
                    let num = self.argument()?;
                    let den = self.argument()?;
                    let part = Expr::Product(vec![num, Expr::Recip(Box::new(den))]);
                    let whole = factors.pop().expect("one");
                    factors.push(match whole {
                        Expr::Neg(inner) => Expr::Neg(Box::new(Expr::Sum(vec![*inner, part]))),
                        e => Expr::Sum(vec![e, part]),
                    });
                }
                Some(Tok::Text(_)) => {
                    // a unit after a quantity: `5\text{ cm}`, `5\text{ cm}^2`
                    self.i += 1;
                    self.skip_unit_power()?;
                }
                Some(Tok::Word(w)) if UNIT_WORDS.contains(&w) => {
                    self.i += 1;
                    self.skip_unit_power()?;
                }
                Some(tok) if starts_implicit_factor(tok) => factors.push(self.power()?),
                _ => break,
            }
        }
        Ok(if factors.len() == 1 { factors.pop().expect("one") } else { Expr::Product(factors) })
    }

    fn skip_unit_power(&mut self) -> R<()> {
        if self.eat(Tok::Caret) {
            self.exponent()?;
        }
        Ok(())
    }

    /// `1 1/2` after the integer `1` (or `-1`): an integer with a space before it, `/`, an
    /// integer.
    fn mixed_number_ahead(&self, whole: &Expr) -> bool {
        let int_literal = |e: &Expr| matches!(e, Expr::Number(Literal { decimal: false, .. }));
        let whole_ok = match whole {
            Expr::Neg(inner) => int_literal(inner),
            e => int_literal(e),
        };
        let is_int =
            |t: Option<Tok<'_>>| matches!(t, Some(Tok::Num(s)) if s.bytes().all(|b| b.is_ascii_digit()));
        whole_ok
            && self.toks[self.i].space_before
            && is_int(self.peek())
            && self.peek_at(1) == Some(Tok::Slash)
            && is_int(self.peek_at(2))
    }

    /// `2\frac{1}{3}` after the integer `2` (or `-2`): `\frac` of two integer literals,
    /// braced or in the `\frac12` shorthand.
    fn latex_mixed_number_ahead(&self, whole: &Expr) -> bool {
        let int_literal = |e: &Expr| matches!(e, Expr::Number(Literal { decimal: false, .. }));
        let whole_ok = match whole {
            Expr::Neg(inner) => int_literal(inner),
            e => int_literal(e),
        };
        let digits =
            |t: Option<Tok<'_>>| matches!(t, Some(Tok::Num(s)) if s.bytes().all(|b| b.is_ascii_digit()));
        let braced = self.peek_at(1) == Some(Tok::LBrace)
            && digits(self.peek_at(2))
            && self.peek_at(3) == Some(Tok::RBrace)
            && self.peek_at(4) == Some(Tok::LBrace)
            && digits(self.peek_at(5))
            && self.peek_at(6) == Some(Tok::RBrace);
        let short = matches!(self.peek_at(1), Some(Tok::Num(s)) if s.len() == 2 && digits(self.peek_at(1)));
        whole_ok && (braced || short)
    }

    fn mixed_number(&mut self, whole: Expr) -> R<Expr> {
        let num = self.number()?;
        self.expect(Tok::Slash)?;
        let den = self.number()?;
        let part = Expr::Product(vec![num, Expr::Recip(Box::new(den))]);
        Ok(match whole {
            Expr::Neg(inner) => Expr::Neg(Box::new(Expr::Sum(vec![*inner, part]))),
            e => Expr::Sum(vec![e, part]),
        })
    }

    fn unary(&mut self) -> R<Expr> {
        self.nested(|p| {
            if p.eat(Tok::Minus) {
                Ok(Expr::Neg(Box::new(p.unary()?)))
            } else if p.eat(Tok::Plus) {
                p.unary()
            } else {
                p.power()
            }
        })
    }

    fn power(&mut self) -> R<Expr> {
        let mut base = self.primary()?;
        let mut wraps = 0usize;
        loop {
            base = match self.peek() {
                Some(Tok::Caret) => {
                    self.i += 1;
                    match self.exponent()? {
                        None => Expr::Degrees(Box::new(base)),
                        Some(e) => Expr::Pow(Box::new(base), Box::new(e)),
                    }
                }
                Some(Tok::Sup(n)) => {
                    self.i += 1;
                    Expr::Pow(Box::new(base), Box::new(int(n as i128)))
                }
                Some(Tok::Percent) => {
                    self.i += 1;
                    Expr::Percent(Box::new(base))
                }
                Some(Tok::Degree) => {
                    self.i += 1;
                    Expr::Degrees(Box::new(base))
                }
                Some(Tok::Bang) => {
                    self.i += 1;
                    Expr::Factorial(Box::new(base))
                }
                _ => break,
            };
            wraps += 1;
            if self.depth + wraps > self.limits.max_depth {
                return Err(MathError::TooDeep { max: self.limits.max_depth });
            }
        }
        Ok(base)
    }

    /// The exponent after `^`; `None` for the degree sign (`^\circ`, `^{\circ}`).
    fn exponent(&mut self) -> R<Option<Expr>> {
        self.nested(|p| match p.peek() {
            Some(Tok::Degree) => {
                p.i += 1;
                Ok(None)
            }
            Some(Tok::LBrace) if p.peek_at(1) == Some(Tok::Degree) && p.peek_at(2) == Some(Tok::RBrace) => {
                p.i += 3;
                Ok(None)
            }
            Some(Tok::LBrace) => {
                p.i += 1;
                let e = p.list()?;
                p.expect(Tok::RBrace)?;
                Ok(Some(e))
            }
            Some(Tok::Minus) => {
                p.i += 1;
                Ok(Some(Expr::Neg(Box::new(p.primary()?))))
            }
            // `2^10` is read as 2^{10}, the plain-text convention, not LaTeX's 2^{1}0.
            Some(Tok::Num(_)) => p.number().map(Some),
            _ => p.primary().map(Some),
        })
    }

    fn number(&mut self) -> R<Expr> {
        match self.peek() {
            Some(Tok::Num(s)) => {
                self.i += 1;
                Ok(Expr::Number(literal(s)))
            }
            _ => Err(self.unexpected()),
        }
    }

    /// A one-token argument of `\frac` or `\sqrt`: a brace group, or a single digit (LaTeX
    /// reads `\frac12` as `\frac{1}{2}`), a letter or a command.
    fn argument(&mut self) -> R<Expr> {
        self.nested(|p| match p.peek() {
            Some(Tok::LBrace) => {
                p.i += 1;
                let e = p.list()?;
                p.expect(Tok::RBrace)?;
                Ok(e)
            }
            Some(Tok::Num(s)) if s.len() > 1 && s.as_bytes()[0].is_ascii_digit() => {
                // take the first digit, leave the rest as the next token
                let (first, rest) = s.split_at(1);
                let t = &mut p.toks[p.i];
                t.tok = Tok::Num(rest);
                t.at += 1;
                t.space_before = false;
                Ok(Expr::Number(literal(first)))
            }
            Some(Tok::Num(_)) => p.number(),
            _ => p.primary(),
        })
    }

    fn primary(&mut self) -> R<Expr> {
        self.nested(|p| {
            let Some(tok) = p.peek() else { return Err(MathError::UnexpectedEnd) };
            match tok {
                Tok::Num(_) => p.number(),
                Tok::Ident(s) => {
                    p.i += 1;
                    Ok(if s == "e" { Expr::Const(Constant::E) } else { Expr::Var(s.to_string()) })
                }
                Tok::Word(w) => {
                    p.i += 1;
                    // a run of letters is implicit multiplication of one-letter variables
                    // (`xy`), except `e` on its own, which is Euler's number
                    Ok(Expr::Product(w.chars().map(|c| Expr::Var(c.to_string())).collect()))
                }
                Tok::Text(t) => {
                    p.i += 1;
                    Ok(Expr::Text(t.trim().to_string()))
                }
                Tok::Pi => {
                    p.i += 1;
                    Ok(Expr::Const(Constant::Pi))
                }
                Tok::Infinity => {
                    p.i += 1;
                    Ok(Expr::Const(Constant::Infinity))
                }
                Tok::Sqrt => {
                    p.i += 1;
                    Ok(Expr::Root(Box::new(p.argument_or_power()?), 2))
                }
                Tok::LParen | Tok::LBrack => p.bracketed(),
                Tok::LBrace => {
                    p.i += 1;
                    let e = p.list()?;
                    p.expect(Tok::RBrace)?;
                    Ok(e)
                }
                Tok::LSet => {
                    p.i += 1;
                    if p.eat(Tok::RSet) {
                        return Ok(Expr::Set(Vec::new()));
                    }
                    let items = p.items()?;
                    p.expect(Tok::RSet)?;
                    Ok(Expr::Set(items))
                }
                Tok::Pipe => {
                    p.i += 1;
                    let e = p.sum()?;
                    p.expect(Tok::Pipe)?;
                    Ok(Expr::Func(Func::Abs, Box::new(e)))
                }
                Tok::Cmd(name) => {
                    p.i += 1;
                    p.command(name)
                }
                _ => Err(p.unexpected()),
            }
        })
    }

    fn argument_or_power(&mut self) -> R<Expr> {
        match self.peek() {
            Some(Tok::LParen | Tok::LBrace) => self.primary(),
            _ => self.argument(),
        }
    }

    fn command(&mut self, name: &str) -> R<Expr> {
        let f = match name {
            "frac" => {
                let num = self.argument()?;
                let den = self.argument()?;
                return Ok(Expr::Product(vec![num, Expr::Recip(Box::new(den))]));
            }
            "sqrt" => {
                let mut n = 2;
                if self.eat(Tok::LBrack) {
                    n = match self.peek() {
                        Some(Tok::Num(s)) => s.parse::<u32>().ok().filter(|n| (1..=64).contains(n)),
                        _ => None,
                    }
                    .ok_or(MathError::Unsupported { what: "a root index other than an integer 1..=64" })?;
                    self.i += 1;
                    self.expect(Tok::RBrack)?;
                }
                return Ok(Expr::Root(Box::new(self.argument()?), n));
            }
            "binom" => {
                let n = self.argument()?;
                let k = self.argument()?;
                return Ok(Expr::Binom(Box::new(n), Box::new(k)));
            }
            "emptyset" | "varnothing" => return Ok(Expr::Set(Vec::new())),
            "sin" => Func::Sin,
            "cos" => Func::Cos,
            "tan" => Func::Tan,
            "ln" => Func::Ln,
            "exp" => Func::Exp,
            "log" if self.eat(Tok::Underscore) => {
                // `\log_b x` = ln x / ln b
                let base = self.argument()?;
                let arg = self.function_argument()?;
                return Ok(Expr::Product(vec![
                    Expr::Func(Func::Ln, Box::new(arg)),
                    Expr::Recip(Box::new(Expr::Func(Func::Ln, Box::new(base)))),
                ]));
            }
            "log" => Func::Log10,
            g if GREEK.contains(&g) => return Ok(Expr::Var(g.to_string())),
            "pm" | "mp" => return Err(MathError::Unsupported { what: "\\pm inside a product" }),
            "neq" | "ne" | "approx" => return Err(MathError::Unsupported { what: "\\neq and \\approx" }),
            "begin" | "end" | "matrix" | "pmatrix" | "bmatrix" => {
                return Err(MathError::Unsupported { what: "matrices" })
            }
            "choose" => return Err(MathError::Unsupported { what: "\\choose" }),
            "mathbb" | "mathcal" => return Err(MathError::Unsupported { what: "named sets (\\mathbb)" }),
            _ => return Err(MathError::UnknownCommand { name: name.to_string() }),
        };
        Ok(Expr::Func(f, Box::new(self.function_argument()?)))
    }

    /// `\sin x`, `\sin(x)`, `\ln{2}`, `\sin^2 x` is not supported (read as `(\sin 2) x`).
    fn function_argument(&mut self) -> R<Expr> {
        match self.peek() {
            Some(Tok::LParen | Tok::LBrace) => self.primary(),
            _ => self.power(),
        }
    }

    /// `( ... )` or `[ ... ]` with any closing bracket: a group, a tuple or an interval.
    fn bracketed(&mut self) -> R<Expr> {
        let open = self.peek();
        self.i += 1;
        let mut items = self.items()?;
        let close = self.peek();
        if !matches!(close, Some(Tok::RParen | Tok::RBrack)) {
            return Err(self.unexpected());
        }
        self.i += 1;
        let lo_closed = open == Some(Tok::LBrack);
        let hi_closed = close == Some(Tok::RBrack);
        match (items.len(), lo_closed == hi_closed) {
            (1, true) => Ok(items.pop().expect("one")),
            (2, _) if lo_closed || hi_closed => {
                let hi = items.pop().expect("two");
                let lo = items.pop().expect("two");
                Ok(Expr::Interval { lo: Box::new(lo), hi: Box::new(hi), lo_closed, hi_closed })
            }
            (n, true) if n >= 2 => Ok(Expr::Tuple(items)),
            _ => Err(MathError::Unsupported { what: "mismatched brackets" }),
        }
    }
}

fn starts_implicit_factor(tok: Tok<'_>) -> bool {
    match tok {
        Tok::Ident(_) | Tok::Word(_) | Tok::Pi | Tok::Sqrt | Tok::LParen | Tok::LBrace | Tok::Infinity => {
            true
        }
        // `\pm` belongs to the sum; every other command may start a factor, so that an
        // unsupported one reaches `command` and is reported as such
        Tok::Cmd(name) => !matches!(name, "pm" | "mp"),
        _ => false,
    }
}

fn int(n: i128) -> Expr {
    Expr::Number(Literal { exact: Some(Rational::from_int(n)), approx: n as f64, decimal: false })
}

/// The value of a number token: commas and `{,}` removed, exact when it fits.
pub(crate) fn literal(s: &str) -> Literal {
    let plain: String = s.replace("{,}", "").chars().filter(|&c| c != ',').collect();
    let (mantissa, exponent) = match plain.find(['e', 'E']) {
        Some(k) => (&plain[..k], plain[k + 1..].parse::<i32>().ok()),
        None => (plain.as_str(), None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let decimal = mantissa.contains('.') || exponent.is_some();
    let mut exact = parse_decimal_digits(int_part, frac_part);
    if let Some(e) = exponent {
        let scale = Rational::from_int(10).checked_pow(e as i128, 400);
        exact = exact.zip(scale).and_then(|(m, s)| m.checked_mul(s));
    }
    let approx = plain.parse::<f64>().unwrap_or(f64::NAN);
    Literal { exact, approx, decimal }
}

fn describe(tok: Tok<'_>) -> String {
    match tok {
        Tok::Num(s) | Tok::Ident(s) | Tok::Word(s) => s.to_string(),
        Tok::Cmd(s) => format!("\\{s}"),
        Tok::Text(s) => format!("\\text{{{s}}}"),
        other => format!("{other:?}"),
    }
}
