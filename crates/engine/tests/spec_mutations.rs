//! The spec reader under mutation (what a reliability pass ran as 300 mutated specs): every
//! shipped example, with random bytes inserted, deleted or replaced, either loads or is
//! refused with problems that each name a place and say what is wrong. Nothing panics.

use gristmill_core::spec::{decode_text, Overrides};
use proptest::prelude::*;

fn examples() -> Vec<String> {
    ["learn.toml", "arith.toml", "maze.toml", "tune.toml", "all-families.toml"]
        .iter()
        .map(|n| gristmill_testkit::example(n))
        .collect()
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, u8),
    Delete(usize),
    Replace(usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to TOML, plus arbitrary ones (NUL and invalid UTF-8 included).
    let byte = prop_oneof![
        Just(b'='),
        Just(b'['),
        Just(b']'),
        Just(b'"'),
        Just(b'\n'),
        Just(b'#'),
        Just(b'-'),
        Just(b'9'),
        any::<u8>()
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Replace(i, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_specs_load_or_are_refused_with_located_problems(
        which in 0usize..5,
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let mut bytes = examples()[which].clone().into_bytes();
        for e in edits {
            let n = bytes.len().max(1);
            match e {
                Edit::Insert(i, b) => bytes.insert(i % (n + 1).min(bytes.len() + 1), b),
                Edit::Delete(i) if !bytes.is_empty() => { bytes.remove(i % bytes.len()); }
                Edit::Replace(i, b) if !bytes.is_empty() => { let k = i % bytes.len(); bytes[k] = b; }
                _ => {}
            }
        }
        let loaded = decode_text(&bytes, "mutant.toml")
            .and_then(|t| gristmill_engine::load_spec(t, "mutant.toml", &Overrides::default()));
        if let Err(e) = loaded {
            prop_assert!(!e.problems.is_empty());
            for p in &e.problems {
                prop_assert!(!p.path.trim().is_empty(), "a problem without a place: {:?}", p);
                prop_assert!(!p.message.trim().is_empty(), "a problem without a message at {}", p.path);
            }
        }
    }
}
