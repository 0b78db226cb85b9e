//! `gristmill credit` end to end: the JSON report's fields and identities, and the refusal
//! of exact Shapley beyond its limit.

use std::process::Command;

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gristmill-credit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const HEAD: &str = r#"
name = "credit-cli"
[run]
seed = 2
steps = 10
tasks_per_step = 16
responses_per_task = 6
[policy]
kind = "loglinear"
[[source]]
id = "count"
family = "counting"
[[source]]
id = "cmp"
family = "comparison"
[eval]
size = 64
"#;

#[test]
fn credit_report_has_every_method_and_its_identities_hold() {
    let d = dir("all");
    let spec = format!(
        "{HEAD}\n[[piece]]\nid = \"gold\"\nkind = \"exact_verifier\"\n[[piece]]\nid = \"partial\"\nkind = \"partial_credit\"\nweight = 0.5\n[[piece]]\nid = \"rand\"\nkind = \"random_reward\"\nweight = 0.3\n"
    );
    std::fs::write(d.join("spec.toml"), spec).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gristmill"))
        .current_dir(&d)
        .args(["credit", "spec.toml", "--method", "all", "--json", "out.json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out.json")).unwrap()).unwrap();
    let dm = v["delta_metric"].as_f64().unwrap();
    let residual = v["residual"].as_f64().unwrap();
    assert!(dm.abs() > 1e-3);
    assert!(residual.abs() <= 1e-9 * dm.abs().max(1.0), "residual {residual}");
    let pieces = v["pieces"].as_array().unwrap();
    assert_eq!(pieces.len(), 3);
    let mut sum_inrun = 0.0;
    let mut sum_shapley = 0.0;
    for p in pieces {
        for field in ["id", "kind", "standalone", "inrun", "shapley", "loo"] {
            assert!(!p[field].is_null(), "{field} missing in {p}");
        }
        sum_inrun += p["inrun"].as_f64().unwrap();
        sum_shapley += p["shapley"].as_f64().unwrap();
    }
    assert!((sum_inrun + residual - dm).abs() < 1e-12);
    // With no piece on nothing trains, so Σ Shapley = M_T(all) − M_0 = ΔM of the in-run run
    // (the same seeded run); only summation order separates them.
    assert!((sum_shapley - dm).abs() < 1e-12, "Σ Shapley {sum_shapley} vs ΔM {dm}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn exact_shapley_refuses_too_many_pieces_and_names_the_alternative() {
    let d = dir("refuse");
    let mut spec = HEAD.to_string();
    for i in 0..11 {
        spec.push_str(&format!("\n[[piece]]\nid = \"v{i}\"\nkind = \"exact_verifier\"\n"));
    }
    std::fs::write(d.join("spec.toml"), spec).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gristmill"))
        .current_dir(&d)
        .args(["credit", "spec.toml", "--method", "shapley"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("11 pieces") && err.contains("limit is 10 pieces"), "{err}");
    assert!(err.contains("shapley-sampled"), "{err}");
    assert!(!err.contains("panicked"));
    let _ = std::fs::remove_dir_all(d);
}
