//! A client for OpenAI-compatible chat-completions servers.
//!
//! One request per sample (`n = 1`), each with a `seed` drawn from the sample's keyed stream,
//! so servers that honour seeds reproduce their samples. Requests ask for log-probs; a server
//! that refuses them (HTTP 400 naming `logprobs`) is asked again without, and the client
//! remembers. Timeouts, connection failures, 408, 429 and 5xx are retried with exponential
//! backoff (honouring `Retry-After` on 429); other statuses and malformed JSON fail at once
//! with an error naming the URL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use gristmill_core::rng::KeyedRng;
use rand::Rng;
use serde_json::{json, Value};

use crate::error::LmError;
use crate::sample::{Finish, Generation, SamplingParams};
use crate::template::Message;
use crate::ChatModel;

/// How to reach a server.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Base URL, e.g. `http://127.0.0.1:8080/v1` (requests go to `{base}/chat/completions`).
    pub base_url: String,
    /// Model name sent with each request.
    pub model: String,
    /// Name of the environment variable holding the API key (sent as a bearer token when
    /// set and non-empty).
    pub api_key_env: String,
    /// Timeout of one request, connection included.
    pub timeout: Duration,
    /// Extra attempts after a retryable failure.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// Requests in flight at once, across all threads using this client.
    pub concurrency: usize,
    /// Whether to ask for per-token log-probs.
    pub logprobs: bool,
}

impl ClientConfig {
    /// Defaults for `base_url`: model `default`, key from `OPENAI_API_KEY`, 120 s timeout,
    /// 4 retries from 0.5 s, 4 requests in flight, log-probs on.
    pub fn new(base_url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            model: "default".into(),
            api_key_env: "OPENAI_API_KEY".into(),
            timeout: Duration::from_secs(120),
            retries: 4,
            backoff: Duration::from_millis(500),
            concurrency: 4,
            logprobs: true,
        }
    }
}

/// A counting semaphore (std only).
#[derive(Debug)]
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        SlotGuard(self)
    }
}

struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|e| e.into_inner());
        *free += 1;
        self.0.cv.notify_one();
    }
}

/// An OpenAI-compatible chat-completions client.
#[derive(Debug)]
pub struct OpenAiClient {
    config: ClientConfig,
    url: String,
    agent: ureq::Agent,
    slots: Slots,
    logprobs_refused: AtomicBool,
}

impl OpenAiClient {
    /// A client for `config`.
    ///
    /// # Errors
    /// [`LmError::Request`] if the URL is not `http://` or `https://`, or the concurrency is 0.
    pub fn new(config: ClientConfig) -> Result<OpenAiClient, LmError> {
        let base = config.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(LmError::Request(format!(
                "server URL `{}` must start with http:// or https://",
                config.base_url
            )));
        }
        if config.concurrency == 0 {
            return Err(LmError::Request("concurrency must be at least 1".into()));
        }
        let url = if base.ends_with("/chat/completions") {
            base.to_string()
        } else {
            format!("{base}/chat/completions")
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let slots = Slots { free: Mutex::new(config.concurrency), cv: Condvar::new() };
        Ok(OpenAiClient { config, url, agent, slots, logprobs_refused: AtomicBool::new(false) })
    }

    /// The chat-completions URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One completion, with retries.
    ///
    /// # Errors
    /// [`LmError::Http`] after the last retry, or at once for a non-retryable status;
    /// [`LmError::Malformed`] for a body that is not a chat completion.
    pub fn complete(
        &self,
        messages: &[Message],
        params: &SamplingParams,
        seed: u64,
    ) -> Result<Generation, LmError> {
        let _slot = self.slots.acquire();
        let mut attempt = 0;
        loop {
            match self.attempt(messages, params, seed) {
                Err(LmError::Http { why, retryable: true, .. }) if attempt < self.config.retries => {
                    let mut wait = self.config.backoff.saturating_mul(1 << attempt.min(16));
                    if let Some(secs) = why.strip_prefix("HTTP 429").and_then(retry_after) {
                        wait = wait.max(Duration::from_secs(secs.min(60)));
                    }
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                Err(LmError::Http { url, why, retryable }) if attempt > 0 => {
                    return Err(LmError::Http {
                        url,
                        why: format!("{why} (after {} attempts)", attempt + 1),
                        retryable,
                    })
                }
                other => return other,
            }
        }
    }

    fn attempt(
        &self,
        messages: &[Message],
        params: &SamplingParams,
        seed: u64,
    ) -> Result<Generation, LmError> {
        let want_logprobs = self.config.logprobs && !self.logprobs_refused.load(Ordering::Relaxed);
        match self.post(messages, params, seed, want_logprobs) {
            Err(LmError::Http { why, .. })
                if want_logprobs && why.starts_with("HTTP 400") && why.contains("logprob") =>
            {
                self.logprobs_refused.store(true, Ordering::Relaxed);
                self.post(messages, params, seed, false)
            }
            other => other,
        }
    }

    fn post(
        &self,
        messages: &[Message],
        params: &SamplingParams,
        seed: u64,
        logprobs: bool,
    ) -> Result<Generation, LmError> {
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": seed,
            "n": 1,
        });
        if !params.stop.is_empty() {
            body["stop"] = json!(params.stop);
        }
        if logprobs {
            body["logprobs"] = json!(true);
        }
        let mut req = self.agent.post(&self.url).header("Content-Type", "application/json");
        if let Some(key) = std::env::var(&self.config.api_key_env).ok().filter(|k| !k.is_empty()) {
            req = req.header("Authorization", format!("Bearer {key}"));
        }
        let http = |why: String, retryable: bool| LmError::Http { url: self.url.clone(), why, retryable };
        let mut resp = req.send(body.to_string()).map_err(|e| match e {
            ureq::Error::Timeout(t) => http(format!("timed out ({t}) after {:?}", self.config.timeout), true),
            ureq::Error::Io(e) => http(format!("connection failed: {e}"), true),
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                http(format!("cannot connect: {e}"), true)
            }
            other => http(other.to_string(), false),
        })?;
        let status = resp.status().as_u16();
        let retry_after_header =
            resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(|s| s.trim().to_string());
        let text = resp.body_mut().with_config().limit(64 << 20).read_to_string().map_err(|e| match e {
            ureq::Error::Timeout(t) => http(format!("timed out ({t}) reading the response"), true),
            other => http(format!("reading the response: {other}"), true),
        })?;
        if !(200..300).contains(&status) {
            let retryable = status == 408 || status == 429 || status >= 500;
            let ra = retry_after_header.map(|s| format!(" retry-after={s}")).unwrap_or_default();
            return Err(http(format!("HTTP {status}{ra}: {}", excerpt(&text)), retryable));
        }
        parse_completion(&text).map_err(|why| LmError::Malformed { url: self.url.clone(), why })
    }
}

fn retry_after(rest: &str) -> Option<u64> {
    let s = rest.split_once("retry-after=")?.1;
    s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn excerpt(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    if t.len() < text.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// Reads a chat-completion body: the first choice's text, finish reason and log-probs.
pub(crate) fn parse_completion(text: &str) -> Result<Generation, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {}", excerpt(text)))?;
    if let Some(err) = v.get("error") {
        return Err(format!("server error: {}", excerpt(&err.to_string())));
    }
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| format!("no `choices[0]`: {}", excerpt(text)))?;
    let content = match choice.pointer("/message/content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) => String::new(),
        _ => {
            return Err(format!("`choices[0].message.content` is missing or not a string: {}", excerpt(text)))
        }
    };
    let finish = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("length") => Finish::Length,
        _ => Finish::Stop,
    };
    let mut tokens = Vec::new();
    let mut logprobs = Vec::new();
    if let Some(items) = choice.pointer("/logprobs/content").and_then(Value::as_array) {
        for item in items {
            let (Some(t), Some(lp)) =
                (item.get("token").and_then(Value::as_str), item.get("logprob").and_then(Value::as_f64))
            else {
                return Err(format!(
                    "a `logprobs.content` item lacks `token` or `logprob`: {}",
                    excerpt(&item.to_string())
                ));
            };
            tokens.push(t.to_string());
            logprobs.push(lp);
        }
    }
    let prompt_tokens = v.pointer("/usage/prompt_tokens").and_then(Value::as_u64).map(|n| n as usize);
    Ok(Generation { text: content, token_ids: Vec::new(), tokens, logprobs, finish, prompt_tokens })
}

impl ChatModel for OpenAiClient {
    fn describe(&self) -> String {
        format!("openai:{} ({})", self.config.base_url, self.config.model)
    }

    /// Requests run in parallel up to the concurrency limit; results come back in stream order.
    fn chat(
        &self,
        messages: &[Message],
        params: &SamplingParams,
        rngs: &mut [KeyedRng],
    ) -> Result<Vec<Generation>, LmError> {
        params.validate()?;
        let seeds: Vec<u64> = rngs.iter_mut().map(|r| r.random::<u32>() as u64).collect();
        if seeds.len() == 1 {
            return Ok(vec![self.complete(messages, params, seeds[0])?]);
        }
        std::thread::scope(|s| {
            let handles: Vec<_> =
                seeds.iter().map(|&seed| s.spawn(move || self.complete(messages, params, seed))).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(LmError::Http {
                            url: self.url.clone(),
                            why: "request thread panicked".into(),
                            retryable: false,
                        })
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_completions_and_rejects_malformed_bodies() {
        let ok = r#"{"choices":[{"message":{"role":"assistant","content":"Answer: 4"},"finish_reason":"stop",
            "logprobs":{"content":[{"token":"Answer","logprob":-0.5},{"token":": 4","logprob":-1.0}]}}],
            "usage":{"prompt_tokens":12}}"#;
        let g = parse_completion(ok).unwrap();
        assert_eq!(g.text, "Answer: 4");
        assert_eq!(g.logprobs, vec![-0.5, -1.0]);
        assert_eq!(g.prompt_tokens, Some(12));
        assert_eq!(g.finish, Finish::Stop);
        assert!(parse_completion("<html>").unwrap_err().contains("not JSON"));
        assert!(parse_completion("{}").unwrap_err().contains("choices"));
        assert!(parse_completion(r#"{"choices":[{"message":{}}]}"#).unwrap_err().contains("content"));
        assert!(parse_completion(r#"{"error":{"message":"overloaded"}}"#)
            .unwrap_err()
            .contains("overloaded"));
        assert_eq!(retry_after(" retry-after=3: busy"), Some(3));
    }

    #[test]
    fn bad_urls_are_refused_and_dead_servers_are_named() {
        assert!(OpenAiClient::new(ClientConfig::new("localhost:1")).is_err());
        // Port 9 (discard) on loopback: nothing listens, so the connection is refused.
        let mut c = ClientConfig::new("http://127.0.0.1:9/v1");
        c.retries = 1;
        c.backoff = Duration::from_millis(1);
        c.timeout = Duration::from_secs(2);
        let client = OpenAiClient::new(c).unwrap();
        let err = client.complete(&[Message::user("hi")], &SamplingParams::default(), 0).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("http://127.0.0.1:9/v1/chat/completions"), "{text}");
        assert!(text.contains("after 2 attempts"), "{text}");
    }
}
