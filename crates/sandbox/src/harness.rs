//! The call-test harness protocol, parent side.
//!
//! The child receives the solution (a file), the test *expressions* and a per-process random
//! nonce; it never receives an expected value. It reports on a dedicated pipe (fd 3, apart
//! from the solution's stdout and stderr) in frames
//!
//! ```text
//! <nonce> <kind> <index> <length>\n<payload>
//! ```
//!
//! which must arrive in exactly this order: `R` (loaded) or `X` (load failed); then for each
//! test in the batch, `S i` (started) followed by one of `V i` (the serialized value), `U i`
//! (not serializable) or `E i` (exception); finally `D`. Anything else — a wrong nonce, an
//! index out of order, a duplicate, a malformed header, an oversized payload, bytes after
//! `D` — is a protocol violation and fails every test not yet reported.
//!
//! The nonce is not a secret from the solution (it runs in the same interpreter and can
//! read the harness's memory); its job is to make stray writes and text echoed from
//! elsewhere fail loudly. What makes forging pointless is that a frame only carries a
//! *value*: a test passes only when the parent's own comparison of that value with the
//! expected one succeeds, so the most any forged frame can do is what a solution returning
//! that value would have done.

use std::time::{Duration, Instant};

use serde_json::json;

/// The harness script (passed with `-c`).
pub(crate) const SCRIPT: &str = include_str!("harness.py");

/// A fresh random nonce, 32 hex digits.
pub(crate) fn nonce() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    let mut got = 0;
    while got < b.len() {
        // SAFETY: getrandom into a local buffer.
        let n = unsafe { libc::getrandom(b[got..].as_mut_ptr().cast(), b.len() - got, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        got += n as usize;
    }
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// One test as the child sees it: its index, its expression, JSON or `repr`.
pub(crate) struct CallInput<'a> {
    pub index: usize,
    pub expr: &'a str,
    pub json: bool,
}

/// The request written to the harness's stdin.
pub(crate) fn request(nonce: &str, max_value: u64, tests: &[CallInput<'_>]) -> Vec<u8> {
    let tests: Vec<_> = tests.iter().map(|t| json!({"i": t.index, "expr": t.expr, "json": t.json})).collect();
    serde_json::to_vec(&json!({"nonce": nonce, "max_value": max_value, "tests": tests})).expect("plain JSON")
}

/// What the harness reported for one test.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reported {
    /// The serialized value.
    Value(String),
    /// The value could not be serialized (or was too large).
    Unserializable(String),
    /// The expression raised.
    Exception(String),
}

/// Where the harness is in its sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Loading the solution.
    Loading,
    /// Between tests; the next one is `batch[k]`.
    Between(usize),
    /// Running `batch[k]`.
    Running(usize),
    /// Load failed (`X`) or all done (`D`).
    Finished,
}

/// Parses frames and checks their order for one process.
pub(crate) struct Driver {
    nonce: Vec<u8>,
    max_payload: usize,
    buf: Vec<u8>,
    batch: Vec<usize>,
    pub phase: Phase,
    /// Per batch position: what was reported and how long the test took.
    pub reported: Vec<Option<(Reported, Duration)>>,
    /// The load error (`X`), if any.
    pub load_error: Option<String>,
    started: Instant,
}

impl Driver {
    pub(crate) fn new(nonce: &str, max_payload: usize, batch: Vec<usize>) -> Driver {
        let n = batch.len();
        Driver {
            nonce: nonce.as_bytes().to_vec(),
            max_payload,
            buf: Vec::new(),
            batch,
            phase: Phase::Loading,
            reported: vec![None; n],
            load_error: None,
            started: Instant::now(),
        }
    }

    /// Feeds bytes from the result channel. `Ok(true)` when a new phase began whose wall
    /// clock starts now (loaded, or a test started).
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<bool, String> {
        self.buf.extend_from_slice(bytes);
        let mut restart = false;
        loop {
            let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > 128 {
                    return Err("frame header too long".into());
                }
                return Ok(restart);
            };
            if nl > 128 {
                return Err("frame header too long".into());
            }
            let header = std::str::from_utf8(&self.buf[..nl]).map_err(|_| "frame header is not text")?;
            let mut parts = header.split(' ');
            let (Some(nonce), Some(kind), Some(index), Some(len), None) =
                (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err("malformed frame header".into());
            };
            if nonce.as_bytes() != self.nonce {
                return Err("frame with a wrong nonce".into());
            }
            let index: i64 = index.parse().map_err(|_| "malformed frame index")?;
            let len: usize = len.parse().map_err(|_| "malformed frame length")?;
            if len > self.max_payload {
                return Err("frame payload exceeds the limit".into());
            }
            if self.buf.len() < nl + 1 + len {
                return Ok(restart);
            }
            let payload = String::from_utf8_lossy(&self.buf[nl + 1..nl + 1 + len]).into_owned();
            let kind = kind.to_string();
            self.buf.drain(..nl + 1 + len);
            restart |= self.on_frame(&kind, index, payload)?;
        }
    }

    fn on_frame(&mut self, kind: &str, index: i64, payload: String) -> Result<bool, String> {
        let now = Instant::now();
        let expect = |k: usize| self.batch.get(k).map(|&i| i as i64);
        match (self.phase, kind) {
            (Phase::Loading, "R") if index == -1 => {
                self.phase = Phase::Between(0);
                Ok(true)
            }
            (Phase::Loading, "X") if index == -1 => {
                self.load_error = Some(payload);
                self.phase = Phase::Finished;
                Ok(false)
            }
            (Phase::Between(k), "S") if expect(k) == Some(index) => {
                self.phase = Phase::Running(k);
                self.started = now;
                Ok(true)
            }
            (Phase::Between(k), "D") if k == self.batch.len() && index == -1 => {
                self.phase = Phase::Finished;
                Ok(false)
            }
            (Phase::Running(k), "V" | "U" | "E") if expect(k) == Some(index) => {
                let r = match kind {
                    "V" => Reported::Value(payload),
                    "U" => Reported::Unserializable(payload),
                    _ => Reported::Exception(payload),
                };
                self.reported[k] = Some((r, now - self.started));
                self.phase = Phase::Between(k + 1);
                Ok(false)
            }
            (phase, _) => Err(format!("unexpected frame '{kind} {index}' while {phase:?}")),
        }
    }

    /// When the current test (if any) started.
    pub(crate) fn current_started(&self) -> Instant {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(nonce: &str, kind: &str, index: i64, payload: &str) -> Vec<u8> {
        let mut v = format!("{nonce} {kind} {index} {}\n", payload.len()).into_bytes();
        v.extend_from_slice(payload.as_bytes());
        v
    }

    #[test]
    fn accepts_the_sequence_in_any_chunking() {
        let n = nonce().unwrap();
        let mut all = Vec::new();
        for (k, i, p) in [
            ("R", -1, ""),
            ("S", 4, ""),
            ("V", 4, "[1, 2]"),
            ("S", 7, ""),
            ("E", 7, "ValueError: x"),
            ("D", -1, ""),
        ] {
            all.extend(frame(&n, k, i, p));
        }
        for chunk in [1, 3, 7, all.len()] {
            let mut d = Driver::new(&n, 1000, vec![4, 7]);
            for c in all.chunks(chunk) {
                d.feed(c).unwrap();
            }
            assert_eq!(d.phase, Phase::Finished);
            assert_eq!(d.reported[0].as_ref().unwrap().0, Reported::Value("[1, 2]".into()));
            assert_eq!(d.reported[1].as_ref().unwrap().0, Reported::Exception("ValueError: x".into()));
        }
    }

    #[test]
    fn rejects_forgeries() {
        let n = nonce().unwrap();
        let other = nonce().unwrap();
        let cases: Vec<Vec<u8>> = vec![
            frame(&other, "R", -1, ""),
            [frame(&n, "R", -1, ""), frame(&n, "V", 0, "5")].concat(),
            [frame(&n, "R", -1, ""), frame(&n, "S", 1, "")].concat(),
            [frame(&n, "R", -1, ""), frame(&n, "S", 0, ""), frame(&n, "V", 0, "5"), frame(&n, "V", 0, "5")]
                .concat(),
            [frame(&n, "R", -1, ""), frame(&n, "D", -1, "")].concat(),
            format!("{n} V 0 99999999\n").into_bytes(),
            b"hello world this is not a frame\n".to_vec(),
            vec![b'x'; 200],
        ];
        for c in cases {
            let mut d = Driver::new(&n, 1000, vec![0]);
            assert!(d.feed(&c).is_err(), "{:?}", String::from_utf8_lossy(&c));
        }
    }
}
