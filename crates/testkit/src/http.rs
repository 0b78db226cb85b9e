//! A scripted HTTP/1.1 server on a loopback port, for tests of clients that talk to
//! OpenAI-compatible endpoints (a language-model policy, a rubric judge): each request's body
//! goes to a handler that returns the status and body to send back; every request is counted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A running scripted server (its thread lives until the test process ends).
pub struct ScriptedServer {
    /// `http://127.0.0.1:PORT/v1`.
    pub url: String,
    requests: Arc<AtomicUsize>,
}

impl ScriptedServer {
    /// Serves on `listener` (bind it first when the URL must be known, or must stay the
    /// same across server lives), answering each request body with `handler`'s
    /// `(status line, JSON body)`, e.g. `("200 OK", "{…}")`.
    pub fn start_on<F>(listener: TcpListener, handler: F) -> ScriptedServer
    where
        F: Fn(&str) -> (&'static str, String) + Send + 'static,
    {
        let url = format!("http://{}/v1", listener.local_addr().expect("bound"));
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(body) = read_request(&mut stream) else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                let (status, payload) = handler(&body);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                    payload.len()
                );
            }
        });
        ScriptedServer { url, requests }
    }

    /// Serves on a fresh loopback port.
    pub fn start<F>(handler: F) -> ScriptedServer
    where
        F: Fn(&str) -> (&'static str, String) + Send + 'static,
    {
        ScriptedServer::start_on(TcpListener::bind("127.0.0.1:0").expect("bind loopback"), handler)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A chat-completions response whose one choice says `content`.
pub fn chat_completion(content: &str) -> String {
    serde_json::json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3},
    })
    .to_string()
}

/// Reads one HTTP request (headers and a `Content-Length` body); returns the body.
pub fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}
