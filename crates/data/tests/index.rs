//! `Index::get(i)` equals the `i`-th row of a full scan, for both formats, any row-group and
//! block size, from many threads.

mod common;

use std::io::Write;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, StringArray};
use common::{write_parquet, Scratch};
use gristmill_data::{Index, Mapping, ReadOptions, Reader, Row};
use parquet::basic::Compression;
use proptest::prelude::*;
use serde_json::json;

#[derive(Clone, Debug)]
struct Item {
    question: String,
    gold: Option<i64>,
    tag: String,
}

fn item() -> impl Strategy<Value = Item> {
    ("[a-z0-9 \\n\"\\\\{}é×😀]{0,40}", proptest::option::of(-1000i64..1000), "[a-c]{1,2}")
        .prop_map(|(question, gold, tag)| Item { question, gold, tag })
}

/// Writes the items as JSON lines (with blank lines, `\r\n` and a byte order mark when asked)
/// and as Parquet with row groups of `group_rows`.
fn write_both(
    dir: &Scratch,
    items: &[Item],
    group_rows: usize,
    blank_every: usize,
    crlf: bool,
    bom: bool,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let jsonl = dir.path("rows.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&jsonl).unwrap());
    if bom {
        f.write_all(b"\xEF\xBB\xBF").unwrap();
    }
    let end = if crlf { "\r\n" } else { "\n" };
    for (i, it) in items.iter().enumerate() {
        if blank_every > 0 && i % blank_every == 0 {
            write!(f, "  {end}").unwrap();
        }
        let line = json!({"question": it.question, "gold": it.gold, "tag": it.tag});
        write!(f, "{line}{end}").unwrap();
    }
    drop(f);
    let parquet = dir.path("rows.parquet");
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("question", Arc::new(items.iter().map(|it| Some(it.question.as_str())).collect::<StringArray>())),
        ("gold", Arc::new(items.iter().map(|it| it.gold).collect::<Int64Array>())),
        ("tag", Arc::new(items.iter().map(|it| Some(it.tag.as_str())).collect::<StringArray>())),
    ];
    write_parquet(&parquet, columns, group_rows, Compression::SNAPPY);
    (jsonl, parquet)
}

fn scan(path: &std::path::Path, mapping: &Mapping) -> Vec<Row> {
    Reader::open(path, mapping, &ReadOptions::default()).unwrap().collect::<Result<_, _>>().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn get_equals_the_scan(
        items in proptest::collection::vec(item(), 1..150),
        group_rows in 1usize..40,
        block_rows in 1usize..50,
        cache_blocks in 0usize..4,
        blank_every in 0usize..5,
        crlf: bool,
        bom: bool,
        picks in proptest::collection::vec(any::<u64>(), 1..60),
    ) {
        let dir = Scratch::new("prop-index");
        let (jsonl, parquet) = write_both(&dir, &items, group_rows, blank_every, crlf, bom);
        let mapping = Mapping::template("Q: {question}").unwrap().gold("gold");
        let options = ReadOptions::default().block_rows(block_rows).cache_blocks(cache_blocks);
        let from_json = scan(&jsonl, &mapping);
        let from_parquet = scan(&parquet, &mapping);
        prop_assert_eq!(from_json.len(), items.len());
        for (a, b) in from_json.iter().zip(&from_parquet) {
            prop_assert_eq!((&a.id, &a.prompt, &a.gold, &a.metadata, a.position.index), (&b.id, &b.prompt, &b.gold, &b.metadata, b.position.index));
        }
        for (path, rows) in [(&jsonl, &from_json), (&parquet, &from_parquet)] {
            let index = Index::build(path, &mapping, &options).unwrap();
            prop_assert_eq!(index.len(), items.len() as u64);
            for &pick in &picks {
                let i = pick % index.len();
                prop_assert_eq!(&index.get(i).unwrap(), &rows[i as usize]);
            }
        }
    }
}

#[test]
fn gets_from_many_threads() {
    let dir = Scratch::new("threads");
    let items: Vec<Item> = (0..5000)
        .map(|i| Item {
            question: format!("question {i} {}", "x".repeat(i % 97)),
            gold: Some(i as i64),
            tag: format!("t{}", i % 7),
        })
        .collect();
    let (jsonl, parquet) = write_both(&dir, &items, 300, 11, false, false);
    let mapping = Mapping::text("question").gold("gold");
    for path in [jsonl, parquet] {
        let rows = scan(&path, &mapping);
        let index =
            Index::build(&path, &mapping, &ReadOptions::default().block_rows(64).cache_blocks(3)).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (index, rows) = (&index, &rows);
                s.spawn(move || {
                    let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    for _ in 0..2000 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let i = x % index.len();
                        assert_eq!(index.get(i).unwrap(), rows[i as usize]);
                    }
                });
            }
        });
    }
}

#[test]
fn memory_per_row_is_as_documented() {
    let dir = Scratch::new("memory");
    let items: Vec<Item> =
        (0..10_000).map(|i| Item { question: format!("q{i}"), gold: None, tag: "a".into() }).collect();
    let (jsonl, parquet) = write_both(&dir, &items, 1000, 0, false, false);
    let mapping = Mapping::text("question");
    let j = Index::build(&jsonl, &mapping, &ReadOptions::default()).unwrap();
    let p = Index::build(&parquet, &mapping, &ReadOptions::default()).unwrap();
    // 16 bytes a row for JSON Lines (and the final offset), 8 for Parquet (and 8 a row group).
    assert_eq!(j.memory_bytes(), 160_008);
    assert_eq!(p.memory_bytes(), 80_000 + 11 * 8);
    assert_eq!(p.row_group_starts().unwrap().len(), 11);
}

#[test]
fn empty_files() {
    let dir = Scratch::new("empty");
    let mapping = Mapping::text("q");
    for text in ["", "\n\n  \n"] {
        let path = dir.write("e.jsonl", text);
        assert_eq!(Reader::open(&path, &mapping, &ReadOptions::default()).unwrap().count(), 0);
        let index = Index::build(&path, &mapping, &ReadOptions::default()).unwrap();
        assert!(index.is_empty());
        assert!(index.get(0).is_err());
    }
    let path = dir.path("e.parquet");
    write_parquet(
        &path,
        vec![("q", Arc::new(StringArray::from(Vec::<&str>::new())) as ArrayRef)],
        10,
        Compression::SNAPPY,
    );
    let index = Index::build(&path, &mapping, &ReadOptions::default()).unwrap();
    assert_eq!(index.len(), 0);
}
