//! Every error a malformed file or a mismatched mapping can give, with its exact message.

mod common;

use common::{floats, ints, list, strings, structs, write_parquet, Scratch};
use gristmill_data::{Index, Mapper, Mapping, Metadata, PoolMapping, ReadOptions, Reader};
use parquet::basic::Compression;

/// The first error reading `file` (holding `text`) gives, opening or iterating.
fn first_error<M: Mapper>(
    dir: &Scratch,
    file: &str,
    text: &[u8],
    mapper: M,
    options: &ReadOptions,
) -> String {
    let path = dir.write(file, text);
    let error = match Reader::open(&path, mapper, options) {
        Err(e) => e,
        Ok(reader) => reader.filter_map(Result::err).next().expect("an error"),
    };
    dir.relative(error)
}

#[test]
fn json_lines_errors() {
    let dir = Scratch::new("errors");
    let o = ReadOptions::default();
    let q = || Mapping::text("q");
    let m = || Mapping::messages("m");
    let cases: Vec<(&[u8], Mapping, &str)> = vec![
        (b"{\"q\":\"a\"}\n[1]\n", q(), "line 2: expected a JSON object, found an array"),
        (b"{\"q\":\"a\"}\n\"text\"\n", q(), "line 2: expected a JSON object, found a string"),
        (b"{\"q\": }\n", q(), "line 1: invalid JSON: expected value at column 7"),
        (b"{\"q\":\"a\"} x\n", q(), "line 1: invalid JSON: trailing characters at column 11"),
        (b"{\"q\":\"a\xff\"}\n", q(), "line 1: invalid UTF-8 at byte 7 of the line"),
        (b"{\"q\":\"a\"}\n\n{\"r\":1}\n", q(), "line 3: field `q`: is missing; fields here: r"),
        (b"{\"q\":3}\n", q(), "line 1: field `q`: expected a string, found a number"),
        (b"{\"q\":null}\n", q(), "line 1: field `q`: is null"),
        (b"{\"m\":\"hi\"}\n", m(), "line 1: field `m`: expected a list of {role, content} messages, found a string"),
        (b"{\"m\":[\"hi\"]}\n", m(), "line 1: field `m[0]`: expected a {role, content} object, found a string"),
        (
            b"{\"m\":[{\"role\":\"user\",\"content\":\"x\"},{\"content\":\"y\"}]}\n",
            m(),
            "line 1: field `m[1].role`: is missing; fields here: content",
        ),
        (
            b"{\"m\":[{\"role\":1,\"content\":\"x\"}]}\n",
            m(),
            "line 1: field `m[0].role`: expected a string, found a number",
        ),
        (
            b"{\"m\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}\n",
            m(),
            "line 1: field `m[0].content`: expected a string, found an array",
        ),
        (b"{\"m\":[]}\n", m(), "line 1: field `m`: is an empty list of messages"),
        (b"{\"m\":{\"a\":1}}\n", Mapping::auto("m"), "line 1: field `m`: expected a string or a list of messages, found an object"),
        (
            b"{\"q\":\"a\"}\n",
            Mapping::template("Q: {question}").unwrap(),
            "line 1: field `question`: unknown template variable {question}: the row has no such field; fields here: q",
        ),
        (
            b"{\"q\":{\"a\":1}}\n",
            Mapping::template("Q: {q.b}").unwrap(),
            "line 1: field `q.b`: unknown template variable {q.b}: the row has no such field; fields here: a",
        ),
        (b"{\"q\":null}\n", Mapping::template("Q: {q}").unwrap(), "line 1: field `q`: is null"),
        (b"{\"q\":\"a\",\"id\":1.5}\n", q().id("id"), "line 1: field `id`: expected a string or an integer, found a number"),
        (b"{\"q\":\"a\"}\n", q().id("id"), "line 1: field `id`: is missing; fields here: q"),
        (b"{\"q\":\"a\",\"g\":null}\n", q().gold("g").require_gold(), "line 1: field `g`: is null"),
        (b"{\"q\":\"a\",\"answer\":{\"v\":1}}\n", q().gold("answer.value"), "line 1: field `answer.value`: is missing; fields here: v"),
        (b"{\"q\":\"a\",\"answer\":3}\n", q().gold("answer.value"), "line 1: field `answer`: expected an object, found a number"),
        (b"{\"q\":\"a\",\"answer\":[1]}\n", q().gold("answer.3"), "line 1: field `answer.3`: is missing; fields here: indices 0..1"),
        (
            b"{\"m\":[{\"role\":\"system\",\"content\":\"x\"},{\"role\":\"user\",\"content\":\"y\"}]}\n",
            m().system_prompt("Be brief."),
            "line 1: field `m[0]`: already starts with a system message, and the mapping's system prompt would add a second one; drop one of them",
        ),
        (
            b"{\"q\":\"a\"}\n",
            q().metadata(Metadata::Columns(vec!["src".into()])),
            "line 1: field `src`: is missing; fields here: q",
        ),
        (
            b"[{\"q\":\"a\"}]\n",
            q(),
            "the file starts with `[`: rows must be JSON objects, one per line (JSON Lines); a file holding one JSON array is not read — write it with `Dataset.to_json(path)` (lines=True, the default) or convert it with `jq -c '.[]'`",
        ),
    ];
    for (text, mapping, expected) in cases {
        let got = first_error(&dir, "case.jsonl", text, &mapping, &o);
        assert_eq!(got, format!("case.jsonl: {expected}"), "for {:?}", String::from_utf8_lossy(text));
    }
    // The array is recognised after a byte order mark and blank lines too.
    let got = first_error(&dir, "case.json", b"\xEF\xBB\xBF  \n [{\"q\":\"a\"}]\n", q(), &o);
    assert!(got.starts_with("case.json: the file starts with `[`"), "{got}");
}

#[test]
fn file_errors() {
    let dir = Scratch::new("file-errors");
    let o = ReadOptions::default();
    let q = Mapping::text("q");
    assert_eq!(
        first_error(&dir, "case.csv", b"q\n", &q, &o),
        "case.csv: cannot tell the format from the file name (expected .jsonl, .ndjson, .json or .parquet); set ReadOptions::format"
    );
    let missing = dir.path("missing.jsonl");
    let e = Reader::open(&missing, &q, &o).err().unwrap();
    assert_eq!(dir.relative(e), "missing.jsonl: cannot read: No such file or directory (os error 2)");

    let path = dir.write("case.jsonl", "{\"q\":\"a\"}\n");
    let index = Index::build(&path, &q, &o).unwrap();
    assert_eq!(
        dir.relative(index.get(5).unwrap_err()),
        "case.jsonl: row index 5 is out of range: the file has 1 rows"
    );
    std::fs::write(&path, "{\"q\":\"a\"}\n{\"q\":\"b\"}\n").unwrap();
    assert_eq!(
        dir.relative(index.get(0).unwrap_err()),
        "case.jsonl: the file changed since it was indexed (10 bytes then, 20 bytes now); index it again"
    );
    // The index fails on the first bad row, with that row's error.
    let path = dir.write("bad.jsonl", "{\"q\":\"a\"}\n{\"q\":1}\n");
    assert_eq!(
        dir.relative(Index::build(&path, &q, &o).err().unwrap()),
        "bad.jsonl: line 2: field `q`: expected a string, found a number"
    );
}

#[test]
fn size_limits() {
    let dir = Scratch::new("limits");
    let small = ReadOptions::default().max_row_bytes(12);
    let q = Mapping::text("q");
    assert_eq!(
        first_error(&dir, "case.jsonl", b"{\"q\":\"aaa\"}\n{\"q\":\"aaaaaaaa\"}\r\n", &q, &small),
        "case.jsonl: line 2: the line is 16 bytes, over the limit of 12 bytes (ReadOptions::max_row_bytes)"
    );

    // A 100 MB line under the default 16 MiB limit: reported, skipped without being held,
    // and the rows after it are read.
    let path = dir.path("huge.jsonl");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        f.write_all(b"{\"q\":\"first\"}\n{\"q\":\"").unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\"}\n{\"q\":\"last\"}\n").unwrap();
    }
    let items: Vec<_> = Reader::open(&path, &q, &ReadOptions::default()).unwrap().collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].as_ref().unwrap().prompt.as_text(), Some("first"));
    assert_eq!(
        dir.relative(items[1].as_ref().unwrap_err()),
        "huge.jsonl: line 2: the line is 104857608 bytes, over the limit of 16777216 bytes (ReadOptions::max_row_bytes)"
    );
    let last = items[2].as_ref().unwrap();
    assert_eq!((last.prompt.as_text(), last.position.index, last.position.number), (Some("last"), 2, 3));
    assert_eq!(
        dir.relative(Index::build(&path, &q, &ReadOptions::default()).err().unwrap()),
        "huge.jsonl: line 2: the line is 104857608 bytes, over the limit of 16777216 bytes (ReadOptions::max_row_bytes)"
    );

    // A Parquet row is measured as its values written as JSON.
    let path = dir.path("rows.parquet");
    let long = "y".repeat(100);
    write_parquet(&path, vec![("q", strings([Some("short"), Some(long.as_str())]))], 10, Compression::SNAPPY);
    let limit = ReadOptions::default().max_row_bytes(50);
    let items: Vec<_> = Reader::open(&path, &q, &limit).unwrap().collect();
    assert_eq!(items[0].as_ref().unwrap().prompt.as_text(), Some("short"));
    assert_eq!(
        dir.relative(items[1].as_ref().unwrap_err()),
        "rows.parquet: row 2: the row is 109 bytes, over the limit of 50 bytes (ReadOptions::max_row_bytes)"
    );
}

#[test]
fn pool_errors() {
    let dir = Scratch::new("pool-errors");
    let o = ReadOptions::default();
    let pools = PoolMapping::new(Mapping::text("prompt"));
    let cases: Vec<(&str, &str)> = vec![
        (r#"{"prompt":"p","candidates":[]}"#, "field `candidates`: is an empty candidate pool"),
        (r#"{"prompt":"p"}"#, "field `candidates`: is missing; fields here: prompt"),
        (r#"{"prompt":"p","candidates":null}"#, "field `candidates`: is null"),
        (r#"{"prompt":"p","candidates":{"text":"a"}}"#, "field `candidates`: expected a list of candidates, found an object"),
        (r#"{"prompt":"p","candidates":["a"]}"#, "field `candidates[0]`: expected a candidate object, found a string"),
        (r#"{"prompt":"p","candidates":[{"logit":1}]}"#, "field `candidates[0].text`: is missing; fields here: logit"),
        (r#"{"prompt":"p","candidates":[{"text":null}]}"#, "field `candidates[0].text`: is null"),
        (
            r#"{"prompt":"p","candidates":[{"text":"a"},{"text":"b"},{"text":"c"},{"text":"d","logit":"high"}]}"#,
            "field `candidates[3].logit`: expected a number, found a string",
        ),
        (r#"{"prompt":"p","candidates":[{"text":"a","gold":true}]}"#, "field `candidates[0].gold`: expected a number, found a boolean"),
        (
            r#"{"prompt":"p","candidates":[{"text":"a"},{"text":"b","scores":{"rm":"good"}}]}"#,
            "field `candidates[1].scores.rm`: expected a number, found a string",
        ),
        (r#"{"prompt":"p","candidates":[{"text":"a","scores":[1]}]}"#, "field `candidates[0].scores`: expected an object of numbers, found an array"),
        (
            r#"{"prompt":"p","candidates":[{"text":"a","logprob":-1}]}"#,
            "field `candidates[0].logprob`: is not a candidate field (known: text, logit, gold, scores); PoolMapping::keep_extra_fields keeps unknown ones",
        ),
        (r#"{"prompt":7,"candidates":[{"text":"a"}]}"#, "field `prompt`: expected a string, found a number"),
    ];
    for (line, expected) in cases {
        let got = first_error(&dir, "pools.jsonl", format!("{line}\n").as_bytes(), &pools, &o);
        assert_eq!(got, format!("pools.jsonl: line 1: {expected}"), "for {line}");
    }
}

#[test]
fn parquet_errors() {
    let dir = Scratch::new("parquet-errors");
    let o = ReadOptions::default();
    let path = dir.path("t.parquet");
    write_parquet(
        &path,
        vec![
            ("id", ints([Some(1), Some(2)])),
            ("prompt", strings([Some("a"), Some("b")])),
            (
                "answer",
                structs(vec![
                    ("value", strings([Some("1"), Some("2")])),
                    ("numeric", floats([Some(1.0), None])),
                ]),
            ),
            ("tags", list(&[1, 0], strings([Some("x")]))),
        ],
        10,
        Compression::SNAPPY,
    );
    let open_error =
        |mapping: Mapping| dir.relative(Reader::open(&path, mapping, &o).err().expect("an error"));
    assert_eq!(
        open_error(Mapping::text("question")),
        "t.parquet: field `question`: no such column in the file's schema; fields here: answer, id, prompt, tags"
    );
    assert_eq!(
        open_error(Mapping::text("prompt").gold("answer.val")),
        "t.parquet: field `answer.val`: no such column in the file's schema; fields here: numeric, value"
    );
    assert_eq!(
        open_error(Mapping::template("{prompt} {tags.0.x} {nope}").unwrap()),
        "t.parquet: field `nope`: no such column in the file's schema; fields here: answer, id, prompt, tags"
    );
    let row_error = |mapping: Mapping| {
        dir.relative(
            Reader::open(&path, mapping, &o).unwrap().filter_map(Result::err).next().expect("an error"),
        )
    };
    assert_eq!(
        row_error(Mapping::messages("prompt")),
        "t.parquet: row 1: field `prompt`: expected a list of {role, content} messages, found a string"
    );
    assert_eq!(
        row_error(Mapping::text("prompt").gold("answer.numeric").require_gold()),
        "t.parquet: row 2: field `answer.numeric`: is null"
    );
    assert_eq!(
        row_error(Mapping::text("prompt").gold("tags.0")),
        "t.parquet: row 2: field `tags.0`: is missing; fields here: indices 0..0"
    );

    // A binary column is refused by name when the mapping reads it, and ignored otherwise.
    let path = dir.path("blob.parquet");
    let blob: arrow_array::ArrayRef =
        std::sync::Arc::new(arrow_array::BinaryArray::from(vec![&b"\x00\x01"[..]]));
    write_parquet(&path, vec![("prompt", strings([Some("a")])), ("blob", blob)], 10, Compression::SNAPPY);
    assert_eq!(
        dir.relative(Reader::open(&path, Mapping::text("prompt"), &o).err().unwrap()),
        "blob.parquet: field `blob`: has Arrow type Binary, which is not read; leave it out of the mapping (Metadata::Columns lists the metadata to keep)"
    );
    let rows: Vec<_> =
        Reader::open(&path, Mapping::text("prompt").metadata(Metadata::None), &o).unwrap().collect();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].is_ok());

    // Not Parquet at all, and Parquet cut short.
    let not = dir.write("not.parquet", "{\"prompt\":\"a\"}\n");
    assert_eq!(
        dir.relative(Reader::open(&not, Mapping::text("prompt"), &o).err().unwrap()),
        "not.parquet: not a readable Parquet file: Parquet error: Invalid Parquet file. Corrupt footer"
    );
    let bytes = std::fs::read(dir.path("t.parquet")).unwrap();
    let cut = dir.write("cut.parquet", &bytes[..bytes.len() - 100]);
    let e = dir.relative(Reader::open(&cut, Mapping::text("prompt"), &o).err().unwrap());
    assert!(e.starts_with("cut.parquet: not a readable Parquet file: "), "{e}");
    let empty = dir.write("empty.parquet", "");
    let e = dir.relative(Reader::open(&empty, Mapping::text("prompt"), &o).err().unwrap());
    assert!(e.starts_with("empty.parquet: not a readable Parquet file: "), "{e}");
}
