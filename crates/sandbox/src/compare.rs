//! The parent's comparisons: the only place a test can become a pass.

use serde_json::Value;

use crate::suite::{Expected, OutputMatch};

/// Does the child's serialized value `actual` match `expected`?
pub(crate) fn value_matches(expected: &Expected, actual: &str) -> bool {
    match expected {
        Expected::Repr(r) => r == actual,
        Expected::Json(v) => parse(actual).is_some_and(|a| json_eq(v, &a, 0.0)),
        Expected::JsonApprox { value, tolerance } => {
            parse(actual).is_some_and(|a| json_eq(value, &a, *tolerance))
        }
    }
}

fn parse(s: &str) -> Option<Value> {
    serde_json::from_str(s).ok()
}

fn num_eq(a: &serde_json::Number, b: &serde_json::Number, tol: f64) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x == y;
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y || (x - y).abs() <= tol * 1f64.max(x.abs().max(y.abs())),
        _ => false,
    }
}

/// Structural equality with numbers compared by value.
pub(crate) fn json_eq(a: &Value, b: &Value, tol: f64) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_eq(x, y, tol),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q, tol))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w, tol)))
        }
        _ => a == b,
    }
}

/// Does a program's stdout match the expected output?
pub(crate) fn output_matches(expected: &str, actual: &[u8], how: OutputMatch) -> bool {
    let actual = String::from_utf8_lossy(actual);
    match how {
        OutputMatch::Exact => expected == actual,
        OutputMatch::Lines => lines(expected).eq(lines(&actual)),
        OutputMatch::Tokens => expected.split_whitespace().eq(actual.split_whitespace()),
    }
}

fn lines(s: &str) -> impl Iterator<Item = &str> {
    let trimmed = s.trim_end();
    let mut it = trimmed.split('\n').map(|l| l.trim_end());
    let empty = trimmed.is_empty();
    std::iter::from_fn(move || if empty { None } else { it.next() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_but_bools_are_not_numbers() {
        assert!(value_matches(&Expected::Json(json!(5)), "5.0"));
        assert!(value_matches(&Expected::Json(json!([1, 2])), "[1, 2]"));
        assert!(!value_matches(&Expected::Json(json!(1)), "true"));
        assert!(!value_matches(&Expected::Json(json!(5)), "NaN"));
        assert!(value_matches(&Expected::Json(json!({"a": 1, "b": [2]})), r#"{"b": [2.0], "a": 1}"#));
        assert!(!value_matches(&Expected::Json(json!({"a": 1})), r#"{"a": 1, "b": 2}"#));
        assert!(!value_matches(&Expected::Json(json!(0.3)), "0.30000000000000004"));
        assert!(value_matches(
            &Expected::JsonApprox { value: json!(0.3), tolerance: 1e-9 },
            "0.30000000000000004"
        ));
        assert!(value_matches(&Expected::Repr("{1, 2}".into()), "{1, 2}"));
        assert!(!value_matches(&Expected::Json(json!(5)), "garbage"));
    }

    #[test]
    fn output_normalisation() {
        assert!(output_matches("1\n2\n", b"1  \r\n2\n\n\n", OutputMatch::Lines));
        assert!(!output_matches("1\n2\n", b"1\n\n2\n", OutputMatch::Lines));
        assert!(output_matches("", b"\n \n", OutputMatch::Lines));
        assert!(!output_matches("", b"x", OutputMatch::Lines));
        assert!(output_matches("1 2\n3", b"1\n2 3", OutputMatch::Tokens));
        assert!(!output_matches("1\n", b"1", OutputMatch::Exact));
    }
}
