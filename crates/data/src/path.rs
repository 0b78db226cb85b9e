//! Dotted field paths (`answer.value`, `choices.0`) and their lookup in a JSON row.

use serde_json::{Map, Value};

use crate::error::{ErrorKind, FieldError};

/// A field addressed by a dotted path: `answer.value` is the key `value` of the object in the
/// column `answer`; a segment that is a number indexes a list (`answers.text.0`). Keys that
/// themselves contain a `.` cannot be addressed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses a dotted path. Every string is a path; an empty segment (`a..b`) matches no key.
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        let segments = text.split('.').map(str::to_owned).collect();
        FieldPath { text, segments }
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The top-level column the path starts in.
    pub fn column(&self) -> &str {
        &self.segments[0]
    }

    /// The path's segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The value at this path in `row`. A missing key is [`ErrorKind::Missing`] (naming the
    /// keys present where the lookup stopped); a null or scalar on the way is reported at the
    /// prefix that holds it.
    pub fn lookup<'a>(&self, row: &'a Map<String, Value>) -> Result<&'a Value, FieldError> {
        let mut current: Option<&Value> = None;
        for (depth, segment) in self.segments.iter().enumerate() {
            let next = match current {
                None => row.get(segment).ok_or_else(|| self.missing(keys(row)))?,
                Some(Value::Object(map)) => map.get(segment).ok_or_else(|| self.missing(keys(map)))?,
                Some(Value::Array(items)) => match segment.parse::<usize>() {
                    Ok(i) if i < items.len() => &items[i],
                    Ok(_) => return Err(self.missing(vec![format!("indices 0..{}", items.len())])),
                    Err(_) => {
                        return Err(FieldError::new(
                            self.prefix(depth),
                            ErrorKind::WrongType { expected: "an object", found: "an array" },
                        ))
                    }
                },
                Some(Value::Null) => return Err(FieldError::new(self.prefix(depth), ErrorKind::Null)),
                Some(other) => {
                    return Err(FieldError::new(
                        self.prefix(depth),
                        ErrorKind::WrongType { expected: "an object", found: json_type(other) },
                    ))
                }
            };
            current = Some(next);
        }
        Ok(current.expect("a path has at least one segment"))
    }

    fn missing(&self, available: Vec<String>) -> FieldError {
        FieldError::new(self.text.clone(), ErrorKind::Missing { available })
    }

    /// The first `n` segments, joined.
    fn prefix(&self, n: usize) -> String {
        self.segments[..n].join(".")
    }
}

impl From<&str> for FieldPath {
    fn from(s: &str) -> Self {
        FieldPath::new(s)
    }
}

impl From<String> for FieldPath {
    fn from(s: String) -> Self {
        FieldPath::new(s)
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// At most 20 keys of an object, sorted, for error messages.
pub(crate) fn keys(map: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<String> = map.keys().cloned().collect();
    keys.sort();
    keys.truncate(20);
    keys
}

/// The JSON type of a value, with its article, for error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn nested_and_indexed_lookup() {
        let r = row(json!({"answer": {"value": 3, "alts": ["x", "y"]}, "n": null}));
        assert_eq!(FieldPath::new("answer.value").lookup(&r).unwrap(), &json!(3));
        assert_eq!(FieldPath::new("answer.alts.1").lookup(&r).unwrap(), &json!("y"));
        let e = FieldPath::new("answer.unit").lookup(&r).unwrap_err();
        assert_eq!(e.field, "answer.unit");
        assert_eq!(e.kind.to_string(), "is missing; fields here: alts, value");
        let e = FieldPath::new("answer.alts.2").lookup(&r).unwrap_err();
        assert_eq!(e.kind.to_string(), "is missing; fields here: indices 0..2");
        let e = FieldPath::new("n.x").lookup(&r).unwrap_err();
        assert_eq!((e.field.as_str(), e.kind.to_string()), ("n", "is null".to_string()));
        let e = FieldPath::new("answer.value.x").lookup(&r).unwrap_err();
        assert_eq!(e.field, "answer.value");
        assert_eq!(e.kind.to_string(), "expected an object, found a number");
    }
}
