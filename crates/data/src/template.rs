//! Prompt templates: text with `{column}` placeholders (dotted paths allowed) and `{{` / `}}`
//! for literal braces.

use serde_json::{Map, Value};

use crate::error::{ErrorKind, FieldError, TemplateError};
use crate::path::FieldPath;

/// A parsed prompt template such as `"Solve: {question}\nAnswer in {{braces}}."`.
///
/// A variable is replaced by the row's value at that path: a string as it is, a number or a
/// boolean as JSON writes it, a list or an object as compact JSON. A missing variable is
/// [`ErrorKind::UnknownTemplateVariable`]; a null one is [`ErrorKind::Null`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(FieldPath),
}

impl Template {
    /// Parses a template; a lone brace or an empty `{}` is a [`TemplateError`] with its byte
    /// offset.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let bytes = source.as_bytes();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        let mut run = 0; // start of the pending literal run
        while i < bytes.len() {
            match bytes[i] {
                b'{' if bytes.get(i + 1) == Some(&b'{') => {
                    literal.push_str(&source[run..i]);
                    literal.push('{');
                    i += 2;
                    run = i;
                }
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    literal.push_str(&source[run..i]);
                    literal.push('}');
                    i += 2;
                    run = i;
                }
                b'{' => {
                    literal.push_str(&source[run..i]);
                    let start = i;
                    let close = loop {
                        i += 1;
                        match bytes.get(i) {
                            None => return Err(TemplateError::Unclosed(start)),
                            Some(b'}') => break i,
                            Some(b'{') => return Err(TemplateError::Nested(i)),
                            Some(_) => {}
                        }
                    };
                    let name = &source[start + 1..close];
                    if name.is_empty() {
                        return Err(TemplateError::Empty(start));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Variable(FieldPath::new(name)));
                    i = close + 1;
                    run = i;
                }
                b'}' => return Err(TemplateError::Unmatched(i)),
                _ => i += 1,
            }
        }
        literal.push_str(&source[run..]);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { source: source.to_owned(), parts })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables, in order of appearance (with repeats).
    pub fn variables(&self) -> impl Iterator<Item = &FieldPath> {
        self.parts.iter().filter_map(|p| match p {
            Part::Variable(path) => Some(path),
            Part::Literal(_) => None,
        })
    }

    /// Renders the template against one row.
    pub fn render(&self, row: &Map<String, Value>) -> Result<String, FieldError> {
        let mut out = String::with_capacity(self.source.len() + 64);
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(path) => {
                    let value = path.lookup(row).map_err(|e| match e.kind {
                        ErrorKind::Missing { available } => FieldError::new(
                            e.field,
                            ErrorKind::UnknownTemplateVariable { name: path.as_str().to_owned(), available },
                        ),
                        _ => e,
                    })?;
                    match value {
                        Value::String(s) => out.push_str(s),
                        Value::Null => {
                            return Err(FieldError::new(path.as_str(), ErrorKind::Null));
                        }
                        other => out.push_str(&other.to_string()),
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_escapes_and_paths() {
        let t = Template::parse("Q{{{q}}}: {a.b} and {n}; {{done}}").unwrap();
        let row = json!({"q": "why", "a": {"b": [1, "x"]}, "n": 2.5});
        let text = t.render(row.as_object().unwrap()).unwrap();
        assert_eq!(text, "Q{why}: [1,\"x\"] and 2.5; {done}");
        let names: Vec<&str> = t.variables().map(FieldPath::as_str).collect();
        assert_eq!(names, ["q", "a.b", "n"]);
    }

    #[test]
    fn syntax_errors_name_the_byte() {
        assert_eq!(Template::parse("a {b").unwrap_err(), TemplateError::Unclosed(2));
        assert_eq!(Template::parse("a } b").unwrap_err(), TemplateError::Unmatched(2));
        assert_eq!(Template::parse("x{}").unwrap_err(), TemplateError::Empty(1));
        assert_eq!(Template::parse("{a{b}}").unwrap_err(), TemplateError::Nested(2));
        assert_eq!(
            TemplateError::Unclosed(2).to_string(),
            "template: unclosed `{` at byte 2 (write `{{` for a literal brace)"
        );
        assert_eq!(
            TemplateError::Unmatched(2).to_string(),
            "template: unmatched `}` at byte 2 (write `}}` for a literal brace)"
        );
    }

    #[test]
    fn unknown_and_null_variables() {
        let t = Template::parse("{q} {r}").unwrap();
        let row = json!({"q": "x", "s": 1});
        let e = t.render(row.as_object().unwrap()).unwrap_err();
        assert_eq!(e.field, "r");
        assert_eq!(
            e.kind.to_string(),
            "unknown template variable {r}: the row has no such field; fields here: q, s"
        );
        let row = json!({"q": "x", "r": null});
        let e = t.render(row.as_object().unwrap()).unwrap_err();
        assert_eq!((e.field.as_str(), e.kind.to_string()), ("r", "is null".to_owned()));
    }
}
