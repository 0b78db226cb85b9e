//! `gristmill transfer` end to end: exported and stored artifacts reach the same fit check
//! as the library, a misfit names both sides, old documents are refused by name, and the
//! held-out-family transfer of a family-independent piece runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gristmill")).current_dir(dir).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The exported artifact of piece `id` and its 12-character hash (from the file name).
fn exported(dir: &Path, id: &str) -> (PathBuf, String) {
    let prefix = format!("{id}-");
    let path = std::fs::read_dir(dir.join("art"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(&prefix))
        .unwrap_or_else(|| panic!("artifact {id} exported"));
    let name = path.file_stem().unwrap().to_str().unwrap();
    let hash = name[prefix.len()..].to_string();
    (path, hash)
}

#[test]
fn transfer_refuses_misfits_by_name_and_runs_the_held_out_family() {
    let dir = gristmill_testkit::scratch_dir("transfer");
    let tune = format!("{}/../../examples/tune.toml", env!("CARGO_MANIFEST_DIR"));
    let out = gm(&dir, &["tune", &tune, "--steps", "2", "--export", "art"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The held-out family: examples/tune.toml with `count` now a modular-arithmetic source.
    let text = std::fs::read_to_string(&tune).unwrap();
    assert!(text.contains("family = \"counting\""));
    std::fs::write(dir.join("held-out.toml"), text.replace("family = \"counting\"", "family = \"modular\""))
        .unwrap();

    // A curriculum has a weight per source; the same id over another family is refused,
    // naming both sides.
    let (curriculum, hash) = exported(&dir, "curriculum");
    let out = gm(&dir, &["transfer", curriculum.to_str().unwrap(), "--to", "held-out.toml", "--steps", "1"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        format!(
            "error: artifact {hash} (piece `curriculum`) does not fit held-out.toml: source `count`: \
             the artifact was trained on family `counting` {{max_amount = 9, steps = 2}} (answers \
             0..=36, 10 features), the target spec has family `modular` {{digits = 2, modulus = 7, \
             op = \"add\"}} (answers 0..=6, 28 features)\n"
        )
    );

    // The reward model's φ is over answer features defined for every family: it transfers,
    // from the file and from the store by a hash prefix.
    let (rm, rm_hash) = exported(&dir, "rm");
    let body = std::fs::read_to_string(&rm).unwrap();
    assert!(body.contains("\"family\": \"counting\""), "the artifact records its sources: {body}");
    for given in [rm.to_str().unwrap(), &rm_hash[..8]] {
        let out = gm(&dir, &["transfer", given, "--to", "held-out.toml", "--steps", "1", "--json", "t.json"]);
        assert!(out.status.success(), "{given}: {}", stderr(&out));
        let t: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("t.json")).unwrap()).unwrap();
        let settings: Vec<_> = t["cases"].as_array().unwrap().iter().map(|c| c["setting"].clone()).collect();
        assert_eq!(settings, ["target spec", "new policy seed", "other architecture"]);
    }

    // A document written before the training environment was recorded.
    let mut old: serde_json::Value = serde_json::from_str(&body).unwrap();
    old["format"] = 1.into();
    old["sources"] = serde_json::json!(["add", "count", "cmp"]);
    std::fs::write(dir.join("old.json"), old.to_string()).unwrap();
    let out = gm(&dir, &["transfer", "old.json", "--to", "held-out.toml", "--steps", "1"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        "error: old.json: artifact format 1 is too old: it records only the training spec's source \
         ids, not each source's family, knobs, answer space and feature count, nor the piece's \
         configuration, so its fit to a target spec cannot be checked; re-create it with \
         `gristmill tune --export` (format 2)\n"
    );
    let _ = std::fs::remove_dir_all(dir);
}
