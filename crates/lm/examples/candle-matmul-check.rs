//! Checks two properties of candle's CPU f32 matmul (the `gemm` crate) that the training
//! engine's design depends on: whether its results depend on the thread count, and whether a
//! row computed alone equals the same row inside a larger batch. Prints a digest of a batched
//! product (compare runs with `RAYON_NUM_THREADS=1` and `=2`) and how many rows differ from
//! one-row products.
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p gristmill-lm --example candle-matmul-check`
use candle_core::{Device, Tensor};

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    for (m, k, n, transposed) in [
        (64usize, 576usize, 1536usize, false),
        (64, 576, 1536, true),
        (512, 576, 1536, true),
        (512, 1536, 576, true),
        (300, 576, 49152, true),
    ] {
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5).collect();
        let w: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 1000) as f32 * 1e-3 - 0.5).collect();
        let xt = Tensor::from_vec(x.clone(), (m, k), &dev)?;
        // `transposed`: W stored out × in and used as x·Wᵀ, as candle-nn's Linear does.
        let wt = if transposed {
            Tensor::from_vec(w, (n, k), &dev)?.t()?
        } else {
            Tensor::from_vec(w, (k, n), &dev)?
        };
        let y = xt.matmul(&wt)?.to_vec2::<f32>()?;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for v in y.iter().flatten() {
            h = (h ^ v.to_bits() as u64).wrapping_mul(0x100_0000_01b3);
        }
        let (mut differ, mut max_rel) = (0, 0f64);
        for r in (0..m).step_by((m / 16).max(1)) {
            let row = Tensor::from_vec(x[r * k..(r + 1) * k].to_vec(), (1, k), &dev)?;
            let one = row.matmul(&wt)?.to_vec2::<f32>()?;
            if one[0].iter().zip(&y[r]).any(|(a, b)| a.to_bits() != b.to_bits()) {
                differ += 1;
            }
            for (a, b) in one[0].iter().zip(&y[r]) {
                max_rel = max_rel.max(((a - b) as f64).abs() / (b.abs() as f64).max(1e-3));
            }
        }
        println!(
            "{m}×{k}×{n} (W {}): threads {} digest {h:016x}; sampled rows differing from one-row products: {differ} of {} (max rel. diff {max_rel:.1e})",
            if transposed { "out×in, x·Wᵀ" } else { "in×out, x·W" },
            candle_core::utils::get_num_threads(),
            (0..m).step_by((m / 16).max(1)).count()
        );
    }
    Ok(())
}
