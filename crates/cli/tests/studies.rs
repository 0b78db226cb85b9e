//! The two credit studies of docs/credit-studies.md, asserted: the conclusions the write-up
//! draws must hold for the shipped specs and seeds (the default tests, about 2 s), and on
//! seeds 1-5, so that they are not the luck of one seed:
//!
//! ```sh
//! cargo test -p gristmill --test studies -- --ignored
//! ```
//!
//! Every bound below is stated with the range observed over seeds 1-10 (rm-teacher) or 1-20
//! (redundant-verifiers) in the release build, and with what it rules out.

use std::process::Command;

use serde_json::Value;

/// Seeds of the multi-seed check: simply the first five (the shipped seeds are 4 and 8).
const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

/// `gristmill credit SPEC --method all [--seed SEED]`, as JSON.
fn credit(spec: &str, seed: Option<u64>) -> Value {
    let dir = std::env::temp_dir().join(format!(
        "gristmill-study-{}-{}-{}",
        std::process::id(),
        spec.replace('/', "_"),
        seed.map_or("shipped".to_string(), |s| s.to_string())
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = format!("{}/../../examples/studies/{spec}", env!("CARGO_MANIFEST_DIR"));
    let mut args = vec!["credit".to_string(), path, "--method".into(), "all".into()];
    args.extend(["--json".into(), "out.json".into()]);
    if let Some(s) = seed {
        args.extend(["--seed".into(), s.to_string()]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_gristmill")).current_dir(&dir).args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = serde_json::from_str(&std::fs::read_to_string(dir.join("out.json")).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    v
}

fn piece<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["pieces"].as_array().unwrap().iter().find(|p| p["id"] == id).unwrap()
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// M at the end of the coalition run with piece mask `mask` (bit i = piece i of the spec).
fn coalition(v: &Value, mask: u64) -> f64 {
    let c = v["coalitions"].as_array().unwrap().iter().find(|c| c["mask"] == mask).unwrap();
    num(c, "metric")
}

/// "A more accurate reward model teaches worse, and the control is small."
fn check_rm_teacher(v: &Value) {
    let seed = &v["seed"];
    let dm = num(v, "delta_metric");
    let (acc, loud, random) = (piece(v, "rm_accurate"), piece(v, "rm_loud"), piece(v, "random"));
    // The policy learns something that carries to the eval suite (ΔM 0.185-0.197 observed).
    // The previous setup, one-digit addition, failed this on every seed (ΔM < 0).
    assert!(dm > 0.1, "seed {seed}: ΔM {dm}");
    // The proxy prefers the accurate model (1.000 vs 0.968-0.990 observed), by more than the
    // noise of the estimate: 5000 held-out pairs give a standard error of ~0.002 at 0.98.
    let (acc_st, loud_st) = (num(acc, "standalone"), num(loud, "standalone"));
    assert!(acc_st > loud_st + 0.005, "seed {seed}: accuracy {acc_st} vs {loud_st}");
    // ...and its rewards vary far less under the policy (~0.003 vs 0.15-0.19 observed): the
    // mechanism the study is about. A 10x gap rules out a merely "somewhat quieter" model.
    let var = |p: &Value| num(&p["standalone_detail"], "reward_variance");
    assert!(10.0 * var(acc) < var(loud), "seed {seed}: variance {} vs {}", var(acc), var(loud));
    // The measured effects prefer the loud one, by both methods: observed ratios are at
    // least 4.9 (in-run) and 7.5 (Shapley); 3x is "clearly", with room for seed noise. The
    // loud model also carries most of the gain (82-92% of ΔM observed), so the ratio is not
    // one of two numbers lost in the noise.
    for m in ["inrun", "shapley"] {
        let (a, l) = (num(acc, m), num(loud, m));
        assert!(l > 3.0 * a && l > 0.5 * dm, "seed {seed}: {m} accurate {a}, loud {l}, ΔM {dm}");
    }
    // The rank correlation between the proxy and the effect is reported as −1.
    let tau =
        v["kendall_tau"].as_array().unwrap().iter().find(|t| t["metric"] == "pairwise accuracy").unwrap();
    assert_eq!((num(tau, "vs_inrun"), num(tau, "vs_shapley")), (-1.0, -1.0), "seed {seed}");
    // The control, a reward with variance ~0.07 that ignores the answer, stays under 5% of
    // the gain by both methods (observed at most 2.8%; at learning rate 2 its Shapley value
    // reached 18%). It is the noise floor the two models' credits are read against.
    for m in ["inrun", "shapley"] {
        let r = num(random, m);
        assert!(r.abs() < 0.05 * dm, "seed {seed}: random {m} {r}, ΔM {dm}");
    }
}

/// "LOO gives redundant verifiers ~nothing while credit splits the gain."
fn check_redundant_verifiers(v: &Value) {
    let seed = &v["seed"];
    let dm = num(v, "delta_metric");
    // The run gains (0.289-0.313 observed), so "nothing" from LOO is not "nothing to share".
    assert!(dm > 0.2, "seed {seed}: ΔM {dm}");
    // The mechanism: with a shared σ a duplicated reward changes only the σ guard, so the
    // verifiers alone, either or both, end at the same M (observed within 1e-8).
    for mask in [2, 3] {
        let d = coalition(v, mask) - coalition(v, 1);
        assert!(d.abs() < 1e-6, "seed {seed}: M(mask {mask}) − M(exact) = {d}");
    }
    for id in ["exact", "lenient0"] {
        let p = piece(v, id);
        let (loo, inrun, shapley) = (num(p, "loo"), num(p, "inrun"), num(p, "shapley"));
        // LOO of a copy is only the effect of doubling `partial`'s relative weight: observed
        // |LOO| ≤ 4.2% of ΔM on seeds 1-20. 10% leaves room for that wobble and is still a
        // quarter of the smallest credit allowed below. With equal pairs in the comparison
        // source (the previous spec) seed 9 gave 17%.
        assert!(loo.abs() < 0.1 * dm, "seed {seed}: {id} LOO {loo}, ΔM {dm}");
        // Credit splits the gain instead: observed in-run 39.7-45.8% and Shapley 32.3-36.4%
        // of ΔM for each verifier.
        assert!(
            inrun > 0.3 * dm && shapley > 0.25 * dm,
            "seed {seed}: {id} in-run {inrun}, Shapley {shapley}"
        );
    }
    // Identical pieces get identical credit, bit for bit (symmetry).
    for m in ["inrun", "shapley", "loo"] {
        assert_eq!(piece(v, "exact")[m], piece(v, "lenient0")[m], "seed {seed}: {m}");
    }
}

#[test]
fn more_accurate_reward_model_teaches_worse_and_the_control_is_small() {
    check_rm_teacher(&credit("rm-teacher.toml", None));
}

#[test]
fn redundant_verifiers_get_nothing_from_loo_and_a_split_from_credit() {
    check_redundant_verifiers(&credit("redundant-verifiers.toml", None));
}

/// The same conclusions on seeds 1-5 (~10 s in the test profile). Run with
/// `cargo test -p gristmill --test studies -- --ignored`.
#[test]
#[ignore = "slow (ten study runs): cargo test -p gristmill --test studies -- --ignored"]
fn the_conclusions_hold_on_five_seeds() {
    for seed in SEEDS {
        check_rm_teacher(&credit("rm-teacher.toml", Some(seed)));
        check_redundant_verifiers(&credit("redundant-verifiers.toml", Some(seed)));
    }
}
