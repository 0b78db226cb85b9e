//! A dataset environment over HTTP: sampled tasks carry their row id and chat messages, and a
//! free-text response is scored per piece, with the gold answer as the data holds it.

mod common;

use common::TestServer;
use gristmill_server::{load_envs, ServerConfig};
use serde_json::json;

fn word_problems_env() -> Vec<(String, gristmill_engine::Environment)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = std::fs::read_to_string(root.join("examples/word-problems.toml")).unwrap();
    // The example's data path is relative to the repository root; tests run in the crate.
    let data = root.join("examples/data/word_problems.jsonl");
    let spec = spec.replace("examples/data/word_problems.jsonl", &data.display().to_string());
    let dir = std::env::temp_dir().join(format!("gristmill-server-free-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("word-problems.toml");
    std::fs::write(&path, spec).unwrap();
    load_envs(&[path]).expect("the example loads")
}

#[test]
fn free_text_tasks_are_sampled_and_scored_per_piece() {
    let server = TestServer::start_with(ServerConfig::default(), word_problems_env());
    let (status, body) =
        server.post("/v1/sample", &json!({"env": "word-problems", "split": "eval", "count": 4}));
    assert_eq!(status, 200, "{body}");
    let task = &body["tasks"][0];
    assert_eq!(task["family"], "dataset");
    assert!(task["id"].as_str().unwrap().starts_with("wp"), "{task}");
    let messages = task["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert!(messages[0]["content"].as_str().unwrap().contains("Answer: <answer>"));
    assert_eq!(messages[1]["role"], "user");
    let key = task["task_key"].as_str().unwrap();

    // Learn the gold from an eval-mode score, then score a right and a wrong response.
    let (status, body) = server
        .post("/v1/score", &json!({"env": "word-problems", "task_key": key, "response": "?", "eval": true}));
    assert_eq!(status, 200, "{body}");
    let gold = body["results"][0]["gold"].clone();
    let answer = gold["answer"].as_str().expect("the gold as the data holds it").to_string();
    assert_eq!(gold["text"], format!("Answer: {answer}"));
    assert_eq!(gold["correct"], false);

    let items = json!([
        {"task_key": key, "response": format!("Let me think.\nAnswer: {answer}")},
        {"task_key": key, "response": format!("The answer is {answer}.")},
        {"task_key": key, "response": "Answer: 123456789"},
    ]);
    let (status, body) =
        server.post("/v1/score", &json!({"env": "word-problems", "items": items, "eval": true}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["channels"], json!(["math", "numeric", "strict", "layout"]));
    let r = &body["results"];
    assert_eq!(r[0]["rewards"], json!({"math": 1.0, "numeric": 1.0, "strict": 1.0, "layout": 1.0}));
    // "The answer is …" has no `Answer:` line: the strict match and the layout refuse it; the
    // math verifier's extraction reads it (and a fraction gold such as 3/8 is not a number
    // the numeric verifier's last-number rule takes whole, so only math is asserted).
    assert_eq!(r[1]["rewards"]["math"], 1.0);
    assert_eq!(r[1]["rewards"]["strict"], 0.0);
    assert_eq!(r[1]["rewards"]["layout"], 0.0);
    assert_eq!(r[1]["gold"]["correct"], true);
    assert_eq!(r[2]["rewards"], json!({"math": 0.0, "numeric": 0.0, "strict": 0.0, "layout": 1.0}));
    assert_eq!(r[2]["gold"]["correct"], false);
}
