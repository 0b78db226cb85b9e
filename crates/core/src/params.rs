//! Declared, validated parameters: the difficulty knobs of a task family and the settings of
//! a piece kind.
//!
//! Families and piece kinds declare their parameters as a static table of [`ParamSpec`]s.
//! [`resolve`] checks a user's TOML table against that table (unknown names, wrong types,
//! out-of-range values), fills in defaults, and reports every problem with its field path.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::SpecProblem;

/// The type and allowed range of one parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    /// An integer in `min..=max`.
    Int {
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
        /// Value when not given.
        default: i64,
    },
    /// A finite float in `min..=max`.
    Float {
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
        /// Value when not given.
        default: f64,
    },
    /// One of a fixed set of words.
    Choice {
        /// Allowed words.
        options: &'static [&'static str],
        /// Value when not given.
        default: &'static str,
    },
    /// A list of finite non-negative floats (e.g. curriculum weights); empty means "not set".
    Weights,
    /// A string (a file path, a column name, a template, a regex); at most [`MAX_TEXT`]
    /// bytes and no NUL.
    Text {
        /// Value when not given.
        default: &'static str,
    },
    /// A structured value (a TOML table, list, string or number), passed to the piece as
    /// JSON for it to read with its own types (a judge's rubric); `null` when not given. At
    /// most [`MAX_TEXT`] bytes as JSON.
    Structured,
}

/// Longest accepted text parameter, in bytes: a template or a regex fits with room to spare,
/// and a spec cannot smuggle a megabyte blob into every stored run.
pub const MAX_TEXT: usize = 64 * 1024;

/// One declared parameter.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// Name as written in the spec.
    pub name: &'static str,
    /// Type, range and default.
    pub kind: ParamKind,
    /// One line for `gristmill tasks` and the docs.
    pub doc: &'static str,
}

impl ParamSpec {
    /// An integer knob.
    pub const fn int(name: &'static str, min: i64, max: i64, default: i64, doc: &'static str) -> Self {
        ParamSpec { name, kind: ParamKind::Int { min, max, default }, doc }
    }
    /// A float knob.
    pub const fn float(name: &'static str, min: f64, max: f64, default: f64, doc: &'static str) -> Self {
        ParamSpec { name, kind: ParamKind::Float { min, max, default }, doc }
    }
    /// A choice among words.
    pub const fn choice(
        name: &'static str,
        options: &'static [&'static str],
        default: &'static str,
        doc: &'static str,
    ) -> Self {
        ParamSpec { name, kind: ParamKind::Choice { options, default }, doc }
    }
    /// A list of weights.
    pub const fn weights(name: &'static str, doc: &'static str) -> Self {
        ParamSpec { name, kind: ParamKind::Weights, doc }
    }
    /// A structured parameter.
    pub const fn structured(name: &'static str, doc: &'static str) -> Self {
        ParamSpec { name, kind: ParamKind::Structured, doc }
    }
    /// A text parameter.
    pub const fn text(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        ParamSpec { name, kind: ParamKind::Text { default }, doc }
    }

    /// Human-readable range, e.g. `1..=6 (default 2)`.
    pub fn describe_range(&self) -> String {
        match self.kind {
            ParamKind::Int { min, max, default } => format!("integer {min}..={max} (default {default})"),
            ParamKind::Float { min, max, default } => {
                format!("number {}..={} (default {})", short(min), short(max), short(default))
            }
            ParamKind::Choice { options, default } => {
                format!("one of {} (default {default})", options.join("|"))
            }
            ParamKind::Weights => "list of non-negative numbers (default: none)".to_string(),
            ParamKind::Text { default: "" } => "text (default: none)".to_string(),
            ParamKind::Text { default } => format!("text (default {default:?})"),
            ParamKind::Structured => "a table or list (default: none)".to_string(),
        }
    }
}

/// `x` as written by a person: plain decimals for everyday magnitudes, exponent form for tiny
/// and huge ones (`f64::MIN_POSITIVE` is `2.2250738585072014e-308`, not 300 zeros).
fn short(x: f64) -> String {
    if x != 0.0 && !(1e-4..1e9).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A resolved parameter value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Word.
    Choice(String),
    /// Weights.
    Weights(Vec<f64>),
    /// Text.
    Text(String),
    /// A structured value, as JSON.
    Structured(serde_json::Value),
}

/// Resolved parameters: every declared name has a value (given or default).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Params {
    values: BTreeMap<String, ParamValue>,
}

impl Params {
    /// Integer parameter `name`; declared integers always resolve, so a missing or mistyped
    /// name is a programming error in the family, reported as 0 in release and caught by tests.
    pub fn int(&self, name: &str) -> i64 {
        match self.values.get(name) {
            Some(ParamValue::Int(v)) => *v,
            other => {
                debug_assert!(false, "parameter {name} is not an integer: {other:?}");
                0
            }
        }
    }
    /// Float parameter `name` (integers are widened).
    pub fn float(&self, name: &str) -> f64 {
        match self.values.get(name) {
            Some(ParamValue::Float(v)) => *v,
            Some(ParamValue::Int(v)) => *v as f64,
            other => {
                debug_assert!(false, "parameter {name} is not a number: {other:?}");
                0.0
            }
        }
    }
    /// Choice parameter `name`.
    pub fn choice(&self, name: &str) -> &str {
        match self.values.get(name) {
            Some(ParamValue::Choice(v)) => v,
            other => {
                debug_assert!(false, "parameter {name} is not a choice: {other:?}");
                ""
            }
        }
    }
    /// Weights parameter `name` (empty when not given).
    pub fn weights(&self, name: &str) -> &[f64] {
        match self.values.get(name) {
            Some(ParamValue::Weights(v)) => v,
            _ => &[],
        }
    }
    /// Text parameter `name` (empty when not given and without a default).
    pub fn text(&self, name: &str) -> &str {
        match self.values.get(name) {
            Some(ParamValue::Text(v)) => v,
            other => {
                debug_assert!(false, "parameter {name} is not text: {other:?}");
                ""
            }
        }
    }
    /// Structured parameter `name` (`null` when not given).
    pub fn structured(&self, name: &str) -> &serde_json::Value {
        match self.values.get(name) {
            Some(ParamValue::Structured(v)) => v,
            _ => &serde_json::Value::Null,
        }
    }
    /// Sets a value (used by trainable pieces and tests).
    pub fn set(&mut self, name: &str, value: ParamValue) {
        self.values.insert(name.to_string(), value);
    }
    /// All values in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }
    /// The defaults of a declaration table.
    pub fn defaults(specs: &[ParamSpec]) -> Params {
        let mut p = Params::default();
        for s in specs {
            p.values.insert(s.name.to_string(), default_of(s));
        }
        p
    }
}

fn default_of(s: &ParamSpec) -> ParamValue {
    match s.kind {
        ParamKind::Int { default, .. } => ParamValue::Int(default),
        ParamKind::Float { default, .. } => ParamValue::Float(default),
        ParamKind::Choice { default, .. } => ParamValue::Choice(default.to_string()),
        ParamKind::Weights => ParamValue::Weights(Vec::new()),
        ParamKind::Text { default } => ParamValue::Text(default.to_string()),
        ParamKind::Structured => ParamValue::Structured(serde_json::Value::Null),
    }
}

/// Checks `given` against `specs`; `path` is the field path of the table (e.g.
/// `source[0].knobs`). Returns the resolved parameters, or every problem found.
pub fn resolve(specs: &[ParamSpec], given: &toml::Table, path: &str) -> Result<Params, Vec<SpecProblem>> {
    let mut problems = Vec::new();
    let mut params = Params::defaults(specs);
    for (name, value) in given {
        let field = format!("{path}.{name}");
        let Some(spec) = specs.iter().find(|s| s.name == name) else {
            let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
            problems.push(SpecProblem::new(
                field,
                format!(
                    "unknown parameter `{name}`; known: {}",
                    if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
                ),
            ));
            continue;
        };
        match check_value(spec, value) {
            Ok(v) => {
                params.values.insert(name.clone(), v);
            }
            Err(msg) => problems.push(SpecProblem::new(field, msg)),
        }
    }
    if problems.is_empty() {
        Ok(params)
    } else {
        Err(problems)
    }
}

fn check_value(spec: &ParamSpec, value: &toml::Value) -> Result<ParamValue, String> {
    match spec.kind {
        ParamKind::Int { min, max, .. } => {
            let v = value
                .as_integer()
                .ok_or_else(|| format!("expected an integer, found {}", value.type_str()))?;
            if v < min || v > max {
                return Err(format!("{v} is out of range: expected {min}..={max}"));
            }
            Ok(ParamValue::Int(v))
        }
        ParamKind::Float { min, max, .. } => {
            let v = match value {
                toml::Value::Float(f) => *f,
                toml::Value::Integer(i) => *i as f64,
                other => return Err(format!("expected a number, found {}", other.type_str())),
            };
            if !v.is_finite() {
                return Err(format!("{v} is not finite"));
            }
            if v < min || v > max {
                return Err(format!("{v} is out of range: expected {min}..={max}"));
            }
            Ok(ParamValue::Float(v))
        }
        ParamKind::Choice { options, .. } => {
            let v = value.as_str().ok_or_else(|| format!("expected a string, found {}", value.type_str()))?;
            if !options.contains(&v) {
                return Err(format!("`{v}` is not one of {}", options.join(", ")));
            }
            Ok(ParamValue::Choice(v.to_string()))
        }
        ParamKind::Weights => {
            let arr = value
                .as_array()
                .ok_or_else(|| format!("expected a list of numbers, found {}", value.type_str()))?;
            let mut out = Vec::with_capacity(arr.len());
            for (i, item) in arr.iter().enumerate() {
                let v = match item {
                    toml::Value::Float(f) => *f,
                    toml::Value::Integer(n) => *n as f64,
                    other => return Err(format!("item {i}: expected a number, found {}", other.type_str())),
                };
                if !v.is_finite() || v < 0.0 {
                    return Err(format!("item {i}: {v} is not a finite non-negative weight"));
                }
                out.push(v);
            }
            Ok(ParamValue::Weights(out))
        }
        ParamKind::Text { .. } => {
            let v = value.as_str().ok_or_else(|| format!("expected a string, found {}", value.type_str()))?;
            if v.len() > MAX_TEXT {
                return Err(format!("{} bytes is longer than the {MAX_TEXT}-byte limit", v.len()));
            }
            if v.contains('\0') {
                return Err("contains a NUL byte".to_string());
            }
            Ok(ParamValue::Text(v.to_string()))
        }
        ParamKind::Structured => {
            let v = serde_json::to_value(value).map_err(|e| format!("cannot be read: {e}"))?;
            let len = v.to_string().len();
            if len > MAX_TEXT {
                return Err(format!("{len} bytes as JSON is longer than the {MAX_TEXT}-byte limit"));
            }
            Ok(ParamValue::Structured(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[ParamSpec] = &[
        ParamSpec::int("digits", 1, 6, 2, "operand digits"),
        ParamSpec::float("p", 0.0, 1.0, 0.5, "probability"),
        ParamSpec::choice("rule", &["a", "b"], "a", "rule"),
    ];

    #[test]
    fn defaults_fill_and_values_override() {
        let t: toml::Table = toml::from_str("digits = 3").unwrap();
        let p = resolve(SPECS, &t, "x").unwrap();
        assert_eq!(p.int("digits"), 3);
        assert_eq!(p.float("p"), 0.5);
        assert_eq!(p.choice("rule"), "a");
    }

    #[test]
    fn text_parameters_take_strings_and_refuse_nul_and_oversize() {
        const TEXT: &[ParamSpec] =
            &[ParamSpec::text("path", "", "file"), ParamSpec::text("fmt", "auto", "f")];
        let t: toml::Table = toml::from_str("path = 'a/b.jsonl'").unwrap();
        let p = resolve(TEXT, &t, "s").unwrap();
        assert_eq!(p.text("path"), "a/b.jsonl");
        assert_eq!(p.text("fmt"), "auto");
        let mut t = toml::Table::new();
        t.insert("path".into(), toml::Value::String("a\0b".into()));
        t.insert("fmt".into(), toml::Value::String("x".repeat(MAX_TEXT + 1)));
        let errs: Vec<String> = resolve(TEXT, &t, "s").unwrap_err().iter().map(|e| e.to_string()).collect();
        assert!(errs.iter().any(|m| m.starts_with("s.path: contains a NUL byte")), "{errs:?}");
        assert!(errs.iter().any(|m| m.starts_with("s.fmt: 65537 bytes is longer")), "{errs:?}");
        let t: toml::Table = toml::from_str("path = 3").unwrap();
        let errs = resolve(TEXT, &t, "s").unwrap_err();
        assert!(errs[0].to_string().contains("expected a string, found integer"), "{errs:?}");
        assert_eq!(ParamSpec::text("x", "", "").describe_range(), "text (default: none)");
    }

    #[test]
    fn structured_parameters_pass_tables_through_as_json() {
        const S: &[ParamSpec] = &[ParamSpec::structured("endpoint", "where")];
        let t: toml::Table =
            toml::from_str("endpoint = { url = 'http://x/v1', model = 'm', timeout_ms = 5 }").unwrap();
        let p = resolve(S, &t, "piece[0].params").unwrap();
        assert_eq!(
            p.structured("endpoint"),
            &serde_json::json!({"url": "http://x/v1", "model": "m", "timeout_ms": 5})
        );
        assert_eq!(Params::defaults(S).structured("endpoint"), &serde_json::Value::Null);
        let mut t = toml::Table::new();
        t.insert("endpoint".into(), toml::Value::String("y".repeat(MAX_TEXT)));
        let errs = resolve(S, &t, "p").unwrap_err();
        assert!(errs[0].to_string().starts_with("p.endpoint: 65538 bytes as JSON is longer"), "{errs:?}");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let t: toml::Table = toml::from_str("digits = 9\np = nan\nrule = 'c'\nzzz = 1").unwrap();
        let errs = resolve(SPECS, &t, "source[1].knobs").unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 4, "{text:?}");
        assert!(text.iter().any(|m| m.starts_with("source[1].knobs.digits: 9 is out of range")));
        assert!(text.iter().any(|m| m.starts_with("source[1].knobs.p: NaN is not finite")));
        assert!(text.iter().any(|m| m.contains("source[1].knobs.rule: `c` is not one of a, b")));
        assert!(text.iter().any(|m| m.contains("source[1].knobs.zzz: unknown parameter")));
    }
}
