//! The rubric judge end to end against a scripted grader: verdicts are cached in the run
//! store, so a replay and a re-run ask nothing, an offline replay needs no grader at all, and a
//! failing grader (5xx, timeouts, unparseable verdicts) is a clear error naming the piece, the
//! task and the item, with the run marked failed and nothing half-written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gristmill_testkit::failed_saying;
use gristmill_testkit::http::{chat_completion, ScriptedServer};

fn temp_dir(name: &str) -> PathBuf {
    gristmill_testkit::scratch_dir(&format!("judge-{name}"))
}

/// The writing example with its data path made absolute and its grader at `url`.
fn writing_spec(dir: &Path, url: &str, extra: &str) -> PathBuf {
    let root = gristmill_testkit::root();
    let spec = gristmill_testkit::example("writing.toml")
        .replace(
            "examples/data/writing.jsonl",
            &root.join("examples/data/writing.jsonl").display().to_string(),
        )
        .replace("http://127.0.0.1:8089/v1", url)
        .replace(
            "retry = { retries = 2, backoff_ms = 200 }",
            &format!("retry = {{ retries = 2, backoff_ms = 10 }}{extra}"),
        );
    let path = dir.join("writing.toml");
    std::fs::write(&path, spec).unwrap();
    path
}

fn gristmill(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gristmill"))
        .current_dir(dir)
        .args(["--db", "runs.db"])
        .args(args)
        .output()
        .unwrap()
}

fn digest(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("digest "))
        .unwrap_or_else(|| panic!("no digest in {stdout}"))
        .to_string()
}

/// A grader that refuses the oracle's non-answer and accepts everything else.
fn grader() -> ScriptedServer {
    ScriptedServer::start(|body| {
        let verdict = if body.contains("I do not know") { "No.\nVERDICT: no" } else { "Fine.\nVERDICT: yes" };
        ("200 OK", chat_completion(verdict))
    })
}

#[test]
fn verdicts_are_cached_in_the_store_replayed_offline_and_never_asked_twice() {
    let dir = temp_dir("cache");
    let server = grader();
    let spec = writing_spec(&dir, &server.url, "");
    let out = gristmill(&dir, &["run", spec.to_str().unwrap()]);
    let first = digest(&out);
    let rubric_row = |out: &Output| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains("rubric"))
            .unwrap_or_default()
            .to_string()
    };
    let first_row = rubric_row(&out);
    assert!(first_row.contains("judge"), "{first_row}");
    let asked = server.requests();
    // 2 steps × 4 tasks × 2 responses × 2 items, less what repeats (the same response to the
    // same prompt is the same verdict key).
    assert!(asked > 0 && asked <= 32, "{asked} requests");

    // A replay and a re-run of the same command ask nothing and give the same bits.
    let replay = gristmill(&dir, &["replay", "1"]);
    assert!(
        String::from_utf8_lossy(&replay.stdout).contains("identical"),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert_eq!(digest(&gristmill(&dir, &["run", spec.to_str().unwrap()])), first);
    assert_eq!(server.requests(), asked, "the cache answered everything");

    // Offline, with the grader's URL pointing nowhere: every verdict comes from the store.
    // (Another spec text, so another digest; the judge's rewards are the same numbers.)
    let offline = writing_spec(&dir, "http://127.0.0.1:9/v1", "\nmode = \"offline\"");
    let out = gristmill(&dir, &["run", offline.to_str().unwrap()]);
    digest(&out);
    assert_eq!(rubric_row(&out), first_row);

    // The verdicts are rows of the store's content cache, one per asked key.
    let store = gristmill_store::Store::open(dir.join("runs.db")).unwrap();
    assert_eq!(store.cached_count("judge-verdict").unwrap(), asked as u64);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_offline_judge_with_a_cold_cache_names_the_item_and_the_task() {
    let dir = temp_dir("cold");
    let spec = writing_spec(&dir, "http://127.0.0.1:9/v1", "\nmode = \"offline\"");
    let out = gristmill(&dir, &["run", spec.to_str().unwrap()]);
    failed_saying(&out, &["channel `rubric`", "judge `rubric`", "task `t", "on_task", "offline"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_failing_grader_is_retried_then_a_clear_error_and_the_run_is_marked_failed() {
    for (what, status, content, expect) in [
        ("5xx", "503 Service Unavailable", None, "503"),
        ("unparseable", "200 OK", Some("It reads well, I suppose."), "unparseable verdict"),
    ] {
        let dir = temp_dir(what);
        let server = ScriptedServer::start(move |_| {
            (status, content.map_or_else(|| "{}".to_string(), chat_completion))
        });
        let spec = writing_spec(&dir, &server.url, "");
        let out = gristmill(&dir, &["run", spec.to_str().unwrap()]);
        failed_saying(&out, &["judge `rubric`", "task `t", expect]);
        assert_eq!(out.status.code(), Some(1), "{what}");
        // Retried: more requests than the one that first failed.
        assert!(server.requests() >= 2, "{what}: {} requests", server.requests());
        let runs = String::from_utf8_lossy(&gristmill(&dir, &["runs"]).stdout).into_owned();
        assert!(runs.contains("failed"), "{what}: {runs}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_grader_that_times_out_is_an_error_naming_the_timeout() {
    let dir = temp_dir("timeout");
    let server = ScriptedServer::start(|_| {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        ("200 OK", chat_completion("VERDICT: yes"))
    });
    let spec = writing_spec(&dir, &server.url, "");
    let text = std::fs::read_to_string(&spec).unwrap().replace("timeout_ms = 60000", "timeout_ms = 200");
    std::fs::write(&spec, text).unwrap();
    let start = std::time::Instant::now();
    let out = gristmill(&dir, &["run", spec.to_str().unwrap()]);
    let err = failed_saying(&out, &["judge `rubric`"]);
    assert!(err.to_lowercase().contains("tim"), "{err}");
    // Three attempts of 0.2 s and short backoffs, not the grader's 1.5 s each.
    assert!(start.elapsed().as_secs_f64() < 30.0, "{:?}", start.elapsed());
    let _ = std::fs::remove_dir_all(dir);
}

/// A training run whose grader goes down mid-way stops with a checkpoint (not failed); once
/// the grader answers again, `resume` finishes it to the digest of a run that never saw the
/// outage, asking only for verdicts not already in the store.
#[test]
fn a_training_run_stopped_by_a_grader_outage_resumes_to_the_same_bits() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let spec = "name = \"judged\"\n[run]\nseed = 4\nsteps = 6\ntasks_per_step = 2\nresponses_per_task = 2\n\
        [policy]\nkind = \"loglinear\"\nparams = { checkpoint_every = 1, credit_nodes = 0 }\n\
        [[source]]\nid = \"count\"\nfamily = \"counting\"\n\
        [[piece]]\nid = \"gold\"\nkind = \"exact_verifier\"\n\
        [[piece]]\nid = \"rubric\"\nkind = \"judge\"\nweight = 0.5\n[piece.params]\n\
        endpoint = { url = \"URL\", model = \"grader\", timeout_ms = 5000 }\n\
        items = [{ id = \"small\", question = \"Is the answer below 4?\" }]\n\
        retry = { retries = 1, backoff_ms = 5 }\n\
        [eval]\nsize = 16\n";
    // Deterministic verdicts: a function of the request alone.
    let verdict = |body: &str| {
        let small = ["Answer: 0", "Answer: 1", "Answer: 2", "Answer: 3"].iter().any(|a| body.contains(a));
        chat_completion(if small { "VERDICT: yes" } else { "VERDICT: no" })
    };
    // One grader for every run (the URL is part of the spec, so of the digest), healthy
    // while `budget` lasts.
    let budget = Arc::new(AtomicUsize::new(usize::MAX));
    let left = budget.clone();
    let flaky = ScriptedServer::start(move |body| {
        if left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1)).is_ok() {
            ("200 OK", verdict(body))
        } else {
            ("503 Service Unavailable", "{}".to_string())
        }
    });
    let clean = temp_dir("outage-clean");
    std::fs::write(clean.join("spec.toml"), spec.replace("URL", &flaky.url)).unwrap();
    let expected = digest(&gristmill(&clean, &["run", "spec.toml"]));
    let all = flaky.requests();

    let dir = temp_dir("outage");
    budget.store(all / 2, Ordering::SeqCst);
    std::fs::write(dir.join("spec.toml"), spec.replace("URL", &flaky.url)).unwrap();
    let out = gristmill(&dir, &["run", "spec.toml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the outage stops the run");
    assert!(
        err.contains("judge `rubric`") && err.contains("503") && err.contains("gristmill resume 1"),
        "{err}"
    );
    let runs = String::from_utf8_lossy(&gristmill(&dir, &["runs"]).stdout).into_owned();
    assert!(runs.contains("stopped"), "{runs}");

    budget.store(usize::MAX, Ordering::SeqCst);
    let before = flaky.requests();
    assert_eq!(digest(&gristmill(&dir, &["resume", "1"])), expected);
    // The resumed half asked for what the first half had not stored (plus the failed asks).
    assert!(flaky.requests() - before <= all, "{} > {all}", flaky.requests() - before);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(clean);
}

/// `eval` with a model and a grader behind one scripted endpoint: every rollout line carries
/// the judge's items as sub-rewards, whose weighted mean is the judge's channel.
#[test]
fn eval_rollouts_carry_each_rubric_item_as_a_sub_reward() {
    let dir = temp_dir("eval");
    let server = ScriptedServer::start(|body| {
        let reply = if body.contains("VERDICT") {
            // The grader: on task yes, concise no.
            if body.contains("three sentences") {
                "VERDICT: no"
            } else {
                "VERDICT: yes"
            }
        } else {
            "Thank you for the kind help; it meant a lot."
        };
        ("200 OK", chat_completion(reply))
    });
    let spec = writing_spec(&dir, &server.url, "");
    let policy = format!("openai:{}", server.url);
    let args = ["eval", spec.to_str().unwrap(), "--policy", &policy, "--k", "1", "--retries", "0"];
    let out = gristmill(&dir, &[&args[..], &["--rollouts", "rollouts.jsonl"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(dir.join("rollouts.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    for line in &lines {
        assert_eq!(
            line["sub_rewards"]["rubric"],
            serde_json::json!({"on_task": 1.0, "concise": 0.0}),
            "{line}"
        );
        // Weights 2 and 1: the channel is (2·1 + 1·0) / 3.
        assert!((line["rewards"]["rubric"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-15, "{line}");
        assert!(line["gold_answer"].is_null(), "open-ended tasks have no gold: {line}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The rubric judge against the in-process model that `gristmill serve-policy` serves
/// (SmolLM2-135M, greedy), end to end over its OpenAI-compatible API. A 135M model is a weak
/// grader: it echoes the rubric's fenced response instead of ending with a verdict line, so
/// the judge's strict parser refuses the answer and the run stops with an error naming the
/// piece, the task and the rubric item (the model is greedy, so this outcome is fixed).
#[test]
fn the_in_process_model_behind_serve_policy_is_a_grader() {
    let Some(path) = gristmill_lm::model_for_tests() else { return };
    // f32 matmuls: ~10× faster prompt processing than the quantized kernels (crates/lm doc).
    // Set before the load, in this test only; no other test of this binary loads a model.
    std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1");
    let model = std::sync::Arc::new(gristmill_lm::LocalModel::load(&path).unwrap());
    let config = gristmill_lm::ServeConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        model_name: "default".into(),
        concurrency: 2,
    };
    let server = gristmill_lm::spawn_server(model, config).unwrap();
    let dir = temp_dir("serve-policy");
    let spec = writing_spec(&dir, &format!("http://{}/v1", server.addr()), "");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("steps = 2", "steps = 1")
        .replace("tasks_per_step = 4", "tasks_per_step = 1")
        .replace("retries = 2", "retries = 0")
        .replace("max_tokens = 64", "max_tokens = 12");
    std::fs::write(&spec, text).unwrap();
    let out = gristmill(&dir, &["run", "writing.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for needle in ["judge `rubric`", "task `t", "items[0] (`on_task`)", "unparseable verdict", "attempts)"] {
        assert!(stderr.contains(needle), "`{needle}` missing from: {stderr}");
    }
}
