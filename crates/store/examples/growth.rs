//! How the run store grows with a run's length.
//!
//! Writes runs of N steps the way a training run does — 12 metrics per step, and every 10
//! steps one transaction holding the 10 steps' metrics, a checkpoint and the progress counter,
//! under a checkpoint retention policy (default: the last 3 and the first of every 1000 steps)
//! — then closes the store and reports the file size, the bytes per step and where they went
//! (SQLite's `dbstat` table, by table). The defaults are 1k, 10k and 100k steps with a 1 MB
//! checkpoint; the 100k run writes 10 GB of checkpoints and takes a minute or two.
//!
//! ```sh
//! cargo run --release -p gristmill-store --example growth
//! cargo run --release -p gristmill-store --example growth -- --steps 1000,2000 --checkpoint-bytes 65536
//! cargo run --release -p gristmill-store --example growth -- --steps 100000 --checkpoint-bytes 0  # metrics alone
//! cargo run --release -p gristmill-store --example growth -- --keep-every 0   # keep only the last 3
//! ```
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Instant;

use gristmill_store::{CheckpointRetention, NewRun, RunKind, Store, StoreError};

/// The metric names of a training step of the README example (`examples/learn.toml`).
const NAMES: [&str; 12] = [
    "gold",
    "train_gold",
    "reward.gold",
    "reward.digits",
    "residual",
    "credit.gold",
    "credit.digits",
    "credit.curriculum",
    "credit.hint",
    "credit.kl",
    "credit.weight_decay",
    "reward.total",
];

struct Args {
    steps: Vec<u64>,
    checkpoint_bytes: usize,
    checkpoint_every: u64,
    keep_last: usize,
    /// 0: keep only the last `keep_last`.
    keep_every: u64,
    dir: PathBuf,
}

impl Args {
    fn retention(&self) -> CheckpointRetention {
        let last = NonZeroUsize::new(self.keep_last).unwrap_or(NonZeroUsize::MIN);
        match NonZeroU64::new(self.keep_every) {
            Some(every) => CheckpointRetention::LastAndEvery { last, every },
            None => CheckpointRetention::Last(last),
        }
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        steps: vec![1_000, 10_000, 100_000],
        checkpoint_bytes: 1 << 20,
        checkpoint_every: 10,
        keep_last: 3,
        keep_every: 1000,
        dir: std::env::temp_dir(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |s: String| s.parse::<u64>().map_err(|e| format!("{s:?}: {e}"));
        match flag.as_str() {
            "--steps" => {
                args.steps = value()?.split(',').map(|s| num(s.to_string())).collect::<Result<_, _>>()?
            }
            "--checkpoint-bytes" => args.checkpoint_bytes = num(value()?)? as usize,
            "--checkpoint-every" => args.checkpoint_every = num(value()?)?.max(1),
            "--keep-last" => args.keep_last = num(value()?)?.max(1) as usize,
            "--keep-every" => args.keep_every = num(value()?)?,
            "--dir" => args.dir = PathBuf::from(value()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// SplitMix64: values and checkpoint bytes that look like real ones (no runs of zeros).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Measured {
    file_bytes: u64,
    tables: Vec<(String, u64)>,
    checkpoints_kept: usize,
    seconds: f64,
}

fn write_run(path: &Path, steps: u64, args: &Args) -> Result<Measured, StoreError> {
    let started = Instant::now();
    let mut store = Store::open(path)?;
    store.set_checkpoint_retention(args.retention());
    store.put_spec("5eed", "learn", "name = 'learn'\n")?;
    let run = store.create_run(&NewRun::new(RunKind::Train, "5eed", 1, steps))?;
    let mut mix = Mix(steps);
    let mut state = vec![0u8; args.checkpoint_bytes];
    let mut pending: Vec<(u64, Vec<(&str, f64)>)> = Vec::new();
    for step in 0..steps {
        pending.push((step, NAMES.iter().map(|n| (*n, mix.unit() - 0.5)).collect()));
        let done = step + 1;
        if done % args.checkpoint_every == 0 || done == steps {
            for chunk in state.chunks_mut(8) {
                let word = mix.next().to_le_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            store.batch(|b| {
                for (step, values) in &pending {
                    b.put_step_metrics(run, *step, values)?;
                }
                if !state.is_empty() {
                    b.put_checkpoint(run, done, &state, "ab12")?;
                }
                b.set_progress(run, done)
            })?;
            pending.clear();
        }
    }
    store.finish_run(run, "ab12", &serde_json::json!({}))?;
    let checkpoints_kept = store.checkpoint_steps(run)?.len();
    drop(store); // the last connection checkpoints the WAL into the file and removes it

    let file_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let raw =
        rusqlite::Connection::open(path).map_err(|source| StoreError::Open { path: path.into(), source })?;
    let tables = table_sizes(&raw).map_err(|source| StoreError::Open { path: path.into(), source })?;
    Ok(Measured { file_bytes, tables, checkpoints_kept, seconds: started.elapsed().as_secs_f64() })
}

/// Bytes per table and index (pages in use, from `dbstat`), plus free pages.
fn table_sizes(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")?;
    let mut sizes: Vec<(String, u64)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?.collect::<Result<_, _>>()?;
    let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    sizes.push(("(free pages)".to_string(), (page * free) as u64));
    Ok(sizes)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("growth: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "{} metrics per step; a {}-byte checkpoint every {} steps; retention {:?}",
        NAMES.len(),
        args.checkpoint_bytes,
        args.checkpoint_every,
        args.retention()
    );
    for &steps in &args.steps {
        let path = args.dir.join(format!("gristmill-growth-{}-{steps}.db", std::process::id()));
        let result = write_run(&path, steps, &args);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        match result {
            Ok(m) => {
                let metrics: u64 = m.tables.iter().filter(|(n, _)| n == "step_metrics").map(|(_, b)| b).sum();
                println!(
                    "{steps:>7} steps: file {:>12} bytes ({:.1} MB), {:.1} bytes/step, metrics {:.1} bytes/value, \
                     {} checkpoints kept, {:.1} s",
                    m.file_bytes,
                    m.file_bytes as f64 / 1e6,
                    m.file_bytes as f64 / steps as f64,
                    metrics as f64 / (steps as f64 * NAMES.len() as f64),
                    m.checkpoints_kept,
                    m.seconds
                );
                // The tables that hold anything; the rest are one page each.
                let (big, small): (Vec<_>, Vec<_>) = m.tables.iter().partition(|(_, b)| *b > 4096);
                for (name, bytes) in big {
                    println!("          {name:<24} {bytes:>12} bytes");
                }
                let small: u64 = small.iter().map(|(_, b)| b).sum();
                println!("          {:<24} {small:>12} bytes", "(other tables, free)");
            }
            Err(e) => {
                eprintln!("growth: {steps} steps: {e}");
                std::process::exit(1);
            }
        }
    }
}
