//! `gristmill tune`, `transfer` and `withdraw` end to end, and their errors naming both sides.

use std::process::Command;

fn gm(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gristmill")).current_dir(dir).args(args).output().unwrap()
}

#[test]
fn tune_exports_artifacts_that_transfer_and_refuse_a_mismatch() {
    let dir = gristmill_testkit::scratch_dir("tune");
    let examples = format!("{}/../../examples", env!("CARGO_MANIFEST_DIR"));
    let tune = format!("{examples}/tune.toml");
    let out = gm(&dir, &["tune", &tune, "--steps", "6", "--export", "art", "--json", "tune.json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tune.json")).unwrap()).unwrap();
    assert_eq!(v["singles"].as_array().unwrap().len(), 3);
    assert_eq!(v["pairs"].as_array().unwrap().len(), 3);
    let curriculum = std::fs::read_dir(dir.join("art"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("curriculum-"))
        .expect("curriculum artifact exported");
    // The artifact's file name carries its content hash.
    let body = std::fs::read(&curriculum).unwrap();
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("\"piece_kind\": \"curriculum\""));

    let out = gm(
        &dir,
        &["transfer", curriculum.to_str().unwrap(), "--to", &tune, "--steps", "4", "--json", "t.json"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("t.json")).unwrap()).unwrap();
    assert_eq!(t["cases"].as_array().unwrap().len(), 3);

    // A spec whose sources differ: the error names both source lists.
    let out =
        gm(&dir, &["transfer", curriculum.to_str().unwrap(), "--to", &format!("{examples}/arith.toml")]);
    let arith_err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    // arith.toml's policy does not train: refused before any fit check, naming the policy.
    assert!(arith_err.contains("trainable policy"), "{arith_err}");
    let out = gm(
        &dir,
        &[
            "transfer",
            curriculum.to_str().unwrap(),
            "--to",
            &format!("{examples}/studies/redundant-verifiers.toml"),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("add, count, cmp") || err.contains("no piece of that id"), "{err}");
    assert!(err.contains("curriculum"), "{err}");

    // Withdrawing a piece the spec does not have names both sides.
    let out = gm(&dir, &["withdraw", &tune, "--piece", "nope"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("`nope`") && err.contains("gold, partial, rm, curriculum"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn withdraw_and_study_report_their_numbers_in_json() {
    let dir = gristmill_testkit::scratch_dir("withdraw");
    let spec = format!("{}/../../examples/withdraw-hint-trained.toml", env!("CARGO_MANIFEST_DIR"));
    let out = gm(
        &dir,
        &["withdraw", &spec, "--piece", "hint", "--after", "8", "--continue", "4", "--json", "w.json"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("trained piece at removal: p = "), "{stdout}");
    let w: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("w.json")).unwrap()).unwrap();
    let f = |k: &str| w[k].as_f64().unwrap_or_else(|| panic!("{k} in {w}"));
    assert_eq!(f("gain_retained"), f("metric_after") - f("metric_never"));
    assert_eq!(f("gain_kept_piece"), f("metric_kept") - f("metric_never"));
    assert_eq!(f("drop"), f("metric_with") - f("metric_at_removal"));
    // Either a ratio, or no ratio and the reason, never both.
    assert_ne!(w["retention"].is_null(), w["retention_note"].is_null(), "{w}");

    let out = gm(&dir, &["tune", &spec, "--study", "--steps", "5", "--seeds", "3,4", "--json", "s.json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("s.json")).unwrap()).unwrap();
    assert_eq!(s["seeds"], serde_json::json!([3, 4]));
    assert_eq!(s["grid_size"], 5);
    for arm in ["untrained", "trained", "grid_equal_compute", "grid_full"] {
        assert_eq!(s[arm]["metric"].as_array().unwrap().len(), 2, "{arm}");
    }
    assert_eq!(s["trained"]["compute"]["rollout_batches"], 10);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("grid search, equal compute"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}
