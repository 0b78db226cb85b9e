//! The free-text verifier pieces, built from spec parameters as a user writes them.

use std::sync::Arc;
use std::time::Instant;

use gristmill_core::params::{resolve, Params};
use gristmill_core::piece::{RewardPiece, ScoreKey};
use gristmill_core::policy::Response;
use gristmill_core::task::{AnswerSpace, GoldKind, Reference, Split, Task, TaskBody, TaskKey};
use gristmill_core::ParseError;
use gristmill_pieces::{build, kind, BuildContext, BuiltPiece, PieceError};
use serde_json::json;

fn params(kind_name: &str, toml_text: &str) -> Params {
    let table: toml::Table = toml::from_str(toml_text).unwrap();
    resolve(kind(kind_name).unwrap().params, &table, "piece[0].params").unwrap()
}

fn try_piece(kind_name: &str, toml_text: &str) -> Result<Arc<dyn RewardPiece>, PieceError> {
    let ctx = BuildContext::without_sources(1);
    match build(kind(kind_name).unwrap(), "p", &params(kind_name, toml_text), &ctx)? {
        BuiltPiece::Reward(r) => Ok(r),
        other => panic!("{kind_name} built {other:?}"),
    }
}

fn piece(kind_name: &str, toml_text: &str) -> Arc<dyn RewardPiece> {
    try_piece(kind_name, toml_text).unwrap()
}

fn free_text_task(kind: GoldKind, gold: serde_json::Value) -> Task {
    let reference = Reference {
        id: "r1".into(),
        kind,
        gold,
        solution: None,
        messages: vec![],
        metadata: Default::default(),
        content_hash: 0,
    };
    Task {
        key: TaskKey { seed: 0, source: 0, index: 0, split: Split::Train },
        body: TaskBody {
            prompt: "q".into(),
            features: vec![],
            gold: 0,
            reference: Some(Arc::new(reference)),
        },
        answers: AnswerSpace { lo: 0, size: 0 },
        hint: None,
    }
}

fn integer_task(gold: i64) -> Task {
    Task {
        key: TaskKey { seed: 0, source: 0, index: 0, split: Split::Train },
        body: TaskBody { prompt: "What is 5 + 7?".into(), features: vec![], gold, reference: None },
        answers: AnswerSpace::inclusive(0, 99),
        hint: None,
    }
}

fn text(t: &str) -> Response {
    Response { text: t.into(), answer: Err(ParseError::Missing) }
}

const KEY: ScoreKey = ScoreKey { seed: 1, step: 0, index: 0 };

fn score(p: &Arc<dyn RewardPiece>, task: &Task, response: &str) -> f64 {
    p.score(task, &text(response), KEY)
}

#[test]
fn numeric_verifier_is_the_integer_families_lenient_option() {
    // The shipped SmolLM2 writes "The answer is: 12"; the strict `Answer:` rule misses it.
    let task = integer_task(12);
    let lenient = piece("numeric_verifier", "");
    let exact = piece("exact_verifier", "");
    let smol = Response { text: "5 + 7 = 12. The answer is: 12".into(), answer: Err(ParseError::Missing) };
    assert_eq!(exact.score(&task, &smol, KEY), 0.0);
    assert_eq!(lenient.score(&task, &smol, KEY), 1.0);
    assert_eq!(score(&lenient, &task, "Answer: 12"), 1.0);
    assert_eq!(score(&lenient, &task, "I computed 5 + 7 and got 12"), 1.0, "last number");
    assert_eq!(score(&lenient, &task, "The answer is: 13"), 0.0);
    assert_eq!(score(&lenient, &task, "no idea"), 0.0);
    // Extraction is configurable: strict `answer_line` only.
    let strict = piece("numeric_verifier", "extract = 'answer_line'");
    assert_eq!(score(&strict, &task, "The answer is: 12"), 0.0);
    assert_eq!(score(&strict, &task, "Answer: 12"), 1.0);
}

#[test]
fn numeric_verifier_reads_the_forms_of_numbers() {
    let p = piece("numeric_verifier", "");
    for (gold, response) in [
        ("1200", "Answer: 1,200 cm"),
        ("0.75", "Answer: 3/4"),
        ("0.75", "The answer is 75%."),
        ("1200", "Answer: 1.2e3"),
        ("-2.5", "Answer: -2.50"),
    ] {
        assert_eq!(
            score(&p, &free_text_task(GoldKind::Number, json!(gold)), response),
            1.0,
            "{gold} vs {response}"
        );
    }
    assert_eq!(
        score(&p, &free_text_task(GoldKind::Number, json!(42)), "Answer: 42"),
        1.0,
        "a JSON number gold"
    );
    assert_eq!(score(&p, &free_text_task(GoldKind::Number, json!("0.75")), "Answer: 0.76"), 0.0);
    let loose = piece("numeric_verifier", "abs_tol = 0.05");
    assert_eq!(score(&loose, &free_text_task(GoldKind::Number, json!("0.75")), "Answer: 0.76"), 1.0);
}

#[test]
fn match_choice_and_math_verifiers() {
    let m = piece("match_verifier", "");
    let paris = free_text_task(GoldKind::Text, json!("Paris"));
    assert_eq!(score(&m, &paris, "The answer is: paris."), 1.0);
    assert_eq!(score(&m, &paris, "Answer: Rome"), 0.0);
    let case_only = piece("match_verifier", "normalize = 'whitespace'");
    assert_eq!(score(&case_only, &paris, "Answer: paris"), 0.0);

    let c = piece("choice_verifier", "letters = 'A-E'");
    let e = free_text_task(GoldKind::Choice, json!("E"));
    assert_eq!(score(&c, &e, "I pick (E)."), 1.0);
    assert_eq!(score(&c, &e, "(A) or (E)"), 0.0, "ambiguous responses are wrong");

    let math = piece("math_verifier", "");
    let half = free_text_task(GoldKind::Math, json!("\\frac{1}{2}"));
    assert_eq!(score(&math, &half, "so it is \\boxed{0.5}"), 1.0);
    assert_eq!(score(&math, &half, "so it is \\boxed{\\dfrac{2}{4}}"), 1.0);
    assert_eq!(score(&math, &half, "so it is \\boxed{\\frac{1}{3}}"), 0.0);
    let eq = free_text_task(GoldKind::Math, json!("3"));
    assert_eq!(score(&math, &eq, "Answer: $x = 3$"), 1.0);
    let sqrt = free_text_task(GoldKind::Math, json!("2\\sqrt{2}"));
    assert_eq!(score(&math, &sqrt, "\\boxed{\\sqrt{8}}"), 1.0);
}

#[test]
fn format_and_json_verifiers() {
    let task = free_text_task(GoldKind::Text, json!("x"));
    let f = piece("format_verifier", "");
    assert_eq!(score(&f, &task, "<think>hmm</think>\n<answer>4</answer>"), 1.0);
    assert_eq!(score(&f, &task, "<answer>4</answer>"), 0.0);
    assert_eq!(score(&f, &task, "<think>a</think><answer>4</answer> trailing"), 0.0, "anchored");

    let j = piece(
        "json_verifier",
        r#"fields = "name,age"
schema = '{"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}}'"#,
    );
    assert_eq!(score(&j, &task, "Here:\n```json\n{\"name\": \"a\", \"age\": 3}\n```"), 1.0);
    assert_eq!(score(&j, &task, "{\"name\": \"a\"}"), 0.0, "missing field");
    assert_eq!(score(&j, &task, "{\"name\": \"a\", \"age\": -1}"), 0.0, "schema");
    assert_eq!(score(&j, &task, "{not json"), 0.0);
}

#[test]
fn bad_parameters_name_the_parameter() {
    let err = |kind_name: &str, t: &str| match try_piece(kind_name, t) {
        Ok(_) => panic!("{kind_name} with {t} built"),
        Err(e) => e.to_string(),
    };
    // (kind, params, the parameter the error must name, a word it must contain)
    for (kind_name, params, param, word) in [
        ("match_verifier", "extract = 'answer_line,telepathy'", "extract", "telepathy"),
        ("numeric_verifier", "extract = 'regex'\npattern = '(unclosed'", "pattern", ""),
        ("numeric_verifier", "extract = 'regex'", "extract", ""),
        ("choice_verifier", "letters = 'A-'", "letters", ""),
        ("match_verifier", "normalize = 'shouting'", "normalize", ""),
        ("format_verifier", "layout = '<think>(' ", "layout", ""),
        ("json_verifier", "schema = '{\"type\": '", "schema", "not JSON"),
        ("json_verifier", "schema = '{\"oneOf\": []}'", "schema", "oneOf"),
    ] {
        let e = err(kind_name, params);
        assert!(
            e.starts_with(&format!("piece `p`: parameter `{param}`:")) && e.contains(word),
            "{kind_name}: {e}"
        );
    }
}

fn code_task(tests: serde_json::Value) -> Task {
    free_text_task(GoldKind::Tests, tests)
}

#[test]
fn code_verifier_scores_the_fraction_of_tests_passed() {
    let code = piece("code_verifier", "timeout = 1.0");
    let task = code_task(json!([
        "assert add(1, 2) == 3",
        {"expr": "add(-1, 1)", "expected": 0},
        {"expr": "add('a', 'b')", "expected": "ab"},
        "assert add(2, 2) == 5",
    ]));
    let good = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\n";
    assert_eq!(score(&code, &task, good), 0.75);
    // A bare solution (no fence) that is right only for add(1, 2).
    assert_eq!(score(&code, &task, "def add(a, b):\n    return 3\n"), 0.25);
}

#[test]
fn code_verifier_survives_hostile_solutions() {
    let code = piece("code_verifier", "timeout = 0.5\ntotal_timeout = 3.0");
    let task = code_task(json!(["assert f() == 1", "assert f() + 1 == 2"]));
    for (what, solution) in [
        ("an infinite loop", "def f():\n    while True:\n        pass\n"),
        ("exit(0) before the tests", "import sys\nsys.exit(0)\ndef f():\n    return 1\n"),
        (
            "a fork bomb",
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        ),
        ("a memory bomb", "x = bytearray(1 << 34)\ndef f():\n    return 1\n"),
        (
            "a network connection",
            "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)\ndef f():\n    return 1\n",
        ),
    ] {
        let start = Instant::now();
        let s = score(&code, &task, solution);
        assert_eq!(s, 0.0, "{what}");
        assert!(start.elapsed().as_secs_f64() < 10.0, "{what} took {:?}", start.elapsed());
    }
    // And the sandbox still works afterwards.
    assert_eq!(score(&code, &task, "def f():\n    return 1\n"), 1.0);
}

#[test]
fn code_verifier_reads_test_forms_and_refuses_bad_ones() {
    let code = piece("code_verifier", "");
    // No tests gold (an integer task, a text task): 0, not an error.
    assert_eq!(score(&code, &integer_task(3), "print(3)"), 0.0);
    assert_eq!(score(&code, &free_text_task(GoldKind::Text, json!("x")), "print(3)"), 0.0);
    // Program tests through stdin/stdout.
    let task = code_task(json!([{"stdin": "2 3\n", "stdout": "5\n"}, {"stdin": "1 1\n", "stdout": "2"}]));
    assert_eq!(score(&code, &task, "a, b = map(int, input().split())\nprint(a + b)\n"), 1.0);
    // Unreadable tests are a data error: the engine refuses the NaN, naming the channel.
    let bad = code_task(json!([{"input": 1}]));
    assert!(score(&code, &bad, "x = 1").is_nan());
}
