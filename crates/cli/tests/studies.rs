//! The two credit studies of docs/credit-studies.md, asserted: the conclusions the write-up
//! draws must hold for the shipped specs and seeds.

use std::process::Command;

fn credit(spec: &str) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!(
        "gristmill-study-{}-{}",
        std::process::id(),
        spec.replace('/', "_")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = format!("{}/../../examples/studies/{spec}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_gristmill"))
        .current_dir(&dir)
        .args(["credit", &path, "--method", "all", "--json", "out.json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = serde_json::from_str(&std::fs::read_to_string(dir.join("out.json")).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    v
}

fn piece<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v["pieces"].as_array().unwrap().iter().find(|p| p["id"] == id).unwrap()
}

#[test]
fn more_accurate_reward_model_teaches_worse_and_the_control_is_small() {
    let v = credit("rm-teacher.toml");
    let (acc, loud, random) = (piece(&v, "rm_accurate"), piece(&v, "rm_loud"), piece(&v, "random"));
    let f = |p: &serde_json::Value, k: &str| p[k].as_f64().unwrap();
    // The proxy prefers the accurate model...
    assert!(f(acc, "standalone") > f(loud, "standalone"));
    assert!(
        acc["standalone_detail"]["reward_variance"].as_f64()
            < loud["standalone_detail"]["reward_variance"].as_f64()
    );
    // ...the measured effects prefer the loud one, by both methods.
    assert!(f(loud, "inrun") > 2.0 * f(acc, "inrun"));
    assert!(f(loud, "shapley") > 2.0 * f(acc, "shapley"));
    // The random control stays under 10% of the gain by both methods.
    let dm = v["delta_metric"].as_f64().unwrap();
    assert!(f(random, "inrun").abs() < 0.1 * dm && f(random, "shapley").abs() < 0.1 * dm);
}

#[test]
fn redundant_verifiers_get_nothing_from_loo_and_a_split_from_credit() {
    let v = credit("redundant-verifiers.toml");
    let dm = v["delta_metric"].as_f64().unwrap();
    assert!(dm > 0.1);
    for id in ["exact", "lenient0"] {
        let p = piece(&v, id);
        let (loo, inrun, shapley) =
            (p["loo"].as_f64().unwrap(), p["inrun"].as_f64().unwrap(), p["shapley"].as_f64().unwrap());
        assert!(loo.abs() < 0.01 * dm, "{id}: LOO {loo}");
        assert!(inrun > 0.2 * dm && shapley > 0.2 * dm, "{id}: in-run {inrun}, Shapley {shapley}");
    }
    assert_eq!(piece(&v, "exact")["inrun"], piece(&v, "lenient0")["inrun"]);
}
