//! A llama-family decoder over quantized GGUF weights, on candle's CPU backend.
//!
//! The forward pass is written here rather than taken from `candle-transformers`' quantized
//! llama because gristmill needs two things that model hides: logits at **every** position
//! (to score a fixed continuation in one pass) and a key/value cache it can **copy and
//! select rows of** (prefill a prompt once, then decode `G` samples of it as one batch, and
//! drop finished samples from the batch). The arithmetic is the same: RMS norm, grouped-query
//! attention with interleaved ("normal") rotary embeddings, SwiGLU feed-forward, quantized
//! matmuls.
//!
//! Every output element of candle's quantized CPU matmul is one dot product computed by one
//! worker, and its float matmuls split work by output blocks, so results do not depend on the
//! number of threads (checked by the `determinism` test, which runs with 1 and 2 threads).

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Tensor, D};

use crate::error::LmError;

/// Hyper-parameters read from `llama.*` metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Layers.
    pub layers: usize,
    /// Embedding width.
    pub embed: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention).
    pub kv_heads: usize,
    /// Context length the model was trained for.
    pub context: usize,
    /// RMS norm epsilon.
    pub rms_eps: f64,
    /// RoPE base frequency.
    pub rope_base: f32,
    /// Vocabulary size (rows of the output matrix).
    pub vocab: usize,
}

struct Layer {
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    wo: QMatMul,
    attn_norm: Tensor,
    ffn_norm: Tensor,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
}

/// The weights of a loaded model. Immutable and shareable across threads; per-sequence state
/// lives in a [`KvCache`].
pub struct Weights {
    /// Hyper-parameters.
    pub config: Config,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
    head_dim: usize,
    device: Device,
}

/// The keys and values of every layer for a batch of sequences of equal length.
#[derive(Clone, Default)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    /// Positions cached.
    pub len: usize,
    /// Sequences in the batch.
    pub batch: usize,
}

impl KvCache {
    /// The cache with every sequence repeated `n` times (a prefilled prompt, forked into `n`
    /// samples). The cache must hold one sequence.
    pub fn repeat(&self, n: usize) -> candle_core::Result<KvCache> {
        if n == self.batch {
            return Ok(self.clone());
        }
        let layers = self
            .layers
            .iter()
            .map(|(k, v)| Ok((k.repeat((n, 1, 1, 1))?, v.repeat((n, 1, 1, 1))?)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(KvCache { layers, len: self.len, batch: n })
    }

    /// Keeps only the sequences at `rows` (in that order).
    pub fn select(&self, rows: &[u32]) -> candle_core::Result<KvCache> {
        if rows.len() == self.batch && rows.iter().enumerate().all(|(i, r)| *r as usize == i) {
            return Ok(self.clone());
        }
        let Some((k0, _)) = self.layers.first() else {
            return Ok(KvCache { layers: Vec::new(), len: self.len, batch: rows.len() });
        };
        let idx = Tensor::new(rows, k0.device())?;
        let layers = self
            .layers
            .iter()
            .map(|(k, v)| Ok((k.index_select(&idx, 0)?, v.index_select(&idx, 0)?)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(KvCache { layers, len: self.len, batch: rows.len() })
    }
}

/// Reads a GGUF file's header, naming the file in every error.
pub(crate) fn read_gguf(path: &Path) -> Result<(gguf_file::Content, BufReader<File>), LmError> {
    let file = File::open(path).map_err(|source| LmError::Open { path: path.to_path_buf(), source })?;
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 4];
    reader.read_exact(&mut magic).map_err(|e| corrupt(path, format!("cannot read the header: {e}")))?;
    if &magic != b"GGUF" {
        return Err(corrupt(path, format!("not a GGUF file (starts with {magic:02x?}, expected `GGUF`)")));
    }
    reader.rewind().map_err(|e| corrupt(path, e.to_string()))?;
    let content = gguf_file::Content::read(&mut reader).map_err(|e| corrupt(path, e.to_string()))?;
    Ok((content, reader))
}

pub(crate) fn corrupt(path: &Path, why: String) -> LmError {
    LmError::Corrupt { path: path.to_path_buf(), why }
}

/// Metadata accessors that name the file and key in errors.
pub(crate) struct Meta<'a> {
    pub(crate) content: &'a gguf_file::Content,
    pub(crate) path: &'a Path,
}

impl Meta<'_> {
    pub(crate) fn get(&self, key: &str) -> Option<&gguf_file::Value> {
        self.content.metadata.get(key)
    }
    fn missing(&self, key: &str, why: &str) -> LmError {
        corrupt(self.path, format!("metadata `{key}` {why}"))
    }
    pub(crate) fn u32(&self, key: &str) -> Result<u32, LmError> {
        let v = self.get(key).ok_or_else(|| self.missing(key, "is missing"))?;
        match v {
            gguf_file::Value::U32(x) => Ok(*x),
            gguf_file::Value::I32(x) if *x >= 0 => Ok(*x as u32),
            gguf_file::Value::U64(x) if *x <= u32::MAX as u64 => Ok(*x as u32),
            gguf_file::Value::I64(x) if *x >= 0 && *x <= u32::MAX as i64 => Ok(*x as u32),
            gguf_file::Value::U16(x) => Ok(*x as u32),
            gguf_file::Value::U8(x) => Ok(*x as u32),
            _ => Err(self.missing(key, "is not an unsigned integer")),
        }
    }
    pub(crate) fn f32(&self, key: &str) -> Result<f32, LmError> {
        match self.get(key) {
            Some(gguf_file::Value::F32(x)) => Ok(*x),
            Some(gguf_file::Value::F64(x)) => Ok(*x as f32),
            Some(_) => Err(self.missing(key, "is not a float")),
            None => Err(self.missing(key, "is missing")),
        }
    }
    pub(crate) fn string(&self, key: &str) -> Result<&str, LmError> {
        match self.get(key) {
            Some(gguf_file::Value::String(s)) => Ok(s),
            Some(_) => Err(self.missing(key, "is not a string")),
            None => Err(self.missing(key, "is missing")),
        }
    }
    pub(crate) fn strings(&self, key: &str) -> Result<Vec<String>, LmError> {
        match self.get(key) {
            Some(gguf_file::Value::Array(vs)) => vs
                .iter()
                .map(|v| match v {
                    gguf_file::Value::String(s) => Ok(s.clone()),
                    _ => Err(self.missing(key, "holds a non-string")),
                })
                .collect(),
            Some(_) => Err(self.missing(key, "is not an array")),
            None => Err(self.missing(key, "is missing")),
        }
    }
    pub(crate) fn ints(&self, key: &str) -> Result<Vec<i32>, LmError> {
        match self.get(key) {
            Some(gguf_file::Value::Array(vs)) => {
                vs.iter().map(|v| v.to_i32().map_err(|_| self.missing(key, "holds a non-integer"))).collect()
            }
            Some(_) => Err(self.missing(key, "is not an array")),
            None => Ok(Vec::new()),
        }
    }
}

impl Weights {
    /// Loads the weights of a `llama` GGUF model.
    pub(crate) fn load(
        path: &Path,
        content: &gguf_file::Content,
        reader: &mut BufReader<File>,
    ) -> Result<Weights, LmError> {
        let meta = Meta { content, path };
        let arch = meta.string("general.architecture")?;
        if arch != "llama" {
            return Err(LmError::UnsupportedArchitecture {
                path: path.to_path_buf(),
                arch: arch.to_string(),
            });
        }
        if meta.get("llama.expert_count").and_then(|v| v.to_u32().ok()).unwrap_or(0) > 1 {
            return Err(LmError::UnsupportedArchitecture {
                path: path.to_path_buf(),
                arch: "llama (mixture of experts)".into(),
            });
        }
        let heads = meta.u32("llama.attention.head_count")? as usize;
        let embed = meta.u32("llama.embedding_length")? as usize;
        let kv_heads = meta.u32("llama.attention.head_count_kv").map(|x| x as usize).unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || !embed.is_multiple_of(heads) || !heads.is_multiple_of(kv_heads) {
            return Err(corrupt(
                path,
                format!(
                    "inconsistent attention shape: {embed} wide, {heads} heads, {kv_heads} key/value heads"
                ),
            ));
        }
        let head_dim = embed / heads;
        let rope_dim = meta.u32("llama.rope.dimension_count").map(|x| x as usize).unwrap_or(head_dim);
        if rope_dim != head_dim {
            return Err(LmError::UnsupportedArchitecture {
                path: path.to_path_buf(),
                arch: format!("llama with partial rotary embeddings ({rope_dim} of {head_dim} dims)"),
            });
        }
        let context = meta.u32("llama.context_length").map(|x| x as usize).unwrap_or(2048).clamp(16, 32768);
        let config = Config {
            layers: meta.u32("llama.block_count")? as usize,
            embed,
            heads,
            kv_heads,
            context,
            rms_eps: meta.f32("llama.attention.layer_norm_rms_epsilon").map(|x| x as f64).unwrap_or(1e-5),
            rope_base: meta.f32("llama.rope.freq_base").unwrap_or(10000.0),
            vocab: 0,
        };
        let device = Device::Cpu;
        let c = |e: candle_core::Error| corrupt(path, e.to_string());
        let mut tensor = |name: &str| -> Result<QTensor, LmError> {
            if !content.tensor_infos.contains_key(name) {
                return Err(corrupt(path, format!("tensor `{name}` is missing")));
            }
            content.tensor(reader, name, &device).map_err(|e| corrupt(path, format!("tensor `{name}`: {e}")))
        };
        let check = |t: &QTensor, name: &str, dims: &[usize]| -> Result<(), LmError> {
            if t.shape().dims() != dims {
                return Err(corrupt(
                    path,
                    format!("tensor `{name}` has shape {:?}, expected {dims:?}", t.shape().dims()),
                ));
            }
            Ok(())
        };
        let embed_q = tensor("token_embd.weight")?;
        let vocab = embed_q.shape().dims().first().copied().unwrap_or(0);
        check(&embed_q, "token_embd.weight", &[vocab, embed])?;
        let embed_t = embed_q.dequantize(&device).map_err(c)?;
        let norm = tensor("output_norm.weight")?.dequantize(&device).map_err(c)?;
        let output = match content.tensor_infos.contains_key("output.weight") {
            true => tensor("output.weight")?,
            false => embed_q,
        };
        check(&output, "output.weight", &[vocab, embed])?;
        let output = QMatMul::from_qtensor(output).map_err(c)?;
        let kv_width = kv_heads * head_dim;
        let mut layers = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let mut q = |name: &str, dims: &[usize]| -> Result<QMatMul, LmError> {
                let full = format!("blk.{i}.{name}.weight");
                let t = tensor(&full)?;
                check(&t, &full, dims)?;
                QMatMul::from_qtensor(t).map_err(c)
            };
            let ffn = content
                .tensor_infos
                .get(&format!("blk.{i}.ffn_up.weight"))
                .and_then(|t| t.shape.dims().first().copied())
                .unwrap_or(0);
            let layer = Layer {
                wq: q("attn_q", &[embed, embed])?,
                wk: q("attn_k", &[kv_width, embed])?,
                wv: q("attn_v", &[kv_width, embed])?,
                wo: q("attn_output", &[embed, embed])?,
                gate: q("ffn_gate", &[ffn, embed])?,
                up: q("ffn_up", &[ffn, embed])?,
                down: q("ffn_down", &[embed, ffn])?,
                attn_norm: tensor(&format!("blk.{i}.attn_norm.weight"))?.dequantize(&device).map_err(c)?,
                ffn_norm: tensor(&format!("blk.{i}.ffn_norm.weight"))?.dequantize(&device).map_err(c)?,
            };
            layers.push(layer);
        }
        let (cos, sin) = rope_tables(head_dim, config.rope_base, config.context, &device).map_err(c)?;
        Ok(Weights {
            config: Config { vocab, ..config },
            embed: embed_t,
            layers,
            norm,
            output,
            cos,
            sin,
            head_dim,
            device,
        })
    }

    /// Runs `tokens` (`batch × seq`, row-major) through the model, appending to `cache`.
    /// Returns logits `batch × seq × vocab` when `all_positions`, else `batch × vocab` for the
    /// last position.
    pub fn forward(
        &self,
        tokens: &[u32],
        batch: usize,
        cache: &mut KvCache,
        all_positions: bool,
    ) -> candle_core::Result<Tensor> {
        let seq = tokens.len() / batch.max(1);
        if batch == 0 || seq == 0 || seq * batch != tokens.len() {
            candle_core::bail!("forward: {} tokens do not form a {batch} × n batch", tokens.len());
        }
        if cache.len > 0 && cache.batch != batch {
            candle_core::bail!("forward: cache holds {} sequences, input {batch}", cache.batch);
        }
        let pos = cache.len;
        if pos + seq > self.config.context {
            candle_core::bail!(
                "sequence of {} tokens exceeds the context of {}",
                pos + seq,
                self.config.context
            );
        }
        let ids = Tensor::from_slice(tokens, (batch, seq), &self.device)?;
        let mut x =
            self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((batch, seq, self.config.embed))?;
        let mask = if seq > 1 {
            let m = candle_transformers::utils::build_causal_mask(seq, pos, &self.device)?;
            Some(m.broadcast_as((batch, self.config.heads, seq, pos + seq))?)
        } else {
            None
        };
        let neg_inf = Tensor::new(f32::NEG_INFINITY, &self.device)?;
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        let (hd, nh, nkv) = (self.head_dim, self.config.heads, self.config.kv_heads);
        let eps = self.config.rms_eps as f32;
        let mut new_layers = Vec::with_capacity(self.layers.len());
        for (li, layer) in self.layers.iter().enumerate() {
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, eps)?;
            let q = layer.wq.forward(&h)?.reshape((batch, seq, nh, hd))?.transpose(1, 2)?.contiguous()?;
            let k = layer.wk.forward(&h)?.reshape((batch, seq, nkv, hd))?.transpose(1, 2)?.contiguous()?;
            let v = layer.wv.forward(&h)?.reshape((batch, seq, nkv, hd))?.transpose(1, 2)?.contiguous()?;
            let q = candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?;
            let (k, v) = match cache.layers.get(li) {
                Some((kc, vc)) if pos > 0 => (Tensor::cat(&[kc, &k], 2)?, Tensor::cat(&[vc, &v], 2)?),
                _ => (k, v),
            };
            new_layers.push((k.clone(), v.clone()));
            let k = candle_transformers::utils::repeat_kv(k, nh / nkv)?;
            let v = candle_transformers::utils::repeat_kv(v, nh / nkv)?.contiguous()?;
            let att = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?;
            let att = match &mask {
                Some(m) => m.where_cond(&neg_inf.broadcast_as(att.shape())?, &att)?,
                None => att,
            };
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att.matmul(&v)?.transpose(1, 2)?.reshape((batch, seq, self.config.embed))?;
            x = (layer.wo.forward(&y)? + x)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, eps)?;
            let ff = (candle_nn::ops::silu(&layer.gate.forward(&h)?)? * layer.up.forward(&h)?)?;
            x = (layer.down.forward(&ff)? + x)?;
        }
        cache.layers = new_layers;
        cache.len = pos + seq;
        cache.batch = batch;
        let x = candle_nn::ops::rms_norm(&x, &self.norm, eps)?;
        if all_positions {
            self.output.forward(&x)
        } else {
            self.output.forward(&x.i((.., seq - 1, ..))?.contiguous()?)
        }
    }

    /// Logits as rows of `f32` (one row per sequence, or per position).
    pub fn rows(logits: &Tensor) -> candle_core::Result<Vec<Vec<f32>>> {
        let v = logits.dim(D::Minus1)?;
        logits.to_dtype(DType::F32)?.reshape(((), v))?.to_vec2()
    }
}

fn rope_tables(
    head_dim: usize,
    base: f32,
    context: usize,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let theta: Vec<f32> =
        (0..head_dim).step_by(2).map(|i| 1f32 / base.powf(i as f32 / head_dim as f32)).collect();
    let n = theta.len();
    let theta = Tensor::from_vec(theta, (1, n), device)?;
    let idx = Tensor::arange(0, context as u32, device)?.to_dtype(DType::F32)?.reshape((context, 1))?;
    let freqs = idx.matmul(&theta)?;
    Ok((freqs.cos()?, freqs.sin()?))
}
