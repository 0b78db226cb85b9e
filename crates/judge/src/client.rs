//! One request to an OpenAI-compatible chat-completions endpoint (blocking, ureq), and the
//! reading of its answer. Retries live in [`judge`](crate::judge).

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::config::Endpoint;
use crate::error::{head, EndpointFailure};

/// Most bytes read from a response body.
const BODY_LIMIT: u64 = 16 << 20;

/// How much of a body an error keeps, in characters.
const BODY_EXCERPT: usize = 200;

/// A failed request, and the `Retry-After` the server asked for, if any.
#[derive(Debug)]
pub(crate) struct Failed {
    pub failure: EndpointFailure,
    pub retry_after: Option<Duration>,
}

impl From<EndpointFailure> for Failed {
    fn from(failure: EndpointFailure) -> Failed {
        Failed { failure, retry_after: None }
    }
}

pub(crate) struct Client {
    url: String,
    agent: ureq::Agent,
    bearer: Option<String>,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    pub(crate) fn new(endpoint: &Endpoint) -> Client {
        let timeout = Duration::from_millis(endpoint.timeout_ms);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_idle_connections_per_host(endpoint.concurrency.max(3))
            .build()
            .into();
        let bearer =
            endpoint.api_key_env.as_deref().and_then(|var| std::env::var(var).ok()).filter(|k| !k.is_empty());
        Client { url: endpoint.chat_url(), agent, bearer, timeout }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Posts `body` and returns the first choice's message text.
    pub(crate) fn complete(&self, body: &str) -> Result<String, Failed> {
        let mut req = self.agent.post(&self.url).header("Content-Type", "application/json");
        if let Some(key) = &self.bearer {
            req = req.header("Authorization", format!("Bearer {key}"));
        }
        let mut resp = req.send(body).map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let retry_after =
            resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let text = resp
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .map_err(|e| self.transport(e))?;
        if !(200..300).contains(&status) {
            let failure = EndpointFailure::Status { status, body: head(text.trim(), BODY_EXCERPT) };
            return Err(Failed { failure, retry_after: if status == 429 { retry_after } else { None } });
        }
        completion_text(&text).map_err(|why| EndpointFailure::Malformed(why).into())
    }

    fn transport(&self, e: ureq::Error) -> Failed {
        match e {
            ureq::Error::Timeout(_) => EndpointFailure::Timeout { after: self.timeout },
            ureq::Error::Io(e) => EndpointFailure::Connect(e.to_string()),
            e @ (ureq::Error::ConnectionFailed | ureq::Error::HostNotFound | ureq::Error::Protocol(_)) => {
                EndpointFailure::Connect(e.to_string())
            }
            other => EndpointFailure::Transport(other.to_string()),
        }
        .into()
    }
}

/// A `Retry-After` in seconds (a non-negative number; an HTTP date is ignored).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// The first choice's message text of a chat-completion body.
pub(crate) fn completion_text(body: &str) -> Result<String, String> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| format!("not JSON ({e}): {}", head(body.trim(), BODY_EXCERPT)))?;
    if let Some(err) = v.get("error") {
        return Err(format!("the body is an error: {}", head(&err.to_string(), BODY_EXCERPT)));
    }
    match v.pointer("/choices/0/message/content") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("`choices[0].message.content` is not a string: {}", head(body, BODY_EXCERPT))),
        None => Err(format!("no `choices[0].message.content`: {}", head(body, BODY_EXCERPT))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_are_read_strictly() {
        let ok = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"VERDICT: yes"}}]}"#;
        assert_eq!(completion_text(ok).unwrap(), "VERDICT: yes");
        for (body, why) in [
            ("<html>busy</html>", "not JSON"),
            ("{\"choices\":[{\"message\":", "not JSON"),
            ("{}", "no `choices[0].message.content`"),
            (r#"{"choices":[]}"#, "no `choices"),
            (r#"{"choices":[{"message":{"content":null}}]}"#, "not a string"),
            (r#"{"error":{"message":"overloaded"}}"#, "overloaded"),
        ] {
            let err = completion_text(body).unwrap_err();
            assert!(err.contains(why), "{body}: {err}");
        }
    }

    #[test]
    fn retry_after_is_seconds() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0.25 "), Some(Duration::from_millis(250)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
