//! Throughput of the in-process model: prompt and generation tokens/s (batch 1 and batched)
//! and rollouts/s on a text task family.
//!
//! `cargo run --release -p gristmill-lm --example bench-lm [-- MODEL.gguf]`
//! (default model: `GRISTMILL_MODEL` or the cache of scripts/fetch-model.sh). Prints one
//! `name value unit` line per figure, then a JSON line for scripts.

use std::sync::Arc;
use std::time::Instant;

use gristmill_core::rng::{stream, Purpose};
use gristmill_engine::rollout_step;
use gristmill_lm::{ChatModel, LmPolicy, LocalModel, Message, SamplingParams};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = match std::env::args().nth(1) {
        Some(p) => p.into(),
        None => {
            gristmill_lm::find_model().ok_or("no model: run scripts/fetch-model.sh or pass a .gguf path")?
        }
    };
    let t0 = Instant::now();
    let model = Arc::new(LocalModel::load(&path)?);
    let load_s = t0.elapsed().as_secs_f64();
    println!("model {} loaded in {load_s:.2}s", path.display());
    let mut figures = serde_json::Map::new();
    let mut report = |name: &str, value: f64, unit: &str| {
        println!("{name:<34} {value:>10.1} {unit}");
        figures.insert(name.to_string(), serde_json::json!(value));
    };

    // Prompt processing: a ~200-token prompt, one new token.
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    let prompt = model.chat_prompt(&[Message::user(text)])?;
    let one = SamplingParams { temperature: 0.0, max_new_tokens: 1, ..Default::default() };
    model.generate(&prompt, &one, &mut [stream(0, Purpose::SAMPLE, 0, 0)])?; // warm-up
    let reps = 3;
    let t = Instant::now();
    for r in 0..reps {
        model.generate(&prompt, &one, &mut [stream(0, Purpose::SAMPLE, 0, r)])?;
    }
    let prefill_s = t.elapsed().as_secs_f64() / reps as f64;
    report("prompt tokens/s (batch 1)", prompt.len() as f64 / prefill_s, "tok/s");

    // Generation: a short prompt, 64 new tokens, no early stop counted as generated.
    let short = model.chat_prompt(&[Message::user("Write a short story about a mill.")])?;
    let gen = SamplingParams { temperature: 0.8, top_p: 1.0, max_new_tokens: 64, stop: vec![] };
    for batch in [1usize, 8] {
        let mut rngs: Vec<_> = (0..batch as u64).map(|i| stream(1, Purpose::SAMPLE, 0, i)).collect();
        let t = Instant::now();
        let out = model.generate(&short, &gen, &mut rngs)?;
        let s = t.elapsed().as_secs_f64();
        let tokens: usize = out.iter().map(|g| g.token_ids.len()).sum();
        report(&format!("generation tokens/s (batch {batch})"), tokens as f64 / s, "tok/s");
    }

    // Rollouts on a text family: addition with one digit, answers parsed from text.
    let env = gristmill_engine::load(
        "name = 'bench'\n[run]\ntasks_per_step = 8\nresponses_per_task = 4\n\
         [[source]]\nid = 'add'\nfamily = 'addition'\nknobs = { digits = 1 }\n\
         [[piece]]\nid = 'gold'\nkind = 'exact_verifier'\n",
        "bench",
        &gristmill_core::spec::Overrides::default(),
    )?;
    let params =
        SamplingParams { temperature: 0.7, top_p: 1.0, max_new_tokens: 24, stop: vec!["\n\n".into()] };
    // (a) the engine's per-sample path: `Policy::respond` for each of B × G samples.
    let policy = LmPolicy::new(model.clone(), params.clone());
    let t = Instant::now();
    let batch = rollout_step(&env, &policy, 7, 0)?;
    let s = t.elapsed().as_secs_f64();
    report("rollouts/s (engine, per sample)", batch.len() as f64 / s, "rollouts/s");
    // (b) grouped: the G samples of a task decoded as one batch.
    let t = Instant::now();
    let mut n = 0;
    for b in 0..8u64 {
        let task = env.training_task(&env.mixture(), None, 7, 1, b)?;
        let mut rngs: Vec<_> = (0..4).map(|g| stream(7, Purpose::SAMPLE, 1, b * 4 + g)).collect();
        n += model.chat(&[Message::user(task.observation_text())], &params, &mut rngs)?.len();
    }
    let s = t.elapsed().as_secs_f64();
    report("rollouts/s (grouped, G=4 batched)", n as f64 / s, "rollouts/s");
    println!("{}", serde_json::Value::Object(figures));
    Ok(())
}
