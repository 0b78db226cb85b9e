//! Typed errors: configuration problems, cache failures, and scoring failures.
//!
//! A [`ConfigError`] names the field it is in and is reported when a judge is built (all of a
//! rubric's problems at once, as [`ConfigErrors`]). A [`JudgeError`] is what
//! [`Judge::score`](crate::Judge::score) returns: it always names the judge and the caller's
//! task, and the rubric item when the failure belongs to one.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::key::CacheKey;
use crate::verdict::UnparseableVerdict;

/// One problem in a [`RubricConfig`](crate::RubricConfig), naming the field it is in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A template names a placeholder that does not exist.
    #[error(
        "{field}: unknown placeholder `{{{name}}}` (known: {{prompt}}, {{response}}, {{question}}, \
         {{gold}}, {{format}}; write `{{{{` and `}}}}` for literal braces)"
    )]
    UnknownPlaceholder {
        /// The template field, e.g. `template.user`.
        field: String,
        /// The name between the braces.
        name: String,
    },
    /// A `{` that no `}` closes.
    #[error("{field}: `{{` at byte {offset} is not closed by `}}` (write `{{{{` for a literal brace)")]
    UnclosedPlaceholder {
        /// The template field.
        field: String,
        /// Byte offset of the `{` in the template.
        offset: usize,
    },
    /// A `}` that closes nothing.
    #[error("{field}: `}}` at byte {offset} closes nothing (write `}}}}` for a literal brace)")]
    UnmatchedBrace {
        /// The template field.
        field: String,
        /// Byte offset of the `}` in the template.
        offset: usize,
    },
    /// A placeholder the grader cannot do without appears in no template.
    #[error("template: no message contains `{{{name}}}`, so the grader would never see the {name}")]
    MissingPlaceholder {
        /// `response` or `question`.
        name: &'static str,
    },
    /// A string that must not be empty (or blank) is.
    #[error("{field}: must not be empty")]
    Empty {
        /// The field, e.g. `endpoint.model` or `items[2].question`.
        field: String,
    },
    /// The endpoint URL is not `http://…` or `https://…`.
    #[error("endpoint.url: `{url}` must start with http:// or https://")]
    BadUrl {
        /// The URL as configured.
        url: String,
    },
    /// An `https://` endpoint in a build without the `tls` feature.
    #[error("endpoint.url: `{url}` is https:// but this build of gristmill-judge has no `tls` feature")]
    NoTls {
        /// The URL as configured.
        url: String,
    },
    /// The rubric has no items.
    #[error("items: a rubric needs at least one item")]
    NoItems,
    /// A weight that is negative, NaN or infinite.
    #[error("{field}: weight {weight} must be finite and at least 0")]
    BadWeight {
        /// The field, e.g. `items[1].weight`.
        field: String,
        /// The weight as configured.
        weight: f64,
    },
    /// Every weight is 0, so the weighted total is undefined.
    #[error("items: the weights sum to 0; at least one item needs a positive weight")]
    ZeroTotalWeight,
    /// Two items share an id.
    #[error("items[{second}].id: `{id}` is already the id of items[{first}]")]
    DuplicateId {
        /// The repeated id.
        id: String,
        /// Index of the first item with it.
        first: usize,
        /// Index of the second item with it.
        second: usize,
    },
    /// A score scale outside `1..=1000`.
    #[error("{field}: scale {max} must be between 1 and 1000")]
    BadScale {
        /// The field, e.g. `verdict` or `items[0].verdict`.
        field: String,
        /// The scale's maximum as configured.
        max: u32,
    },
    /// A numeric setting outside its range.
    #[error("{field}: {why}")]
    OutOfRange {
        /// The field, e.g. `sampling.temperature`.
        field: &'static str,
        /// What the range is.
        why: String,
    },
}

/// Every problem found in one rubric, in field order.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The problems.
    pub fn problems(&self) -> &[ConfigError] {
        &self.0
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "invalid rubric: {one}"),
            many => {
                write!(f, "invalid rubric ({} problems):", many.len())?;
                for p in many {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigErrors {}

/// A verdict cache that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache file could not be opened, read or appended to.
    #[error("{}: {source}", path.display())]
    Io {
        /// The cache file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A complete line of a JSONL cache file is not a cache record.
    #[error("{}:{line}: {why}", path.display())]
    Corrupt {
        /// The cache file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// A cached verdict that an item of this key cannot have (a `SCORE` for a yes/no item, a
    /// score above its scale): the cache holds something it was never given by this crate.
    #[error("the cached verdict {value:?} for key {key} does not fit an item of kind `{kind}`")]
    Mismatch {
        /// The key looked up.
        key: CacheKey,
        /// The value found.
        value: crate::verdict::VerdictValue,
        /// The item's verdict kind.
        kind: crate::verdict::VerdictKind,
    },
    /// A failure in another implementation of [`VerdictCache`](crate::VerdictCache) (a
    /// database, say).
    #[error("{0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// Which rubric item a failure belongs to: its index in `items` and its id, if it has one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemRef {
    /// 0-based index in the rubric's `items`.
    pub index: usize,
    /// The item's id, if the rubric gave it one.
    pub id: Option<String>,
}

impl fmt::Display for ItemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "items[{}] (`{id}`)", self.index),
            None => write!(f, "items[{}]", self.index),
        }
    }
}

/// Why one scoring call failed. Always names the judge and the caller's task identifier, and
/// the rubric item when the failure belongs to one.
#[derive(Debug, thiserror::Error)]
#[error("judge `{judge}`, task `{task}`{}: {kind}", item.as_ref().map(|i| format!(", {i}")).unwrap_or_default())]
pub struct JudgeError {
    /// The judge's id ([`RubricConfig::id`](crate::RubricConfig::id)).
    pub judge: String,
    /// The task identifier the caller passed in [`JudgeRequest`](crate::JudgeRequest).
    pub task: String,
    /// The rubric item, when the failure belongs to one.
    pub item: Option<ItemRef>,
    /// What went wrong (boxed, to keep `Result<_, JudgeError>` small).
    pub kind: Box<ErrorKind>,
}

/// What went wrong in a [`JudgeError`].
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The endpoint failed and retries (if the failure was retryable) ran out.
    #[error("{url}: {failure} (after {attempts} attempt{})", if *attempts == 1 { "" } else { "s" })]
    Endpoint {
        /// The chat-completions URL.
        url: String,
        /// Requests sent for this item, the failing one included.
        attempts: u32,
        /// The last failure.
        failure: EndpointFailure,
    },
    /// The grader answered, but not in the verdict format, on every attempt allowed.
    #[error("{verdict} (after {attempts} attempt{})", if *attempts == 1 { "" } else { "s" })]
    Unparseable {
        /// Requests sent for this item.
        attempts: u32,
        /// The last answer's problem and an excerpt of it.
        verdict: UnparseableVerdict,
    },
    /// Offline mode, and the cache holds no verdict for this item's key.
    #[error("offline, and the verdict cache has no entry for key {key}")]
    OfflineMiss {
        /// The key that was looked up.
        key: CacheKey,
    },
    /// The verdict cache failed.
    #[error("verdict cache: {0}")]
    Cache(#[from] CacheError),
    /// The template uses `{gold}` but the request carries no gold answer.
    #[error("the prompt template uses {{gold}} but the request has no gold answer")]
    MissingGold,
}

/// One failed request to the endpoint.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EndpointFailure {
    /// No complete response within the timeout (connecting included). Retried.
    #[error("timed out after {} ms", after.as_millis())]
    Timeout {
        /// The configured timeout.
        after: Duration,
    },
    /// The connection could not be made or broke. Retried.
    #[error("connection failed: {0}")]
    Connect(String),
    /// A status other than 2xx. Retried for 429 and 5xx only.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// An excerpt of the body.
        body: String,
    },
    /// A 2xx body that is not a chat completion with a text answer. Retried.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Any other transport failure (a TLS error, say). Not retried.
    #[error("{0}")]
    Transport(String),
}

impl EndpointFailure {
    /// Whether the request is worth sending again.
    pub fn is_retryable(&self) -> bool {
        match self {
            EndpointFailure::Timeout { .. } | EndpointFailure::Connect(_) | EndpointFailure::Malformed(_) => {
                true
            }
            EndpointFailure::Status { status, .. } => *status == 429 || *status >= 500,
            EndpointFailure::Transport(_) => false,
        }
    }
}

/// At most `max` characters of `text` from its start, with `…` when cut.
pub(crate) fn head(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// At most `max` characters of `text` from its end, with `…` when cut.
pub(crate) fn tail(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let cut = text.char_indices().nth(n - max).map_or(text.len(), |(i, _)| i);
    format!("…{}", &text[cut..])
}
