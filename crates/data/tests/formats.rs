//! Round trips through files written here with the Arrow writer, and the files Hugging Face
//! `datasets` writes (tests/data, made by tests/data/make_hf.py).

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, MapBuilder, StringBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, Date32Array, Decimal128Array, DictionaryArray, Float32Array, LargeStringArray,
    TimestampMillisecondArray,
};
use common::{floats, ints, list, strings, structs, write_parquet, Scratch};
use gristmill_data::{
    content_hash, Candidate, Format, Index, Mapper, Mapping, Message, Metadata, PoolMapping, Prompt,
    ReadOptions, Reader,
};
use parquet::basic::Compression;
use serde_json::json;

fn data(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(file)
}

fn read_all<M: Mapper>(path: &std::path::Path, mapper: M) -> Vec<M::Row> {
    Reader::open(path, mapper, &ReadOptions::default()).unwrap().collect::<Result<Vec<_>, _>>().unwrap()
}

#[test]
fn hf_math_export_jsonl_and_parquet_agree() {
    let mapping = Mapping::text("question").gold("answer.value").id("id");
    let from_json = read_all(&data("hf_math.jsonl"), &mapping);
    let from_parquet = read_all(&data("hf_math.parquet"), &mapping);
    assert_eq!(from_json.len(), 5);
    assert_eq!(from_json, from_parquet);
    let third = &from_json[2];
    assert_eq!(third.id, "m3");
    assert_eq!(third.prompt, Prompt::Text("Combien font 3 × 3 ? « neuf »".into()));
    assert_eq!(third.gold, Some(json!("9")));
    assert_eq!(third.metadata, json!({"level": 1, "tags": []}).as_object().unwrap().clone());
    assert_eq!(from_json[3].metadata["level"], json!(null));
    assert_eq!(from_json[1].metadata["tags"], json!(["div", "frac"]));
    // The Parquet export has row groups of 2 rows; positions run across them.
    let index = Index::build(data("hf_math.parquet"), &mapping, &ReadOptions::default()).unwrap();
    assert_eq!(index.row_group_starts(), Some(&[0, 2, 4, 5][..]));
    for (i, row) in from_json.iter().enumerate() {
        assert_eq!(row.position.index, i as u64);
        assert_eq!(row.position.number, i as u64 + 1);
    }
    // Gold as a whole struct, and metadata listed by dotted path.
    let mapping = Mapping::text("question")
        .gold("answer")
        .metadata(Metadata::Columns(vec!["answer.numeric".into(), "level".into()]));
    let a = read_all(&data("hf_math.jsonl"), &mapping);
    assert_eq!(a, read_all(&data("hf_math.parquet"), &mapping));
    assert_eq!(a[1].gold, Some(json!({"value": "4.5", "numeric": 4.5})));
    assert_eq!(a[3].metadata, json!({"answer.numeric": null, "level": null}).as_object().unwrap().clone());
    assert_eq!(a[0].id, "0");
}

#[test]
fn hf_chat_export_messages() {
    let mapping = Mapping::messages("messages").gold("gold");
    let rows = read_all(&data("hf_chat.jsonl"), &mapping);
    assert_eq!(rows, read_all(&data("hf_chat.parquet"), &mapping));
    assert_eq!(
        rows[0].prompt,
        Prompt::Messages(vec![
            Message::new("system", "Answer with a letter."),
            Message::new("user", "2+2? (A) 3 (B) 4")
        ])
    );
    assert_eq!(rows[2].prompt.as_messages().unwrap().len(), 3);
    assert_eq!(rows[1].metadata, json!({"source": "geo"}).as_object().unwrap().clone());
    // A system prompt goes before the data's messages; the first row already has one.
    let with_system = mapping.clone().system_prompt("Be brief.");
    let items: Vec<_> =
        Reader::open(data("hf_chat.parquet"), &with_system, &ReadOptions::default()).unwrap().collect();
    let e = items[0].as_ref().unwrap_err().to_string();
    assert!(e.ends_with("hf_chat.parquet: row 1: field `messages[0]`: already starts with a system message, and the mapping's system prompt would add a second one; drop one of them"), "{e}");
    let second = items[1].as_ref().unwrap();
    assert_eq!(
        second.prompt,
        Prompt::Messages(vec![
            Message::new("system", "Be brief."),
            Message::new("user", "Capital of France?")
        ])
    );
    // `auto` reads the same column as messages.
    assert_eq!(read_all(&data("hf_chat.jsonl"), Mapping::auto("messages").gold("gold")), rows);
}

#[test]
fn hf_code_export_tests_as_gold() {
    let mapping =
        Mapping::template("{prompt}\nThe function is `{entry_point}`.").unwrap().gold("tests").id("task_id");
    let rows = read_all(&data("hf_code.parquet"), &mapping);
    assert_eq!(rows, read_all(&data("hf_code.jsonl"), &mapping));
    assert_eq!(rows[0].id, "11");
    assert_eq!(rows[0].prompt, Prompt::Text("Write add(a, b).\nThe function is `add`.".into()));
    assert_eq!(rows[0].gold, Some(json!(["assert add(1, 2) == 3", "assert add(0, 0) == 0"])));
    assert!(rows[0].metadata.is_empty(), "template variables, gold and id are not metadata");
}

#[test]
fn hf_pool_export() {
    let pools = PoolMapping::new(Mapping::text("prompt").gold("gold").id("id"));
    let rows = read_all(&data("hf_pool.jsonl"), &pools);
    assert_eq!(rows, read_all(&data("hf_pool.parquet"), &pools));
    assert_eq!(rows[0].candidates.len(), 2);
    assert_eq!(
        rows[0].candidates[1],
        Candidate {
            text: "48".into(),
            logit: -1.25,
            gold: Some(0.0),
            scores: [("len".to_string(), 0.1), ("rm".to_string(), 0.2)].into_iter().collect(),
            extra: Default::default(),
        }
    );
    // Nulls count as absent: logit 0, no gold, the null score left out; a null pool gold is None.
    let lone = &rows[1].candidates[0];
    assert_eq!((lone.logit, lone.gold, lone.scores.len()), (0.0, None, 1));
    assert_eq!(rows[1].gold, None);
    assert!(rows[0].metadata.is_empty());
    let index = Index::build(data("hf_pool.parquet"), &pools, &ReadOptions::default()).unwrap();
    assert_eq!(index.get(1).unwrap(), rows[1]);
}

/// Rows with every kind of column, as Parquet (written by the Arrow writer) and as the JSON
/// lines `datasets` would write for them.
fn typed_parquet(dir: &Scratch, compression: Compression) -> PathBuf {
    let path = dir.path(&format!("typed-{compression:?}.parquet"));
    let messages = structs(vec![
        (
            "role",
            strings([
                Some("system"),
                Some("user"),
                Some("user"),
                Some("user"),
                Some("assistant"),
                Some("user"),
            ]),
        ),
        (
            "content",
            strings([Some("Be exact."), Some("1+1?"), Some("2+2?"), Some("hi"), Some("hello"), Some("3+3?")]),
        ),
    ]);
    let mut scores = MapBuilder::new(None, StringBuilder::new(), Float64Builder::new());
    for entries in [vec![("rm", 0.5)], vec![], vec![("rm", 1.0), ("len", 0.25)]] {
        for (k, v) in entries {
            scores.keys().append_value(k);
            scores.values().append_value(v);
        }
        scores.append(true).unwrap();
    }
    let dict: DictionaryArray<Int32Type> = vec![Some("easy"), None, Some("easy")].into_iter().collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", ints([Some(7), Some(8), Some(9)])),
        ("messages", list(&[2, 1, 3], messages)),
        (
            "answer",
            structs(vec![
                ("value", strings([Some("2"), Some("4"), None])),
                ("exact", floats([Some(2.0), Some(f64::NAN), Some(6.0)])),
            ]),
        ),
        ("weight", Arc::new(Float32Array::from(vec![0.1f32, 1.5, -2.25]))),
        ("level", Arc::new(dict)),
        ("scores", Arc::new(scores.finish())),
        ("day", Arc::new(Date32Array::from(vec![0, 19_000, 365]))),
        ("at", Arc::new(TimestampMillisecondArray::from(vec![0i64, 1_500, 86_400_000]).with_timezone("UTC"))),
        (
            "price",
            Arc::new(
                Decimal128Array::from(vec![12345i128, -5, 100]).with_precision_and_scale(10, 2).unwrap(),
            ),
        ),
        ("note", Arc::new(LargeStringArray::from(vec![Some("ü"), None, Some("")]))),
    ];
    write_parquet(&path, columns, 2, compression);
    path
}

const TYPED_JSONL: &str = concat!(
    r#"{"id":7,"messages":[{"role":"system","content":"Be exact."},{"role":"user","content":"1+1?"}],"answer":{"value":"2","exact":2.0},"weight":0.1,"level":"easy","scores":{"rm":0.5},"day":"1970-01-01","at":"1970-01-01T00:00:00Z","price":"123.45","note":"ü"}"#,
    "\n",
    r#"{"id":8,"messages":[{"role":"user","content":"2+2?"}],"answer":{"value":"4","exact":null},"weight":1.5,"level":null,"scores":{},"day":"2022-01-08","at":"1970-01-01T00:00:01.500Z","price":"-0.05","note":null}"#,
    "\n",
    r#"{"id":9,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"3+3?"}],"answer":{"value":null,"exact":6.0},"weight":-2.25,"level":"easy","scores":{"rm":1.0,"len":0.25},"day":"1971-01-01","at":"1970-01-02T00:00:00Z","price":"1.00","note":""}"#,
    "\n",
);

#[test]
fn arrow_writer_round_trip_every_column_type() {
    let dir = Scratch::new("typed");
    let jsonl = dir.write("typed.jsonl", TYPED_JSONL);
    let mapping = Mapping::messages("messages").gold("answer").id("id");
    let expected = read_all(&jsonl, &mapping);
    #[allow(unused_mut)]
    let mut codecs = vec![Compression::SNAPPY, Compression::UNCOMPRESSED];
    #[cfg(feature = "zstd")]
    codecs.push(Compression::ZSTD(Default::default()));
    #[cfg(feature = "gzip")]
    codecs.push(Compression::GZIP(Default::default()));
    for compression in codecs {
        let path = typed_parquet(&dir, compression);
        let rows = read_all(&path, &mapping);
        assert_eq!(rows, expected, "{compression:?}");
        let index = Index::build(&path, &mapping, &ReadOptions::default().block_rows(1)).unwrap();
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(&index.get(i as u64).unwrap(), row);
        }
    }
    assert_eq!(expected[1].gold, Some(json!({"value": "4", "exact": null})));
    assert_eq!(expected[0].metadata["weight"], json!(0.1));
    assert_eq!(expected[2].prompt.as_messages().unwrap()[1], Message::new("assistant", "hello"));
}

#[test]
fn format_override_and_detection() {
    let dir = Scratch::new("formats");
    let path = dir.write("rows.txt", "{\"q\":\"a\"}\n");
    let q = Mapping::text("q");
    assert!(Reader::open(&path, &q, &ReadOptions::default()).is_err());
    let reader = Reader::open(&path, &q, &ReadOptions::default().format(Format::JsonLines)).unwrap();
    assert_eq!(reader.format(), Format::JsonLines);
    assert_eq!(reader.count(), 1);
    for (name, format) in [
        ("a.JSONL", Format::JsonLines),
        ("a.ndjson", Format::JsonLines),
        ("a.json", Format::JsonLines),
        ("a.parquet", Format::Parquet),
        ("a.pq", Format::Parquet),
    ] {
        assert_eq!(Format::from_path(name.as_ref()), Some(format), "{name}");
    }
    assert_eq!(Format::from_path("a.jsonl.gz".as_ref()), None);
}

#[test]
fn content_bytes_ignore_the_system_prompt() {
    let dir = Scratch::new("content");
    let path = dir.write("q.jsonl", "{\"q\":\"What is 2+2?\"}\n{\"q\":\"Name a prime.\"}\n");
    let plain = Index::build(&path, Mapping::text("q"), &ReadOptions::default()).unwrap();
    let system =
        Index::build(&path, Mapping::text("q").system_prompt("Be brief."), &ReadOptions::default()).unwrap();
    let chat = dir.write(
        "c.jsonl",
        "{\"m\":[{\"role\":\"user\",\"content\":\"What is 2+2?\"}]}\n{\"m\":[{\"role\":\"user\",\"content\":\"Name a prime.\"}]}\n",
    );
    let as_chat = Index::build(&chat, Mapping::messages("m"), &ReadOptions::default()).unwrap();
    assert_eq!(plain.content_hash(0), Some(content_hash(b"What is 2+2?")));
    assert_eq!(plain.content_hashes(), system.content_hashes());
    assert_eq!(plain.content_hashes(), as_chat.content_hashes());
    assert_eq!(plain.content_hash(2), None);
    let row = system.get(0).unwrap();
    assert_eq!(row.prompt.as_messages().unwrap()[0], Message::new("system", "Be brief."));
    assert_eq!(&*system.mapper().content_bytes(&row), b"What is 2+2?");
    // A multi-turn prompt hashes as the JSON of its messages.
    let turns = Prompt::Messages(vec![Message::new("user", "a"), Message::new("assistant", "b")]);
    assert_eq!(
        &*turns.content_bytes(),
        br#"[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]"#
    );
}

#[test]
fn digest_is_blake3_of_the_bytes() {
    for file in ["hf_math.jsonl", "hf_math.parquet"] {
        let bytes = std::fs::read(data(file)).unwrap();
        let index = Index::build(data(file), Mapping::text("question"), &ReadOptions::default()).unwrap();
        assert_eq!(index.digest().hex(), blake3::hash(&bytes).to_hex().to_string(), "{file}");
        assert_eq!(index.digest().bytes, bytes.len() as u64);
        assert_eq!(gristmill_data::digest_file(data(file)).unwrap(), *index.digest());
    }
}
