//! Extractors whose rejections are [`ApiError`]s, so every bad request gets the one JSON
//! error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// A JSON request body. Requires `Content-Type: application/json` (or `…+json`), at most
/// `body_limit_bytes`, valid JSON, and the request type's exact shape (unknown fields are
/// refused).
pub(crate) struct ApiJson<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes` as a `T`, classifying failures: not JSON → `malformed_json`; JSON of the
/// wrong shape → `invalid_request` naming the field path.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(e) if e.classify() == Category::Data => {
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
                Ok(_) => format!("invalid request body: {e}"),
            };
            Err(ApiError::new(ErrorCode::InvalidRequest, message))
        }
        Err(e) => Err(ApiError::new(ErrorCode::MalformedJson, format!("the body is not valid JSON: {e}"))),
    }
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
            } else {
                ApiError::new(
                    ErrorCode::MalformedJson,
                    format!("could not read the request body: {}", r.body_text()),
                )
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// One path parameter as a string.
pub(crate) struct ApiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state).await.map(|Path(p)| ApiPath(p)).map_err(|r| {
            ApiError::new(ErrorCode::InvalidRequest, format!("bad path parameter: {}", r.body_text()))
        })
    }
}
