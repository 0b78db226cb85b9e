//! Configuration errors shared by every module.
//!
//! A verifier is configured once (from a spec's string and number parameters) and then run on
//! many responses, so a bad configuration is reported when it is built, with the offending
//! value named, and never while scoring.

use thiserror::Error;

/// A configuration value that cannot be used: an unknown name, a regex that does not compile,
/// a tolerance out of range, an unsupported JSON-Schema keyword.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// An extractor name that is not one of [`crate::extract::ExtractorKind::NAMES`].
    #[error("unknown extractor '{name}' (expected one of: {expected})")]
    UnknownExtractor {
        /// The name as given.
        name: String,
        /// The accepted names, comma separated.
        expected: &'static str,
    },
    /// An extractor chain with no member.
    #[error("an extractor chain needs at least one extractor")]
    EmptyChain,
    /// The `regex` extractor was named without a pattern.
    #[error("the regex extractor needs a pattern")]
    MissingPattern,
    /// A regular expression that does not compile.
    #[error("invalid regex '{pattern}': {source}")]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// What the regex engine said.
        #[source]
        source: Box<regex::Error>,
    },
    /// A normalization step name that is not known.
    #[error("unknown normalization step '{name}' (expected one of: {expected})")]
    UnknownNormalization {
        /// The name as given.
        name: String,
        /// The accepted names, comma separated.
        expected: &'static str,
    },
    /// A named option given a value outside its accepted set.
    #[error("unknown value '{value}' for {option} (expected one of: {expected})")]
    UnknownValue {
        /// Which option.
        option: &'static str,
        /// The value as given.
        value: String,
        /// The accepted values, comma separated.
        expected: &'static str,
    },
    /// A numeric parameter out of its range (negative or non-finite tolerance, zero limit).
    #[error("{name} = {value} is out of range: {expected}")]
    OutOfRange {
        /// The parameter.
        name: &'static str,
        /// Its value, as text.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A multiple-choice letter set that is empty, repeats a letter or holds a non-letter.
    #[error("invalid choice letters '{letters}': {reason}")]
    InvalidChoices {
        /// The letters as given.
        letters: String,
        /// What is wrong with them.
        reason: &'static str,
    },
    /// A JSON-Schema keyword outside the supported subset.
    #[error("unsupported JSON-Schema keyword '{keyword}' at {path} (supported: {supported})")]
    UnsupportedSchemaKeyword {
        /// The keyword.
        keyword: String,
        /// Where in the schema, as a JSON pointer (`""` is the root).
        path: String,
        /// The supported keywords, comma separated.
        supported: &'static str,
    },
    /// A JSON-Schema keyword of the subset with a value of the wrong shape.
    #[error("invalid JSON-Schema at {path}: {reason}")]
    InvalidSchema {
        /// Where in the schema, as a JSON pointer.
        path: String,
        /// What is wrong.
        reason: String,
    },
}
