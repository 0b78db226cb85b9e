//! Artifacts and transfer: every misfit is refused with both sides named; the deliberate
//! transfers (new seed, other architecture, held-out family for the kinds that allow it)
//! still run.

use std::sync::LazyLock;

use gristmill_engine::Environment;
use gristmill_pieces::BuiltPiece;
use gristmill_tune::{
    transfer, Artifact, ArtifactError, Learnable, Misfit, TrainedOn, TuneError, Tuner, ARTIFACT_FORMAT,
};

/// An environment and its training settings from spec text.
fn build(text: &str) -> (Environment, gristmill_learn::TrainConfig) {
    gristmill_testkit::trainable(text)
}

/// The training spec: three sources and one trainable piece of every artifact kind
/// (curriculum, two channel weights, reward-model parameters, hint probability).
/// `{SOURCES}` and `{PIECES}` are replaced by the variants below.
const TEMPLATE: &str = r#"
name = "transfer-test"
[run]
seed = 5
tasks_per_step = 16
responses_per_task = 4
[policy]
kind = "loglinear"
params = { learning_rate = 0.05, optimizer = "adam" }
{SOURCES}
[[piece]]
id = "gold"
kind = "exact_verifier"
[[piece]]
id = "partial"
kind = "partial_credit"
weight = 0.5
train = true
{PIECES}
[[piece]]
id = "curriculum"
kind = "curriculum"
train = true
[[piece]]
id = "hint"
kind = "hint"
params = { probability = 0.5 }
train = true
[eval]
size = 48
"#;

const SOURCES: &str = r#"
[[source]]
id = "add"
family = "addition"
knobs = { digits = 1 }
[[source]]
id = "count"
family = "counting"
[[source]]
id = "cmp"
family = "comparison"
knobs = { digits = 2 }
"#;

const PIECES: &str = r#"
[[piece]]
id = "noisy"
kind = "noisy_verifier"
params = { flip_rate = 0.1 }
train = true
[[piece]]
id = "rm"
kind = "reward_model"
weight = 0.5
params = { label_noise = 0.2, pairs = 400, heldout_pairs = 200 }
train = true
"#;

fn spec(sources: &str, pieces: &str) -> String {
    TEMPLATE.replace("{SOURCES}", sources).replace("{PIECES}", pieces)
}

/// `count` replaced by a family the pieces were never trained on, under the same id.
fn held_out() -> String {
    gristmill_testkit::edit(
        SOURCES,
        "id = \"count\"\nfamily = \"counting\"",
        "id = \"count\"\nfamily = \"modular\"",
    )
}

/// The training environment and one artifact per trainable piece, trained jointly for a
/// few steps (shared by the tests; building it once keeps the file fast).
static TRAINED: LazyLock<Vec<Artifact>> = LazyLock::new(|| {
    let (env, config) = build(&spec(SOURCES, PIECES));
    let train: Vec<usize> =
        env.spec.spec().pieces.iter().enumerate().filter(|(_, p)| p.train).map(|(i, _)| i).collect();
    let mut t = Tuner::new(env.clone(), config.clone(), &train).unwrap();
    t.advance(4).unwrap();
    let on = TrainedOn {
        spec_hash: env.spec.hash().to_string(),
        seed: env.seed(),
        policy: config.arch_name(),
        steps: 4,
    };
    t.pieces.iter().map(|p| Artifact::new(&env, p.index, p.params.clone(), on.clone())).collect()
});

fn artifact(id: &str) -> Artifact {
    TRAINED.iter().find(|a| a.piece_id == id).unwrap_or_else(|| panic!("no artifact {id}")).clone()
}

fn short(a: &Artifact) -> String {
    a.hash()[..12].to_string()
}

/// The error `artifact` gets from `transfer` to `text` (the library entry point, so the
/// refusal is known to come before any run).
fn refusal(a: &Artifact, text: &str) -> TuneError {
    let (env, config) = build(text);
    match transfer(a, &env, &config, 1, "target.toml") {
        Ok(_) => panic!("the transfer of `{}` to the target must be refused", a.piece_id),
        Err(e) => e,
    }
}

fn reason(e: &TuneError) -> &Misfit {
    match e {
        TuneError::Misfit { reason, .. } => reason,
        other => panic!("expected a misfit, got {other}"),
    }
}

#[test]
fn curriculum_refuses_a_different_family_under_the_same_source_id() {
    let a = artifact("curriculum");
    let e = refusal(&a, &spec(&held_out(), PIECES));
    // Counting reads a bias, the scaled start and (kind, amount) for each of up to four
    // changes: 10 features. Modular mod 7 reads a bias, the operation one-hot (3), both
    // residue one-hots (14), their Fourier pairs (4) with four angle-sum products, and both
    // operands scaled: 28.
    assert_eq!(
        e.to_string(),
        format!(
            "artifact {} (piece `curriculum`) does not fit target.toml: source `count`: the artifact \
             was trained on family `counting` {{max_amount = 9, steps = 2}} (answers 0..=36, 10 \
             features), the target spec has family `modular` {{digits = 2, modulus = 7, op = \"add\"}} \
             (answers 0..=6, 28 features)",
            short(&a)
        )
    );
    let Misfit::Sources(m) = reason(&e) else { panic!("{e}") };
    assert_eq!(m.len(), 1);
}

#[test]
fn curriculum_refuses_other_knobs_and_names_every_differing_source() {
    let a = artifact("curriculum");
    // Both `add` and `cmp` moved: one-digit sums became two-digit sums, two-digit comparisons
    // three-digit ones.
    let sources = SOURCES
        .replace(
            "family = \"addition\"\nknobs = { digits = 1 }",
            "family = \"addition\"\nknobs = { digits = 2 }",
        )
        .replace(
            "family = \"comparison\"\nknobs = { digits = 2 }",
            "family = \"comparison\"\nknobs = { digits = 3 }",
        );
    let e = refusal(&a, &spec(&sources, PIECES));
    let text = e.to_string();
    assert!(
        text.contains(
            "source `add`: the artifact was trained on family `addition` {carry = \"any\", digits = 1} \
             (answers 0..=18,"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "the target spec has family `addition` {carry = \"any\", digits = 2} (answers 0..=198,"
        ),
        "{text}"
    );
    assert!(text.contains("; source `cmp`: the artifact was trained on family `comparison` {"), "{text}");
    let Misfit::Sources(m) = reason(&e) else { panic!("{e}") };
    assert_eq!(m.iter().map(|m| m.artifact.id.as_str()).collect::<Vec<_>>(), ["add", "cmp"]);
    assert_eq!(m[0].artifact.knobs["digits"], 1);
    assert_eq!(m[0].target.knobs["digits"], 2);
}

#[test]
fn curriculum_refuses_other_source_ids_naming_both_lists() {
    let a = artifact("curriculum");
    let sources = SOURCES.replace("id = \"cmp\"", "id = \"compare\"");
    let e = refusal(&a, &spec(&sources, PIECES));
    assert_eq!(
        e.to_string(),
        format!(
            "artifact {} (piece `curriculum`) does not fit target.toml: the curriculum weighs \
             sources [add, count, cmp], the target spec has sources [add, count, compare]",
            short(&a)
        )
    );
    // One source fewer is the same refusal.
    let two = &SOURCES[..SOURCES.find("[[source]]\nid = \"cmp\"").unwrap()];
    let e = refusal(&a, &spec(two, PIECES));
    assert!(e.to_string().ends_with("the target spec has sources [add, count]"), "{e}");
}

#[test]
fn curriculum_matches_reordered_sources_by_id() {
    let a = artifact("curriculum");
    let cmp = SOURCES.find("[[source]]\nid = \"cmp\"").unwrap();
    let reordered = format!("{}{}", &SOURCES[cmp..], &SOURCES[..cmp]);
    let (train, ..) = build(&spec(SOURCES, PIECES));
    let (target, ..) = build(&spec(&reordered, PIECES));
    let weights = |env: &Environment| -> Vec<(String, f64)> {
        let e = a.apply(env, "target").unwrap();
        let i = e.piece_index("curriculum").unwrap();
        let BuiltPiece::Curriculum(c) = &e.pieces[i].built else { panic!("curriculum") };
        let mut w: Vec<_> =
            e.spec.spec().sources.iter().map(|s| s.id.clone()).zip(c.weights.clone()).collect();
        w.sort_by(|x, y| x.0.cmp(&y.0));
        w
    };
    let here = weights(&train);
    // Normalizing sums the weights in spec order, so another order may round the last bit
    // differently: 1e-15 relative is a few ulps of weights near 1/3.
    for ((id_t, w_t), (id, w)) in weights(&target).iter().zip(&here) {
        assert_eq!(id_t, id);
        assert!((w_t - w).abs() <= 1e-15 * w.abs(), "each source keeps its own weight: {id} {w_t} vs {w}");
    }
    assert!(
        here.iter().any(|(_, w)| (w - 1.0 / 3.0).abs() > 1e-6),
        "the curriculum must have moved: {here:?}"
    );
}

#[test]
fn weights_refuse_a_piece_configured_differently() {
    let a = artifact("noisy");
    let e = refusal(&a, &spec(SOURCES, &PIECES.replace("flip_rate = 0.1", "flip_rate = 0.3")));
    assert_eq!(
        e.to_string(),
        format!(
            "artifact {} (piece `noisy`) does not fit target.toml: piece `noisy` was trained with \
             {{flip_rate = 0.1}}, the target spec's piece has {{flip_rate = 0.3}}",
            short(&a)
        )
    );
}

#[test]
fn reward_model_refuses_another_scale_but_not_other_fit_settings() {
    let a = artifact("rm");
    let scaled = PIECES.replace("label_noise = 0.2,", "label_noise = 0.2, scale = 2.0,");
    let e = refusal(&a, &spec(SOURCES, &scaled));
    assert_eq!(
        e.to_string(),
        format!(
            "artifact {} (piece `rm`) does not fit target.toml: piece `rm` was trained with \
             {{scale = 1.0}}, the target spec's piece has {{scale = 2.0}}",
            short(&a)
        )
    );
    // Label noise and pair counts only shaped the fit that the artifact's φ replaces.
    let refit = PIECES.replace("label_noise = 0.2, pairs = 400", "label_noise = 0.0, pairs = 300");
    let (env, ..) = build(&spec(SOURCES, &refit));
    a.fit(&env, "target").unwrap();
}

#[test]
fn reward_model_refuses_another_feature_layout() {
    let a = artifact("rm");
    let mut doc = serde_json::to_value(&a).unwrap();
    // An artifact from a model over seven features (one fewer than this build's).
    doc["param_names"].as_array_mut().unwrap().pop();
    doc["params"]["weights"].as_array_mut().unwrap().pop();
    let seven = Artifact::from_value(doc).unwrap();
    let (env, ..) = build(&spec(SOURCES, PIECES));
    let e = seven.fit(&env, "target.toml").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "artifact {} (piece `rm`) does not fit target.toml: the artifact's parameters are over \
             [exact, closeness, digit_match, same_parity, same_digit_count, same_last_digit, \
             position] (7 values), the target spec's piece `rm` takes [exact, closeness, \
             digit_match, same_parity, same_digit_count, same_last_digit, position, magnitude] \
             (8 values)",
            short(&seven)
        )
    );
}

#[test]
fn refuses_another_kind_or_a_missing_piece() {
    let a = artifact("partial");
    let pieces = TEMPLATE.replace("kind = \"partial_credit\"", "kind = \"format_shaping\"");
    let e = refusal(&a, &pieces.replace("{SOURCES}", SOURCES).replace("{PIECES}", PIECES));
    assert_eq!(
        e.to_string(),
        format!(
            "artifact {} (piece `partial`) does not fit target.toml: the artifact is a \
             `partial_credit`, the target spec's piece `partial` is a `format_shaping`",
            short(&a)
        )
    );
    let a = artifact("rm");
    let e = refusal(&a, &spec(SOURCES, ""));
    assert_eq!(
        e.to_string(),
        format!(
            "artifact {} (piece `rm`) does not fit target.toml: the artifact is piece `rm` (a \
             `reward_model`), the target spec has no piece of that id (its pieces: gold, partial, \
             curriculum, hint)",
            short(&a)
        )
    );
}

#[test]
fn old_and_malformed_documents_are_refused_by_name() {
    // What format 1 wrote: source ids only.
    let old = r#"{"format": 1, "piece_id": "curriculum", "piece_kind": "curriculum",
        "params": {"kind": "curriculum", "logits": [0.1, 0.2, 0.3]},
        "sources": ["add", "count", "cmp"],
        "trained_on": {"spec_hash": "ab", "seed": 1, "policy": "loglinear, adam, lr 0.05", "steps": 2}}"#;
    assert_eq!(
        Artifact::from_json(old),
        Err(ArtifactError::OldFormat { found: 1, expected: ARTIFACT_FORMAT })
    );
    assert_eq!(
        Artifact::from_json(old).unwrap_err().to_string(),
        "artifact format 1 is too old: it records only the training spec's source ids, not each \
         source's family, knobs, answer space and feature count, nor the piece's configuration, \
         so its fit to a target spec cannot be checked; re-create it with `gristmill tune \
         --export` (format 2)"
    );
    assert!(matches!(Artifact::from_json("{}"), Err(ArtifactError::NotAnArtifact(_))));
    assert!(matches!(Artifact::from_json("not json"), Err(ArtifactError::NotAnArtifact(_))));
    assert!(matches!(
        Artifact::from_json(r#"{"format": 3}"#),
        Err(ArtifactError::NewerFormat { found: 3, .. })
    ));
    let invalid = Artifact::from_json(r#"{"format": 2, "piece_id": "x"}"#).unwrap_err().to_string();
    assert!(invalid.starts_with("not a valid format-2 artifact: missing field"), "{invalid}");

    let good = serde_json::to_value(artifact("curriculum")).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut d = good.clone();
        f(&mut d);
        Artifact::from_value(d).unwrap_err().to_string()
    };
    assert_eq!(
        edit(&|d| {
            d["params"]["logits"].as_array_mut().unwrap().pop();
        }),
        "malformed artifact for piece `curriculum`: 2 learned values for 3 named coordinates [add, count, cmp]"
    );
    assert_eq!(
        edit(&|d| d["params"] = serde_json::json!({"kind": "hint", "logit": 0.0})),
        "malformed artifact for piece `curriculum`: `hint` parameters for a piece of kind `curriculum`"
    );
    assert_eq!(
        edit(&|d| d["sources"][2]["id"] = "mul".into()),
        "malformed artifact for piece `curriculum`: the curriculum's coordinates [add, count, cmp] \
         are not its recorded sources [add, count, mul]"
    );
    let mut rm = serde_json::to_value(artifact("rm")).unwrap();
    rm["params"]["weights"][1] = 2e9.into();
    assert_eq!(
        Artifact::from_value(rm).unwrap_err().to_string(),
        "malformed artifact for piece `rm`: coordinate `closeness` is 2000000000, beyond the reward \
         model's bound ±1e9"
    );
    let weight = serde_json::to_value(artifact("partial")).unwrap();
    let mut d = weight.clone();
    d["params"]["log_weight"] = 1000.0.into();
    assert_eq!(
        Artifact::from_value(d).unwrap_err().to_string(),
        "malformed artifact for piece `partial`: log_weight 1000 gives an infinite channel weight"
    );
}

#[test]
fn the_hash_covers_the_training_environment() {
    let a = artifact("rm");
    let mut b = a.clone();
    b.sources[1].family = "modular".into();
    assert_ne!(a.hash(), b.hash());
    let mut c = a.clone();
    c.piece_params.insert("scale".into(), 2.0.into());
    assert_ne!(a.hash(), c.hash());
    // And it survives a round trip through the document.
    let back = Artifact::from_json(&serde_json::to_string_pretty(&a).unwrap()).unwrap();
    assert_eq!(back, a);
    assert_eq!(back.hash(), a.hash());
}

#[test]
fn deliberate_transfers_run_new_seed_other_architecture_and_held_out_family() {
    let (same, config) = build(&spec(SOURCES, PIECES));
    let seed = same.seed();
    let (held_out, ..) = build(&spec(&held_out(), PIECES));
    for a in TRAINED.iter() {
        // Every kind transfers to its own spec: the three settings, the last on the MLP.
        let cases = transfer(a, &same, &config, 2, "same").unwrap_or_else(|e| panic!("{e}"));
        let settings: Vec<_> =
            cases.iter().map(|c| (c.setting.as_str(), c.policy.as_str(), c.seed)).collect();
        assert_eq!(
            settings,
            [
                ("target spec", "loglinear, adam, lr 0.05", seed),
                ("new policy seed", "loglinear, adam, lr 0.05", seed + 1),
                ("other architecture", "mlp(hidden=32), adam, lr 0.05", seed),
            ],
            "{}",
            a.piece_id
        );
        if a.piece_kind == "curriculum" {
            continue; // refused on the held-out family (tested above)
        }
        // The held-out family: the spec whose `count` became `modular`.
        let cases = transfer(a, &held_out, &config, 2, "held-out").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cases.len(), 3);
        // The artifact's values are what the target runs with.
        let e = a.apply(&held_out, "held-out").unwrap();
        let i = e.piece_index(&a.piece_id).unwrap();
        match (&a.params, &e.pieces[i].built) {
            (Learnable::RewardModel { weights }, BuiltPiece::RewardModel(m)) => {
                assert_eq!(&m.weights()[..], &weights[..])
            }
            (Learnable::Hint { logit }, BuiltPiece::Hint(h)) => {
                assert_eq!(h.probability, 1.0 / (1.0 + (-logit).exp()));
                assert_ne!(h.probability, 0.5, "the hint must have moved");
            }
            (Learnable::Weight { log_weight }, BuiltPiece::Reward(_)) => {
                assert_eq!(e.pieces[i].weight, log_weight.exp())
            }
            (p, _) => panic!("unexpected artifact {p:?}"),
        }
    }
    let kinds: Vec<_> = TRAINED.iter().map(|a| a.piece_kind.as_str()).collect();
    assert_eq!(kinds, ["partial_credit", "noisy_verifier", "reward_model", "curriculum", "hint"]);
}
