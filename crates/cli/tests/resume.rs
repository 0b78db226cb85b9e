//! A training run killed with SIGKILL mid-way resumes from its last checkpoint to the
//! bit-identical final digest of an uninterrupted run — with a real child process.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gristmill_store::{RunId, RunStatus, Store};

fn scratch(name: &str) -> PathBuf {
    scratch_with(name, &gristmill_testkit::fixture("resume-mlp"))
}

fn scratch_with(name: &str, spec: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gristmill-resume-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("spec.toml"), spec).unwrap();
    dir
}

fn gristmill(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gristmill"));
    c.current_dir(dir).args(["--db", "runs.db"]).args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn digest_of(json: &Path) -> String {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    v["digest"].as_str().unwrap().to_string()
}

/// The uninterrupted reference run in its own scratch directory, and its final digest.
fn uninterrupted(name: &str) -> (PathBuf, String) {
    let dir = scratch(name);
    let out = gristmill(&dir, &["run", "spec.toml", "--json", "out.json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let digest = digest_of(&dir.join("out.json"));
    (dir, digest)
}

/// The language-model trainer (a tiny random llama, `tests/fixtures/lm-tiny.toml` run for 12
/// steps) killed with SIGKILL resumes to the uninterrupted run's digest and curve, and
/// `replay` on one thread finds the two-thread run identical.
#[test]
fn a_killed_language_model_run_resumes_to_the_same_bits() {
    let spec = gristmill_testkit::fixture("lm-tiny").replace("steps = 4\n", "steps = 12\n");
    let clean = scratch_with("lm-clean", &spec);
    let out =
        gristmill(&clean, &["run", "spec.toml", "--threads", "2", "--json", "out.json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = digest_of(&clean.join("out.json"));
    let out = gristmill(&clean, &["replay", "1", "--threads", "1"]).stdout(Stdio::piped()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains(&format!("identical: digest {expected}")), "{stdout}");

    let killed = scratch_with("lm-killed", &spec);
    let mut child = gristmill(&killed, &["run", "spec.toml", "--threads", "2"]).spawn().unwrap();
    wait_for_steps(&killed, &mut child, 4, "before the kill");
    child.kill().unwrap();
    child.wait().unwrap();
    let run = Store::open(killed.join("runs.db")).unwrap().run(RunId(1)).unwrap();
    assert!(run.steps_done >= 4 && run.steps_done < 12, "killed mid-way at {}", run.steps_done);
    assert_resumes_to_the_uninterrupted_run(killed, clean, &expected);
}

/// Waits until run 1 in `dir` has stored at least `steps` steps (while `child` still trains)
/// and returns the steps done then.
fn wait_for_steps(dir: &Path, child: &mut std::process::Child, steps: u64, what: &str) -> u64 {
    let start = Instant::now();
    // One reading connection, opened once the child has created the file: reopening every
    // poll (migration check and all) made the poll slow enough on a loaded CI machine that
    // the child finished the whole run in between.
    let mut store: Option<Store> = None;
    loop {
        std::thread::sleep(Duration::from_millis(5));
        if store.is_none() {
            store = Store::open(dir.join("runs.db")).ok();
        }
        let done = store.as_ref().and_then(|s| s.run(RunId(1)).ok()).map(|r| r.steps_done);
        if let Some(done) = done.filter(|&d| d >= steps) {
            return done;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{what}: no progress to step {steps}");
        assert!(child.try_wait().unwrap().is_none(), "{what}: the run finished first");
    }
}

/// Resumes run 1 in `dir` to the end: its digest and its whole stored curve must be the
/// uninterrupted run's (in `clean`). Removes both directories.
fn assert_resumes_to_the_uninterrupted_run(dir: PathBuf, clean: PathBuf, expected: &str) {
    let out = gristmill(&dir, &["resume", "1", "--json", "out.json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(digest_of(&dir.join("out.json")), expected);
    let a = Store::open(clean.join("runs.db")).unwrap().step_metrics(RunId(1)).unwrap();
    let b = Store::open(dir.join("runs.db")).unwrap().step_metrics(RunId(1)).unwrap();
    assert_eq!(a, b);
    let _ = std::fs::remove_dir_all(clean);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigkill_then_resume_reaches_the_uninterrupted_digest() {
    let (clean, expected) = uninterrupted("clean");

    // Killed run: wait until at least two checkpoints are stored, then SIGKILL.
    let killed = scratch("killed");
    let mut child = gristmill(&killed, &["run", "spec.toml"]).spawn().unwrap();
    let steps_done = wait_for_steps(&killed, &mut child, 14, "before the kill");
    child.kill().unwrap(); // SIGKILL on Unix: no chance to clean up.
    child.wait().unwrap();
    let store = Store::open(killed.join("runs.db")).unwrap();
    store.check_integrity().unwrap();
    let run = store.run(RunId(1)).unwrap();
    assert_eq!(run.status, RunStatus::Running, "a killed run is left as running");
    assert!(run.steps_done >= steps_done && run.steps_done < 1200, "killed mid-way at {}", run.steps_done);
    drop(store);
    assert_resumes_to_the_uninterrupted_run(killed, clean, &expected);
}

/// The reported defect: two `resume`s of one run were both allowed, and the second trained to
/// the end before failing. A run being trained holds a lease; a second writer is refused at
/// once, naming the holder's pid and host, and a finished run's resume writes its report.
#[test]
fn a_second_writer_is_refused_at_once_naming_the_holder() {
    let dir = scratch("lease");
    let mut child = gristmill(&dir, &["run", "spec.toml"]).spawn().unwrap();
    wait_for_steps(&dir, &mut child, 7, "the first writer");
    let refused = Instant::now();
    let out = gristmill(&dir, &["resume", "1"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("pid {}", child.id())), "{stderr}");
    assert!(refused.elapsed() < Duration::from_secs(10), "refused at once, not after training");
    assert!(child.try_wait().unwrap().is_none(), "the holder keeps running");
    child.kill().unwrap();
    child.wait().unwrap();
    // The holder died: its lease is taken over, the run finishes, and resuming the finished
    // run again writes its --json report instead of failing.
    let out = gristmill(&dir, &["resume", "1", "--json", "a.json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = gristmill(&dir, &["resume", "1", "--json", "b.json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The second report is rebuilt from the store, and is the first one whole, learning curve
    // included, although the stored summary holds no curve (it lives once, in step metrics).
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    assert_eq!(read("a.json"), read("b.json"));
    assert!(!read("a.json")["curve"].as_array().unwrap().is_empty());
    let run = Store::open(dir.join("runs.db")).unwrap().run(RunId(1)).unwrap();
    assert!(run.summary.unwrap().get("curve").is_none(), "the curve is not stored twice");
    let _ = std::fs::remove_dir_all(dir);
}

/// SIGTERM (and Ctrl-C) stop a run between steps: it checkpoints, is marked stopped, exits
/// 130 naming the resume command, and the resumed run reaches the uninterrupted digest.
#[test]
fn sigterm_stops_cleanly_and_resume_reaches_the_uninterrupted_digest() {
    let (clean, expected) = uninterrupted("term-clean");

    let dir = scratch("term");
    let mut child = gristmill(&dir, &["run", "spec.toml"]).spawn().unwrap();
    wait_for_steps(&dir, &mut child, 7, "before SIGTERM");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("gristmill resume 1"), "{stderr}");

    let store = Store::open(dir.join("runs.db")).unwrap();
    let run = store.run(RunId(1)).unwrap();
    assert_eq!(run.status, RunStatus::Stopped);
    assert!(run.steps_done >= 7 && run.steps_done < 1200, "stopped at {}", run.steps_done);
    // The checkpoint is at the step the run stopped on, not an earlier periodic one.
    assert_eq!(store.latest_checkpoint(RunId(1)).unwrap().map(|c| c.step), Some(run.steps_done));
    drop(store);
    assert_resumes_to_the_uninterrupted_run(dir, clean, &expected);
}

/// The reliability pass's loop, kept as a check: the same run killed with SIGKILL again and
/// again (each resume killed in turn at a later step) still reaches the uninterrupted digest,
/// and the store passes SQLite's integrity check after every kill. `GRISTMILL_KILLS` sets the
/// number of kills (default 4; the pass used 20).
#[test]
fn repeated_sigkills_still_reach_the_uninterrupted_digest() {
    let kills: u64 = std::env::var("GRISTMILL_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    let (clean, expected) = uninterrupted("kills-clean");

    let dir = scratch("kills");
    let mut last = 0;
    for k in 0..kills {
        let args: &[&str] = if k == 0 { &["run", "spec.toml"] } else { &["resume", "1"] };
        let mut child = gristmill(&dir, args).spawn().unwrap();
        // Kill once the run has gone past its previous kill point by a few steps.
        wait_for_steps(&dir, &mut child, last + 5 + 3 * k, &format!("kill {k}"));
        child.kill().unwrap();
        child.wait().unwrap();
        let store = Store::open(dir.join("runs.db")).unwrap();
        store.check_integrity().unwrap();
        let run = store.run(RunId(1)).unwrap();
        assert_eq!(run.status, RunStatus::Running, "kill {k}");
        last = run.steps_done;
    }
    assert_resumes_to_the_uninterrupted_run(dir, clean, &expected);
}

#[test]
fn a_spec_edited_only_in_a_comment_runs_against_the_same_store() {
    // Issue 13, item 1: the second run used to exit 1 with "a different text is already
    // stored under this content hash". Both texts must run, land under one spec hash, and be
    // kept (the store lists both texts).
    let dir = scratch("comment");
    let arith =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/arith.toml")).unwrap();
    std::fs::write(dir.join("a.toml"), &arith).unwrap();
    std::fs::write(dir.join("b.toml"), format!("{arith}# c\n")).unwrap();
    for spec in ["a.toml", "b.toml"] {
        let out = gristmill(&dir, &["run", spec, "--steps", "20"]).output().unwrap();
        assert!(out.status.success(), "{spec}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let store = Store::open(dir.join("runs.db")).unwrap();
    let (first, second) = (store.run(RunId(1)).unwrap(), store.run(RunId(2)).unwrap());
    assert_eq!(first.spec_hash, second.spec_hash, "a comment does not change the content hash");
    assert_ne!(first.spec_text, second.spec_text, "each run records the text it ran");
    assert_eq!(store.spec_texts(&first.spec_hash).unwrap().len(), 2);
}
