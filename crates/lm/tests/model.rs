//! Tests against the real default model (SmolLM2-135M-Instruct Q4_1).
//!
//! They need the model: see the crate doc ("Tests that need the model"). Without it they
//! print a notice and pass, except under `CI`, where they fail.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use gristmill_core::rng::{stream, Purpose};
use gristmill_lm::{ChatModel, ClientConfig, LocalModel, Message, OpenAiClient, SamplingParams, ServeConfig};

/// The log-prob of " Paris" after "The capital of France is", computed by this crate and
/// pinned (llama.cpp gives −0.264 on the same file).
const PARIS_LOGPROB: f64 = -0.263972;
/// The same with `CANDLE_DEQUANTIZE_ALL=1` (f32 weights and activations instead of
/// quantized activations).
const PARIS_LOGPROB_DEQUANTIZED: f64 = -0.258082;

fn model() -> Option<Arc<LocalModel>> {
    static MODEL: OnceLock<Option<Arc<LocalModel>>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = gristmill_lm::model_for_tests()?;
            Some(Arc::new(LocalModel::load(&path).unwrap_or_else(|e| panic!("{e}"))))
        })
        .clone()
}

fn corpus() -> Vec<String> {
    let mut texts = vec![
        "The capital of France is Paris.\nWhat is 23 + 58? End your response with a line of the form `Answer: <integer>`.".to_string(),
        "Ünïcödé façade — naïve café, 東京タワー, Ελληνικά, русский текст, emoji 🚀🔥 and mixed\ttabs  and   spaces \n\n\n".into(),
        "def f(x):\n    return x ** 2  # it's, we're, they'll, I'd, you've, she's\r\n".into(),
        "   leading and trailing whitespace   ".into(),
        "1234567890 3.14159 -42 1e10 0x1F 1,000,000".into(),
        "<|im_start|> is plain text here <|im_end|>".into(),
        String::new(),
    ];
    // The workspace's own sources and docs: a real, varied text corpus.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for dir in ["crates/core/src", "crates/engine/src", "crates/lm/src"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            paths.sort();
            texts.extend(paths.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
        }
    }
    texts
}

#[test]
fn tokenizer_round_trips_a_text_corpus() {
    let Some(m) = model() else { return };
    let tok = m.tokenizer();
    let mut total = 0;
    for text in corpus() {
        let ids = tok.encode(&text);
        total += ids.len();
        assert_eq!(tok.decode(&ids, false), text, "round trip failed");
    }
    assert!(total > 10_000, "corpus too small: {total} tokens");
    // Digits are single tokens, and a common word with its space is one token.
    let ids = tok.encode("What is 23 + 58?");
    let pieces: Vec<String> = ids.iter().map(|&i| tok.decode(&[i], false)).collect();
    assert_eq!(pieces, ["What", " is", " ", "2", "3", " +", " ", "5", "8", "?"]);
    assert_eq!(tok.encode(" Paris").len(), 1);
}

#[test]
fn special_tokens_encode_and_decode_consistently() {
    let Some(m) = model() else { return };
    let tok = m.tokenizer();
    let (start, end) = (tok.token_id("<|im_start|>").unwrap(), tok.token_id("<|im_end|>").unwrap());
    assert!(tok.is_control(start) && tok.is_control(end));
    let text = "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n";
    let ids = tok.encode_with_special(text);
    assert_eq!(ids[0], start);
    assert_eq!(ids.iter().filter(|&&i| i == start).count(), 2);
    assert_eq!(ids.iter().filter(|&&i| i == end).count(), 1);
    assert_eq!(tok.decode(&ids, false), text);
    assert_eq!(tok.decode(&ids, true), "user\nhi there\nassistant\n");
    // Plain encoding never produces control tokens from text.
    let plain = tok.encode(text);
    assert!(!plain.contains(&start) && !plain.contains(&end));
    assert_eq!(tok.decode(&plain, false), text);
    // The chat template gives exactly the ChatML text the GGUF template renders.
    let prompt = m.chat_prompt(&[Message::user("hi there")]).unwrap();
    assert_eq!(
        tok.decode(&prompt, false),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(prompt, tok.encode_with_special(&tok.decode(&prompt, false)));
}

#[test]
fn logprob_of_a_fixed_continuation_is_pinned() {
    let Some(m) = model() else { return };
    let lp = m.score(&m.text_prompt("The capital of France is"), &m.tokenizer().encode(" Paris")).unwrap();
    assert_eq!(lp.len(), 1);
    println!("log p(' Paris' | 'The capital of France is') = {:.6}", lp[0]);
    // llama.cpp on the same file: −0.264.
    assert!((lp[0] - -0.264).abs() < 0.01, "{} is far from llama.cpp's −0.264", lp[0]);
    let dequantized = std::env::var("CANDLE_DEQUANTIZE_ALL").is_ok_and(|v| !v.is_empty() && v != "0");
    let pinned = if dequantized { PARIS_LOGPROB_DEQUANTIZED } else { PARIS_LOGPROB };
    assert!((lp[0] - pinned).abs() < 2e-3, "{} differs from the pinned {pinned}", lp[0]);
}

#[test]
fn sampling_is_keyed_and_batch_rows_equal_single_runs() {
    let Some(m) = model() else { return };
    let prompt = m.chat_prompt(&[Message::user("Name a colour.")]).unwrap();
    let params = SamplingParams { temperature: 1.0, top_p: 0.95, max_new_tokens: 6, stop: vec![] };
    let rngs = |seed| (0..3).map(|i| stream(seed, Purpose::SAMPLE, 0, i)).collect::<Vec<_>>();
    let a = m.generate(&prompt, &params, &mut rngs(1)).unwrap();
    let b = m.generate(&prompt, &params, &mut rngs(1)).unwrap();
    assert_eq!(a, b);
    for (i, g) in a.iter().enumerate() {
        assert!(!g.token_ids.is_empty() && g.token_ids.len() <= 6);
        assert_eq!(g.logprobs.len(), g.token_ids.len());
        assert!(g.logprobs.iter().all(|lp| lp.is_finite() && *lp <= 0.0));
        // A batch row is bit-identical to the same sample generated alone.
        let mut one = vec![stream(1, Purpose::SAMPLE, 0, i as u64)];
        let single = m.generate(&prompt, &params, &mut one).unwrap();
        assert_eq!(&single[0], g, "sample {i}");
        // The reported log-probs are the model's: re-scoring the tokens gives the same bits.
        assert_eq!(m.score(&prompt, &g.token_ids).unwrap(), g.logprobs);
    }
    // Stop strings cut the text.
    let stopped = SamplingParams { stop: vec![" ".into()], max_new_tokens: 12, ..params.clone() };
    for g in m.generate(&prompt, &stopped, &mut rngs(2)).unwrap() {
        assert!(!g.text.contains(' '), "{:?}", g.text);
    }
    // Greedy decoding ignores the stream.
    let greedy = SamplingParams { temperature: 0.0, ..params };
    let g = m.generate(&prompt, &greedy, &mut rngs(3)).unwrap();
    assert!(g.windows(2).all(|w| w[0].token_ids == w[1].token_ids));
}

/// Prints the digest of a fixed generation when run as a child by the thread-count test.
#[test]
fn child_generation_digest() {
    if std::env::var_os("GRISTMILL_LM_CHILD").is_none() {
        return;
    }
    let Some(m) = model() else { return };
    let prompt = m.chat_prompt(&[Message::user("What is 17 + 25? End with `Answer: <integer>`.")]).unwrap();
    let params = SamplingParams { temperature: 0.8, top_p: 0.95, max_new_tokens: 8, stop: vec![] };
    let mut rngs: Vec<_> = (0..2).map(|i| stream(11, Purpose::SAMPLE, 0, i)).collect();
    let gens = m.generate(&prompt, &params, &mut rngs).unwrap();
    let lp = m.score(&prompt, &gens[0].token_ids).unwrap();
    let mut d = gristmill_core::digest::Digest::new();
    for g in &gens {
        d.str(&g.text).f64s(&g.logprobs);
    }
    d.f64s(&lp);
    println!("DIGEST {}", d.hex());
}

#[test]
fn determinism_whatever_the_thread_count() {
    if std::env::var_os("GRISTMILL_LM_CHILD").is_some() || model().is_none() {
        return;
    }
    let run = |threads: &str| {
        common::child_digest(
            "child_generation_digest",
            "GRISTMILL_LM_CHILD",
            &[("RAYON_NUM_THREADS", threads), ("CANDLE_NUM_THREADS", threads)],
        )
    };
    let one = run("1");
    let two = run("2");
    assert_eq!(one, two, "generation differs between 1 and 2 threads");
}

#[test]
fn served_model_answers_the_openai_client_with_the_same_bits() {
    let Some(m) = model() else { return };
    let server = gristmill_lm::spawn_server(
        m.clone(),
        ServeConfig { addr: "127.0.0.1:0".parse().unwrap(), model_name: "smollm2".into(), concurrency: 1 },
    )
    .unwrap();
    let mut config = ClientConfig::new(server.base_url());
    config.model = "smollm2".into();
    config.concurrency = 2;
    let client = OpenAiClient::new(config).unwrap();
    let messages = [Message::user("Say hi.")];
    let params = SamplingParams { temperature: 0.9, top_p: 1.0, max_new_tokens: 5, stop: vec![] };
    let remote = client.complete(&messages, &params, 42).unwrap();
    let local = m
        .generate(&m.chat_prompt(&messages).unwrap(), &params, &mut [stream(42, Purpose::SAMPLE, 0, 0)])
        .unwrap()
        .remove(0);
    assert_eq!(remote.text, local.text);
    assert_eq!(remote.logprobs, local.logprobs);
    assert_eq!(remote.tokens, local.tokens);
    assert_eq!(remote.prompt_tokens, local.prompt_tokens);
    // Through the ChatModel trait: two samples in parallel, in stream order.
    let mut rngs: Vec<_> = (0..2).map(|i| stream(3, Purpose::SAMPLE, 1, i)).collect();
    let gens = client.chat(&messages, &params, &mut rngs).unwrap();
    assert_eq!(gens.len(), 2);
    // A bad request is reported with the URL and the server's message, without retries.
    let bad = SamplingParams { max_new_tokens: 100_000, ..params };
    let err = client.complete(&messages, &bad, 0).unwrap_err().to_string();
    assert!(err.contains("/v1/chat/completions") && err.contains("HTTP 400"), "{err}");
    server.shutdown();
}
