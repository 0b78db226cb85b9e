//! A verifier: an extractor and a comparison, scoring a free-text response against a gold
//! answer. This is the shape a gristmill piece wraps.
//!
//! ```
//! use gristmill_text::verify::{Check, Failure, Verifier};
//!
//! let v = Verifier::math();
//! let out = v.verify(r"\frac{1}{2}", "Halving 1 gives \\boxed{0.5}.");
//! assert!(out.correct);
//! assert_eq!(out.answer, Some("0.5"));
//!
//! let numeric = Verifier::new("answer_line", None, Check::parse("numeric", None).unwrap()).unwrap();
//! let out = numeric.verify("1200", "Work...\nAnswer: 1,200 cm");
//! assert!(out.correct);
//! assert!(matches!(numeric.verify("5", "no answer line").failure, Some(Failure::NoAnswer(_))));
//! ```

use thiserror::Error;

use crate::choice::Choices;
use crate::error::ConfigError;
use crate::extract::{ExtractError, Extractor};
use crate::math::MathOptions;
use crate::normalize::Normalization;
use crate::number::Tolerance;

/// How an extracted answer is compared with the gold.
#[derive(Clone, Debug)]
pub enum Check {
    /// `"exact"`: string equality after a normalization.
    Exact(Normalization),
    /// `"numeric"`: numbers with a tolerance ([`crate::number`]).
    Numeric(Tolerance),
    /// `"math"`: math equivalence ([`crate::math`]).
    Math(MathOptions),
    /// `"choice"`: the letter chosen among the offered ones ([`crate::choice`]); the gold
    /// is a letter.
    Choice(Choices),
}

impl Check {
    /// The names accepted by [`Check::parse`].
    pub const NAMES: &'static str = "exact, numeric, math, choice";

    /// From configuration, with the defaults of each kind; `choice` takes the letters as
    /// `arg` (default `"A-D"`), `exact` a normalization spec (default all steps).
    pub fn parse(name: &str, arg: Option<&str>) -> Result<Check, ConfigError> {
        Ok(match name.trim() {
            "exact" => Check::Exact(arg.map(Normalization::parse).transpose()?.unwrap_or_default()),
            "numeric" => Check::Numeric(Tolerance::default()),
            "math" => Check::Math(MathOptions::default()),
            "choice" => Check::Choice(Choices::parse(arg.unwrap_or("A-D"))?),
            other => {
                return Err(ConfigError::UnknownValue {
                    option: "check",
                    value: other.to_string(),
                    expected: Check::NAMES,
                })
            }
        })
    }
}

/// Why a response was scored wrong.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum Failure {
    /// No answer could be extracted.
    #[error("{0}")]
    NoAnswer(ExtractError),
    /// The answer was extracted but is not of the expected kind (not a number, not math,
    /// no single letter).
    #[error("answer not understood: {0}")]
    Unreadable(String),
    /// The gold answer itself does not parse: a data error, to be surfaced, not scored.
    #[error("gold answer not understood: {0}")]
    BadGold(String),
    /// Understood, and different from the gold.
    #[error("wrong answer")]
    Wrong,
}

/// The result of verifying one response.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome<'a> {
    /// Whether the response is correct.
    pub correct: bool,
    /// The extracted answer, if any.
    pub answer: Option<&'a str>,
    /// Why it is not correct (`None` when correct).
    pub failure: Option<Failure>,
}

/// An extractor and a check.
#[derive(Clone, Debug)]
pub struct Verifier {
    /// Finds the answer span.
    pub extractor: Extractor,
    /// Compares it with the gold.
    pub check: Check,
}

impl Verifier {
    /// The math verifier: [`Extractor::math_default`] and [`Check::Math`] with defaults.
    pub fn math() -> Verifier {
        Verifier { extractor: Extractor::math_default(), check: Check::Math(MathOptions::default()) }
    }

    /// From configuration: an extractor spec (see [`Extractor::parse`]), its regex pattern,
    /// and a check.
    pub fn new(extract: &str, pattern: Option<&str>, check: Check) -> Result<Verifier, ConfigError> {
        Ok(Verifier { extractor: Extractor::parse(extract, pattern)?, check })
    }

    /// Verify `response` against `gold`.
    pub fn verify<'a>(&self, gold: &str, response: &'a str) -> Outcome<'a> {
        let extracted = match self.extractor.extract(response) {
            Ok(e) => e,
            Err(e) => return Outcome { correct: false, answer: None, failure: Some(Failure::NoAnswer(e)) },
        };
        let answer = extracted.answer;
        let verdict: Result<bool, Failure> = match &self.check {
            Check::Exact(norm) => Ok(norm.matches(gold, answer)),
            Check::Numeric(tol) => match crate::number::parse_number(gold) {
                Err(e) => Err(Failure::BadGold(e.to_string())),
                Ok(g) => crate::number::parse_number(answer)
                    .map(|a| crate::number::numbers_equal(&g, &a, tol))
                    .map_err(|e| Failure::Unreadable(e.to_string())),
            },
            Check::Math(opts) => match crate::math::parse(gold, &opts.limits) {
                Err(e) => Err(Failure::BadGold(e.to_string())),
                Ok(g) => crate::math::parse(answer, &opts.limits)
                    .and_then(|a| crate::math::compare(&g, &a, opts))
                    .map(|v| v.equal)
                    .map_err(|e| Failure::Unreadable(e.to_string())),
            },
            Check::Choice(choices) => {
                let gold_letter = gold.trim().chars().next().filter(|_| gold.trim().chars().count() == 1);
                match gold_letter {
                    Some(g) if choices.letters().contains(&g.to_ascii_uppercase()) => choices
                        .extract(answer)
                        .map(|c| c == g.to_ascii_uppercase())
                        .map_err(|e| Failure::Unreadable(e.to_string())),
                    _ => Err(Failure::BadGold(format!("'{gold}' is not one of the offered letters"))),
                }
            }
        };
        match verdict {
            Ok(true) => Outcome { correct: true, answer: Some(answer), failure: None },
            Ok(false) => Outcome { correct: false, answer: Some(answer), failure: Some(Failure::Wrong) },
            Err(f) => Outcome { correct: false, answer: Some(answer), failure: Some(f) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check() {
        let exact = Verifier::new("answer_is", None, Check::parse("exact", None).unwrap()).unwrap();
        assert!(exact.verify("Paris", "The answer is: paris.").correct);
        assert_eq!(exact.verify("Paris", "The answer is Rome").failure, Some(Failure::Wrong));

        let choice = Verifier::new("whole", None, Check::parse("choice", Some("A-E")).unwrap()).unwrap();
        assert!(choice.verify("E", "I'd say (E).").correct);
        assert!(matches!(choice.verify("E", "(A) or (E)").failure, Some(Failure::Unreadable(_))));
        assert!(matches!(choice.verify("F", "(A)").failure, Some(Failure::BadGold(_))));

        let math = Verifier::math();
        assert!(math.verify("x=3", "so $x = 3$").correct);
        assert!(!math.verify("(1,2]", r"\boxed{(1,2)}").correct);
        assert!(matches!(math.verify(r"\frac{1}{", r"\boxed{1}").failure, Some(Failure::BadGold(_))));
        assert!(matches!(math.verify("1", r"\boxed{1 \neq 2}").failure, Some(Failure::Unreadable(_))));
        assert!(Check::parse("fuzzy", None).is_err());
    }
}
