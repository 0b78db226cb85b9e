//! Extractors whose rejections are [`ApiError`]s, so every bad request gets the one JSON
//! error shape.

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::error::Category;

use crate::conn::BodyTimeout;
use crate::error::{clip, clip_echoes, ApiError, ErrorCode};
use crate::state::AppState;

/// A JSON request body. Requires `Content-Type: application/json` (or `…+json`), at most
/// `body_limit_bytes`, arriving within `body_read_timeout`, valid JSON, and the request
/// type's exact shape (unknown fields are refused).
pub(crate) struct ApiJson<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes` as a `T`, classifying failures: not JSON anywhere in the body →
/// `malformed_json` (whatever the fields before the syntax error were); JSON of the wrong
/// shape → `invalid_request` naming the field path. Echoed names and values are clipped.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let error = match serde_json::from_slice(bytes) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    // A shape error can be met before a syntax error further on: check the whole body
    // (UTF-8, then syntax) first, so that a body that is not JSON is always
    // `malformed_json`, wherever its fault is.
    let malformed = |why: String| {
        Err(ApiError::new(ErrorCode::MalformedJson, format!("the body is not valid JSON: {why}")))
    };
    if let Err(e) = std::str::from_utf8(bytes) {
        return malformed(format!("it is not UTF-8 (byte {})", e.valid_up_to()));
    }
    if error.classify() != Category::Data {
        return malformed(error.to_string());
    }
    if let Err(syntax) = serde_json::from_slice::<IgnoredAny>(bytes) {
        return malformed(syntax.to_string());
    }
    // Parse again for the path of the offending field (the error path only).
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let message = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(pe) => {
            let path = pe.path().to_string();
            if path == "." {
                format!("invalid request body: {}", pe.into_inner())
            } else {
                format!("invalid request body at `{path}`: {}", pe.into_inner())
            }
        }
        Ok(_) => format!("invalid request body: {error}"),
    };
    Err(ApiError::new(ErrorCode::InvalidRequest, clip_echoes(&message)))
}

/// Whether `err` or one of its sources is the body read timeout.
fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<BodyTimeout>() {
            return true;
        }
        next = e.source();
    }
    false
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "the body must be JSON sent with `Content-Type: application/json`",
            ));
        }
        let limit = state.config().body_limit_bytes;
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::BodyTooLarge,
                    format!("the request body exceeds the limit of {limit} bytes (body_limit_bytes)"),
                )
            } else if is_body_timeout(&r) {
                ApiError::new(
                    ErrorCode::RequestTimeout,
                    format!(
                        "the request body did not arrive within {} ms (body_read_timeout)",
                        state.config().body_read_timeout.as_millis()
                    ),
                )
            } else {
                ApiError::new(
                    ErrorCode::MalformedJson,
                    format!("could not read the request body: {}", clip_echoes(&r.body_text())),
                )
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// One path parameter as a string. A parameter that does not decode (percent-encoded
/// bytes that are not UTF-8) names nothing, so it gets the 404 of what the route looks up.
pub(crate) struct ApiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(p)) => Ok(ApiPath(p)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let key = match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { key } => key.as_str(),
                    _ => "",
                };
                let (code, what) = match key {
                    "session" => (ErrorCode::UnknownSession, "session"),
                    "token" => (ErrorCode::UnknownSnapshot, "snapshot"),
                    "env" => (ErrorCode::UnknownEnv, "environment"),
                    _ => (ErrorCode::NotFound, "route"),
                };
                Err(ApiError::new(code, format!("no such {what}: the path does not decode as UTF-8")))
            }
            Err(r) => Err(ApiError::new(ErrorCode::NotFound, format!("bad path: {}", clip(&r.body_text())))),
        }
    }
}
