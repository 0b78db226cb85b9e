//! Datasets and free-text verifiers from the command line: the shipped examples run and replay
//! bit for bit, and bad data or an integer-only policy is a clear error, not a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gristmill_testkit::failed_saying;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp_dir(name: &str) -> PathBuf {
    gristmill_testkit::scratch_dir(&format!("free-text-{name}"))
}

/// `gristmill --db DB ARGS…` run from the repository root (the examples' data paths are
/// relative to it).
fn gristmill(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gristmill"))
        .current_dir(root())
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_dataset_examples_run_and_replay_bit_for_bit() {
    let d = temp_dir("examples");
    let db = d.join("runs.db");
    let words = ok(&gristmill(&db, &["run", "examples/word-problems.toml"]));
    // Four channels, each its own row; the layout rewards the oracle's "Answer: I do not
    // know." that every answer verifier refuses, so it disagrees with gold.
    for piece in ["math_verifier", "numeric_verifier", "match_verifier", "format_verifier"] {
        assert!(words.contains(piece), "{words}");
    }
    let code = ok(&gristmill(&db, &["run", "examples/coding.toml"]));
    assert!(code.contains("code_verifier"), "{code}");
    for run in ["1", "2"] {
        let replay = ok(&gristmill(&db, &["replay", run]));
        assert!(replay.contains("identical"), "{replay}");
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn catalogs_list_the_dataset_source_and_the_free_text_pieces() {
    let d = temp_dir("catalog");
    let db = d.join("runs.db");
    let tasks = ok(&gristmill(&db, &["tasks"]));
    assert!(tasks.contains("dataset") && tasks.contains("gold_kind"), "{tasks}");
    let pieces = ok(&gristmill(&db, &["pieces"]));
    for kind in ["math_verifier", "numeric_verifier", "code_verifier", "json_verifier", "choice_verifier"] {
        assert!(pieces.contains(kind), "{kind} missing from:\n{pieces}");
    }
    let _ = std::fs::remove_dir_all(d);
}

fn spec_with(dir: &Path, knobs: &str, policy: &str) -> PathBuf {
    let spec = format!(
        "name = \"t\"\n[run]\nseed = 1\nsteps = 2\ntasks_per_step = 2\nresponses_per_task = 2\n[policy]\nkind = \"{policy}\"\n\
         [[source]]\nid = \"rows\"\nkind = \"dataset\"\nknobs = {{ {knobs} }}\n[[piece]]\nid = \"math\"\nkind = \"math_verifier\"\n\
         [eval]\nsize = 2\nfraction = 0.5\n"
    );
    let path = dir.join("spec.toml");
    std::fs::write(&path, spec).unwrap();
    path
}

#[test]
fn bad_data_and_integer_policies_are_clear_errors() {
    let d = temp_dir("errors");
    let db = d.join("runs.db");
    let data = d.join("rows.jsonl");
    std::fs::write(&data, "{\"question\": \"1+1?\", \"answer\": \"2\"}\n{\"question\": \"2+2?\"}\n").unwrap();
    let spec = spec_with(&d, &format!("path = '{}', prompt = 'question'", data.display()), "oracle");
    let out = gristmill(&db, &["run", spec.to_str().unwrap()]);
    failed_saying(&out, &["source `rows`", "rows.jsonl: line 2: field `answer`: is missing"]);

    // An unknown knob is a validation error naming the field.
    let spec = spec_with(&d, &format!("path = '{}', columns = 'q'", data.display()), "oracle");
    let out = gristmill(&db, &["validate", spec.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("source[0].knobs.columns: unknown parameter"), "{err}");

    // The log-linear learner chooses among integers: it refuses a free-text source by name.
    std::fs::write(
        &data,
        "{\"question\": \"1+1?\", \"answer\": \"2\"}\n{\"question\": \"2+2?\", \"answer\": \"4\"}\n",
    )
    .unwrap();
    let spec = spec_with(&d, &format!("path = '{}', prompt = 'question'", data.display()), "loglinear");
    let out = gristmill(&db, &["run", spec.to_str().unwrap()]);
    failed_saying(&out, &["policy `loglinear`", "source `rows`", "free-text"]);
    let _ = std::fs::remove_dir_all(d);
}

/// The data path is relative to the working directory, and a run records the file's digest:
/// a replay after the file was edited says which source's data changed.
#[test]
fn a_replay_after_the_data_changed_names_the_source() {
    let d = temp_dir("changed");
    std::fs::create_dir_all(d.join("examples/data")).unwrap();
    let data = d.join("examples/data/word_problems.jsonl");
    std::fs::copy(root().join("examples/data/word_problems.jsonl"), &data).unwrap();
    std::fs::copy(root().join("examples/word-problems.toml"), d.join("spec.toml")).unwrap();
    let in_dir = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gristmill"))
            .current_dir(&d)
            .args(["--db", "runs.db"])
            .args(args)
            .output()
            .unwrap()
    };
    ok(&in_dir(&["run", "spec.toml"]));
    assert!(ok(&in_dir(&["replay", "1"])).contains("identical"));
    let text = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&data, text.replacen("\"answer\": \"", "\"answer\": \"1", 1)).unwrap();
    let out = in_dir(&["replay", "1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("DIFFERENT data of source `problems` changed since the run: recorded blake3 "),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(d);
}
