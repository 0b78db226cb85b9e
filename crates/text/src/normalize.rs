//! Normalized exact match: compare two short answers after a configurable normalization.
//!
//! ```
//! use gristmill_text::normalize::Normalization;
//!
//! let norm = Normalization::default(); // every step
//! assert_eq!(norm.apply("  The  Eiffel\tTower! "), "eiffel tower");
//! assert!(norm.matches(r"\text{Paris}", "paris."));
//! let strict = Normalization::parse("whitespace").unwrap();
//! assert!(!strict.matches("Paris", "paris"));
//! ```
//!
//! The steps run in a fixed order — LaTeX text stripping, case, punctuation, articles,
//! whitespace — because each later step assumes the earlier ones (articles are found as
//! lower-case words separated by spaces, which punctuation stripping may have created).

use crate::error::ConfigError;

/// Which normalization steps to apply before comparing. [`Default`] turns every step on (the
/// usual "normalized exact match" of QA benchmarks); [`Normalization::none`] compares raw
/// strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Normalization {
    /// `"case"`: compare case-insensitively (Unicode lower-casing).
    pub case: bool,
    /// `"whitespace"`: trim and collapse every run of whitespace to one space.
    pub whitespace: bool,
    /// `"punctuation"`: drop punctuation, except a `.` or `,` between two digits (so that
    /// `3.5` does not become `35`).
    pub punctuation: bool,
    /// `"articles"`: drop the words `a`, `an` and `the`.
    pub articles: bool,
    /// `"latex_text"`: unwrap `\text{...}`, `\textbf{...}`, `\mathrm{...}`, `\mbox{...}` and
    /// friends, and drop `$` math delimiters.
    pub latex_text: bool,
}

impl Default for Normalization {
    fn default() -> Self {
        Normalization { case: true, whitespace: true, punctuation: true, articles: true, latex_text: true }
    }
}

const TEXT_COMMANDS: [&str; 9] = [
    "\\text",
    "\\textbf",
    "\\textit",
    "\\texttt",
    "\\textrm",
    "\\mathrm",
    "\\mathbf",
    "\\mbox",
    "\\operatorname",
];

impl Normalization {
    /// The step names accepted by [`Normalization::parse`], comma separated.
    pub const NAMES: &'static str = "case, whitespace, punctuation, articles, latex_text (or all, none)";

    /// No normalization: raw string equality.
    pub const fn none() -> Self {
        Normalization {
            case: false,
            whitespace: false,
            punctuation: false,
            articles: false,
            latex_text: false,
        }
    }

    /// From a comma-separated list of step names, or `"all"` / `"none"`.
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let mut n = Normalization::none();
        for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "all" => n = Normalization::default(),
                "none" => {}
                "case" => n.case = true,
                "whitespace" => n.whitespace = true,
                "punctuation" => n.punctuation = true,
                "articles" => n.articles = true,
                "latex_text" => n.latex_text = true,
                other => {
                    return Err(ConfigError::UnknownNormalization {
                        name: other.to_string(),
                        expected: Normalization::NAMES,
                    })
                }
            }
        }
        Ok(n)
    }

    /// The normalized form of `s`.
    pub fn apply(&self, s: &str) -> String {
        let mut out = if self.latex_text { strip_latex_text(s) } else { s.to_string() };
        if self.case {
            out = out.to_lowercase();
        }
        if self.punctuation {
            out = strip_punctuation(&out);
        }
        if self.articles {
            out = out
                .split(' ')
                .filter(|w| !matches!(w.to_lowercase().as_str(), "a" | "an" | "the"))
                .collect::<Vec<_>>()
                .join(" ");
        }
        if self.whitespace {
            out = out.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        out
    }

    /// Whether `gold` and `answer` are equal after normalization.
    pub fn matches(&self, gold: &str, answer: &str) -> bool {
        self.apply(gold) == self.apply(answer)
    }
}

fn strip_latex_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    'scan: while !rest.is_empty() {
        if rest.starts_with('\\') {
            for cmd in TEXT_COMMANDS {
                if let Some(after) = rest.strip_prefix(cmd) {
                    // `\text{` but not `\textcolor`: the command must end at the brace.
                    let trimmed = after.trim_start();
                    if trimmed.starts_with('{') {
                        let open = rest.len() - trimmed.len();
                        if let Some(inner) = crate::extract::brace_group(rest, open) {
                            out.push_str(&rest[inner.clone()]);
                            rest = &rest[inner.end + 1..];
                            continue 'scan;
                        }
                    }
                }
            }
        }
        let c = rest.chars().next().expect("non-empty");
        if c != '$' {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn strip_punctuation(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let punct =
            c.is_ascii_punctuation() || matches!(c, '‘' | '’' | '“' | '”' | '–' | '—' | '…' | '¿' | '¡');
        let between_digits = matches!(c, '.' | ',')
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if !punct || between_digits {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_one_at_a_time() {
        let cases: &[(&str, &str, &str)] = &[
            ("case", "HeLLo", "hello"),
            ("whitespace", "  a \t b\n c ", "a b c"),
            ("punctuation", "it's 3.5, ok!", "its 3.5 ok"),
            ("punctuation", "1,234 and x,y", "1,234 and xy"),
            ("articles", "the cat and a dog", "cat and dog"),
            ("articles", "The cat", "cat"),
            ("latex_text", r"$\text{Monday}$", "Monday"),
            ("latex_text", r"\textbf{bold} \mathrm{ cm}", "bold  cm"),
            ("latex_text", r"\textcolor{red}", r"\textcolor{red}"),
            ("none", " As Is. ", " As Is. "),
            ("all", r" The \text{Answer}: Paris! ", "answer paris"),
        ];
        for (spec, input, want) in cases {
            assert_eq!(Normalization::parse(spec).unwrap().apply(input), *want, "{spec} on {input:?}");
        }
    }

    #[test]
    fn matching() {
        let all = Normalization::default();
        assert!(all.matches("The Beatles", "beatles"));
        assert!(!all.matches("Beatles", "Rolling Stones"));
        assert!(!all.matches("3.5", "35"));
        assert!(!Normalization::none().matches("a", "A"));
    }

    #[test]
    fn unknown_step_is_named() {
        let err = Normalization::parse("case,lower").unwrap_err();
        assert!(err.to_string().contains("'lower'"), "{err}");
    }
}
