//! # Training a language model with channel-split gradients
//!
//! [`TrainableLm`] is one engine that **samples and trains** a llama-family model: the GGUF
//! weights dequantized to f32 (with candle) and frozen, plus trainable LoRA adapters and/or
//! whole unfrozen layers. It gives
//!
//! - batched generation from keyed streams ([`TrainableLm::generate`]: temperature, top-p,
//!   max new tokens, stop strings, the model's chat template — the crate's tokenizer,
//!   template and sampler), returning tokens and per-token log-probs;
//! - teacher-forced log-probs ([`TrainableLm::sequence_logprobs`], [`TrainableLm::logprobs`])
//!   through the same forward code, so the sampler's and the learner's log-probs are **the
//!   same bits** (tested);
//! - per-channel gradients ([`TrainableLm::channel_gradients`]): for samples `j` with
//!   completions `y_j` and a weight matrix `W[j][c]` (per-sample, per-channel advantages),
//!   one gradient per channel `c`,
//!
//!   ```text
//!   g_c = Σ_j W[j][c] · n_j · Σ_t ∇ log π(y_{j,t} | x_j, y_{j,<t})
//!   ```
//!
//!   with `n_j = 1` ([`Normalization::Sequence`]: `Σ_t ∇log π(y_{j,t}|…) = ∇log π(y_j|x_j)`),
//!   `n_j = 1/|y_j|` ([`Normalization::TokenMean`], GRPO's per-sequence token mean) or
//!   `n_j = 1/Σ_j |y_j|` ([`Normalization::TokenBatch`], one mean over all tokens of the
//!   batch). Gradients are of the objective (ascent directions), as gristmill's split
//!   optimizer expects. Optionally a **KL channel** against the reference model (the model
//!   without adapters and with the original weights), with the k3 estimator GRPO uses:
//!
//!   ```text
//!   KL̂ = Σ_j n_j Σ_t (e^{ρ_{j,t}} − ρ_{j,t} − 1),   ρ_{j,t} = log π_ref(y_{j,t}|…) − log π(y_{j,t}|…)
//!   g_KL = ∇(−β·KL̂) = −β Σ_j n_j Σ_t (1 − e^{ρ_{j,t}}) ∇ log π(y_{j,t}|…)
//!   ```
//!
//!   Since every `g_c` is linear in its weights, `Σ_c g_c` is the gradient of the summed
//!   weights (up to f32 rounding; tested), a channel of zero weights gets an exactly zero
//!   gradient, and equal channels get equal bits.
//!
//! ## The parameter vector
//!
//! [`TrainableLm::params`] is one flat `Vec<f64>` in the order of [`TrainableLm::layout`]:
//! layers in increasing order; within a layer, if unfrozen, `attn_norm`, `attn_q`, `attn_k`,
//! `attn_v`, `attn_output`, `ffn_norm`, `ffn_gate`, `ffn_up`, `ffn_down` (each row-major
//! `out × in`, as in the GGUF file), then the LoRA adapters of that layer in projection order
//! (q, k, v, o, gate, up, down), each `A` (`r × in`) then `B` (`out × r`). The engine keeps
//! these **master values in f64** — the split optimizer (`gristmill-learn`) works on
//! `&[Vec<f64>]` and sums per-cell steps in f64, and a run's state must be exactly what the
//! trainer holds — and computes with their nearest f32 (the model runs in f32). Gradients are
//! computed in f32 and returned widened to f64.
//!
//! ## Cost of per-channel gradients
//!
//! One forward, one backward through the network for all policy-gradient channels together
//! (plus one for the KL channel, which weighs tokens differently), and per channel only the
//! thin parameter-gradient products (rank `r` for LoRA); see `backward` and BENCHMARKS.md.
//!
//! ## Determinism
//!
//! Every kernel computes an output element by a fixed sequence of operations that depends
//! only on that element's inputs (module `kernels`): no reduction is split across threads or
//! tiles, no operation depends on the batch composition. Same inputs ⇒ the same bits on any
//! number of threads (`RAYON_NUM_THREADS`), for any batching, on AVX-512, AVX2 or the portable
//! path (tests run children with 1 and 2 threads).
//!
//! ## candle for the weights, own kernels for the arithmetic
//!
//! candle reads the GGUF file and dequantizes every tensor to f32; the forward and backward
//! passes then run on this module's kernels (`kernels`: an AVX-512 matmul with a portable
//! twin, attention, norms, SwiGLU, RoPE, `exp`), not on candle's tensor ops, for three
//! measured reasons. (1) Bit-equal log-probs between a one-row decode step and a 512-row
//! teacher-forced pass need a matmul whose every output is independent of the row count;
//! candle's CPU matmul (the `gemm` crate) does not depend on the thread count, but takes a
//! different path for one row (GEMV) and picks its reduction blocking from the matrix shape:
//! with weights stored `out × in` and used as `x·Wᵀ` (as `candle-nn`'s `Linear`), every row
//! computed alone differs from the same row in a batch, by up to 3·10⁻⁴ relative
//! (`examples/candle-matmul-check.rs`; the digests on 1 and 2 threads match). (2) The
//! channel-batched backward (several per-token weightings propagated at once, channel weights
//! folded into the parameter-gradient products) is not expressible with a scalar-loss
//! autograd. (3) Speed: packed weights and fused row operations (BENCHMARKS.md). The existing
//! [`LocalModel`](crate::LocalModel) still runs on candle.
//!
//! ## Memory
//!
//! Every frozen weight is kept packed twice (for the forward and the backward products), so
//! SmolLM2-135M holds ~1.19 GB after loading; a training step of 8 × 64 tokens with LoRA adds
//! ~0.5 GB of activations (BENCHMARKS.md). The first load sets glibc's `M_TRIM_THRESHOLD` and
//! `M_MMAP_THRESHOLD` (process-wide) so that freed activations stay in the allocator instead of
//! being returned to the kernel and faulted in again at every step.
//!
//! ## A tiny model for tests
//!
//! [`TrainableLm::tiny`] builds a random llama-architecture model in code with a byte-level
//! vocabulary (through the same [`Tokenizer`] and ChatML template), so the
//! whole mechanism is tested in seconds without the GGUF.

mod backward;
mod error;
mod forward;
pub(crate) mod kernels;
mod tiny;
mod weights;

use std::path::{Path, PathBuf};

use gristmill_core::rng::KeyedRng;
use rayon::prelude::*;

pub use error::TrainError;
pub use tiny::TinyConfig;
pub use weights::{LoraConfig, ModelShape, ParamBlock, Target, TrainableConfig};

use backward::Plan;
use forward::{Keep, KvSeq, Net, Packed};
use weights::{Base, State};

use crate::local::{read_text_side, TemplateChoice, TextSide};
use crate::model::read_gguf;
use crate::sample::{find_stop, log_normalizer, sample_token, Finish, Generation, SamplingParams};
use crate::template::{ChatTemplate, Message};
use crate::tokenizer::Tokenizer;

/// Scored rows per chunk of the output head (bounds the logits buffer: 128 × vocab f32).
const HEAD_CHUNK: usize = 128;

/// A training step allocates and frees some hundreds of MB of activations. glibc returns
/// freed memory at the top of the heap to the kernel beyond `M_TRIM_THRESHOLD` and serves
/// large blocks with fresh `mmap`s, so every step would fault in and zero those pages again
/// (13% of a step, measured with perf). Raising both thresholds (process-wide, once) keeps the
/// memory in the allocator: the process holds on to its peak step memory instead.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; 32 MiB is glibc's maximum
            // mmap threshold on 64-bit targets.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            }
        });
    }
}

/// A prompt and a completion, as token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Prompt tokens (template included).
    pub prompt: Vec<u32>,
    /// Completion tokens (as generated, end-of-turn token included if there was one).
    pub completion: Vec<u32>,
}

/// How a sample's token log-prob gradients are summed (see the module doc for `n_j`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Normalization {
    /// `n_j = 1`: the gradient of the sequence log-prob.
    #[default]
    Sequence,
    /// `n_j = 1/|y_j|`: the mean over the sample's tokens.
    TokenMean,
    /// `n_j = 1/Σ_j |y_j|`: one mean over all tokens of the batch.
    TokenBatch,
}

/// How per-channel gradients are computed (same numbers up to f32 rounding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GradMethod {
    /// One backward for all policy-gradient channels (and one for KL); per-channel weights
    /// folded into the parameter-gradient products.
    #[default]
    ChannelBatched,
    /// One backward per channel (the plain way: for measurement and as a test oracle).
    BackwardPerChannel,
}

/// A per-channel gradient request.
#[derive(Debug, Clone, Copy)]
pub struct GradRequest<'a> {
    /// The samples `j`.
    pub samples: &'a [Sample],
    /// `weights[j][c]`: sample `j`'s weight (advantage) in channel `c`; every row the same
    /// length `C ≥ 1`.
    pub weights: &'a [Vec<f64>],
    /// How token gradients are summed.
    pub normalization: Normalization,
    /// `Some(β)`: add the KL-to-reference channel, gradient of `−β·KL̂`.
    pub kl_coef: Option<f64>,
    /// How the channels are computed.
    pub method: GradMethod,
}

/// The KL-to-reference channel.
#[derive(Debug, Clone, PartialEq)]
pub struct KlChannel {
    /// `β`.
    pub coef: f64,
    /// The k3 estimate `KL̂` (module doc), normalised like the other channels.
    pub value: f64,
    /// `∇(−β·KL̂)`, in the parameter layout.
    pub grad: Vec<f64>,
    /// The reference model's token log-probs.
    pub ref_logprobs: Vec<Vec<f64>>,
}

/// Per-channel gradients and what the forward pass computed on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelGradients {
    /// One gradient per channel `c` (in the parameter layout).
    pub channels: Vec<Vec<f64>>,
    /// The KL channel, if asked for.
    pub kl: Option<KlChannel>,
    /// The policy's token log-probs `log π(y_{j,t}|…)` of every sample.
    pub logprobs: Vec<Vec<f64>>,
}

/// A trainable llama-family language model: frozen f32 base weights, LoRA adapters and/or
/// unfrozen layers, a tokenizer and a chat template. See the [module doc](self).
pub struct TrainableLm {
    path: Option<PathBuf>,
    base: Base,
    state: State,
    text: TextSide,
}

impl std::fmt::Debug for TrainableLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainableLm")
            .field("path", &self.path)
            .field("shape", &self.base.shape)
            .field("params", &self.state.master.len())
            .finish()
    }
}

/// A validated, packed batch of samples with the rows that score each completion token.
struct Scored {
    packed: Packed,
    /// Per scored token: its packed row (the row that predicts it), the token, its sample.
    rows: Vec<usize>,
    tokens: Vec<u32>,
    sample: Vec<usize>,
    /// `(first target index, count)` per sample.
    spans: Vec<(usize, usize)>,
}

impl TrainableLm {
    /// Loads a llama GGUF model dequantized to f32, with the trainable parts of `config`.
    ///
    /// # Errors
    /// [`TrainError::Load`] for the file (missing, corrupt, unsupported), and the
    /// configuration errors of [`TrainableConfig`] (unknown LoRA target, layer out of range…).
    pub fn load(path: impl AsRef<Path>, config: &TrainableConfig) -> Result<TrainableLm, TrainError> {
        tune_allocator();
        let path = path.as_ref();
        let (content, mut reader) = read_gguf(path)?;
        let text = read_text_side(path, &content, TemplateChoice::Auto)?;
        let base = Base::load(path, &content, &mut reader)?;
        if base.shape.vocab != text.tokenizer.vocab_size() {
            return Err(crate::model::corrupt(
                path,
                format!(
                    "the output matrix has {} rows but the vocabulary {} tokens",
                    base.shape.vocab,
                    text.tokenizer.vocab_size()
                ),
            )
            .into());
        }
        let state = State::new(&base, config)?;
        Ok(TrainableLm { path: Some(path.to_path_buf()), base, state, text })
    }

    /// A tiny randomly initialised llama model with a byte-level vocabulary built in code
    /// (for tests: no file needed).
    ///
    /// # Errors
    /// The configuration errors of [`TrainableConfig`].
    pub fn tiny(tiny: &TinyConfig, config: &TrainableConfig) -> Result<TrainableLm, TrainError> {
        tune_allocator();
        let (text, shape) = tiny.build()?;
        let base = Base::random(shape, tiny.seed);
        let state = State::new(&base, config)?;
        Ok(TrainableLm { path: None, base, state, text })
    }

    /// The model's shape.
    pub fn shape(&self) -> &ModelShape {
        &self.base.shape
    }

    /// The model file, if loaded from one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.text.tokenizer
    }

    /// The chat template.
    pub fn template(&self) -> &ChatTemplate {
        &self.text.template
    }

    /// The end-of-text token, if the model names one.
    pub fn eos(&self) -> Option<u32> {
        self.text.eos
    }

    /// The prompt tokens for a conversation, ending where the assistant's reply begins.
    ///
    /// # Errors
    /// [`TrainError::Request`] if the vocabulary lacks a token the template needs.
    pub fn chat_prompt(&self, messages: &[Message]) -> Result<Vec<u32>, TrainError> {
        self.text
            .template
            .render(&self.text.tokenizer, messages, self.text.bos)
            .map_err(|why| TrainError::Request(format!("chat template: {why}")))
    }

    /// Raw text as prompt tokens (with the beginning-of-text token if the model wants one).
    pub fn text_prompt(&self, text: &str) -> Vec<u32> {
        let mut out: Vec<u32> = self.text.bos.into_iter().collect();
        out.extend(self.text.tokenizer.encode(text));
        out
    }

    /// The blocks of the flat parameter vector, in order.
    pub fn layout(&self) -> &[ParamBlock] {
        &self.state.layout
    }

    /// Number of trainable parameters.
    pub fn num_params(&self) -> usize {
        self.state.master.len()
    }

    /// The trainable parameters (master copy, f64), in [`layout`](Self::layout) order.
    pub fn params(&self) -> Vec<f64> {
        self.state.master.clone()
    }

    /// Sets the trainable parameters; the model computes with their nearest f32.
    ///
    /// # Errors
    /// [`TrainError::ParamLength`], [`TrainError::NonFiniteParam`] (naming the block); the
    /// model is unchanged on error.
    pub fn set_params(&mut self, params: &[f64]) -> Result<(), TrainError> {
        self.state.set(params)
    }

    /// `θ ← θ + step` (e.g. the sum of the split optimizer's per-cell steps).
    ///
    /// # Errors
    /// As [`set_params`](Self::set_params).
    pub fn add_to_params(&mut self, step: &[f64]) -> Result<(), TrainError> {
        if step.len() != self.state.master.len() {
            return Err(TrainError::ParamLength { expected: self.state.master.len(), got: step.len() });
        }
        let next: Vec<f64> = self.state.master.iter().zip(step).map(|(a, b)| a + b).collect();
        self.state.set(&next)
    }

    fn policy(&self) -> Net<'_> {
        Net { base: &self.base, state: Some(&self.state) }
    }

    fn reference(&self) -> Net<'_> {
        Net { base: &self.base, state: None }
    }

    fn check_tokens(&self, sample: usize, tokens: &[u32]) -> Result<(), TrainError> {
        let vocab = self.base.shape.vocab;
        match tokens.iter().find(|&&t| t as usize >= vocab) {
            Some(&token) => Err(TrainError::TokenOutOfVocab { sample, token, vocab }),
            None => Ok(()),
        }
    }

    fn score_batch(&self, samples: &[Sample]) -> Result<Scored, TrainError> {
        let context = self.base.shape.context;
        let mut packed = Packed::default();
        let (mut rows, mut tokens, mut sample, mut spans) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (j, s) in samples.iter().enumerate() {
            if s.prompt.is_empty() {
                return Err(TrainError::EmptyPrompt { sample: j });
            }
            if s.completion.is_empty() {
                return Err(TrainError::EmptyCompletion { sample: j });
            }
            self.check_tokens(j, &s.prompt)?;
            self.check_tokens(j, &s.completion)?;
            let total = s.prompt.len() + s.completion.len();
            if total > context {
                return Err(TrainError::TooLong { sample: j, tokens: total, context });
            }
            let start = packed.rows();
            let n = s.completion.len();
            packed.push(s.prompt.iter().chain(&s.completion[..n - 1]).copied());
            spans.push((rows.len(), n));
            for (t, &tok) in s.completion.iter().enumerate() {
                rows.push(start + s.prompt.len() - 1 + t);
                tokens.push(tok);
                sample.push(j);
            }
        }
        Ok(Scored { packed, rows, tokens, sample, spans })
    }

    /// Log-probs of the scored tokens from the last hidden states; with `backward`, also the
    /// gradient of each token's log-prob with respect to its row's last hidden state.
    fn head(
        &self,
        net: Net<'_>,
        hidden: &[f32],
        sc: &Scored,
        backward: bool,
    ) -> Result<(Vec<f64>, Vec<f32>), TrainError> {
        let d = self.base.shape.embed;
        let v = self.base.shape.vocab;
        let n = sc.rows.len();
        let mut lps = vec![0f64; n];
        let mut dx_unit = if backward { vec![0f32; n * d] } else { Vec::new() };
        for c0 in (0..n).step_by(HEAD_CHUNK) {
            let c1 = (c0 + HEAD_CHUNK).min(n);
            let mut h = Vec::with_capacity((c1 - c0) * d);
            for &row in &sc.rows[c0..c1] {
                h.extend_from_slice(&hidden[row * d..(row + 1) * d]);
            }
            let (mut logits, _, r) = net.logits(&h);
            let results: Vec<Option<f64>> = logits
                .par_chunks_mut(v)
                .zip(&sc.tokens[c0..c1])
                .map(|(row, &tok)| {
                    let lse = log_normalizer(row)?;
                    let lp = row[tok as usize] as f64 - lse;
                    if backward {
                        kernels::softmax_delta(row, lse, tok as usize);
                    }
                    Some(lp)
                })
                .collect();
            for (i, res) in results.into_iter().enumerate() {
                lps[c0 + i] = res.ok_or(TrainError::NonFiniteLogits { sample: sc.sample[c0 + i] })?;
            }
            if backward {
                let rows = c1 - c0;
                let mut dhn = vec![0f32; rows * d];
                self.base.head.backward(&logits, rows, &mut dhn, false);
                let out = &mut dx_unit[c0 * d..c1 * d];
                forward::par_rows(out, d, |r0, chunk| {
                    let r1 = r0 + chunk.len() / d;
                    kernels::rms_norm_backward(
                        &dhn[r0 * d..r1 * d],
                        &h[r0 * d..r1 * d],
                        &r[r0..r1],
                        &self.base.norm,
                        chunk,
                    );
                });
            }
        }
        Ok((lps, dx_unit))
    }

    fn split(sc: &Scored, flat: &[f64]) -> Vec<Vec<f64>> {
        sc.spans.iter().map(|&(s, n)| flat[s..s + n].to_vec()).collect()
    }

    fn logprobs_with(&self, net: Net<'_>, samples: &[Sample]) -> Result<Vec<Vec<f64>>, TrainError> {
        let sc = self.score_batch(samples)?;
        let (hidden, _) = net.forward_packed(&sc.packed, Keep::Nothing);
        let (lps, _) = self.head(net, &hidden, &sc, false)?;
        Ok(Self::split(&sc, &lps))
    }

    /// Teacher-forced token log-probs `log π(y_t | x, y_<t)` of each sample's completion,
    /// computed as one packed batch (each sample's numbers do not depend on the others).
    ///
    /// # Errors
    /// [`TrainError::EmptyPrompt`], [`TrainError::EmptyCompletion`], [`TrainError::TooLong`],
    /// [`TrainError::TokenOutOfVocab`], [`TrainError::NonFiniteLogits`] — naming the sample.
    pub fn logprobs(&self, samples: &[Sample]) -> Result<Vec<Vec<f64>>, TrainError> {
        self.logprobs_with(self.policy(), samples)
    }

    /// The same under the reference model (no adapters, original weights).
    ///
    /// # Errors
    /// As [`logprobs`](Self::logprobs).
    pub fn reference_logprobs(&self, samples: &[Sample]) -> Result<Vec<Vec<f64>>, TrainError> {
        self.logprobs_with(self.reference(), samples)
    }

    /// Token log-probs of one completion after one prompt.
    ///
    /// # Errors
    /// As [`logprobs`](Self::logprobs).
    pub fn sequence_logprobs(&self, prompt: &[u32], completion: &[u32]) -> Result<Vec<f64>, TrainError> {
        let s = Sample { prompt: prompt.to_vec(), completion: completion.to_vec() };
        Ok(self.logprobs(std::slice::from_ref(&s))?.remove(0))
    }

    /// Samples `rngs.len() / prompts.len()` responses to each prompt (sample `i` answers
    /// prompt `i / group` and draws from `rngs[i]` only), all decoded as one batch: the prompts
    /// are prefilled together, then every live sample advances one token per step. Log-probs
    /// are the policy's own (temperature 1, no top-p), equal to [`logprobs`](Self::logprobs)
    /// of the same tokens bit for bit.
    ///
    /// # Errors
    /// [`TrainError::Request`] for bad parameters or a stream count that is not a multiple of
    /// the prompt count; [`TrainError::EmptyPrompt`], [`TrainError::TooLong`],
    /// [`TrainError::TokenOutOfVocab`]; [`TrainError::NonFiniteLogits`].
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        params: &SamplingParams,
        rngs: &mut [KeyedRng],
    ) -> Result<Vec<Generation>, TrainError> {
        params.validate().map_err(|e| TrainError::Request(e.to_string()))?;
        if prompts.is_empty() {
            return if rngs.is_empty() {
                Ok(Vec::new())
            } else {
                Err(TrainError::Request(format!("{} streams for no prompt", rngs.len())))
            };
        }
        if rngs.is_empty() || !rngs.len().is_multiple_of(prompts.len()) {
            return Err(TrainError::Request(format!(
                "{} streams for {} prompts: need a positive multiple (one stream per sample)",
                rngs.len(),
                prompts.len()
            )));
        }
        let group = rngs.len() / prompts.len();
        let context = self.base.shape.context;
        let max_new = params.max_new_tokens as usize;
        for (i, p) in prompts.iter().enumerate() {
            if p.is_empty() {
                return Err(TrainError::EmptyPrompt { sample: i });
            }
            self.check_tokens(i, p)?;
            if p.len() + max_new > context {
                return Err(TrainError::TooLong { sample: i, tokens: p.len() + max_new, context });
            }
        }
        let net = self.policy();
        let shape = &self.base.shape;
        let (d, kvd, v) = (shape.embed, shape.kv_dim(), shape.vocab);
        let mut packed = Packed::default();
        for p in prompts {
            packed.push(p.iter().copied());
        }
        let (x, acts) = net.forward_packed(&packed, Keep::Kv);
        let mut last = Vec::with_capacity(prompts.len() * d);
        for s in &packed.seqs {
            let row = s.start + s.len - 1;
            last.extend_from_slice(&x[row * d..(row + 1) * d]);
        }
        drop(x);
        let (first, _, _) = net.logits(&last);
        let n = rngs.len();
        let mut caches: Vec<KvSeq> = (0..n)
            .map(|i| {
                let s = packed.seqs[i / group];
                KvSeq::from_rows(&acts, s.start, s.len, kvd, s.len + max_new)
            })
            .collect();
        drop(acts);
        let mut rows: Vec<Vec<f32>> =
            (0..n).map(|i| first[(i / group) * v..(i / group + 1) * v].to_vec()).collect();
        let mut active: Vec<usize> = (0..n).collect();
        let mut out: Vec<Generation> = (0..n)
            .map(|i| Generation {
                text: String::new(),
                token_ids: Vec::new(),
                tokens: Vec::new(),
                logprobs: Vec::new(),
                finish: Finish::Length,
                prompt_tokens: Some(prompts[i / group].len()),
            })
            .collect();
        let tok = &self.text.tokenizer;
        loop {
            // Draw every live sample's next token (each from its own stream), in parallel.
            let mut streams: Vec<(usize, &mut KeyedRng)> =
                rngs.iter_mut().enumerate().filter(|(i, _)| active.binary_search(i).is_ok()).collect();
            let draws: Vec<Option<(u32, f64)>> = streams
                .par_iter_mut()
                .zip(rows.par_iter())
                .map(|((_, rng), row)| sample_token(row, params, rng))
                .collect();
            drop(streams);
            let mut still = Vec::with_capacity(active.len());
            let mut next = Vec::with_capacity(active.len());
            let mut keep = Vec::with_capacity(active.len());
            for (row, &i) in active.iter().enumerate() {
                let (t, lp) = draws[row].ok_or(TrainError::NonFiniteLogits { sample: i })?;
                let g = &mut out[i];
                g.token_ids.push(t);
                g.tokens.push(tok.decode(&[t], false));
                g.logprobs.push(lp);
                let end_of_turn = Some(t) == self.text.eos || tok.is_control(t);
                let text = tok.decode(&g.token_ids, true);
                if let Some(pos) = find_stop(&text, &params.stop) {
                    g.text = text[..pos].to_string();
                    g.finish = Finish::Stop;
                } else if end_of_turn {
                    g.text = text;
                    g.finish = Finish::Stop;
                } else if g.token_ids.len() >= max_new {
                    g.text = text;
                    g.finish = Finish::Length;
                } else {
                    still.push(i);
                    next.push(t);
                    keep.push(true);
                    continue;
                }
                keep.push(false);
            }
            if still.is_empty() {
                break;
            }
            let mut flags = keep.iter();
            caches.retain(|_| *flags.next().unwrap_or(&false));
            let hidden = net.forward_step(&next, &mut caches);
            let (logits, _, _) = net.logits(&hidden);
            rows = logits.chunks_exact(v).map(|r| r.to_vec()).collect();
            active = still;
        }
        Ok(out)
    }

    /// One gradient per channel (and optionally the KL channel); see the module doc for the
    /// formulas and [`GradMethod`] for how.
    ///
    /// # Errors
    /// The sample errors of [`logprobs`](Self::logprobs); [`TrainError::WeightShape`] when
    /// `weights` does not have one row of `C ≥ 1` entries per sample;
    /// [`TrainError::NonFiniteWeight`]; [`TrainError::Request`] for a non-finite `β`.
    pub fn channel_gradients(&self, req: &GradRequest<'_>) -> Result<ChannelGradients, TrainError> {
        let samples = req.samples;
        if req.weights.len() != samples.len() {
            return Err(TrainError::WeightShape(format!(
                "{} rows for {} samples (need one row per sample)",
                req.weights.len(),
                samples.len()
            )));
        }
        let c = req.weights.first().map_or(0, Vec::len);
        if c == 0 {
            return Err(TrainError::WeightShape("no channels (rows are empty)".into()));
        }
        for (j, row) in req.weights.iter().enumerate() {
            if row.len() != c {
                return Err(TrainError::WeightShape(format!(
                    "row {j} has {} channels, row 0 has {c}",
                    row.len()
                )));
            }
            if let Some((ch, &value)) = row.iter().enumerate().find(|(_, w)| !w.is_finite()) {
                return Err(TrainError::NonFiniteWeight { sample: j, channel: ch, value });
            }
        }
        if let Some(beta) = req.kl_coef {
            if !beta.is_finite() {
                return Err(TrainError::Request(format!("KL coefficient {beta} must be finite")));
            }
        }
        let sc = self.score_batch(samples)?;
        let total_tokens: usize = samples.iter().map(|s| s.completion.len()).sum();
        let norm: Vec<f64> = samples
            .iter()
            .map(|s| match req.normalization {
                Normalization::Sequence => 1.0,
                Normalization::TokenMean => 1.0 / s.completion.len() as f64,
                Normalization::TokenBatch => 1.0 / total_tokens as f64,
            })
            .collect();
        let ref_lps = match req.kl_coef {
            Some(_) => {
                let net = self.reference();
                let (hidden, _) = net.forward_packed(&sc.packed, Keep::Nothing);
                Some(self.head(net, &hidden, &sc, false)?.0)
            }
            None => None,
        };
        let net = self.policy();
        let profile = kernels::profiling();
        let take = || {
            use std::sync::atomic::Ordering::Relaxed;
            (
                kernels::MATMUL_NS.swap(0, Relaxed) as f64 * 1e-9,
                kernels::MATMUL_FLOP.swap(0, Relaxed) as f64 * 1e-9,
            )
        };
        take();
        let t0 = std::time::Instant::now();
        let (hidden, acts) = net.forward_packed(&sc.packed, Keep::All);
        let t1 = std::time::Instant::now();
        let mm_fwd = take();
        let (lps, dx_unit) = self.head(net, &hidden, &sc, true)?;
        let t2 = std::time::Instant::now();
        let mm_head = take();
        drop(hidden);
        let nt = sc.rows.len();
        let m = sc.packed.rows();
        let row_w = |f: &dyn Fn(usize) -> f64| -> Vec<f32> {
            sc.packed.row_seq.iter().map(|&j| f(j) as f32).collect()
        };
        let mut basis_u: Vec<Vec<f32>> = Vec::new();
        let mut channels: Vec<(usize, Vec<f32>)> = Vec::new();
        match req.method {
            GradMethod::ChannelBatched => {
                basis_u.push(vec![1.0; nt]);
                for ch in 0..c {
                    channels.push((0, row_w(&|j| norm[j] * req.weights[j][ch])));
                }
            }
            GradMethod::BackwardPerChannel => {
                for ch in 0..c {
                    basis_u.push(sc.sample.iter().map(|&j| (norm[j] * req.weights[j][ch]) as f32).collect());
                    channels.push((ch, vec![1.0; m]));
                }
            }
        }
        let mut kl_value = 0.0;
        if let (Some(beta), Some(rl)) = (req.kl_coef, &ref_lps) {
            let mut u = Vec::with_capacity(nt);
            for ti in 0..nt {
                let rho = rl[ti] - lps[ti];
                let j = sc.sample[ti];
                kl_value += norm[j] * (rho.exp() - rho - 1.0);
                u.push(1.0 - rho.exp());
            }
            let b = basis_u.len();
            match req.method {
                GradMethod::ChannelBatched => {
                    basis_u.push(u.iter().map(|&x| x as f32).collect());
                    channels.push((b, row_w(&|j| -beta * norm[j])));
                }
                GradMethod::BackwardPerChannel => {
                    basis_u.push((0..nt).map(|ti| (-beta * norm[sc.sample[ti]] * u[ti]) as f32).collect());
                    channels.push((b, vec![1.0; m]));
                }
            }
        }
        let plan = Plan { basis_u, channels };
        let grads = net.backward(&sc.packed, acts, &dx_unit, &sc.rows, &plan, self.num_params());
        if profile {
            let mm_bwd = take();
            eprintln!(
                "profile: forward {:.3}s (matmul {:.3}s, {:.0} GFLOP), head {:.3}s (matmul {:.3}s, {:.0} GFLOP), \
                 backward {:.3}s (matmul {:.3}s, {:.0} GFLOP)",
                (t1 - t0).as_secs_f64(),
                mm_fwd.0,
                mm_fwd.1,
                (t2 - t1).as_secs_f64(),
                mm_head.0,
                mm_head.1,
                t2.elapsed().as_secs_f64(),
                mm_bwd.0,
                mm_bwd.1
            );
        }
        let mut grads: Vec<Vec<f64>> =
            grads.into_iter().map(|g| g.into_iter().map(f64::from).collect()).collect();
        let kl = match (req.kl_coef, ref_lps) {
            (Some(coef), Some(rl)) => Some(KlChannel {
                coef,
                value: kl_value,
                grad: grads.pop().unwrap_or_default(),
                ref_logprobs: Self::split(&sc, &rl),
            }),
            _ => None,
        };
        Ok(ChannelGradients { channels: grads, kl, logprobs: Self::split(&sc, &lps) })
    }
}

/// Raw GFLOPS of the engine's matmul on `rows × k` by `k × n` (a packed weight, as in the
/// forward pass, and row-major, as in the backward pass), best of `reps`; for benchmarks.
#[doc(hidden)]
pub fn bench_matmul(rows: usize, k: usize, n: usize, reps: usize) -> (f64, f64) {
    let a: Vec<f32> = (0..rows * k).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5).collect();
    let w: Vec<f32> = (0..n * k).map(|i| ((i * 104_729) % 1000) as f32 * 1e-3 - 0.5).collect();
    let packed = kernels::pack_transposed(&w, n, k);
    let mut c = vec![0f32; rows * n];
    let flops = 2.0 * (rows * k * n) as f64;
    let mut best = |b: kernels::Panels<'_>| {
        let mut t = f64::INFINITY;
        for _ in 0..reps {
            let s = std::time::Instant::now();
            kernels::matmul(&a, k, rows, b, &mut c, n, false);
            t = t.min(s.elapsed().as_secs_f64());
        }
        flops / t / 1e9
    };
    (best(kernels::Panels::packed(&packed, k, n)), best(kernels::Panels::row_major(&w, k, n)))
}
