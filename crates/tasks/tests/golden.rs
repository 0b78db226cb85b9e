//! Golden renderings: the first three tasks of every family at default knobs, and the first
//! observation of three mazes, compared with `tests/golden/<family>.txt`.
//!
//! A change here changes every stored run that uses the family, so it must be deliberate:
//! regenerate with `GRISTMILL_BLESS=1 cargo test -p gristmill-tasks --test golden` and
//! review the diff.

use std::fmt::Write;
use std::path::PathBuf;

use gristmill_core::digest::Digest;
use gristmill_core::params::Params;
use gristmill_core::task::{generate_task, Split, TaskKey};
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

#[test]
fn golden_renderings_match() {
    let bless = std::env::var("GRISTMILL_BLESS").is_ok_and(|v| v == "1");
    let mut cases: Vec<(String, String)> =
        families().iter().map(|f| (f.name.to_string(), render_family(f.name))).collect();
    cases.extend(episode_families().iter().map(|f| (f.name.to_string(), render_episode(f.name))));
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
