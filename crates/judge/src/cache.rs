//! Verdict caches: the [`VerdictCache`] seam, an in-memory one and an append-only JSONL file.
//!
//! A cache maps a [`CacheKey`] to the [`Verdict`] first stored under it. `put` is
//! insert-if-absent: a second verdict for a key that is already stored is dropped, so every
//! reader of a key sees the same verdict forever, and a replay reproduces the first run bit
//! for bit even when the grader itself is not deterministic. Only parsed verdicts are ever
//! stored; failures and unparseable answers are not.
//!
//! ## The JSONL file
//!
//! One record per line, appended as it is stored, never rewritten:
//!
//! ```text
//! {"v":1,"key":"<64 hex digits>","value":"yes","text":"…the grader's answer…"}
//! {"v":1,"key":"<64 hex digits>","value":{"score":{"points":7,"max":10}},"text":"…"}
//! ```
//!
//! `value` is `"yes"`, `"no"` or `{"score":{"points":n,"max":m}}`. When the file is opened it is
//! read whole. A last line without its newline is what a crash in mid-append leaves: it is
//! dropped (and cut from the file, reported by [`JsonlCache::recovered`]) if it is not a
//! record, kept (and given its newline) if it is. Blank lines are skipped. Any other line that
//! is not a record — bad JSON, not UTF-8, an unknown field or version, a bad key, a score
//! `n/m` with `m = 0` or `n > m` — is [`CacheError::Corrupt`] naming the file and the line.
//! When a key appears twice the first record wins. One process should write a file at a time.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use serde::{Deserialize, Serialize};

use crate::error::{head, CacheError};
use crate::key::CacheKey;
use crate::verdict::{Verdict, VerdictValue};

/// Where verdicts are kept between calls, runs and processes.
///
/// Implementations must be safe to call from many threads at once. `put` must be
/// insert-if-absent (the first verdict stored under a key is the one every later `get`
/// returns); [`Judge`](crate::Judge) relies on it to give concurrent callers of the same key
/// the same verdict.
pub trait VerdictCache: Send + Sync {
    /// The verdict stored under `key`, if any.
    ///
    /// # Errors
    /// [`CacheError`] if the store cannot be read.
    fn get(&self, key: &CacheKey) -> Result<Option<Verdict>, CacheError>;

    /// Stores `verdict` under `key` unless a verdict is already stored there.
    ///
    /// # Errors
    /// [`CacheError`] if the store cannot be written.
    fn put(&self, key: &CacheKey, verdict: &Verdict) -> Result<(), CacheError>;
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Verdicts in memory, for one process's lifetime.
#[derive(Debug, Default)]
pub struct MemoryCache {
    map: RwLock<HashMap<CacheKey, Verdict>>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> MemoryCache {
        MemoryCache::default()
    }

    /// How many verdicts it holds.
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> Vec<(CacheKey, Verdict)> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = map.iter().map(|(k, v)| (*k, v.clone())).collect();
        all.sort_by_key(|e| e.0);
        all
    }
}

impl VerdictCache for MemoryCache {
    fn get(&self, key: &CacheKey) -> Result<Option<Verdict>, CacheError> {
        Ok(self.map.read().unwrap_or_else(PoisonError::into_inner).get(key).cloned())
    }

    fn put(&self, key: &CacheKey, verdict: &Verdict) -> Result<(), CacheError> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        map.entry(*key).or_insert_with(|| verdict.clone());
        Ok(())
    }
}

/// Version of a JSONL record.
const RECORD_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    v: u32,
    key: CacheKey,
    value: VerdictValue,
    text: String,
}

/// What opening a [`JsonlCache`] repaired: a last line cut short by a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The 1-based number of the dropped line.
    pub line: usize,
    /// How many bytes were cut from the end of the file.
    pub dropped_bytes: u64,
}

#[derive(Debug)]
struct Inner {
    map: HashMap<CacheKey, Verdict>,
    file: File,
    len: u64,
}

/// Verdicts in an append-only JSONL file (format in the [module documentation](self)),
/// loaded whole when opened and kept in memory.
#[derive(Debug)]
pub struct JsonlCache {
    path: PathBuf,
    inner: Mutex<Inner>,
    recovered: Option<Recovery>,
}

impl JsonlCache {
    /// Opens (or creates) the cache file at `path` and loads it.
    ///
    /// # Errors
    /// [`CacheError::Io`] if it cannot be read or written; [`CacheError::Corrupt`] naming the
    /// first complete line that is not a record.
    pub fn open(path: impl AsRef<Path>) -> Result<JsonlCache, CacheError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| CacheError::Io { path: path.clone(), source };
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(io)?;
        let bytes = std::fs::read(&path).map_err(io)?;
        let corrupt = |line: usize, why: String| CacheError::Corrupt { path: path.clone(), line, why };

        let mut map = HashMap::new();
        let mut pos = 0;
        let mut line_no = 0;
        let mut recovered = None;
        let mut len = bytes.len() as u64;
        while pos < bytes.len() {
            line_no += 1;
            let (line, complete) = match bytes[pos..].iter().position(|&b| b == b'\n') {
                Some(n) => (&bytes[pos..pos + n], true),
                None => (&bytes[pos..], false),
            };
            match parse_record(line) {
                Ok(None) => {}
                Ok(Some((key, verdict))) => {
                    map.entry(key).or_insert(verdict);
                    if !complete {
                        file.write_all(b"\n").map_err(io)?;
                        len += 1;
                    }
                }
                Err(why) if complete => return Err(corrupt(line_no, why)),
                Err(_) => {
                    file.set_len(pos as u64).map_err(io)?;
                    file.seek(SeekFrom::End(0)).map_err(io)?;
                    recovered = Some(Recovery { line: line_no, dropped_bytes: line.len() as u64 });
                    len = pos as u64;
                }
            }
            pos += line.len() + 1;
        }
        Ok(JsonlCache { path, inner: Mutex::new(Inner { map, file, len }), recovered })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The truncated last line dropped when the file was opened, if there was one.
    pub fn recovered(&self) -> Option<&Recovery> {
        self.recovered.as_ref()
    }

    /// How many verdicts it holds.
    pub fn len(&self) -> usize {
        lock(&self.inner).map.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flushes the file to disk (`fsync`). Appends are written at once but not synced: a
    /// process crash loses nothing written, a power cut may lose the last records.
    ///
    /// # Errors
    /// [`CacheError::Io`].
    pub fn sync(&self) -> Result<(), CacheError> {
        lock(&self.inner)
            .file
            .sync_data()
            .map_err(|source| CacheError::Io { path: self.path.clone(), source })
    }
}

/// A line as a record; `Ok(None)` for a blank line.
fn parse_record(line: &[u8]) -> Result<Option<(CacheKey, Verdict)>, String> {
    let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8 ({e})"))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let record: Record = serde_json::from_str(text)
        .map_err(|e| format!("not a verdict record ({e}): {}", head(text.trim(), 120)))?;
    if record.v != RECORD_VERSION {
        return Err(format!("record version {} is not {RECORD_VERSION}", record.v));
    }
    if let VerdictValue::Score { points, max } = record.value {
        if max == 0 || points > max {
            return Err(format!("score {points}/{max} is not a verdict"));
        }
    }
    Ok(Some((record.key, Verdict { value: record.value, text: record.text })))
}

impl VerdictCache for JsonlCache {
    fn get(&self, key: &CacheKey) -> Result<Option<Verdict>, CacheError> {
        Ok(lock(&self.inner).map.get(key).cloned())
    }

    fn put(&self, key: &CacheKey, verdict: &Verdict) -> Result<(), CacheError> {
        let mut inner = lock(&self.inner);
        if inner.map.contains_key(key) {
            return Ok(());
        }
        let record =
            Record { v: RECORD_VERSION, key: *key, value: verdict.value, text: verdict.text.clone() };
        let mut line = serde_json::to_string(&record).map_err(|e| CacheError::Backend(Box::new(e)))?;
        line.push('\n');
        if let Err(source) = inner.file.write_all(line.as_bytes()) {
            // Cut a partial record so that the next append starts on a fresh line.
            let len = inner.len;
            let _ = inner.file.set_len(len);
            return Err(CacheError::Io { path: self.path.clone(), source });
        }
        inner.len += line.len() as u64;
        inner.map.insert(*key, verdict.clone());
        Ok(())
    }
}

#[cfg(test)]
#[path = "../tests/common/temp.rs"]
mod test_temp;

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_temp::TempDir;

    fn key(n: u8) -> CacheKey {
        CacheKey([n; 32])
    }

    fn verdict(value: VerdictValue, text: &str) -> Verdict {
        Verdict { value, text: text.into() }
    }

    #[test]
    fn memory_cache_keeps_the_first_verdict() {
        let c = MemoryCache::new();
        assert!(c.is_empty());
        c.put(&key(1), &verdict(VerdictValue::Yes, "a")).unwrap();
        c.put(&key(1), &verdict(VerdictValue::No, "b")).unwrap();
        assert_eq!(c.get(&key(1)).unwrap(), Some(verdict(VerdictValue::Yes, "a")));
        assert_eq!(c.get(&key(2)).unwrap(), None);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn jsonl_cache_persists_appends_and_keeps_the_first() {
        let dir = TempDir::new("persist");
        let path = dir.0.join("v.jsonl");
        let scale = VerdictValue::Score { points: 7, max: 10 };
        {
            let c = JsonlCache::open(&path).unwrap();
            assert!(c.is_empty() && c.recovered().is_none());
            c.put(&key(1), &verdict(VerdictValue::Yes, "line one\nVERDICT: yes")).unwrap();
            c.put(&key(2), &verdict(scale, "SCORE: 7/10")).unwrap();
            c.put(&key(1), &verdict(VerdictValue::No, "ignored")).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.starts_with(&format!("{{\"v\":1,\"key\":\"{}\",\"value\":\"yes\"", key(1))), "{text}");
        assert!(text.contains(r#""value":{"score":{"points":7,"max":10}}"#), "{text}");
        let c = JsonlCache::open(&path).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&key(1)).unwrap(), Some(verdict(VerdictValue::Yes, "line one\nVERDICT: yes")));
        assert_eq!(c.get(&key(2)).unwrap().unwrap().score(), 0.7);
        c.put(&key(3), &verdict(VerdictValue::No, "")).unwrap();
        c.sync().unwrap();
        drop(c);
        assert_eq!(JsonlCache::open(&path).unwrap().len(), 3);
    }

    #[test]
    fn a_truncated_last_line_is_dropped_and_cut() {
        let dir = TempDir::new("truncated");
        let path = dir.0.join("v.jsonl");
        {
            let c = JsonlCache::open(&path).unwrap();
            c.put(&key(1), &verdict(VerdictValue::Yes, "a")).unwrap();
            c.put(&key(2), &verdict(VerdictValue::No, "b")).unwrap();
        }
        let whole = std::fs::read(&path).unwrap();
        let first_len = whole.iter().position(|&b| b == b'\n').unwrap() + 1;
        // A crash in the middle of the second record (and in the middle of a hex digit pair).
        std::fs::write(&path, &whole[..first_len + 30]).unwrap();
        let c = JsonlCache::open(&path).unwrap();
        assert_eq!(c.recovered(), Some(&Recovery { line: 2, dropped_bytes: 30 }));
        assert_eq!(c.len(), 1);
        assert_eq!(std::fs::read(&path).unwrap(), &whole[..first_len]);
        c.put(&key(3), &verdict(VerdictValue::Yes, "c")).unwrap();
        drop(c);
        let c = JsonlCache::open(&path).unwrap();
        assert!(c.recovered().is_none());
        assert_eq!(c.len(), 2);

        // A complete last record that lost only its newline is kept, and the newline restored.
        std::fs::write(&path, &whole[..whole.len() - 1]).unwrap();
        let c = JsonlCache::open(&path).unwrap();
        assert!(c.recovered().is_none());
        assert_eq!(c.len(), 2);
        assert_eq!(std::fs::read(&path).unwrap(), whole);
    }

    #[test]
    fn other_corruption_names_the_line() {
        let dir = TempDir::new("corrupt");
        let path = dir.0.join("v.jsonl");
        let good = |n: u8| format!("{{\"v\":1,\"key\":\"{}\",\"value\":\"no\",\"text\":\"t\"}}\n", key(n));
        let cases: Vec<(String, usize, &str)> = vec![
            (format!("{}garbage\n{}", good(1), good(2)), 2, "not a verdict record"),
            (format!("{}\n{}{{\"v\":1}}\n", good(1), good(2)), 4, "missing field"),
            (good(1).replace("\"v\":1", "\"v\":2"), 1, "record version 2"),
            (good(1).replace("\"text\"", "\"extra\":0,\"text\""), 1, "unknown field"),
            (good(1).replace(&key(1).to_hex(), "abc"), 1, "64 hex digits"),
            (good(1).replace("\"no\"", "\"maybe\""), 1, "unknown variant"),
            (good(1).replace("\"no\"", r#"{"score":{"points":3,"max":2}}"#), 1, "score 3/2"),
            (good(1).replace("\"no\"", r#"{"score":{"points":0,"max":0}}"#), 1, "score 0/0"),
        ];
        for (text, line, why) in cases {
            std::fs::write(&path, &text).unwrap();
            let err = JsonlCache::open(&path).unwrap_err();
            match &err {
                CacheError::Corrupt { line: l, why: w, .. } => {
                    assert_eq!(*l, line, "{text}");
                    assert!(w.contains(why), "{w}");
                }
                other => panic!("{other}"),
            }
            assert!(err.to_string().contains(&format!("v.jsonl:{line}:")), "{err}");
        }
        let mut bytes = good(1).into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\n");
        std::fs::write(&path, &bytes).unwrap();
        let err = JsonlCache::open(&path).unwrap_err().to_string();
        assert!(err.contains(":2: not UTF-8"), "{err}");
    }
}
