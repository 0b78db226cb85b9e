//! Learner and credit benchmarks.
//!
//! `learn-bench train`: training steps/s and samples/s for the log-linear and MLP policies at
//! a stated size, on one thread and on all threads, with the share of one-thread time spent in
//! rollouts (of which scoring), the split gradient pass, and the learning-curve metric.
//!
//! `learn-bench credit`: in one process, the same run without credit, with in-run credit
//! (4 Gauss–Legendre nodes), exact Shapley (2ⁿ runs) and leave-one-out (n + 1 runs); prints
//! the time ratios to the plain run.

/// The same allocator as the `gristmill` binary (see its `main.rs`), so figures match.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gristmill_engine::Environment;
use gristmill_learn::{StepTimings, TrainConfig, Trainer};
use gristmill_measure::DEFAULT_NODES;
use gristmill_run::coalition::{leave_one_out, shapley};
use gristmill_run::Run;
use serde_json::json;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Also write the figures as JSON here.
    #[arg(long, global = true)]
    json: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Training throughput per architecture.
    Train {
        /// Steps timed per case.
        #[arg(long, default_value_t = 40)]
        steps: u64,
    },
    /// Cost of credit methods against a plain run.
    Credit {
        /// Steps per run.
        #[arg(long, default_value_t = 40)]
        steps: u64,
    },
    /// In-run credit against exact Shapley on the credit catalogue, seed by seed.
    Catalogue {
        /// Specs (default: examples/catalogue/*.toml and examples/learn.toml).
        specs: Vec<std::path::PathBuf>,
        /// Seeds 1..=N.
        #[arg(long, default_value_t = 5)]
        seeds: u64,
    },
}

/// The bench environment (tests/fixtures/learn-bench.toml) with `policy` as its policy kind,
/// keeping only the first `pieces_only` pieces when given (exact Shapley needs 2ⁿ runs).
fn build(policy: &str, pieces_only: Option<usize>) -> anyhow::Result<(Environment, TrainConfig)> {
    let mut text = gristmill_testkit::with_policy(
        &gristmill_testkit::fixture("learn-bench"),
        &format!("kind = \"{policy}\""),
    );
    if let Some(n) = pieces_only {
        let parts: Vec<&str> = text.split("[[piece]]").collect();
        let tail = parts.last().copied().unwrap_or_default();
        let eval = tail.find("[eval]").map(|i| &tail[i..]).unwrap_or("");
        let mut kept: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
        let last = kept.len() - 1;
        kept[last] = tail[..tail.find("[eval]").unwrap_or(tail.len())].to_string();
        kept.truncate(n + 1);
        text = kept.join("[[piece]]") + "\n" + eval;
    }
    let env = gristmill_engine::load(&text, "learn-bench", &gristmill_core::spec::Overrides::default())?;
    let config = TrainConfig::of(&env.spec).context("the bench policy trains")?;
    Ok((env, config))
}

#[path = "../catalogue.rs"]
mod catalogue;

fn pool(n: usize) -> anyhow::Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new().num_threads(n).build()?)
}

fn train_case(policy: &str, threads: usize, steps: u64) -> anyhow::Result<(f64, StepTimings, usize)> {
    let (env, mut config) = build(policy, None)?;
    config.credit_nodes = 0;
    let samples = (env.spec.spec().run.tasks_per_step * env.spec.spec().run.responses_per_task) as usize;
    pool(threads)?.install(|| -> anyhow::Result<_> {
        let mut t = Trainer::new(env, config)?;
        t.step()?; // warm-up
        let start = Instant::now();
        let mut sum = StepTimings::default();
        for _ in 0..steps {
            let r = t.step()?;
            sum.rollout += r.timings.rollout;
            sum.scoring += r.timings.scoring;
            sum.gradient += r.timings.gradient;
            sum.metric += r.timings.metric;
        }
        Ok((start.elapsed().as_secs_f64(), sum, samples))
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = match cli.command {
        Command::Train { steps } => {
            let mut rows = vec![];
            println!(
                "{:<34} {:>7} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9}",
                "policy", "threads", "steps/s", "samples/s", "rollout", "scoring", "gradient", "metric"
            );
            for (name, policy) in [("loglinear", "loglinear"), ("mlp (hidden 32)", "mlp")] {
                for threads in [1, all] {
                    let (secs, t, samples) = train_case(policy, threads, steps)?;
                    let total = t.rollout + t.gradient + t.metric;
                    let sps = steps as f64 / secs;
                    println!(
                        "{:<34} {:>7} {:>10.1} {:>12.0} {:>8.1}% {:>8.1}% {:>8.1}% {:>8.1}%",
                        name,
                        threads,
                        sps,
                        sps * samples as f64,
                        100.0 * t.rollout / total,
                        100.0 * t.scoring / total,
                        100.0 * t.gradient / total,
                        100.0 * t.metric / total
                    );
                    rows.push(json!({ "policy": name, "threads": threads, "steps_per_s": sps, "samples_per_s": sps * samples as f64,
                        "share": { "rollout": t.rollout / total, "scoring": t.scoring / total, "gradient": t.gradient / total, "metric": t.metric / total } }));
                }
            }
            json!({ "train": rows, "size": "B=64 tasks × G=8 responses, 3 sources, 4 reward channels + curriculum + hint, 256 eval tasks" })
        }
        Command::Credit { steps } => {
            // Four pieces: in-run works on any count; exact Shapley trains 2⁴ = 16 coalitions.
            let (env, mut config) = build("loglinear", Some(4))?;
            let n = env.pieces.len();
            let p = pool(all)?;
            let time = |f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
                let start = Instant::now();
                f()?;
                Ok(start.elapsed().as_secs_f64())
            };
            config.credit_nodes = 0;
            let mut optimizer_share = 0.0;
            let plain = p.install(|| {
                time(&mut || {
                    let mut run = Run::with_config(env.clone(), config.clone())?;
                    let (mut opt, mut total) = (0.0, 0.0);
                    for _ in 0..steps {
                        let t = run.step()?.report.timings;
                        opt += t.optimizer;
                        total += t.rollout + t.gradient + t.metric;
                    }
                    optimizer_share = opt / total;
                    Ok(())
                })
            })?;
            let mut residual = 0.0;
            let mut credited = config.clone();
            credited.credit_nodes = DEFAULT_NODES;
            let inrun = p.install(|| {
                time(&mut || {
                    let mut run = Run::with_config(env.clone(), credited.clone())?;
                    run.advance(steps)?;
                    residual = run.ledger().map_or(f64::NAN, |l| l.residual());
                    Ok(())
                })
            })?;
            let shap =
                p.install(|| time(&mut || shapley(&env, &config, steps).map(|_| ()).map_err(Into::into)))?;
            let loo = p.install(|| {
                time(&mut || leave_one_out(&env, &config, steps).map(|_| ()).map_err(Into::into))
            })?;
            println!("{n} pieces, {steps} steps, {all} threads, B=64 × G=8, 256 eval tasks, {DEFAULT_NODES} Gauss–Legendre nodes");
            println!("{:<28} {:>10} {:>10}", "method", "seconds", "× plain");
            for (name, s) in [
                ("plain run (no credit)", plain),
                ("in-run credit", inrun),
                (&*format!("exact Shapley ({} runs)", 1 << n), shap),
                (&*format!("leave-one-out ({} runs)", n + 1), loo),
            ] {
                println!("{name:<28} {s:>10.3} {:>10.2}", s / plain);
            }
            println!("in-run residual {residual:+.3e}");
            println!(
                "the split optimizer (Owen value of Adam's update) is {:.1}% of a plain run's step time",
                100.0 * optimizer_share
            );
            json!({ "pieces": n, "steps": steps, "threads": all, "plain_s": plain, "inrun_s": inrun, "shapley_s": shap, "loo_s": loo,
                "inrun_ratio": inrun / plain, "shapley_ratio": shap / plain, "loo_ratio": loo / plain, "residual": residual, "optimizer_share_of_plain_step": optimizer_share })
        }
        Command::Catalogue { specs, seeds } => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let specs = if specs.is_empty() { catalogue::default_specs(&root)? } else { specs };
            let seeds: Vec<u64> = (1..=seeds).collect();
            let start = Instant::now();
            let mut results = Vec::new();
            for (i, path) in specs.iter().enumerate() {
                eprintln!(
                    "[{}/{}] {} ({:.0} s)",
                    i + 1,
                    specs.len(),
                    path.display(),
                    start.elapsed().as_secs_f64()
                );
                results.push(catalogue::run_spec(path, &seeds)?);
            }
            // Specs without a control take the catalogue's largest floor.
            let floor = results.iter().map(|r| r.noise_floor).fold(f64::NAN, f64::max);
            let results: Vec<catalogue::SpecResult> = results
                .into_iter()
                .map(|r| {
                    if r.noise_floor.is_nan() {
                        catalogue::summarize(r.name, std::path::Path::new(&r.path), r.setting, floor, r.seeds)
                    } else {
                        r
                    }
                })
                .collect();
            print_catalogue(&results);
            println!(
                "{} specs × {} seeds in {:.0} s",
                results.len(),
                seeds.len(),
                start.elapsed().as_secs_f64()
            );
            serde_json::to_value(&results)?
        }
    };
    if let Some(path) = cli.json {
        std::fs::write(&path, serde_json::to_string_pretty(&out)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn print_catalogue(results: &[catalogue::SpecResult]) {
    println!(
        "{:<28} {:<34} {:>8} {:>8} {:>7} {:>7} {:>9}",
        "spec", "setting", "ΔM", "floor", "signs", "τ", "conflict"
    );
    let mut total = (0, 0);
    for r in results {
        let n = r.seeds.len() as f64;
        let dm = r.seeds.iter().map(|s| s.delta_metric).sum::<f64>() / n;
        let taus: Vec<f64> = r.seeds.iter().filter_map(|s| s.tau).collect();
        let tau = taus.iter().sum::<f64>() / taus.len().max(1) as f64;
        let ci: Vec<f64> = r.seeds.iter().filter_map(|s| s.conflict_index).collect();
        let conflict = ci.iter().sum::<f64>() / ci.len().max(1) as f64;
        total.0 += r.signs_agree.0;
        total.1 += r.signs_agree.1;
        println!(
            "{:<28} {:<34} {:>+8.4} {:>8.4} {:>7} {:>+7.2} {:>9.2}",
            r.name,
            r.setting,
            dm,
            r.noise_floor,
            format!("{}/{}", r.signs_agree.0, r.signs_agree.1),
            tau,
            conflict
        );
        let ids: Vec<&str> = r.seeds[0].pieces.iter().map(|p| p.id.as_str()).collect();
        for (j, id) in ids.iter().enumerate() {
            let mean = |f: &dyn Fn(&catalogue::PieceResult) -> f64| {
                r.seeds.iter().map(|s| f(&s.pieces[j])).sum::<f64>() / n
            };
            println!(
                "    {:<24} in-run {:>+8.4}  Shapley {:>+8.4}  LOO {:>+8.4}",
                id,
                mean(&|p| p.inrun),
                mean(&|p| p.shapley),
                mean(&|p| p.loo)
            );
        }
        for (id, seed, a, b) in &r.sign_disagreements {
            println!("    sign differs: {id} on seed {seed}: in-run {a:+.4}, Shapley {b:+.4}");
        }
        if r.same_sign_seeds > 0 {
            println!(
                "    seeds whose Shapley values share one sign: {}; of those with some |in-run| > 2|ΔM|: {:?}",
                r.same_sign_seeds, r.bound_breaks
            );
        }
    }
    println!("signs agree on {}/{} (piece, seed) pairs above the noise floor", total.0, total.1);
}
