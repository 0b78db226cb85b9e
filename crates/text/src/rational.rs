//! Exact rational numbers over `i128`, with every operation checked.
//!
//! Why not a big-integer crate: the answers math benchmarks use fit in 38 digits, and a
//! checked `i128` keeps the crate dependency-light and every operation O(1). When an
//! operation would overflow it returns `None`, and the callers fall back to a numeric
//! comparison with a stated tolerance: overflow never panics and never silently wraps.

use std::cmp::Ordering;
use std::fmt;

/// A rational number `num / den` in lowest terms with `den > 0`.
///
/// Because the representation is canonical, two rationals are equal exactly when their
/// fields are, so the derived `PartialEq`/`Eq`/`Hash` are exact equality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rational {
    num: i128,
    den: i128,
}

fn gcd(a: u128, b: u128) -> u128 {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Rational {
    /// Zero.
    pub const ZERO: Rational = Rational { num: 0, den: 1 };
    /// One.
    pub const ONE: Rational = Rational { num: 1, den: 1 };

    /// `num / den` reduced to lowest terms; `None` if `den == 0` or the reduced value does
    /// not fit (only `i128::MIN` in a position that must be negated).
    pub fn new(num: i128, den: i128) -> Option<Rational> {
        if den == 0 {
            return None;
        }
        if num == 0 {
            return Some(Rational::ZERO);
        }
        let g = gcd(num.unsigned_abs(), den.unsigned_abs());
        // g divides both magnitudes and g >= 1, so the quotients are at most the magnitudes;
        // only i128::MIN / 1 needs the checked negation below.
        let (mut n, mut d) = if g > 1 {
            let g = g as i128; // g <= |den| <= 2^127, and g == 2^127 only if both are MIN
            if g < 0 {
                // both num and den are i128::MIN
                return Some(Rational::ONE);
            }
            (num / g, den / g)
        } else {
            (num, den)
        };
        if d < 0 {
            n = n.checked_neg()?;
            d = d.checked_neg()?;
        }
        Some(Rational { num: n, den: d })
    }

    /// The integer `n`.
    pub const fn from_int(n: i128) -> Rational {
        Rational { num: n, den: 1 }
    }

    /// The numerator (carries the sign).
    pub const fn numer(&self) -> i128 {
        self.num
    }

    /// The denominator, always positive.
    pub const fn denom(&self) -> i128 {
        self.den
    }

    /// Whether the value is an integer.
    pub const fn is_integer(&self) -> bool {
        self.den == 1
    }

    /// Whether the value is zero.
    pub const fn is_zero(&self) -> bool {
        self.num == 0
    }

    /// The nearest `f64` (correct to within an ulp or two; exact for small values).
    pub fn to_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// `-self`, or `None` on overflow.
    pub fn checked_neg(self) -> Option<Rational> {
        Some(Rational { num: self.num.checked_neg()?, den: self.den })
    }

    /// `self + rhs`, or `None` on overflow.
    pub fn checked_add(self, rhs: Rational) -> Option<Rational> {
        // Divide by the gcd of the denominators first so that sums of ordinary fractions
        // stay far from the i128 limits.
        let g = gcd(self.den as u128, rhs.den as u128) as i128;
        let left = self.num.checked_mul(rhs.den / g)?;
        let right = rhs.num.checked_mul(self.den / g)?;
        let den = (self.den / g).checked_mul(rhs.den)?;
        Rational::new(left.checked_add(right)?, den)
    }

    /// `self - rhs`, or `None` on overflow.
    pub fn checked_sub(self, rhs: Rational) -> Option<Rational> {
        self.checked_add(rhs.checked_neg()?)
    }

    /// `self * rhs`, or `None` on overflow.
    pub fn checked_mul(self, rhs: Rational) -> Option<Rational> {
        // Cross-reduce before multiplying: (a/b)(c/d) = (a/g1 · c/g2) / (b/g2 · d/g1).
        let g1 = gcd(self.num.unsigned_abs(), rhs.den as u128).max(1) as i128;
        let g2 = gcd(rhs.num.unsigned_abs(), self.den as u128).max(1) as i128;
        let num = (self.num / g1).checked_mul(rhs.num / g2)?;
        let den = (self.den / g2).checked_mul(rhs.den / g1)?;
        Rational::new(num, den)
    }

    /// `1 / self`, or `None` for zero.
    pub fn checked_recip(self) -> Option<Rational> {
        Rational::new(self.den, self.num)
    }

    /// `self / rhs`, or `None` on overflow or division by zero.
    pub fn checked_div(self, rhs: Rational) -> Option<Rational> {
        self.checked_mul(rhs.checked_recip()?)
    }

    /// `self ^ exp` for an integer exponent with `|exp| <= max_exponent`, or `None` (overflow,
    /// `0^negative`, or an exponent over the limit). Binary exponentiation, so at most
    /// ~2·log2(exp) checked multiplications, and overflow is detected after at most 127
    /// squarings whatever the exponent.
    pub fn checked_pow(self, exp: i128, max_exponent: u64) -> Option<Rational> {
        if exp.unsigned_abs() > max_exponent as u128 {
            // 0, 1 and -1 have exact powers whatever the exponent.
            return match (self.num, self.den) {
                (0, _) if exp > 0 => Some(Rational::ZERO),
                (1, 1) => Some(Rational::ONE),
                (-1, 1) => Some(if exp % 2 == 0 { Rational::ONE } else { self }),
                _ => None,
            };
        }
        let base = if exp < 0 { self.checked_recip()? } else { self };
        let mut e = exp.unsigned_abs();
        let mut result = Rational::ONE;
        let mut square = base;
        while e > 0 {
            if e & 1 == 1 {
                result = result.checked_mul(square)?;
            }
            e >>= 1;
            if e > 0 {
                square = square.checked_mul(square)?;
            }
        }
        Some(result)
    }

    /// The exact `n`-th root if it is rational (`n >= 1`): `Some(r)` with `r^n == self`,
    /// choosing the non-negative root for even `n`; `None` if the root is irrational or
    /// not real.
    pub fn exact_root(self, n: u32) -> Option<Rational> {
        if n == 0 {
            return None;
        }
        if n == 1 {
            return Some(self);
        }
        if self.num < 0 && n % 2 == 0 {
            return None;
        }
        let num = int_root(self.num.unsigned_abs(), n)?;
        let den = int_root(self.den as u128, n)?;
        let num = i128::try_from(num).ok()?;
        let den = i128::try_from(den).ok()?;
        Rational::new(if self.num < 0 { -num } else { num }, den)
    }
}

/// The exact integer `n`-th root of `x`, if `x` is a perfect `n`-th power.
fn int_root(x: u128, n: u32) -> Option<u128> {
    if x < 2 {
        return Some(x);
    }
    // A float estimate, then a small search around it with exact checked arithmetic.
    let estimate = (x as f64).powf(1.0 / n as f64).round() as u128;
    let low = estimate.saturating_sub(2);
    for candidate in low..=estimate.saturating_add(2) {
        match candidate.checked_pow(n) {
            Some(p) if p == x => return Some(candidate),
            Some(p) if p > x => return None,
            None => return None,
            _ => {}
        }
    }
    None
}

impl PartialOrd for Rational {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Rational {
    fn cmp(&self, other: &Self) -> Ordering {
        // a/b vs c/d with b, d > 0: compare a·d with c·b; on overflow, compare in f64
        // (only reachable for values near the i128 limits).
        match (self.num.checked_mul(other.den), other.num.checked_mul(self.den)) {
            (Some(l), Some(r)) => l.cmp(&r),
            _ => self.to_f64().partial_cmp(&other.to_f64()).unwrap_or(Ordering::Equal),
        }
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

/// Parse an unsigned decimal digit string with an optional fractional part (`"12"`,
/// `"12.50"`, `".5"`) into an exact rational; `None` if it has more digits than `i128`
/// holds (the caller keeps the `f64` reading then).
pub(crate) fn parse_decimal_digits(int_part: &str, frac_part: &str) -> Option<Rational> {
    let mut num: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        debug_assert!(b.is_ascii_digit());
        num = num.checked_mul(10)?.checked_add((b - b'0') as i128)?;
    }
    let den = 10i128.checked_pow(u32::try_from(frac_part.len()).ok()?)?;
    Rational::new(num, den)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i128, d: i128) -> Rational {
        Rational::new(n, d).unwrap()
    }

    #[test]
    fn canonical_form() {
        assert_eq!(r(2, 4), r(1, 2));
        assert_eq!(r(-2, -4), r(1, 2));
        assert_eq!(r(2, -4), r(-1, 2));
        assert_eq!(r(0, -5), Rational::ZERO);
        assert_eq!(Rational::new(1, 0), None);
        assert_eq!(r(i128::MIN, i128::MIN), Rational::ONE);
        assert_eq!(Rational::new(i128::MIN, -1), None);
    }

    #[test]
    fn arithmetic() {
        assert_eq!(r(1, 2).checked_add(r(1, 3)), Some(r(5, 6)));
        assert_eq!(r(1, 2).checked_sub(r(1, 2)), Some(Rational::ZERO));
        assert_eq!(r(2, 3).checked_mul(r(9, 4)), Some(r(3, 2)));
        assert_eq!(r(2, 3).checked_div(r(4, 3)), Some(r(1, 2)));
        assert_eq!(r(2, 3).checked_div(Rational::ZERO), None);
        assert_eq!(r(2, 3).checked_pow(-2, 100), Some(r(9, 4)));
        assert_eq!(r(2, 1).checked_pow(126, 1000), Some(Rational::from_int(1 << 126)));
        assert_eq!(r(2, 1).checked_pow(127, 1000), None);
        assert_eq!(r(10, 1).checked_pow(10_000_000_000, 1000), None);
        assert_eq!(r(-1, 1).checked_pow(10_000_000_001, 1000), Some(r(-1, 1)));
        assert_eq!(Rational::ZERO.checked_pow(-1, 10), None);
    }

    #[test]
    fn overflow_is_none_not_panic() {
        let big = Rational::from_int(i128::MAX);
        assert_eq!(big.checked_add(Rational::ONE), None);
        assert_eq!(big.checked_mul(r(2, 1)), None);
        assert_eq!(Rational::from_int(i128::MIN).checked_neg(), None);
        assert!(big.checked_add(r(1, 3)).is_none());
        assert!(r(i128::MAX, 3).checked_add(r(1, i128::MAX)).is_none());
    }

    #[test]
    fn roots() {
        assert_eq!(r(8, 27).exact_root(3), Some(r(2, 3)));
        assert_eq!(r(-8, 1).exact_root(3), Some(r(-2, 1)));
        assert_eq!(r(-4, 1).exact_root(2), None);
        assert_eq!(r(12, 1).exact_root(2), None);
        assert_eq!(r(1, 4).exact_root(2), Some(r(1, 2)));
        let square = Rational::from_int(3_037_000_499i128 * 3_037_000_499i128);
        assert_eq!(square.exact_root(2), Some(Rational::from_int(3_037_000_499)));
    }

    #[test]
    fn ordering_and_decimals() {
        assert!(r(1, 3) < r(1, 2));
        assert!(r(-1, 2) < r(1, 3));
        assert_eq!(parse_decimal_digits("12", "50"), Some(r(25, 2)));
        assert_eq!(parse_decimal_digits("", "5"), Some(r(1, 2)));
        assert_eq!(parse_decimal_digits(&"9".repeat(40), ""), None);
    }
}
