//! Training-engine benchmark on the real model: a LoRA training step (forward, backward,
//! Adam update) and its per-channel variants, teacher-forced scoring, and batched sampling in
//! the training precision (f32, dequantized).
//!
//! `cargo run --release -p gristmill-lm --example bench-lm-train [-- MODEL.gguf]`
//!
//! Environment: `BENCH_BATCH` (sequences, default 8), `BENCH_PROMPT` / `BENCH_COMPLETION`
//! (tokens per sequence, default 32 + 32), `BENCH_RANK` (8), `BENCH_TARGETS` (`q,v`),
//! `BENCH_STEPS` (3), `BENCH_SKIP` (comma list of sections to skip: `train`, `channels`,
//! `sample`). Prints `name value unit` lines, then one JSON line.

use std::time::Instant;

use gristmill_core::rng::{stream, Purpose};
use gristmill_lm::train::{
    GradMethod, GradRequest, LoraConfig, Normalization, Sample, TrainableConfig, TrainableLm,
};
use gristmill_lm::{Message, SamplingParams};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rss_kib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// Process CPU seconds (user + system), all threads.
fn cpu_s() -> f64 {
    // SAFETY: getrusage writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = match std::env::args().nth(1) {
        Some(p) => p.into(),
        None => {
            gristmill_lm::find_model().ok_or("no model: run scripts/fetch-model.sh or pass a .gguf path")?
        }
    };
    let batch = env("BENCH_BATCH", 8);
    let (np, nc) = (env("BENCH_PROMPT", 32), env("BENCH_COMPLETION", 32));
    let rank = env("BENCH_RANK", 8);
    let steps = env("BENCH_STEPS", 3);
    let targets: Vec<String> = std::env::var("BENCH_TARGETS")
        .unwrap_or_else(|_| "q,v".into())
        .split(',')
        .map(String::from)
        .collect();
    let skip = std::env::var("BENCH_SKIP").unwrap_or_default();
    let skip = |s: &str| skip.split(',').any(|x| x == s);
    let threads = rayon::current_num_threads();
    let config = TrainableConfig {
        lora: Some(LoraConfig {
            rank,
            alpha: 2.0 * rank as f64,
            targets: targets.clone(),
            layers: None,
            seed: 0,
        }),
        unfrozen_layers: vec![],
    };
    let t0 = Instant::now();
    let mut model = TrainableLm::load(&path, &config)?;
    let load_s = t0.elapsed().as_secs_f64();
    let rss_load = rss_kib("VmRSS:");
    println!(
        "model {} loaded (f32) in {load_s:.2}s, {threads} threads, LoRA r={rank} on {targets:?}: {} parameters",
        path.display(),
        model.num_params()
    );
    let mut figures = serde_json::Map::new();
    let mut report = |name: &str, value: f64, unit: &str| {
        println!("{name:<46} {value:>10.2} {unit}");
        figures.insert(name.to_string(), serde_json::json!(value));
    };
    report("load s", load_s, "s");
    report("rss after load MiB", rss_load / 1024.0, "MiB");

    // A training batch: `batch` windows of real text, `np` prompt + `nc` completion tokens.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/train/mod.rs"))?;
    let ids = model.tokenizer().encode(&text);
    let samples: Vec<Sample> = (0..batch)
        .map(|j| {
            let w = &ids[j * 97..j * 97 + np + nc];
            Sample { prompt: w[..np].to_vec(), completion: w[np..].to_vec() }
        })
        .collect();
    let tokens_per_step = (batch * (np + nc)) as f64;
    report("batch sequences", batch as f64, "seq");
    report("tokens per sequence", (np + nc) as f64, "tok");

    if !skip("train") {
        // Forward only (scoring).
        model.logprobs(&samples)?;
        let (t, c) = (Instant::now(), cpu_s());
        for _ in 0..steps {
            model.logprobs(&samples)?;
        }
        let s = t.elapsed().as_secs_f64() / steps as f64;
        report("score (forward) tokens/s", tokens_per_step / s, "tok/s");
        report("score (forward) cpu s (all threads)", (cpu_s() - c) / steps as f64, "s");

        // The training step: gradient of one channel, Adam, set the parameters.
        let weights: Vec<Vec<f64>> = (0..batch).map(|j| vec![if j % 2 == 0 { 1.0 } else { -1.0 }]).collect();
        let n = model.num_params();
        let (mut m1, mut m2) = (vec![0f64; n], vec![0f64; n]);
        let mut step = |model: &mut TrainableLm, t: usize| -> Result<(), Box<dyn std::error::Error>> {
            let req = GradRequest {
                samples: &samples,
                weights: &weights,
                normalization: Normalization::TokenMean,
                kl_coef: None,
                method: GradMethod::ChannelBatched,
            };
            let g = model.channel_gradients(&req)?.channels.remove(0);
            let (b1, b2, lr, eps) = (0.9, 0.999, 1e-4, 1e-8);
            let mut p = model.params();
            let tt = (t + 1) as i32;
            for i in 0..n {
                m1[i] = b1 * m1[i] + (1.0 - b1) * g[i];
                m2[i] = b2 * m2[i] + (1.0 - b2) * g[i] * g[i];
                p[i] += lr * (m1[i] / (1.0 - b1.powi(tt))) / ((m2[i] / (1.0 - b2.powi(tt))).sqrt() + eps);
            }
            model.set_params(&p)?;
            Ok(())
        };
        step(&mut model, 0)?;
        let (t, c) = (Instant::now(), cpu_s());
        for i in 0..steps {
            step(&mut model, i + 1)?;
        }
        let s = t.elapsed().as_secs_f64() / steps as f64;
        report("train step s", s, "s");
        report("train step cpu s (all threads)", (cpu_s() - c) / steps as f64, "s");
        report("train steps/s", 1.0 / s, "steps/s");
        report("train tokens/s", tokens_per_step / s, "tok/s");
        report("peak rss (load + step) MiB", rss_kib("VmHWM:") / 1024.0, "MiB");
        report("peak step memory over load MiB", (rss_kib("VmHWM:") - rss_load) / 1024.0, "MiB");
    }

    if !skip("channels") {
        // Per-channel gradients: C channels batched vs one backward per channel, vs C = 1.
        let time =
            |c: usize, kl: Option<f64>, method: GradMethod| -> Result<f64, Box<dyn std::error::Error>> {
                let w: Vec<Vec<f64>> =
                    (0..batch).map(|j| (0..c).map(|k| ((j + k) % 3) as f64 - 1.0).collect()).collect();
                let req = GradRequest {
                    samples: &samples,
                    weights: &w,
                    normalization: Normalization::TokenMean,
                    kl_coef: kl,
                    method,
                };
                let t = Instant::now();
                for _ in 0..steps.max(1) {
                    model.channel_gradients(&req)?;
                }
                Ok(t.elapsed().as_secs_f64() / steps.max(1) as f64)
            };
        let one = time(1, None, GradMethod::ChannelBatched)?;
        report("gradient C=1 s", one, "s");
        for c in [4usize, 8] {
            let b = time(c, None, GradMethod::ChannelBatched)?;
            report(&format!("gradient C={c} channel-batched s"), b, "s");
            report(&format!("gradient C={c} channel-batched / C=1"), b / one, "x");
            if c == 4 {
                let p = time(c, None, GradMethod::BackwardPerChannel)?;
                report(&format!("gradient C={c} backward-per-channel s"), p, "s");
                report(&format!("gradient C={c} backward-per-channel / C=1"), p / one, "x");
            }
        }
        let k = time(4, Some(0.05), GradMethod::ChannelBatched)?;
        report("gradient C=4 + KL channel-batched s", k, "s");
        report("gradient C=4 + KL / C=1", k / one, "x");
    }

    if !skip("sample") {
        // Prompt processing: ~220-token prompt, one new token (as bench-lm).
        let long = "The quick brown fox jumps over the lazy dog. ".repeat(20);
        let prompt = model.chat_prompt(&[Message::user(long)])?;
        let one = SamplingParams { temperature: 0.0, max_new_tokens: 1, ..Default::default() };
        model.generate(std::slice::from_ref(&prompt), &one, &mut [stream(0, Purpose::SAMPLE, 0, 0)])?;
        let reps = 3;
        let t = Instant::now();
        for r in 0..reps {
            model.generate(std::slice::from_ref(&prompt), &one, &mut [stream(0, Purpose::SAMPLE, 0, r)])?;
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        report("prompt tokens/s (batch 1)", prompt.len() as f64 / s, "tok/s");
        // Prompt processing of 8 prompts in one packed batch.
        let prompts: Vec<Vec<u32>> = (0..8).map(|_| prompt.clone()).collect();
        let mut rngs: Vec<_> = (0..8).map(|i| stream(0, Purpose::SAMPLE, 1, i)).collect();
        let t = Instant::now();
        model.generate(&prompts, &one, &mut rngs)?;
        report(
            "prompt tokens/s (8 prompts packed)",
            8.0 * prompt.len() as f64 / t.elapsed().as_secs_f64(),
            "tok/s",
        );

        // Generation: short prompt, 64 new tokens, T = 0.8.
        let short = model.chat_prompt(&[Message::user("Write a short story about a mill.")])?;
        let gen = SamplingParams { temperature: 0.8, top_p: 1.0, max_new_tokens: 64, stop: vec![] };
        for b in [1usize, 8, 32] {
            let mut rngs: Vec<_> = (0..b as u64).map(|i| stream(1, Purpose::SAMPLE, 0, i)).collect();
            let t = Instant::now();
            let out = model.generate(std::slice::from_ref(&short), &gen, &mut rngs)?;
            let s = t.elapsed().as_secs_f64();
            let n: usize = out.iter().map(|g| g.token_ids.len()).sum();
            report(&format!("generation tokens/s (batch {b})"), n as f64 / s, "tok/s");
        }
    }
    println!("{}", serde_json::Value::Object(figures));
    Ok(())
}
