//! GFLOPS of the training engine's deterministic matmul on the model's shapes.
//! `cargo run --release -p gristmill-lm --example bench-matmul`
fn main() {
    for (m, k, n) in [
        (512, 576, 1536),
        (512, 1536, 576),
        (512, 576, 576),
        (8, 576, 1536),
        (1, 576, 1536),
        (256, 576, 49152),
    ] {
        let (p, r) = gristmill_lm::train::bench_matmul(m, k, n, 5);
        println!(
            "{m:>4} × {k:>5} × {n:>5}: packed {p:6.1} GFLOPS, row-major {r:6.1} GFLOPS ({} threads)",
            rayon::current_num_threads()
        );
    }
}
