//! The wire contract where the OpenAPI document and the server used to disagree (numbers,
//! nulls, request shapes, syntax errors, path ids, batch maximums), one spelling per id,
//! and clipped echoes.

mod common;

use common::{error_code, http, TestServer};
use gristmill_server::{ServerConfig, ECHO_MAX_CHARS, MESSAGE_MAX_CHARS, OPENAPI_JSON};
use serde_json::{json, Value};

fn doc() -> Value {
    serde_json::from_str(OPENAPI_JSON).expect("openapi.json")
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

fn new_session(server: &TestServer) -> String {
    let (status, s) = server.post("/v1/episodes/reset", &json!({"env": "serve-test", "seed": 1}));
    assert_eq!(status, 200, "{s}");
    s["session"].as_str().unwrap().to_string()
}

/// Integer fields take whole-number floats (JSON Schema's `integer`) and give exactly what
/// the integer spelling gives; fractions, negatives and values past 2^64 - 1 are refused.
#[test]
fn whole_number_floats_are_integers() {
    let server = TestServer::default();
    let ints = server
        .post("/v1/sample", &json!({"env": "serve-test", "seed": 17808, "step": 2, "count": 3, "offset": 1}));
    let floats = server.post(
        "/v1/sample",
        &serde_json::from_str::<Value>(
            r#"{"env": "serve-test", "seed": 17808.0, "step": 2e0, "count": 3.0, "offset": 0.1e1}"#,
        )
        .unwrap(),
    );
    assert_eq!(ints.0, 200, "{}", ints.1);
    assert_eq!(floats, ints);

    let item = |sample: Value| json!({"env": "serve-test", "task_key": "e-1", "response": "Answer: 3", "sample": sample});
    assert_eq!(server.post("/v1/score", &item(json!(4.0))), server.post("/v1/score", &item(json!(4))));

    let reset = |body: &str| server.post("/v1/episodes/reset", &serde_json::from_str::<Value>(body).unwrap());
    let (a, b) = (
        reset(r#"{"env": "serve-test", "seed": 9, "step": 2, "index": 1}"#),
        reset(r#"{"env": "serve-test", "seed": 9.0, "step": 2.0, "index": 1.0}"#),
    );
    assert_eq!((a.0, b.0), (200, 200));
    assert_eq!(a.1["state_digest"], b.1["state_digest"]);
    let id = b.1["session"].as_str().unwrap();
    let (status, stepped) = server.post(&format!("/v1/sessions/{id}/step"), &json!({"action_index": 1.0}));
    assert_eq!((status, &stepped["action"]["index"]), (200, &json!(1)), "{stepped}");
    let token = server.post_raw(&format!("/v1/sessions/{id}/snapshot"), &[], b"").1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, forked) = server.post(&format!("/v1/snapshots/{token}/fork"), &json!({"n": 2.0}));
    assert_eq!((status, forked["sessions"].as_array().map(Vec::len)), (200, Some(2)), "{forked}");

    for bad in ["1.5", "-1", "-1.0", "18446744073709551616", "1e20", "\"7\"", "true"] {
        let body: Value =
            serde_json::from_str(&format!(r#"{{"env": "serve-test", "seed": {bad}, "count": 1}}"#)).unwrap();
        let (status, err) = server.post("/v1/sample", &body);
        assert_eq!((status, error_code(&err)), (422, "invalid_request"), "seed {bad}: {err}");
        assert!(err["error"]["message"].as_str().unwrap().contains("seed"), "{err}");
    }
    // The largest seed, in integer spelling, is a seed like any other.
    let (status, max) =
        server.post("/v1/sample", &json!({"env": "serve-test", "seed": u64::MAX, "count": 1}));
    assert_eq!(status, 200, "{max}");
    assert_eq!(max["tasks"][0]["task_key"], "t-ffffffffffffffff-0-0");
    // The document says so too: every u64 field has its maximum.
    assert_eq!(schema(&doc(), "SampleTrainRequest")["properties"]["seed"]["maximum"], json!(u64::MAX));
}

/// An optional field is absent or of its type; `null` is not absent.
#[test]
fn null_is_refused_where_a_value_is_optional() {
    let server = TestServer::default();
    let id = new_session(&server);
    let cases = [
        ("/v1/sample".to_string(), json!({"env": "serve-test", "seed": 1, "count": 1, "step": null})),
        ("/v1/sample".to_string(), json!({"env": "serve-test", "split": "eval", "count": 1, "seed": null})),
        ("/v1/sample".to_string(), json!({"env": "serve-test", "seed": 1, "count": 1, "split": null})),
        (
            "/v1/score".to_string(),
            json!({"env": "serve-test", "task_key": "e-0", "response": "x", "sample": null}),
        ),
        (
            "/v1/score".to_string(),
            json!({"env": "serve-test", "items": null, "task_key": "e-0", "response": "x"}),
        ),
        (
            "/v1/score".to_string(),
            json!({"env": "serve-test", "items": [{"task_key": "e-0", "response": null}]}),
        ),
        (
            "/v1/score".to_string(),
            json!({"env": "serve-test", "task_key": "e-0", "response": "x", "eval": null}),
        ),
        ("/v1/episodes/reset".to_string(), json!({"env": "serve-test", "seed": 1, "episode": null})),
        (format!("/v1/sessions/{id}/step"), json!({"action": null, "action_index": 1})),
        (format!("/v1/sessions/{id}/step"), json!({"action": "up", "action_index": null})),
    ];
    for (path, body) in cases {
        let (status, err) = server.post(&path, &body);
        assert_eq!((status, error_code(&err)), (422, "invalid_request"), "{path} {body}: {err}");
        assert!(err["error"]["message"].as_str().unwrap().contains("null"), "{err}");
    }
    // Nothing was stepped.
    assert_eq!(server.get(&format!("/v1/sessions/{id}")).1["steps_taken"], 0);
}

/// The request shapes are `oneOf` in the document, and the server takes exactly those.
#[test]
fn request_shapes_are_the_documents_one_of() {
    let doc = doc();
    let refs = |name: &str| -> Vec<String> {
        schema(&doc, name)["oneOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is not a oneOf"))
            .iter()
            .map(|r| r["$ref"].as_str().map(String::from).unwrap_or_else(|| r["required"].to_string()))
            .collect()
    };
    assert_eq!(
        refs("SampleRequest"),
        ["#/components/schemas/SampleTrainRequest", "#/components/schemas/SampleEvalRequest"]
    );
    assert_eq!(
        refs("ScoreRequest"),
        ["#/components/schemas/ScoreBatchRequest", "#/components/schemas/ScoreOneRequest"]
    );
    assert_eq!(refs("StepRequest"), [r#"["action"]"#, r#"["action_index"]"#]);
    assert_eq!(schema(&doc, "SampleTrainRequest")["required"], json!(["env", "seed", "count"]));
    assert_eq!(schema(&doc, "SampleEvalRequest")["required"], json!(["env", "count", "split"]));
    assert_eq!(schema(&doc, "ScoreBatchRequest")["required"], json!(["env", "items"]));
    assert_eq!(schema(&doc, "ScoreOneRequest")["required"], json!(["env", "task_key", "response"]));

    let server = TestServer::default();
    let id = new_session(&server);
    // Each of these matches none of its shapes.
    for (path, body) in [
        ("/v1/sample", json!({"env": "serve-test", "count": 1})),
        ("/v1/sample", json!({"env": "serve-test", "split": "eval", "count": 1, "step": 0})),
        ("/v1/score", json!({"env": "serve-test"})),
        ("/v1/score", json!({"env": "serve-test", "items": [], "task_key": "e-0", "response": "x"})),
        ("/v1/score", json!({"env": "serve-test", "items": [], "sample": 1})),
        ("/v1/score", json!({"env": "serve-test", "task_key": "e-0"})),
    ] {
        let (status, err) = server.post(path, &body);
        assert_eq!((status, error_code(&err)), (422, "invalid_request"), "{body}: {err}");
    }
    for body in [json!({}), json!({"action": "up", "action_index": 0})] {
        let (status, err) = server.post(&format!("/v1/sessions/{id}/step"), &body);
        assert_eq!((status, error_code(&err)), (422, "invalid_request"), "{body}: {err}");
    }
    // And each shape works.
    assert_eq!(server.post("/v1/sample", &json!({"env": "serve-test", "seed": 1, "count": 1})).0, 200);
    assert_eq!(server.post("/v1/sample", &json!({"env": "serve-test", "split": "eval", "count": 1})).0, 200);
    assert_eq!(server.post("/v1/score", &json!({"env": "serve-test", "items": []})).0, 200);
    assert_eq!(
        server.post("/v1/score", &json!({"env": "serve-test", "task_key": "e-0", "response": "x"})).0,
        200
    );
    assert_eq!(server.post(&format!("/v1/sessions/{id}/step"), &json!({"action": "up"})).0, 200);
    assert_eq!(server.post(&format!("/v1/sessions/{id}/step"), &json!({"action_index": 1})).0, 200);
}

/// A body that is not JSON is `400 malformed_json` wherever the syntax error is, whatever
/// shape errors come before it.
#[test]
fn syntax_errors_are_400_whatever_the_field_order() {
    let server = TestServer::default();
    let ct = [("Content-Type", "application/json")];
    for body in [
        r#"{"colour": 1, "env": "#,
        r#"{"env": "serve-test", "colour": 1, "#,
        r#"{"seed": "seven", "count": 1, }"#,
        r#"{"count": 1, "seed": "seven" ]"#,
        r#"{"count": -1, "env": "serve-test", "seed": 1} trailing"#,
        r#"{"env": "serve-test", "count": 1.5, "seed": 1"#,
        "{\"env\": \"\u{1}\"}",
    ] {
        let (status, err) = server.post_raw("/v1/sample", &ct, body.as_bytes());
        assert_eq!((status, error_code(&err)), (400, "malformed_json"), "{body:?}: {err}");
    }
    for body in [&b"{\"env\": \"\xff\xfe\", \"count\": 1}"[..], b"{\"colour\": 1, \"env\": \"\xff\"}"] {
        let (status, err) = server.post_raw("/v1/sample", &ct, body);
        assert_eq!((status, error_code(&err)), (400, "malformed_json"), "invalid UTF-8 in a string: {err}");
    }
    // Well-formed JSON of the wrong shape stays 422, in any order.
    for body in [
        r#"{"colour": 1, "env": "serve-test", "seed": 1, "count": 1}"#,
        r#"{"env": "serve-test", "seed": 1, "count": 1, "colour": 1}"#,
    ] {
        let (status, err) = server.post_raw("/v1/sample", &ct, body.as_bytes());
        assert_eq!((status, error_code(&err)), (422, "invalid_request"), "{body}: {err}");
    }
}

/// A path id that does not decode names nothing: the route's 404, never an undocumented
/// 422.
#[test]
fn undecodable_path_ids_are_not_found() {
    let server = TestServer::default();
    let json = [("Content-Type", "application/json")];
    for (method, path, code) in [
        ("GET", "/v1/envs/%C3%28", "unknown_env"),
        ("GET", "/v1/sessions/%FF%FE", "unknown_session"),
        ("DELETE", "/v1/sessions/s-%FF", "unknown_session"),
        ("POST", "/v1/sessions/%FF/snapshot", "unknown_session"),
        ("POST", "/v1/sessions/%FF/step", "unknown_session"),
        ("DELETE", "/v1/snapshots/%FF", "unknown_snapshot"),
        ("POST", "/v1/snapshots/%80abc/fork", "unknown_snapshot"),
    ] {
        let body: &[u8] = br#"{"n": 1, "action": "up"}"#;
        let with_body = method == "POST" && !path.ends_with("snapshot");
        let (status, reply) =
            http(server.addr, method, path, if with_body { &json } else { &[] }, with_body.then_some(body));
        let reply = common::json(&reply);
        assert_eq!((status, error_code(&reply)), (404, code), "{method} {path}: {reply}");
    }
}

/// Fork sizes (like every batch) have a documented maximum, `max_batch`; past it is a
/// schema violation, `422 batch_too_large`. A server with another `max_batch` serves the
/// document with its own value.
#[test]
fn batch_maximums_are_documented_and_served_as_configured() {
    let doc = doc();
    assert_eq!(schema(&doc, "ForkRequest")["properties"]["n"]["maximum"], 1024);
    assert_eq!(schema(&doc, "ForkRequest")["properties"]["n"]["minimum"], 1);
    assert_eq!(schema(&doc, "SampleTrainRequest")["properties"]["count"]["maximum"], 1024);
    assert_eq!(schema(&doc, "SampleEvalRequest")["properties"]["count"]["maximum"], 1024);
    assert_eq!(schema(&doc, "ScoreBatchRequest")["properties"]["items"]["maxItems"], 1024);

    let server = TestServer::start(ServerConfig { max_batch: 8, ..ServerConfig::default() });
    let (status, served) = server.get("/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(schema(&served, "ForkRequest")["properties"]["n"]["maximum"], 8);
    assert_eq!(schema(&served, "SampleTrainRequest")["properties"]["count"]["maximum"], 8);
    assert_eq!(schema(&served, "SampleEvalRequest")["properties"]["count"]["maximum"], 8);
    assert_eq!(schema(&served, "ScoreBatchRequest")["properties"]["items"]["maxItems"], 8);
    // Everything else is the committed document.
    let mut patched = served.clone();
    for (name, pointer) in [
        ("ForkRequest", "/properties/n/maximum"),
        ("SampleTrainRequest", "/properties/count/maximum"),
        ("SampleEvalRequest", "/properties/count/maximum"),
        ("ScoreBatchRequest", "/properties/items/maxItems"),
    ] {
        *patched["components"]["schemas"][name].pointer_mut(pointer).unwrap() = json!(1024);
    }
    assert_eq!(patched, doc);

    let id = new_session(&server);
    let token = server.post_raw(&format!("/v1/sessions/{id}/snapshot"), &[], b"").1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, err) = server.post(&format!("/v1/snapshots/{token}/fork"), &json!({"n": 9}));
    assert_eq!((status, error_code(&err)), (422, "batch_too_large"), "{err}");
    assert_eq!(server.post(&format!("/v1/snapshots/{token}/fork"), &json!({"n": 8})).0, 200);
    let (status, err) = server.post(&format!("/v1/snapshots/{token}/fork"), &json!({"n": 0}));
    assert_eq!((status, error_code(&err)), (422, "invalid_request"), "{err}");
}

/// Every id has one spelling: a session id in another case or padding is another
/// (unknown) id, and task keys take lowercase hex and decimals without leading zeros only.
#[test]
fn ids_and_keys_have_exactly_one_spelling() {
    let server = TestServer::default();
    let id = new_session(&server);
    let hex = id.strip_prefix("s-").expect("s- prefix");
    assert!(hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{id}");
    assert_eq!(server.get(&format!("/v1/sessions/{id}")).0, 200);
    let trimmed = hex.trim_start_matches('0');
    for alias in [
        format!("s-{}", hex.to_ascii_uppercase()),
        format!("s-0{hex}"),
        format!("s-{trimmed}"),
        format!("S-{hex}"),
        format!("s-+{}", &hex[1..]),
        format!("s-{hex} "),
        format!("s-{hex}0"),
    ] {
        if alias == id {
            continue;
        }
        let (status, err) =
            server.get(&format!("/v1/sessions/{}", alias.replace(' ', "%20").replace('+', "%2B")));
        assert_eq!((status, error_code(&err)), (404, "unknown_session"), "{alias}: {err}");
    }

    let score = |key: &str| {
        server.post("/v1/score", &json!({"env": "serve-test", "task_key": key, "response": "Answer: 1"}))
    };
    assert_eq!(score("t-2a-3-0").0, 200);
    assert_eq!(score("t-0-0-0").0, 200);
    for alias in [
        "t-2A-3-0",
        "t-02a-3-0",
        "t-002a-3-0",
        "t-2a-03-0",
        "t-2a-3-00",
        "t-2a-3-01",
        "e-03",
        "e-00",
        "E-3",
        "t-2a-+3-0",
    ] {
        let (status, err) = score(alias);
        assert_eq!((status, error_code(&err)), (400, "bad_task_key"), "{alias}: {err}");
    }
    // In the grammar but past u64: names no task.
    for far in ["t-1-18446744073709551616-0", "t-1-0-99999999999999999999", "e-18446744073709551616"] {
        let (status, err) = score(far);
        assert_eq!((status, error_code(&err)), (404, "unknown_task_key"), "{far}: {err}");
    }
    // The document's pattern is that grammar.
    let pattern =
        schema(&doc(), "ScoreOneRequest")["properties"]["task_key"]["pattern"].as_str().unwrap().to_string();
    assert_eq!(
        pattern,
        "^(t-(0|[1-9a-f][0-9a-f]{0,15})-(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})|e-(0|[1-9][0-9]{0,19}))$"
    );
    assert_eq!(schema(&doc(), "ScoreItem")["properties"]["task_key"]["pattern"], pattern.as_str());
}

fn longest_run(text: &str, c: char) -> usize {
    text.split(|x| x != c).map(|r| r.chars().count()).max().unwrap_or(0)
}

/// A response repeats at most `ECHO_MAX_CHARS` characters of any request text, once; an
/// error message is at most `MESSAGE_MAX_CHARS`.
#[test]
fn echoes_are_clipped() {
    let server = TestServer::default();
    let long = "x".repeat(10_000);

    // An unparsable answer: clipped, in `detail` only.
    let (status, scored) = server.post(
        "/v1/score",
        &json!({"env": "serve-test", "task_key": "e-0", "response": format!("Answer: {long}")}),
    );
    assert_eq!(status, 200, "{scored}");
    let parse = &scored["results"][0]["parse"];
    assert_eq!(parse["reason"], "malformed", "{parse}");
    let detail = parse["detail"].as_str().unwrap();
    assert_eq!(detail.chars().count(), ECHO_MAX_CHARS);
    assert!(detail.ends_with('…'), "{detail}");
    assert!(!parse["message"].as_str().unwrap().contains("xxx"), "{parse}");
    assert!(scored.to_string().len() < 1000, "a 10 kB response echoed: {} bytes", scored.to_string().len());

    // An unparsable action.
    let id = new_session(&server);
    let (status, err) =
        server.post(&format!("/v1/sessions/{id}/step"), &json!({"action": format!("Action: {long}")}));
    assert_eq!((status, error_code(&err)), (422, "unparsable_action"), "{err}");
    assert!(err["error"]["parse"]["detail"].as_str().unwrap().chars().count() <= ECHO_MAX_CHARS, "{err}");
    assert!(!err["error"]["message"].as_str().unwrap().contains("xxx"), "{err}");

    // Ids, keys, names and values in error messages.
    let cases: Vec<(u16, &str, (u16, Value))> = vec![
        (404, "unknown_session", server.get(&format!("/v1/sessions/s-{long}"))),
        (404, "unknown_snapshot", server.delete(&format!("/v1/snapshots/{long}"))),
        (404, "unknown_env", server.get(&format!("/v1/envs/{long}"))),
        (404, "unknown_env", server.post("/v1/sample", &json!({"env": long, "seed": 1, "count": 1}))),
        (404, "unknown_episode", server.post("/v1/episodes/reset", &json!({"env": "serve-test", "episode": long, "seed": 1}))),
        (400, "bad_task_key", server.post("/v1/score", &json!({"env": "serve-test", "task_key": long, "response": ""}))),
        (422, "invalid_request", server.post("/v1/sample", &json!({"env": "serve-test", long.clone(): 1, "seed": 1, "count": 1}))),
        (422, "invalid_request", server.post("/v1/sample", &json!({"env": "serve-test", "seed": long, "count": 1}))),
        (422, "invalid_request", server.post("/v1/sample", &json!({"env": "serve-test", "seed": 1, "count": 1, "split": long}))),
        (422, "invalid_request", server.post("/v1/score", &json!({"env": "serve-test", "items": [{"task_key": "e-0", "response": "", long.clone(): 0}]}))),
    ];
    for (i, (status, code, (got, body))) in cases.iter().enumerate() {
        assert_eq!(
            (*got, error_code(body)),
            (*status, *code),
            "case {i}: {}",
            &body.to_string()[..200.min(body.to_string().len())]
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.chars().count() <= MESSAGE_MAX_CHARS,
            "case {i}: {} characters",
            message.chars().count()
        );
        let run = longest_run(message, 'x');
        assert!((1..ECHO_MAX_CHARS).contains(&run), "case {i}: echoes {run} characters: {message}");
        assert!(body.to_string().len() < 1200, "case {i}: {} bytes", body.to_string().len());
    }
}
