//! A server on an ephemeral loopback port, run in-process on its own runtime, and a tiny
//! blocking HTTP/1.1 client that can also send raw bytes.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::Duration;

use gristmill_engine::Environment;
use gristmill_server::{load_envs, serve_on, AppState, ServerConfig, ServerError};
use serde_json::Value;

pub fn spec_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/specs").join(name)
}

/// The two test environments, built once per test binary.
pub fn envs() -> Vec<(String, Environment)> {
    static ENVS: OnceLock<Vec<(String, Environment)>> = OnceLock::new();
    ENVS.get_or_init(|| {
        load_envs(&[spec_path("serve.toml"), spec_path("second.toml")]).expect("test specs load")
    })
    .clone()
}

/// The main test environment (`serve-test`).
pub fn test_env() -> Environment {
    envs().into_iter().next().expect("first env").1
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
}

impl TestServer {
    pub fn start(config: ServerConfig) -> TestServer {
        TestServer::start_with(config, envs())
    }

    /// A server over the given environments.
    pub fn start_with(config: ServerConfig, envs: Vec<(String, Environment)>) -> TestServer {
        let state = AppState::new(config, envs).expect("state");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                addr_tx.send(listener.local_addr()?).ok();
                serve_on(listener, served, async {
                    stopped.await.ok();
                })
                .await
            })
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).expect("server bound");
        TestServer { addr, state, stop: Some(stop), thread: Some(thread) }
    }

    pub fn default() -> TestServer {
        TestServer::start(ServerConfig::default())
    }

    /// Triggers the shutdown future (without waiting).
    pub fn trigger_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the server and returns what `serve_on` returned.
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.trigger_stop();
        self.thread.take().expect("running").join().expect("server thread")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = http(self.addr, "GET", path, &[], None);
        (status, json(&body))
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        let (status, body) = http(self.addr, "DELETE", path, &[], None);
        (status, json(&body))
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("json");
        let (status, body) =
            http(self.addr, "POST", path, &[("Content-Type", "application/json")], Some(&bytes));
        (status, json(&body))
    }

    /// POSTs raw bytes with the given headers.
    pub fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
        let (status, body) = http(self.addr, "POST", path, headers, Some(body));
        (status, json(&body))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.trigger_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// Writes the request head (with `Connection: close` and `Content-Length` when there is a
/// body).
pub fn write_head(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body_len: Option<usize>,
) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(n) = body_len {
        head.push_str(&format!("Content-Length: {n}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
}

/// Reads a whole `Connection: close` response: status and body (de-chunked if needed).
pub fn read_response(stream: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A server that answers before reading a whole (oversize) body may reset the
            // connection after its response; keep what arrived.
            Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read response: {e}"),
        }
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).expect("utf8").trim(), 16)
            .expect("chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    write_head(&mut stream, method, path, headers, body.map(|b| b.len()));
    if let Some(b) = body {
        // The server may answer (413) and close before reading everything; that is fine.
        let _ = stream.write_all(b);
    }
    read_response(&mut stream)
}

/// The error code of an error response, asserting the shape.
pub fn error_code(body: &Value) -> &str {
    let e = body.get("error").unwrap_or_else(|| panic!("no `error` in {body}"));
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "error without message: {body}");
    e["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}"))
}

/// The example server binary (`cargo test` builds examples), or `None` with a note when a
/// run limited to one test file did not build it.
#[allow(dead_code)]
pub fn serve_example() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().and_then(|d| d.parent()).unwrap().join("examples").join("serve");
    if example.exists() {
        return Some(example);
    }
    eprintln!(
        "skipped: example binary missing at {} (run `cargo test -p gristmill-server`)",
        example.display()
    );
    None
}

/// The address a started example server prints on its first stderr line (`… http://ADDR …`),
/// and the rest of its stderr.
#[allow(dead_code)]
pub fn announced_addr(
    child: &mut std::process::Child,
) -> (std::net::SocketAddr, std::io::BufReader<std::process::ChildStderr>) {
    use std::io::{BufRead, BufReader};
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr piped"));
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (addr, stderr)
}
