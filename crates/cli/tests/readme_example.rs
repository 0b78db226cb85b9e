//! The README's main command really learns: `gristmill run` on the built-in example raises
//! the gold metric from chance to the level the README states. Seeded, so the numbers are
//! exact; the tolerance 1e-12 only absorbs a different libm's last-bit `exp`/`ln`.

use std::process::Command;

#[test]
fn builtin_example_learns_from_chance_to_the_stated_level() {
    let dir = std::env::temp_dir().join(format!("gristmill-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gristmill"))
        .current_dir(&dir)
        .args(["run", "--json", "out.json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The SQLite store lands in the working directory by default.
    assert!(dir.join("gristmill.db").exists());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out.json")).unwrap()).unwrap();
    let before = v["gold_before"].as_f64().unwrap();
    let after = v["gold_after"].as_f64().unwrap();
    // Chance: the mean over the suite of 1/|answer space| (addition 1/19, counting 1/37,
    // comparison 1/3), because every policy starts uniform.
    assert!((before - 0.13766397976924297).abs() < 1e-12, "gold_before {before}");
    assert!((after - 0.29742171076557744).abs() < 1e-12, "gold_after {after}");
    assert_eq!(v["curve"].as_array().unwrap().len(), 100);
    let credit = &v["credit"];
    let residual = credit["residual"].as_f64().unwrap();
    assert!(residual.abs() < 1e-9, "residual {residual}");
    let _ = std::fs::remove_dir_all(dir);
}
