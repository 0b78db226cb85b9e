//! The verdict format and its strict parser.
//!
//! The grader must end its answer with one verdict line:
//!
//! * a yes/no item ([`VerdictKind::YesNo`]): `VERDICT: yes` or `VERDICT: no`, scored 1 or 0;
//! * a scaled item ([`VerdictKind::Scale`]`(m)`): `SCORE: n/m` with `0 ≤ n ≤ m`, scored `n/m`.
//!
//! The grammar of a verdict line, after trimming whitespace at both ends:
//!
//! ```text
//! verdict-line = "VERDICT" ws* ":" ws* ("yes" | "no")
//!              | "SCORE"   ws* ":" ws* digits ws* "/" ws* digits
//! ws           = space | tab
//! digits       = 1 to 9 ASCII digits
//! ```
//!
//! Keywords and `yes`/`no` are matched without regard to ASCII case; nothing else may be on
//! the line (no trailing period, no Markdown `**`, no backticks). The text is accepted only if
//! its **last non-blank line** is a verdict line of the item's kind (and, for a scale, with
//! the item's maximum and `n ≤ m`) and **no other line** is a well-formed verdict line of
//! either kind: a grader that writes two verdicts has not given one. Lines break at `\n`,
//! `\r\n`, `\r` and the Unicode line and paragraph separators. Everything else is an
//! [`UnparseableVerdict`] carrying the [`VerdictProblem`] and the last 200 characters of the
//! grader's text. The format is versioned by [`VERDICT_FORMAT_VERSION`], which is part of
//! every cache key.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::tail;
use crate::fence::split_lines;

/// Version of the verdict format and parser; part of every [`CacheKey`](crate::CacheKey), so a
/// change to either invalidates cached verdicts instead of reinterpreting them.
pub const VERDICT_FORMAT_VERSION: u32 = 1;

/// How long an excerpt of the grader's text an [`UnparseableVerdict`] keeps, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// What an item asks the grader for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// `VERDICT: yes` (score 1) or `VERDICT: no` (score 0). Written `"yes_no"`.
    #[default]
    YesNo,
    /// `SCORE: n/m` for `0 ≤ n ≤ m`, scored `n/m`. Written `{ scale = m }`, `1 ≤ m ≤ 1000`.
    Scale(u32),
}

impl VerdictKind {
    /// The instruction that `{format}` renders to: how the grader must end its answer.
    pub fn instruction(self) -> String {
        match self {
            VerdictKind::YesNo => "Reason briefly if you need to, then end your answer with one final line \
                 that is exactly\nVERDICT: yes\nor\nVERDICT: no"
                .to_string(),
            VerdictKind::Scale(max) => format!(
                "Reason briefly if you need to, then end your answer with one final line that is \
                 exactly\nSCORE: N/{max}\nwhere N is a whole number from 0 (worst) to {max} (best)."
            ),
        }
    }
}

impl fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerdictKind::YesNo => f.write_str("VERDICT: yes|no"),
            VerdictKind::Scale(max) => write!(f, "SCORE: n/{max}"),
        }
    }
}

/// A parsed verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictValue {
    /// `VERDICT: yes`.
    Yes,
    /// `VERDICT: no`.
    No,
    /// `SCORE: points/max`.
    Score {
        /// The grader's points, at most `max`.
        points: u32,
        /// The item's scale.
        max: u32,
    },
}

impl VerdictValue {
    /// Whether this value is one an item of `kind` can have: yes or no for a yes/no item,
    /// `points ≤ max` with the item's `max` for a scaled one.
    pub fn fits(self, kind: VerdictKind) -> bool {
        match (self, kind) {
            (VerdictValue::Yes | VerdictValue::No, VerdictKind::YesNo) => true,
            (VerdictValue::Score { points, max }, VerdictKind::Scale(m)) => {
                max == m && m >= 1 && points <= max
            }
            _ => false,
        }
    }

    /// The item's score in `[0, 1]`: 1 for yes, 0 for no, `points / max` for a scale.
    pub fn score(self) -> f64 {
        match self {
            VerdictValue::Yes => 1.0,
            VerdictValue::No => 0.0,
            VerdictValue::Score { points, max } => f64::from(points) / f64::from(max),
        }
    }
}

/// A grader's verdict on one rubric item: the parsed value and the text it was parsed from.
/// This is what a [`VerdictCache`](crate::VerdictCache) stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The parsed verdict.
    pub value: VerdictValue,
    /// The grader's whole answer, for audit.
    pub text: String,
}

impl Verdict {
    /// Parses a grader's answer for an item of `kind`.
    ///
    /// # Errors
    /// [`UnparseableVerdict`] unless the text follows the [module rules](self).
    pub fn parse(text: &str, kind: VerdictKind) -> Result<Verdict, UnparseableVerdict> {
        Ok(Verdict { value: parse(text, kind)?, text: text.to_string() })
    }

    /// The item's score in `[0, 1]`.
    pub fn score(&self) -> f64 {
        self.value.score()
    }
}

/// Why a grader's text is not a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictProblem {
    /// The text is empty or blank.
    Empty,
    /// The last non-blank line is not a verdict line.
    NoVerdictLine,
    /// The last non-blank line starts like a verdict line (`VERDICT:` or `SCORE:`) but is not
    /// a well-formed one (`VERDICT: maybe`, `SCORE: 7`, `VERDICT: yes.`).
    BadVerdictLine,
    /// Another line is also a well-formed verdict line.
    Ambiguous {
        /// 1-based number of the first other verdict line.
        line: usize,
    },
    /// A verdict of the other kind (`VERDICT:` for a scaled item, `SCORE:` for a yes/no item).
    WrongKind {
        /// What the item asks for.
        expected: VerdictKind,
    },
    /// `SCORE: n/m` with an `m` that is not the item's scale.
    ScaleMismatch {
        /// The `m` the grader wrote.
        got: u32,
        /// The item's scale.
        expected: u32,
    },
    /// `SCORE: n/m` with `n > m`.
    OutOfRange {
        /// The `n` the grader wrote.
        points: u32,
        /// The item's scale.
        max: u32,
    },
}

impl fmt::Display for VerdictProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerdictProblem::Empty => f.write_str("the grader's answer is empty"),
            VerdictProblem::NoVerdictLine => f.write_str("the last line is not a verdict line"),
            VerdictProblem::BadVerdictLine => f.write_str("the last line is not a well-formed verdict line"),
            VerdictProblem::Ambiguous { line } => {
                write!(f, "line {line} is a verdict line too (exactly one is allowed, the last)")
            }
            VerdictProblem::WrongKind { expected } => write!(f, "the item asks for `{expected}`"),
            VerdictProblem::ScaleMismatch { got, expected } => {
                write!(f, "the score is out of {got} but the item's scale is {expected}")
            }
            VerdictProblem::OutOfRange { points, max } => write!(f, "the score {points} is above {max}"),
        }
    }
}

/// A grader's answer that is not a verdict: the problem and the end of the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unparseable verdict: {problem}; the answer ends {excerpt:?}")]
pub struct UnparseableVerdict {
    /// What is wrong.
    pub problem: VerdictProblem,
    /// The last [`EXCERPT_CHARS`] characters of the answer (`…` first when cut).
    pub excerpt: String,
}

/// A verdict line, well-formed or not.
enum Line {
    /// Not a verdict line at all.
    Other,
    /// Starts with `VERDICT:` or `SCORE:` but does not follow the grammar.
    Bad,
    /// A well-formed verdict line.
    Good(Parsed),
}

#[derive(Clone, Copy)]
enum Parsed {
    YesNo(bool),
    Score { points: u32, max: u32 },
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn strip_keyword<'a>(line: &'a str, keyword: &str) -> Option<&'a str> {
    let head = line.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    line[keyword.len()..].trim_start_matches(is_ws).strip_prefix(':').map(|r| r.trim_start_matches(is_ws))
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn classify(line: &str) -> Line {
    let line = line.trim();
    if let Some(rest) = strip_keyword(line, "VERDICT") {
        if rest.eq_ignore_ascii_case("yes") {
            Line::Good(Parsed::YesNo(true))
        } else if rest.eq_ignore_ascii_case("no") {
            Line::Good(Parsed::YesNo(false))
        } else {
            Line::Bad
        }
    } else if let Some(rest) = strip_keyword(line, "SCORE") {
        let Some((n, m)) = rest.split_once('/') else { return Line::Bad };
        match (number(n.trim_end_matches(is_ws)), number(m.trim_start_matches(is_ws))) {
            (Some(points), Some(max)) => Line::Good(Parsed::Score { points, max }),
            _ => Line::Bad,
        }
    } else {
        Line::Other
    }
}

/// Parses a grader's answer for an item of `kind`: the value of its one verdict line.
///
/// # Errors
/// [`UnparseableVerdict`] unless the text follows the [module rules](self).
pub fn parse(text: &str, kind: VerdictKind) -> Result<VerdictValue, UnparseableVerdict> {
    let fail = |problem| UnparseableVerdict { problem, excerpt: tail(text, EXCERPT_CHARS) };
    let lines = split_lines(text);
    let Some(last) = lines.iter().rposition(|l| !l.trim().is_empty()) else {
        return Err(fail(VerdictProblem::Empty));
    };
    let parsed = match classify(lines[last]) {
        Line::Other => return Err(fail(VerdictProblem::NoVerdictLine)),
        Line::Bad => return Err(fail(VerdictProblem::BadVerdictLine)),
        Line::Good(p) => p,
    };
    if let Some(other) = lines[..last].iter().position(|l| matches!(classify(l), Line::Good(_))) {
        return Err(fail(VerdictProblem::Ambiguous { line: other + 1 }));
    }
    match (kind, parsed) {
        (VerdictKind::YesNo, Parsed::YesNo(yes)) => {
            Ok(if yes { VerdictValue::Yes } else { VerdictValue::No })
        }
        (VerdictKind::Scale(expected), Parsed::Score { points, max }) => {
            if max != expected {
                Err(fail(VerdictProblem::ScaleMismatch { got: max, expected }))
            } else if points > max {
                Err(fail(VerdictProblem::OutOfRange { points, max }))
            } else {
                Ok(VerdictValue::Score { points, max })
            }
        }
        (expected, _) => Err(fail(VerdictProblem::WrongKind { expected })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YN: VerdictKind = VerdictKind::YesNo;
    const S10: VerdictKind = VerdictKind::Scale(10);

    #[test]
    fn accepted_answers() {
        let table: &[(&str, VerdictKind, VerdictValue)] = &[
            ("VERDICT: yes", YN, VerdictValue::Yes),
            ("VERDICT: no", YN, VerdictValue::No),
            ("The response is polite.\nVERDICT: yes", YN, VerdictValue::Yes),
            ("VERDICT: YES", YN, VerdictValue::Yes),
            ("verdict: No", YN, VerdictValue::No),
            ("VERDICT:yes", YN, VerdictValue::Yes),
            ("  VERDICT \t:   no  ", YN, VerdictValue::No),
            ("Reasoning.\r\nVERDICT: yes\r\n", YN, VerdictValue::Yes),
            ("Reasoning.\nVERDICT: yes\n\n   \n", YN, VerdictValue::Yes),
            ("It says \"VERDICT: no\" inline.\nVERDICT: yes", YN, VerdictValue::Yes),
            ("Verdict: the response is fine.\nVERDICT: yes", YN, VerdictValue::Yes),
            ("Reasoning\u{2028}VERDICT: no", YN, VerdictValue::No),
            ("SCORE: 7/10", S10, VerdictValue::Score { points: 7, max: 10 }),
            ("SCORE: 0/10", S10, VerdictValue::Score { points: 0, max: 10 }),
            ("SCORE: 10/10", S10, VerdictValue::Score { points: 10, max: 10 }),
            ("Fine.\nscore : 7 / 10", S10, VerdictValue::Score { points: 7, max: 10 }),
            ("SCORE: 007/10", S10, VerdictValue::Score { points: 7, max: 10 }),
        ];
        for (text, kind, want) in table {
            assert_eq!(parse(text, *kind), Ok(*want), "{text:?}");
        }
    }

    #[test]
    fn rejected_answers() {
        use VerdictProblem::*;
        let table: &[(&str, VerdictKind, VerdictProblem)] = &[
            ("", YN, Empty),
            (" \n\t\n", YN, Empty),
            ("yes", YN, NoVerdictLine),
            ("VERDICT: yes\nThanks for asking.", YN, NoVerdictLine),
            ("**VERDICT: yes**", YN, NoVerdictLine),
            ("`VERDICT: yes`", YN, NoVerdictLine),
            ("> VERDICT: yes", YN, NoVerdictLine),
            ("VERDICT – yes", YN, NoVerdictLine),
            ("VERDICTS: yes", YN, NoVerdictLine),
            ("VERDICT: yes.", YN, BadVerdictLine),
            ("VERDICT: maybe", YN, BadVerdictLine),
            ("VERDICT: yes no", YN, BadVerdictLine),
            ("VERDICT: **yes**", YN, BadVerdictLine),
            ("VERDICT: ｙｅｓ", YN, BadVerdictLine),
            ("VERDICT:", YN, BadVerdictLine),
            ("VERDICT: no\nVERDICT: yes", YN, Ambiguous { line: 1 }),
            ("a\nSCORE: 3/10\nb\nVERDICT: yes", YN, Ambiguous { line: 2 }),
            ("SCORE: 7/10", YN, WrongKind { expected: YN }),
            ("VERDICT: yes", S10, WrongKind { expected: S10 }),
            ("SCORE: 11/10", S10, OutOfRange { points: 11, max: 10 }),
            ("SCORE: 7/5", S10, ScaleMismatch { got: 5, expected: 10 }),
            ("SCORE: 7", S10, BadVerdictLine),
            ("SCORE: 7.5/10", S10, BadVerdictLine),
            ("SCORE: -1/10", S10, BadVerdictLine),
            ("SCORE: +7/10", S10, BadVerdictLine),
            ("SCORE: 7/10 points", S10, BadVerdictLine),
            ("SCORE: 7/10.", S10, BadVerdictLine),
            ("SCORE: 1234567890/10", S10, BadVerdictLine),
            ("SCORE: ７/10", S10, BadVerdictLine),
        ];
        for (text, kind, want) in table {
            let err = parse(text, *kind).unwrap_err();
            assert_eq!(err.problem, *want, "{text:?}");
        }
    }

    #[test]
    fn excerpts_keep_the_end_of_long_answers() {
        let text = format!("{}\nno verdict here", "x".repeat(1000));
        let err = parse(&text, YN).unwrap_err();
        assert!(err.excerpt.starts_with('…') && err.excerpt.ends_with("no verdict here"));
        assert_eq!(err.excerpt.chars().count(), EXCERPT_CHARS + 1);
        let shown = err.to_string();
        assert!(shown.contains("not a verdict line") && shown.contains("\\n"), "{shown}");
    }

    #[test]
    fn scores_are_exact_fractions() {
        assert_eq!(VerdictValue::Yes.score(), 1.0);
        assert_eq!(VerdictValue::No.score(), 0.0);
        assert_eq!(VerdictValue::Score { points: 7, max: 10 }.score(), 0.7);
        assert_eq!(VerdictValue::Score { points: 3, max: 3 }.score(), 1.0);
        assert!(VerdictValue::Yes.fits(YN) && !VerdictValue::Yes.fits(S10));
        assert!(VerdictValue::Score { points: 10, max: 10 }.fits(S10));
        assert!(!VerdictValue::Score { points: 11, max: 10 }.fits(S10));
        assert!(!VerdictValue::Score { points: 0, max: 0 }.fits(VerdictKind::Scale(0)));
        assert!(!VerdictValue::Score { points: 1, max: 5 }.fits(S10) && !VerdictValue::No.fits(S10));
    }
}
