//! # gristmill-bench
//!
//! The rollout benchmark (a program, not a timed test). `gristmill-bench rollouts` measures,
//! on the environment of `bench/rollouts.toml` (compiled in; `--spec` replaces it):
//!
//! 1. **Rollouts/s** — whole [`rollout_step`](gristmill_engine::rollout_step)s of `B` tasks ×
//!    `G` responses: draw each task's source, generate the task (with the train/eval content
//!    split), sample a response from the oracle policy, and score it with every reward channel
//!    (six in the bench spec: exact, lenient and noisy verifiers, partial credit, format
//!    shaping, a reward model). Measured in an explicit rayon pool of 1 thread and one of all
//!    threads. The per-core figure is rollouts/s divided by the pool's threads.
//! 2. **Determinism cross-check** — both pools roll out the same untimed warm-up steps; their
//!    batch digests (every task key, answer, gold score and reward) are printed side by side
//!    and compared. The comparison is reported, not asserted: the test suite owns that
//!    property.
//! 3. **Multi-turn** — whole [`episode_step`](gristmill_engine::episode_step)s of each
//!    `[[episode]]` source (reset, prefix, snapshot, fork, step every fork to the end):
//!    forks/s and environment steps/s, 1 thread and all threads.
//! 4. **Items/s against a Python peer** — the spec cut to one response per task, so one *item*
//!    is exactly: generate a task + sample one response + score it with all pieces. Measured
//!    for the equal-weight mixture of all sources and for each source alone. With
//!    `--peer-python`, `bench/peer_reasoning_gym.py` (compiled in, piped to `python -`) times
//!    reasoning-gym on the dataset paired with each family, where one item is: generate an
//!    entry + score the gold answer + score a wrong answer, one process (one core). The ratio
//!    per core is ours on 1 thread over the peer; the total ratio is ours on all threads over
//!    the peer's single process. The peer's mixture figure is the weighted harmonic mean of
//!    its per-dataset rates with our mixture weights (the rate of a stream with the same
//!    share of items per dataset).
//!
//! Every case runs [`WARMUP_STEPS`] untimed steps first, then repeats
//! whole steps until at least `--seconds` of wall time have passed, into one batch whose
//! buffers are reused from step to step (as a training loop holds its batch). Steps are keyed by step number, so every case is reproducible. Each case also
//! reports, from the kernel's scheduler statistics (Linux), the CPU its threads used and the
//! time they sat runnable waiting for a CPU ("cpu waited", in cores): a wait above
//! 0.05 cores, ours or the peer's, means other processes were competing and the run prints a
//! warning. Wall-clock rates are only comparable on an otherwise idle machine. Nothing here
//! runs under `cargo test` except the small unit tests of parsing and formatting.
//!
//! ```text
//! gristmill-bench rollouts [--spec PATH] [--seconds S] [--threads N]
//!                          [--peer-python PATH] [--peer-seconds S] [--json PATH]
//! ```
//!
//! `bench/rollouts.sh` installs reasoning-gym into a throwaway venv, builds this binary in
//! release mode and runs it with the peer.

/// The same allocator as the `gristmill` binary (see its `main.rs`), so figures match.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod measure;
mod peer;
mod report;
mod spec;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use gristmill_engine::Environment;
use serde::Serialize;
use serde_json::json;

use crate::measure::{EpisodeCase, RolloutCase, WARMUP_STEPS};
use crate::report::{rate, ratio, right, table};

#[derive(Parser, Debug)]
#[command(name = "gristmill-bench", version, about = "gristmill benchmarks (run in release mode)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Rollouts/s (1 thread and all threads), multi-turn forks/s and steps/s, and items/s
    /// against the reasoning-gym peer.
    Rollouts(RolloutsArgs),
}

#[derive(Args, Debug)]
struct RolloutsArgs {
    /// Bench spec (TOML; default: the embedded bench/rollouts.toml).
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Minimum timed wall seconds per case.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Threads of the "all threads" pool (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Python interpreter with reasoning-gym installed; runs the peer measurement.
    #[arg(long)]
    peer_python: Option<PathBuf>,
    /// Peer wall seconds per dataset.
    #[arg(long, default_value_t = 5.0)]
    peer_seconds: f64,
    /// Also write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Rollouts(args) => rollouts(args),
    }
}

fn check_seconds(v: f64, flag: &str) -> anyhow::Result<Duration> {
    if !(v.is_finite() && v > 0.0 && v <= 3600.0) {
        bail!("{flag} {v} is out of range: expected a number of seconds in (0, 3600]");
    }
    Ok(Duration::from_secs_f64(v))
}

/// Run-queue wait (cores' worth) above which a case counts as disturbed by other processes.
const CONTENDED_CORES: f64 = 0.05;

/// One row of the items comparison.
struct ItemsRow {
    label: String,
    peer_label: String,
    /// Matched work (the peer's item): 1 thread and all threads; rates are tasks/s.
    matched_one: RolloutCase,
    matched_all: RolloutCase,
    /// The full pipeline (all pieces, one response per task): 1 thread and all threads.
    one: RolloutCase,
    all: RolloutCase,
    /// Per source of the row: (mixture weight, paired peer dataset).
    parts: Vec<(f64, Option<&'static str>)>,
}

/// Items (tasks) per second of a matched-work case, whose steps hold
/// [`spec::MATCHED_RESPONSES`] rollouts per item.
fn matched_items_per_s(case: &RolloutCase) -> f64 {
    case.rollouts_per_s / f64::from(spec::MATCHED_RESPONSES)
}

fn rollouts(args: RolloutsArgs) -> anyhow::Result<()> {
    let budget = check_seconds(args.seconds, "--seconds")?;
    check_seconds(args.peer_seconds, "--peer-seconds")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let all = args.threads.unwrap_or(cores);
    if all == 0 || all > 1024 {
        bail!("--threads {all} is out of range: expected 1..=1024");
    }
    let bench = spec::load(args.spec.as_deref())?;
    let valid = &bench.valid;
    let policy = spec::policy(valid)?;
    let epsilon = spec::episode_epsilon(valid);
    let (pool1, pool_all) = (measure::pool(1)?, measure::pool(all)?);
    let run = &valid.spec().run;
    let channels: Vec<&str> = valid.spec().pieces.iter().map(|p| p.kind.as_str()).collect();

    println!(
        "gristmill-bench rollouts: spec `{}` from {} (hash {}), seed {}",
        valid.spec().name,
        bench.origin,
        &valid.hash()[..12],
        run.seed
    );
    println!(
        "{cores} cores available; pools of 1 and {all} threads; >= {:.1} s timed per case after {WARMUP_STEPS} \
         untimed warm-up steps",
        args.seconds
    );
    println!("pieces: {}", channels.join(", "));
    let load_start = load_average();
    if let Some(l) = &load_start {
        println!("load average at start (1/5/15 min): {l}");
    }
    println!();

    // 1 + 2. Rollouts, with the determinism cross-check.
    eprintln!("building the environment (reward models train here) ...");
    let env = pool_all.install(|| Environment::build(valid.clone())).context("building the environment")?;
    let samples = u64::from(run.tasks_per_step) * u64::from(run.responses_per_task);
    eprintln!("rollouts: {samples} per step, 1 thread ...");
    let r1 = measure::rollouts(&pool1, 1, &env, policy.as_ref(), budget)?;
    eprintln!("rollouts: {samples} per step, {all} threads ...");
    let rn = measure::rollouts(&pool_all, all, &env, policy.as_ref(), budget)?;
    let rollouts_equal = r1.warmup_digests == rn.warmup_digests;

    // 3. Multi-turn.
    let mut episodes: Vec<(String, EpisodeCase, EpisodeCase)> = Vec::new();
    for (e, es) in valid.spec().episodes.iter().enumerate() {
        eprintln!(
            "multi-turn `{}`: {} episodes x {} forks per step ...",
            es.id, es.episodes_per_step, es.forks
        );
        let one = measure::episodes(&pool1, 1, &env, e, epsilon, budget);
        let many = measure::episodes(&pool_all, all, &env, e, epsilon, budget);
        episodes.push((es.id.clone(), one, many));
    }
    drop(env);

    // 4. Items: the mixture and every source alone, one response per task.
    let sources = &valid.spec().sources;
    let mut groups: Vec<(String, String, Vec<usize>)> = Vec::new();
    if sources.len() > 1 {
        groups.push((
            format!("mixture of all {} sources", sources.len()),
            "same mix (harmonic)".to_string(),
            (0..sources.len()).collect(),
        ));
    }
    for (i, s) in sources.iter().enumerate() {
        let peer = spec::peer_dataset(&s.family).unwrap_or("-").to_string();
        groups.push((source_label(s), peer, vec![i]));
    }
    let mut items = Vec::with_capacity(groups.len());
    let matched_policy = spec::ParsedOracle::new();
    for (label, peer_label, members) in groups {
        let v = spec::matched_variant(&bench, &members, &label)?;
        let items_per_step = v.spec().run.tasks_per_step;
        let env =
            pool_all.install(|| Environment::build(v)).with_context(|| format!("building `{label}`"))?;
        eprintln!("items (matched work): {label}, {items_per_step} per step, 1 and {all} threads ...");
        let matched_one = measure::rollouts(&pool1, 1, &env, &matched_policy, budget)?;
        let matched_all = measure::rollouts(&pool_all, all, &env, &matched_policy, budget)?;

        let v = spec::items_variant(&bench, &members, &label)?;
        let items_per_step = v.spec().run.tasks_per_step;
        let env =
            pool_all.install(|| Environment::build(v)).with_context(|| format!("building `{label}`"))?;
        eprintln!("items (all pieces): {label}, {items_per_step} per step, 1 and {all} threads ...");
        let one = measure::rollouts(&pool1, 1, &env, policy.as_ref(), budget)?;
        let all_case = measure::rollouts(&pool_all, all, &env, policy.as_ref(), budget)?;
        let parts =
            members.iter().map(|&i| (sources[i].weight, spec::peer_dataset(&sources[i].family))).collect();
        items.push(ItemsRow { label, peer_label, matched_one, matched_all, one, all: all_case, parts });
    }

    // The peer, last, so it never shares the cores with our cases.
    let mut datasets: Vec<&str> = Vec::new();
    for s in sources {
        if let Some(d) = spec::peer_dataset(&s.family) {
            if !datasets.contains(&d) {
                datasets.push(d);
            }
        }
    }
    let peer = match &args.peer_python {
        Some(_) if datasets.is_empty() => {
            eprintln!("peer: no source of this spec has a reasoning-gym analogue; skipped");
            None
        }
        Some(python) => {
            eprintln!(
                "peer: reasoning-gym {} with {}, {:.1} s per dataset ...",
                datasets.join(", "),
                python.display(),
                args.peer_seconds
            );
            Some(peer::run(python, args.peer_seconds, &datasets))
        }
        None => None,
    };
    let peer_ok = peer.as_ref().and_then(|p| p.as_ref().ok());
    let load_end = load_average();

    // Tables.
    println!(
        "Single-turn rollouts: {} tasks x {} responses = {samples} rollouts per step, {} reward channels",
        run.tasks_per_step,
        run.responses_per_task,
        valid.reward_pieces().len()
    );
    let mut t =
        table(&["pool", "steps", "rollouts", "seconds", "rollouts/s", "per core", "cpu used", "cpu waited"]);
    for c in [&r1, &rn] {
        t.add_row(vec![
            comfy_table::Cell::new(threads_label(c.threads)),
            right(c.steps.to_string()),
            right(report::group_thousands(c.rollouts)),
            right(format!("{:.2}", c.seconds)),
            rate(Some(c.rollouts_per_s)),
            rate(Some(c.per_core)),
            report::cores(c.cpu.map(|u| u.cores_used)),
            report::cores(c.cpu.map(|u| u.cores_waited)),
        ]);
    }
    println!("{t}");
    println!("speed-up {all} threads / 1 thread: {:.2}x", rn.rollouts_per_s / r1.rollouts_per_s);
    println!(
        "determinism: warm-up steps 0..{WARMUP_STEPS} digests, 1 thread vs {all} threads: {}",
        if rollouts_equal { "EQUAL" } else { "DIFFERENT" }
    );
    for (s, (a, b)) in r1.warmup_digests.iter().zip(&rn.warmup_digests).enumerate() {
        println!("  step {s}: {} | {}", &a[..16.min(a.len())], &b[..16.min(b.len())]);
    }
    println!();

    for (id, one, many) in &episodes {
        let es = valid.spec().episodes.iter().find(|e| &e.id == id);
        let shape = es.map_or(String::new(), |e| {
            format!(
                ": {} episodes x {} forks per step, {} prefix steps",
                e.episodes_per_step, e.forks, e.prefix_steps
            )
        });
        println!("Multi-turn `{id}`{shape}");
        let mut t = table(&[
            "pool",
            "steps",
            "forks",
            "env steps",
            "seconds",
            "forks/s",
            "env steps/s",
            "env steps/s per core",
            "cpu used",
            "cpu waited",
        ]);
        for c in [one, many] {
            t.add_row(vec![
                comfy_table::Cell::new(threads_label(c.threads)),
                right(c.steps.to_string()),
                right(report::group_thousands(c.forks)),
                right(report::group_thousands(c.env_steps)),
                right(format!("{:.2}", c.seconds)),
                rate(Some(c.forks_per_s)),
                rate(Some(c.env_steps_per_s)),
                rate(Some(c.env_steps_per_s / c.threads as f64)),
                report::cores(c.cpu.map(|u| u.cores_used)),
                report::cores(c.cpu.map(|u| u.cores_waited)),
            ]);
        }
        println!("{t}");
        println!(
            "determinism: warm-up fork states and returns, 1 thread vs {all} threads: {}",
            if one.warmup_digest == many.warmup_digest { "EQUAL" } else { "DIFFERENT" }
        );
        println!();
    }

    println!("Items/s against reasoning-gym");
    println!("  peer: 1 item = {} (one Python process = 1 core)", peer::ITEM);
    println!(
        "  matched: 1 item = generate a task + sample {} answers (oracle, error rate 1/2: gold or a \
         uniform wrong one) written as text, parsed back by the family's rule and scored by the \
         exact verifier",
        spec::MATCHED_RESPONSES
    );
    println!(
        "  all pieces: 1 item = generate a task + sample 1 response (oracle) + score it with all {} pieces",
        channels.len()
    );
    println!("  x = ours / peer; per core: ours on 1 thread; total: ours on {all} threads vs the peer's one process");
    let matched_header = format!("matched {all}t");
    let all_header = format!("all pieces {all}t");
    let mut t = table(&[
        "ours",
        "peer dataset",
        "peer",
        "matched 1t",
        "x per core",
        matched_header.as_str(),
        "x total",
        "all pieces 1t",
        "x per core",
        all_header.as_str(),
        "cpu waited",
    ]);
    let mut item_json = Vec::new();
    // (label, single family?, matched per core, all-pieces per core)
    let mut ratios: Vec<(String, bool, f64, f64)> = Vec::new();
    for row in &items {
        let peer_rate = peer_ok.and_then(|p| {
            let weights: Vec<f64> = row.parts.iter().map(|(w, _)| *w).collect();
            let rates: Vec<Option<f64>> =
                row.parts.iter().map(|(_, d)| d.and_then(|d| p.rates.get(d).copied())).collect();
            report::mixture_rate(&weights, &rates)
        });
        let (m1, m_all) = (matched_items_per_s(&row.matched_one), matched_items_per_s(&row.matched_all));
        let matched_per_core = peer_rate.map(|p| m1 / p);
        let matched_total = peer_rate.map(|p| m_all / p);
        let per_core = peer_rate.map(|p| row.one.rollouts_per_s / p);
        let total = peer_rate.map(|p| row.all.rollouts_per_s / p);
        if let (Some(m), Some(a)) = (matched_per_core, per_core) {
            ratios.push((row.label.clone(), row.parts.len() == 1, m, a));
        }
        let waited = [&row.matched_one, &row.matched_all, &row.one, &row.all]
            .iter()
            .filter_map(|c| c.cpu.map(|u| u.cores_waited))
            .fold(None, |m: Option<f64>, w| Some(m.map_or(w, |m| m.max(w))));
        t.add_row(vec![
            comfy_table::Cell::new(&row.label),
            comfy_table::Cell::new(&row.peer_label),
            rate(peer_rate),
            rate(Some(m1)),
            ratio(matched_per_core),
            rate(Some(m_all)),
            ratio(matched_total),
            rate(Some(row.one.rollouts_per_s)),
            ratio(per_core),
            rate(Some(row.all.rollouts_per_s)),
            report::cores(waited),
        ]);
        item_json.push(json!({
            "ours": row.label,
            "peer_dataset": row.peer_label,
            "peer_items_per_s": peer_rate,
            "matched": {
                "items_per_s_one_thread": m1,
                "items_per_s_all_threads": m_all,
                "ratio_per_core": matched_per_core,
                "ratio_total": matched_total,
                "one_thread": row.matched_one,
                "all_threads": row.matched_all,
                "warmup_digests_equal": row.matched_one.warmup_digests == row.matched_all.warmup_digests,
            },
            "all_pieces": {
                "items_per_s_one_thread": row.one.rollouts_per_s,
                "items_per_s_all_threads": row.all.rollouts_per_s,
                "ratio_per_core": per_core,
                "ratio_total": total,
                "one_thread": row.one,
                "all_threads": row.all,
                "warmup_digests_equal": row.one.warmup_digests == row.all.warmup_digests,
            },
        }));
    }
    println!("{t}");
    let items_equal = items
        .iter()
        .filter(|r| {
            r.one.warmup_digests == r.all.warmup_digests
                && r.matched_one.warmup_digests == r.matched_all.warmup_digests
        })
        .count();
    println!(
        "determinism: warm-up digests, 1 thread vs {all} threads: {items_equal} of {} rows EQUAL",
        items.len()
    );
    let goal = goal_summary(&ratios);
    match &peer {
        None => println!("peer: not measured (pass --peer-python PATH, or run bench/rollouts.sh)"),
        Some(Err(e)) => println!("peer: FAILED: {e:#}"),
        Some(Ok(p)) => {
            let version =
                p.raw.pointer("/_detail/reasoning_gym_version").and_then(|v| v.as_str()).unwrap_or("?");
            let python = p.raw.pointer("/_detail/python").and_then(|v| v.as_str()).unwrap_or("?");
            println!(
                "peer: reasoning-gym {version} on Python {python}, default dataset configs, {:.1} s per dataset; \
                 its own equal-count mix {} items/s, equal-time total {} items/s",
                args.peer_seconds,
                report::group_thousands(p.overall.round() as u64),
                report::group_thousands(p.overall_total.round() as u64),
            );
            for line in goal_lines(&goal) {
                println!("{line}");
            }
        }
    }

    if let Some(l) = &load_end {
        println!("load average at end (1/5/15 min): {l}");
    }
    let mut waits: Vec<Option<f64>> =
        vec![r1.cpu, rn.cpu].into_iter().map(|c| c.map(|u| u.cores_waited)).collect();
    for (_, one, many) in &episodes {
        waits.extend([one.cpu, many.cpu].map(|c| c.map(|u| u.cores_waited)));
    }
    for row in &items {
        waits.extend(
            [row.matched_one.cpu, row.matched_all.cpu, row.one.cpu, row.all.cpu]
                .map(|c| c.map(|u| u.cores_waited)),
        );
    }
    if let Some(Ok(p)) = &peer {
        if let Some(sets) = p.raw.pointer("/_detail/datasets").and_then(|v| v.as_object()) {
            waits.extend(sets.values().map(|d| d.get("cores_waited").and_then(serde_json::Value::as_f64)));
        }
    }
    let contended = waits.iter().flatten().filter(|w| **w > CONTENDED_CORES).count();
    if contended > 0 {
        println!(
            "WARNING: in {contended} of {} cases our threads waited for a CPU more than {CONTENDED_CORES} cores' \
             worth (peer included): other processes were running, and those figures are low",
            waits.len()
        );
    } else if waits.iter().all(Option::is_some) {
        println!(
            "cpu waited <= {CONTENDED_CORES} cores in every case: no other process competed for the CPUs"
        );
    }

    if let Some(path) = &args.json {
        let value = json!({
            "spec": {
                "name": valid.spec().name,
                "origin": bench.origin,
                "hash": valid.hash(),
                "seed": run.seed,
                "tasks_per_step": run.tasks_per_step,
                "responses_per_task": run.responses_per_task,
                "pieces": channels,
                "sources": sources.iter().map(|s| json!({
                    "id": s.id, "family": s.family, "weight": s.weight,
                    "peer_dataset": spec::peer_dataset(&s.family),
                })).collect::<Vec<_>>(),
            },
            "cores_available": cores,
            "threads_all": all,
            "seconds_per_case": args.seconds,
            "warmup_steps": WARMUP_STEPS,
            "contended_cases": contended,
            "load_average_start": load_start,
            "load_average_end": load_end,
            "rollouts": {
                "one_thread": r1,
                "all_threads": rn,
                "warmup_digests_equal": rollouts_equal,
            },
            "multi_turn": episodes.iter().map(|(id, one, many)| json!({
                "id": id,
                "one_thread": one,
                "all_threads": many,
                "warmup_digests_equal": one.warmup_digest == many.warmup_digest,
            })).collect::<Vec<_>>(),
            "items": {
                "matched_item": format!(
                    "generate a task + {} answers (oracle, error rate 1/2) rendered, parsed and scored by the exact verifier",
                    spec::MATCHED_RESPONSES
                ),
                "all_pieces_item": format!("generate a task + sample 1 response + score it with all {} pieces", channels.len()),
                "peer_item": peer::ITEM,
                "goal_ratio_per_core": GOAL_RATIO,
                "goal": goal,
                "rows": item_json,
            },
            "peer": match &peer {
                None => serde_json::Value::Null,
                Some(Ok(p)) => p.raw.clone(),
                Some(Err(e)) => json!({ "error": format!("{e:#}") }),
            },
        });
        let text = serde_json::to_string_pretty(&value)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(Err(e)) = peer {
        return Err(e.context("the peer measurement failed (our figures above are complete)"));
    }
    Ok(())
}

/// The throughput goal (BENCHMARKS.md): ours at least this many times the peer's items/s per core.
const GOAL_RATIO: f64 = 100.0;

/// How the goal fares, for matched work and for the full pipeline: the mixture row's ratio
/// per core, and the lowest and geometric-mean single-family ratios.
#[derive(Debug, Clone, Serialize)]
struct GoalSummary {
    matched: Option<RatioSummary>,
    all_pieces: Option<RatioSummary>,
}

#[derive(Debug, Clone, Serialize)]
struct RatioSummary {
    mixture: Option<f64>,
    lowest_family: f64,
    lowest_family_at: String,
    geometric_mean_families: f64,
    families_meeting_goal: usize,
    families: usize,
}

fn goal_summary(ratios: &[(String, bool, f64, f64)]) -> GoalSummary {
    let summarize = |pick: fn(&(String, bool, f64, f64)) -> f64| -> Option<RatioSummary> {
        let families: Vec<(f64, &str)> =
            ratios.iter().filter(|r| r.1).map(|r| (pick(r), r.0.as_str())).collect();
        let (lowest, at) = families.iter().min_by(|a, b| a.0.total_cmp(&b.0))?;
        let geo = (families.iter().map(|(r, _)| r.ln()).sum::<f64>() / families.len() as f64).exp();
        Some(RatioSummary {
            mixture: ratios.iter().find(|r| !r.1).map(pick),
            lowest_family: *lowest,
            lowest_family_at: at.to_string(),
            geometric_mean_families: geo,
            families_meeting_goal: families.iter().filter(|(r, _)| *r >= GOAL_RATIO).count(),
            families: families.len(),
        })
    };
    GoalSummary { matched: summarize(|r| r.2), all_pieces: summarize(|r| r.3) }
}

fn goal_lines(goal: &GoalSummary) -> Vec<String> {
    let verdict = |x: f64| if x >= GOAL_RATIO { "MET" } else { "NOT MET" };
    let mut lines = Vec::new();
    for (name, s) in [("matched work", &goal.matched), ("all pieces", &goal.all_pieces)] {
        let Some(s) = s else { continue };
        let mixture = s.mixture.map_or("-".to_string(), |m| format!("{m:.1}x ({})", verdict(m)));
        lines.push(format!(
            "goal (>= {GOAL_RATIO:.0}x the peer's items/s per core), {name}: mixture {mixture}; per family \
             {} of {} met, lowest {:.1}x ({}), geometric mean {:.1}x",
            s.families_meeting_goal,
            s.families,
            s.lowest_family,
            s.lowest_family_at,
            s.geometric_mean_families
        ));
    }
    lines
}

/// `id (family) knob=value ...`, without the family when the id repeats it.
fn source_label(s: &gristmill_core::spec::SourceSpec) -> String {
    let mut label = s.id.clone();
    if s.id != s.family {
        label += &format!(" ({})", s.family);
    }
    for (k, v) in &s.knobs {
        label += &format!(" {k}={v}");
    }
    label
}

/// The 1, 5 and 15 minute load averages, where the OS reports them (Linux).
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn threads_label(threads: usize) -> String {
    if threads == 1 {
        "1 thread".to_string()
    } else {
        format!("{threads} threads")
    }
}
