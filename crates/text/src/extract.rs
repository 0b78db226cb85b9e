//! Answer extraction: find the span of a free-text response that holds its final answer.
//!
//! Every verifier starts here. An [`Extractor`] is built once from a name (`"boxed"`,
//! `"answer_line"`, ...) or a chain of names, and then applied to many responses; it returns
//! the answer as a slice of the response ([`Extraction`]) or a typed reason
//! ([`ExtractError`]): nothing of that form is present, or it is present but broken (an
//! unclosed `\boxed{`).
//!
//! ```
//! use gristmill_text::extract::Extractor;
//!
//! let chain = Extractor::parse("boxed,answer_is,last_number", None).unwrap();
//! let got = chain.extract("3 + 4 = 7, so the answer is $7$.").unwrap();
//! assert_eq!(got.answer, "7");
//! assert_eq!(chain.extract("no digits here").unwrap_err().to_string(), "no answer found (chain)");
//! ```
//!
//! Every extractor takes the **last** occurrence of its form: models restate, correct
//! themselves and show intermediate results before the final one, so the last one is the
//! answer they settled on.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::OnceLock;

use regex::Regex;
use thiserror::Error;

use crate::error::ConfigError;

/// The forms an [`Extractor`] can look for, by the name used in configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtractorKind {
    /// `"whole"`: the whole response, trimmed.
    Whole,
    /// `"answer_line"`: the rest of the last line that starts with `Answer:` (strict: this
    /// exact capitalisation, only leading whitespace before it).
    AnswerLine,
    /// `"boxed"`: the content of the last `\boxed{...}` (nested braces balanced; `\fbox`
    /// too), or the token after `\boxed ` (`\boxed 5`).
    Boxed,
    /// `"answer_is"`: what follows the last "answer is" / "answer:" phrase ("The final answer
    /// is $12$.", "**Answer:** 12", "the answer is: 12"), up to the end of the sentence.
    AnswerIs,
    /// `"last_latex"`: the content of the last `$...$`, `$$...$$`, `\(...\)` or `\[...\]`.
    LastLatex,
    /// `"last_number"`: the last number in the text (`-12`, `1,234.5`, `3/4`, `1.2e3`).
    LastNumber,
    /// `"regex"`: the last match of a user pattern (its first capture group if it has one).
    Regex,
    /// Several extractors tried in order; the first that finds an answer wins.
    Chain,
}

impl ExtractorKind {
    /// The names accepted by [`FromStr`] and [`Extractor::parse`], comma separated.
    pub const NAMES: &'static str = "whole, answer_line, boxed, answer_is, last_latex, last_number, regex";

    /// The configuration name of this kind.
    pub fn name(self) -> &'static str {
        match self {
            ExtractorKind::Whole => "whole",
            ExtractorKind::AnswerLine => "answer_line",
            ExtractorKind::Boxed => "boxed",
            ExtractorKind::AnswerIs => "answer_is",
            ExtractorKind::LastLatex => "last_latex",
            ExtractorKind::LastNumber => "last_number",
            ExtractorKind::Regex => "regex",
            ExtractorKind::Chain => "chain",
        }
    }
}

impl fmt::Display for ExtractorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExtractorKind {
    type Err = ConfigError;

    fn from_str(name: &str) -> Result<Self, ConfigError> {
        Ok(match name.trim() {
            "whole" => ExtractorKind::Whole,
            "answer_line" => ExtractorKind::AnswerLine,
            "boxed" => ExtractorKind::Boxed,
            "answer_is" => ExtractorKind::AnswerIs,
            "last_latex" => ExtractorKind::LastLatex,
            "last_number" => ExtractorKind::LastNumber,
            "regex" => ExtractorKind::Regex,
            other => {
                return Err(ConfigError::UnknownExtractor {
                    name: other.to_string(),
                    expected: ExtractorKind::NAMES,
                })
            }
        })
    }
}

/// Why no answer was extracted.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ExtractError {
    /// The response holds nothing of the form looked for.
    #[error("no answer found ({method})")]
    Missing {
        /// The extractor that looked.
        method: ExtractorKind,
    },
    /// The form is present but broken, e.g. `\boxed{` never closed or `Answer:` with nothing
    /// after it.
    #[error("malformed answer ({method}): {reason}")]
    Malformed {
        /// The extractor that found it.
        method: ExtractorKind,
        /// What is wrong.
        reason: &'static str,
    },
}

/// An extracted answer: a slice of the response and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extraction<'a> {
    /// The answer text, trimmed, borrowed from the response.
    pub answer: &'a str,
    /// Byte range of `answer` in the response.
    pub range: Range<usize>,
    /// The extractor that found it (for a chain, the member that succeeded).
    pub method: ExtractorKind,
}

/// A configured answer extractor.
#[derive(Clone, Debug)]
pub enum Extractor {
    /// One of the fixed forms (every kind but `Regex` and `Chain`).
    Fixed(ExtractorKind),
    /// A user regex: the last match, its first capture group if the pattern has one.
    Regex(Regex),
    /// Members tried in order.
    Chain(Vec<Extractor>),
}

impl Extractor {
    /// The chain math verifiers use by default: `boxed, answer_is, answer_line, last_latex,
    /// last_number` — the most explicit marker first.
    pub fn math_default() -> Extractor {
        Extractor::Chain(
            [
                ExtractorKind::Boxed,
                ExtractorKind::AnswerIs,
                ExtractorKind::AnswerLine,
                ExtractorKind::LastLatex,
                ExtractorKind::LastNumber,
            ]
            .into_iter()
            .map(Extractor::Fixed)
            .collect(),
        )
    }

    /// The extractor of one fixed kind by name; `"regex"` needs [`Extractor::regex`].
    pub fn named(name: &str) -> Result<Extractor, ConfigError> {
        match name.parse::<ExtractorKind>()? {
            ExtractorKind::Regex => Err(ConfigError::MissingPattern),
            kind => Ok(Extractor::Fixed(kind)),
        }
    }

    /// A regex extractor; the error names the pattern and what the regex engine said.
    pub fn regex(pattern: &str) -> Result<Extractor, ConfigError> {
        Regex::new(pattern).map(Extractor::Regex).map_err(|source| ConfigError::InvalidRegex {
            pattern: pattern.to_string(),
            source: Box::new(source),
        })
    }

    /// A chain of extractors tried in order; an empty chain is a configuration error.
    pub fn chain(members: Vec<Extractor>) -> Result<Extractor, ConfigError> {
        if members.is_empty() {
            return Err(ConfigError::EmptyChain);
        }
        Ok(Extractor::Chain(members))
    }

    /// Build from configuration: a comma-separated list of names (one name gives that
    /// extractor, several give a chain), where `regex` uses `pattern`.
    pub fn parse(spec: &str, pattern: Option<&str>) -> Result<Extractor, ConfigError> {
        let mut members = Vec::new();
        for name in spec.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            members.push(match name.parse::<ExtractorKind>()? {
                ExtractorKind::Regex => Extractor::regex(pattern.ok_or(ConfigError::MissingPattern)?)?,
                kind => Extractor::Fixed(kind),
            });
        }
        match members.len() {
            0 => Err(ConfigError::EmptyChain),
            1 => Ok(members.pop().expect("one member")),
            _ => Ok(Extractor::Chain(members)),
        }
    }

    /// The kind of this extractor.
    pub fn kind(&self) -> ExtractorKind {
        match self {
            Extractor::Fixed(kind) => *kind,
            Extractor::Regex(_) => ExtractorKind::Regex,
            Extractor::Chain(_) => ExtractorKind::Chain,
        }
    }

    /// Extract the answer from `text`.
    ///
    /// A chain returns the first member's success; if none succeeds it reports the first
    /// `Malformed` reason met (a broken box says more than "nothing found"), else `Missing`.
    pub fn extract<'a>(&self, text: &'a str) -> Result<Extraction<'a>, ExtractError> {
        match self {
            Extractor::Fixed(kind) => extract_fixed(*kind, text),
            Extractor::Regex(re) => extract_regex(re, text),
            Extractor::Chain(members) => {
                let mut malformed = None;
                for member in members {
                    match member.extract(text) {
                        Ok(found) => return Ok(found),
                        Err(e @ ExtractError::Malformed { .. }) => {
                            malformed.get_or_insert(e);
                        }
                        Err(ExtractError::Missing { .. }) => {}
                    }
                }
                Err(malformed.unwrap_or(ExtractError::Missing { method: ExtractorKind::Chain }))
            }
        }
    }
}

fn extract_fixed(kind: ExtractorKind, text: &str) -> Result<Extraction<'_>, ExtractError> {
    let range = match kind {
        ExtractorKind::Whole => Some(0..text.len()),
        ExtractorKind::AnswerLine => answer_line(text)?,
        ExtractorKind::Boxed => last_boxed(text)?,
        ExtractorKind::AnswerIs => answer_is(text)?,
        ExtractorKind::LastLatex => last_latex(text),
        ExtractorKind::LastNumber => number_spans(text).last(),
        ExtractorKind::Regex | ExtractorKind::Chain => unreachable!("not a fixed kind"),
    };
    let range = range.ok_or(ExtractError::Missing { method: kind })?;
    finish(text, range, kind)
}

/// Trim the span and refuse an empty one.
fn finish(text: &str, range: Range<usize>, method: ExtractorKind) -> Result<Extraction<'_>, ExtractError> {
    let raw = &text[range.clone()];
    let start = range.start + (raw.len() - raw.trim_start().len());
    let answer = raw.trim();
    if answer.is_empty() {
        return Err(match method {
            ExtractorKind::Whole | ExtractorKind::Regex => ExtractError::Missing { method },
            _ => ExtractError::Malformed { method, reason: "empty answer" },
        });
    }
    Ok(Extraction { answer, range: start..start + answer.len(), method })
}

fn extract_regex<'a>(re: &Regex, text: &'a str) -> Result<Extraction<'a>, ExtractError> {
    let method = ExtractorKind::Regex;
    let caps = re.captures_iter(text).last().ok_or(ExtractError::Missing { method })?;
    // The first capture group if the pattern has one and it took part in the match.
    let m = caps.get(1).or_else(|| caps.get(0)).expect("group 0 always matches");
    finish(text, m.range(), method)
}

fn answer_line(text: &str) -> Result<Option<Range<usize>>, ExtractError> {
    const PREFIX: &str = "Answer:";
    let mut offset = text.len();
    for line in text.rsplit('\n') {
        offset -= line.len();
        let line_start = offset;
        offset = offset.saturating_sub(1); // the '\n'
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix(PREFIX) {
            if rest.trim().is_empty() {
                return Err(ExtractError::Malformed {
                    method: ExtractorKind::AnswerLine,
                    reason: "nothing after 'Answer:'",
                });
            }
            let start = line_start + (line.len() - rest.len());
            return Ok(Some(start..line_start + line.len()));
        }
    }
    Ok(None)
}

/// The byte range of the content of the brace group opening at `open` (`text[open] == '{'`),
/// or `None` if it never closes. `\{` and `\}` are escaped braces and do not count.
pub(crate) fn brace_group(text: &str, open: usize) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    debug_assert_eq!(bytes[open], b'{');
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1, // skip the escaped byte (ASCII, so never inside a UTF-8 sequence)
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + 1..i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn last_boxed(text: &str) -> Result<Option<Range<usize>>, ExtractError> {
    let method = ExtractorKind::Boxed;
    let found = [("\\boxed", text.rfind("\\boxed")), ("\\fbox", text.rfind("\\fbox"))]
        .into_iter()
        .filter_map(|(name, at)| at.map(|at| at + name.len()))
        .max();
    let Some(after) = found else { return Ok(None) };
    let rest = &text[after..];
    let body = rest.trim_start_matches([' ', '\t']);
    let at = after + (rest.len() - body.len());
    if body.starts_with('{') {
        return brace_group(text, at)
            .map(Some)
            .ok_or(ExtractError::Malformed { method, reason: "unclosed \\boxed{" });
    }
    // `\boxed 5`: the next whitespace-delimited token, only if there was a space (so that
    // `\boxedx` is not read as a box).
    if at > after {
        let end = body.find(|c: char| c.is_whitespace() || c == '$').unwrap_or(body.len());
        let token = body[..end].trim_end_matches(['.', ',', ';']);
        if !token.is_empty() {
            return Ok(Some(at..at + token.len()));
        }
    }
    Err(ExtractError::Malformed { method, reason: "\\boxed without content" })
}

fn answer_phrase() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // "answer" + ("is" | ":" | "="), optionally bold: "answer is", "Answer:", "**Answer:**",
    // "final answer is:", "answer =". A bare "answer" is not enough ("the answer we want").
    RE.get_or_init(|| Regex::new(r"(?i)\banswer\s*(?:\*\*|__)?\s*(?:is\b|:|=)").expect("static regex"))
}

fn answer_is(text: &str) -> Result<Option<Range<usize>>, ExtractError> {
    let method = ExtractorKind::AnswerIs;
    let Some(m) = answer_phrase().find_iter(text).last() else { return Ok(None) };
    let after = m.end();
    let rest = &text[after..];
    let body = rest.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '*' | '_' | ':'));
    let at = after + (rest.len() - body.len());
    let unclosed = ExtractError::Malformed { method, reason: "unclosed math delimiter" };
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(inner) = body.strip_prefix(open) {
            let end = inner.find(close).ok_or(unclosed)?;
            let start = at + open.len();
            return Ok(Some(start..start + end));
        }
    }
    if body.starts_with("\\boxed") || body.starts_with("\\fbox") {
        return last_boxed(&text[..sentence_end(text, at)]);
    }
    Ok(Some(at..sentence_end(text, at)))
}

/// Where the sentence starting at `start` ends: a newline, a closing `**`, or a `.`, `;` or
/// `!` followed by whitespace or the end. Braces are skipped whole so that a period inside
/// `\text{...}` does not end it; trailing punctuation is dropped.
fn sentence_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = start;
    let mut depth = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b'\n' => break,
            b'*' if depth == 0 && bytes.get(i + 1) == Some(&b'*') => break,
            b'.' | b';' | b'!' | b'?'
                if depth == 0 && bytes.get(i + 1).is_none_or(|b| b.is_ascii_whitespace()) =>
            {
                break
            }
            _ => {}
        }
        i += 1;
    }
    let mut end = i.min(bytes.len());
    while end > start && matches!(bytes[end - 1], b'.' | b',' | b';' | b':' | b' ' | b'\t' | b'\r') {
        end -= 1;
    }
    end
}

fn last_latex(text: &str) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let mut last = None;
    let mut i = 0;
    while i < bytes.len() {
        let (open, close) = match bytes[i] {
            b'\\' if bytes.get(i + 1) == Some(&b'(') => ("\\(", "\\)"),
            b'\\' if bytes.get(i + 1) == Some(&b'[') => ("\\[", "\\]"),
            b'\\' => {
                i += 2; // an escaped byte such as `\$`
                continue;
            }
            b'$' if bytes.get(i + 1) == Some(&b'$') => ("$$", "$$"),
            b'$' => ("$", "$"),
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i + open.len();
        let Some(len) = find_unescaped(&text[start..], close) else { break };
        if !text[start..start + len].trim().is_empty() {
            last = Some(start..start + len);
        }
        i = start + len + close.len();
    }
    last
}

/// The first occurrence of `close` in `s` not preceded by a backslash escape (`\$`).
fn find_unescaped(s: &str, close: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if close != "\\)" && close != "\\]" && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        // byte comparison: `i` may sit inside a multi-byte character after an escape, and an
        // ASCII match can only start on a character boundary
        if bytes[i..].starts_with(close.as_bytes()) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The byte ranges of the numbers in `text`, in order: an optional `-` (only where it cannot
/// be a binary minus), digits with optional `,ddd` thousands groups (only after a leading
/// group of at most three digits, and only when exactly three digits follow each comma), an
/// optional decimal part, an optional exponent `e±d`, and an optional `/digits` fraction.
pub fn number_spans(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let start = i;
            let digit_at = |k: usize| bytes.get(k).is_some_and(u8::is_ascii_digit);
            let begins = digit_at(i) || (bytes[i] == b'.' && digit_at(i + 1));
            let signed = bytes[i] == b'-'
                && (digit_at(i + 1) || (bytes.get(i + 1) == Some(&b'.') && digit_at(i + 2)))
                && (i == 0
                    || !(bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b')' | b']' | b'}')));
            if !(begins || signed) || (i > 0 && bytes[i - 1].is_ascii_digit()) {
                i += 1;
                continue;
            }
            let mut j = if signed { i + 1 } else { i };
            let int_start = j;
            while digit_at(j) {
                j += 1;
            }
            if j - int_start <= 3 && j > int_start {
                // thousands groups: ",ddd" not followed by another digit
                while bytes.get(j) == Some(&b',')
                    && digit_at(j + 1)
                    && digit_at(j + 2)
                    && digit_at(j + 3)
                    && !digit_at(j + 4)
                {
                    j += 4;
                }
            }
            if bytes.get(j) == Some(&b'.') && digit_at(j + 1) {
                j += 1;
                while digit_at(j) {
                    j += 1;
                }
            }
            if matches!(bytes.get(j), Some(b'e' | b'E')) && j > int_start {
                let mut k = j + 1;
                if matches!(bytes.get(k), Some(b'+' | b'-')) {
                    k += 1;
                }
                if digit_at(k) {
                    while digit_at(k) {
                        k += 1;
                    }
                    if !bytes.get(k).is_some_and(u8::is_ascii_alphabetic) {
                        j = k;
                    }
                }
            }
            if bytes.get(j) == Some(&b'/') && digit_at(j + 1) {
                j += 1;
                while digit_at(j) {
                    j += 1;
                }
            }
            i = j;
            return Some(start..j);
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(spec: &str, text: &str) -> Result<String, ExtractError> {
        Extractor::parse(spec, None).unwrap().extract(text).map(|e| e.answer.to_string())
    }

    #[test]
    fn table() {
        let ok: &[(&str, &str, &str)] = &[
            ("answer_line", "work\nAnswer: 42\n", "42"),
            ("answer_line", "Answer: 1\nmore\n  Answer:  -3.5 ", "-3.5"),
            ("answer_line", "Answer: 7", "7"),
            ("boxed", r"so \boxed{5}.", "5"),
            ("boxed", r"\boxed{1} then \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
            ("boxed", r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
            ("boxed", r"$\boxed{\frac{\sqrt{3}}{2}}$", r"\frac{\sqrt{3}}{2}"),
            ("boxed", r"thus \boxed 5.", "5"),
            ("boxed", r"thus \boxed 12$", "12"),
            ("boxed", r"\fbox{8}", "8"),
            ("boxed", r"\boxed{\boxed{9}}", "9"),
            ("answer_is", "The answer is: 12", "12"),
            ("answer_is", "the final answer is 12.", "12"),
            ("answer_is", "**Answer:** 12", "12"),
            ("answer_is", "answer: $12$", "12"),
            ("answer_is", "The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
            ("answer_is", "The answer is **B**", "B"),
            ("answer_is", "so the answer is 3.5; done", "3.5"),
            ("answer_is", "The answer is \\boxed{4}.", "4"),
            ("answer_is", "Answer = 9", "9"),
            ("answer_is", "The answer is \\(x = 2\\)", "x = 2"),
            ("last_latex", "we get $x$ and then $y = 3$ done", "y = 3"),
            ("last_latex", r"cost \$5 and $$7$$", "7"),
            ("last_latex", r"\[ 2 \] and \( 3 \)", "3"),
            ("last_number", "1, 2, then 3.", "3"),
            ("last_number", "total 1,234,567 apples", "1,234,567"),
            ("last_number", "it is 1,2", "2"),
            ("last_number", "x = -4", "-4"),
            ("last_number", "5-3", "3"),
            ("last_number", "about 1.2e3 m", "1.2e3"),
            ("last_number", "take 3/4 of it", "3/4"),
            ("last_number", "$.5$", ".5"),
            ("whole", "  hi  ", "hi"),
            ("boxed,answer_is,last_number", "first 3, then the answer is 4", "4"),
            ("boxed,answer_is,last_number", "3 and 4 and \\boxed{5} and 6", "5"),
            ("boxed,answer_is,last_number", "3 and 4", "4"),
        ];
        for (spec, text, want) in ok {
            assert_eq!(get(spec, text).as_deref(), Ok(*want), "{spec} on {text:?}");
        }
    }

    #[test]
    fn reasons() {
        use ExtractError::*;
        use ExtractorKind as K;
        assert_eq!(get("boxed", "no box"), Err(Missing { method: K::Boxed }));
        assert_eq!(
            get("boxed", r"\boxed{1 + {2}"),
            Err(Malformed { method: K::Boxed, reason: "unclosed \\boxed{" })
        );
        assert_eq!(get("boxed", r"\boxed{ }"), Err(Malformed { method: K::Boxed, reason: "empty answer" }));
        assert_eq!(get("answer_line", "answer: 3"), Err(Missing { method: K::AnswerLine }));
        assert!(matches!(get("answer_line", "Answer:   \n"), Err(Malformed { .. })));
        assert!(matches!(get("answer_is", "the answer is $3"), Err(Malformed { .. })));
        assert_eq!(get("last_number", "none"), Err(Missing { method: K::LastNumber }));
        // A chain reports a malformed member over "missing".
        assert!(matches!(get("boxed,last_number", r"\boxed{"), Err(Malformed { method: K::Boxed, .. })));
        assert_eq!(get("answer_line,last_number", "none"), Err(Missing { method: K::Chain }));
    }

    #[test]
    fn ranges_point_into_the_text() {
        let text = "blah \\boxed{ 42 } end";
        let e = Extractor::named("boxed").unwrap().extract(text).unwrap();
        assert_eq!(&text[e.range.clone()], "42");
        assert_eq!(e.method, ExtractorKind::Boxed);
    }

    #[test]
    fn regex_extractor() {
        let re = Extractor::regex(r"ANS\((\d+)\)").unwrap();
        assert_eq!(re.extract("ANS(1) ANS(22)").unwrap().answer, "22");
        let whole = Extractor::regex(r"\d+").unwrap();
        assert_eq!(whole.extract("a 1 b 23").unwrap().answer, "23");
        assert!(matches!(re.extract("none"), Err(ExtractError::Missing { .. })));
        let err = Extractor::regex("(unclosed").unwrap_err();
        assert!(err.to_string().starts_with("invalid regex '(unclosed':"), "{err}");
    }

    #[test]
    fn configuration_errors() {
        assert!(matches!(Extractor::parse("boxd", None), Err(ConfigError::UnknownExtractor { .. })));
        assert!(matches!(Extractor::parse(" , ", None), Err(ConfigError::EmptyChain)));
        assert!(matches!(Extractor::parse("regex", None), Err(ConfigError::MissingPattern)));
        assert!(matches!(Extractor::named("regex"), Err(ConfigError::MissingPattern)));
        assert!(matches!(Extractor::chain(vec![]), Err(ConfigError::EmptyChain)));
        let chain = Extractor::parse("regex, last_number", Some(r"#(\d+)")).unwrap();
        assert_eq!(chain.extract("#5 and 6").unwrap().answer, "5");
        assert_eq!(chain.kind(), ExtractorKind::Chain);
    }
}
