//! Dense f32 weights (dequantized from GGUF, or a tiny random model), LoRA adapters, and the
//! flat parameter vector's layout.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use gristmill_core::rng::{stream, Purpose};
use rand::Rng;

use super::error::TrainError;
use super::kernels::{matmul, pack_rows, pack_transposed, Panels, NR};
use crate::error::LmError;
use crate::model::{corrupt, Meta};

/// The shape of a llama-family decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelShape {
    /// Decoder layers.
    pub layers: usize,
    /// Embedding width `D`.
    pub embed: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Feed-forward width.
    pub ffn: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Context window (positions).
    pub context: usize,
    /// RMS norm epsilon.
    pub rms_eps: f64,
    /// RoPE base frequency.
    pub rope_base: f64,
}

impl ModelShape {
    /// Width of the key and value projections.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}

/// A projection of a decoder layer, in the order used everywhere (parameter layout included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Query projection (`attn_q`, `q_proj`).
    Q,
    /// Key projection (`attn_k`, `k_proj`).
    K,
    /// Value projection (`attn_v`, `v_proj`).
    V,
    /// Attention output projection (`attn_output`, `o_proj`).
    O,
    /// Feed-forward gate (`ffn_gate`, `gate_proj`).
    Gate,
    /// Feed-forward up projection (`ffn_up`, `up_proj`).
    Up,
    /// Feed-forward down projection (`ffn_down`, `down_proj`).
    Down,
}

impl Target {
    /// All projections, in layout order.
    pub const ALL: [Target; 7] =
        [Target::Q, Target::K, Target::V, Target::O, Target::Gate, Target::Up, Target::Down];

    /// The short name (`q`, `k`, `v`, `o`, `gate`, `up`, `down`).
    pub fn name(self) -> &'static str {
        ["q", "k", "v", "o", "gate", "up", "down"][self as usize]
    }

    /// The GGUF tensor name stem (`attn_q`, …, `ffn_down`).
    pub fn gguf(self) -> &'static str {
        ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"][self as usize]
    }

    /// Parses a short name, a GGUF stem or a Hugging Face module name (`q_proj`).
    ///
    /// # Errors
    /// [`TrainError::UnknownTarget`] naming it and listing the valid names.
    pub fn parse(name: &str) -> Result<Target, TrainError> {
        let hf = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
        Target::ALL
            .into_iter()
            .find(|t| t.name() == name || t.gguf() == name || hf[*t as usize] == name)
            .ok_or_else(|| TrainError::UnknownTarget {
                target: name.to_string(),
                valid: Target::ALL
                    .iter()
                    .map(|t| format!("{} ({}, {})", t.name(), t.gguf(), hf[*t as usize]))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// (output, input) widths in a model of `shape`.
    pub(crate) fn dims(self, shape: &ModelShape) -> (usize, usize) {
        let (d, kv, f) = (shape.embed, shape.kv_dim(), shape.ffn);
        match self {
            Target::Q | Target::O => (d, d),
            Target::K | Target::V => (kv, d),
            Target::Gate | Target::Up => (f, d),
            Target::Down => (d, f),
        }
    }
}

/// A dense projection `y = x·Wᵀ`, `W` row-major `out × inp`, stored packed twice: `Wᵀ` for
/// the forward product and `W` for the backward one (so both stream contiguous panels).
/// The row-major `W` itself is kept only where rows are looked up (tied embeddings).
#[derive(Clone)]
pub(crate) struct Dense {
    pub(crate) out: usize,
    pub(crate) inp: usize,
    pub(crate) w: Vec<f32>,
    fwd: Vec<f32>,
    bwd: Vec<f32>,
}

impl Dense {
    pub(crate) fn new(out: usize, inp: usize, w: Vec<f32>) -> Dense {
        Dense::with_rows(out, inp, w, false)
    }

    /// `keep_rows`: keep the row-major `W` (for embedding lookups).
    pub(crate) fn with_rows(out: usize, inp: usize, w: Vec<f32>, keep_rows: bool) -> Dense {
        assert_eq!(w.len(), out * inp);
        let fwd = pack_transposed(&w, out, inp);
        let bwd = pack_rows(&w, out, inp);
        Dense { out, inp, w: if keep_rows { w } else { Vec::new() }, fwd, bwd }
    }

    /// `W` row-major (unpacked from the backward copy).
    pub(crate) fn rows(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.out * self.inp];
        for (p, panel) in self.bwd.chunks_exact(NR * self.out).enumerate() {
            let (c0, c1) = (p * NR, ((p + 1) * NR).min(self.inp));
            for r in 0..self.out {
                w[r * self.inp + c0..r * self.inp + c1].copy_from_slice(&panel[r * NR..r * NR + (c1 - c0)]);
            }
        }
        w
    }

    /// `y (+)= x·Wᵀ` for `rows` rows.
    pub(crate) fn forward(&self, x: &[f32], rows: usize, y: &mut [f32], accumulate: bool) {
        matmul(x, self.inp, rows, Panels::packed(&self.fwd, self.inp, self.out), y, self.out, accumulate)
    }

    /// `dx (+)= dy·W` for `rows` rows.
    pub(crate) fn backward(&self, dy: &[f32], rows: usize, dx: &mut [f32], accumulate: bool) {
        matmul(dy, self.out, rows, Panels::packed(&self.bwd, self.out, self.inp), dx, self.inp, accumulate)
    }
}

/// The weights of one decoder layer.
#[derive(Clone)]
pub(crate) struct LayerWeights {
    pub(crate) attn_norm: Vec<f32>,
    pub(crate) ffn_norm: Vec<f32>,
    /// Indexed by [`Target`].
    pub(crate) proj: [Dense; 7],
}

/// The frozen base model.
pub(crate) struct Base {
    pub(crate) shape: ModelShape,
    /// Token embeddings when the output matrix is separate; `None` when tied (then the
    /// embeddings are `head.w`).
    embed: Option<Vec<f32>>,
    pub(crate) head: Dense,
    pub(crate) norm: Vec<f32>,
    pub(crate) layers: Vec<LayerWeights>,
    /// `cos(p·θᵢ)`, `sin(p·θᵢ)` for position `p`, pair `i` (`context × head_dim/2`).
    pub(crate) cos: Vec<f32>,
    pub(crate) sin: Vec<f32>,
}

impl Base {
    /// The embedding row of `token`.
    pub(crate) fn embedding(&self, token: u32) -> &[f32] {
        let d = self.shape.embed;
        let e = self.embed.as_deref().unwrap_or(&self.head.w);
        &e[token as usize * d..(token as usize + 1) * d]
    }

    fn new(
        shape: ModelShape,
        embed: Option<Vec<f32>>,
        head: Dense,
        norm: Vec<f32>,
        layers: Vec<LayerWeights>,
    ) -> Base {
        let half = shape.head_dim / 2;
        let mut cos = vec![0f32; shape.context * half];
        let mut sin = vec![0f32; shape.context * half];
        for p in 0..shape.context {
            for i in 0..half {
                let theta = shape.rope_base.powf(-((2 * i) as f64) / shape.head_dim as f64);
                let a = p as f64 * theta;
                cos[p * half + i] = a.cos() as f32;
                sin[p * half + i] = a.sin() as f32;
            }
        }
        Base { shape, embed, head, norm, layers, cos, sin }
    }

    /// Loads a llama GGUF model, dequantizing every tensor to f32 with candle.
    pub(crate) fn load(
        path: &Path,
        content: &gguf_file::Content,
        reader: &mut BufReader<File>,
    ) -> Result<Base, LmError> {
        let meta = Meta { content, path };
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
        if meta.get("llama.expert_count").and_then(|v| v.to_u32().ok()).unwrap_or(0) > 1 {
            return Err(LmError::UnsupportedArchitecture {
                path: path.to_path_buf(),
                arch: "llama (mixture of experts)".into(),
            });
        }
        let head_dim = embed / heads;
        let rope_dim = meta.u32("llama.rope.dimension_count").map(|x| x as usize).unwrap_or(head_dim);
        if rope_dim != head_dim || !head_dim.is_multiple_of(2) {
            return Err(LmError::UnsupportedArchitecture {
                path: path.to_path_buf(),
                arch: format!("llama with partial rotary embeddings ({rope_dim} of {head_dim} dims)"),
            });
        }
        let layers = meta.u32("llama.block_count")? as usize;
        let context = meta.u32("llama.context_length").map(|x| x as usize).unwrap_or(2048).clamp(16, 32768);
        let device = Device::Cpu;
        let mut tensor = |name: &str, dims: &[usize]| -> Result<Vec<f32>, LmError> {
            if !content.tensor_infos.contains_key(name) {
                return Err(corrupt(path, format!("tensor `{name}` is missing")));
            }
            let q = content
                .tensor(reader, name, &device)
                .map_err(|e| corrupt(path, format!("tensor `{name}`: {e}")))?;
            if !dims.is_empty() && q.shape().dims() != dims {
                return Err(corrupt(
                    path,
                    format!("tensor `{name}` has shape {:?}, expected {dims:?}", q.shape().dims()),
                ));
            }
            let t = q.dequantize(&device).map_err(|e| corrupt(path, format!("tensor `{name}`: {e}")))?;
            t.flatten_all()
                .and_then(|t| t.to_dtype(candle_core::DType::F32))
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| corrupt(path, format!("tensor `{name}`: {e}")))
        };
        let vocab = content
            .tensor_infos
            .get("token_embd.weight")
            .and_then(|t| t.shape.dims().first().copied())
            .ok_or_else(|| corrupt(path, "tensor `token_embd.weight` is missing".into()))?;
        let ffn = content
            .tensor_infos
            .get("blk.0.ffn_up.weight")
            .and_then(|t| t.shape.dims().first().copied())
            .unwrap_or(0);
        let shape = ModelShape {
            layers,
            embed,
            heads,
            kv_heads,
            head_dim,
            ffn,
            vocab,
            context,
            rms_eps: meta.f32("llama.attention.layer_norm_rms_epsilon").map(|x| x as f64).unwrap_or(1e-5),
            rope_base: meta.f32("llama.rope.freq_base").map(|x| x as f64).unwrap_or(10000.0),
        };
        let emb = tensor("token_embd.weight", &[vocab, embed])?;
        let norm = tensor("output_norm.weight", &[embed])?;
        let (embed_sep, head) = if content.tensor_infos.contains_key("output.weight") {
            (Some(emb), Dense::new(vocab, embed, tensor("output.weight", &[vocab, embed])?))
        } else {
            (None, Dense::with_rows(vocab, embed, emb, true))
        };
        let mut out_layers = Vec::with_capacity(layers);
        for l in 0..layers {
            let mut proj = Vec::with_capacity(7);
            for t in Target::ALL {
                let (o, i) = t.dims(&shape);
                proj.push(Dense::new(o, i, tensor(&format!("blk.{l}.{}.weight", t.gguf()), &[o, i])?));
            }
            out_layers.push(LayerWeights {
                attn_norm: tensor(&format!("blk.{l}.attn_norm.weight"), &[embed])?,
                ffn_norm: tensor(&format!("blk.{l}.ffn_norm.weight"), &[embed])?,
                proj: proj.try_into().unwrap_or_else(|_| unreachable!("seven projections")),
            });
        }
        Ok(Base::new(shape, embed_sep, head, norm, out_layers))
    }

    /// A randomly initialised model (keyed by `seed`), tied embeddings.
    pub(crate) fn random(shape: ModelShape, seed: u64) -> Base {
        let draw = |what: u64, n: usize, bound: f32| -> Vec<f32> {
            let mut rng = stream(seed, Purpose::INIT, 0, what);
            (0..n).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * bound).collect()
        };
        let d = shape.embed;
        let emb = draw(0, shape.vocab * d, 0.5);
        let norm: Vec<f32> = draw(1, d, 0.2).into_iter().map(|x| 1.0 + x).collect();
        let mut layers = Vec::new();
        for l in 0..shape.layers {
            let base = 16 + 16 * l as u64;
            let mut proj = Vec::new();
            for t in Target::ALL {
                let (o, i) = t.dims(&shape);
                let bound = (3.0 / i as f32).sqrt();
                proj.push(Dense::new(o, i, draw(base + t as u64, o * i, bound)));
            }
            layers.push(LayerWeights {
                attn_norm: draw(base + 8, d, 0.2).into_iter().map(|x| 1.0 + x).collect(),
                ffn_norm: draw(base + 9, d, 0.2).into_iter().map(|x| 1.0 + x).collect(),
                proj: proj.try_into().unwrap_or_else(|_| unreachable!("seven projections")),
            });
        }
        Base::new(shape.clone(), None, Dense::with_rows(shape.vocab, d, emb, true), norm, layers)
    }
}

/// LoRA adapters: `y = x·Wᵀ + (α/r)·(x·Aᵀ)·Bᵀ` on the chosen projections.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    /// Rank `r` (≥ 1).
    pub rank: usize,
    /// Scale numerator `α` (the update is scaled by `α / r`).
    pub alpha: f64,
    /// Projections to adapt: `q`, `k`, `v`, `o`, `gate`, `up`, `down` (GGUF and Hugging Face
    /// names are accepted too).
    pub targets: Vec<String>,
    /// Layers to adapt (`None`: every layer).
    pub layers: Option<Vec<usize>>,
    /// Seed of the keyed stream that initialises `A` (uniform in `±1/√in`, as peft does);
    /// `B` starts at zero, so a fresh adapter leaves the model unchanged.
    pub seed: u64,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig { rank: 8, alpha: 16.0, targets: vec!["q".into(), "v".into()], layers: None, seed: 0 }
    }
}

/// What is trained: LoRA adapters, whole layers, or both.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainableConfig {
    /// LoRA adapters (`None`: no adapters).
    pub lora: Option<LoraConfig>,
    /// Layers whose weights (seven projections and two norms) are trained in full.
    pub unfrozen_layers: Vec<usize>,
}

/// One named block of the flat parameter vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamBlock {
    /// GGUF-style name: `blk.3.attn_q.weight`, `blk.3.attn_norm.weight`,
    /// `blk.3.attn_q.lora_a`, `blk.3.attn_q.lora_b`.
    pub name: String,
    /// First index in the flat vector.
    pub offset: usize,
    /// Rows (a norm is one row).
    pub rows: usize,
    /// Columns; the block is row-major.
    pub cols: usize,
}

impl ParamBlock {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }
    /// Whether the block is empty (never, for a valid model).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A LoRA adapter's live f32 copy.
#[derive(Clone)]
pub(crate) struct Adapter {
    pub(crate) rank: usize,
    pub(crate) scale: f32,
    /// `A`: `rank × inp`, row-major; offset in the flat vector.
    pub(crate) a: Vec<f32>,
    pub(crate) a_off: usize,
    /// `B`: `out × rank`; offset.
    pub(crate) b: Vec<f32>,
    pub(crate) b_off: usize,
    a_packed: Vec<f32>,
    b_packed: Vec<f32>,
    pub(crate) out: usize,
    pub(crate) inp: usize,
}

impl Adapter {
    fn repack(&mut self) {
        self.a_packed = pack_transposed(&self.a, self.rank, self.inp);
        self.b_packed = pack_transposed(&self.b, self.out, self.rank);
    }

    /// `t' = (α/r)·x·Aᵀ` (`rows × r`).
    pub(crate) fn down(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut t = vec![0f32; rows * self.rank];
        matmul(
            x,
            self.inp,
            rows,
            Panels::packed(&self.a_packed, self.inp, self.rank),
            &mut t,
            self.rank,
            false,
        );
        for v in &mut t {
            *v *= self.scale;
        }
        t
    }

    /// `y += t'·Bᵀ`.
    pub(crate) fn up(&self, t: &[f32], rows: usize, y: &mut [f32]) {
        matmul(t, self.rank, rows, Panels::packed(&self.b_packed, self.rank, self.out), y, self.out, true)
    }
}

/// Where the unfrozen layer `l`'s blocks live.
#[derive(Clone)]
pub(crate) struct LayerOffsets {
    pub(crate) attn_norm: usize,
    pub(crate) ffn_norm: usize,
    pub(crate) proj: [usize; 7],
}

/// The trainable state: master parameters in f64 and the f32 copies the model computes with.
#[derive(Clone)]
pub(crate) struct State {
    pub(crate) master: Vec<f64>,
    pub(crate) layout: Vec<ParamBlock>,
    /// `lora[l][t]`.
    pub(crate) lora: Vec<[Option<Adapter>; 7]>,
    /// Current weights of unfrozen layers.
    pub(crate) unfrozen: Vec<Option<(LayerWeights, LayerOffsets)>>,
}

impl State {
    /// Builds the trainable state and its layout: layers in order; within a layer, the
    /// unfrozen weights (`attn_norm`, q, k, v, o, `ffn_norm`, gate, up, down), then the LoRA
    /// adapters in projection order, each `A` then `B`.
    pub(crate) fn new(base: &Base, config: &TrainableConfig) -> Result<State, TrainError> {
        let shape = &base.shape;
        let nl = shape.layers;
        let check_layer = |l: usize| {
            if l >= nl {
                Err(TrainError::LayerOutOfRange { layer: l, layers: nl })
            } else {
                Ok(())
            }
        };
        let mut unfrozen_set = vec![false; nl];
        for &l in &config.unfrozen_layers {
            check_layer(l)?;
            unfrozen_set[l] = true;
        }
        let mut lora_at = vec![[false; 7]; nl];
        if let Some(lora) = &config.lora {
            if lora.rank == 0 {
                return Err(TrainError::Config("LoRA rank must be at least 1".into()));
            }
            if !lora.alpha.is_finite() {
                return Err(TrainError::Config(format!("LoRA alpha {} must be finite", lora.alpha)));
            }
            if lora.targets.is_empty() {
                return Err(TrainError::Config("LoRA needs at least one target projection".into()));
            }
            let targets = lora.targets.iter().map(|t| Target::parse(t)).collect::<Result<Vec<_>, _>>()?;
            let layers: Vec<usize> = match &lora.layers {
                Some(ls) => {
                    for &l in ls {
                        check_layer(l)?;
                    }
                    ls.clone()
                }
                None => (0..nl).collect(),
            };
            for l in layers {
                for &t in &targets {
                    lora_at[l][t as usize] = true;
                }
            }
        }
        if !unfrozen_set.iter().any(|&u| u) && !lora_at.iter().flatten().any(|&a| a) {
            return Err(TrainError::Config(
                "nothing is trainable: give LoRA targets or unfrozen layers".into(),
            ));
        }
        let mut layout = Vec::new();
        let mut master = Vec::new();
        let mut push =
            |name: String, rows: usize, cols: usize, values: &[f32], layout: &mut Vec<ParamBlock>| {
                let offset = master.len();
                master.extend(values.iter().map(|&v| v as f64));
                layout.push(ParamBlock { name, offset, rows, cols });
                offset
            };
        let mut lora = Vec::with_capacity(nl);
        let mut unfrozen = Vec::with_capacity(nl);
        for l in 0..nl {
            let lw = &base.layers[l];
            if unfrozen_set[l] {
                let d = shape.embed;
                let attn_norm = push(format!("blk.{l}.attn_norm.weight"), 1, d, &lw.attn_norm, &mut layout);
                let mut proj = [0usize; 7];
                let mut ffn_norm = 0;
                for t in Target::ALL {
                    if t == Target::Gate {
                        ffn_norm = push(format!("blk.{l}.ffn_norm.weight"), 1, d, &lw.ffn_norm, &mut layout);
                    }
                    let p = &lw.proj[t as usize];
                    proj[t as usize] =
                        push(format!("blk.{l}.{}.weight", t.gguf()), p.out, p.inp, &p.rows(), &mut layout);
                }
                unfrozen.push(Some((lw.clone(), LayerOffsets { attn_norm, ffn_norm, proj })));
            } else {
                unfrozen.push(None);
            }
            let mut adapters: [Option<Adapter>; 7] = Default::default();
            if let Some(cfg) = config.lora.as_ref() {
                for t in Target::ALL {
                    if !lora_at[l][t as usize] {
                        continue;
                    }
                    let (out, inp) = t.dims(shape);
                    let r = cfg.rank;
                    let mut rng = stream(cfg.seed, Purpose::INIT, l as u64, t as u64);
                    let bound = 1.0 / (inp as f32).sqrt();
                    let a: Vec<f32> =
                        (0..r * inp).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * bound).collect();
                    let b = vec![0f32; out * r];
                    let a_off = push(format!("blk.{l}.{}.lora_a", t.gguf()), r, inp, &a, &mut layout);
                    let b_off = push(format!("blk.{l}.{}.lora_b", t.gguf()), out, r, &b, &mut layout);
                    let mut ad = Adapter {
                        rank: r,
                        scale: (cfg.alpha / r as f64) as f32,
                        a,
                        a_off,
                        b,
                        b_off,
                        a_packed: Vec::new(),
                        b_packed: Vec::new(),
                        out,
                        inp,
                    };
                    ad.repack();
                    adapters[t as usize] = Some(ad);
                }
            }
            lora.push(adapters);
        }
        Ok(State { master, layout, lora, unfrozen })
    }

    /// Replaces the master parameters and refreshes the f32 copies (each value rounded to the
    /// nearest f32).
    pub(crate) fn set(&mut self, params: &[f64]) -> Result<(), TrainError> {
        if params.len() != self.master.len() {
            return Err(TrainError::ParamLength { expected: self.master.len(), got: params.len() });
        }
        if let Some(i) = params.iter().position(|v| !v.is_finite()) {
            let block = self
                .layout
                .iter()
                .find(|b| i >= b.offset && i < b.offset + b.len())
                .map_or_else(String::new, |b| b.name.clone());
            return Err(TrainError::NonFiniteParam { index: i, block, value: params[i] });
        }
        self.master.copy_from_slice(params);
        let f32s =
            |off: usize, n: usize| -> Vec<f32> { params[off..off + n].iter().map(|&v| v as f32).collect() };
        for adapters in &mut self.lora {
            for ad in adapters.iter_mut().flatten() {
                ad.a = f32s(ad.a_off, ad.a.len());
                ad.b = f32s(ad.b_off, ad.b.len());
                ad.repack();
            }
        }
        for (lw, off) in self.unfrozen.iter_mut().flatten() {
            lw.attn_norm = f32s(off.attn_norm, lw.attn_norm.len());
            lw.ffn_norm = f32s(off.ffn_norm, lw.ffn_norm.len());
            for t in Target::ALL {
                let p = &lw.proj[t as usize];
                lw.proj[t as usize] = Dense::new(p.out, p.inp, f32s(off.proj[t as usize], p.out * p.inp));
            }
        }
        Ok(())
    }
}
