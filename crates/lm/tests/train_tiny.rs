//! The training engine on a tiny random llama model built in code (no GGUF needed): gradients
//! against finite differences, the channel split, sampler/learner log-prob equality,
//! determinism across thread counts and instruction sets, and typed errors.

mod common;

use gristmill_core::rng::{stream, Purpose};
use gristmill_lm::train::{
    GradMethod, GradRequest, LoraConfig, Normalization, Sample, TinyConfig, TrainError, TrainableConfig,
    TrainableLm,
};
use gristmill_lm::{Message, SamplingParams};
use rand::Rng;

const ALL: [&str; 7] = ["q", "k", "v", "o", "gate", "up", "down"];

fn lora(targets: &[&str], rank: usize) -> LoraConfig {
    LoraConfig {
        rank,
        alpha: 2.0 * rank as f64,
        targets: targets.iter().map(|s| s.to_string()).collect(),
        layers: None,
        seed: 3,
    }
}

/// LoRA rank 3 on every projection, and layer 1 unfrozen; parameters moved off their initial
/// values (B ≠ 0) so that every block has a non-trivial gradient.
fn model() -> TrainableLm {
    let config = TrainableConfig { lora: Some(lora(&ALL, 3)), unfrozen_layers: vec![1] };
    let mut m = TrainableLm::tiny(&TinyConfig::default(), &config).unwrap();
    let mut rng = stream(9, Purpose::INIT, 0, 0);
    let p: Vec<f64> = m
        .params()
        .iter()
        .map(|&x| {
            if x == 0.0 {
                (rng.random::<f64>() - 0.5) * 0.4
            } else {
                x * (1.0 + 0.2 * (rng.random::<f64>() - 0.5))
            }
        })
        .collect();
    m.set_params(&p).unwrap();
    m
}

fn samples(m: &TrainableLm) -> Vec<Sample> {
    let tok = m.tokenizer();
    let mk = |q: &str, a: &str| Sample {
        prompt: m.chat_prompt(&[Message::user(q)]).unwrap(),
        completion: tok.encode(a).into_iter().chain([2]).collect(),
    };
    vec![mk("2+3?", "5"), mk("the cat in the hat", "sat on the mat"), mk("x", "in the end")]
}

fn weights() -> Vec<Vec<f64>> {
    vec![vec![1.0, -0.5, 0.0, 0.25], vec![-0.3, 2.0, 0.0, 0.25], vec![0.7, 0.1, 0.0, 0.25]]
}

fn objective(m: &TrainableLm, s: &[Sample], w: &[f64], norm: Normalization) -> f64 {
    let total: usize = s.iter().map(|x| x.completion.len()).sum();
    let lps = m.logprobs(s).unwrap();
    lps.iter()
        .zip(s)
        .zip(w)
        .map(|((lp, x), &wj)| {
            let n = match norm {
                Normalization::Sequence => 1.0,
                Normalization::TokenMean => 1.0 / x.completion.len() as f64,
                Normalization::TokenBatch => 1.0 / total as f64,
            };
            wj * n * lp.iter().sum::<f64>()
        })
        .sum()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn request<'a>(s: &'a [Sample], w: &'a [Vec<f64>], kl: Option<f64>, method: GradMethod) -> GradRequest<'a> {
    GradRequest { samples: s, weights: w, normalization: Normalization::TokenMean, kl_coef: kl, method }
}

#[test]
fn gradient_matches_finite_differences_block_by_block() {
    let mut m = model();
    let s = samples(&m);
    for norm in [Normalization::Sequence, Normalization::TokenMean, Normalization::TokenBatch] {
        let w: Vec<Vec<f64>> = vec![vec![1.0], vec![-0.6], vec![0.4]];
        let req = GradRequest {
            samples: &s,
            weights: &w,
            normalization: norm,
            kl_coef: None,
            method: GradMethod::ChannelBatched,
        };
        let g = m.channel_gradients(&req).unwrap().channels.remove(0);
        let theta = m.params();
        let wcol: Vec<f64> = w.iter().map(|r| r[0]).collect();
        let layout = m.layout().to_vec();
        // One random direction per block (so every block's gradient is checked on its own).
        let blocks: Vec<_> =
            if norm == Normalization::TokenMean { layout.clone() } else { layout[..4].to_vec() };
        for (bi, block) in blocks.iter().enumerate() {
            let mut rng = stream(5, Purpose::SAMPLE, bi as u64, 0);
            let v: Vec<f64> = (0..block.len()).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
            let scale = theta[block.offset..block.offset + block.len()]
                .iter()
                .map(|x| x.abs())
                .fold(0.0, f64::max)
                .max(0.05);
            let eps = 2e-3 * scale;
            let shifted = |sign: f64| {
                let mut t = theta.clone();
                for (i, vi) in v.iter().enumerate() {
                    t[block.offset + i] += sign * eps * vi;
                }
                t
            };
            m.set_params(&shifted(1.0)).unwrap();
            let fp = objective(&m, &s, &wcol, norm);
            m.set_params(&shifted(-1.0)).unwrap();
            let fm = objective(&m, &s, &wcol, norm);
            m.set_params(&theta).unwrap();
            let fd = (fp - fm) / (2.0 * eps);
            let an: f64 = v.iter().enumerate().map(|(i, vi)| vi * g[block.offset + i]).sum();
            let tol = 2e-2 * an.abs().max(fd.abs()) + 2e-3;
            assert!(
                (fd - an).abs() <= tol,
                "{norm:?} {}: finite difference {fd} vs gradient {an}",
                block.name
            );
        }
    }
}

#[test]
fn channels_split_the_gradient_exactly_where_it_must() {
    let m = model();
    let s = samples(&m);
    let w = weights();
    let out = m.channel_gradients(&request(&s, &w, None, GradMethod::ChannelBatched)).unwrap();
    assert_eq!(out.channels.len(), 4);
    // A zero-weight channel gets an exactly zero gradient.
    assert!(out.channels[2].iter().all(|&x| x == 0.0));
    // Identical channels get identical bits: duplicate channel 1.
    let dup: Vec<Vec<f64>> = w.iter().map(|r| vec![r[1], r[0], r[1]]).collect();
    let d = m.channel_gradients(&request(&s, &dup, None, GradMethod::ChannelBatched)).unwrap();
    assert_eq!(bits(&d.channels[0]), bits(&d.channels[2]));
    assert_eq!(bits(&d.channels[0]), bits(&out.channels[1]), "a channel does not depend on its neighbours");
    // The channels sum to the gradient of the summed weights.
    let summed: Vec<Vec<f64>> = w.iter().map(|r| vec![r.iter().sum()]).collect();
    let total = m.channel_gradients(&request(&s, &summed, None, GradMethod::ChannelBatched)).unwrap();
    let sum: Vec<f64> = (0..m.num_params()).map(|i| out.channels.iter().map(|g| g[i]).sum()).collect();
    let norm = total.channels[0].iter().map(|x| x * x).sum::<f64>().sqrt();
    let err = sum.iter().zip(&total.channels[0]).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
    assert!(norm > 1e-3 && err <= 1e-5 * norm, "Σ_c g_c differs from g(Σ_c w) by {err} (norm {norm})");
    // One backward per channel computes the same channels.
    let plain = m.channel_gradients(&request(&s, &w, None, GradMethod::BackwardPerChannel)).unwrap();
    for (a, b) in plain.channels.iter().zip(&out.channels) {
        let n = b.iter().map(|x| x * x).sum::<f64>().sqrt();
        let e = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
        assert!(e <= 1e-5 * n.max(1e-9), "per-channel backward differs by {e} (norm {n})");
    }
    assert!(plain.channels[2].iter().all(|&x| x == 0.0));
    assert_eq!(bits(&plain.logprobs.concat()), bits(&out.logprobs.concat()));
}

#[test]
fn kl_channel_is_the_gradient_of_minus_beta_kl() {
    let mut m = model();
    let s = samples(&m);
    let w = weights();
    let beta = 0.3;
    let out = m.channel_gradients(&request(&s, &w, Some(beta), GradMethod::ChannelBatched)).unwrap();
    let kl = out.kl.clone().unwrap();
    assert_eq!(kl.ref_logprobs, m.reference_logprobs(&s).unwrap());
    let value = |m: &TrainableLm| {
        let (lp, rl) = (m.logprobs(&s).unwrap(), m.reference_logprobs(&s).unwrap());
        let mut v = 0.0;
        for (a, b) in lp.iter().zip(&rl) {
            let n = 1.0 / a.len() as f64;
            v += n * a.iter().zip(b).map(|(x, y)| (y - x).exp() - (y - x) - 1.0).sum::<f64>();
        }
        v
    };
    assert!((kl.value - value(&m)).abs() < 1e-12 && kl.value > 0.0);
    let theta = m.params();
    let mut rng = stream(6, Purpose::SAMPLE, 0, 0);
    let v: Vec<f64> = theta.iter().map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
    let eps = 1e-4;
    let at = |m: &mut TrainableLm, sign: f64| {
        let t: Vec<f64> = theta.iter().zip(&v).map(|(a, b)| a + sign * eps * b).collect();
        m.set_params(&t).unwrap();
        value(m)
    };
    let fd = -beta * (at(&mut m, 1.0) - at(&mut m, -1.0)) / (2.0 * eps);
    let an: f64 = v.iter().zip(&kl.grad).map(|(a, b)| a * b).sum();
    assert!(
        (fd - an).abs() <= 3e-2 * an.abs().max(fd.abs()) + 1e-3,
        "KL: finite difference {fd} vs gradient {an}"
    );
    // The per-channel method computes the same KL channel.
    m.set_params(&theta).unwrap();
    let plain = m.channel_gradients(&request(&s, &w, Some(beta), GradMethod::BackwardPerChannel)).unwrap();
    let pk = plain.kl.unwrap();
    let n = kl.grad.iter().map(|x| x * x).sum::<f64>().sqrt();
    let e = pk.grad.iter().zip(&kl.grad).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    assert!(e <= 1e-5 * n, "KL channel differs between methods by {e} (norm {n})");
}

#[test]
fn fresh_lora_leaves_the_model_unchanged_and_kl_is_zero() {
    for targets in [&ALL[..], &["q", "v"][..]] {
        let config = TrainableConfig { lora: Some(lora(targets, 4)), unfrozen_layers: vec![] };
        let m = TrainableLm::tiny(&TinyConfig::default(), &config).unwrap();
        let s = samples(&m);
        assert_eq!(
            bits(&m.logprobs(&s).unwrap().concat()),
            bits(&m.reference_logprobs(&s).unwrap().concat())
        );
        let w = weights();
        let out = m.channel_gradients(&request(&s, &w, Some(0.1), GradMethod::ChannelBatched)).unwrap();
        let kl = out.kl.unwrap();
        assert_eq!(kl.value, 0.0);
        assert!(kl.grad.iter().all(|&x| x == 0.0), "at the reference, the KL gradient vanishes");
        // With B = 0 only B gets a gradient (A's gradient passes through B).
        for block in m.layout() {
            let g = &out.channels[0][block.offset..block.offset + block.len()];
            let nonzero = g.iter().any(|&x| x != 0.0);
            assert_eq!(nonzero, block.name.ends_with("lora_b"), "{}", block.name);
        }
    }
}

#[test]
fn sampler_and_learner_log_probs_are_the_same_bits() {
    let m = model();
    let prompts = vec![
        m.chat_prompt(&[Message::user("Say something.")]).unwrap(),
        m.chat_prompt(&[Message::user("the")]).unwrap(),
    ];
    let params = SamplingParams { temperature: 1.0, top_p: 0.9, max_new_tokens: 12, stop: vec![] };
    let mut rngs: Vec<_> = (0..6).map(|i| stream(4, Purpose::SAMPLE, 0, i)).collect();
    let gens = m.generate(&prompts, &params, &mut rngs).unwrap();
    assert_eq!(gens.len(), 6);
    let s: Vec<Sample> = gens
        .iter()
        .enumerate()
        .map(|(i, g)| Sample { prompt: prompts[i / 3].clone(), completion: g.token_ids.clone() })
        .collect();
    let lps = m.logprobs(&s).unwrap();
    for (i, g) in gens.iter().enumerate() {
        assert!(!g.token_ids.is_empty() && g.token_ids.len() <= 12);
        assert_eq!(bits(&g.logprobs), bits(&lps[i]), "sample {i}: sampler vs learner");
        assert_eq!(bits(&m.sequence_logprobs(&s[i].prompt, &s[i].completion).unwrap()), bits(&lps[i]));
        // A sample generated alone is the same as in the batch.
        let mut one = vec![stream(4, Purpose::SAMPLE, 0, i as u64)];
        let alone = m.generate(&prompts[i / 3..i / 3 + 1], &params, &mut one).unwrap();
        assert_eq!(&alone[0], g, "sample {i} alone");
    }
    // And the gradient call reports the same log-probs.
    let w: Vec<Vec<f64>> = s.iter().map(|_| vec![1.0]).collect();
    let out = m.channel_gradients(&request(&s, &w, None, GradMethod::ChannelBatched)).unwrap();
    assert_eq!(bits(&out.logprobs.concat()), bits(&lps.concat()));
    // Stop strings cut the text; the tokens stay what was generated.
    let stopped = SamplingParams { stop: vec!["e".into()], max_new_tokens: 20, ..params };
    for g in m.generate(&prompts, &stopped, &mut rngs).unwrap() {
        assert!(!g.text.contains('e'), "{:?}", g.text);
    }
}

#[test]
fn bad_inputs_are_typed_errors_naming_the_problem() {
    let m = model();
    let s = samples(&m);
    let long = Sample { prompt: vec![5; 90], completion: vec![6; 10] };
    let err = m.logprobs(&[s[0].clone(), long]).unwrap_err();
    assert!(matches!(err, TrainError::TooLong { sample: 1, tokens: 100, context: 96 }), "{err}");
    assert!(err.to_string().contains("context window of 96"), "{err}");
    let empty = Sample { prompt: s[0].prompt.clone(), completion: vec![] };
    let err = m.logprobs(&[empty]).unwrap_err();
    assert!(matches!(err, TrainError::EmptyCompletion { sample: 0 }), "{err}");
    let err = m.logprobs(&[Sample { prompt: vec![], completion: vec![3] }]).unwrap_err();
    assert!(matches!(err, TrainError::EmptyPrompt { sample: 0 }), "{err}");
    let err = m.logprobs(&[Sample { prompt: vec![3], completion: vec![100_000] }]).unwrap_err();
    assert!(matches!(err, TrainError::TokenOutOfVocab { token: 100_000, .. }), "{err}");
    let mut w = weights();
    w[1][3] = f64::NAN;
    let err = m.channel_gradients(&request(&s, &w, None, GradMethod::ChannelBatched)).unwrap_err();
    assert!(matches!(err, TrainError::NonFiniteWeight { sample: 1, channel: 3, .. }), "{err}");
    let err =
        m.channel_gradients(&request(&s, &weights()[..2], None, GradMethod::ChannelBatched)).unwrap_err();
    assert!(matches!(err, TrainError::WeightShape(_)), "{err}");
    let err = m
        .channel_gradients(&request(&s, &weights(), Some(f64::INFINITY), GradMethod::ChannelBatched))
        .unwrap_err();
    assert!(matches!(err, TrainError::Request(_)), "{err}");
    // LoRA targets and layers.
    let bad = TrainableConfig { lora: Some(lora(&["q", "qkv"], 2)), unfrozen_layers: vec![] };
    let err = TrainableLm::tiny(&TinyConfig::default(), &bad).unwrap_err();
    assert!(matches!(&err, TrainError::UnknownTarget { target, .. } if target == "qkv"), "{err}");
    let msg = err.to_string();
    for valid in ["q", "k_proj", "attn_output", "gate", "ffn_down"] {
        assert!(msg.contains(valid), "{msg} does not list {valid}");
    }
    let err =
        TrainableLm::tiny(&TinyConfig::default(), &TrainableConfig { lora: None, unfrozen_layers: vec![7] })
            .unwrap_err();
    assert!(matches!(err, TrainError::LayerOutOfRange { layer: 7, layers: 2 }), "{err}");
    let err = TrainableLm::tiny(&TinyConfig::default(), &TrainableConfig::default()).unwrap_err();
    assert!(matches!(err, TrainError::Config(_)), "{err}");
    // Parameters.
    let mut m2 = model();
    let before = m2.params();
    let err = m2.set_params(&before[1..]).unwrap_err();
    assert!(matches!(err, TrainError::ParamLength { .. }), "{err}");
    let mut nan = before.clone();
    nan[m2.layout()[2].offset] = f64::NAN;
    let err = m2.set_params(&nan).unwrap_err();
    assert!(err.to_string().contains(&m2.layout()[2].name), "{err}");
    assert_eq!(bits(&m2.params()), bits(&before), "a refused vector leaves the model unchanged");
    // Sampling.
    let p = vec![s[0].prompt.clone()];
    let params = SamplingParams { max_new_tokens: 0, ..Default::default() };
    assert!(matches!(
        m.generate(&p, &params, &mut [stream(0, Purpose::SAMPLE, 0, 0)]),
        Err(TrainError::Request(_))
    ));
    let params = SamplingParams { max_new_tokens: 95, ..Default::default() };
    assert!(matches!(
        m.generate(&p, &params, &mut [stream(0, Purpose::SAMPLE, 0, 0)]),
        Err(TrainError::TooLong { .. })
    ));
    let two: Vec<_> = (0..3).map(|i| stream(0, Purpose::SAMPLE, 0, i)).collect();
    assert!(matches!(
        m.generate(&[p[0].clone(), p[0].clone()], &SamplingParams::default(), &mut two.clone()),
        Err(TrainError::Request(_))
    ));
}

#[test]
fn layout_is_documented_order_and_round_trips() {
    let mut m = model();
    let names: Vec<&str> = m.layout().iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        &names[..4],
        ["blk.0.attn_q.lora_a", "blk.0.attn_q.lora_b", "blk.0.attn_k.lora_a", "blk.0.attn_k.lora_b"]
    );
    assert_eq!(&names[14..17], ["blk.1.attn_norm.weight", "blk.1.attn_q.weight", "blk.1.attn_k.weight"]);
    assert_eq!(names[19], "blk.1.ffn_norm.weight");
    let mut off = 0;
    for b in m.layout() {
        assert_eq!(b.offset, off, "{}", b.name);
        off += b.len();
    }
    assert_eq!(off, m.num_params());
    let p = m.params();
    let step: Vec<f64> = p.iter().map(|x| x * 1e-3).collect();
    m.add_to_params(&step).unwrap();
    let q = m.params();
    assert!(p.iter().zip(&step).zip(&q).all(|((a, b), c)| a + b == *c), "master parameters are kept in f64");
}

/// Prints a digest of log-probs, samples and per-channel gradients (run as a child). The model
/// and batch are wide enough (288 packed rows × 128) that every parallel path splits work.
#[test]
fn child_train_digest() {
    if std::env::var_os("GRISTMILL_LM_TRAIN_CHILD").is_none() {
        return;
    }
    let tiny = TinyConfig { embed: 128, ffn: 256, context: 128, ..TinyConfig::default() };
    let config = TrainableConfig { lora: Some(lora(&ALL, 4)), unfrozen_layers: vec![0] };
    let mut m = TrainableLm::tiny(&tiny, &config).unwrap();
    let mut rng = stream(9, Purpose::INIT, 0, 1);
    let p: Vec<f64> =
        m.params().iter().map(|&x| if x == 0.0 { (rng.random::<f64>() - 0.5) * 0.2 } else { x }).collect();
    m.set_params(&p).unwrap();
    let tok = m.tokenizer();
    let s: Vec<Sample> = (0..4)
        .map(|j| Sample {
            prompt: m.chat_prompt(&[Message::user(format!("question {j}: the cat in the hat"))]).unwrap(),
            completion: tok.encode(&"in the end the cat sat. ".repeat(2 + j)),
        })
        .collect();
    assert!(s.iter().map(|x| x.prompt.len() + x.completion.len() - 1).sum::<usize>() >= 256);
    let w: Vec<Vec<f64>> = (0..4).map(|j| vec![1.0 - j as f64 * 0.5, 0.25, 0.0]).collect();
    let out = m.channel_gradients(&request(&s, &w, Some(0.2), GradMethod::ChannelBatched)).unwrap();
    let prompts: Vec<Vec<u32>> = s.iter().map(|x| x.prompt.clone()).collect();
    let params = SamplingParams { temperature: 0.9, top_p: 0.95, max_new_tokens: 10, stop: vec![] };
    let mut rngs: Vec<_> = (0..16).map(|i| stream(8, Purpose::SAMPLE, 0, i)).collect();
    let gens = m.generate(&prompts, &params, &mut rngs).unwrap();
    let mut d = gristmill_core::digest::Digest::new();
    for g in &out.channels {
        d.f64s(g);
    }
    d.f64s(&out.kl.unwrap().grad).f64s(&out.logprobs.concat());
    for g in &gens {
        d.str(&g.text).f64s(&g.logprobs);
    }
    println!("DIGEST {}", d.hex());
}

#[test]
fn determinism_whatever_the_thread_count_and_instruction_set() {
    if std::env::var_os("GRISTMILL_LM_TRAIN_CHILD").is_some() {
        return;
    }
    let run = |threads: &str, kernel: &str| {
        common::child_digest(
            "child_train_digest",
            "GRISTMILL_LM_TRAIN_CHILD",
            &[("RAYON_NUM_THREADS", threads), ("GRISTMILL_LM_KERNEL", kernel)],
        )
    };
    let one = run("1", "auto");
    assert_eq!(one, run("2", "auto"), "1 vs 2 threads");
    assert_eq!(one, run("2", "portable"), "detected instruction set vs the portable kernels");
}
