//! Deterministic f32 kernels: a matmul, dot products, `exp`, and the row operations of the
//! decoder.
//!
//! **The one rule**: every output element is computed by a fixed sequence of IEEE operations
//! that depends only on the element's own inputs — never on the number of rows in the call,
//! the thread count, the tiling or the instruction set. For the matmul that sequence is the
//! fused multiply-add chain `c = fma(a₀,b₀,c₀); c = fma(a₁,b₁,c); …` over the reduction index
//! in increasing order, starting from `+0` (or from the existing `c` when accumulating). The
//! AVX-512 kernel keeps one output element per SIMD lane and runs exactly that chain; the
//! portable kernel runs it with `f32::mul_add` (which is the same single-rounding FMA on every
//! platform). So a row of a 512-row training batch gets the same bits as the same row decoded
//! alone, and 1 thread the same bits as 2 — which is what makes the sampler's and the
//! learner's log-probs the same numbers. Work is split across rayon threads by output tiles
//! only; no reduction is ever split.
//!
//! Dot products over a short axis (attention heads, norms) use 16 fixed lanes (`i mod 16`)
//! and a fixed pairwise tree at the end, again independent of where they run.
//!
//! Hot functions are compiled three times (AVX-512, AVX2+FMA, baseline) from one source by
//! [`multiversion!`]; since none of them reassociates anything, the three give identical bits
//! (tested), and the choice is made once at run time. `GRISTMILL_LM_KERNEL=portable` forces the
//! baseline (for tests and for machines where the detection is wrong).

use std::sync::OnceLock;

use rayon::prelude::*;

/// Output columns per panel (two AVX-512 vectors).
pub(crate) const NR: usize = 32;
/// Rows per micro-tile.
const MR: usize = 12;
/// At most this many rows per parallel task.
const MB_MAX: usize = 512;
/// Panels per parallel task.
const PG: usize = 2;
/// Reduction block (a 256 × 32 panel block is 32 KiB: L1).
const KC: usize = 256;

/// The instruction set the kernels run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512F (+ FMA).
    Avx512,
    /// AVX2 + FMA.
    Avx2,
    /// Whatever the target baseline has (`f32::mul_add` may be a library call).
    Portable,
}

/// The instruction set chosen for this process (detected once).
pub(crate) fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        if std::env::var("GRISTMILL_LM_KERNEL").is_ok_and(|v| v == "portable") {
            return Isa::Portable;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    })
}

/// Compiles a function body for AVX-512, AVX2+FMA and the baseline, and dispatches on
/// [`isa`]. The body must be plain arithmetic in a fixed order (it is: no fast-math exists in
/// Rust), so every version gives the same bits.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn inner($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v512($($arg: $ty),*) $(-> $ret)? { inner($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v2($($arg: $ty),*) $(-> $ret)? { inner($($arg),*) }
                match $crate::train::kernels::isa() {
                    // SAFETY: the features were detected at run time.
                    $crate::train::kernels::Isa::Avx512 => return unsafe { v512($($arg),*) },
                    $crate::train::kernels::Isa::Avx2 => return unsafe { v2($($arg),*) },
                    $crate::train::kernels::Isa::Portable => {}
                }
            }
            inner($($arg),*)
        }
    };
}
#[allow(unused_imports)]
pub(crate) use multiversion;

/// A raw pointer that may cross threads; every use writes a region no other task touches.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr(pub(crate) *mut f32);
// SAFETY: users guarantee disjoint writes (documented at each use).
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    /// The pointer (a method, so that closures capture the whole `SyncPtr`, not its field).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// The right-hand operand of a matmul, `B[k][n]` for `k < K`, `n < N`, stored in panels of
/// [`NR`] columns: `B[k][n] = data[(n / NR)·ps + k·ks + n mod NR]`.
///
/// Two layouts cover every product the model needs without copies: [`Panels::packed`] (a
/// matrix packed once, for weights used as `x·Wᵀ`) and [`Panels::row_major`] (any row-major
/// `K × N` matrix as it is).
#[derive(Clone, Copy)]
pub(crate) struct Panels<'a> {
    data: &'a [f32],
    ps: usize,
    ks: usize,
    /// Reduction length.
    pub(crate) k: usize,
    /// Output columns.
    pub(crate) n: usize,
}

impl<'a> Panels<'a> {
    /// A matrix packed by [`pack_transposed`]: `B = Wᵀ` for a row-major `W` of `n × k`.
    pub(crate) fn packed(data: &'a [f32], k: usize, n: usize) -> Panels<'a> {
        assert!(data.len() >= n.div_ceil(NR) * NR * k, "packed operand too short");
        Panels { data, ps: k * NR, ks: NR, k, n }
    }

    /// A row-major `k × n` matrix.
    pub(crate) fn row_major(data: &'a [f32], k: usize, n: usize) -> Panels<'a> {
        assert!(data.len() >= k * n, "row-major operand too short");
        Panels { data, ps: NR, ks: n, k, n }
    }
}

/// Packs a row-major `rows × cols` matrix `W` so that `Panels::packed(_, cols, rows)` is
/// `Wᵀ`: panel `p`, row `k`, lane `j` holds `W[p·NR + j][k]` (zero past the last row).
pub(crate) fn pack_transposed(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(w.len(), rows * cols);
    let panels = rows.div_ceil(NR);
    let mut out = vec![0f32; panels * NR * cols];
    out.par_chunks_mut(NR * cols.max(1)).enumerate().for_each(|(p, panel)| {
        for j in 0..NR {
            let r = p * NR + j;
            if r >= rows {
                break;
            }
            let src = &w[r * cols..(r + 1) * cols];
            for (k, &v) in src.iter().enumerate() {
                panel[k * NR + j] = v;
            }
        }
    });
    out
}

/// Packs a row-major `rows × cols` matrix `M` so that `Panels::packed(_, rows, cols)` is `M`
/// itself: panel `p`, row `r`, lane `j` holds `M[r][p·NR + j]` (zero past the last column).
pub(crate) fn pack_rows(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(m.len(), rows * cols);
    let panels = cols.div_ceil(NR);
    let mut out = vec![0f32; panels * NR * rows];
    out.par_chunks_mut(NR * rows.max(1)).enumerate().for_each(|(p, panel)| {
        let (c0, c1) = (p * NR, ((p + 1) * NR).min(cols));
        for r in 0..rows {
            panel[r * NR..r * NR + (c1 - c0)].copy_from_slice(&m[r * cols + c0..r * cols + c1]);
        }
    });
    out
}

/// `C[m][n] (+)= Σ_k A[m][k]·B[k][n]` for `m < rows`; `A` row-major with row stride `a_rs`,
/// `C` with row stride `c_rs`. Each element is the FMA chain over `k` in order (module doc),
/// starting from `+0`, or from the current `C[m][n]` when `accumulate`.
pub(crate) fn matmul(
    a: &[f32],
    a_rs: usize,
    rows: usize,
    b: Panels<'_>,
    c: &mut [f32],
    c_rs: usize,
    accumulate: bool,
) {
    if profiling() {
        let t = std::time::Instant::now();
        matmul_on(isa(), a, a_rs, rows, b, c, c_rs, accumulate);
        MATMUL_NS.fetch_add(t.elapsed().as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
        MATMUL_FLOP.fetch_add(2 * (rows * b.k * b.n) as u64, std::sync::atomic::Ordering::Relaxed);
    } else {
        matmul_on(isa(), a, a_rs, rows, b, c, c_rs, accumulate)
    }
}

/// Time and flops spent in [`matmul`] while `GRISTMILL_LM_PROFILE` is set.
pub(crate) static MATMUL_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub(crate) static MATMUL_FLOP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Whether `GRISTMILL_LM_PROFILE` is set (read once).
pub(crate) fn profiling() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("GRISTMILL_LM_PROFILE").is_some())
}

/// [`matmul`] on a chosen instruction set (tests compare them).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_on(
    isa: Isa,
    a: &[f32],
    a_rs: usize,
    rows: usize,
    b: Panels<'_>,
    c: &mut [f32],
    c_rs: usize,
    accumulate: bool,
) {
    let (k, n) = (b.k, b.n);
    if rows == 0 || n == 0 {
        return;
    }
    assert!(a_rs >= k && (rows - 1) * a_rs + k <= a.len(), "matmul: A is too short");
    assert!(c_rs >= n && (rows - 1) * c_rs + n <= c.len(), "matmul: C is too short");
    let panels = n.div_ceil(NR);
    let groups = panels.div_ceil(PG);
    // As few row blocks as keep ~8 tasks per thread busy (each block reads every panel of its
    // group once from memory), each at most MB_MAX rows (its A block stays in L2).
    let threads = rayon::current_num_threads().max(1);
    let tiles = rows.div_ceil(MR);
    let mblocks = (8 * threads).div_ceil(groups).max(rows.div_ceil(MB_MAX)).clamp(1, tiles);
    let mb_rows = tiles.div_ceil(mblocks) * MR;
    let mblocks = rows.div_ceil(mb_rows);
    let tasks = groups * mblocks;
    let cp = SyncPtr(c.as_mut_ptr());
    let bp = b.data.as_ptr() as usize;
    let run = |t: usize| {
        let (mb, g) = (t / groups, t % groups);
        let (row0, row_end) = (mb * mb_rows, ((mb + 1) * mb_rows).min(rows));
        // The reduction is cut into blocks of KC so that a panel block stays in L1; each
        // element's chain continues through C from one block to the next (same bits).
        // (Not for a few rows, which read every panel once anyway.)
        let kc_max = if rows > 2 * MR { KC } else { k.max(1) };
        let mut k0 = 0;
        while k0 < k.max(1) {
            let kc = (k - k0).min(kc_max);
            let acc = accumulate || k0 > 0;
            for p in g * PG..((g + 1) * PG).min(panels) {
                let nv = (n - p * NR).min(NR);
                for r0 in (row0..row_end).step_by(MR) {
                    let mr = (row_end - r0).min(MR);
                    // Broadcasts read A in place (packing A into [kc][MR] blocks was measured
                    // 35% slower here: the copies cost more than the streams they save).
                    let (a_ptr, a_rs_t, a_ks) = (a[r0 * a_rs + k0..].as_ptr(), a_rs, 1);
                    // SAFETY: the tile reads mr rows × kc of A (in bounds by the assert
                    // above), rows k0..k0+kc of panel p of B (masked to nv lanes), and writes
                    // rows r0..r0+mr, columns p·NR..p·NR+nv of C, which no other task writes.
                    unsafe {
                        tile(
                            isa,
                            mr,
                            kc,
                            a_ptr,
                            a_rs_t,
                            a_ks,
                            (bp as *const f32).wrapping_add(p * b.ps + k0 * b.ks),
                            b.ks,
                            nv,
                            cp.get().add(r0 * c_rs + p * NR),
                            c_rs,
                            acc,
                        )
                    }
                }
            }
            if k == 0 {
                break;
            }
            k0 += kc;
        }
    };
    if tasks == 1 || rows * n * k < (1 << 16) {
        (0..tasks).for_each(run);
    } else {
        (0..tasks).into_par_iter().for_each(run);
    }
}

macro_rules! by_rows {
    ($f:ident, $mr:expr, $($args:expr),*) => {
        match $mr {
            1 => $f::<1>($($args),*),
            2 => $f::<2>($($args),*),
            3 => $f::<3>($($args),*),
            4 => $f::<4>($($args),*),
            5 => $f::<5>($($args),*),
            6 => $f::<6>($($args),*),
            7 => $f::<7>($($args),*),
            8 => $f::<8>($($args),*),
            9 => $f::<9>($($args),*),
            10 => $f::<10>($($args),*),
            11 => $f::<11>($($args),*),
            _ => $f::<12>($($args),*),
        }
    };
}

#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    isa: Isa,
    mr: usize,
    k: usize,
    a: *const f32,
    a_rs: usize,
    a_ks: usize,
    b: *const f32,
    b_ks: usize,
    nv: usize,
    c: *mut f32,
    c_rs: usize,
    accumulate: bool,
) {
    debug_assert!((1..=MR).contains(&mr));
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => by_rows!(tile_avx512, mr, k, a, a_rs, a_ks, b, b_ks, nv, c, c_rs, accumulate),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => by_rows!(tile_avx2, mr, k, a, a_rs, a_ks, b, b_ks, nv, c, c_rs, accumulate),
        _ => by_rows!(tile_portable, mr, k, a, a_rs, a_ks, b, b_ks, nv, c, c_rs, accumulate),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx512<const R: usize>(
    k: usize,
    a: *const f32,
    a_rs: usize,
    a_ks: usize,
    b: *const f32,
    b_ks: usize,
    nv: usize,
    c: *mut f32,
    c_rs: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    let m0: __mmask16 = if nv >= 16 { 0xffff } else { ((1u32 << nv) - 1) as u16 };
    let m1: __mmask16 = if nv >= 32 {
        0xffff
    } else if nv <= 16 {
        0
    } else {
        ((1u32 << (nv - 16)) - 1) as u16
    };
    let mut acc0 = [_mm512_setzero_ps(); R];
    let mut acc1 = [_mm512_setzero_ps(); R];
    if accumulate {
        for i in 0..R {
            acc0[i] = _mm512_maskz_loadu_ps(m0, c.add(i * c_rs));
            acc1[i] = _mm512_maskz_loadu_ps(m1, c.wrapping_add(i * c_rs + 16));
        }
    }
    for kk in 0..k {
        let bp = b.wrapping_add(kk * b_ks);
        let b0 = _mm512_maskz_loadu_ps(m0, bp);
        let b1 = _mm512_maskz_loadu_ps(m1, bp.wrapping_add(16));
        for i in 0..R {
            let av = _mm512_set1_ps(*a.add(i * a_rs + kk * a_ks));
            acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
        }
    }
    for i in 0..R {
        _mm512_mask_storeu_ps(c.add(i * c_rs), m0, acc0[i]);
        _mm512_mask_storeu_ps(c.wrapping_add(i * c_rs + 16), m1, acc1[i]);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx2<const R: usize>(
    k: usize,
    a: *const f32,
    a_rs: usize,
    a_ks: usize,
    b: *const f32,
    b_ks: usize,
    nv: usize,
    c: *mut f32,
    c_rs: usize,
    accumulate: bool,
) {
    tile_body::<R>(k, a, a_rs, a_ks, b, b_ks, nv, c, c_rs, accumulate)
}

#[allow(clippy::too_many_arguments)]
unsafe fn tile_portable<const R: usize>(
    k: usize,
    a: *const f32,
    a_rs: usize,
    a_ks: usize,
    b: *const f32,
    b_ks: usize,
    nv: usize,
    c: *mut f32,
    c_rs: usize,
    accumulate: bool,
) {
    tile_body::<R>(k, a, a_rs, a_ks, b, b_ks, nv, c, c_rs, accumulate)
}

/// The reference tile: one FMA chain per output element, as the module doc says.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_body<const R: usize>(
    k: usize,
    a: *const f32,
    a_rs: usize,
    a_ks: usize,
    b: *const f32,
    b_ks: usize,
    nv: usize,
    c: *mut f32,
    c_rs: usize,
    accumulate: bool,
) {
    let mut acc = [[0f32; NR]; R];
    if accumulate {
        for (i, row) in acc.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate().take(nv) {
                *v = *c.add(i * c_rs + j);
            }
        }
    }
    let mut bv = [0f32; NR];
    for kk in 0..k {
        let bp = b.wrapping_add(kk * b_ks);
        for (j, v) in bv.iter_mut().enumerate().take(nv) {
            *v = *bp.add(j);
        }
        for (i, row) in acc.iter_mut().enumerate() {
            let av = *a.add(i * a_rs + kk * a_ks);
            for j in 0..NR {
                row[j] = av.mul_add(bv[j], row[j]);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, v) in row.iter().enumerate().take(nv) {
            *c.add(i * c_rs + j) = *v;
        }
    }
}

/// A dot product in 16 fixed lanes (`lane = i mod 16`, FMA chains) and a fixed pairwise tree.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 16];
    let mut ca = a.chunks_exact(16);
    let mut cb = b.chunks_exact(16);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..16 {
            acc[i] = x[i].mul_add(y[i], acc[i]);
        }
    }
    for (i, (x, y)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
        acc[i] = x.mul_add(*y, acc[i]);
    }
    reduce16(acc)
}

/// The fixed pairwise tree over 16 lanes.
#[inline(always)]
pub(crate) fn reduce16(mut acc: [f32; 16]) -> f32 {
    for w in [8, 4, 2, 1] {
        for i in 0..w {
            acc[i] += acc[i + w];
        }
    }
    acc[0]
}

/// `eˣ` in f32 (Cephes' reduction and polynomial, ≤ 2 ulp), written with plain arithmetic so
/// that it vectorizes and gives the same bits everywhere.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer (ties to even)
    let xc = x.clamp(-87.0, 88.0);
    let n = (xc * LOG2E + MAGIC) - MAGIC;
    let r = n.mul_add(-C1, xc);
    let r = n.mul_add(-C2, r);
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let e = p.mul_add(r * r, r) + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    let y = e * scale;
    // Branch-free ends (so that loops over it vectorize): above ln(f32::MAX) the result is +∞;
    // below e⁻⁸⁷ (≈ 1.6·10⁻³⁸) it is flushed to zero (subnormals never matter here). A NaN
    // input stays NaN through the arithmetic above (both comparisons are false).
    let y = if x > 88.72 { f32::INFINITY } else { y };
    if x < -87.0 {
        0.0
    } else {
        y
    }
}

/// `silu(a) = a·σ(a)`.
#[inline(always)]
pub(crate) fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-a))
}

multiversion! {
    /// RMS norm of each row of `x` (`rows × d`): `out = x · r · g` with
    /// `r = 1/√(mean(x²) + ε)`, written to `out`, and `r` to `rinv`.
    pub(crate) fn rms_norm(x: &[f32], g: &[f32], eps: f64, out: &mut [f32], rinv: &mut [f32]) {
        let d = g.len();
        for ((xr, or), ri) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)).zip(rinv.iter_mut()) {
            let ss = dot(xr, xr);
            let r = (1.0 / ((ss as f64 / d as f64) + eps).sqrt()) as f32;
            *ri = r;
            for ((o, &xv), &gv) in or.iter_mut().zip(xr).zip(g) {
                *o = (xv * r) * gv;
            }
        }
    }
}

multiversion! {
    /// Backward of [`rms_norm`] for one block of rows: given `dh = ∂/∂out`, adds
    /// `∂/∂x = r·(dx̂ − x̂·mean(dx̂ ⊙ x̂))` (with `x̂ = x·r`, `dx̂ = dh ⊙ g`) to `dx`.
    pub(crate) fn rms_norm_backward(dh: &[f32], x: &[f32], rinv: &[f32], g: &[f32], dx: &mut [f32]) {
        let d = g.len();
        let mut dxh = vec![0f32; d];
        let mut xh = vec![0f32; d];
        for (((dhr, xr), &r), dxr) in
            dh.chunks_exact(d).zip(x.chunks_exact(d)).zip(rinv).zip(dx.chunks_exact_mut(d))
        {
            for i in 0..d {
                dxh[i] = dhr[i] * g[i];
                xh[i] = xr[i] * r;
            }
            let mean = dot(&dxh, &xh) / d as f32;
            for i in 0..d {
                dxr[i] += r * (-xh[i]).mul_add(mean, dxh[i]);
            }
        }
    }
}

multiversion! {
    /// Turns a row of logits into `∂ log softmax(l)[tok] / ∂l = onehot(tok) − softmax(l)`, given
    /// `lse = log Σ eˡ`, in place.
    pub(crate) fn softmax_delta(row: &mut [f32], lse: f64, tok: usize) {
        let lse32 = lse as f32;
        let lo = (lse - lse32 as f64) as f32;
        for l in row.iter_mut() {
            // l − lse in two parts (lse does not fit an f32 exactly).
            *l = -exp_f32((*l - lse32) - lo);
        }
        row[tok] += 1.0;
    }
}

multiversion! {
    /// `f = silu(a) ⊙ b`.
    pub(crate) fn swiglu(a: &[f32], b: &[f32], f: &mut [f32]) {
        for ((fv, &av), &bv) in f.iter_mut().zip(a).zip(b) {
            *fv = (av * sigmoid(av)) * bv;
        }
    }
}

multiversion! {
    /// Backward of [`swiglu`]: from `df` gives `da = df ⊙ b ⊙ silu'(a)` and `db = df ⊙ silu(a)`,
    /// with `silu'(a) = σ(a)·(1 + a·(1 − σ(a)))`.
    pub(crate) fn swiglu_backward(df: &[f32], a: &[f32], b: &[f32], da: &mut [f32], db: &mut [f32]) {
        for i in 0..df.len() {
            let s = sigmoid(a[i]);
            db[i] = df[i] * (a[i] * s);
            da[i] = (df[i] * b[i]) * (s * a[i].mul_add(1.0 - s, 1.0));
        }
    }
}

multiversion! {
    /// Interleaved rotary embedding of the heads of one row in place: pair `(2i, 2i+1)` of
    /// every head turns by the angle whose cosine and sine are `cos[i]`, `sin[i]`.
    /// `inverse` turns the other way (the backward of the rotation is its transpose).
    pub(crate) fn rope(row: &mut [f32], head_dim: usize, cos: &[f32], sin: &[f32], inverse: bool) {
        for head in row.chunks_exact_mut(head_dim) {
            for (i, pair) in head.chunks_exact_mut(2).enumerate() {
                let (c, s) = (cos[i], if inverse { -sin[i] } else { sin[i] });
                let (x0, x1) = (pair[0], pair[1]);
                pair[0] = x0.mul_add(c, -(x1 * s));
                pair[1] = x0.mul_add(s, x1 * c);
            }
        }
    }
}

multiversion! {
    /// Causal attention for one query row: for every head `h` (key/value head `h / group`),
    /// `out_h = Σ_s p_s v_s` with `p = softmax(q_h·k_s / √d)` over `n` keys. Keys are read
    /// transposed (`kt[e·stride + off + s]` is component `e` of key `s`, see
    /// [`softmax_scores`]), values row-major (`vals[s·kvd + e]`). `scores`: scratch, ≥ `n`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attend(
        q: &[f32],
        kt: &[f32],
        stride: usize,
        off: usize,
        vals: &[f32],
        kvd: usize,
        n: usize,
        head_dim: usize,
        group: usize,
        out: &mut [f32],
        scores: &mut [f32],
    ) {
        for (h, (qh, oh)) in q.chunks_exact(head_dim).zip(out.chunks_exact_mut(head_dim)).enumerate() {
            let e0 = (h / group) * head_dim;
            softmax_scores(qh, kt, stride, e0, off, n, head_dim, &mut scores[..n]);
            oh.fill(0.0);
            for (s, &p) in scores[..n].iter().enumerate() {
                let v = &vals[s * kvd + e0..s * kvd + e0 + head_dim];
                for (o, &vv) in oh.iter_mut().zip(v) {
                    *o = p.mul_add(vv, *o);
                }
            }
        }
    }
}

/// `out[s] = Σ_d x[d]·mt[(e0 + d)·stride + off + s]` for `s < n`: dot products of `x` with
/// `n` vectors stored transposed, each one FMA chain over `d` in order (vectorized across
/// `s`, so the number of vectors never changes an element's bits).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn dots_transposed(
    x: &[f32],
    mt: &[f32],
    stride: usize,
    e0: usize,
    off: usize,
    n: usize,
    out: &mut [f32],
) {
    let out = &mut out[..n];
    out.fill(0.0);
    for (d, &xd) in x.iter().enumerate() {
        let row = &mt[(e0 + d) * stride + off..(e0 + d) * stride + off + n];
        for (o, &m) in out.iter_mut().zip(row) {
            *o = xd.mul_add(m, *o);
        }
    }
}

/// The attention probabilities of one query head over `n` keys (shared by the forward and
/// the backward, which recomputes them): `p = softmax(scale · (q_h·k_s)_s)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn softmax_scores(
    qh: &[f32],
    kt: &[f32],
    stride: usize,
    e0: usize,
    off: usize,
    n: usize,
    head_dim: usize,
    p: &mut [f32],
) {
    let scale = 1.0 / (head_dim as f32).sqrt();
    dots_transposed(qh, kt, stride, e0, off, n, p);
    let mut max = f32::NEG_INFINITY;
    for ps in p.iter_mut().take(n) {
        *ps *= scale;
        max = max.max(*ps);
    }
    for ps in p.iter_mut().take(n) {
        *ps = exp_f32(*ps - max);
    }
    let mut sum = 0f32;
    for ps in p.iter().take(n) {
        sum += *ps;
    }
    let inv = 1.0 / sum;
    for ps in p.iter_mut().take(n) {
        *ps *= inv;
    }
}

multiversion! {
    /// Backward of causal attention for one sequence of `t` rows and one key/value head `g`,
    /// whose query heads are `g·group ..`: reads `q` (`t × qd`), `k` (`t × kvd`), keys and
    /// values transposed (`kt`, `vt`: component `e` of row `s` at `e·stride + off + s`) and the
    /// output gradient `dy` (`t × qd`); writes the query gradient into `dq` (its heads'
    /// columns) and accumulates key and value gradients into `dk`, `dv` (column block `g`).
    /// Order: query head, then query position, then key position — fixed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attend_backward(
        q: &[f32],
        k: &[f32],
        kt: &[f32],
        vt: &[f32],
        stride: usize,
        off: usize,
        dy: &[f32],
        t: usize,
        qd: usize,
        kvd: usize,
        head_dim: usize,
        group: usize,
        g: usize,
        dq: SyncPtr,
        dk: SyncPtr,
        dv: SyncPtr,
    ) {
        let scale = 1.0 / (head_dim as f32).sqrt();
        let e0 = g * head_dim;
        let mut p = vec![0f32; t];
        let mut dp = vec![0f32; t];
        let mut acc = vec![0f32; head_dim];
        for h in g * group..(g + 1) * group {
            let qo = h * head_dim;
            for i in 0..t {
                let qh = &q[i * qd + qo..i * qd + qo + head_dim];
                let dyh = &dy[i * qd + qo..i * qd + qo + head_dim];
                let n = i + 1;
                softmax_scores(qh, kt, stride, e0, off, n, head_dim, &mut p);
                dots_transposed(dyh, vt, stride, e0, off, n, &mut dp);
                let mut dsum = 0f32;
                for s in 0..n {
                    dsum = p[s].mul_add(dp[s], dsum);
                }
                acc.fill(0.0);
                for s in 0..n {
                    let ds = p[s] * (dp[s] - dsum);
                    let ks = &k[s * kvd + e0..s * kvd + e0 + head_dim];
                    for (a, &kv) in acc.iter_mut().zip(ks) {
                        *a = ds.mul_add(kv, *a);
                    }
                    let dss = ds * scale;
                    // SAFETY: rows 0..t, columns of key/value head g of dk and dv belong to this
                    // call alone (the caller runs one call per sequence and head, disjointly),
                    // and no other reference to them exists while these slices live.
                    let (dkr, dvr) = unsafe {
                        (
                            std::slice::from_raw_parts_mut(dk.0.add(s * kvd + e0), head_dim),
                            std::slice::from_raw_parts_mut(dv.0.add(s * kvd + e0), head_dim),
                        )
                    };
                    for ((dkv, dvv), (&qv, &dyv)) in dkr.iter_mut().zip(dvr.iter_mut()).zip(qh.iter().zip(dyh)) {
                        *dkv = dss.mul_add(qv, *dkv);
                        *dvv = p[s].mul_add(dyv, *dvv);
                    }
                }
                // SAFETY: as above, for the query head h's columns of dq.
                let dqr = unsafe { std::slice::from_raw_parts_mut(dq.0.add(i * qd + qo), head_dim) };
                for (o, a) in dqr.iter_mut().zip(&acc) {
                    *o = a * scale;
                }
            }
        }
    }
}

/// Transposes a row-major `rows × cols` matrix into `out` (`cols × rows`), scaling row `r`
/// of the input by `scale[r]` when given.
pub(crate) fn transpose_scaled(x: &[f32], rows: usize, cols: usize, scale: Option<&[f32]>, out: &mut [f32]) {
    const BLK: usize = 32;
    out.par_chunks_mut(BLK * rows.max(1)).enumerate().for_each(|(cb, chunk)| {
        let c0 = cb * BLK;
        let c1 = (c0 + BLK).min(cols);
        for r0 in (0..rows).step_by(BLK) {
            for r in r0..(r0 + BLK).min(rows) {
                let s = scale.map_or(1.0, |s| s[r]);
                for c in c0..c1 {
                    chunk[(c - c0) * rows + r] = x[r * cols + c] * s;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn reference(a: &[f32], m: usize, k: usize, b_kn: &[f32], n: usize, init: Option<&[f32]>) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = init.map_or(0.0, |c0| c0[i * n + j]);
                for kk in 0..k {
                    acc = a[i * k + kk].mul_add(b_kn[kk * n + j], acc);
                }
                c[i * n + j] = acc;
            }
        }
        c
    }

    #[test]
    fn matmul_is_the_fma_chain_on_every_isa_layout_and_shape() {
        let isas: Vec<Isa> = [Isa::Avx512, Isa::Avx2, Isa::Portable]
            .into_iter()
            .filter(|i| match i {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma"),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
                _ => true,
            })
            .collect();
        for (m, k, n) in [
            (1, 1, 1),
            (3, 7, 5),
            (13, 33, 31),
            (25, 64, 70),
            (100, 17, 97),
            (1, 200, 40),
            (30, 600, 33),
            (20, 9, 600),
        ] {
            let a = rand_vec(m * k, 1);
            let w = rand_vec(n * k, 2); // W: n × k, B = Wᵀ
            let mut b_kn = vec![0f32; k * n];
            for j in 0..n {
                for kk in 0..k {
                    b_kn[kk * n + j] = w[j * k + kk];
                }
            }
            let init = rand_vec(m * n, 3);
            let want = reference(&a, m, k, &b_kn, n, None);
            let want_acc = reference(&a, m, k, &b_kn, n, Some(&init));
            let packed = pack_transposed(&w, n, k);
            let packed_rows = pack_rows(&b_kn, k, n);
            for &isa in &isas {
                for panels in [
                    Panels::packed(&packed, k, n),
                    Panels::row_major(&b_kn, k, n),
                    Panels::packed(&packed_rows, k, n),
                ] {
                    let mut c = vec![0f32; m * n];
                    matmul_on(isa, &a, k, m, panels, &mut c, n, false);
                    assert_eq!(bits(&c), bits(&want), "{isa:?} {m}×{k}×{n}");
                    let mut c = init.clone();
                    matmul_on(isa, &a, k, m, panels, &mut c, n, true);
                    assert_eq!(bits(&c), bits(&want_acc), "{isa:?} {m}×{k}×{n} accumulate");
                    // One row at a time gives the same bits as the whole block.
                    for i in 0..m {
                        let mut row = vec![0f32; n];
                        matmul_on(isa, &a[i * k..(i + 1) * k], k, 1, panels, &mut row, n, false);
                        assert_eq!(bits(&row), bits(&want[i * n..(i + 1) * n]));
                    }
                }
            }
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn exp_is_accurate_and_handles_the_ends() {
        for i in -2000..2000 {
            let x = i as f32 * 0.043;
            let (got, want) = (exp_f32(x) as f64, (x as f64).exp());
            assert!(((got - want) / want).abs() < 3e-7, "exp({x}) = {got}, want {want}");
        }
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(-95.0), 0.0);
    }
}
