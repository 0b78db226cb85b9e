//! # gristmill-testkit
//!
//! What gristmill's tests and benches share, so that no test pastes its own spec or its
//! own loader: the spec fixtures in `tests/fixtures/` (one file each, named by what they
//! exercise), the engine's one loader with panics that name the fixture, and the one switch
//! that regenerates golden files.
//!
//! ```no_run
//! let (env, config) = gristmill_testkit::trainable(&gristmill_testkit::fixture("rich"));
//! assert!(config.learning_rate > 0.0 && env.pieces.len() > 3);
//! ```
//!
//! Invariant: used only by tests and benches; nothing here is part of a product path.

use std::path::PathBuf;

use gristmill_core::spec::Overrides;
use gristmill_engine::Environment;
use gristmill_learn::TrainConfig;

pub mod http;

/// The repository's root directory.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh, empty scratch directory for one test: `gristmill-<name>-<pid>` in the temp dir,
/// removed first if an earlier run left it.
pub fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gristmill-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("scratch dir {}: {e}", d.display()));
    d
}

/// The standard error of a command that must have failed cleanly: a non-zero exit, no
/// panic, and every one of `needles` in the message. Returns the text for further checks.
pub fn failed_saying(out: &std::process::Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the command should have failed; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "`{needle}` not in: {err}");
    }
    err
}

/// The text of `tests/fixtures/<name>.toml`.
pub fn fixture(name: &str) -> String {
    let path = root().join("tests/fixtures").join(format!("{name}.toml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The text of `examples/<name>` (a shipped example spec).
pub fn example(name: &str) -> String {
    let path = root().join("examples").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("example {}: {e}", path.display()))
}

/// `text` with its `[policy]` table's body replaced by `body` (the lines after `[policy]` up
/// to the next table header), so one fixture serves every policy a test wants.
pub fn with_policy(text: &str, body: &str) -> String {
    let mut out = String::with_capacity(text.len() + body.len());
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        if line.trim() == "[policy]" {
            while lines.peek().is_some_and(|l| !l.trim_start().starts_with('[')) {
                lines.next();
            }
            out.push_str(body.trim_end());
            out.push('\n');
        }
    }
    out
}

/// `text` with `from` replaced by `to`, which must occur (a fixture edit that silently did
/// nothing would test the wrong thing).
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the fixture has no `{from}` to replace");
    text.replacen(from, to, 1)
}

/// Loads spec text with the engine's one loader; panics with the spec's problems.
pub fn load(text: &str) -> Environment {
    gristmill_engine::load(text, "test spec", &Overrides::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// [`load`] with overrides.
pub fn load_with(text: &str, overrides: &Overrides) -> Environment {
    gristmill_engine::load(text, "test spec", overrides).unwrap_or_else(|e| panic!("{e}"))
}

/// An environment and the training settings of its trainable policy.
pub fn trainable(text: &str) -> (Environment, TrainConfig) {
    let env = load(text);
    let config = TrainConfig::of(&env.spec).expect("the spec names a trainable policy");
    (env, config)
}

/// Whether golden files are being regenerated: `GRISTMILL_BLESS=1`, and nothing else.
pub fn bless() -> bool {
    std::env::var_os("GRISTMILL_BLESS").is_some_and(|v| v == "1")
}
