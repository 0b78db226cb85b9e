//! The training engine on the real default model (SmolLM2-135M-Instruct, dequantized to f32).
//!
//! They need the model: see the crate doc ("Tests that need the model"). Without it they print
//! a notice and pass, except under `CI`, where they fail. Kept short (a few seconds).

mod common;

use std::sync::OnceLock;

use gristmill_core::rng::{stream, Purpose};
use gristmill_lm::train::{
    GradMethod, GradRequest, LoraConfig, Normalization, Sample, TrainableConfig, TrainableLm,
};
use gristmill_lm::{Message, SamplingParams};

/// log p(" Paris" | "The capital of France is") of the f32 model: PyTorch (transformers,
/// GGUF dequantized, f32) gives −0.258082, candle's dequantized path −0.258082.
const PARIS_F32: f64 = -0.258082;

fn model() -> Option<&'static TrainableLm> {
    static MODEL: OnceLock<Option<TrainableLm>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = gristmill_lm::model_for_tests()?;
            let config = TrainableConfig {
                lora: Some(LoraConfig {
                    rank: 4,
                    alpha: 8.0,
                    targets: vec!["q".into(), "v".into()],
                    layers: None,
                    seed: 1,
                }),
                unfrozen_layers: vec![],
            };
            Some(TrainableLm::load(&path, &config).unwrap_or_else(|e| panic!("{e}")))
        })
        .as_ref()
}

#[test]
fn paris_logprob_matches_pytorch_in_f32() {
    let Some(m) = model() else { return };
    assert_eq!(m.shape().layers, 30);
    let lp = m
        .sequence_logprobs(&m.text_prompt("The capital of France is"), &m.tokenizer().encode(" Paris"))
        .unwrap();
    println!("log p(' Paris' | 'The capital of France is') = {:.6}", lp[0]);
    assert!((lp[0] - PARIS_F32).abs() < 1e-3, "{} differs from PyTorch's {PARIS_F32}", lp[0]);
}

#[test]
fn sampler_and_learner_agree_bit_for_bit_and_gradients_split() {
    let Some(m) = model() else { return };
    let prompt = m.chat_prompt(&[Message::user("What is 17 + 25?")]).unwrap();
    let params = SamplingParams { temperature: 1.0, top_p: 0.95, max_new_tokens: 6, stop: vec![] };
    let mut rngs: Vec<_> = (0..3).map(|i| stream(2, Purpose::SAMPLE, 0, i)).collect();
    let gens = m.generate(std::slice::from_ref(&prompt), &params, &mut rngs).unwrap();
    let samples: Vec<Sample> =
        gens.iter().map(|g| Sample { prompt: prompt.clone(), completion: g.token_ids.clone() }).collect();
    let lps = m.logprobs(&samples).unwrap();
    for (g, lp) in gens.iter().zip(&lps) {
        assert_eq!(
            g.logprobs.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            lp.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
    let w = vec![vec![1.0, 0.0, -0.5], vec![-1.0, 0.0, 0.5], vec![0.5, 0.0, 0.25]];
    let req = GradRequest {
        samples: &samples,
        weights: &w,
        normalization: Normalization::TokenMean,
        kl_coef: Some(0.1),
        method: GradMethod::ChannelBatched,
    };
    let out = m.channel_gradients(&req).unwrap();
    assert_eq!(out.channels.len(), 3);
    assert!(out.channels[1].iter().all(|&x| x == 0.0));
    assert!(out.channels[0].iter().all(|x| x.is_finite()) && out.channels[0].iter().any(|&x| x != 0.0));
    // A fresh adapter is the reference: zero KL, zero KL gradient.
    let kl = out.kl.unwrap();
    assert_eq!(kl.value, 0.0);
    assert!(kl.grad.iter().all(|&x| x == 0.0));
    // Σ_c g_c = g(Σ_c w).
    let summed: Vec<Vec<f64>> = w.iter().map(|r| vec![r.iter().sum()]).collect();
    let req = GradRequest { weights: &summed, kl_coef: None, ..req };
    let total = m.channel_gradients(&req).unwrap().channels.remove(0);
    let (mut err, mut norm) = (0.0, 0.0);
    for i in 0..total.len() {
        let s: f64 = out.channels.iter().map(|g| g[i]).sum();
        err += (s - total[i]).powi(2);
        norm += total[i] * total[i];
    }
    assert!(err.sqrt() <= 1e-4 * norm.sqrt(), "split error {} of {}", err.sqrt(), norm.sqrt());
}

/// Prints a digest of a generation and a gradient (run as a child with 1 and 2 threads).
#[test]
fn child_model_train_digest() {
    if std::env::var_os("GRISTMILL_LM_TRAIN_CHILD").is_none() {
        return;
    }
    let Some(m) = model() else { return };
    let prompt = m.chat_prompt(&[Message::user("Name a colour.")]).unwrap();
    let params = SamplingParams { temperature: 0.8, top_p: 1.0, max_new_tokens: 5, stop: vec![] };
    let mut rngs: Vec<_> = (0..2).map(|i| stream(3, Purpose::SAMPLE, 0, i)).collect();
    let gens = m.generate(std::slice::from_ref(&prompt), &params, &mut rngs).unwrap();
    let samples: Vec<Sample> =
        gens.iter().map(|g| Sample { prompt: prompt.clone(), completion: g.token_ids.clone() }).collect();
    let w = vec![vec![1.0, -1.0], vec![-1.0, 0.5]];
    let req = GradRequest {
        samples: &samples,
        weights: &w,
        normalization: Normalization::Sequence,
        kl_coef: None,
        method: GradMethod::ChannelBatched,
    };
    let out = m.channel_gradients(&req).unwrap();
    let mut d = gristmill_core::digest::Digest::new();
    for g in &gens {
        d.str(&g.text).f64s(&g.logprobs);
    }
    for g in &out.channels {
        d.f64s(g);
    }
    println!("DIGEST {}", d.hex());
}

#[test]
fn real_model_is_deterministic_across_thread_counts() {
    if std::env::var_os("GRISTMILL_LM_TRAIN_CHILD").is_some() || model().is_none() {
        return;
    }
    let run = |threads: &str| {
        common::child_digest(
            "child_model_train_digest",
            "GRISTMILL_LM_TRAIN_CHILD",
            &[("RAYON_NUM_THREADS", threads)],
        )
    };
    assert_eq!(run("1"), run("2"), "the real model differs between 1 and 2 threads");
}
