//! The `dataset` source: Hugging Face exports load as they are, draws are keyed, the split is
//! by content, and every problem is a typed error naming the file, row and field.

use std::collections::BTreeSet;
use std::path::PathBuf;

use gristmill_core::params::{resolve, Params};
use gristmill_core::task::{
    generate_task, generate_task_into, Features, GoldKind, Split, Task, TaskKey, TaskSource,
};
use gristmill_core::TaskError;
use gristmill_tasks::dataset::{self, DatasetError};
use gristmill_tasks::{family, open_source, source_kinds};

/// The files `datasets` 5.2.0 wrote (see crates/data/tests/data/make_hf.py).
fn hf(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/tests/data").join(name).display().to_string()
}

fn knobs(toml_text: &str) -> Params {
    let table: toml::Table = toml::from_str(toml_text).unwrap();
    resolve(dataset::KNOBS, &table, "source[0].knobs").unwrap()
}

fn open(toml_text: &str) -> Result<dataset::DatasetSource, DatasetError> {
    dataset::open(&knobs(toml_text))
}

fn math_knobs(file: &str) -> String {
    format!(
        "path = '{}'\nprompt = 'question'\ngold = 'answer.value'\nid = 'id'\ngold_kind = 'number'",
        hf(file)
    )
}

fn key(index: u64, split: Split) -> TaskKey {
    TaskKey { seed: 11, source: 0, index, split }
}

fn draw(src: &dyn TaskSource, index: u64, split: Split, eval_fraction: f64) -> Task {
    generate_task(src, "math", key(index, split), eval_fraction).unwrap()
}

#[test]
fn jsonl_and_parquet_exports_give_the_same_tasks() {
    let jsonl = open(&math_knobs("hf_math.jsonl")).unwrap();
    let parquet = open(&math_knobs("hf_math.parquet")).unwrap();
    assert_eq!((jsonl.rows(), parquet.rows()), (5, 5));
    let mut seen = BTreeSet::new();
    for i in 0..40 {
        let (a, b) = (draw(&jsonl, i, Split::Train, 0.3), draw(&parquet, i, Split::Train, 0.3));
        assert_eq!(a.body, b.body, "draw {i}");
        let r = a.body.reference.as_ref().unwrap();
        assert_eq!(r.kind, GoldKind::Number);
        // Metadata is every column the mapping does not read.
        assert_eq!(r.metadata.keys().collect::<Vec<_>>(), ["level", "tags"]);
        assert!(a.body.prompt.ends_with('?') || a.body.prompt.ends_with('»'), "{}", a.body.prompt);
        seen.insert(r.id.clone());
    }
    // Five rows, 40 draws of the train side: every train row shows up.
    assert!(seen.len() >= 2, "{seen:?}");
}

#[test]
fn train_and_eval_rows_are_disjoint_and_the_split_is_by_content() {
    let src = open(&math_knobs("hf_math.jsonl")).unwrap();
    let ids = |split| -> BTreeSet<String> {
        (0..60).map(|i| draw(&src, i, split, 0.4).body.reference.unwrap().id.clone()).collect()
    };
    let (train, eval) = (ids(Split::Train), ids(Split::Eval));
    assert!(!train.is_empty() && !eval.is_empty());
    assert!(train.is_disjoint(&eval), "{train:?} {eval:?}");
    assert_eq!(train.len() + eval.len(), 5, "every row is on one side: {train:?} {eval:?}");
    // A system prompt changes the prompt text but not the content hash, so not the split.
    let with_system = open(&format!("{}\nsystem = 'Be brief.'", math_knobs("hf_math.jsonl"))).unwrap();
    for i in 0..30 {
        let (a, b) = (draw(&src, i, Split::Eval, 0.4), draw(&with_system, i, Split::Eval, 0.4));
        let (ra, rb) = (a.body.reference.unwrap(), b.body.reference.unwrap());
        assert_eq!((ra.id.as_str(), ra.content_hash), (rb.id.as_str(), rb.content_hash));
        assert_eq!(b.body.prompt, format!("system: Be brief.\n\nuser: {}", a.body.prompt));
    }
}

#[test]
fn draws_are_keyed_the_same_in_any_order_and_thread() {
    let src = open(&math_knobs("hf_math.parquet")).unwrap();
    let sequential: Vec<Task> = (0..200).map(|i| draw(&src, i, Split::Train, 0.2)).collect();
    let parallel: Vec<Task> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let src = &src;
                s.spawn(move || {
                    (0..200)
                        .rev()
                        .filter(|i| i % 4 == t)
                        .map(|i| (i, draw(src, i, Split::Train, 0.2)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(u64, Task)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, t)| t).collect()
    });
    assert_eq!(sequential, parallel);
    // Another seed draws other rows somewhere in 200 draws.
    let other: Vec<Task> = (0..200)
        .map(|i| generate_task(&src, "m", TaskKey { seed: 12, ..key(i, Split::Train) }, 0.2).unwrap())
        .collect();
    assert_ne!(
        sequential.iter().map(|t| &t.body).collect::<Vec<_>>(),
        other.iter().map(|t| &t.body).collect::<Vec<_>>()
    );
}

#[test]
fn chat_messages_and_code_tests_are_carried_to_the_reference() {
    let chat =
        open(&format!("path = '{}'\nmessages = 'messages'\ngold = 'gold'", hf("hf_chat.jsonl"))).unwrap();
    let t = draw(&chat, 0, Split::Train, 0.0);
    let r = t.body.reference.unwrap();
    assert!(!r.messages.is_empty());
    assert_eq!(r.messages.last().unwrap().role, "user");
    assert!(t.body.prompt.contains(&r.messages.last().unwrap().content));
    assert_eq!(r.metadata.keys().collect::<Vec<_>>(), ["source"]);

    let code = open(&format!(
        "path = '{}'\nprompt = 'prompt'\ngold = 'tests'\ngold_kind = 'tests'\nid = 'task_id'",
        hf("hf_code.parquet")
    ))
    .unwrap();
    let t = draw(&code, 3, Split::Train, 0.0);
    let r = t.body.reference.unwrap();
    assert_eq!(r.kind, GoldKind::Tests);
    assert!(r.gold.as_array().unwrap()[0].as_str().unwrap().starts_with("assert "));
    assert!(["11", "12"].contains(&r.id.as_str()), "integer ids are written in decimal: {}", r.id);
    // No solution column: the oracle cannot write this task's gold, and says why.
    let mut out = String::new();
    assert!(r.render_gold_into(&mut out).unwrap_err().contains("no reference solution"));
}

#[test]
fn a_reused_task_buffer_does_not_keep_a_dataset_reference() {
    let src = open(&math_knobs("hf_math.jsonl")).unwrap();
    let addition = family("addition").unwrap();
    let integer = (addition.build)(&Params::defaults(addition.knobs));
    let mut task = Task::empty();
    generate_task_into(&src, "m", key(0, Split::Train), 0.2, Features::Encode, &mut task).unwrap();
    assert!(task.body.reference.is_some());
    generate_task_into(integer.as_ref(), "a", key(0, Split::Train), 0.2, Features::Encode, &mut task)
        .unwrap();
    assert!(task.body.reference.is_none());
    assert_eq!(task, generate_task(integer.as_ref(), "a", key(0, Split::Train), 0.2).unwrap());
}

#[test]
fn the_catalog_lists_dataset_after_the_families_and_open_source_opens_it() {
    let names: Vec<&str> = source_kinds().iter().map(|f| f.name).collect();
    assert_eq!(names.last(), Some(&"dataset"));
    assert_eq!(names.len(), gristmill_tasks::families().len() + 1);
    let info = source_kinds().last().unwrap();
    let src = open_source(info, &knobs(&math_knobs("hf_math.jsonl"))).unwrap();
    assert!(src.free_text());
    // The infallible catalog constructor cannot read a file: it fails every draw, by name.
    let unopened = (info.build)(&knobs(&math_knobs("hf_math.jsonl")));
    let err = generate_task(unopened.as_ref(), "m", key(0, Split::Train), 0.2).unwrap_err();
    assert!(matches!(&err, TaskError::Source { source_id, .. } if source_id == "m"), "{err}");
    assert!(err.to_string().contains("open_source"), "{err}");
}

fn error(toml_text: &str) -> String {
    open(toml_text).unwrap_err().to_string()
}

#[test]
fn bad_files_and_knobs_are_typed_errors_naming_file_row_and_field() {
    let dir = tempdir();
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let missing_gold =
        file("missing.jsonl", "{\"question\": \"a?\", \"answer\": \"1\"}\n{\"question\": \"b?\"}\n");
    let e = error(&format!("path = '{missing_gold}'\nprompt = 'question'"));
    assert!(e.ends_with("missing.jsonl: line 2: field `answer`: is missing; fields here: question"), "{e}");

    let bad_json = file("bad.jsonl", "{\"prompt\": \"a\", \"answer\": 1}\n{\"prompt\": \n");
    let e = error(&format!("path = '{bad_json}'"));
    assert!(e.contains("bad.jsonl: line 2") && e.contains("invalid JSON"), "{e}");

    let e = error(&format!("path = '{}'\ntemplate = 'Solve {{problem}}'", hf("hf_math.jsonl")));
    assert!(e.contains("hf_math.jsonl: line 1") && e.contains("problem"), "{e}");

    let e = error(&format!("path = '{}'\nprompt = 'question'\nmessages = 'm'", hf("hf_math.jsonl")));
    assert_eq!(e, "knob `messages`: give one of `prompt`, `messages`, `template`, not prompt and messages");

    let e = error("prompt = 'question'");
    assert_eq!(e, "knob `path`: a dataset source needs a file path");

    let e = error(&format!("path = '{}'", dir.join("nope.jsonl").display()));
    assert!(e.contains("nope.jsonl") && e.contains("cannot"), "{e}");

    let e = error(&format!("path = '{}'\ntemplate = 'Solve {{question'", hf("hf_math.jsonl")));
    assert!(e.starts_with("knob `template`:"), "{e}");

    let empty = file("empty.jsonl", "\n\n");
    assert!(error(&format!("path = '{empty}'")).ends_with("empty.jsonl: the file holds no rows"));

    // A gold value of the wrong shape for its kind fails the draw, naming the row.
    let not_tests = file("tests.jsonl", "{\"prompt\": \"write f\", \"answer\": \"f()\"}\n");
    let src = open(&format!("path = '{not_tests}'\ngold_kind = 'tests'")).unwrap();
    let err = generate_task(&src, "code", key(0, Split::Train), 0.0).unwrap_err().to_string();
    assert!(
        err.starts_with("source `code`: ")
            && err.contains("tests.jsonl: row 1: gold: expected a non-empty list"),
        "{err}"
    );
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("gristmill-tasks-dataset-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
