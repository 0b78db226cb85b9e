//! JSON Lines: a bounded line reader (a line longer than the limit is skipped without being
//! held in memory) and the parse of one line into a record.

use std::io::{self, Read};

use serde_json::{Map, Value};

use crate::error::ErrorKind;
use crate::path::json_type;

const CHUNK: usize = 64 * 1024;
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One line of a file.
pub(crate) enum Line<'a> {
    /// A line within the limit, without its terminator (`\n` or `\r\n`).
    Text(&'a [u8]),
    /// A line over the limit (its length without the terminator); its bytes were skipped.
    TooLong(u64),
}

/// Reads lines of at most `limit` bytes, tracking each line's byte offset and number, and
/// optionally feeding every byte read to a BLAKE3 hasher.
pub(crate) struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    /// Offset and 1-based number of the line last returned.
    line_offset: u64,
    line_number: u64,
    limit: usize,
    eof: bool,
    hasher: Option<Box<blake3::Hasher>>,
}

impl<R: Read> LineReader<R> {
    /// Reads from `inner`, which is at file offset `offset` and line `number` + 1.
    pub(crate) fn new(inner: R, limit: usize, offset: u64, number: u64) -> Self {
        LineReader {
            inner,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            offset,
            line_offset: offset,
            line_number: number,
            limit,
            eof: false,
            hasher: None,
        }
    }

    /// Feeds every byte read from now on to a BLAKE3 hasher.
    pub(crate) fn hash_bytes(&mut self) {
        self.hasher = Some(Box::new(blake3::Hasher::new()));
    }

    /// The hasher, after the last line.
    pub(crate) fn take_hasher(&mut self) -> Option<Box<blake3::Hasher>> {
        self.hasher.take()
    }

    /// The line length limit.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// The byte offset of the line last returned.
    pub(crate) fn line_offset(&self) -> u64 {
        self.line_offset
    }

    /// The 1-based number of the line last returned.
    pub(crate) fn line_number(&self) -> u64 {
        self.line_number
    }

    /// The file offset just past the last line returned.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads more bytes after `end`, growing the buffer if it is full. Returns the count read.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 && self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).min(self.limit.saturating_add(2 * CHUNK));
            self.buf.resize(grown.max(self.buf.len() + CHUNK), 0);
        }
        let n = loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if let Some(h) = &mut self.hasher {
            h.update(&self.buf[self.end..self.end + n]);
        }
        self.end += n;
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    /// The first byte of the file that is not whitespace or a UTF-8 byte order mark (call
    /// before the first line; gives up, with `None`, past the line limit).
    pub(crate) fn first_significant_byte(&mut self) -> io::Result<Option<u8>> {
        loop {
            let data = &self.buf[self.start..self.end];
            let data = data.strip_prefix(BOM).unwrap_or(data);
            if let Some(b) = data.iter().find(|b| !b.is_ascii_whitespace()) {
                return Ok(Some(*b));
            }
            if self.eof || self.end - self.start > self.limit {
                return Ok(None);
            }
            self.fill()?;
        }
    }

    /// The next line, or `None` at the end of the file.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        let mut scanned = 0; // bytes of buf[start..end] known to hold no newline
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start + scanned..self.end]) {
                let newline = self.start + scanned + i;
                return Ok(Some(self.take_line(newline, 1)));
            }
            scanned = self.end - self.start;
            if scanned > self.limit {
                return self.skip_long_line(scanned as u64).map(Some);
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let end = self.end;
                return Ok(Some(self.take_line(end, 0)));
            }
            self.fill()?;
        }
    }

    /// Returns `buf[start..newline]` as a line and moves past it and its `terminator` bytes.
    fn take_line(&mut self, newline: usize, terminator: usize) -> Line<'_> {
        let (mut begin, mut end) = (self.start, newline);
        self.line_offset = self.offset;
        self.line_number += 1;
        self.offset += (newline - self.start + terminator) as u64;
        self.start = newline + terminator;
        if self.line_offset == 0 && self.buf[begin..end].starts_with(BOM) {
            begin += BOM.len(); // the byte order mark belongs to no line
        }
        if end > begin && self.buf[end - 1] == b'\r' {
            end -= 1;
        }
        if end - begin > self.limit {
            Line::TooLong((end - begin) as u64)
        } else {
            Line::Text(&self.buf[begin..end])
        }
    }

    /// Skips the rest of a line of which `seen` bytes (all of `buf[start..end]`) are read.
    fn skip_long_line(&mut self, mut seen: u64) -> io::Result<Line<'static>> {
        self.line_offset = self.offset;
        self.line_number += 1;
        let mut last_was_cr = self.end > self.start && self.buf[self.end - 1] == b'\r';
        loop {
            self.start = 0;
            self.end = 0;
            if self.fill()? == 0 {
                self.offset = self.line_offset + seen;
                return Ok(Line::TooLong(seen - u64::from(last_was_cr)));
            }
            if let Some(i) = memchr::memchr(b'\n', &self.buf[..self.end]) {
                let cr = if i > 0 { self.buf[i - 1] == b'\r' } else { last_was_cr };
                self.offset = self.line_offset + seen + i as u64 + 1;
                self.start = i + 1;
                return Ok(Line::TooLong(seen + i as u64 - u64::from(cr)));
            }
            seen += self.end as u64;
            last_was_cr = self.buf[self.end - 1] == b'\r';
        }
    }
}

/// Whether a line holds no row (empty or whitespace only).
pub(crate) fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Parses one line into a record.
pub(crate) fn parse_record(line: &[u8]) -> Result<Map<String, Value>, ErrorKind> {
    let text = std::str::from_utf8(line).map_err(|e| ErrorKind::InvalidUtf8 { byte: e.valid_up_to() })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ErrorKind::NotAnObject { found: json_type(&other) }),
        Err(e) => {
            // serde_json counts lines within the text; a JSON line is one line.
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = match message.strip_suffix(&suffix) {
                Some(head) => format!("{head} at column {}", e.column()),
                None => message,
            };
            Err(ErrorKind::InvalidJson(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8], limit: usize) -> Vec<(u64, u64, Result<String, u64>)> {
        let mut reader = LineReader::new(data, limit, 0, 0);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            let item = match line {
                Line::Text(t) => Ok(String::from_utf8(t.to_vec()).unwrap()),
                Line::TooLong(n) => Err(n),
            };
            out.push((reader.line_offset(), reader.line_number(), item));
        }
        assert_eq!(reader.offset(), data.len() as u64);
        out
    }

    #[test]
    fn offsets_terminators_and_bom() {
        let got = lines(b"\xEF\xBB\xBFab\r\n\ncd\nlast", 10);
        assert_eq!(
            got,
            vec![
                (0, 1, Ok("ab".into())),
                (7, 2, Ok("".into())),
                (8, 3, Ok("cd".into())),
                (11, 4, Ok("last".into())),
            ]
        );
    }

    #[test]
    fn long_lines_are_skipped_and_measured() {
        let mut data = b"ok\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 300_000));
        data.extend(b"\r\nafter\n");
        data.extend(std::iter::repeat_n(b'y', 20));
        let got = lines(&data, 16);
        assert_eq!(
            got,
            vec![
                (0, 1, Ok("ok".into())),
                (3, 2, Err(300_000)),
                (300_005, 3, Ok("after".into())),
                (300_011, 4, Err(20)),
            ]
        );
    }

    #[test]
    fn lines_up_to_the_limit_pass() {
        let data = [vec![b'a'; 16], b"\n".to_vec(), vec![b'b'; 17], b"\n".to_vec()].concat();
        let got = lines(&data, 16);
        assert_eq!(got[0].2, Ok("a".repeat(16)));
        assert_eq!(got[1].2, Err(17));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(parse_record(b"[1]").unwrap_err().to_string(), "expected a JSON object, found an array");
        assert_eq!(
            parse_record(b"{\"a\" 1}").unwrap_err().to_string(),
            "invalid JSON: expected `:` at column 6"
        );
        assert_eq!(
            parse_record(b"{\"a\":\"\xff\"}").unwrap_err().to_string(),
            "invalid UTF-8 at byte 6 of the line"
        );
    }
}
