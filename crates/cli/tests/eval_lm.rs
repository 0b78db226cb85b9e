//! `gristmill eval --policy openai:URL` against a scripted HTTP server that dies part-way:
//! finished rollouts are kept, and re-running the command resumes to the same summary as an
//! uninterrupted run. (No model needed; the in-process model is tested in gristmill-lm.)

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gristmill_testkit::http::ScriptedServer;

fn temp_dir(name: &str) -> PathBuf {
    gristmill_testkit::scratch_dir(&format!("eval-lm-{name}"))
}

/// Serves chat completions answering `Answer: 7` while `budget` lasts, then 503.
fn fake_server(listener: TcpListener, budget: Arc<AtomicUsize>) {
    fake_server_saying(listener, budget, "Let me add.\\nAnswer: 7");
}

/// Serves chat completions answering `content` (JSON-escaped) while `budget` lasts, then 503.
fn fake_server_saying(listener: TcpListener, budget: Arc<AtomicUsize>, content: &'static str) {
    ScriptedServer::start_on(listener, move |body| {
        assert!(body.contains("\"messages\""), "{body}");
        let healthy = budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1)).is_ok();
        if healthy {
            (
                "200 OK",
                format!(
                    r#"{{"choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}"}},"finish_reason":"stop","logprobs":{{"content":[{{"token":"Answer","logprob":-0.25}},{{"token":": 7","logprob":-0.5}}]}}}}],"usage":{{"prompt_tokens":9}}}}"#
                ),
            )
        } else {
            ("503 Service Unavailable", r#"{"error":{"message":"gone"}}"#.to_string())
        }
    });
}

fn eval(dir: &Path, url: &str, rollouts: &Path, json: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gristmill"))
        .current_dir(dir)
        .args(["--db", "runs.db", "eval", "spec.toml", "--policy", &format!("openai:{url}"), "--k", "2"])
        .args(["--retries", "0", "--timeout", "10", "--concurrency", "1", "--rollouts"])
        .arg(rollouts)
        .arg("--json")
        .arg(json)
        .output()
        .unwrap()
}

#[test]
fn eval_keeps_finished_rollouts_when_the_server_dies_and_resumes() {
    let dir = temp_dir("resume");
    std::fs::write(dir.join("spec.toml"), gristmill_testkit::fixture("lm-eval")).unwrap();
    // One port for both server lives: the policy URL is part of the evaluation's identity.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    // 6 tasks × 2 samples = 12 requests; the server dies after 5 (two whole tasks and one sample).
    let budget = Arc::new(AtomicUsize::new(5));
    fake_server(listener, budget.clone());
    let rollouts = dir.join("rollouts.jsonl");
    let out = eval(&dir, &url, &rollouts, &dir.join("first.json"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the first run should fail");
    assert!(stderr.contains(&url) && stderr.contains("503"), "{stderr}");
    assert!(stderr.contains("re-run the same command to resume"), "{stderr}");
    let lines: Vec<String> = std::fs::read_to_string(&rollouts).unwrap().lines().map(String::from).collect();
    assert_eq!(lines.len(), 4, "two finished tasks × 2 samples are kept");
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    for field in
        ["task", "prompt", "response", "answer", "parse", "gold", "rewards", "reward_vector", "logprobs"]
    {
        assert!(first.get(field).is_some(), "rollout line lacks {field}: {first}");
    }
    assert_eq!(first["answer"], 7);
    assert_eq!(first["logprobs"], serde_json::json!([-0.25, -0.5]));

    // The server comes back: the re-run skips the 4 finished rollouts.
    budget.store(1000, Ordering::SeqCst);
    let out = eval(&dir, &url, &rollouts, &dir.join("second.json"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("4 rollouts resumed"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&rollouts).unwrap().lines().count(), 12);
    let resumed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("second.json")).unwrap()).unwrap();
    assert_eq!(resumed["rollouts"], 12);
    assert_eq!(resumed["resumed_rollouts"], 4);

    // An uninterrupted run into a fresh file gives the same digest and metrics.
    let fresh = dir.join("fresh.jsonl");
    let out = eval(&dir, &url, &fresh, &dir.join("third.json"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let whole: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("third.json")).unwrap()).unwrap();
    assert_eq!(whole["digest"], resumed["digest"]);
    assert_eq!(whole["gold"], resumed["gold"]);
    assert_eq!(whole["pieces"], resumed["pieces"]);
    // Every sample answers 7: pass@1 is the share of tasks whose gold is 7; lenient accepts 6..=8.
    let gold = &whole["gold"];
    assert_eq!(gold["pass@1"], gold["pass@k"]);
    assert!(whole["pieces"]["lenient"]["pass@1"].as_f64().unwrap() >= gold["pass@1"].as_f64().unwrap());

    // A file from another evaluation is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_gristmill"))
        .current_dir(&dir)
        .args([
            "--db",
            "runs.db",
            "eval",
            "spec.toml",
            "--policy",
            &format!("openai:{url}"),
            "--k",
            "3",
            "--rollouts",
        ])
        .arg(&rollouts)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another evaluation"));
}

/// A dataset spec over the same endpoint: the model gets the task's chat messages (the
/// dataset's system prompt first), and its free-text answers are scored per piece. The model
/// writes "The answer is: 82", as the shipped SmolLM2 does: the strict `Answer:` match scores
/// 0 on every sample, while the math verifier (and the gold metric) read it.
#[test]
fn eval_on_a_dataset_sends_its_messages_and_scores_free_text() {
    let dir = temp_dir("dataset");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = std::fs::read_to_string(root.join("examples/word-problems.toml")).unwrap();
    let data = root.join("examples/data/word_problems.jsonl").display().to_string();
    std::fs::write(dir.join("spec.toml"), spec.replace("examples/data/word_problems.jsonl", &data)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    fake_server_saying(listener, Arc::new(AtomicUsize::new(10_000)), "5 + 7 = 12. The answer is: 82");
    let rollouts = dir.join("rollouts.jsonl");
    let out = eval(&dir, &url, &rollouts, &dir.join("summary.json"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&rollouts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 24 * 2);
    let mut right = 0;
    for line in &lines {
        assert_eq!(line["family"], "dataset");
        assert_eq!(line["messages"][0]["role"], "system", "{line}");
        assert!(line["messages"][0]["content"].as_str().unwrap().starts_with("Solve the problem."));
        assert_eq!(line["messages"][1]["role"], "user");
        assert_eq!(line["rewards"]["strict"], 0.0, "{line}");
        assert_eq!(line["rewards"]["math"], line["gold"], "{line}");
        right += usize::from(line["gold"] == 1.0);
    }
    // The word problem whose answer is 82 (wp000) is in the suite or not; either way the
    // summary's pass@1 is the share of samples that are right.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let pass1 = summary["gold"]["pass@1"].as_f64().unwrap();
    assert!((pass1 - right as f64 / lines.len() as f64).abs() < 1e-12, "{pass1} vs {right}");
    assert_eq!(summary["pieces"]["strict"]["pass@1"], 0.0);
}
