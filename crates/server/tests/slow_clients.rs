//! Stalled and slow clients: connections that stop mid-head or mid-body, idle kept-alive
//! connections and clients that never read are closed within their timeouts; a normal
//! client is served meanwhile, also when stalled connections fill the connection limit and
//! when the process is short of descriptors. Every wait here is bounded.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{http, TestServer};
use gristmill_server::ServerConfig;

/// Opens a connection and sends `bytes`, then nothing more.
fn stalled(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(bytes).expect("write");
    s
}

const HALF_HEAD: &[u8] = b"POST /v1/score HTTP/1.1\r\nHost: test\r\nContent-Ty";

fn half_body() -> Vec<u8> {
    let body = br#"{"env": "serve-test", "task_key": "e-0", "response": "Answer: 1"}"#;
    let mut req = format!(
        "POST /v1/score HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body[..body.len() / 2]);
    req
}

/// Reads until the server closes the connection (EOF or reset) or `max` passes; returns
/// how long that took from `since` and what arrived. `None`: still open after `max`.
fn wait_closed(mut s: TcpStream, since: Instant, max: Duration) -> Option<(Duration, Vec<u8>)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = max.checked_sub(since.elapsed())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1)))).ok();
        match s.read(&mut buf) {
            Ok(0) => return Some((since.elapsed(), got)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return None
            }
            Err(_) => return Some((since.elapsed(), got)),
        }
    }
}

/// GET /health on a fresh connection: 200, and how long it took.
fn normal_client(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let (status, body) = http(addr, "GET", "/health", &[], None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    started.elapsed()
}

fn wait_until(what: &str, max: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + max;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Half heads are dropped after `header_read_timeout`, half bodies get `408` after
/// `body_read_timeout`; meanwhile a normal client is served at once.
#[test]
fn stalled_heads_and_bodies_are_closed_within_their_timeouts() {
    let (header, body) = (Duration::from_millis(600), Duration::from_millis(900));
    let server = TestServer::start(ServerConfig {
        header_read_timeout: header,
        body_read_timeout: body,
        ..ServerConfig::default()
    });
    let started = Instant::now();
    let heads: Vec<TcpStream> = (0..40).map(|_| stalled(server.addr, HALF_HEAD)).collect();
    let half = half_body();
    let bodies: Vec<TcpStream> = (0..40).map(|_| stalled(server.addr, &half)).collect();
    wait_until("80 stalled connections", Duration::from_secs(5), || server.state.connection_count() >= 80);

    // Served meanwhile, promptly.
    for _ in 0..5 {
        let took = normal_client(server.addr);
        assert!(took < Duration::from_secs(1), "a normal request took {took:?} beside stalled clients");
    }
    assert!(started.elapsed() < header, "the checks above must run before the timeouts");

    let slack = Duration::from_secs(3);
    let readers: Vec<_> = heads
        .into_iter()
        .map(|s| (true, s))
        .chain(bodies.into_iter().map(|s| (false, s)))
        .map(|(is_head, s)| thread::spawn(move || (is_head, wait_closed(s, started, header + body + slack))))
        .collect();
    for r in readers {
        let (is_head, outcome) = r.join().unwrap();
        let (took, reply) = outcome.unwrap_or_else(|| panic!("a stalled connection is still open"));
        let reply = String::from_utf8_lossy(&reply);
        if is_head {
            assert!(took >= header - Duration::from_millis(50), "half head closed early: {took:?}");
            assert!(took < header + slack, "half head closed late: {took:?}");
            assert!(reply.is_empty(), "a half head got a reply: {reply}");
        } else {
            assert!(took >= body - Duration::from_millis(50), "half body closed early: {took:?}");
            assert!(took < body + slack, "half body closed late: {took:?}");
            assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
            assert!(reply.contains("request_timeout") && reply.contains("body_read_timeout"), "{reply}");
            assert!(reply.to_ascii_lowercase().contains("connection: close"), "{reply}");
        }
    }
    wait_until("the stalled connections to be gone", Duration::from_secs(3), || {
        server.state.connection_count() == 0
    });
    assert!(normal_client(server.addr) < Duration::from_secs(1));
}

/// A kept-alive connection is closed after `keep_alive_timeout` without a request, and its
/// next request's head is on the clock from its first byte.
#[test]
fn idle_kept_alive_connections_are_closed_and_later_heads_are_timed() {
    let (header, keep_alive) = (Duration::from_millis(500), Duration::from_millis(700));
    let server = TestServer::start(ServerConfig {
        header_read_timeout: header,
        keep_alive_timeout: keep_alive,
        ..ServerConfig::default()
    });
    let request = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n";
    let read_reply = |s: &mut TcpStream| {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // One response: its head, then Content-Length bytes.
        loop {
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0, "closed before the reply");
            got.extend_from_slice(&buf[..n]);
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .expect("content-length");
                if got.len() >= end + 4 + len {
                    assert!(head.starts_with("http/1.1 200"), "{head}");
                    return;
                }
            }
        }
    };

    // Idle after a request: closed after keep_alive_timeout, not header_read_timeout.
    let mut s = stalled(server.addr, request);
    read_reply(&mut s);
    let since = Instant::now();
    let (took, rest) =
        wait_closed(s, since, keep_alive + Duration::from_secs(3)).expect("idle connection kept open");
    assert!(rest.is_empty());
    assert!(took >= keep_alive - Duration::from_millis(50), "closed early: {took:?}");
    assert!(took < keep_alive + Duration::from_secs(2), "closed late: {took:?}");

    // A second request that stalls mid-head: closed header_read_timeout after its first byte.
    let mut s = stalled(server.addr, request);
    read_reply(&mut s);
    thread::sleep(keep_alive / 2);
    s.write_all(b"GET /health HTTP/1.1\r\nHo").unwrap();
    let since = Instant::now();
    let (took, _) =
        wait_closed(s, since, header + Duration::from_secs(3)).expect("stalled second head kept open");
    assert!(took >= header - Duration::from_millis(50), "closed early: {took:?}");
    assert!(took < header + Duration::from_secs(2), "closed late: {took:?}");
    // Before the first request too: a connection that sends nothing is on the head clock.
    let silent = TcpStream::connect(server.addr).unwrap();
    let since = Instant::now();
    let (took, _) =
        wait_closed(silent, since, header + Duration::from_secs(3)).expect("silent connection kept open");
    assert!(took < header + Duration::from_secs(2), "closed late: {took:?}");
}

/// Stalled connections that fill `max_connections` make room for a new client: the one
/// that has waited longest is closed (an idle kept-alive one before any stalled one), and
/// the new client is served at once.
#[test]
fn at_the_connection_limit_a_normal_client_is_still_served() {
    let limit = 8;
    let server = TestServer::start(ServerConfig {
        max_connections: limit,
        header_read_timeout: Duration::from_secs(60),
        body_read_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    });
    let still_open = |s: TcpStream| wait_closed(s, Instant::now(), Duration::from_millis(100)).is_none();
    let half = half_body();
    for stall in [HALF_HEAD, half.as_slice()] {
        let mut open: Vec<TcpStream> = Vec::new();
        for _ in 0..limit {
            open.push(stalled(server.addr, stall));
            // Distinct ages, so "oldest" is well defined.
            thread::sleep(Duration::from_millis(20));
            let n = open.len();
            wait_until("the stalled connection to register", Duration::from_secs(5), || {
                server.state.connection_count() == n
            });
        }
        let took = normal_client(server.addr);
        assert!(took < Duration::from_secs(2), "a normal request took {took:?} at the limit");
        // The oldest stalled connection made the room; the others are untouched.
        let mut open = open.into_iter();
        let oldest = open.next().unwrap();
        assert!(
            wait_closed(oldest, Instant::now(), Duration::from_secs(3)).is_some(),
            "the oldest is still open"
        );
        for (i, s) in open.enumerate() {
            assert!(still_open(s), "stalled connection {} was closed", i + 1);
        }
        wait_until("the rest to go", Duration::from_secs(5), || server.state.connection_count() == 0);
    }

    // An idle kept-alive connection goes before older stalled ones.
    let mut stalls: Vec<TcpStream> = Vec::new();
    for _ in 0..limit - 1 {
        stalls.push(stalled(server.addr, HALF_HEAD));
        thread::sleep(Duration::from_millis(20));
    }
    let mut idle = stalled(server.addr, b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n");
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    assert!(idle.read(&mut buf).unwrap() > 0, "no reply on the kept-alive connection");
    wait_until("the limit to fill", Duration::from_secs(5), || server.state.connection_count() == limit);
    assert!(normal_client(server.addr) < Duration::from_secs(2));
    assert!(
        wait_closed(idle, Instant::now(), Duration::from_secs(3)).is_some(),
        "the idle connection is still open"
    );
    for (i, s) in stalls.into_iter().enumerate() {
        assert!(still_open(s), "stalled connection {i} was closed before the idle one");
    }
}

/// A client that sends requests but never reads the responses is dropped after
/// `write_timeout` of no progress.
#[test]
fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
    let write = Duration::from_millis(500);
    let server = TestServer::start(ServerConfig { write_timeout: write, ..ServerConfig::default() });
    let mut s = TcpStream::connect(server.addr).unwrap();
    // Pipelined listings, far more than the socket buffers hold; never read.
    let one = b"GET /v1/envs HTTP/1.1\r\nHost: test\r\n\r\n";
    let many: Vec<u8> = one.iter().copied().cycle().take(one.len() * 4000).collect();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(&many);
    wait_until("the connection to open", Duration::from_secs(5), || server.state.connection_count() == 1);
    // Well before the 60 s keep-alive timeout: the stalled write is what closes it.
    wait_until("the server to drop the non-reading client", write + Duration::from_secs(10), || {
        server.state.connection_count() == 0
    });
    assert!(normal_client(server.addr) < Duration::from_secs(1));
    drop(s);
}

/// The reported failure: with few descriptors, stalled connections stopped the server.
/// Under `ulimit -n 64`, the example server keeps answering beside 150 stalled
/// connections, both with a limit below the descriptors and with one above them (then
/// `accept` fails for lack of descriptors and the server frees one).
#[cfg(unix)]
#[test]
fn a_low_descriptor_limit_does_not_stop_the_server() {
    let Some(example) = common::serve_example() else { return };
    for max_connections in ["32", "1000"] {
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
            .arg(&example)
            .args(["--addr", "127.0.0.1:0", "--threads", "1", "--max-connections", max_connections])
            .args(["--header-timeout-ms", "60000", "--body-timeout-ms", "60000"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the example server");
        let (addr, _stderr) = common::announced_addr(&mut child);
        let half = half_body();
        let stalls: Vec<TcpStream> =
            (0..150).map(|i| stalled(addr, if i % 2 == 0 { HALF_HEAD } else { half.as_slice() })).collect();
        thread::sleep(Duration::from_millis(300));
        for round in 0..5 {
            let took = normal_client(addr);
            assert!(
                took < Duration::from_secs(3),
                "max_connections {max_connections}, round {round}: /health took {took:?}"
            );
        }
        drop(stalls);
        std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
            thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "exit status {status}");
    }
}
