//! Allocation-free decimal-digit arithmetic shared by the verifiers, partial credit and the
//! reward model's feature map. Everything works on `unsigned_abs`, so `i64::MIN` is fine.

/// Number of decimal digits of `v` (`0` has one digit).
#[inline]
pub fn decimal_len(v: u64) -> u32 {
    v.checked_ilog10().map_or(1, |l| l + 1)
}

/// Per-position digit agreement of `answer` with `gold`, as a fraction in `[0, 1]`.
///
/// The decimal digits of `|answer|` and `|gold|` are right-aligned and the shorter is padded
/// with leading zeros to the longer length `L`. If either number is negative, the sign is one
/// more position (matching when both signs agree). The result is
/// `matching positions / positions`:
///
/// * `(42, 42) → 1`, `(42, 43) → 1/2`, `(5, 105) → 2/3` (units match, padded tens `0 = 0`),
/// * `(-42, 42) → 2/3` (two digits match, the sign does not), `(0, 10) → 1/2`.
///
/// Why the sign only counts when a negative is involved: for the many families whose answers
/// are all non-negative, an always-present sign position would match on every parsed answer
/// and hand out a constant floor (e.g. `1/3` for any wrong two-digit answer), turning part of
/// this channel into a format reward that `format_shaping` already provides.
#[inline]
pub fn digit_match_fraction(answer: i64, gold: i64) -> f64 {
    let (mut x, mut y) = (answer.unsigned_abs(), gold.unsigned_abs());
    let mut positions = 0u32;
    let mut matches = 0u32;
    loop {
        positions += 1;
        matches += u32::from(x % 10 == y % 10);
        x /= 10;
        y /= 10;
        if x == 0 && y == 0 {
            break;
        }
    }
    if answer < 0 || gold < 0 {
        positions += 1;
        matches += u32::from((answer < 0) == (gold < 0));
    }
    f64::from(matches) / f64::from(positions)
}

/// Whether the decimal digits of `value` occur as a contiguous substring of `text`.
/// Renders into a stack buffer (a `u64` has at most 20 digits), so it never allocates.
#[inline]
pub fn text_contains_decimal(text: &str, value: u64) -> bool {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = value;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // The buffer holds ASCII digits only, so this cannot fail; no unwrap on the hot path.
    match std::str::from_utf8(&buf[i..]) {
        Ok(needle) => text.contains(needle),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_lengths() {
        assert_eq!(decimal_len(0), 1);
        assert_eq!(decimal_len(9), 1);
        assert_eq!(decimal_len(10), 2);
        assert_eq!(decimal_len(99_999), 5);
        assert_eq!(decimal_len(u64::MAX), 20);
    }

    #[test]
    fn digit_match_cases() {
        assert_eq!(digit_match_fraction(42, 42), 1.0);
        assert_eq!(digit_match_fraction(42, 43), 0.5);
        assert_eq!(digit_match_fraction(17, 42), 0.0);
        assert_eq!(digit_match_fraction(5, 105), 2.0 / 3.0);
        assert_eq!(digit_match_fraction(105, 5), 2.0 / 3.0);
        assert_eq!(digit_match_fraction(0, 10), 0.5);
        assert_eq!(digit_match_fraction(0, 0), 1.0);
        assert_eq!(digit_match_fraction(-42, 42), 2.0 / 3.0);
        assert_eq!(digit_match_fraction(-42, -42), 1.0);
        assert_eq!(digit_match_fraction(-5, -6), 0.5);
        assert_eq!(digit_match_fraction(1234, 1299), 0.5);
        // Extremes do not overflow.
        assert_eq!(digit_match_fraction(i64::MIN, i64::MIN), 1.0);
        let f = digit_match_fraction(i64::MIN, i64::MAX);
        assert!(f.is_finite() && (0.0..=1.0).contains(&f));
    }

    #[test]
    fn substring_search() {
        assert!(text_contains_decimal("Answer: 142", 42));
        assert!(text_contains_decimal("42", 42));
        assert!(!text_contains_decimal("Answer: 4 2", 42));
        assert!(!text_contains_decimal("", 0));
        assert!(text_contains_decimal("x0", 0));
        assert!(text_contains_decimal("18446744073709551615", u64::MAX));
    }
}
