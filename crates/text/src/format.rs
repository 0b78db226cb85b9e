//! Format checks: a regex layout for the whole response, and JSON answers (valid JSON,
//! required fields, a small JSON-Schema subset).
//!
//! ```
//! use gristmill_text::format::{parse_json, JsonSource, Layout, Schema};
//! use serde_json::json;
//!
//! let layout = Layout::think_answer();
//! let m = layout.check("<think>2+2</think>\n<answer> 4 </answer>").unwrap();
//! assert_eq!(m.answer, Some("4"));
//! assert!(layout.check("4").is_err());
//!
//! let value = parse_json("Here:\n```json\n{\"n\": 3}\n```", JsonSource::Fenced).unwrap();
//! let schema = Schema::compile(&json!({
//!     "type": "object", "required": ["n"],
//!     "properties": {"n": {"type": "integer", "minimum": 0}}
//! })).unwrap();
//! assert!(schema.validate(&value).is_ok());
//! assert!(Schema::compile(&json!({"pattern": "^a"})).is_err()); // outside the subset
//! ```

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use regex::Regex;
use serde_json::Value;
use thiserror::Error;

use crate::error::ConfigError;

/// Why a response fails a format check.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum FormatError {
    /// The response does not have the required layout.
    #[error("the response does not match the required layout")]
    LayoutMismatch,
    /// No JSON found (an empty response, or [`JsonSource::Fenced`] with nothing in it).
    #[error("no JSON found")]
    NoJson,
    /// The JSON does not parse.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    InvalidJson {
        /// 1-based line in the JSON text.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A required field is absent.
    #[error("missing field '{path}'")]
    MissingField {
        /// The dotted path of the field.
        path: String,
    },
    /// The value violates the schema (every violation listed).
    #[error("schema violation: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Schema(Vec<SchemaViolation>),
}

/// A regex layout the whole response must match, with an optional answer group: the group
/// named `answer` if the pattern has one, else none.
#[derive(Clone, Debug)]
pub struct Layout {
    re: Regex,
    answer_group: Option<usize>,
}

/// A response that matched a [`Layout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutMatch<'a> {
    /// The answer group's text, trimmed (if the layout has one and it took part).
    pub answer: Option<&'a str>,
    /// Byte range of `answer` in the response.
    pub answer_range: Option<Range<usize>>,
}

impl Layout {
    /// `<think>…</think>` then `<answer>…</answer>`, nothing else but whitespace around
    /// them; the answer group is the content of `<answer>`.
    pub fn think_answer() -> Layout {
        Layout::new(r"(?s)\s*<think>.*?</think>\s*<answer>(?P<answer>.*?)</answer>\s*")
            .expect("static layout")
    }

    /// A layout from a pattern. The pattern must match the **whole** response (it is
    /// anchored here, so `<answer>.*</answer>` does not accept text around it); a group
    /// named `answer` marks the answer span. Use `(?s)` to let `.` cross lines.
    pub fn new(pattern: &str) -> Result<Layout, ConfigError> {
        let re = Regex::new(&format!(r"\A(?:{pattern})\z")).map_err(|source| ConfigError::InvalidRegex {
            pattern: pattern.to_string(),
            source: Box::new(source),
        })?;
        let answer_group = re.capture_names().position(|n| n == Some("answer"));
        Ok(Layout { re, answer_group })
    }

    /// Check `text` against the layout.
    pub fn check<'a>(&self, text: &'a str) -> Result<LayoutMatch<'a>, FormatError> {
        let caps = self.re.captures(text).ok_or(FormatError::LayoutMismatch)?;
        let span = self.answer_group.and_then(|g| caps.get(g)).map(|m| {
            let raw = m.as_str();
            let start = m.start() + (raw.len() - raw.trim_start().len());
            (raw.trim(), start)
        });
        Ok(LayoutMatch {
            answer: span.map(|(a, _)| a),
            answer_range: span.map(|(a, start)| start..start + a.len()),
        })
    }
}

/// Where the JSON is in a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum JsonSource {
    /// `"whole"`: the whole response (trimmed) is the JSON.
    Whole,
    /// `"fenced"` (default): the last ```` ```json ```` fenced block, else the last bare
    /// ```` ``` ```` block, else the whole response.
    #[default]
    Fenced,
}

impl FromStr for JsonSource {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim() {
            "whole" => Ok(JsonSource::Whole),
            "fenced" => Ok(JsonSource::Fenced),
            other => Err(ConfigError::UnknownValue {
                option: "json source",
                value: other.to_string(),
                expected: "whole, fenced",
            }),
        }
    }
}

/// Every closed ```` ``` ```` fenced block of `text`, in order, as `(tag, body)`: the tag is the
/// trimmed rest of the opening fence's line (`python`, `json`, or empty), the body what lies
/// between that line and the closing fence.
pub fn fenced_blocks(text: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let open = rest.find("```")?;
        let after = open + 3;
        let line_end = rest[after..].find('\n').map_or(rest.len(), |k| after + k);
        let tag = rest[after..line_end].trim();
        let body_start = (line_end + 1).min(rest.len());
        let close = rest[body_start..].find("```")?;
        let body = &rest[body_start..body_start + close];
        rest = &rest[body_start + close + 3..];
        Some((tag, body))
    })
}

/// The content of the last fenced block tagged `json` (any case), else of the last untagged
/// fence; `None` if there is no closed fence.
pub fn fenced_json(text: &str) -> Option<&str> {
    let (mut tagged, mut bare) = (None, None);
    for (tag, body) in fenced_blocks(text) {
        if tag.eq_ignore_ascii_case("json") {
            tagged = Some(body);
        } else if tag.is_empty() {
            bare = Some(body);
        }
    }
    tagged.or(bare)
}

/// Parse the response's JSON from `source`.
pub fn parse_json(text: &str, source: JsonSource) -> Result<Value, FormatError> {
    let json = match source {
        JsonSource::Whole => text,
        JsonSource::Fenced => fenced_json(text).unwrap_or(text),
    }
    .trim();
    if json.is_empty() {
        return Err(FormatError::NoJson);
    }
    serde_json::from_str(json).map_err(|e| FormatError::InvalidJson {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// Check that every dotted path (`"answer"`, `"result.value"`) leads to a present field.
pub fn require_fields(value: &Value, paths: &[&str]) -> Result<(), FormatError> {
    for path in paths {
        let mut at = value;
        for key in path.split('.') {
            at = at.get(key).ok_or_else(|| FormatError::MissingField { path: path.to_string() })?;
        }
    }
    Ok(())
}

/// One way a value breaks a schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaViolation {
    /// Where in the value, as a JSON pointer (`""` is the root).
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() { "/" } else { &self.path };
        write!(f, "{path}: {}", self.reason)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JsonType {
    Null,
    Boolean,
    Object,
    Array,
    Number,
    Integer,
    String,
}

impl JsonType {
    fn parse(s: &str) -> Option<JsonType> {
        Some(match s {
            "null" => JsonType::Null,
            "boolean" => JsonType::Boolean,
            "object" => JsonType::Object,
            "array" => JsonType::Array,
            "number" => JsonType::Number,
            "integer" => JsonType::Integer,
            "string" => JsonType::String,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Boolean => "boolean",
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::Number => "number",
            JsonType::Integer => "integer",
            JsonType::String => "string",
        }
    }

    fn admits(self, v: &Value) -> bool {
        match self {
            JsonType::Null => v.is_null(),
            JsonType::Boolean => v.is_boolean(),
            JsonType::Object => v.is_object(),
            JsonType::Array => v.is_array(),
            JsonType::Number => v.is_number(),
            // JSON Schema: an integer is a number with no fractional part, so 2.0 is one.
            JsonType::Integer => v.as_f64().is_some_and(|x| x.fract() == 0.0) || v.is_i64() || v.is_u64(),
            JsonType::String => v.is_string(),
        }
    }
}

/// A compiled schema of the supported subset: `type` (a name or a list), `properties`,
/// `required`, `enum`, `items` (one schema for every element), `minimum`, `maximum`.
/// Annotations (`title`, `description`, `$schema`, `$id`, `$comment`, `default`,
/// `examples`) are accepted and ignored; any other keyword is refused when compiling,
/// because silently ignoring a constraint would accept what the author meant to refuse.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    types: Option<Vec<JsonType>>,
    properties: Vec<(String, Schema)>,
    required: Vec<String>,
    enumeration: Option<Vec<Value>>,
    items: Option<Box<Schema>>,
    minimum: Option<f64>,
    maximum: Option<f64>,
}

const SUPPORTED: &str = "type, properties, required, enum, items, minimum, maximum";
const ANNOTATIONS: [&str; 7] = ["title", "description", "$schema", "$id", "$comment", "default", "examples"];

impl Schema {
    /// Compile a schema; unsupported keywords and malformed values are typed errors with
    /// their JSON pointer.
    pub fn compile(schema: &Value) -> Result<Schema, ConfigError> {
        compile_at(schema, "")
    }

    /// Every violation of the schema by `value`.
    pub fn validate(&self, value: &Value) -> Result<(), FormatError> {
        let mut out = Vec::new();
        self.check(value, "", &mut out);
        if out.is_empty() {
            Ok(())
        } else {
            Err(FormatError::Schema(out))
        }
    }

    fn check(&self, v: &Value, path: &str, out: &mut Vec<SchemaViolation>) {
        let mut fail = |reason: String| out.push(SchemaViolation { path: path.to_string(), reason });
        if let Some(types) = &self.types {
            if !types.iter().any(|t| t.admits(v)) {
                let names: Vec<_> = types.iter().map(|t| t.name()).collect();
                fail(format!("expected {}, found {}", names.join(" or "), kind_of(v)));
                return; // the other keywords would only repeat the type mismatch
            }
        }
        if let Some(allowed) = &self.enumeration {
            if !allowed.contains(v) {
                fail(format!("{v} is not one of the allowed values"));
            }
        }
        if let Some(x) = v.as_f64() {
            if let Some(min) = self.minimum.filter(|m| x < *m) {
                fail(format!("{x} is less than the minimum {min}"));
            }
            if let Some(max) = self.maximum.filter(|m| x > *m) {
                fail(format!("{x} is greater than the maximum {max}"));
            }
        }
        if let Some(obj) = v.as_object() {
            for key in &self.required {
                if !obj.contains_key(key) {
                    fail(format!("missing required property '{key}'"));
                }
            }
            for (key, sub) in &self.properties {
                if let Some(child) = obj.get(key) {
                    sub.check(child, &format!("{path}/{}", escape_pointer(key)), out);
                }
            }
        }
        if let (Some(arr), Some(items)) = (v.as_array(), &self.items) {
            for (i, child) in arr.iter().enumerate() {
                items.check(child, &format!("{path}/{i}"), out);
            }
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn compile_at(schema: &Value, path: &str) -> Result<Schema, ConfigError> {
    let invalid =
        |reason: &str| ConfigError::InvalidSchema { path: path.to_string(), reason: reason.to_string() };
    let obj = schema.as_object().ok_or_else(|| invalid("a schema must be an object"))?;
    let mut s = Schema {
        types: None,
        properties: Vec::new(),
        required: Vec::new(),
        enumeration: None,
        items: None,
        minimum: None,
        maximum: None,
    };
    for (key, value) in obj {
        let here = format!("{path}/{}", escape_pointer(key));
        match key.as_str() {
            "type" => {
                let names: Vec<&Value> = match value {
                    Value::Array(list) => list.iter().collect(),
                    single => vec![single],
                };
                let mut types = Vec::new();
                for name in names {
                    let t = name.as_str().and_then(JsonType::parse).ok_or_else(|| {
                        ConfigError::InvalidSchema {
                            path: here.clone(),
                            reason: format!("unknown type {name}"),
                        }
                    })?;
                    types.push(t);
                }
                s.types = Some(types);
            }
            "properties" => {
                let props = value.as_object().ok_or_else(|| ConfigError::InvalidSchema {
                    path: here.clone(),
                    reason: "properties must be an object".into(),
                })?;
                for (name, sub) in props {
                    s.properties
                        .push((name.clone(), compile_at(sub, &format!("{here}/{}", escape_pointer(name)))?));
                }
            }
            "required" => {
                let list = value.as_array().filter(|l| l.iter().all(Value::is_string)).ok_or_else(|| {
                    ConfigError::InvalidSchema {
                        path: here.clone(),
                        reason: "required must be a list of strings".into(),
                    }
                })?;
                s.required = list.iter().filter_map(|v| v.as_str().map(String::from)).collect();
            }
            "enum" => {
                let list = value.as_array().ok_or_else(|| ConfigError::InvalidSchema {
                    path: here.clone(),
                    reason: "enum must be a list".into(),
                })?;
                s.enumeration = Some(list.clone());
            }
            "items" => s.items = Some(Box::new(compile_at(value, &here)?)),
            "minimum" | "maximum" => {
                let bound = value.as_f64().ok_or_else(|| ConfigError::InvalidSchema {
                    path: here.clone(),
                    reason: format!("{key} must be a number"),
                })?;
                if key == "minimum" {
                    s.minimum = Some(bound);
                } else {
                    s.maximum = Some(bound);
                }
            }
            k if ANNOTATIONS.contains(&k) => {}
            other => {
                return Err(ConfigError::UnsupportedSchemaKeyword {
                    keyword: other.to_string(),
                    path: path.to_string(),
                    supported: SUPPORTED,
                })
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fenced_blocks_in_order_with_their_tags() {
        let text = "a\n```python\nx = 1\n```\nb ```\nplain\n``` c\n```json\n{}\n```\n```unclosed\n";
        let blocks: Vec<(&str, &str)> = fenced_blocks(text).collect();
        assert_eq!(blocks, [("python", "x = 1\n"), ("", "plain\n"), ("json", "{}\n")]);
        assert_eq!(fenced_blocks("no fences").count(), 0);
        assert_eq!(fenced_blocks("```one line```").count(), 0, "a fence's body starts on its next line");
        assert_eq!(fenced_json(text), Some("{}\n"));
    }

    #[test]
    fn layouts() {
        let think = Layout::think_answer();
        let text = "  <think>a\nb</think>\n\n<answer>\n 42 \n</answer>\n";
        let m = think.check(text).unwrap();
        assert_eq!(m.answer, Some("42"));
        assert_eq!(&text[m.answer_range.unwrap()], "42");
        for bad in ["<answer>1</answer>", "<think>x</think>", "pre <think>x</think><answer>1</answer>", ""] {
            assert_eq!(think.check(bad), Err(FormatError::LayoutMismatch), "{bad:?}");
        }
        let custom = Layout::new(r"Result: (?P<answer>\d+)").unwrap();
        assert_eq!(custom.check("Result: 17").unwrap().answer, Some("17"));
        assert!(custom.check("Result: 17 and more").is_err(), "the pattern must match the whole response");
        let no_group = Layout::new(r"[a-z]+").unwrap();
        assert_eq!(no_group.check("abc").unwrap().answer, None);
        let err = Layout::new("(?P<answer>").unwrap_err();
        assert!(err.to_string().contains("(?P<answer>"), "{err}");
    }

    #[test]
    fn json_sources() {
        let fenced = "text\n```json\n{\"a\": 1}\n```\nmore ```json\n{\"a\": 2}\n``` end";
        assert_eq!(parse_json(fenced, JsonSource::Fenced).unwrap(), json!({"a": 2}));
        assert!(matches!(parse_json(fenced, JsonSource::Whole), Err(FormatError::InvalidJson { .. })));
        assert_eq!(parse_json("```\n[1, 2]\n```", JsonSource::Fenced).unwrap(), json!([1, 2]));
        assert_eq!(parse_json(" {\"b\": true} ", JsonSource::Fenced).unwrap(), json!({"b": true}));
        assert_eq!(parse_json("   ", JsonSource::Whole), Err(FormatError::NoJson));
        let Err(FormatError::InvalidJson { line, column, .. }) =
            parse_json("{\n  \"a\": }", JsonSource::Whole)
        else {
            panic!("expected invalid JSON");
        };
        assert_eq!((line, column), (2, 8));
        assert_eq!(fenced_json("```json\nunclosed"), None);
        assert_eq!("fenced".parse::<JsonSource>().unwrap(), JsonSource::Fenced);
        assert!("yaml".parse::<JsonSource>().is_err());
    }

    #[test]
    fn required_fields() {
        let v = json!({"answer": 3, "work": {"steps": [1]}});
        assert!(require_fields(&v, &["answer", "work.steps"]).is_ok());
        assert_eq!(
            require_fields(&v, &["answer", "work.total"]),
            Err(FormatError::MissingField { path: "work.total".into() })
        );
    }

    #[test]
    fn schema_subset() {
        let schema = Schema::compile(&json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "answer",
            "type": "object",
            "required": ["answer", "confidence"],
            "properties": {
                "answer": {"type": ["integer", "string"]},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "unit": {"enum": ["cm", "m"]},
                "steps": {"type": "array", "items": {"type": "string"}}
            }
        }))
        .unwrap();
        assert!(schema.validate(&json!({"answer": 4, "confidence": 0.5})).is_ok());
        assert!(schema
            .validate(&json!({"answer": 4.0, "confidence": 1, "unit": "m", "steps": ["a"]}))
            .is_ok());
        let Err(FormatError::Schema(v)) =
            schema.validate(&json!({"answer": 4.5, "confidence": 2, "unit": "km", "steps": ["a", 3]}))
        else {
            panic!("expected violations");
        };
        let paths: Vec<&str> = v.iter().map(|x| x.path.as_str()).collect();
        // properties are checked in key order
        assert_eq!(paths, ["/answer", "/confidence", "/steps/1", "/unit"], "{v:?}");
        let Err(FormatError::Schema(v)) = schema.validate(&json!([1])) else { panic!() };
        assert_eq!(v[0].to_string(), "/: expected object, found array");
        let Err(FormatError::Schema(v)) = schema.validate(&json!({"answer": 1})) else { panic!() };
        assert_eq!(v[0].reason, "missing required property 'confidence'");
    }

    #[test]
    fn schema_errors_are_typed() {
        let err =
            Schema::compile(&json!({"properties": {"a": {"type": "string", "pattern": "x"}}})).unwrap_err();
        match &err {
            ConfigError::UnsupportedSchemaKeyword { keyword, path, .. } => {
                assert_eq!((keyword.as_str(), path.as_str()), ("pattern", "/properties/a"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(Schema::compile(&json!({"type": "float"})), Err(ConfigError::InvalidSchema { .. })));
        assert!(matches!(Schema::compile(&json!({"required": [1]})), Err(ConfigError::InvalidSchema { .. })));
        assert!(matches!(Schema::compile(&json!("string")), Err(ConfigError::InvalidSchema { .. })));
        assert!(matches!(
            Schema::compile(&json!({"additionalProperties": false})),
            Err(ConfigError::UnsupportedSchemaKeyword { .. })
        ));
    }
}
