//! `gristmill credit`: in-run credit beside counterfactual Shapley and leave-one-out, and
//! each piece's standalone metric.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use comfy_table::Cell;
use gristmill_core::digest::Digest;
use gristmill_engine::Environment;
use gristmill_learn::{TrainConfig, Trainer};
use gristmill_measure::{kendall_tau, leave_one_out, sampled_shapley, shapley, standalone, InRunCredit};
use gristmill_store::{NewRun, Store};
use serde_json::json;

use crate::output::{num, progress, table, write_json};

/// Which credit methods to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// In-run path-integrated credit (one training run).
    Inrun,
    /// Exact Shapley over all 2^n coalitions.
    Shapley,
    /// Permutation-sampled Shapley with 95% intervals.
    ShapleySampled,
    /// Leave-one-out (n + 1 runs).
    Loo,
    /// In-run, exact Shapley and leave-one-out.
    All,
}

/// `gristmill credit`.
#[derive(Args, Debug)]
pub struct CreditArgs {
    /// Spec file (TOML) with a trainable policy.
    pub spec: PathBuf,
    /// Which method(s).
    #[arg(long, value_enum, default_value_t = Method::All)]
    pub method: Method,
    /// Root seed (default: the spec's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Training steps per run (default: the spec's).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Orders sampled by `shapley-sampled`.
    #[arg(long, default_value_t = 32)]
    pub permutations: usize,
    /// Worker threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn credit(db: &Path, args: CreditArgs) -> anyhow::Result<ExitCode> {
    let (valid, text) = match crate::commands::load_spec(&args.spec) {
        Ok(v) => v,
        Err(e) => return crate::commands::exit_for(e),
    };
    let valid = crate::commands::with_overrides(valid, args.seed, args.steps)?;
    let config: TrainConfig = crate::train::train_config(&valid).ok_or_else(|| {
        anyhow!(
            "credit needs a trainable policy (`loglinear` or `mlp`); the spec's policy is `{}`",
            valid.policy_kind.name
        )
    })?;
    let (pool, threads) = crate::commands::pool(args.threads)?;
    let (seed, steps) = (valid.spec.run.seed, valid.spec.run.steps);
    let mut store = Store::open(db)?;
    store.put_spec(&valid.hash, &valid.spec.name, &text)?;
    let mut new = NewRun::new("credit".into(), valid.hash.clone(), seed, steps);
    new.threads = threads as u32;
    new.config = json!({ "method": format!("{:?}", args.method), "permutations": args.permutations });
    let run_id = store.create_run(&new)?;
    let spec_hash = valid.hash.clone();
    let env = pool.install(|| Environment::build(valid))?;
    let result = pool.install(|| report(&env, &config, seed, steps, &args));
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            store.fail_run(run_id, &format!("{e:#}"))?;
            return Err(e);
        }
    };
    let mut d = Digest::new();
    d.str(&report.to_string());
    let mut body = report;
    body["run_id"] = json!(run_id.0);
    body["spec_hash"] = json!(spec_hash);
    body["seed"] = json!(seed);
    body["steps"] = json!(steps);
    store.put_result(run_id, "credit", &body)?;
    store.finish_run(run_id, &d.hex(), &body)?;
    print_report(&body);
    if let Some(path) = &args.json {
        write_json(path, &body)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn report(
    env: &Environment,
    config: &TrainConfig,
    seed: u64,
    steps: u64,
    args: &CreditArgs,
) -> anyhow::Result<serde_json::Value> {
    let n = env.pieces.len();
    let m = args.method;
    let want = |x: Method| m == x || m == Method::All;

    // Exact Shapley is refused before any work when it cannot be afforded.
    if want(Method::Shapley) && n > gristmill_measure::MAX_EXACT_PIECES {
        return Err(gristmill_measure::CoalitionError::TooManyPieces {
            n,
            runs: 1u128 << n,
            max: gristmill_measure::MAX_EXACT_PIECES,
        }
        .into());
    }

    let mut trainer = Trainer::new(env.clone(), config.clone(), seed)?;
    let metric_before = trainer.state.metric;
    let standalone = standalone(&trainer)?;
    let mut inrun = None;
    let mut metric_after = None;
    if want(Method::Inrun) {
        let mut c = InRunCredit::new(&trainer, config.credit_nodes.max(1));
        let pb = progress(steps, "in-run credit");
        for _ in 0..steps {
            let r = trainer.step()?;
            c.observe(&trainer, &r)?;
            pb.inc(1);
        }
        pb.finish_and_clear();
        metric_after = Some(trainer.state.metric);
        inrun = Some(c);
    }
    let pb = progress(0, "coalition runs");
    pb.set_style(
        indicatif::ProgressStyle::with_template("{msg} {spinner} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut shapley_values = None;
    let mut shapley_hw: Option<Vec<f64>> = None;
    let mut coalition_values = None;
    if want(Method::Shapley) {
        let (phi, values) = shapley(env, config, seed, steps)?;
        shapley_values = Some(phi);
        coalition_values = Some(values);
    } else if m == Method::ShapleySampled {
        let s = sampled_shapley(env, config, seed, steps, args.permutations)?;
        shapley_values = Some(s.mean);
        shapley_hw = Some(s.half_width);
    }
    let loo = if want(Method::Loo) { Some(leave_one_out(env, config, seed, steps)?) } else { None };
    pb.finish_and_clear();

    let inrun_rows = inrun.as_ref().map(|c| (c.rows.clone(), c.row_totals()));
    let inrun_of =
        |id: &str| inrun_rows.as_ref().and_then(|(r, t)| r.iter().position(|x| x == id).map(|i| t[i]));
    let pieces: Vec<serde_json::Value> = env
        .pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let s = &standalone[i];
            json!({
                "id": p.id,
                "kind": p.kind_name,
                "standalone": s.value,
                "standalone_metric": s.metric,
                "standalone_detail": s,
                "inrun": inrun_of(&p.id),
                "shapley": shapley_values.as_ref().map(|v| v[i]),
                "shapley_ci95": shapley_hw.as_ref().map(|v| v[i]),
                "loo": loo.as_ref().map(|v| v[i]),
            })
        })
        .collect();
    let pseudo: Vec<serde_json::Value> = ["kl", "weight_decay"]
        .iter()
        .filter_map(|id| inrun_of(id).map(|v| json!({ "id": id, "inrun": v })))
        .collect();
    // Rank agreement of each proxy with each measured effect, over the pieces that share the
    // proxy (an entropy and an agreement rate are not on one scale).
    let mut metrics: Vec<&str> = standalone.iter().filter(|s| s.value.is_some()).map(|s| s.metric).collect();
    metrics.sort_unstable();
    metrics.dedup();
    let taus: Vec<serde_json::Value> = metrics
        .iter()
        .map(|m| {
            let idx: Vec<usize> =
                (0..n).filter(|&i| standalone[i].metric == *m && standalone[i].value.is_some()).collect();
            let tau = |effect: &dyn Fn(usize) -> Option<f64>| {
                let (a, b): (Vec<f64>, Vec<f64>) =
                    idx.iter().filter_map(|&i| Some((standalone[i].value?, effect(i)?))).unzip();
                kendall_tau(&a, &b)
            };
            json!({
                "metric": m,
                "pieces": idx.iter().map(|&i| env.pieces[i].id.clone()).collect::<Vec<_>>(),
                "vs_inrun": tau(&|i| inrun_of(&env.pieces[i].id)),
                "vs_shapley": tau(&|i| shapley_values.as_ref().map(|v| v[i])),
            })
        })
        .collect();
    let delta_metric = inrun.as_ref().map(|c| c.delta_metric);
    Ok(json!({
        "metric_before": metric_before,
        "metric_after": metric_after,
        "delta_metric": delta_metric,
        "residual": inrun.as_ref().map(|c| c.residual()),
        "max_step_residual": inrun.as_ref().map(|c| c.max_step_residual),
        "quadrature_nodes": inrun.as_ref().map(|c| c.nodes.len()),
        "pieces": pieces,
        "pseudo_pieces": pseudo,
        "sources": inrun.as_ref().map(|c| json!({ "columns": c.columns, "credit": c.column_totals() })),
        "cells": inrun.as_ref().map(|c| json!({ "rows": c.rows, "columns": c.columns, "values": c.cells })),
        "curve": inrun.as_ref().map(|c| &c.curve),
        "conflict_index": inrun.as_ref().and_then(|c| c.conflict_index()),
        "conflict": inrun.as_ref().map(crate::train::conflict_pairs),
        "kendall_tau": taus,
        "coalitions": coalition_values.map(|v| v.into_iter().map(|(mask, m)| json!({ "mask": mask, "metric": m })).collect::<Vec<_>>()),
        "shapley_efficiency_target": shapley_values.as_ref().map(|v| v.iter().sum::<f64>()),
    }))
}

fn print_report(body: &serde_json::Value) {
    let mut t = table(&["piece", "kind", "standalone", "in-run", "Shapley", "LOO"]);
    let f = |v: &serde_json::Value| v.as_f64();
    if let Some(pieces) = body["pieces"].as_array() {
        for p in pieces {
            let shap = match (f(&p["shapley"]), f(&p["shapley_ci95"])) {
                (Some(s), Some(h)) => Cell::new(format!("{s:.5} ± {h:.5}")),
                (s, _) => num(s, 5),
            };
            let standalone = match f(&p["standalone"]) {
                Some(v) => Cell::new(format!("{v:.3} ({})", p["standalone_metric"].as_str().unwrap_or(""))),
                None => Cell::new("-"),
            };
            t.add_row(vec![
                Cell::new(p["id"].as_str().unwrap_or("")),
                Cell::new(p["kind"].as_str().unwrap_or("")),
                standalone,
                num(f(&p["inrun"]), 5),
                shap,
                num(f(&p["loo"]), 5),
            ]);
        }
    }
    if let Some(pseudo) = body["pseudo_pieces"].as_array() {
        for p in pseudo {
            t.add_row(vec![
                Cell::new(p["id"].as_str().unwrap_or("")),
                Cell::new("pseudo-piece"),
                Cell::new("-"),
                num(f(&p["inrun"]), 5),
                Cell::new("-"),
                Cell::new("-"),
            ]);
        }
    }
    println!("{t}");
    if let (Some(cols), Some(vals)) =
        (body["sources"]["columns"].as_array(), body["sources"]["credit"].as_array())
    {
        let mut t = table(&["source", "in-run credit"]);
        for (c, v) in cols.iter().zip(vals) {
            t.add_row(vec![Cell::new(c.as_str().unwrap_or("")), num(v.as_f64(), 5)]);
        }
        println!("{t}");
    }
    match (f(&body["delta_metric"]), f(&body["residual"])) {
        (Some(d), Some(r)) => println!(
            "M {:.4} → {:.4}: ΔM = {d:+.6e}, residual ΔM − Σ in-run credit = {r:+.3e} ({} Gauss–Legendre nodes)",
            f(&body["metric_before"]).unwrap_or(f64::NAN),
            f(&body["metric_after"]).unwrap_or(f64::NAN),
            body["quadrature_nodes"]
        ),
        _ => println!("M before {:.4}", f(&body["metric_before"]).unwrap_or(f64::NAN)),
    }
    if let Some(index) = f(&body["conflict_index"]) {
        println!("conflict index Σ|in-run credit|/|ΔM| = {index:.2} (1.00: no piece works against the gain)");
    }
    if let Some(pairs) = body["conflict"].as_array().filter(|p| !p.is_empty()) {
        let text: Vec<String> = pairs
            .iter()
            .take(3)
            .map(|p| {
                format!(
                    "{} ↔ {} {:.4} (most on {})",
                    p["a"].as_str().unwrap_or(""),
                    p["b"].as_str().unwrap_or(""),
                    p["opposition"].as_f64().unwrap_or(f64::NAN),
                    p["worst_source"].as_str().unwrap_or("")
                )
            })
            .collect();
        println!("pulling against each other (credit each cancelled of the other): {}", text.join("; "));
    }
    if let Some(s) = f(&body["shapley_efficiency_target"]) {
        println!("Σ Shapley = {s:+.6e} (= M_T(all pieces) − M_T(no pieces))");
    }
    if let Some(taus) = body["kendall_tau"].as_array() {
        for t in taus {
            let fmt = |v: &serde_json::Value| v.as_f64().map_or("-".to_string(), |v| format!("{v:+.3}"));
            println!(
                "Kendall τ of {} vs in-run {}, vs Shapley {} (over {})",
                t["metric"].as_str().unwrap_or(""),
                fmt(&t["vs_inrun"]),
                fmt(&t["vs_shapley"]),
                t["pieces"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            );
        }
    }
}
