//! A scratch directory removed on drop (shared by the unit tests in `src/cache.rs`, which
//! include this file, and the integration tests).

/// A fresh directory `gristmill-judge-<name>-<pid>` in the temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Creates it (removing what an earlier run left).
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("gristmill-judge-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
