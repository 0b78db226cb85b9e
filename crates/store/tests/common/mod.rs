//! What the store's tests share (the unit tests in `src/tests.rs` include this file too).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A unique database path in the temp dir, removed (with its WAL files) on drop.
pub struct TempDb(pub PathBuf);

impl TempDb {
    /// A fresh path whose name carries `tag`, the process id and a counter.
    pub fn new(tag: &str) -> TempDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        TempDb(
            std::env::temp_dir().join(format!("gristmill-store-{tag}-{}-{n}-{nanos}.db", std::process::id())),
        )
    }
    /// The database path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}
