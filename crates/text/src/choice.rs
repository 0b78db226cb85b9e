//! Multiple choice: read the letter a response chose, refusing responses that name several.
//!
//! ```
//! use gristmill_text::choice::{ChoiceError, Choices};
//!
//! let abcd = Choices::parse("A-D").unwrap();
//! assert_eq!(abcd.extract("The answer is (B) because ..."), Ok('B'));
//! assert_eq!(abcd.extract("Answer: c"), Ok('C'));
//! assert_eq!(abcd.extract("B) since x > 2"), Ok('B'));
//! assert_eq!(abcd.extract("either (A) or (C)"), Err(ChoiceError::Ambiguous { letters: vec!['A', 'C'] }));
//! assert!(abcd.matches('b', "I pick B."));
//! ```
//!
//! The letter is looked for in decreasing order of explicitness, and the first place that
//! names any letter decides: (1) the text after the last "answer is" / "answer:" / "option"
//! phrase, up to the end of its sentence; (2) the last `\boxed{...}`; (3) a letter opening
//! the response (`"B) ..."`, `"(B). ..."`, `"B"`); (4) every marked mention in the whole
//! response — `(B)`, `[B]`, `**B**`, `B)` or a standalone capital. A place naming two
//! different letters is ambiguous: the verifier must not pick one for the model.

use std::sync::OnceLock;

use regex::Regex;
use thiserror::Error;

use crate::error::ConfigError;
use crate::extract::Extractor;

/// The letters a question offers, upper case, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choices {
    letters: Vec<char>,
}

/// Why no letter was read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ChoiceError {
    /// No offered letter is named.
    #[error("no choice letter found")]
    Missing,
    /// Several different letters are named where one was expected.
    #[error("ambiguous choice: {}", letters.iter().collect::<String>())]
    Ambiguous {
        /// The letters named, in order of first appearance.
        letters: Vec<char>,
    },
}

impl Choices {
    /// The first `n` letters `A, B, ...` (`1 <= n <= 26`).
    pub fn first(n: usize) -> Result<Choices, ConfigError> {
        if !(1..=26).contains(&n) {
            return Err(ConfigError::OutOfRange {
                name: "choices",
                value: n.to_string(),
                expected: "1 to 26",
            });
        }
        Ok(Choices { letters: (b'A'..b'A' + n as u8).map(char::from).collect() })
    }

    /// From configuration: explicit letters (`"ABCD"`, `"A,B,C"`), a range (`"A-E"`) or a
    /// count (`"4"`). Case-insensitive; a repeated letter or a non-letter is refused.
    pub fn parse(spec: &str) -> Result<Choices, ConfigError> {
        let bad = |reason| ConfigError::InvalidChoices { letters: spec.to_string(), reason };
        let s = spec.trim();
        if let Ok(n) = s.parse::<usize>() {
            return Choices::first(n);
        }
        let letters: Vec<char> = match s.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.trim(), b.trim());
                let (Some(a), Some(b)) = (single_letter(a), single_letter(b)) else {
                    return Err(bad("a range is written like A-E"));
                };
                if a > b {
                    return Err(bad("the range is backwards"));
                }
                (a..=b).collect()
            }
            None => s.chars().filter(|c| !matches!(c, ',' | ' ')).map(|c| c.to_ascii_uppercase()).collect(),
        };
        if letters.is_empty() {
            return Err(bad("no letters"));
        }
        if letters.iter().any(|c| !c.is_ascii_uppercase()) {
            return Err(bad("only the letters A to Z are choices"));
        }
        let mut seen = [false; 26];
        for c in &letters {
            let k = (*c as u8 - b'A') as usize;
            if std::mem::replace(&mut seen[k], true) {
                return Err(bad("a letter is repeated"));
            }
        }
        Ok(Choices { letters })
    }

    /// The offered letters, upper case.
    pub fn letters(&self) -> &[char] {
        &self.letters
    }

    fn offers(&self, c: char) -> bool {
        self.letters.contains(&c.to_ascii_uppercase())
    }

    /// Whether `response` chose `gold` (either case). Missing and ambiguous count as wrong.
    pub fn matches(&self, gold: char, response: &str) -> bool {
        self.extract(response) == Ok(gold.to_ascii_uppercase())
    }

    /// The letter `response` chose, upper case.
    pub fn extract(&self, response: &str) -> Result<char, ChoiceError> {
        // (1) after the last answer phrase, to the end of its sentence
        if let Some(m) = choice_phrase().find_iter(response).last() {
            let tail = &response[m.end()..];
            let end = sentence_len(tail);
            if let Some(found) = self.decide(self.mentions(&tail[..end], true)) {
                return found;
            }
        }
        // (2) the last box
        if let Ok(boxed) = Extractor::named("boxed").expect("fixed kind").extract(response) {
            if let Some(found) = self.decide(self.mentions(boxed.answer, true)) {
                return found;
            }
        }
        // (3) a letter opening the response: "B", "b", "B.", "B) ...", "(B) ...", "**B**: ..."
        let head = response.trim_start().trim_start_matches(['*', '(', '[']);
        let mut chars = head.chars();
        if let Some(c) = chars.next() {
            let next = chars.next();
            let opens =
                next.is_none_or(|n| matches!(n, '.' | ')' | ']' | ':' | '*' | ',') || n.is_whitespace());
            let alone = head.trim_end_matches(['*', ')', ']', '.', ' ', '\n']).len() == c.len_utf8();
            // "A cat ..." opens with an article, not a choice.
            let article = c == 'A' && next == Some(' ') && chars.next().is_some_and(char::is_lowercase);
            // "A or B", "(A) and (C)": the opening letter is one of several.
            let after = head[c.len_utf8()..].trim_start_matches(['.', ')', ']', ':', '*', ',', ' ']);
            let several = ["or ", "and ", "/", "& "].iter().any(|w| after.to_lowercase().starts_with(w));
            if self.offers(c) && opens && (c.is_ascii_uppercase() || alone) && !article && !several {
                return Ok(c.to_ascii_uppercase());
            }
        }
        // (4) every marked mention in the response
        self.decide(self.mentions(response, false)).unwrap_or(Err(ChoiceError::Missing))
    }

    /// `None` if no letter is named; else the single letter or the ambiguity.
    fn decide(&self, letters: Vec<char>) -> Option<Result<char, ChoiceError>> {
        match letters.len() {
            0 => None,
            1 => Some(Ok(letters[0])),
            _ => Some(Err(ChoiceError::Ambiguous { letters })),
        }
    }

    /// The distinct offered letters named in `text`, in order. With `loose`, any standalone
    /// letter of either case counts (the text is already known to be an answer); otherwise
    /// only marked ones: `(B)`, `[B]`, `{B}`, `**B**`, `B)` or a standalone capital that is
    /// not the article "A" or the pronoun "I" opening a phrase.
    fn mentions(&self, text: &str, loose: bool) -> Vec<char> {
        let chars: Vec<char> = text.chars().collect();
        let mut found = Vec::new();
        for (i, &c) in chars.iter().enumerate() {
            if !c.is_ascii_alphabetic() || !self.offers(c) {
                continue;
            }
            let prev = if i > 0 { chars[i - 1] } else { ' ' };
            let next = chars.get(i + 1).copied().unwrap_or(' ');
            if prev.is_alphanumeric() || next.is_alphanumeric() || prev == '\\' || next == '\'' {
                continue; // part of a word, a command or a contraction
            }
            let upper = c.to_ascii_uppercase();
            let wrapped = matches!((prev, next), ('(', ')') | ('[', ']') | ('{', '}') | ('*', '*'));
            let enumerator = next == ')';
            // The word after a space, to tell the article "A cat" from "A or B".
            let next_word: String = if next == ' ' {
                chars.get(i + 2..).unwrap_or(&[]).iter().take_while(|c| c.is_alphabetic()).collect()
            } else {
                String::new()
            };
            let before_word = !next_word.is_empty() && !matches!(next_word.as_str(), "or" | "and");
            // "A" or "I" followed by a lower-case word is prose ("A cat", "I think").
            let prose = matches!(c, 'A' | 'I') && before_word && next_word.starts_with(char::is_lowercase);
            let counts = if loose {
                // In an answer span, a lower-case "a" before a word is still the article.
                !(prose || (c == 'a' && before_word))
            } else {
                wrapped || enumerator || (c.is_ascii_uppercase() && !prose)
            };
            if counts && !found.contains(&upper) {
                found.push(upper);
            }
        }
        found
    }
}

fn single_letter(s: &str) -> Option<char> {
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => Some(c.to_ascii_uppercase()),
        _ => None,
    }
}

fn choice_phrase() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(?:answer|choice|option)\s*(?:\*\*|__)?\s*(?:is\b|:|=)").expect("static regex")
    })
}

/// Length of the sentence at the start of `s`: up to a newline, or a `.`, `;`, `!`, `?`
/// followed by whitespace or the end.
fn sentence_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let ends = matches!(b, b'.' | b';' | b'!' | b'?')
            && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace());
        if b == b'\n' || ends {
            return i;
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let abcd = Choices::parse("ABCD").unwrap();
        let cases: &[(&str, Result<char, ChoiceError>)] = &[
            ("(B)", Ok('B')),
            ("B.", Ok('B')),
            ("B", Ok('B')),
            ("b", Ok('B')),
            ("B) blah blah", Ok('B')),
            ("(C) because it is larger than (A)", Ok('C')),
            ("The answer is B", Ok('B')),
            ("The answer is (D).", Ok('D')),
            ("Answer: b", Ok('B')),
            ("**Answer:** C", Ok('C')),
            ("The correct option is: A", Ok('A')),
            ("I think it is a tricky one, but the answer is a", Ok('A')),
            ("A bird flies; I pick (C).", Ok('C')),
            ("Since x > 2, \\boxed{D}", Ok('D')),
            ("so \\boxed{\\text{(B)}}", Ok('B')),
            ("After checking, C is correct.", Ok('C')),
            ("either (A) or (C)", Err(ChoiceError::Ambiguous { letters: vec!['A', 'C'] })),
            ("The answer is A or B.", Err(ChoiceError::Ambiguous { letters: vec!['A', 'B'] })),
            ("Both B and D work", Err(ChoiceError::Ambiguous { letters: vec!['B', 'D'] })),
            ("I don't know", Err(ChoiceError::Missing)),
            ("The answer is E", Err(ChoiceError::Missing)),
            ("", Err(ChoiceError::Missing)),
            // The answer phrase decides even when the reasoning mentioned other letters.
            ("(A) fails and (B) fails. The answer is C.", Ok('C')),
        ];
        for (text, want) in cases {
            assert_eq!(&abcd.extract(text), want, "{text:?}");
        }
    }

    #[test]
    fn configuration() {
        assert_eq!(Choices::parse("a-e").unwrap().letters(), &['A', 'B', 'C', 'D', 'E']);
        assert_eq!(Choices::parse("4").unwrap().letters(), &['A', 'B', 'C', 'D']);
        assert_eq!(Choices::parse("A, B, C").unwrap().letters(), &['A', 'B', 'C']);
        for bad in ["", "AAB", "A-", "E-A", "A1", "27", "0"] {
            assert!(Choices::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Choices::parse("AAB").unwrap_err().to_string().contains("repeated"));
    }

    #[test]
    fn matches_counts_ambiguity_as_wrong() {
        let abcd = Choices::first(4).unwrap();
        assert!(abcd.matches('c', "Answer: C"));
        assert!(!abcd.matches('A', "A or B?"));
    }
}
