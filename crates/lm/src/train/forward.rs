//! The forward pass, one code path for the learner (teacher forcing over packed sequences)
//! and the sampler (a prompt prefill, then one token per step from a key/value cache).
//!
//! Rows are tokens. A packed batch puts the rows of all sequences one after another, with no
//! padding; attention of a row reads the key/value rows of its own sequence up to itself. A
//! decode step has one row per live sample and reads that sample's cache. Since every kernel
//! computes a row from that row's inputs alone (see `kernels`), the hidden state of a token is
//! the same bits in both modes and in any batch.

use rayon::prelude::*;

use super::kernels::{attend, rms_norm, rope, swiglu, transpose_scaled};
use super::weights::{Adapter, Base, LayerWeights, State, Target};

/// Rows per parallel task for row-wise operations.
const ROW_BLOCK: usize = 16;
/// Row operations on fewer elements than this run on the calling thread.
const SERIAL_BELOW: usize = 32 * 1024;

/// One sequence of a packed batch: rows `start .. start + len`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seq {
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// A packed batch of token sequences.
#[derive(Debug, Clone, Default)]
pub(crate) struct Packed {
    pub(crate) tokens: Vec<u32>,
    /// Position of each row within its sequence.
    pub(crate) pos: Vec<usize>,
    pub(crate) seqs: Vec<Seq>,
    /// Sequence of each row.
    pub(crate) row_seq: Vec<usize>,
}

impl Packed {
    pub(crate) fn push(&mut self, tokens: impl IntoIterator<Item = u32>) {
        let start = self.tokens.len();
        self.tokens.extend(tokens);
        let len = self.tokens.len() - start;
        let j = self.seqs.len();
        self.seqs.push(Seq { start, len });
        self.pos.extend(0..len);
        self.row_seq.extend(std::iter::repeat_n(j, len));
    }
    pub(crate) fn rows(&self) -> usize {
        self.tokens.len()
    }
}

/// The key/value cache of one sample, per layer: keys transposed (component `e` of position
/// `s` at `kt[e·cap + s]`, as attention reads them) and values row-major (`len` rows).
#[derive(Clone, Default)]
pub(crate) struct KvSeq {
    pub(crate) kt: Vec<Vec<f32>>,
    pub(crate) v: Vec<Vec<f32>>,
    pub(crate) len: usize,
    pub(crate) cap: usize,
}

impl KvSeq {
    /// A cache of capacity `cap` holding rows `start .. start + len` of each layer's keys and
    /// values (`kvd` wide, row-major).
    pub(crate) fn from_rows(acts: &[LayerActs], start: usize, len: usize, kvd: usize, cap: usize) -> KvSeq {
        let kt = acts
            .iter()
            .map(|a| {
                let mut t = vec![0f32; kvd * cap];
                for s in 0..len {
                    for e in 0..kvd {
                        t[e * cap + s] = a.k[(start + s) * kvd + e];
                    }
                }
                t
            })
            .collect();
        let v = acts
            .iter()
            .map(|a| {
                let mut out = Vec::with_capacity(cap * kvd);
                out.extend_from_slice(&a.v[start * kvd..(start + len) * kvd]);
                out
            })
            .collect();
        KvSeq { kt, v, len, cap }
    }
}

/// Where attention finds its keys and values.
pub(crate) enum Attn<'a> {
    /// Within the packed batch.
    Packed(&'a Packed),
    /// Row `i` is the next token of `caches[i]`, whose rows are appended first.
    Cache(&'a mut [KvSeq]),
}

/// What a layer keeps for the backward pass (empty vectors when not kept).
#[derive(Default)]
pub(crate) struct LayerActs {
    pub(crate) x: Vec<f32>,
    pub(crate) r1: Vec<f32>,
    pub(crate) h: Vec<f32>,
    pub(crate) q: Vec<f32>,
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
    pub(crate) y: Vec<f32>,
    pub(crate) xm: Vec<f32>,
    pub(crate) r2: Vec<f32>,
    pub(crate) h2: Vec<f32>,
    pub(crate) a: Vec<f32>,
    pub(crate) b: Vec<f32>,
    pub(crate) f: Vec<f32>,
    /// `t' = (α/r)·x·Aᵀ` of each adapted projection.
    pub(crate) lora_t: [Option<Vec<f32>>; 7],
}

/// What [`Net::layer`] keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    Nothing,
    /// Keys and values only (a prefill).
    Kv,
    /// Everything the backward pass needs.
    All,
}

/// The model as it computes: the base weights, and the trainable state (`None`: the
/// reference model — base weights, no adapters).
#[derive(Clone, Copy)]
pub(crate) struct Net<'a> {
    pub(crate) base: &'a Base,
    pub(crate) state: Option<&'a State>,
}

/// Runs `f(first_row, rows_of_out)` over blocks of rows of `out` (`width` per row), in parallel.
pub(crate) fn par_rows(out: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if width == 0 {
        return;
    }
    if out.len() < SERIAL_BELOW {
        // A decode step's few rows: waking a thread costs more than the work.
        out.chunks_mut(ROW_BLOCK * width).enumerate().for_each(|(i, chunk)| f(i * ROW_BLOCK, chunk));
    } else {
        out.par_chunks_mut(ROW_BLOCK * width).enumerate().for_each(|(i, chunk)| f(i * ROW_BLOCK, chunk));
    }
}

/// RMS norm of all rows (parallel), returning the normed rows and `1/rms`.
pub(crate) fn norm_rows(x: &[f32], g: &[f32], eps: f64) -> (Vec<f32>, Vec<f32>) {
    let d = g.len();
    let rows = x.len() / d;
    let mut h = vec![0f32; x.len()];
    let mut r = vec![0f32; rows];
    if x.len() < SERIAL_BELOW {
        rms_norm(x, g, eps, &mut h, &mut r);
    } else {
        h.par_chunks_mut(ROW_BLOCK * d).zip(r.par_chunks_mut(ROW_BLOCK)).enumerate().for_each(
            |(i, (hc, rc))| {
                let r0 = i * ROW_BLOCK;
                rms_norm(&x[r0 * d..(r0 + rc.len()) * d], g, eps, hc, rc);
            },
        );
    }
    (h, r)
}

impl<'a> Net<'a> {
    pub(crate) fn layer_weights(&self, l: usize) -> &'a LayerWeights {
        match self.state.and_then(|s| s.unfrozen[l].as_ref()) {
            Some((lw, _)) => lw,
            None => &self.base.layers[l],
        }
    }

    pub(crate) fn adapter(&self, l: usize, t: Target) -> Option<&'a Adapter> {
        self.state.and_then(|s| s.lora[l][t as usize].as_ref())
    }

    /// `out = x·Wᵀ (+ t'·Bᵀ)`; returns `t'` when adapted.
    fn project(&self, l: usize, t: Target, x: &[f32], rows: usize) -> (Vec<f32>, Option<Vec<f32>>) {
        let w = &self.layer_weights(l).proj[t as usize];
        let mut out = vec![0f32; rows * w.out];
        let tp = self.project_into(l, t, x, rows, &mut out, false);
        (out, tp)
    }

    /// `out (+)= x·Wᵀ`, then `out += t'·Bᵀ` when adapted; returns `t'`.
    fn project_into(
        &self,
        l: usize,
        t: Target,
        x: &[f32],
        rows: usize,
        out: &mut [f32],
        accumulate: bool,
    ) -> Option<Vec<f32>> {
        self.layer_weights(l).proj[t as usize].forward(x, rows, out, accumulate);
        self.adapter(l, t).map(|ad| {
            let tp = ad.down(x, rows);
            ad.up(&tp, rows, out);
            tp
        })
    }

    /// One decoder layer over `rows` rows of `x` (replaced by the layer's output).
    pub(crate) fn layer(
        &self,
        l: usize,
        x: &mut Vec<f32>,
        pos: &[usize],
        attn: Attn<'_>,
        keep: Keep,
    ) -> LayerActs {
        let shape = &self.base.shape;
        let (d, kvd, hd) = (shape.embed, shape.kv_dim(), shape.head_dim);
        let half = hd / 2;
        let rows = pos.len();
        let lw = self.layer_weights(l);
        let (h, r1) = norm_rows(x, &lw.attn_norm, shape.rms_eps);
        let (mut q, tq) = self.project(l, Target::Q, &h, rows);
        let (mut k, tk) = self.project(l, Target::K, &h, rows);
        let (v, tv) = self.project(l, Target::V, &h, rows);
        let (cos, sin) = (&self.base.cos, &self.base.sin);
        let rope_all = |m: &mut [f32], width: usize| {
            par_rows(m, width, |r0, chunk| {
                for (i, row) in chunk.chunks_exact_mut(width).enumerate() {
                    let p = pos[r0 + i];
                    rope(row, hd, &cos[p * half..(p + 1) * half], &sin[p * half..(p + 1) * half], false);
                }
            })
        };
        rope_all(&mut q, d);
        rope_all(&mut k, kvd);
        let group = shape.heads / shape.kv_heads;
        let mut y = vec![0f32; rows * d];
        match attn {
            Attn::Packed(p) => {
                let mut kt = vec![0f32; k.len()];
                transpose_scaled(&k, rows, kvd, None, &mut kt);
                par_rows(&mut y, d, |r0, chunk| {
                    let mut scores = Vec::new();
                    for (i, out) in chunk.chunks_exact_mut(d).enumerate() {
                        let row = r0 + i;
                        let seq = p.seqs[p.row_seq[row]];
                        let n = row - seq.start + 1;
                        scores.resize(n, 0.0);
                        let vs = &v[seq.start * kvd..];
                        attend(
                            &q[row * d..(row + 1) * d],
                            &kt,
                            rows,
                            seq.start,
                            vs,
                            kvd,
                            n,
                            hd,
                            group,
                            out,
                            &mut scores,
                        );
                    }
                });
            }
            Attn::Cache(caches) => {
                caches.par_iter_mut().zip(y.par_chunks_mut(d)).enumerate().for_each(|(row, (c, out))| {
                    let (pos, cap) = (c.len, c.cap);
                    for (e, &kv) in k[row * kvd..(row + 1) * kvd].iter().enumerate() {
                        c.kt[l][e * cap + pos] = kv;
                    }
                    c.v[l].extend_from_slice(&v[row * kvd..(row + 1) * kvd]);
                    let n = pos + 1;
                    let mut scores = vec![0f32; n];
                    attend(
                        &q[row * d..(row + 1) * d],
                        &c.kt[l],
                        cap,
                        0,
                        &c.v[l],
                        kvd,
                        n,
                        hd,
                        group,
                        out,
                        &mut scores,
                    );
                });
            }
        }
        let mut xm = x.clone();
        let to = self.project_into(l, Target::O, &y, rows, &mut xm, true);
        let (h2, r2) = norm_rows(&xm, &lw.ffn_norm, shape.rms_eps);
        let (a, ta) = self.project(l, Target::Gate, &h2, rows);
        let (b, tb) = self.project(l, Target::Up, &h2, rows);
        let f_w = shape.ffn;
        let mut f = vec![0f32; rows * f_w];
        par_rows(&mut f, f_w, |r0, chunk| {
            let s = r0 * f_w;
            swiglu(&a[s..s + chunk.len()], &b[s..s + chunk.len()], chunk);
        });
        let mut xo = xm.clone();
        let td = self.project_into(l, Target::Down, &f, rows, &mut xo, true);
        let x_in = std::mem::replace(x, xo);
        match keep {
            Keep::Nothing => LayerActs::default(),
            Keep::Kv => LayerActs { k, v, ..Default::default() },
            Keep::All => LayerActs {
                x: x_in,
                r1,
                h,
                q,
                k,
                v,
                y,
                xm,
                r2,
                h2,
                a,
                b,
                f,
                lora_t: [tq, tk, tv, to, ta, tb, td],
            },
        }
    }

    /// The embeddings of `tokens`.
    pub(crate) fn embed(&self, tokens: &[u32]) -> Vec<f32> {
        let d = self.base.shape.embed;
        let mut x = vec![0f32; tokens.len() * d];
        for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
            row.copy_from_slice(self.base.embedding(t));
        }
        x
    }

    /// All layers over a packed batch; returns the last hidden states (before the final norm)
    /// and what each layer kept.
    pub(crate) fn forward_packed(&self, p: &Packed, keep: Keep) -> (Vec<f32>, Vec<LayerActs>) {
        let mut x = self.embed(&p.tokens);
        let mut acts = Vec::with_capacity(self.base.shape.layers);
        for l in 0..self.base.shape.layers {
            acts.push(self.layer(l, &mut x, &p.pos, Attn::Packed(p), keep));
        }
        (x, acts)
    }

    /// One decode step: row `i` is `tokens[i]` at the next position of `caches[i]`.
    pub(crate) fn forward_step(&self, tokens: &[u32], caches: &mut [KvSeq]) -> Vec<f32> {
        let pos: Vec<usize> = caches.iter().map(|c| c.len).collect();
        let mut x = self.embed(tokens);
        for l in 0..self.base.shape.layers {
            self.layer(l, &mut x, &pos, Attn::Cache(caches), Keep::Nothing);
        }
        for c in caches.iter_mut() {
            c.len += 1;
        }
        x
    }

    /// Logits (`rows × vocab`) of the given hidden rows after the final norm; also returns the
    /// normed rows and `1/rms`.
    pub(crate) fn logits(&self, hidden: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let d = self.base.shape.embed;
        let rows = hidden.len() / d;
        let (hn, r) = norm_rows(hidden, &self.base.norm, self.base.shape.rms_eps);
        let mut logits = vec![0f32; rows * self.base.shape.vocab];
        self.base.head.forward(&hn, rows, &mut logits, false);
        (logits, hn, r)
    }
}
