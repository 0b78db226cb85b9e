//! # gristmill-text
//!
//! Free-text answer extraction and verification as pure functions over `&str`: find the
//! answer in a model's response, then compare it with the gold answer as a normalized
//! string, a multiple-choice letter, a number, or a math expression; check a response's
//! layout and JSON. Standalone (no other gristmill crate), no I/O, no global state.
//!
//! ```
//! use gristmill_text::extract::Extractor;
//! use gristmill_text::math::{self, MathOptions};
//!
//! // Configuration comes from plain strings, as in a spec's piece parameters.
//! let extractor = Extractor::parse("boxed,answer_is,last_number", None).unwrap();
//! let response = "Adding 1/4 twice gives 2/4, which is \\boxed{\\dfrac{1}{2}}. Check: 3 - 2 = 1.";
//! let answer = extractor.extract(response).unwrap().answer;
//! assert_eq!(answer, "\\dfrac{1}{2}");
//! let verdict = math::equivalent("0.5", answer, &MathOptions::default()).unwrap();
//! assert!(verdict.equal);
//!
//! // Or in one step, with the verifier a gristmill piece wraps:
//! use gristmill_text::verify::Verifier;
//! assert!(Verifier::math().verify("0.5", response).correct);
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`extract`] | the answer span: `Answer:` line, `\boxed{}`, "the answer is", last LaTeX, last number, regex, chains |
//! | [`normalize`] | normalized exact match (case, whitespace, punctuation, articles, `\text{}`) |
//! | [`choice`] | multiple-choice letters, refusing ambiguous responses |
//! | [`number`] | numbers with separators, fractions, percentages, units, scientific notation; tolerances |
//! | [`math`] | LaTeX-ish math answers parsed to a small AST and compared exactly, numerically or at points |
//! | [`format`] | a regex layout (`<think>…</think><answer>…</answer>`), JSON, a JSON-Schema subset |
//! | [`verify`] | an extractor plus a check: the verifier a piece wraps |
//!
//! Bad configuration (an unknown name, a regex that does not compile, an unsupported
//! schema keyword) is a [`ConfigError`] when the verifier is built; a response that holds no
//! answer, or one that cannot be read, is a typed reason when it is scored. No input panics:
//! parsers have size, depth and exponent limits, and exact arithmetic is checked.

#![deny(missing_docs)]

pub mod choice;
pub mod error;
pub mod extract;
pub mod format;
pub mod math;
pub mod normalize;
pub mod number;
pub mod rational;
pub mod verify;

pub use error::ConfigError;
pub use rational::Rational;
