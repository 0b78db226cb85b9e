//! The store grows linearly with a run's length — no `VACUUM`, a checkpoint every 10 steps.
//!
//! Each run is written the way a trainer writes it: 12 metrics per step, and every 10 steps
//! one transaction with those steps' metrics, a checkpoint and the progress counter, under a
//! retention policy. The file is measured after the store is closed (the WAL is then folded
//! into it). Run with `--nocapture` to see the bytes per step; the `growth` example measures
//! longer runs with 1 MB checkpoints.

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;

use gristmill_store::{CheckpointRetention, NewRun, RunKind, Store};

const METRICS: usize = 12;

/// Writes a run of `steps` steps into a fresh file and returns the file's size in bytes.
fn file_size_after(steps: u64, checkpoint_bytes: usize, retention: CheckpointRetention) -> u64 {
    let path: PathBuf = std::env::temp_dir()
        .join(format!("gristmill-store-growth-{}-{steps}-{checkpoint_bytes}.db", std::process::id()));
    let names: Vec<String> = (0..METRICS).map(|i| format!("metric.{i}")).collect();
    {
        let mut store = Store::open(&path).unwrap();
        store.set_checkpoint_retention(retention);
        store.put_spec("5eed", "growth", "name = 'growth'\n").unwrap();
        let run = store.create_run(&NewRun::new(RunKind::Train, "5eed", 1, steps)).unwrap();
        let mut state = vec![0u8; checkpoint_bytes];
        let mut x = steps;
        let mut next = || {
            // xorshift: values with all their bits in use, like real metrics
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for first in (0..steps).step_by(10) {
            let metrics: Vec<Vec<(&str, f64)>> = (first..(first + 10).min(steps))
                .map(|_| names.iter().map(|n| (n.as_str(), (next() >> 11) as f64 / 9e15 - 0.5)).collect())
                .collect();
            for b in state.iter_mut() {
                *b = next() as u8;
            }
            let done = (first + 10).min(steps);
            store
                .batch(|b| {
                    for (i, values) in metrics.iter().enumerate() {
                        b.put_step_metrics(run, first + i as u64, values)?;
                    }
                    if checkpoint_bytes > 0 {
                        b.put_checkpoint(run, done, &state, "ab")?;
                    }
                    b.set_progress(run, done)
                })
                .unwrap();
        }
        store.finish_run(run, "ab", &serde_json::json!({})).unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    size
}

fn last_and_every(last: usize, every: u64) -> CheckpointRetention {
    CheckpointRetention::LastAndEvery {
        last: NonZeroUsize::new(last).unwrap(),
        every: NonZeroU64::new(every).unwrap(),
    }
}

#[test]
fn the_file_grows_linearly_with_checkpoints_under_retention() {
    // 256 KiB checkpoints every 10 steps (the size only scales the file; the `growth` example
    // uses 1 MB), the last 3 and the first of every 50 steps kept, so the kept checkpoints grow
    // with the run (43 at 2k steps, 83 at 4k) while 200 and 400 are written.
    let ck = 256 << 10;
    let small = file_size_after(2_000, ck, last_and_every(3, 50));
    let large = file_size_after(4_000, ck, last_and_every(3, 50));
    let ratio = large as f64 / small as f64;
    eprintln!(
        "2k steps: {small} bytes ({:.0}/step), 4k steps: {large} bytes ({:.0}/step), ratio {ratio:.3}",
        small as f64 / 2_000.0,
        large as f64 / 4_000.0
    );
    assert!((1.8..=2.2).contains(&ratio), "size(4k)/size(2k) = {ratio:.3}: {small} → {large} bytes");
    // Nothing beyond the kept checkpoints (plus one being replaced) and the metrics.
    assert!(large < (83 + 2) * ck as u64 + 4_000 * 200, "{large} bytes");
}

#[test]
fn metrics_alone_grow_linearly_and_small() {
    let small = file_size_after(10_000, 0, CheckpointRetention::All);
    let large = file_size_after(20_000, 0, CheckpointRetention::All);
    let ratio = large as f64 / small as f64;
    let per_step = (large - small) as f64 / 10_000.0;
    eprintln!(
        "metrics: 10k steps {small} bytes, 20k steps {large} bytes, ratio {ratio:.3}, \
         {per_step:.1} bytes/step ({:.1} bytes/value)",
        per_step / METRICS as f64
    );
    assert!((1.8..=2.2).contains(&ratio), "size(20k)/size(10k) = {ratio:.3}");
    // 12 values × 8 bytes of bits is the floor (96); the version-1 layout took 536.
    assert!(per_step < 160.0, "{per_step:.1} bytes per step of {METRICS} metrics");
}
