//! Tables and JSON output.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use indicatif::{ProgressBar, ProgressStyle};

/// A table with the house style.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().map(Cell::new).collect::<Vec<_>>());
    t
}

/// A right-aligned number cell (or `-` when absent).
pub fn num(v: Option<f64>, digits: usize) -> Cell {
    let text = match v {
        Some(x) => format!("{x:.digits$}"),
        None => "-".to_string(),
    };
    Cell::new(text).set_alignment(CellAlignment::Right)
}

/// Progress of a long command: a bar on a terminal; elsewhere (CI logs, pipes) a plain line
/// on stderr at a steady interval (`GRISTMILL_PROGRESS_SECS`, default 10 s) and at the end,
/// so a long run never goes silent. Safe to advance from many threads.
pub enum Progress {
    /// On a terminal.
    Bar(ProgressBar),
    /// Elsewhere: plain lines.
    Plain(std::sync::Mutex<Plain>),
    /// Nothing shown.
    Hidden,
}

/// The state behind plain progress lines.
pub struct Plain {
    what: String,
    len: u64,
    done: u64,
    started: std::time::Instant,
    last: std::time::Instant,
    every: std::time::Duration,
}

impl Plain {
    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { self.done as f64 / secs } else { 0.0 };
        if self.len > 0 {
            let pct = 100.0 * self.done as f64 / self.len as f64;
            format!("{}: {}/{} ({pct:.0}%), {rate:.1}/s, {secs:.0} s", self.what, self.done, self.len)
        } else {
            format!("{}: {} done, {secs:.0} s", self.what, self.done)
        }
    }
}

/// A [`Progress`] over `len` units (0: unknown), named `what`.
pub fn progress(len: u64, what: &str) -> Progress {
    if std::io::stderr().is_terminal() {
        let pb = if len > 0 {
            let pb = ProgressBar::new(len);
            pb.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            pb
        } else {
            let pb = ProgressBar::new_spinner();
            pb.set_style(
                ProgressStyle::with_template("{msg} {spinner} {pos} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.enable_steady_tick(std::time::Duration::from_millis(200));
            pb
        };
        pb.set_message(what.to_string());
        return Progress::Bar(pb);
    }
    let every = std::env::var("GRISTMILL_PROGRESS_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map_or(std::time::Duration::from_secs(10), std::time::Duration::from_secs_f64);
    let now = std::time::Instant::now();
    let plain = Plain { what: what.to_string(), len, done: 0, started: now, last: now, every };
    Progress::Plain(std::sync::Mutex::new(plain))
}

impl Progress {
    /// No output at all (a quiet command, a replay into a scratch store).
    pub fn hidden() -> Progress {
        Progress::Hidden
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        match self {
            Progress::Bar(b) => b.inc(n),
            Progress::Plain(p) => {
                let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
                p.done += n;
                if p.last.elapsed() >= p.every {
                    p.last = std::time::Instant::now();
                    eprintln!("{}", p.line());
                }
            }
            Progress::Hidden => {}
        }
    }

    /// Units done so far (a resumed run starts part-way).
    pub fn set_position(&self, done: u64) {
        match self {
            Progress::Bar(b) => b.set_position(done),
            Progress::Plain(p) => p.lock().unwrap_or_else(|e| e.into_inner()).done = done,
            Progress::Hidden => {}
        }
    }

    /// Ends the progress display (a last plain line when not on a terminal).
    pub fn finish(&self) {
        match self {
            Progress::Bar(b) => b.finish_and_clear(),
            Progress::Plain(p) => eprintln!("{}", p.lock().unwrap_or_else(|e| e.into_inner()).line()),
            Progress::Hidden => {}
        }
    }
}

/// Set once SIGINT (Ctrl-C) or SIGTERM arrives: long commands check it between steps,
/// checkpoint and stop instead of dying mid-write.
pub fn interrupt_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    static FLAG: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
        std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Registration fails only for forbidden signals; these are not.
            let _ = signal_hook::flag::register(signal, flag.clone());
        }
        flag
    })
    .clone()
}

/// A training run interrupted by a signal: stopped and checkpointed, to be resumed.
#[derive(Debug)]
pub struct Interrupted {
    /// The run.
    pub run: gristmill_store::RunId,
    /// Steps done at the checkpoint.
    pub at: u64,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "run {} stopped at step {} (interrupted) and checkpointed; continue it with `gristmill resume {}`",
            self.run, self.at, self.run
        )
    }
}

impl std::error::Error for Interrupted {}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
