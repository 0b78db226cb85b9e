//! Bearer tokens: who may call, who may see gold answers, and who owns which session and
//! snapshot; unguessable ids; the token sources of the `serve` example.

mod common;

use std::collections::HashSet;

use common::{error_code, http, TestServer};
use gristmill_server::{ServerConfig, Tokens};
use serde_json::{json, Value};

const TRAIN: &str = "train-token-aaaaaaaaaaaaaaaa";
const OTHER: &str = "train-token-bbbbbbbbbbbbbbbb";
const EVAL: &str = "eval-token-cccccccccccccccccc";

fn tokens() -> Tokens {
    Tokens::parse(&format!("# test tokens\ntrain {TRAIN}\ntrain {OTHER}\neval {EVAL}\n"), "test").unwrap()
}

fn server() -> TestServer {
    TestServer::start(ServerConfig { auth: Some(tokens()), ..ServerConfig::default() })
}

/// One request with an optional bearer token; the status, the JSON body, and the
/// `WWW-Authenticate` header.
fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    if bytes.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let (status, reply) = http(server.addr, method, path, &headers, bytes.as_deref());
    (status, common::json(&reply))
}

fn reset(server: &TestServer, token: &str) -> String {
    let (status, s) = call(
        server,
        "POST",
        "/v1/episodes/reset",
        Some(token),
        Some(&json!({"env": "serve-test", "seed": 3})),
    );
    assert_eq!(status, 200, "{s}");
    s["session"].as_str().unwrap().to_string()
}

#[test]
fn every_v1_route_needs_a_valid_token_and_health_and_the_document_do_not() {
    let server = server();
    let (status, health) = server.get("/health");
    assert_eq!((status, &health["auth"]), (200, &json!("bearer")));
    let (status, doc) = server.get("/openapi.json");
    assert_eq!(status, 200);
    // The served document requires the token (the committed one leaves it optional).
    assert_eq!(doc["security"], json!([{ "bearer": [] }]));
    assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([]));

    let session = reset(&server, TRAIN);
    let sample = json!({"env": "serve-test", "seed": 1, "count": 1});
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/envs".into(), None),
        ("GET", "/v1/envs/serve-test".into(), None),
        ("POST", "/v1/sample".into(), Some(sample.clone())),
        ("POST", "/v1/score".into(), Some(json!({"env": "serve-test", "items": []}))),
        ("POST", "/v1/episodes/reset".into(), Some(json!({"env": "serve-test", "seed": 1}))),
        ("GET", format!("/v1/sessions/{session}"), None),
        ("POST", format!("/v1/sessions/{session}/step"), Some(json!({"action": "up"}))),
        ("POST", format!("/v1/sessions/{session}/snapshot"), None),
        ("DELETE", format!("/v1/sessions/{session}"), None),
        ("DELETE", "/v1/snapshots/snap-00000000000000000000000000000000".into(), None),
        ("POST", "/v1/snapshots/snap-00000000000000000000000000000000/fork".into(), Some(json!({"n": 1}))),
    ];
    for (method, path, body) in &routes {
        for token in [None, Some("not-a-token-at-all-xxxxxxxx"), Some("")] {
            let (status, err) = call(&server, method, path, token, body.as_ref());
            assert_eq!(
                (status, error_code(&err)),
                (401, "unauthorized"),
                "{method} {path} with {token:?}: {err}"
            );
        }
    }
    // Another scheme, or no space, is not a bearer token.
    for header in [format!("Basic {TRAIN}"), format!("Bearer{TRAIN}"), TRAIN.to_string()] {
        let (status, reply) = http(server.addr, "GET", "/v1/envs", &[("Authorization", &header)], None);
        assert_eq!(status, 401, "{header}: {}", String::from_utf8_lossy(&reply));
    }
    // The 401 names the scheme, as RFC 6750 asks.
    let mut conn = std::net::TcpStream::connect(server.addr).unwrap();
    common::write_head(&mut conn, "GET", "/v1/envs", &[], None);
    let mut raw = String::new();
    std::io::Read::read_to_string(&mut conn, &mut raw).unwrap();
    assert!(raw.to_ascii_lowercase().contains("www-authenticate: bearer realm=\"gristmill\""), "{raw}");
    // With a token, the same calls go through (the session is still the token's).
    assert_eq!(call(&server, "GET", "/v1/envs", Some(TRAIN), None).0, 200);
    assert_eq!(call(&server, "POST", "/v1/sample", Some(OTHER), Some(&sample)).0, 200);
    assert_eq!(call(&server, "GET", &format!("/v1/sessions/{session}"), Some(TRAIN), None).0, 200);
}

#[test]
fn gold_answers_need_an_eval_token() {
    let server = server();
    let body =
        |eval: bool| json!({"env": "serve-test", "task_key": "e-0", "response": "Answer: 1", "eval": eval});
    let (status, err) = call(&server, "POST", "/v1/score", Some(TRAIN), Some(&body(true)));
    assert_eq!((status, error_code(&err)), (403, "forbidden"), "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("eval"), "{err}");
    let (status, plain) = call(&server, "POST", "/v1/score", Some(TRAIN), Some(&body(false)));
    assert_eq!(status, 200, "{plain}");
    assert!(plain["results"][0].get("gold").is_none());
    let (status, gold) = call(&server, "POST", "/v1/score", Some(EVAL), Some(&body(true)));
    assert_eq!(status, 200, "{gold}");
    assert!(gold["results"][0]["gold"]["answer"].is_i64(), "{gold}");
    // The rewards do not depend on who asks.
    assert_eq!(gold["results"][0]["reward_vector"], plain["results"][0]["reward_vector"]);
    // Gold-suite prompts are not secret; their answers are.
    let (status, suite) = call(
        &server,
        "POST",
        "/v1/sample",
        Some(TRAIN),
        Some(&json!({"env": "serve-test", "split": "eval", "count": 2})),
    );
    assert_eq!(status, 200, "{suite}");
    assert!(suite["tasks"][0].get("gold").is_none());
}

/// Another token's sessions and snapshots do not exist for it: 404, exactly as for an id
/// that never existed, for every operation, and they are left untouched.
#[test]
fn sessions_and_snapshots_belong_to_their_token() {
    let server = server();
    let mine = reset(&server, TRAIN);
    let (_, stepped) = call(
        &server,
        "POST",
        &format!("/v1/sessions/{mine}/step"),
        Some(TRAIN),
        Some(&json!({"action": "right"})),
    );
    let (status, snap) = call(&server, "POST", &format!("/v1/sessions/{mine}/snapshot"), Some(TRAIN), None);
    assert_eq!(status, 200, "{snap}");
    let token = snap["token"].as_str().unwrap().to_string();

    let never = "s-0123456789abcdef0123456789abcdef";
    let (_, unknown) = call(&server, "GET", &format!("/v1/sessions/{never}"), Some(OTHER), None);
    for thief in [OTHER, EVAL] {
        for (method, path, body) in [
            ("GET", format!("/v1/sessions/{mine}"), None),
            ("POST", format!("/v1/sessions/{mine}/step"), Some(json!({"action": "up"}))),
            ("POST", format!("/v1/sessions/{mine}/snapshot"), None),
            ("DELETE", format!("/v1/sessions/{mine}"), None),
        ] {
            let (status, err) = call(&server, method, &path, Some(thief), body.as_ref());
            assert_eq!((status, error_code(&err)), (404, "unknown_session"), "{method} {path}: {err}");
            // Indistinguishable from an id that never existed, but for the id itself.
            let message = err["error"]["message"].as_str().unwrap().replace(&mine, never);
            assert_eq!(message, unknown["error"]["message"].as_str().unwrap());
        }
        for (method, path, body) in [
            ("POST", format!("/v1/snapshots/{token}/fork"), Some(json!({"n": 2}))),
            ("DELETE", format!("/v1/snapshots/{token}"), None),
        ] {
            let (status, err) = call(&server, method, &path, Some(thief), body.as_ref());
            assert_eq!((status, error_code(&err)), (404, "unknown_snapshot"), "{method} {path}: {err}");
        }
    }
    // Untouched: same state, snapshot still there.
    let (status, now) = call(&server, "GET", &format!("/v1/sessions/{mine}"), Some(TRAIN), None);
    assert_eq!(status, 200);
    assert_eq!(now["state_digest"], stepped["state_digest"]);
    assert_eq!(now["steps_taken"], 1);
    // Forks belong to the snapshot's owner.
    let (status, forked) =
        call(&server, "POST", &format!("/v1/snapshots/{token}/fork"), Some(TRAIN), Some(&json!({"n": 2})));
    assert_eq!(status, 200, "{forked}");
    for f in forked["sessions"].as_array().unwrap() {
        let id = f["session"].as_str().unwrap();
        assert_eq!(call(&server, "GET", &format!("/v1/sessions/{id}"), Some(TRAIN), None).0, 200);
        assert_eq!(call(&server, "GET", &format!("/v1/sessions/{id}"), Some(OTHER), None).0, 404);
    }
    assert_eq!(call(&server, "DELETE", &format!("/v1/sessions/{mine}"), Some(TRAIN), None).0, 200);
    assert_eq!(call(&server, "DELETE", &format!("/v1/snapshots/{token}"), Some(TRAIN), None).0, 200);
}

/// Session and snapshot ids are 128 random bits: one format, no order, no shared prefix.
#[test]
fn ids_are_unguessable() {
    let server = server();
    let first = reset(&server, TRAIN);
    let (_, snap) = call(&server, "POST", &format!("/v1/sessions/{first}/snapshot"), Some(TRAIN), None);
    let token = snap["token"].as_str().unwrap();
    let (_, forked) =
        call(&server, "POST", &format!("/v1/snapshots/{token}/fork"), Some(TRAIN), Some(&json!({"n": 200})));
    let mut ids: Vec<String> = forked["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session"].as_str().unwrap().to_string())
        .collect();
    ids.push(first);
    let is_hex32 =
        |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    assert!(token.strip_prefix("snap-").is_some_and(is_hex32), "{token}");
    for id in &ids {
        assert!(id.strip_prefix("s-").is_some_and(is_hex32), "{id}");
    }
    // 201 ids: all distinct, and even their first 8 hex digits (32 bits) are.
    let prefixes: HashSet<&str> = ids.iter().map(|id| &id[2..10]).collect();
    assert_eq!(prefixes.len(), ids.len());
    // Every hex digit shows up in every position somewhere: no counter underneath.
    for pos in 2..34 {
        let digits: HashSet<u8> = ids.iter().map(|id| id.as_bytes()[pos]).collect();
        assert!(digits.len() >= 10, "position {pos} takes only {} values", digits.len());
    }
}

/// The example server takes tokens from `--tokens FILE` or from `GRISTMILL_TOKENS`, and
/// refuses a bad token list at start with the line named.
#[cfg(unix)]
#[test]
fn the_serve_example_reads_tokens_from_a_file_or_the_environment() {
    use std::io::{BufRead, BufReader};
    let Some(example) = common::serve_example() else { return };
    let dir = std::env::temp_dir().join(format!("gristmill-auth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens.txt");
    std::fs::write(&file, format!("train {TRAIN}\neval {EVAL}\n")).unwrap();
    let bad = dir.join("bad.txt");
    std::fs::write(&bad, format!("train {TRAIN}\nroot {OTHER}\n")).unwrap();

    let start = |args: &[&str], env: Option<&str>| {
        let mut cmd = std::process::Command::new(&example);
        cmd.args(["--addr", "127.0.0.1:0", "--threads", "1"]).args(args).stderr(std::process::Stdio::piped());
        cmd.env_remove("GRISTMILL_TOKENS");
        if let Some(v) = env {
            cmd.env("GRISTMILL_TOKENS", v);
        }
        cmd.spawn().expect("start the example server")
    };
    let file_arg = file.to_str().unwrap();
    let env_value = format!("train {OTHER},eval {EVAL}");
    for (args, env, token) in [
        (vec!["--tokens", file_arg], None, TRAIN),
        (vec![], Some(env_value.as_str()), OTHER),
        // The file wins over the environment.
        (vec!["--tokens", file_arg], Some(env_value.as_str()), TRAIN),
    ] {
        let mut child = start(&args, env);
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(line.contains("bearer tokens"), "{line}");
        let addr: std::net::SocketAddr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap();
        assert_eq!(http(addr, "GET", "/v1/envs", &[], None).0, 401);
        let auth = format!("Bearer {token}");
        assert_eq!(
            http(addr, "GET", "/v1/envs", &[("Authorization", &auth)], None).0,
            200,
            "{args:?} {env:?}"
        );
        std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(child.wait().unwrap().success());
    }
    let out = std::process::Command::new(&example)
        .args(["--addr", "127.0.0.1:0", "--tokens", bad.to_str().unwrap()])
        .env_remove("GRISTMILL_TOKENS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.txt:2: unknown role `root`"), "{err}");
    assert!(!err.contains(TRAIN) && !err.contains(OTHER), "a token leaked into an error: {err}");
    std::fs::remove_dir_all(&dir).ok();
}
