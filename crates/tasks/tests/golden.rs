//! Golden renderings: the first three tasks of every family at default knobs, and the first
//! observation of three mazes, compared with `tests/golden/<family>.txt`; and a digest of 40
//! tasks (prompt, gold, features, canonical answer) per family at every knob's extremes, its
//! midpoint and every choice, compared with `tests/golden/knob-sweep.txt`.
//!
//! A change here changes every stored run that uses the family, so it must be deliberate:
//! regenerate with `GRISTMILL_BLESS=1 cargo test -p gristmill-tasks --test golden` and
//! review the diff.

use std::fmt::Write;
use std::path::PathBuf;

use gristmill_core::digest::Digest;
use gristmill_core::params::{ParamKind, ParamValue, Params};
use gristmill_core::rng::{stream, Purpose};
use gristmill_core::task::{generate_task, Features, Split, TaskBody, TaskKey};
use gristmill_tasks::{episode_families, families};

const SEED: u64 = 0x6015_7e11;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("golden")
}

fn render_family(name: &str) -> String {
    let info = gristmill_tasks::family(name).unwrap();
    let src = (info.build)(&Params::defaults(info.knobs));
    let mut out = String::new();
    let space = src.answers();
    let _ = writeln!(
        out,
        "# {name} at default knobs; answers {}..={}; {} features",
        space.lo,
        space.hi(),
        src.feature_dim()
    );
    for index in 0..3 {
        let key = TaskKey { seed: SEED, source: 0, index, split: Split::Train };
        let task = generate_task(src.as_ref(), name, key, 0.2).unwrap();
        // The feature digest pins the encoding bit for bit without printing floats.
        let features = Digest::new().f64s(&task.body.features).hex();
        let _ = writeln!(out, "\n=== task {key} ===");
        let _ = writeln!(out, "gold: {} ({})", task.gold(), src.render_answer(task.gold()));
        let _ = writeln!(out, "features: {}", &features[..16]);
        let _ = writeln!(out, "--- prompt ---\n{}", task.body.prompt);
    }
    out
}

fn render_episode(name: &str) -> String {
    let info = gristmill_tasks::episode_family(name).unwrap();
    let params = Params::defaults(info.knobs);
    let mut out = format!("# {name} at default knobs: first observation and oracle move\n");
    for seed in [SEED, SEED + 1, SEED + 2] {
        let e = (info.reset)(&params, seed);
        let oracle = e.oracle_action().map(|a| e.action_name(a)).unwrap_or("none");
        let _ = writeln!(out, "\n=== seed {seed} === digest {} oracle {oracle}", &e.state_digest()[..16]);
        let _ = writeln!(out, "{}", e.observation());
    }
    out
}

/// One line per (family, knob setting): defaults, then one knob at a time at its minimum,
/// maximum and midpoint (numbers) or at each choice, with a digest of 40 generated tasks.
/// Also checks that skipping the feature encoding changes nothing else.
fn render_knob_sweep() -> String {
    let mut out =
        String::from("# family knob=value: digest of 40 tasks (prompt, gold, features, answer text)\n");
    for fam in families() {
        let mut settings = vec![("defaults".to_string(), Params::defaults(fam.knobs))];
        for k in fam.knobs {
            let values = match k.kind {
                ParamKind::Int { min, max, .. } => {
                    vec![ParamValue::Int(min), ParamValue::Int(max), ParamValue::Int((min + max) / 2)]
                }
                ParamKind::Float { min, max, .. } => {
                    vec![ParamValue::Float(min), ParamValue::Float(max), ParamValue::Float((min + max) / 2.0)]
                }
                ParamKind::Choice { options, .. } => {
                    options.iter().map(|o| ParamValue::Choice(o.to_string())).collect()
                }
                _ => vec![],
            };
            for v in values {
                let mut p = Params::defaults(fam.knobs);
                let label = format!("{}={v:?}", k.name);
                p.set(k.name, v);
                settings.push((label, p));
            }
        }
        for (i, (label, params)) in settings.iter().enumerate() {
            let src = (fam.build)(params);
            let mut d = Digest::new();
            let mut skipped = TaskBody::default();
            for index in 0..40 {
                let body = src.generate(&mut stream(SEED, Purpose::TASK, i as u64, index));
                src.generate_into(
                    &mut stream(SEED, Purpose::TASK, i as u64, index),
                    &mut skipped,
                    Features::Skip,
                );
                assert_eq!(
                    (&skipped.prompt, skipped.gold),
                    (&body.prompt, body.gold),
                    "{} {label}",
                    fam.name
                );
                assert!(skipped.features.is_empty());
                d.str(&body.prompt).i64(body.gold).f64s(&body.features).str(&src.render_answer(body.gold));
            }
            let _ = writeln!(out, "{} {label}: {}", fam.name, &d.hex()[..16]);
        }
    }
    out
}

#[test]
fn golden_renderings_match() {
    let bless = gristmill_testkit::bless();
    let mut cases: Vec<(String, String)> =
        families().iter().map(|f| (f.name.to_string(), render_family(f.name))).collect();
    cases.extend(episode_families().iter().map(|f| (f.name.to_string(), render_episode(f.name))));
    cases.push(("knob-sweep".to_string(), render_knob_sweep()));
    let mut mismatched = Vec::new();
    for (name, text) in cases {
        let path = golden_dir().join(format!("{name}.txt"));
        if bless {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(want) if want == text => {}
            Ok(want) => {
                let line = want.lines().zip(text.lines()).position(|(a, b)| a != b).map_or(0, |l| l + 1);
                mismatched
                    .push(format!("{name}: differs from {} (first at line {line})\n{text}", path.display()));
            }
            Err(e) => mismatched.push(format!("{name}: cannot read {}: {e}", path.display())),
        }
    }
    assert!(
        mismatched.is_empty(),
        "golden renderings changed; if intended, rerun with GRISTMILL_BLESS=1 and review:\n{}",
        mismatched.join("\n")
    );
}
