//! Damaged files: every outcome is a row or an error, never a panic or an abort.

mod common;

use std::path::PathBuf;

use gristmill_data::{ErrorKind, Index, Mapping, PoolMapping, ReadOptions, Reader};
use proptest::prelude::*;

fn data(file: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(file)).unwrap()
}

/// Reads the file every way there is and counts caught decoder panics.
fn read_every_way(path: &std::path::Path) -> usize {
    let mut panics = 0;
    let mut note = |e: &gristmill_data::Error| {
        if matches!(e.kind, ErrorKind::DecoderPanic(_)) {
            panics += 1;
        }
    };
    let mapping = Mapping::messages("messages").gold("gold");
    match Reader::open(path, &mapping, &ReadOptions::default()) {
        Ok(reader) => reader.filter_map(Result::err).for_each(|e| note(&e)),
        Err(e) => note(&e),
    }
    match Index::build(path, &mapping, &ReadOptions::default().block_rows(1)) {
        Ok(index) => {
            for i in 0..index.len() {
                if let Err(e) = index.get(i) {
                    note(&e);
                }
            }
        }
        Err(e) => note(&e),
    }
    let pools = PoolMapping::new(Mapping::text("prompt"));
    if let Ok(reader) = Reader::open(path, &pools, &ReadOptions::default()) {
        reader.filter_map(Result::err).for_each(|e| note(&e));
    }
    panics
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn damaged_parquet_is_an_error(cut in proptest::option::of(0usize..4500), flips in proptest::collection::vec((0usize..4500, any::<u8>()), 0..6)) {
        let dir = common::Scratch::new("damaged");
        for name in ["hf_chat.parquet", "hf_pool.parquet"] {
            let mut bytes = data(name);
            for &(at, byte) in &flips {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut);
            }
            let path = dir.write("x.parquet", &bytes);
            let panics = read_every_way(&path);
            if panics > 0 {
                eprintln!("{name}: {panics} decoder panics caught (cut {cut:?}, flips {flips:?})");
            }
        }
    }

    #[test]
    fn arbitrary_lines_give_one_item_each(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..20)) {
        let dir = common::Scratch::new("lines");
        let mut text = Vec::new();
        let mut rows = 0;
        for line in &lines {
            let line: Vec<u8> = line.iter().copied().filter(|&b| b != b'\n').collect();
            if !line.iter().all(u8::is_ascii_whitespace) {
                rows += 1;
            }
            text.extend(&line);
            text.push(b'\n');
        }
        let path = dir.write("x.jsonl", &text);
        let mapping = Mapping::text("q");
        if let Ok(reader) = Reader::open(&path, &mapping, &ReadOptions::default().max_row_bytes(30)) {
            prop_assert_eq!(reader.count(), rows);
        }
    }
}
