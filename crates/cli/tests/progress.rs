//! Off a terminal, a long command still reports progress: plain lines on stderr at the
//! interval `GRISTMILL_PROGRESS_SECS`, and a last line when it ends.

use std::process::Command;

#[test]
fn a_piped_training_run_prints_plain_progress_lines() {
    let dir = std::env::temp_dir().join(format!("gristmill-progress-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("spec.toml"), gristmill_testkit::fixture("resume-mlp")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gristmill"))
        .current_dir(&dir)
        .args(["--db", "runs.db", "run", "spec.toml", "--steps", "40"])
        .env("GRISTMILL_PROGRESS_SECS", "0.000001")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("training: ")).collect();
    // An interval far below a step's time gives a line per step, then the closing line.
    assert!(lines.len() >= 40, "{} progress lines:\n{stderr}", lines.len());
    assert!(lines.iter().all(|l| l.contains("/40 (")), "{stderr}");
    assert!(lines.last().unwrap().starts_with("training: 40/40 (100%)"), "{stderr}");
    // No terminal escape codes when not on a terminal.
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    let _ = std::fs::remove_dir_all(dir);
}
