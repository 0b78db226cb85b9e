//! Numeric answers: parse the numbers people and models write, compare with a tolerance.
//!
//! ```
//! use gristmill_text::number::{parse_number, numeric_match, Tolerance};
//!
//! assert_eq!(parse_number("$1,234.50").unwrap().approx, 1234.5);
//! assert_eq!(parse_number("-1 1/2").unwrap().approx, -1.5);
//! assert_eq!(parse_number(r"1.2\times10^{3}").unwrap().approx, 1200.0);
//! assert!(parse_number("1,2").is_err()); // not a thousands separator
//! let tol = Tolerance::default();
//! assert!(numeric_match("0.75", "3/4", &tol).unwrap());
//! assert!(numeric_match("45", "45 km/h", &tol).unwrap());
//! assert!(numeric_match("50%", "0.5", &tol).unwrap());
//! assert!(!numeric_match("1000000", "1000001", &tol).unwrap()); // integers compare exactly
//! ```
//!
//! Accepted: an optional sign; currency before (`$`, `\$`, `€`, `£`, `¥`, `₹`, `USD `, `EUR `);
//! an integer, a decimal (`.5`, `3.`), thousands groups (`1,234,567`, `1{,}234`, thin spaces);
//! a fraction `3/4`, `\frac{3}{4}`; a mixed number `1 1/2`; scientific notation `1.2e3`,
//! `1.2 × 10^3`, `1.2\times10^{3}`, `1.2 \cdot 10^{-3}`; then optionally a percent sign
//! (`%`, `\%`, `percent`) and a unit (`cm`, `km/h`, `m^2`, `\text{ dollars}`) — any trailing
//! words without further digits, which are ignored.
//!
//! **Comparison.** A number written without a decimal point or exponent is exact (a
//! rational); two exact numbers are compared exactly. As soon as either side is written as a
//! decimal, it is a rounded measurement and the sides are compared with a [`Tolerance`]. A
//! percentage on one side only matches either reading (`50%` equals `0.5` and `50`), because
//! responses drop or keep the percent sign inconsistently.

use thiserror::Error;

use crate::error::ConfigError;
use crate::rational::{parse_decimal_digits, Rational};

/// An absolute/relative tolerance: `a` and `b` are close when
/// `|a - b| <= max(abs, rel · max(|a|, |b|))` (plus four ulps of `max(|a|, |b|)` for the
/// rounding of the subtraction itself).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Absolute tolerance.
    pub abs: f64,
    /// Relative tolerance.
    pub rel: f64,
}

impl Default for Tolerance {
    /// `abs = 5e-7, rel = 1e-9`: an answer correctly rounded to six decimals is accepted
    /// (its rounding error is at most 5e-7), one rounded wrongly in the sixth decimal is not;
    /// the relative part only absorbs float noise on large values.
    fn default() -> Self {
        Tolerance { abs: 5e-7, rel: 1e-9 }
    }
}

impl Tolerance {
    /// A tolerance from configuration; both parts must be finite and non-negative.
    pub fn new(abs: f64, rel: f64) -> Result<Tolerance, ConfigError> {
        for (name, v) in [("tolerance.abs", abs), ("tolerance.rel", rel)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ConfigError::OutOfRange {
                    name,
                    value: v.to_string(),
                    expected: "a finite number >= 0",
                });
            }
        }
        Ok(Tolerance { abs, rel })
    }

    /// Whether `a` and `b` are within this tolerance (equal infinities are close; NaN is
    /// close to nothing).
    pub fn close(&self, a: f64, b: f64) -> bool {
        if a == b {
            return true;
        }
        let diff = (a - b).abs();
        let scale = a.abs().max(b.abs());
        // A few ulps of slack so that a value exactly on the bound (0.0390625 written as
        // 0.039062, off by exactly 5e-7) is not refused by the rounding of the subtraction.
        diff.is_finite() && diff <= self.abs.max(self.rel * scale) + 4.0 * f64::EPSILON * scale
    }
}

/// A parsed number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number {
    /// The exact value when it fits an `i128` rational (a decimal is exact too: `0.1` is
    /// `1/10`).
    pub exact: Option<Rational>,
    /// The value as `f64` (always present, finite).
    pub approx: f64,
    /// Whether it was written with a decimal point or an exponent (a measurement, compared
    /// with a tolerance).
    pub decimal: bool,
    /// Whether it was written as a percentage; `exact`/`approx` are then already divided
    /// by 100.
    pub percent: bool,
}

/// Why a string is not a number.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NumberError {
    /// Nothing but whitespace (after currency and delimiters were removed).
    #[error("empty number")]
    Empty,
    /// Not a number in any accepted form.
    #[error("not a number: {reason}")]
    Malformed {
        /// What went wrong.
        reason: &'static str,
    },
    /// A number too large or too small for an `f64` (`1e400`).
    #[error("number out of range")]
    OutOfRange,
}

fn malformed(reason: &'static str) -> NumberError {
    NumberError::Malformed { reason }
}

/// Parse a number in any of the forms listed in the [module documentation](self).
pub fn parse_number(input: &str) -> Result<Number, NumberError> {
    if input.len() > 1024 {
        return Err(malformed("longer than 1024 bytes"));
    }
    let cleaned = clean(input);
    let mut p = Cursor { s: cleaned.trim(), i: 0 };
    if p.s.is_empty() {
        return Err(NumberError::Empty);
    }
    let mut negative = p.sign();
    p.currency();
    if !negative {
        negative = p.sign();
    }
    p.skip_ws();
    let (mut exact, mut approx, decimal) = p.magnitude()?;
    if negative {
        exact = exact.and_then(Rational::checked_neg);
        approx = -approx;
    }
    p.skip_ws();
    let percent = p.eat("%") || p.eat_word("percent");
    if percent {
        exact = exact.and_then(|v| v.checked_div(Rational::from_int(100)));
        approx /= 100.0;
    }
    p.unit()?;
    if !approx.is_finite() {
        return Err(NumberError::OutOfRange);
    }
    Ok(Number { exact, approx, decimal, percent })
}

/// Whether two numbers are equal under the rules in the [module documentation](self).
pub fn numbers_equal(gold: &Number, answer: &Number, tol: &Tolerance) -> bool {
    let same = |g: Option<Rational>, gf: f64, a: Option<Rational>, af: f64| match (g, a) {
        (Some(g), Some(a)) if !gold.decimal && !answer.decimal => g == a,
        _ => tol.close(gf, af),
    };
    if same(gold.exact, gold.approx, answer.exact, answer.approx) {
        return true;
    }
    // A percentage on one side only: also try its number without the "/ 100".
    let times100 =
        |n: &Number| (n.exact.and_then(|v| v.checked_mul(Rational::from_int(100))), n.approx * 100.0);
    match (gold.percent, answer.percent) {
        (true, false) => {
            let (g, gf) = times100(gold);
            same(g, gf, answer.exact, answer.approx)
        }
        (false, true) => {
            let (a, af) = times100(answer);
            same(gold.exact, gold.approx, a, af)
        }
        _ => false,
    }
}

/// Parse both sides and compare them; an unparseable side is an error (a verifier scores
/// it as wrong).
pub fn numeric_match(gold: &str, answer: &str, tol: &Tolerance) -> Result<bool, NumberError> {
    Ok(numbers_equal(&parse_number(gold)?, &parse_number(answer)?, tol))
}

/// Remove what never changes a number's value: math delimiters, escaped dollars, LaTeX
/// spacing, `\text{}` wrappers (their content stays, as a unit), `{,}` thousands commas,
/// thin and no-break spaces; map the Unicode minus and times signs to ASCII.
fn clean(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(c) = rest.chars().next() {
        let mut skip = c.len_utf8();
        match c {
            '$' | '\u{2009}' | '\u{202f}' | '\u{a0}' | '~' => {}
            '−' | '–' => out.push('-'),
            '×' | '·' | '⋅' => out.push('*'),
            '{' if rest.starts_with("{,}") => {
                out.push(',');
                skip = 3;
            }
            '\\' => {
                let name_len = rest[1..].find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len() - 1);
                let name = &rest[1..1 + name_len];
                match name {
                    "" => {
                        // `\$`, `\%`, `\,`, `\;`, `\!`, `\ `
                        let next = rest[1..].chars().next();
                        if next == Some('%') {
                            out.push('%');
                        }
                        skip = 1 + next.map_or(0, char::len_utf8);
                    }
                    "text" | "textrm" | "mathrm" | "textbf" | "mbox" | "textit" | "mathit" | "left"
                    | "right" | "displaystyle" | "quad" | "qquad" => {
                        // unwrap: drop the command, keep its braced content as plain text
                        out.push(' ');
                        skip = 1 + name_len;
                        let after = &rest[skip..];
                        if after.starts_with('{') {
                            if let Some(inner) = crate::extract::brace_group(after, 0) {
                                out.push_str(&after[inner.clone()]);
                                skip += inner.end + 1;
                            }
                        }
                    }
                    "times" | "cdot" => {
                        out.push('*');
                        skip = 1 + name_len;
                    }
                    _ => {
                        out.push('\\');
                        out.push_str(name);
                        skip = 1 + name_len;
                    }
                }
            }
            _ => out.push(c),
        }
        rest = &rest[skip..];
    }
    out
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl Cursor<'_> {
    fn rest(&self) -> &str {
        &self.s[self.i..]
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.i += token.len();
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let rest = self.rest();
        if rest.get(..word.len()).is_some_and(|head| head.eq_ignore_ascii_case(word))
            && !rest[word.len()..].starts_with(|c: char| c.is_ascii_alphabetic())
        {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.i += rest.len() - rest.trim_start().len();
    }

    fn sign(&mut self) -> bool {
        self.skip_ws();
        if self.eat("-") {
            true
        } else {
            self.eat("+");
            false
        }
    }

    fn currency(&mut self) {
        self.skip_ws();
        // Codes before symbols, so that "USD 5" is not read as "US" + "D 5".
        for code in ["USD", "EUR", "GBP"] {
            if self.eat_word(code) {
                return;
            }
        }
        for symbol in ["€", "£", "¥", "₹", "US"] {
            if self.eat(symbol) {
                return;
            }
        }
    }

    fn digits(&mut self) -> &str {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// An unsigned decimal with optional thousands groups: (int digits, fraction digits, had
    /// a decimal point).
    fn decimal(&mut self) -> Result<(String, String, bool), NumberError> {
        let mut int = self.digits().to_string();
        if self.peek() == Some(b',') {
            if int.is_empty() || int.len() > 3 {
                return Err(malformed("misplaced thousands separator"));
            }
            while self.peek() == Some(b',') {
                self.i += 1;
                let group = self.digits();
                if group.len() != 3 {
                    return Err(malformed("thousands groups have three digits"));
                }
                int.push_str(group);
            }
        }
        let mut frac = String::new();
        let mut point = false;
        if self.peek() == Some(b'.') && self.s.as_bytes().get(self.i + 1).is_none_or(|b| b.is_ascii_digit()) {
            self.i += 1;
            point = true;
            frac = self.digits().to_string();
        }
        if int.is_empty() && frac.is_empty() {
            return Err(malformed("no digits"));
        }
        Ok((int, frac, point))
    }

    /// The unsigned value: (exact, approx, decimal).
    fn magnitude(&mut self) -> Result<(Option<Rational>, f64, bool), NumberError> {
        for cmd in ["\\frac", "\\dfrac", "\\tfrac"] {
            if self.eat(cmd) {
                let num = self.braced()?;
                let den = self.braced()?;
                return divide(num, den);
            }
        }
        let (int, frac, point) = self.decimal()?;
        let mut value = literal(&int, &frac, point);
        let save = self.i;
        // mixed number `1 1/2`: an integer, spaces, a simple fraction
        if !point && self.peek() == Some(b' ') {
            self.skip_ws();
            let num = self.digits().to_string();
            if !num.is_empty() && self.eat("/") {
                let den = self.digits().to_string();
                if !den.is_empty() {
                    let whole = value;
                    let part = divide(literal(&num, "", false), literal(&den, "", false))?;
                    let exact = whole.0.zip(part.0).and_then(|(w, p)| w.checked_add(p));
                    return Ok((exact, whole.1 + part.1, false));
                }
            }
            self.i = save;
        }
        if self.eat("/") {
            self.skip_ws();
            let (dint, dfrac, dpoint) = self.decimal()?;
            return divide(value, literal(&dint, &dfrac, dpoint));
        }
        // exponent: e3, E-3, or × 10^3 / *10^{3}
        let mut exponent = None;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            let negative = self.eat("-");
            if !negative {
                self.eat("+");
            }
            let d = self.digits();
            if d.is_empty() {
                self.i = save;
            } else {
                exponent = Some((negative, d.to_string()));
            }
        } else {
            self.skip_ws();
            if self.eat("*") || self.eat_word("x") {
                self.skip_ws();
                if self.eat("10^") {
                    let braced = self.eat("{");
                    let negative = self.eat("-");
                    if !negative {
                        self.eat("+");
                    }
                    let d = self.digits().to_string();
                    if d.is_empty() || (braced && !self.eat("}")) {
                        return Err(malformed("bad power of ten"));
                    }
                    exponent = Some((negative, d));
                } else {
                    return Err(malformed("a product that is not a power of ten"));
                }
            } else {
                self.i = save;
            }
        }
        if let Some((negative, digits)) = exponent {
            let e: i32 = digits.parse().ok().filter(|e| *e <= 400).ok_or(NumberError::OutOfRange)?;
            let e = if negative { -e } else { e };
            let scale = Rational::from_int(10).checked_pow(e as i128, 400);
            value = (value.0.zip(scale).and_then(|(v, s)| v.checked_mul(s)), value.1 * 10f64.powi(e), true);
        }
        Ok(value)
    }

    fn braced(&mut self) -> Result<(Option<Rational>, f64, bool), NumberError> {
        self.skip_ws();
        if !self.eat("{") {
            return Err(malformed("\\frac needs braced arguments"));
        }
        let close = self.rest().find('}').ok_or(malformed("unclosed brace"))?;
        let inner = &self.rest()[..close];
        let n = parse_number(inner)?;
        self.i += close + 1;
        Ok((n.exact, n.approx, n.decimal))
    }

    /// What may follow a number: nothing, a trailing period, or a unit — words, `/`, `^`
    /// with its digits, `°` — with no other digit (so `3 and 4` is refused).
    fn unit(&mut self) -> Result<(), NumberError> {
        let rest = self.rest().trim();
        let rest = rest.strip_suffix('.').unwrap_or(rest);
        let mut after_caret = false;
        for c in rest.chars() {
            match c {
                '^' => after_caret = true,
                '0'..='9' if after_caret => {}
                c if c.is_alphabetic()
                    || matches!(c, ' ' | '/' | '.' | '°' | '²' | '³' | '-' | '{' | '}') =>
                {
                    after_caret = false
                }
                _ => return Err(malformed("trailing text after the number")),
            }
        }
        if rest.starts_with(['/', '-', '.']) {
            return Err(malformed("trailing text after the number"));
        }
        Ok(())
    }
}

fn literal(int: &str, frac: &str, point: bool) -> (Option<Rational>, f64, bool) {
    let exact = parse_decimal_digits(int, frac);
    let text = format!("{}.{}", if int.is_empty() { "0" } else { int }, frac);
    let approx = exact.map_or_else(|| text.parse::<f64>().unwrap_or(f64::NAN), |r| r.to_f64());
    (exact, approx, point)
}

fn divide(
    num: (Option<Rational>, f64, bool),
    den: (Option<Rational>, f64, bool),
) -> Result<(Option<Rational>, f64, bool), NumberError> {
    if den.1 == 0.0 {
        return Err(malformed("division by zero"));
    }
    let exact = num.0.zip(den.0).and_then(|(n, d)| n.checked_div(d));
    Ok((exact, num.1 / den.1, num.2 || den.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(s: &str) -> f64 {
        parse_number(s).unwrap_or_else(|e| panic!("{s:?}: {e}")).approx
    }

    #[test]
    fn forms() {
        let cases: &[(&str, f64)] = &[
            ("12", 12.0),
            ("-12", -12.0),
            ("+3", 3.0),
            ("−7", -7.0),
            ("3.25", 3.25),
            (".5", 0.5),
            ("5.", 5.0),
            ("1,234,567", 1234567.0),
            ("1,234.5", 1234.5),
            ("1{,}000", 1000.0),
            ("1\u{2009}000", 1000.0),
            ("3/4", 0.75),
            ("-3/4", -0.75),
            ("1 1/2", 1.5),
            ("-1 1/2", -1.5),
            (r"\frac{3}{4}", 0.75),
            (r"-\dfrac{1}{8}", -0.125),
            ("50%", 0.5),
            (r"12.5\%", 0.125),
            ("50 percent", 0.5),
            ("1.2e3", 1200.0),
            ("1.2E-3", 0.0012),
            ("1.2 × 10^3", 1200.0),
            (r"1.2\times10^{3}", 1200.0),
            (r"1.2 \cdot 10^{-3}", 0.0012),
            ("1.2*10^3", 1200.0),
            ("$5", 5.0),
            (r"\$5.50", 5.5),
            ("-$5", -5.0),
            ("$-5", -5.0),
            ("€20", 20.0),
            ("USD 20", 20.0),
            ("12 cm", 12.0),
            ("45 km/h", 45.0),
            ("9 m^2", 9.0),
            (r"12\text{ cm}", 12.0),
            (r"$12$", 12.0),
            ("100 dollars.", 100.0),
            ("30°", 30.0),
            ("7.", 7.0),
        ];
        for (s, want) in cases {
            assert!((val(s) - want).abs() < 1e-12, "{s:?} gave {} not {want}", val(s));
        }
    }

    #[test]
    fn refusals() {
        for s in [
            "", "  ", "abc", "1,2", "12,34", "1234,567", "3 and 4", "1/0", "1e400", "2 x 3", "1.2.3", "--5",
            "5/",
        ] {
            assert!(parse_number(s).is_err(), "{s:?} should not parse: {:?}", parse_number(s));
        }
        assert_eq!(parse_number("1e999"), Err(NumberError::OutOfRange));
    }

    #[test]
    fn exactness() {
        let third = parse_number("1/3").unwrap();
        assert_eq!(third.exact, Rational::new(1, 3));
        assert!(!third.decimal);
        assert!(parse_number("0.5").unwrap().decimal);
        assert!(parse_number("2e3").unwrap().decimal);
        let huge = parse_number("123456789012345678901234567890123456789012").unwrap();
        assert_eq!(huge.exact, None);
        assert!((huge.approx - 1.2345678901234568e41).abs() < 1e27);
    }

    #[test]
    fn comparison() {
        let tol = Tolerance::default();
        let yes = [
            ("0.5", "1/2"),
            ("1/3", "0.3333333"),
            ("1234567", "1,234,567"),
            ("-1.5", "-1 1/2"),
            ("1200", "1.2e3"),
            ("50%", "50"),
            ("50%", "0.5"),
            ("0.5", "50%"),
            ("5", "$5.00"),
        ];
        let no = [
            ("1/3", "0.333"),
            ("1000000", "1000001"),
            ("1.25", "1.2500006"),
            ("2/3", "0.666666"),
            ("50%", "5"),
            ("-5", "5"),
        ];
        for (g, a) in yes {
            assert!(numeric_match(g, a, &tol).unwrap(), "{g} vs {a}");
        }
        for (g, a) in no {
            assert!(!numeric_match(g, a, &tol).unwrap(), "{g} vs {a}");
        }
        assert!(numeric_match("1", "x", &tol).is_err());
        let loose = Tolerance::new(0.01, 0.0).unwrap();
        assert!(numeric_match("3.14159", "3.14", &loose).unwrap());
        assert!(Tolerance::new(-1.0, 0.0).is_err());
        assert!(Tolerance::new(0.0, f64::NAN).is_err());
    }
}
