//! Properties every single-turn family must have, checked over many keys and knob settings.

use std::collections::{BTreeMap, BTreeSet};

use gristmill_core::params::{ParamKind, ParamValue, Params};
use gristmill_core::rng::{stream, Purpose};
use gristmill_core::task::{generate_task, is_eval_content, FamilyInfo, Split, TaskKey, TaskSource};
use gristmill_core::ParseError;
use gristmill_tasks::{episode_families, episode_family, families, family};

/// Knob settings to test: defaults, the all-minimum and all-maximum corners (first and last
/// choice), and every choice option with the other knobs at default.
fn settings(info: &FamilyInfo) -> Vec<(String, Params)> {
    let mut out = vec![("default".to_string(), Params::defaults(info.knobs))];
    for (label, high) in [("min", false), ("max", true)] {
        let mut p = Params::defaults(info.knobs);
        for k in info.knobs {
            let v = match k.kind {
                ParamKind::Int { min, max, .. } => ParamValue::Int(if high { max } else { min }),
                ParamKind::Float { min, max, .. } => ParamValue::Float(if high { max } else { min }),
                ParamKind::Choice { options, .. } => {
                    ParamValue::Choice(if high { options[options.len() - 1] } else { options[0] }.to_string())
                }
                ParamKind::Weights | ParamKind::Text { .. } | ParamKind::Structured => continue,
            };
            p.set(k.name, v);
        }
        out.push((label.to_string(), p));
    }
    for k in info.knobs {
        if let ParamKind::Choice { options, .. } = k.kind {
            for o in options {
                let mut p = Params::defaults(info.knobs);
                p.set(k.name, ParamValue::Choice(o.to_string()));
                out.push((format!("{}={o}", k.name), p));
            }
        }
    }
    out
}

fn build_default(info: &FamilyInfo) -> Box<dyn TaskSource> {
    (info.build)(&Params::defaults(info.knobs))
}

#[test]
fn registry_lists_every_family_once() {
    let names: Vec<&str> = families().iter().map(|f| f.name).collect();
    assert!(names.len() >= 10, "{names:?}");
    assert_eq!(names.iter().collect::<BTreeSet<_>>().len(), names.len(), "duplicate names");
    for info in families() {
        assert_eq!(family(info.name).map(|f| f.name), Some(info.name));
        assert!(!info.multi_turn);
        assert!(!info.doc.is_empty() && !info.answer_format.is_empty());
        assert!(!info.doc.contains("\n\n"), "{}: doc is one paragraph", info.name);
        let src = build_default(info);
        assert_eq!(src.family(), info.name);
    }
    assert!(family("nope").is_none());
    assert_eq!(episode_families().len(), 1);
    assert_eq!(episode_family("maze").map(|f| f.name), Some("maze"));
    assert!(episode_family("addition").is_none());
}

#[test]
fn gold_in_space_and_features_well_formed_at_every_setting() {
    for info in families() {
        for (label, params) in settings(info) {
            let src = (info.build)(&params);
            let space = src.answers();
            let dim = src.feature_dim();
            let ctx = format!("{} [{label}]", info.name);
            assert!((2..=2000).contains(&space.size), "{ctx}: space {space:?}");
            assert!((2..=128).contains(&dim), "{ctx}: dim {dim}");
            let mut counts = BTreeMap::new();
            for i in 0..400 {
                let body = src.generate(&mut stream(0xabc, Purpose::TASK, 1, i));
                assert!(
                    space.contains(body.gold),
                    "{ctx}: gold {} outside {space:?}\n{}",
                    body.gold,
                    body.prompt
                );
                assert_eq!(body.features.len(), dim, "{ctx}");
                assert_eq!(body.features[0], 1.0, "{ctx}: bias first");
                for (j, x) in body.features.iter().enumerate() {
                    assert!(x.is_finite() && (-1.0..=1.0).contains(x), "{ctx}: feature {j} = {x}");
                }
                let last = body.prompt.lines().last().unwrap_or("");
                assert!(
                    last.starts_with("End your response with a line of the form `Answer:"),
                    "{ctx}: {last}"
                );
                *counts.entry(body.gold).or_insert(0) += 1;
            }
            let top = counts.values().max().copied().unwrap_or(0);
            assert!(counts.len() >= 2 && top <= 300, "{ctx}: gold distribution too narrow: {counts:?}");
        }
    }
}

#[test]
fn default_spaces_are_small_and_features_vary() {
    for info in families() {
        let src = build_default(info);
        assert!(src.answers().size <= 200, "{}: {:?}", info.name, src.answers());
        // Every feature but the bias (and constant one-hots of fixed knobs) moves somewhere.
        let bodies: Vec<_> = (0..300).map(|i| src.generate(&mut stream(5, Purpose::TASK, 0, i))).collect();
        let varying = (0..src.feature_dim())
            .filter(|&j| bodies.iter().any(|b| b.features[j] != bodies[0].features[j]))
            .count();
        assert!(
            varying * 2 >= src.feature_dim(),
            "{}: only {varying} of {} features vary",
            info.name,
            src.feature_dim()
        );
    }
}

#[test]
fn generation_is_deterministic_and_varied() {
    for info in families() {
        let src = build_default(info);
        let mut prompts = BTreeSet::new();
        for i in 0..100 {
            let a = src.generate(&mut stream(9, Purpose::TASK, 0, i));
            let b = src.generate(&mut stream(9, Purpose::TASK, 0, i));
            assert_eq!(a, b, "{}", info.name);
            prompts.insert(a.prompt);
        }
        assert!(prompts.len() >= 50, "{}: only {} distinct prompts in 100 keys", info.name, prompts.len());
        let key = TaskKey { seed: 3, source: 2, index: 17, split: Split::Eval };
        let t1 = generate_task(src.as_ref(), info.name, key, 0.2).unwrap();
        let t2 = generate_task(src.as_ref(), info.name, key, 0.2).unwrap();
        assert_eq!(t1, t2, "{}", info.name);
    }
}

#[test]
fn render_parse_round_trip_over_the_whole_space() {
    for info in families() {
        for (label, params) in settings(info) {
            let src = (info.build)(&params);
            let space = src.answers();
            for i in 0..space.size as usize {
                let v = space.value(i);
                let text = src.render_answer(v);
                assert!(text.starts_with("Answer: "), "{}: {text}", info.name);
                assert_eq!(src.parse_answer(&text), Ok(v), "{} [{label}]: {text}", info.name);
                let wrapped = format!("Let me think.\nAnswer: 0\nOn reflection:\n{text}.\n");
                assert_eq!(src.parse_answer(&wrapped), Ok(v), "{} [{label}]: {wrapped}", info.name);
            }
        }
    }
}

#[test]
fn parse_errors_are_typed() {
    for info in families() {
        let src = build_default(info);
        let space = src.answers();
        let name = info.name;
        assert_eq!(src.parse_answer("the result is 42"), Err(ParseError::Missing), "{name}");
        assert_eq!(src.parse_answer(""), Err(ParseError::Missing), "{name}");
        assert_eq!(src.parse_answer("Answer:   \n5"), Err(ParseError::Missing), "{name}");
        assert!(matches!(src.parse_answer("Answer: ?!"), Err(ParseError::Malformed(_))), "{name}");
        assert!(matches!(src.parse_answer("Answer: 1.5x"), Err(ParseError::Malformed(_))), "{name}");
        for v in [space.lo - 1, space.hi() + 1, space.hi() + 1000] {
            let text = src.render_answer(v);
            assert!(matches!(src.parse_answer(&text), Err(ParseError::OutOfSpace(_))), "{name}: {text}");
        }
    }
}

/// Pseudo-random text built from fragments that exercise the parsers' edges, including
/// multi-byte characters next to the markers.
fn nasty_text(seed: u64) -> String {
    use rand::Rng;
    const BITS: [&str; 32] = [
        "Answer:", "answer:", "ANSWER: ", "Action:", "-", "+", "0x", "0b", "1", "9", "a", "F", "<", "=", ">",
        " ", "\n", ".", "`", "*", "é", "€", "😀", "\u{0}", "ß", "İ", "\u{200b}", "less", "up", "١", "_", "$",
    ];
    let mut rng = stream(seed, Purpose::SAMPLE, 0, 0);
    let n = rng.random_range(0..12);
    let mut s = String::new();
    for _ in 0..n {
        if rng.random_range(0..8) == 0 {
            let bytes: Vec<u8> = (0..rng.random_range(1..6)).map(|_| rng.random()).collect();
            s.push_str(&String::from_utf8_lossy(&bytes));
        } else {
            s.push_str(BITS[rng.random_range(0..BITS.len())]);
        }
    }
    s
}

#[test]
fn parsers_are_total_on_arbitrary_text() {
    let sources: Vec<_> = families().iter().map(build_default).collect();
    let maze = episode_family("maze").unwrap();
    let episode = (maze.reset)(&Params::defaults(maze.knobs), 1);
    for seed in 0..3000 {
        let text = nasty_text(seed);
        for src in &sources {
            if let Ok(v) = src.parse_answer(&text) {
                assert!(src.answers().contains(v), "{}: {text:?} -> {v}", src.family());
            }
        }
        if let Ok(a) = episode.parse_action(&text) {
            assert!(a < episode.action_count());
        }
    }
}

#[test]
fn both_splits_draw_at_default_knobs() {
    for info in families() {
        let src = build_default(info);
        for split in [Split::Train, Split::Eval] {
            for index in 0..200 {
                let key = TaskKey { seed: 0x600d, source: 0, index, split };
                let task = generate_task(src.as_ref(), info.name, key, 0.2)
                    .unwrap_or_else(|e| panic!("{}: {e}", info.name));
                assert_eq!(is_eval_content(&task.body, 0.2), split == Split::Eval);
            }
        }
    }
}

#[test]
fn maze_family_resets_from_knobs_and_the_oracle_wins() {
    let info = episode_family("maze").unwrap();
    let params = Params::defaults(info.knobs);
    for seed in 0..300 {
        let mut e = (info.reset)(&params, seed);
        assert_eq!(e.state_digest(), (info.reset)(&params, seed).state_digest());
        while let Some(a) = e.oracle_action() {
            e.step(a);
        }
        assert!(e.done() && e.total_reward() > 0.5, "seed {seed}: {}", e.observation());
        assert!(e.steps_taken() <= params.int("max_steps") as u32);
    }
}
