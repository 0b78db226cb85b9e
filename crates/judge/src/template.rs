//! Prompt templates: text with `{placeholder}`s, `{{` and `}}` for literal braces.
//!
//! | placeholder | renders to |
//! |---|---|
//! | `{prompt}` | the task prompt, as a fenced `PROMPT` block |
//! | `{response}` | the response under judgement, as a fenced `RESPONSE` block (required) |
//! | `{question}` | the rubric item's question, verbatim (required) |
//! | `{gold}` | the request's gold answer, as a fenced `REFERENCE` block; a request without one is an error |
//! | `{format}` | the item's verdict instruction ([`VerdictKind::instruction`](crate::VerdictKind::instruction)) |
//!
//! Fenced blocks are described in [`fence`](crate::fence). The question and the format come
//! from the rubric and are trusted; the prompt, response and gold answer are not.

use std::fmt;

use crate::error::ConfigError;

/// A placeholder a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    /// `{prompt}`.
    Prompt,
    /// `{response}`.
    Response,
    /// `{question}`.
    Question,
    /// `{gold}`.
    Gold,
    /// `{format}`.
    Format,
}

impl Placeholder {
    /// Every placeholder.
    pub const ALL: [Placeholder; 5] = [
        Placeholder::Prompt,
        Placeholder::Response,
        Placeholder::Question,
        Placeholder::Gold,
        Placeholder::Format,
    ];

    /// The name between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Prompt => "prompt",
            Placeholder::Response => "response",
            Placeholder::Question => "question",
            Placeholder::Gold => "gold",
            Placeholder::Format => "format",
        }
    }

    fn from_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.name())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Slot(Placeholder),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    segments: Vec<Segment>,
}

/// What the placeholders of one rendering stand for (fenced already where they must be).
pub(crate) struct Values<'a> {
    pub prompt: &'a str,
    pub response: &'a str,
    pub question: &'a str,
    pub gold: &'a str,
    pub format: &'a str,
}

impl Template {
    /// Parses `src`; `field` names it in errors (e.g. `template.user`).
    pub(crate) fn parse(field: &str, src: &str) -> Result<Template, ConfigError> {
        let bytes = src.as_bytes();
        let mut segments = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'{' if bytes.get(i + 1) == Some(&b'{') => {
                    text.push('{');
                    i += 2;
                }
                b'{' => {
                    let close =
                        bytes[i + 1..].iter().position(|&b| b == b'{' || b == b'}').map(|p| i + 1 + p);
                    let Some(j) = close.filter(|&j| bytes[j] == b'}') else {
                        return Err(ConfigError::UnclosedPlaceholder { field: field.into(), offset: i });
                    };
                    let name = &src[i + 1..j];
                    let Some(slot) = Placeholder::from_name(name) else {
                        return Err(ConfigError::UnknownPlaceholder {
                            field: field.into(),
                            name: name.into(),
                        });
                    };
                    if !text.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut text)));
                    }
                    segments.push(Segment::Slot(slot));
                    i = j + 1;
                }
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    text.push('}');
                    i += 2;
                }
                b'}' => return Err(ConfigError::UnmatchedBrace { field: field.into(), offset: i }),
                _ => {
                    let next = bytes[i..]
                        .iter()
                        .position(|&b| b == b'{' || b == b'}')
                        .map_or(bytes.len(), |p| i + p);
                    text.push_str(&src[i..next]);
                    i = next;
                }
            }
        }
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        Ok(Template { segments })
    }

    /// Whether the template uses `slot`.
    pub(crate) fn uses(&self, slot: Placeholder) -> bool {
        self.segments.contains(&Segment::Slot(slot))
    }

    /// The template with its placeholders replaced.
    pub(crate) fn render(&self, values: &Values<'_>) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            out.push_str(match segment {
                Segment::Text(t) => t,
                Segment::Slot(Placeholder::Prompt) => values.prompt,
                Segment::Slot(Placeholder::Response) => values.response,
                Segment::Slot(Placeholder::Question) => values.question,
                Segment::Slot(Placeholder::Gold) => values.gold,
                Segment::Slot(Placeholder::Format) => values.format,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values { prompt: "P", response: "R", question: "Q", gold: "G", format: "F" }
    }

    #[test]
    fn placeholders_and_escapes_render() {
        let t =
            Template::parse("t", "{prompt}|{response}|{question}|{gold}|{format}|{{x}} }}{{ é{{").unwrap();
        assert_eq!(t.render(&values()), "P|R|Q|G|F|{x} }{ é{");
        assert!(t.uses(Placeholder::Gold));
        let plain = Template::parse("t", "no slots, ünïcode").unwrap();
        assert_eq!(plain.render(&values()), "no slots, ünïcode");
        assert!(!plain.uses(Placeholder::Response));
        assert_eq!(Template::parse("t", "").unwrap().render(&values()), "");
    }

    #[test]
    fn bad_templates_are_named_errors() {
        let err = |src| Template::parse("template.user", src).unwrap_err();
        assert_eq!(
            err("a {answer} b"),
            ConfigError::UnknownPlaceholder { field: "template.user".into(), name: "answer".into() }
        );
        assert_eq!(
            err("{}"),
            ConfigError::UnknownPlaceholder { field: "template.user".into(), name: "".into() }
        );
        assert_eq!(
            err("{ prompt }"),
            ConfigError::UnknownPlaceholder { field: "template.user".into(), name: " prompt ".into() }
        );
        assert_eq!(
            err("ab {prompt"),
            ConfigError::UnclosedPlaceholder { field: "template.user".into(), offset: 3 }
        );
        assert_eq!(
            err("{pro{mpt}"),
            ConfigError::UnclosedPlaceholder { field: "template.user".into(), offset: 0 }
        );
        assert_eq!(err("x } y"), ConfigError::UnmatchedBrace { field: "template.user".into(), offset: 2 });
        let shown = err("{answer}").to_string();
        assert!(shown.contains("template.user") && shown.contains("`{answer}`"), "{shown}");
    }
}
