//! Request-field deserializers that hold the server to its OpenAPI document: an integer
//! field takes any JSON number whose value is a whole number in range (JSON Schema's
//! `integer`, so `12.0` and `1e3` as well as `12`), and an optional field is either absent
//! or of its type, never `null`.

use std::fmt;

use serde::de::{Error, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};

/// 2^64 as a double: the first whole value past `u64::MAX`.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

struct Uint;

impl Visitor<'_> for Uint {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number from 0 to 18446744073709551615")
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    /// A number written with a fraction or an exponent is read as a double (as every JSON
    /// parser reads it); it counts if that double is whole and in range. Integers above
    /// 2^53 keep every digit only when written without a fraction or exponent.
    fn visit_f64<E: Error>(self, v: f64) -> Result<u64, E> {
        if v.fract() == 0.0 && (0.0..TWO_POW_64).contains(&v) {
            Ok(v as u64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
}

/// An integer field (`u64`).
pub(crate) fn uint<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(Uint)
}

/// An optional integer field: absent (with `#[serde(default)]`) or a whole number.
pub(crate) fn some_uint<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    uint(d).map(Some)
}

/// An optional field of any type: absent (with `#[serde(default)]`) or a `T`; `null` is
/// refused as `T` refuses it.
pub(crate) fn some<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Req {
        #[serde(deserialize_with = "uint")]
        n: u64,
        #[serde(default, deserialize_with = "some_uint")]
        m: Option<u64>,
        #[serde(default, deserialize_with = "some")]
        s: Option<String>,
    }

    fn parse(text: &str) -> Result<Req, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn integers_are_whole_numbers_in_any_spelling_and_null_is_not_absent() {
        for (text, n) in [
            ("0", 0),
            ("17808", 17808),
            ("17808.0", 17808),
            ("1e3", 1000),
            ("1.5e1", 15),
            ("-0.0", 0),
            ("18446744073709551615", u64::MAX),
            ("1.8446744073709550e19", 18_446_744_073_709_549_568),
        ] {
            assert_eq!(parse(&format!(r#"{{"n": {text}}}"#)), Ok(Req { n, m: None, s: None }), "{text}");
        }
        for text in ["-1", "1.5", "18446744073709551616", "1e300", "-1e3", "\"1\"", "null", "true"] {
            assert!(parse(&format!(r#"{{"n": {text}}}"#)).is_err(), "{text} accepted");
        }
        assert_eq!(
            parse(r#"{"n": 1, "m": 2.0, "s": "x"}"#),
            Ok(Req { n: 1, m: Some(2), s: Some("x".into()) })
        );
        let e = parse(r#"{"n": 1, "m": null}"#).unwrap_err();
        assert!(e.contains("null"), "{e}");
        assert!(parse(r#"{"n": 1, "s": null}"#).unwrap_err().contains("null"));
    }
}
