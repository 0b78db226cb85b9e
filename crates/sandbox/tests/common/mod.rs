//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use gristmill_sandbox::{Limits, Outcome, Sandbox, SandboxConfig, Test, Verdict};
use serde_json::json;

/// Limits small enough to keep hostile tests short, large enough for a loaded machine.
pub fn test_limits() -> Limits {
    Limits {
        wall_time: Duration::from_millis(1000),
        total_wall_time: Duration::from_secs(8),
        cpu_time: Duration::from_secs(1),
        memory_bytes: 256 << 20,
        file_size_bytes: 1 << 20,
        max_processes: 16,
        max_open_files: 32,
        max_output_bytes: 1 << 20,
    }
}

pub fn test_config() -> SandboxConfig {
    SandboxConfig { limits: test_limits(), max_concurrent: 2, ..SandboxConfig::default() }
}

/// One sandbox per test binary (its probe and self-test run once).
pub fn sandbox() -> &'static Sandbox {
    static SB: OnceLock<Sandbox> = OnceLock::new();
    SB.get_or_init(|| Sandbox::new(test_config()).unwrap_or_else(|e| panic!("sandbox: {e}")))
}

pub const ADD: &str = "def add(a, b):\n    return a + b\n";

pub fn add_tests() -> Vec<Test> {
    vec![
        Test::call("add(2, 3)", json!(5)),
        Test::call("add(-7, 7)", json!(0)),
        Test::call("add(10, 32)", json!(42)),
    ]
}

/// After something hostile: an honest solution still passes, on both test forms.
pub fn assert_host_ok(sb: &Sandbox) {
    let o = sb.run(ADD, &add_tests()).expect("run");
    assert_eq!(o.score, 1.0, "honest solution after a hostile one: {o:#?}");
    let o = sb.run("print(sum(map(int, input().split())))\n", &[Test::stdio("1 2 3\n", "6\n")]).expect("run");
    assert_eq!(o.score, 1.0, "honest program after a hostile one: {o:#?}");
}

pub fn verdicts(o: &Outcome) -> Vec<Verdict> {
    o.tests.iter().map(|t| t.verdict).collect()
}

/// A marker unique to this test run, for file names and command lines.
pub fn marker(name: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("gmsbx-{name}-{}-{t}", std::process::id())
}

/// Processes whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(needle) {
                found.push(pid);
            }
        }
    }
    found
}

/// Processes owned by `uid`.
pub fn processes_of_uid(uid: u32) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if let Ok(m) = std::fs::metadata(e.path()) {
            if m.uid() == uid {
                found.push(pid);
            }
        }
    }
    found
}

/// A directory anyone may write to (so that only the sandbox, not file permissions, stops
/// a write), removed on drop.
pub fn open_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

pub fn py_str(p: &Path) -> String {
    format!("{:?}", p.to_str().unwrap())
}
