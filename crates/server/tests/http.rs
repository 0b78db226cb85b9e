//! The HTTP protocol through a real loopback socket: listings, sampling and scoring against
//! the in-process engine (bit for bit), errors, episodes, limits, shutdown, the OpenAPI
//! document, and the Python client's end-to-end test.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{error_code, read_response, test_env, write_head, TestServer};
use gristmill_core::piece::ScoreKey;
use gristmill_core::policy::Response;
use gristmill_core::rng::{derive_seed, Purpose};
use gristmill_engine::{rollout_step, sample_index, OraclePolicy};
use gristmill_server::{ErrorCode, ServerConfig, ROUTES};
use serde_json::{json, Value};

fn bits(v: &Value) -> Vec<u64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number").to_bits()).collect()
}

#[test]
fn health_and_listing() {
    let server = TestServer::default();
    let (status, health) = server.get("/health");
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["envs"], json!(["serve-test", "serve-second"]));
    assert_eq!(health["limits"]["max_batch"], 1024);
    assert_eq!(health["limits"]["body_limit_bytes"], 1 << 20);
    assert_eq!(health["limits"]["session_idle_timeout_ms"], 300_000);
    assert_eq!(health["limits"]["max_connections"], 512);
    assert_eq!(health["limits"]["header_read_timeout_ms"], 10_000);
    assert_eq!(health["limits"]["body_read_timeout_ms"], 30_000);
    assert_eq!(health["limits"]["keep_alive_timeout_ms"], 60_000);
    assert_eq!(health["limits"]["write_timeout_ms"], 30_000);
    assert_eq!(health["auth"], "none");
    assert!(health["connections"].as_u64().is_some_and(|n| n >= 1), "{health}");

    let (status, list) = server.get("/v1/envs");
    assert_eq!(status, 200);
    let envs = list["envs"].as_array().expect("envs");
    assert_eq!(envs.len(), 2);
    let env = &envs[0];
    assert_eq!(env["name"], "serve-test");
    assert_eq!(env["channels"], json!(["gold", "noisy", "digits"]));
    assert_eq!(env["channel_weights"], json!([1.0, 0.5, 0.3]));
    let piece_ids: Vec<&str> =
        env["pieces"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(piece_ids, ["gold", "noisy", "digits", "hint"]);
    assert_eq!(env["pieces"][3]["channel"], false);
    assert_eq!(env["hint_probability"], 0.5);
    assert_eq!(env["sources"][0]["family"], "addition");
    assert!(env["sources"][0]["answer_format"].as_str().unwrap().contains("Answer:"));
    assert_eq!(env["episodes"][0]["actions"], json!(["up", "down", "left", "right"]));
    assert_eq!(env["spec"]["piece"][1]["params"]["flip_rate"], 0.3);
    assert_eq!(env["spec_hash"], test_env().spec.hash());
    assert_eq!(env["eval"], json!({ "size": 32, "seed": 5, "sources": ["add", "cmp"] }));

    let (status, one) = server.get("/v1/envs/serve-second");
    assert_eq!(status, 200);
    assert_eq!(one, envs[1]);
    let (status, err) = server.get("/v1/envs/nope");
    assert_eq!((status, error_code(&err)), (404, "unknown_env"));
    assert!(err["error"]["message"].as_str().unwrap().contains("serve-test, serve-second"));
}

#[test]
fn sampled_tasks_are_the_engines_tasks() {
    let server = TestServer::default();
    let env = test_env();
    let weights = env.sampling_distribution();
    let hint_p = env.hint().map(|h| h.probability);
    assert_eq!(hint_p, Some(0.5));

    let (status, body) =
        server.post("/v1/sample", &json!({"env": "serve-test", "seed": 42, "step": 3, "count": 48}));
    assert_eq!(status, 200, "{body}");
    let tasks = body["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 48);
    let (mut hinted, mut sources) = (0, std::collections::BTreeSet::new());
    for (i, t) in tasks.iter().enumerate() {
        let task = env.training_task(&weights, hint_p, 42, 3, i as u64).expect("task");
        assert_eq!(t["task_key"], format!("t-2a-3-{i}"));
        assert_eq!(t["prompt"].as_str().unwrap(), task.observation_text(), "task {i}");
        assert_eq!(t["source"], env.spec.spec().sources[task.key.source as usize].id.as_str());
        assert_eq!(t["hinted"], task.hint.is_some());
        assert!(t.get("gold").is_none(), "gold leaked: {t}");
        hinted += task.hint.is_some() as u32;
        sources.insert(task.key.source);
    }
    // The comparison covers both sources and both hinted and plain prompts.
    assert!(hinted > 0 && hinted < 48, "hinted {hinted}");
    assert_eq!(sources.len(), 2);

    // An offset continues the same stream.
    let (_, later) = server
        .post("/v1/sample", &json!({"env": "serve-test", "seed": 42, "step": 3, "count": 2, "offset": 46}));
    assert_eq!(later["tasks"][0], tasks[46]);
    assert_eq!(later["tasks"][1], tasks[47]);

    // The gold suite, never hinted.
    let suite = env.eval_suite().expect("suite");
    let (status, eval) =
        server.post("/v1/sample", &json!({"env": "serve-test", "split": "eval", "count": 32}));
    assert_eq!(status, 200, "{eval}");
    for (i, t) in eval["tasks"].as_array().unwrap().iter().enumerate() {
        assert_eq!(t["task_key"], format!("e-{i}"));
        assert_eq!(t["prompt"].as_str().unwrap(), suite[i].body.prompt);
        assert_eq!(t["hinted"], false);
    }
    // A range past the end is cut there: the suite's last tasks, then none.
    let (status, tail) =
        server.post("/v1/sample", &json!({"env": "serve-test", "split": "eval", "count": 5, "offset": 30}));
    assert_eq!(status, 200, "{tail}");
    let keys: Vec<&str> =
        tail["tasks"].as_array().unwrap().iter().map(|t| t["task_key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["e-30", "e-31"]);
    let (status, none) =
        server.post("/v1/sample", &json!({"env": "serve-test", "split": "eval", "count": 5, "offset": 99}));
    assert_eq!((status, none["tasks"].as_array().unwrap().len()), (200, 0));
    // Training indices end at 2^64 - 1.
    let (status, last) = server
        .post("/v1/sample", &json!({"env": "serve-test", "seed": 1, "count": 3, "offset": u64::MAX - 1}));
    assert_eq!(status, 200, "{last}");
    let keys: Vec<&str> =
        last["tasks"].as_array().unwrap().iter().map(|t| t["task_key"].as_str().unwrap()).collect();
    assert_eq!(keys, [format!("t-1-0-{}", u64::MAX - 1), format!("t-1-0-{}", u64::MAX)]);
}

/// A whole in-process rollout step, replayed over HTTP: same tasks, and the same reward
/// vector for every sample, bit for bit (a noisy channel included).
#[test]
fn score_reproduces_an_engine_rollout_bit_for_bit() {
    let server = TestServer::default();
    let env = test_env();
    let (seed, step) = (9, 4);
    let batch = rollout_step(&env, &OraclePolicy { error_rate: 0.5 }, seed, step).expect("rollout");
    let g_count = batch.group_size;
    let mut items = Vec::new();
    for (b, task) in batch.tasks.iter().enumerate() {
        let source = env.sources[task.key.source as usize].as_ref();
        for g in 0..g_count {
            let j = sample_index(b, g, g_count) as usize;
            let answer = batch.answers[j].expect("the oracle always answers");
            items.push(json!({
                "task_key": format!("t-{seed:x}-{step}-{b}"),
                "response": source.render_answer(answer),
                "sample": j,
            }));
        }
    }
    assert_eq!(items.len(), 256);
    let (status, body) = server.post("/v1/score", &json!({"env": "serve-test", "items": items}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["channels"], json!(["gold", "noisy", "digits"]));
    let results = body["results"].as_array().expect("results");
    let mut noisy_disagrees = 0;
    for (j, r) in results.iter().enumerate() {
        let expected: Vec<u64> = batch.reward_vector(j).iter().map(|x| x.to_bits()).collect();
        assert_eq!(bits(&r["reward_vector"]), expected, "sample {j}");
        assert_eq!(r["rewards"]["noisy"].as_f64().unwrap().to_bits(), expected[1]);
        assert_eq!(r["parse"]["ok"], true);
        assert_eq!(r["parse"]["answer"], batch.answers[j].unwrap());
        assert!(r.get("gold").is_none());
        noisy_disagrees += (r["rewards"]["gold"] != r["rewards"]["noisy"]) as u32;
    }
    // The noisy channel really flipped some verdicts, so its keying was tested.
    assert!(noisy_disagrees > 10, "noisy disagreed {noisy_disagrees} times");
}

#[test]
fn free_text_scores_match_in_process_and_gold_only_in_eval_mode() {
    let server = TestServer::default();
    let env = test_env();
    let weights = env.sampling_distribution();
    let hint_p = env.hint().map(|h| h.probability);
    let mut items = Vec::new();
    let mut expected = Vec::new();
    for i in 0..12u64 {
        let task = env.training_task(&weights, hint_p, 77, 0, i).unwrap();
        let source = env.sources[task.key.source as usize].as_ref();
        let texts = [
            format!(
                "Let me think.\nAnswer: {}",
                source.render_answer(task.gold()).trim_start_matches("Answer: ")
            ),
            source.render_answer(task.gold()),
            "I am not sure.".to_string(),
            "Answer: banana".to_string(),
            "Answer: 123456789".to_string(),
        ];
        for (k, text) in texts.iter().enumerate() {
            let sample = i * 10 + k as u64;
            let response = Response::from_text(source, text.clone());
            let rewards = env.score(&task, &response, ScoreKey { seed: 77, step: 0, index: sample });
            expected.push((rewards, response.answer.clone(), task.gold()));
            items.push(json!({"task_key": format!("t-4d-0-{i}"), "response": text, "sample": sample}));
        }
    }
    let (status, plain) = server.post("/v1/score", &json!({"env": "serve-test", "items": items}));
    assert_eq!(status, 200, "{plain}");
    let (status, eval) =
        server.post("/v1/score", &json!({"env": "serve-test", "items": items, "eval": true}));
    assert_eq!(status, 200, "{eval}");
    let mut reasons = std::collections::BTreeSet::new();
    for (j, (rewards, answer, gold)) in expected.iter().enumerate() {
        let want: Vec<u64> = rewards.iter().map(|x| x.to_bits()).collect();
        for body in [&plain, &eval] {
            let r = &body["results"][j];
            assert_eq!(bits(&r["reward_vector"]), want, "item {j}");
            match answer {
                Ok(a) => assert_eq!(r["parse"], json!({"ok": true, "answer": a})),
                Err(e) => {
                    assert_eq!(r["parse"]["ok"], false);
                    let message = r["parse"]["message"].as_str().unwrap();
                    assert!(
                        message.starts_with("no answer") || message.starts_with("the answer"),
                        "{message}"
                    );
                    let core = serde_json::to_value(e).unwrap();
                    assert_eq!(r["parse"]["reason"], core["reason"]);
                    assert_eq!(r["parse"].get("detail"), core.get("detail"));
                    reasons.insert(core["reason"].as_str().unwrap().to_string());
                }
            }
        }
        assert!(plain["results"][j].get("gold").is_none(), "gold without eval mode");
        let g = &eval["results"][j]["gold"];
        assert_eq!(g["answer"], *gold);
        assert_eq!(g["correct"], *answer == Ok(*gold));
        if *answer == Ok(*gold) {
            // The exact verifier gives the gold answer 1.0.
            assert_eq!(eval["results"][j]["rewards"]["gold"], 1.0);
        }
    }
    assert_eq!(reasons.into_iter().collect::<Vec<_>>(), ["malformed", "missing", "out_of_space"]);

    // One inline item, and gold-suite keys (scored with ScoreKey { eval.seed, 0, sample }).
    let suite = env.eval_suite().unwrap();
    let source = env.sources[suite[3].key.source as usize].as_ref();
    let text = source.render_answer(suite[3].gold());
    let (status, one) = server.post(
        "/v1/score",
        &json!({"env": "serve-test", "task_key": "e-3", "response": text, "sample": 99, "eval": true}),
    );
    assert_eq!(status, 200, "{one}");
    let want =
        env.score(&suite[3], &Response::from_text(source, text), ScoreKey { seed: 5, step: 0, index: 99 });
    assert_eq!(
        bits(&one["results"][0]["reward_vector"]),
        want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(one["results"][0]["gold"]["correct"], true);
    assert_eq!(one["results"][0]["gold"]["text"], source.render_answer(suite[3].gold()));
}

#[test]
fn bad_requests_get_4xx_json_errors() {
    let server =
        TestServer::start(ServerConfig { body_limit_bytes: 4096, max_batch: 8, ..ServerConfig::default() });
    let ct = [("Content-Type", "application/json")];
    let cases: Vec<(u16, &str, (u16, Value))> = vec![
        (400, "malformed_json", server.post_raw("/v1/score", &ct, b"{\"env\": \"serve-test\", \"items\": [")),
        (400, "malformed_json", server.post_raw("/v1/sample", &ct, b"")),
        (
            415,
            "unsupported_media_type",
            server.post_raw("/v1/sample", &[], br#"{"env":"serve-test","seed":1,"count":1}"#),
        ),
        (
            415,
            "unsupported_media_type",
            server.post_raw(
                "/v1/sample",
                &[("Content-Type", "text/plain")],
                br#"{"env":"serve-test","seed":1,"count":1}"#,
            ),
        ),
        (422, "invalid_request", server.post("/v1/sample", &json!({"env": "serve-test", "count": 1}))),
        (
            422,
            "invalid_request",
            server.post("/v1/sample", &json!({"env": "serve-test", "seed": -1, "count": 1})),
        ),
        (
            422,
            "invalid_request",
            server.post("/v1/sample", &json!({"env": "serve-test", "seed": 1, "count": 1, "colour": 1})),
        ),
        (
            422,
            "invalid_request",
            server.post("/v1/sample", &json!({"env": "serve-test", "split": "eval", "seed": 1, "count": 1})),
        ),
        (
            422,
            "invalid_request",
            server.post("/v1/sample", &json!({"env": "serve-test", "split": "eval", "count": 2, "step": 0})),
        ),
        (
            422,
            "invalid_request",
            server.post("/v1/score", &json!({"env": "serve-test", "items": [{"task_key": "e-1"}]})),
        ),
        (
            422,
            "invalid_request",
            server.post(
                "/v1/score",
                &json!({"env": "serve-test", "items": [], "task_key": "e-1", "response": ""}),
            ),
        ),
        (404, "unknown_env", server.post("/v1/sample", &json!({"env": "nope", "seed": 1, "count": 1}))),
        (404, "unknown_env", server.post("/v1/score", &json!({"env": "nope", "items": []}))),
        (404, "unknown_env", server.post("/v1/episodes/reset", &json!({"env": "nope", "seed": 1}))),
        (
            404,
            "unknown_episode",
            server.post("/v1/episodes/reset", &json!({"env": "serve-second", "seed": 1})),
        ),
        (
            404,
            "unknown_episode",
            server.post("/v1/episodes/reset", &json!({"env": "serve-test", "episode": "x", "seed": 1})),
        ),
        (
            400,
            "bad_task_key",
            server.post(
                "/v1/score",
                &json!({"env": "serve-test", "task_key": "t-zz-1-2", "response": "Answer: 1"}),
            ),
        ),
        (
            400,
            "bad_task_key",
            server.post(
                "/v1/score",
                &json!({"env": "serve-test", "task_key": "garbage", "response": "Answer: 1"}),
            ),
        ),
        (
            404,
            "unknown_task_key",
            server.post(
                "/v1/score",
                &json!({"env": "serve-test", "task_key": "e-32", "response": "Answer: 1"}),
            ),
        ),
        (404, "unknown_session", server.get("/v1/sessions/s-999")),
        (404, "unknown_session", server.get("/v1/sessions/banana")),
        (404, "unknown_session", server.post("/v1/sessions/s-999/step", &json!({"action": "up"}))),
        (404, "unknown_session", server.delete("/v1/sessions/s-999")),
        (404, "unknown_snapshot", server.post("/v1/snapshots/snap-999/fork", &json!({"n": 1}))),
        (404, "unknown_snapshot", server.delete("/v1/snapshots/snap-999")),
        (413, "body_too_large", server.post_raw("/v1/score", &ct, &vec![b' '; 10_000])),
        (
            422,
            "batch_too_large",
            server.post("/v1/sample", &json!({"env": "serve-test", "seed": 1, "count": 9})),
        ),
        (
            422,
            "batch_too_large",
            server.post(
                "/v1/score",
                &json!({"env": "serve-test", "items": vec![json!({"task_key": "e-0", "response": "x"}); 9]}),
            ),
        ),
        (404, "not_found", server.get("/v2/nothing")),
        (405, "method_not_allowed", server.get("/v1/score")),
        (405, "method_not_allowed", server.delete("/v1/envs")),
    ];
    for (i, (status, code, (got_status, body))) in cases.iter().enumerate() {
        assert_eq!((*got_status, error_code(body)), (*status, *code), "case {i}: {body}");
    }
    // Messages name the problem.
    let msg = |i: usize| cases[i].2 .1["error"]["message"].as_str().unwrap().to_string();
    assert!(msg(4).contains("seed"), "{}", msg(4));
    assert!(msg(6).contains("colour"), "{}", msg(6));
    assert!(msg(9).contains("items[0]") && msg(9).contains("response"), "{}", msg(9));
    assert!(msg(16).contains("t-zz-1-2"), "{}", msg(16));
    assert!(msg(18).contains("32 tasks"), "{}", msg(18));
    assert!(msg(25).contains("4096"), "{}", msg(25));
    assert!(msg(26).contains("max_batch") && msg(26).contains('8'), "{}", msg(26));
    // The server is still fine.
    assert_eq!(server.get("/health").0, 200);
}

#[test]
fn episodes_reset_step_snapshot_fork_close() {
    let server = TestServer::default();
    let env = test_env();
    let family = env.spec.episode_families()[0];
    let knobs = &env.spec.episode_knobs()[0];

    let (status, s) =
        server.post("/v1/episodes/reset", &json!({"env": "serve-test", "seed": 9, "step": 2, "index": 1}));
    assert_eq!(status, 200, "{s}");
    let mut local = (family.reset)(knobs, derive_seed(9, Purpose::EPISODE.with("maze"), 2, 1));
    assert_eq!(s["observation"].as_str().unwrap(), local.observation());
    assert_eq!(s["state_digest"].as_str().unwrap(), local.state_digest());
    assert_eq!(
        (s["done"].clone(), s["steps_taken"].clone(), s["episode"].clone()),
        (json!(false), json!(0), json!("maze"))
    );
    let id = s["session"].as_str().unwrap().to_string();

    // Two steps by text (the family's rule) and one by index, mirrored in-process.
    for (req, action) in [
        (json!({"action": "I go. Action: right"}), 3),
        (json!({"action": "up"}), 0),
        (json!({"action_index": 1}), 1),
    ] {
        let (status, r) = server.post(&format!("/v1/sessions/{id}/step"), &req);
        assert_eq!(status, 200, "{r}");
        let out = local.step(action);
        assert_eq!(r["action"]["index"], action);
        assert_eq!(r["reward"].as_f64().unwrap().to_bits(), out.reward.to_bits());
        assert_eq!(r["state_digest"].as_str().unwrap(), local.state_digest());
        assert_eq!(r["total_reward"].as_f64().unwrap().to_bits(), local.total_reward().to_bits());
    }
    let (status, bad) =
        server.post(&format!("/v1/sessions/{id}/step"), &json!({"action": "Action: sideways"}));
    assert_eq!((status, error_code(&bad)), (422, "unparsable_action"), "{bad}");
    assert_eq!(bad["error"]["parse"]["reason"], "malformed");
    let (status, bad) = server.post(&format!("/v1/sessions/{id}/step"), &json!({"action_index": 4}));
    assert_eq!((status, error_code(&bad)), (422, "invalid_action"));
    let (status, bad) = server.post(&format!("/v1/sessions/{id}/step"), &json!({}));
    assert_eq!((status, error_code(&bad)), (422, "invalid_request"));

    // Snapshot, then fork 3: every fork starts in the snapshot's state.
    let (status, snap) = server.post_raw(&format!("/v1/sessions/{id}/snapshot"), &[], b"");
    assert_eq!(status, 200, "{snap}");
    assert_eq!(snap["state_digest"].as_str().unwrap(), local.state_digest());
    let token = snap["token"].as_str().unwrap().to_string();
    let (status, forked) = server.post(&format!("/v1/snapshots/{token}/fork"), &json!({"n": 3}));
    assert_eq!(status, 200, "{forked}");
    let forks: Vec<String> = forked["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["session"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(forks.len(), 3);
    for f in &forks {
        let (_, state) = server.get(&format!("/v1/sessions/{f}"));
        assert_eq!(state["state_digest"], snap["state_digest"]);
        assert_eq!(state["observation"], snap["observation"]);
        assert_eq!(state["steps_taken"], snap["steps_taken"]);
    }
    // The same actions on every fork give the same states; the original moves on alone.
    server.post(&format!("/v1/sessions/{id}/step"), &json!({"action": "left"}));
    let actions = ["down", "right", "right", "up"];
    let mut finals = Vec::new();
    for f in &forks {
        let mut last = Value::Null;
        for a in actions {
            let (status, r) = server.post(&format!("/v1/sessions/{f}/step"), &json!({ "action": a }));
            assert!(status == 200 || status == 409, "{r}");
            last = server.get(&format!("/v1/sessions/{f}")).1;
        }
        finals.push((last["state_digest"].clone(), last["total_reward"].clone()));
    }
    assert!(finals.windows(2).all(|w| w[0] == w[1]), "{finals:?}");
    assert_ne!(server.get(&format!("/v1/sessions/{id}")).1["state_digest"], finals[0].0);

    // Run one fork to the end with the oracle, mirrored in-process; then it takes no steps.
    let mut mirror = local.snapshot();
    for a in actions {
        if !mirror.done() {
            mirror.step(mirror.parse_action(a).unwrap());
        }
    }
    assert_eq!(finals[0].0.as_str().unwrap(), mirror.state_digest());
    while !mirror.done() {
        let a = mirror.oracle_action().expect("maze has an oracle");
        mirror.step(a);
        let (status, r) =
            server.post(&format!("/v1/sessions/{}/step", forks[0]), &json!({ "action_index": a }));
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["state_digest"].as_str().unwrap(), mirror.state_digest());
        assert_eq!(r["done"], mirror.done());
    }
    let (status, done) = server.post(&format!("/v1/sessions/{}/step", forks[0]), &json!({"action": "up"}));
    assert_eq!((status, error_code(&done)), (409, "episode_done"));

    // Close: the session and the snapshot are gone.
    assert_eq!(server.delete(&format!("/v1/sessions/{id}")), (200, json!({ "closed": id })));
    assert_eq!(error_code(&server.get(&format!("/v1/sessions/{id}")).1), "unknown_session");
    assert_eq!(server.delete(&format!("/v1/snapshots/{token}")).0, 200);
    assert_eq!(
        error_code(&server.post(&format!("/v1/snapshots/{token}/fork"), &json!({"n": 1})).1),
        "unknown_snapshot"
    );
    assert_eq!(server.state.session_counts(), (3, 0));
}

#[test]
fn session_limit_is_enforced_all_or_nothing() {
    let server = TestServer::start(ServerConfig { max_sessions: 3, max_batch: 4, ..ServerConfig::default() });
    let reset = || server.post("/v1/episodes/reset", &json!({"env": "serve-test", "seed": 1}));
    let first = reset().1["session"].as_str().unwrap().to_string();
    assert_eq!(reset().0, 200);
    let token = server.post_raw(&format!("/v1/sessions/{first}/snapshot"), &[], b"").1["token"]
        .as_str()
        .unwrap()
        .to_string();
    // 2 live + 2 forks > 3: refused whole.
    let (status, err) = server.post(&format!("/v1/snapshots/{token}/fork"), &json!({"n": 2}));
    assert_eq!((status, error_code(&err)), (429, "session_limit"), "{err}");
    assert_eq!(server.state.session_counts().0, 2);
    let (status, err) = server.post(&format!("/v1/snapshots/{token}/fork"), &json!({"n": 5}));
    assert_eq!((status, error_code(&err)), (422, "batch_too_large"));
    assert_eq!(server.post(&format!("/v1/snapshots/{token}/fork"), &json!({"n": 1})).0, 200);
    let (status, err) = reset();
    assert_eq!((status, error_code(&err)), (429, "session_limit"));
    assert!(err["error"]["message"].as_str().unwrap().contains("limit is 3"));
    server.delete(&format!("/v1/sessions/{first}"));
    assert_eq!(reset().0, 200);
}

#[test]
fn idle_sessions_and_snapshots_expire() {
    let server = TestServer::start(ServerConfig {
        session_idle_timeout: Duration::from_millis(400),
        ..ServerConfig::default()
    });
    let id = server.post("/v1/episodes/reset", &json!({"env": "serve-test", "seed": 1})).1["session"]
        .as_str()
        .unwrap()
        .to_string();
    let kept = server.post("/v1/episodes/reset", &json!({"env": "serve-test", "seed": 2})).1["session"]
        .as_str()
        .unwrap()
        .to_string();
    server.post_raw(&format!("/v1/sessions/{id}/snapshot"), &[], b"");
    assert_eq!(server.state.session_counts(), (2, 1));
    // Touch `kept` more often than the timeout; leave the others idle.
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(server.get(&format!("/v1/sessions/{kept}")).0, 200);
    }
    // The sweeper dropped the idle session and snapshot without anyone asking.
    assert_eq!(server.state.session_counts(), (1, 0));
    let (status, err) = server.get(&format!("/v1/sessions/{id}"));
    assert_eq!((status, error_code(&err)), (404, "unknown_session"));
    assert!(err["error"]["message"].as_str().unwrap().contains("expired"));
}

/// Shutdown waits for a request whose body is still arriving, answers it, then returns;
/// afterwards the port refuses connections.
#[test]
fn graceful_shutdown_finishes_in_flight_requests() {
    let mut server = TestServer::default();
    let addr = server.addr;
    let body = br#"{"env": "serve-test", "task_key": "e-0", "response": "Answer: 1"}"#;
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write_head(&mut conn, "POST", "/v1/score", &[("Content-Type", "application/json")], Some(body.len()));
    conn.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    server.trigger_stop();
    std::thread::sleep(Duration::from_millis(150));
    assert!(!server.is_finished(), "the server stopped with a request in flight");
    conn.write_all(&body[10..]).unwrap();
    let (status, reply) = read_response(&mut conn);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    assert_eq!(common::json(&reply)["results"].as_array().unwrap().len(), 1);
    server.stop().expect("serve_on returned an error");
    assert!(TcpStream::connect(addr).is_err(), "still accepting after shutdown");
}

/// A client stalled mid-request holds shutdown up for at most `shutdown_grace`.
#[test]
fn a_stalled_request_cannot_block_shutdown_past_the_grace_period() {
    let grace = Duration::from_millis(400);
    let mut server = TestServer::start(ServerConfig { shutdown_grace: grace, ..ServerConfig::default() });
    let mut conn = TcpStream::connect(server.addr).unwrap();
    write_head(&mut conn, "POST", "/v1/score", &[("Content-Type", "application/json")], Some(100));
    conn.write_all(b"{\"env\": ").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = std::time::Instant::now();
    server.trigger_stop();
    server.stop().expect("serve_on returned an error");
    let took = started.elapsed();
    assert!(took >= grace - Duration::from_millis(50), "did not wait for the in-flight request: {took:?}");
    assert!(took < grace + Duration::from_secs(3), "waited too long: {took:?}");
}

/// SIGTERM (through `shutdown_signal`) stops a server in this very process.
#[cfg(unix)]
#[test]
fn sigterm_triggers_shutdown_signal() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let state = gristmill_server::AppState::new(ServerConfig::default(), common::envs()).unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    // Installs the handlers now, so the signal below cannot take the default action.
    let signal = runtime.block_on(async { gristmill_server::shutdown_signal() }).unwrap();
    let server = runtime.spawn(gristmill_server::serve_on(listener, state, signal));
    assert_eq!(common::http(addr, "GET", "/health", &[], None).0, 200);
    let pid = std::process::id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let done = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), server).await });
    done.expect("no shutdown within 10 s after SIGTERM").expect("server task").expect("serve_on");
}

#[test]
fn served_openapi_document_is_the_committed_one_and_covers_every_route() {
    let server = TestServer::default();
    let (status, served) = common::http(server.addr, "GET", "/openapi.json", &[], None);
    assert_eq!(status, 200);
    let committed =
        std::fs::read(common::spec_path("../../openapi.json")).expect("crates/server/openapi.json");
    assert_eq!(served, committed, "served /openapi.json differs from crates/server/openapi.json");
    let doc: Value = serde_json::from_slice(&committed).expect("openapi.json is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys().filter(|k| *k != "parameters") {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut routes: Vec<(String, String)> =
        ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    routes.sort();
    assert_eq!(documented, routes, "the document's operations are not the router's routes");

    // Every error code (and its status) is documented.
    let codes: Vec<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
        ["enum"]
        .as_array()
        .expect("error code enum")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, all);
    let described = doc["components"]["schemas"]["Error"]["description"].as_str().expect("Error description");
    for code in ErrorCode::ALL {
        let entry = format!("`{}` {}", code.as_str(), code.status().as_u16());
        assert!(described.contains(&entry), "the document does not give {entry}");
    }

    // Every route exists on the server (a 404 `not_found` or 405 would mean it does not).
    for (method, path) in ROUTES {
        let concrete =
            path.replace("{env}", "serve-test").replace("{session}", "s-0").replace("{token}", "snap-0");
        let (_, body) = common::http(
            server.addr,
            &method.to_uppercase(),
            &concrete,
            &[("Content-Type", "application/json")],
            Some(b"{}"),
        );
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            if let Some(code) = v["error"]["code"].as_str() {
                assert!(code != "not_found" && code != "method_not_allowed", "{method} {path}: {code}");
            }
        }
    }
}

#[test]
fn python_client_end_to_end() {
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| std::process::Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()));
    let python = python.expect("python3 is needed for the client's end-to-end test");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/python/test_e2e.py");
    let (eval, train, other) =
        ("e2e-eval-token-0123456789", "e2e-train-token-0123456789", "e2e-other-token-0123456789");
    let tokens =
        gristmill_server::Tokens::parse(&format!("eval {eval}\ntrain {train}\ntrain {other}\n"), "e2e")
            .unwrap();
    // Without authentication, then with tokens (and the ownership and role checks).
    for (auth, args) in [
        (None, vec![]),
        (Some(tokens), vec!["--token", eval, "--train-token", train, "--other-token", other]),
    ] {
        let with_tokens = auth.is_some();
        let server = TestServer::start(ServerConfig { auth, ..ServerConfig::default() });
        let out = std::process::Command::new(python)
            .arg(&script)
            .arg("--url")
            .arg(server.url())
            .args(&args)
            .env_remove("GRISTMILL_TOKEN")
            .output()
            .expect("run test_e2e.py");
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "test_e2e.py failed (tokens: {with_tokens}):\n{text}");
        assert!(text.contains("all checks passed"), "{text}");
    }
}

/// The example server binary (`serve_blocking`): SIGTERM stops it cleanly (exit 0).
#[cfg(unix)]
#[test]
fn sigterm_stops_the_server_gracefully() {
    let Some(examples) = common::serve_example() else { return };
    let mut child = std::process::Command::new(&examples)
        .args(["--addr", "127.0.0.1:0", "--threads", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the example server");
    let (addr, mut stderr) = common::announced_addr(&mut child);
    let (status, _) = common::http(addr, "GET", "/health", &[], None);
    assert_eq!(status, 200);
    let killed =
        std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "server did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("shut down"), "{rest}");
}
