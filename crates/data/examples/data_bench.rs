//! Dataset loading benchmark (run through `bench/data.sh`).
//!
//! ```text
//! data_bench generate DIR ROWS        # DIR/rows.jsonl, DIR/rows.parquet (row groups of 1000,
//!                                     # as `Dataset.to_parquet` writes), DIR/rows-1group.parquet
//! data_bench scan FILE                # full streaming scan: rows/s
//! data_bench get FILE GETS THREADS    # index build, then GETS random get(i) per thread: gets/s
//! ```
//!
//! Every command ends by printing its peak resident set (VmHWM), so run one per process.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, Float64Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray};
use arrow_schema::Field;
use gristmill_data::{Index, Mapping, ReadOptions, Reader};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

fn mapping() -> Mapping {
    // Metadata: every other column (level, tags).
    Mapping::text("question").gold("answer.value").id("id")
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

const WORDS: &[&str] =
    &["apples", "trains", "marbles", "students", "minutes", "coins", "books", "boxes", "legs", "pages"];

/// Row `i`: a word problem of 60–120 bytes with its answer.
fn problem(i: u64) -> (String, i64, String) {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let a = (xorshift(&mut x) % 1000) as i64;
    let b = (xorshift(&mut x) % 1000) as i64;
    let w = WORDS[(xorshift(&mut x) % WORDS.len() as u64) as usize];
    let q = format!(
        "Sam has {a} {w}. Alex gives Sam {b} more {w}, then Sam loses {} of them. How many {w} does Sam have now?",
        a % 10
    );
    (q, a + b - a % 10, w.to_owned())
}

fn batch(start: u64, rows: u64) -> RecordBatch {
    let mut ids = Vec::new();
    let mut questions = Vec::new();
    let mut values = Vec::new();
    let mut numerics = Vec::new();
    let mut levels = Vec::new();
    let mut tags = Vec::new();
    let mut tag_lengths = Vec::new();
    for i in start..start + rows {
        let (q, answer, w) = problem(i);
        ids.push(format!("r{i}"));
        questions.push(q);
        values.push(answer.to_string());
        numerics.push(answer as f64);
        levels.push((i % 5) as i64);
        tags.push("arithmetic".to_owned());
        tags.push(w);
        tag_lengths.push(2);
    }
    let answer = StructArray::from(vec![
        (
            Arc::new(Field::new("value", arrow_schema::DataType::Utf8, true)),
            Arc::new(StringArray::from(values)) as ArrayRef,
        ),
        (
            Arc::new(Field::new("numeric", arrow_schema::DataType::Float64, true)),
            Arc::new(Float64Array::from(numerics)) as ArrayRef,
        ),
    ]);
    let tags = ListArray::new(
        Arc::new(Field::new("element", arrow_schema::DataType::Utf8, true)),
        arrow_buffer::OffsetBuffer::from_lengths(tag_lengths),
        Arc::new(StringArray::from(tags)),
        None,
    );
    RecordBatch::try_from_iter(vec![
        ("id", Arc::new(StringArray::from(ids)) as ArrayRef),
        ("question", Arc::new(StringArray::from(questions)) as ArrayRef),
        ("answer", Arc::new(answer) as ArrayRef),
        ("level", Arc::new(Int64Array::from(levels)) as ArrayRef),
        ("tags", Arc::new(tags) as ArrayRef),
    ])
    .unwrap()
}

fn generate(dir: &Path, rows: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let schema = batch(0, 1).schema();
    let props = |group: Option<usize>| {
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(group)
            .build()
    };
    let mut hf = ArrowWriter::try_new(
        std::fs::File::create(dir.join("rows.parquet")).unwrap(),
        schema.clone(),
        Some(props(Some(1000))),
    )
    .unwrap();
    let mut one = ArrowWriter::try_new(
        std::fs::File::create(dir.join("rows-1group.parquet")).unwrap(),
        schema,
        Some(props(Some(rows as usize))),
    )
    .unwrap();
    let mut jsonl = std::io::BufWriter::new(std::fs::File::create(dir.join("rows.jsonl")).unwrap());
    let step = 10_000;
    let mut start = 0;
    while start < rows {
        let n = step.min(rows - start);
        let b = batch(start, n);
        hf.write(&b).unwrap();
        one.write(&b).unwrap();
        for i in start..start + n {
            let (q, answer, w) = problem(i);
            let line = serde_json::json!({
                "id": format!("r{i}"),
                "question": q,
                "answer": {"value": answer.to_string(), "numeric": answer as f64},
                "level": (i % 5) as i64,
                "tags": ["arithmetic", w],
            });
            writeln!(jsonl, "{line}").unwrap();
        }
        start += n;
    }
    hf.close().unwrap();
    one.close().unwrap();
    jsonl.flush().unwrap();
    for name in ["rows.jsonl", "rows.parquet", "rows-1group.parquet"] {
        let len = std::fs::metadata(dir.join(name)).unwrap().len();
        println!("wrote {name}: {rows} rows, {:.1} MB", len as f64 / 1e6);
    }
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn scan(path: &Path) {
    let t = Instant::now();
    let mut rows = 0u64;
    let mut bytes = 0usize;
    for row in Reader::open(path, mapping(), &ReadOptions::default()).unwrap() {
        let row = row.unwrap();
        bytes += row.prompt.as_text().map_or(0, str::len);
        rows += 1;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "scan {}: {rows} rows in {s:.2} s = {:.0} rows/s (prompt bytes {bytes}); peak RSS {:.1} MB",
        path.display(),
        rows as f64 / s,
        peak_rss_mb()
    );
}

fn get(path: &Path, gets: u64, threads: u64) {
    let t = Instant::now();
    let index = Index::build(path, mapping(), &ReadOptions::default()).unwrap();
    let build = t.elapsed().as_secs_f64();
    println!(
        "index {}: {} rows in {build:.2} s = {:.0} rows/s; index {:.1} MB; digest {}",
        path.display(),
        index.len(),
        index.len() as f64 / build,
        index.memory_bytes() as f64 / 1e6,
        index.digest()
    );
    let t = Instant::now();
    std::thread::scope(|s| {
        for thread in 0..threads {
            let index = &index;
            s.spawn(move || {
                let mut x = (thread + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
                for _ in 0..gets {
                    let i = xorshift(&mut x) % index.len();
                    let row = index.get(i).unwrap();
                    assert_eq!(row.position.index, i);
                }
            });
        }
    });
    let s = t.elapsed().as_secs_f64();
    println!(
        "get {} ({threads} thread(s)): {} random gets in {s:.2} s = {:.0} gets/s; peak RSS {:.1} MB",
        path.display(),
        gets * threads,
        (gets * threads) as f64 / s,
        peak_rss_mb()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: data_bench generate DIR ROWS | scan FILE | get FILE GETS THREADS";
    match args.get(1).map(String::as_str) {
        Some("generate") => generate(Path::new(&args[2]), args[3].parse().expect(usage)),
        Some("scan") => scan(Path::new(&args[2])),
        Some("get") => get(Path::new(&args[2]), args[3].parse().expect(usage), args[4].parse().expect(usage)),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
