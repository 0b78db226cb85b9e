//! The backward pass, with parameter gradients split by channel.
//!
//! **Bases and channels.** The gradient of `Σ_{j,t} u_{j,t} log π(y_{j,t})` with respect to the
//! activations is linear in the per-token weights `u`. A *basis* is one such weight vector,
//! and the backward pass propagates every basis at once, stacked as extra rows (one matmul
//! per frozen weight for all bases). A *channel* is a basis times a per-sequence factor
//! `w_{j,c}`: because sequences never interact, sequence `j`'s activation gradients in
//! channel `c` are exactly `w_{j,c}` times those of the basis, so channel `c`'s parameter
//! gradient is `Σ_rows w_{j(row),c} · (row's contribution)`. The row weights are folded into
//! the small operand of each parameter-gradient product, and all channels of a basis go
//! through one product (their blocks side by side). So `C` channels cost one backward through
//! the network plus `C` copies of the parameter-gradient products, which for LoRA are
//! rank-`r` thin.
//!
//! Policy-gradient channels share one basis (`u = 1` on completion tokens, the normalisation
//! and the advantages in `w`); the KL channel has its own (`u_{j,t} = 1 − π_ref/π`, which
//! varies along the sequence). `GradMethod::BackwardPerChannel` makes one basis per channel
//! (the plain way, for measurement and as the test oracle).

use rayon::prelude::*;

use super::forward::{par_rows, LayerActs, Net, Packed};
use super::kernels::{
    attend_backward, matmul, rms_norm_backward, rope, swiglu_backward, transpose_scaled, Panels, SyncPtr,
};
use super::weights::Target;

/// Which per-token weights are propagated, and how channels read them.
pub(crate) struct Plan {
    /// Per basis: the weight `u` of each scored token (in target order).
    pub(crate) basis_u: Vec<Vec<f32>>,
    /// Per output channel: its basis and a weight per packed row.
    pub(crate) channels: Vec<(usize, Vec<f32>)>,
}

impl Plan {
    fn nb(&self) -> usize {
        self.basis_u.len()
    }
    /// Channels of basis `b`, in order.
    fn of_basis(&self, b: usize) -> Vec<usize> {
        (0..self.channels.len()).filter(|&c| self.channels[c].0 == b).collect()
    }
}

impl Net<'_> {
    /// Back-propagates from the unit gradients at the final hidden states of the scored rows
    /// (`dx_unit`, one row per target, `target_rows` their packed rows) through every layer;
    /// returns one f32 gradient vector per channel (length `n_params`).
    pub(crate) fn backward(
        &self,
        p: &Packed,
        mut acts: Vec<LayerActs>,
        dx_unit: &[f32],
        target_rows: &[usize],
        plan: &Plan,
        n_params: usize,
    ) -> Vec<Vec<f32>> {
        let d = self.base.shape.embed;
        let m = p.rows();
        let nb = plan.nb();
        let mut dx = vec![0f32; nb * m * d];
        for (b, u) in plan.basis_u.iter().enumerate() {
            for (ti, &row) in target_rows.iter().enumerate() {
                let dst = &mut dx[(b * m + row) * d..(b * m + row + 1) * d];
                for (o, &g) in dst.iter_mut().zip(&dx_unit[ti * d..(ti + 1) * d]) {
                    *o = u[ti] * g;
                }
            }
        }
        let mut grads = vec![vec![0f32; n_params]; plan.channels.len()];
        for l in (0..self.base.shape.layers).rev() {
            let a = acts.pop().expect("one activation record per layer");
            self.layer_backward(l, p, &a, &mut dx, plan, &mut grads);
        }
        grads
    }

    fn layer_backward(
        &self,
        l: usize,
        p: &Packed,
        a: &LayerActs,
        dx: &mut Vec<f32>,
        plan: &Plan,
        grads: &mut [Vec<f32>],
    ) {
        let shape = &self.base.shape;
        let (d, kvd, f, hd) = (shape.embed, shape.kv_dim(), shape.ffn, shape.head_dim);
        let m = p.rows();
        let nb = plan.nb();
        let nbm = nb * m;
        let lw = self.layer_weights(l);
        let unfrozen = self.state.and_then(|s| s.unfrozen[l].as_ref()).map(|(_, off)| off.clone());

        // Feed-forward: x_out = xm + down(silu(gate(h2)) ⊙ up(h2)).
        let mut df = vec![0f32; nbm * f];
        self.proj_backward(l, Target::Down, dx, &a.f, &a.lora_t, &mut df, false, plan, grads, m);
        let mut da = vec![0f32; nbm * f];
        let mut db = vec![0f32; nbm * f];
        for b in 0..nb {
            let (dab, dbb) = (&mut da[b * m * f..(b + 1) * m * f], &mut db[b * m * f..(b + 1) * m * f]);
            let dfb = &df[b * m * f..(b + 1) * m * f];
            dab.par_chunks_mut(16 * f).zip(dbb.par_chunks_mut(16 * f)).enumerate().for_each(
                |(i, (dac, dbc))| {
                    let (s0, s1) = (i * 16 * f, i * 16 * f + dac.len());
                    swiglu_backward(&dfb[s0..s1], &a.a[s0..s1], &a.b[s0..s1], dac, dbc);
                },
            );
        }
        let mut dh2 = vec![0f32; nbm * d];
        self.proj_backward(l, Target::Gate, &da, &a.h2, &a.lora_t, &mut dh2, false, plan, grads, m);
        self.proj_backward(l, Target::Up, &db, &a.h2, &a.lora_t, &mut dh2, true, plan, grads, m);
        drop((df, da, db));
        if let Some(off) = &unfrozen {
            norm_weight_grads(&dh2, &a.xm, &a.r2, m, d, plan, grads, off.ffn_norm);
        }
        let mut dxm = dx.clone();
        norm_backward(&dh2, &a.xm, &a.r2, &lw.ffn_norm, m, &mut dxm);
        drop(dh2);

        // Attention: xm = x + o(attention(rope(q(h)), rope(k(h)), v(h))).
        let mut dy = vec![0f32; nbm * d];
        self.proj_backward(l, Target::O, &dxm, &a.y, &a.lora_t, &mut dy, false, plan, grads, m);
        let mut dq = vec![0f32; nbm * d];
        let mut dk = vec![0f32; nbm * kvd];
        let mut dv = vec![0f32; nbm * kvd];
        let group = shape.heads / shape.kv_heads;
        let tasks: Vec<(usize, usize, usize)> = (0..nb)
            .flat_map(|b| (0..p.seqs.len()).flat_map(move |j| (0..shape.kv_heads).map(move |g| (b, j, g))))
            .collect();
        let mut kt = vec![0f32; m * kvd];
        let mut vt = vec![0f32; m * kvd];
        transpose_scaled(&a.k, m, kvd, None, &mut kt);
        transpose_scaled(&a.v, m, kvd, None, &mut vt);
        let (pq, pk, pv) = (SyncPtr(dq.as_mut_ptr()), SyncPtr(dk.as_mut_ptr()), SyncPtr(dv.as_mut_ptr()));
        tasks.par_iter().for_each(|&(b, j, g)| {
            let s = p.seqs[j];
            let row0 = b * m + s.start;
            // SAFETY: task (b, j, g) writes rows row0..row0+len of dq (heads of group g), dk and
            // dv (key/value head g): disjoint from every other task.
            let (tq, tk, tv) = unsafe {
                (
                    SyncPtr(pq.get().add(row0 * d)),
                    SyncPtr(pk.get().add(row0 * kvd)),
                    SyncPtr(pv.get().add(row0 * kvd)),
                )
            };
            attend_backward(
                &a.q[s.start * d..(s.start + s.len) * d],
                &a.k[s.start * kvd..(s.start + s.len) * kvd],
                &kt,
                &vt,
                m,
                s.start,
                &dy[row0 * d..(row0 + s.len) * d],
                s.len,
                d,
                kvd,
                hd,
                group,
                g,
                tq,
                tk,
                tv,
            );
        });
        drop(dy);
        let half = hd / 2;
        let (cos, sin) = (&self.base.cos, &self.base.sin);
        let unrope = |mat: &mut [f32], width: usize| {
            par_rows(mat, width, |r0, chunk| {
                for (i, row) in chunk.chunks_exact_mut(width).enumerate() {
                    let pos = p.pos[(r0 + i) % m];
                    rope(
                        row,
                        hd,
                        &cos[pos * half..(pos + 1) * half],
                        &sin[pos * half..(pos + 1) * half],
                        true,
                    );
                }
            })
        };
        unrope(&mut dq, d);
        unrope(&mut dk, kvd);
        let mut dh = vec![0f32; nbm * d];
        self.proj_backward(l, Target::Q, &dq, &a.h, &a.lora_t, &mut dh, false, plan, grads, m);
        self.proj_backward(l, Target::K, &dk, &a.h, &a.lora_t, &mut dh, true, plan, grads, m);
        self.proj_backward(l, Target::V, &dv, &a.h, &a.lora_t, &mut dh, true, plan, grads, m);
        drop((dq, dk, dv));
        if let Some(off) = &unfrozen {
            norm_weight_grads(&dh, &a.x, &a.r1, m, d, plan, grads, off.attn_norm);
        }
        norm_backward(&dh, &a.x, &a.r1, &lw.attn_norm, m, &mut dxm);
        *dx = dxm;
    }

    /// Backward of `out = x·Wᵀ (+ t'·Bᵀ)` for all bases: `dx (+)= dy·W (+ dt·A)`, and the
    /// parameter gradients of every channel.
    #[allow(clippy::too_many_arguments)]
    fn proj_backward(
        &self,
        l: usize,
        t: Target,
        dy: &[f32],
        x: &[f32],
        lora_t: &[Option<Vec<f32>>; 7],
        dx: &mut [f32],
        accumulate: bool,
        plan: &Plan,
        grads: &mut [Vec<f32>],
        m: usize,
    ) {
        let w = &self.layer_weights(l).proj[t as usize];
        let (out, inp) = (w.out, w.inp);
        let nb = plan.nb();
        let nbm = nb * m;
        w.backward(dy, nbm, dx, accumulate);
        if let Some(ad) = self.adapter(l, t) {
            let r = ad.rank;
            let tp = lora_t[t as usize].as_ref().expect("adapted projections keep t'");
            let mut dt = vec![0f32; nbm * r];
            matmul(dy, out, nbm, Panels::row_major(&ad.b, out, r), &mut dt, r, false);
            for v in &mut dt {
                *v *= ad.scale;
            }
            matmul(&dt, r, nbm, Panels::row_major(&ad.a, r, inp), dx, inp, true);
            for b in 0..nb {
                let chans = plan.of_basis(b);
                if chans.is_empty() {
                    continue;
                }
                let cb = chans.len();
                let dy_b = &dy[b * m * out..(b + 1) * m * out];
                let dt_b = &dt[b * m * r..(b + 1) * m * r];
                // dB_c[n][i] = Σ_m w_c[m]·dy[m][n]·t'[m][i]: (dyᵀ) · [w_c ⊙ t'] for all c at once.
                let mut dyt = vec![0f32; out * m];
                transpose_scaled(dy_b, m, out, None, &mut dyt);
                let mut tw = vec![0f32; m * cb * r];
                for row in 0..m {
                    for (ci, &c) in chans.iter().enumerate() {
                        let wgt = plan.channels[c].1[row];
                        for i in 0..r {
                            tw[row * cb * r + ci * r + i] = wgt * tp[row * r + i];
                        }
                    }
                }
                let mut db_all = vec![0f32; out * cb * r];
                matmul(&dyt, m, out, Panels::row_major(&tw, m, cb * r), &mut db_all, cb * r, false);
                for (ci, &c) in chans.iter().enumerate() {
                    let g = &mut grads[c][ad.b_off..ad.b_off + out * r];
                    for n in 0..out {
                        g[n * r..(n + 1) * r]
                            .copy_from_slice(&db_all[n * cb * r + ci * r..n * cb * r + ci * r + r]);
                    }
                }
                // dA_c[i][k] = Σ_m w_c[m]·dt[m][i]·x[m][k]: [w_c ⊙ dt]ᵀ · x for all c at once.
                let mut dtw = vec![0f32; cb * r * m];
                for (ci, &c) in chans.iter().enumerate() {
                    let wc = &plan.channels[c].1;
                    for i in 0..r {
                        let dst = &mut dtw[(ci * r + i) * m..(ci * r + i + 1) * m];
                        for (row, o) in dst.iter_mut().enumerate() {
                            *o = wc[row] * dt_b[row * r + i];
                        }
                    }
                }
                let mut da_all = vec![0f32; cb * r * inp];
                matmul(&dtw, m, cb * r, Panels::row_major(x, m, inp), &mut da_all, inp, false);
                for (ci, &c) in chans.iter().enumerate() {
                    grads[c][ad.a_off..ad.a_off + r * inp]
                        .copy_from_slice(&da_all[ci * r * inp..(ci + 1) * r * inp]);
                }
            }
        }
        if let Some((_, off)) = self.state.and_then(|s| s.unfrozen[l].as_ref()) {
            let w_off = off.proj[t as usize];
            for b in 0..nb {
                let chans = plan.of_basis(b);
                if chans.is_empty() {
                    continue;
                }
                let dy_b = &dy[b * m * out..(b + 1) * m * out];
                // dW_c = (w_c ⊙ dy)ᵀ · x, all channels stacked as rows.
                let mut s = vec![0f32; chans.len() * out * m];
                for (ci, &c) in chans.iter().enumerate() {
                    transpose_scaled(
                        dy_b,
                        m,
                        out,
                        Some(&plan.channels[c].1),
                        &mut s[ci * out * m..(ci + 1) * out * m],
                    );
                }
                let mut dw_all = vec![0f32; chans.len() * out * inp];
                matmul(&s, m, chans.len() * out, Panels::row_major(x, m, inp), &mut dw_all, inp, false);
                for (ci, &c) in chans.iter().enumerate() {
                    grads[c][w_off..w_off + out * inp]
                        .copy_from_slice(&dw_all[ci * out * inp..(ci + 1) * out * inp]);
                }
            }
        }
    }
}

/// `dx += rms_norm_backward(dh)` for every basis block of rows (forward row = row mod m).
fn norm_backward(dh: &[f32], x: &[f32], r: &[f32], g: &[f32], m: usize, dx: &mut [f32]) {
    let d = g.len();
    for (b, dxb) in dx.chunks_mut(m * d).enumerate() {
        let dhb = &dh[b * m * d..(b + 1) * m * d];
        par_rows(dxb, d, |r0, chunk| {
            let r1 = r0 + chunk.len() / d;
            rms_norm_backward(&dhb[r0 * d..r1 * d], &x[r0 * d..r1 * d], &r[r0..r1], g, chunk);
        });
    }
}

/// Gradients of a norm's weights, per channel: `dg_c[i] = Σ_m w_c[m]·dh_b[m][i]·x̂[m][i]`.
#[allow(clippy::too_many_arguments)]
fn norm_weight_grads(
    dh: &[f32],
    x: &[f32],
    r: &[f32],
    m: usize,
    d: usize,
    plan: &Plan,
    grads: &mut [Vec<f32>],
    off: usize,
) {
    for (c, (b, wc)) in plan.channels.iter().enumerate() {
        let g = &mut grads[c][off..off + d];
        for row in 0..m {
            let dhr = &dh[(b * m + row) * d..(b * m + row + 1) * d];
            let xr = &x[row * d..(row + 1) * d];
            for i in 0..d {
                g[i] = (wc[row] * dhr[i]).mul_add(xr[i] * r[row], g[i]);
            }
        }
    }
}
