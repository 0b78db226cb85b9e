//! Errors of the language-model layer. Every error names the file or URL it is about.

use std::path::PathBuf;

use crate::tokenizer::TokenizerError;

/// What went wrong loading, running or reaching a language model.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// The model file could not be opened.
    #[error("cannot open model file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The model file is not a valid GGUF model (truncated, wrong format, missing tensors).
    #[error("model file {path} is corrupt or incomplete: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The GGUF file holds an architecture this crate cannot run.
    #[error("model file {path} has architecture `{arch}`; only `llama` (dense) models are supported")]
    UnsupportedArchitecture {
        /// The file.
        path: PathBuf,
        /// The architecture found.
        arch: String,
    },
    /// The tokenizer metadata could not be turned into a tokenizer.
    #[error("model file {path}: tokenizer: {source}")]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: TokenizerError,
    },
    /// The chat template is not one this crate can render.
    #[error("model file {path}: unsupported chat template ({why}); use the raw template instead")]
    Template {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A request to the model is invalid (empty prompt, too long, bad sampling parameters).
    #[error("invalid request: {0}")]
    Request(String),
    /// The model failed while computing (a bug or resource exhaustion, not bad input).
    #[error("model {model}: computation failed: {why}")]
    Compute {
        /// The model (file path or name).
        model: String,
        /// The backend's message.
        why: String,
    },
    /// An HTTP server could not be reached, timed out, or answered with an error status.
    #[error("{url}: {why}")]
    Http {
        /// The URL requested.
        url: String,
        /// What went wrong (status and body excerpt, timeout, connection error).
        why: String,
        /// Whether retrying might help (timeouts, 429, 5xx, connection errors).
        retryable: bool,
    },
    /// A server answered with JSON that is not a chat completion.
    #[error("{url}: malformed response: {why}")]
    Malformed {
        /// The URL requested.
        url: String,
        /// What is wrong, with an excerpt of the body.
        why: String,
    },
}

impl LmError {
    /// Whether retrying the same request may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, LmError::Http { retryable: true, .. })
    }
}
