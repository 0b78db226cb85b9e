//! Errors: [`ServerError`] for starting a server, [`ApiError`] for one bad request.

use std::path::PathBuf;

use axum::http::header::{CONNECTION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gristmill_core::{ParseError, SpecError};
use gristmill_engine::EngineError;
use serde::Serialize;

/// Why a server could not start (or stopped with an I/O failure).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A spec file could not be read.
    #[error("reading spec {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A spec did not parse or validate.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// An environment could not be built from a valid spec.
    #[error("{origin}: {source}")]
    Build {
        /// Where the spec came from.
        origin: String,
        /// The engine's error.
        source: EngineError,
    },
    /// Two specs use the same `name`.
    #[error("duplicate environment name `{name}`: defined by {first} and by {second}")]
    DuplicateEnv {
        /// The name.
        name: String,
        /// The first definition.
        first: String,
        /// The second definition.
        second: String,
    },
    /// Nothing to serve.
    #[error("no environments to serve")]
    NoEnvironments,
    /// A setting is out of range.
    #[error("invalid server config: {0}")]
    Config(String),
    /// A token list (file or environment variable) is not in the format of
    /// [`Tokens`](crate::Tokens).
    #[error("invalid tokens: {0}")]
    Tokens(String),
    /// The listening socket could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Serving failed, or the runtime or the signal handlers could not start.
    #[error("server I/O: {0}")]
    Io(#[from] std::io::Error),
}

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = ($code:literal, $status:ident),)*) => {
        /// The machine-readable `error.code` of every error response, with its HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in documentation order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];
            /// The code as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }
            /// The HTTP status sent with it.
            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }
        }
    };
}

error_codes! {
    /// The body is not syntactically valid JSON (400).
    MalformedJson = ("malformed_json", BAD_REQUEST),
    /// The JSON does not have the request's shape, or its values do not fit together (422).
    InvalidRequest = ("invalid_request", UNPROCESSABLE_ENTITY),
    /// A JSON body was sent without `Content-Type: application/json` (415).
    UnsupportedMediaType = ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE),
    /// The body is larger than `body_limit_bytes` (413).
    BodyTooLarge = ("body_too_large", PAYLOAD_TOO_LARGE),
    /// A batch (tasks, items or forks) is larger than `max_batch`, the documented maximum
    /// (422).
    BatchTooLarge = ("batch_too_large", UNPROCESSABLE_ENTITY),
    /// The body did not arrive within `body_read_timeout`; the connection is closed (408).
    RequestTimeout = ("request_timeout", REQUEST_TIMEOUT),
    /// The server requires a bearer token and the request has none, or not a valid one
    /// (401).
    Unauthorized = ("unauthorized", UNAUTHORIZED),
    /// The token is valid but its role may not do this (gold answers need an `eval`
    /// token) (403).
    Forbidden = ("forbidden", FORBIDDEN),
    /// No environment has that name (404).
    UnknownEnv = ("unknown_env", NOT_FOUND),
    /// The environment has no `[[episode]]` source with that id (404).
    UnknownEpisode = ("unknown_episode", NOT_FOUND),
    /// A task key is not in the wire format (400).
    BadTaskKey = ("bad_task_key", BAD_REQUEST),
    /// A well-formed task key names no task of the environment (an eval index past the
    /// suite) (404).
    UnknownTaskKey = ("unknown_task_key", NOT_FOUND),
    /// No live session has that id (never existed, closed, expired, or another token's)
    /// (404).
    UnknownSession = ("unknown_session", NOT_FOUND),
    /// No stored snapshot has that id (never existed, closed, expired, or another token's)
    /// (404).
    UnknownSnapshot = ("unknown_snapshot", NOT_FOUND),
    /// The action text did not parse by the episode family's rule (422).
    UnparsableAction = ("unparsable_action", UNPROCESSABLE_ENTITY),
    /// The action index is out of range (422).
    InvalidAction = ("invalid_action", UNPROCESSABLE_ENTITY),
    /// The episode has ended; it takes no more steps (409).
    EpisodeDone = ("episode_done", CONFLICT),
    /// `max_sessions` sessions are live (429).
    SessionLimit = ("session_limit", TOO_MANY_REQUESTS),
    /// `max_snapshots` snapshots are stored (429).
    SnapshotLimit = ("snapshot_limit", TOO_MANY_REQUESTS),
    /// No such route (404).
    NotFound = ("not_found", NOT_FOUND),
    /// The route exists but not with this method (405).
    MethodNotAllowed = ("method_not_allowed", METHOD_NOT_ALLOWED),
    /// The environment could not generate the task (a spec whose task universe is too small
    /// for its eval split) (500).
    TaskGeneration = ("task_generation", INTERNAL_SERVER_ERROR),
    /// A bug: a piece gave a non-finite reward, or a handler failed (500).
    Internal = ("internal", INTERNAL_SERVER_ERROR),
}

/// One failed request: an [`ErrorCode`], a message naming the problem, and for
/// `unparsable_action` the parse outcome. Sent as
/// `{"error": {"code": "...", "message": "...", "parse"?: {"reason": ..., "detail": ...}}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The code.
    pub code: ErrorCode,
    /// Human-readable, naming the offending value.
    pub message: String,
    /// Why an action did not parse (`unparsable_action` only).
    pub parse: Option<ParseError>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), parse: None }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorInner<'a>,
}

#[derive(Serialize)]
struct ErrorInner<'a> {
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parse: Option<&'a ParseError>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorInner {
                code: self.code.as_str(),
                message: &self.message,
                parse: self.parse.as_ref(),
            },
        };
        let mut response = crate::handlers::json_bytes(self.code.status(), &body);
        let headers = response.headers_mut();
        match self.code {
            ErrorCode::Unauthorized => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"gristmill\""));
            }
            ErrorCode::RequestTimeout => {
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

/// How many characters of client text a response repeats: every echo (ids, keys, names,
/// unparsable answers and actions, offending values in error messages) is at most this
/// long; a longer text is cut to one character less and `…`.
pub const ECHO_MAX_CHARS: usize = 64;

/// The longest error message, in characters, whatever the request held.
pub const MESSAGE_MAX_CHARS: usize = 1024;

/// Client-supplied text shortened for a response: at most [`ECHO_MAX_CHARS`] characters,
/// the last of them `…` when it was cut.
pub(crate) fn clip(s: &str) -> String {
    clip_to(s, ECHO_MAX_CHARS)
}

fn clip_to(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some(_) => {
            let end = s.char_indices().nth(max - 1).map_or(s.len(), |(i, _)| i);
            format!("{}…", &s[..end])
        }
    }
}

/// A message that may quote client text (serde's messages do: unknown field names and
/// offending string values, in backticks or Rust-escaped double quotes): every quoted
/// stretch is clipped to [`ECHO_MAX_CHARS`], and the whole to [`MESSAGE_MAX_CHARS`].
pub(crate) fn clip_echoes(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MESSAGE_MAX_CHARS + 8));
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest.as_bytes()[open];
        out.push_str(&rest[..=open]);
        let inner = &rest[open + 1..];
        // A double-quoted stretch is Rust-escaped: it ends at the first unescaped quote.
        let close = if quote == b'"' {
            let mut escaped = false;
            inner.char_indices().find_map(|(i, c)| {
                let end = !escaped && c == '"';
                escaped = !escaped && c == '\\';
                end.then_some(i)
            })
        } else {
            inner.find('`')
        };
        let Some(close) = close else {
            out.push_str(&clip(inner));
            rest = "";
            break;
        };
        out.push_str(&clip(&inner[..close]));
        out.push(quote as char);
        rest = &inner[close + 1..];
    }
    out.push_str(rest);
    clip_to(&out, MESSAGE_MAX_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_are_clipped() {
        let long = "x".repeat(10_000);
        assert_eq!(clip("short"), "short");
        assert_eq!(clip(&long).chars().count(), ECHO_MAX_CHARS);
        assert!(clip(&long).ends_with('…'));
        assert_eq!(clip(&"é".repeat(64)), "é".repeat(64));
        assert_eq!(clip(&"é".repeat(65)), format!("{}…", "é".repeat(63)));

        let m = format!("unknown field `{long}`, expected one of `env`, `seed`");
        let c = clip_echoes(&m);
        assert_eq!(c, format!("unknown field `{}…`, expected one of `env`, `seed`", "x".repeat(63)));
        let m = format!("invalid type: string \"a\\\"{long}\", expected u64 at line 1 column 9");
        let c = clip_echoes(&m);
        assert!(c.starts_with("invalid type: string \"a\\\"xxx"), "{c}");
        assert!(c.ends_with("…\", expected u64 at line 1 column 9"), "{c}");
        // Unbalanced quotes and many short echoes stay bounded.
        assert!(clip_echoes(&format!("`{long}")).chars().count() <= ECHO_MAX_CHARS + 1);
        let many = "`ab` ".repeat(5000);
        assert_eq!(clip_echoes(&many).chars().count(), MESSAGE_MAX_CHARS);
    }
}
