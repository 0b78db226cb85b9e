//! A tiny OpenAI-compatible chat-completions server for the tests: `std::net` only, one thread
//! per connection, `Connection: close`. Each test hands it a function from the request it saw
//! to the reply to give, so every answer is decided by the request and the tests are
//! deterministic. It counts requests, requests in flight at once, and attempts per distinct
//! user message.

#![allow(dead_code)]

pub mod temp;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

/// What the server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    /// 200 with a chat completion whose message is `text`.
    pub fn text(text: &str) -> Reply {
        let body = json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        });
        Reply::raw(200, &body.to_string())
    }

    /// `status` with `body` as it is.
    pub fn raw(status: u16, body: &str) -> Reply {
        Reply { status, headers: Vec::new(), body: body.to_string(), delay: Duration::ZERO }
    }

    /// The reply with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The reply, sent only after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// A request as the handler sees it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The JSON body.
    pub body: Value,
    /// The system message, if any.
    pub system: Option<String>,
    /// The last user message.
    pub user: String,
    /// How many requests with the same user message came before this one.
    pub attempt: usize,
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

struct State {
    handler: Box<Handler>,
    requests: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    attempts: Mutex<HashMap<String, usize>>,
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// The running server; stopped when dropped.
pub struct MockServer {
    /// Base URL, `http://127.0.0.1:PORT/v1`.
    pub url: String,
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl MockServer {
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            handler: Box::new(handler),
            requests: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            attempts: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            workers: Mutex::new(Vec::new()),
        });
        let st = Arc::clone(&state);
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st2 = Arc::clone(&st);
                let worker = std::thread::spawn(move || serve(&st2, conn));
                st.workers.lock().unwrap().push(worker);
            }
        });
        MockServer { url: format!("http://{addr}/v1"), addr, state, accept: Some(accept) }
    }

    /// Requests answered (or being answered) so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// The most requests that were being handled at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Every request seen, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        let workers = std::mem::take(&mut *self.state.workers.lock().unwrap());
        for w in workers {
            let _ = w.join();
        }
    }
}

fn read_request(conn: &TcpStream) -> Option<Vec<u8>> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(conn);
    let mut content_length = None;
    let mut chunked = false;
    let mut line = String::new();
    reader.read_line(&mut line).ok()?; // request line
    if line.is_empty() {
        return None;
    }
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => content_length = value.trim().parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        let mut b = vec![0; content_length.unwrap_or(0)];
        reader.read_exact(&mut b).ok()?;
        body = b;
    }
    Some(body)
}

fn serve(st: &State, mut conn: TcpStream) {
    let Some(raw) = read_request(&conn) else { return };
    if st.stop.load(Ordering::SeqCst) {
        return;
    }
    st.requests.fetch_add(1, Ordering::SeqCst);
    let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    st.max_in_flight.fetch_max(now, Ordering::SeqCst);

    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let content = |role: &str| {
        messages
            .iter()
            .rev()
            .find(|m| m["role"] == role)
            .and_then(|m| m["content"].as_str())
            .map(String::from)
    };
    let user = content("user").unwrap_or_default();
    let attempt = {
        let mut a = st.attempts.lock().unwrap();
        let n = a.entry(user.clone()).or_insert(0);
        *n += 1;
        *n - 1
    };
    let seen = Seen { body, system: content("system"), user, attempt };
    st.seen.lock().unwrap().push(seen.clone());
    let reply = (st.handler)(&seen);
    std::thread::sleep(reply.delay);

    // Leave the in-flight count before answering, so that a client which sends its next
    // request as soon as it has read this answer is never counted twice.
    st.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reason(reply.status),
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(reply.body.as_bytes());
    let _ = conn.flush();
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}
