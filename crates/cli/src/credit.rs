//! `gristmill credit`: in-run credit beside counterfactual Shapley and leave-one-out, and
//! each piece's standalone metric.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use comfy_table::Cell;
use gristmill_core::digest::Digest;
use gristmill_engine::Environment;
use gristmill_learn::TrainConfig;
use gristmill_run::report::{CreditReport, Methods};
use gristmill_store::{NewRun, Store};
use serde_json::json;

use crate::commands::RunFlags;

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
    #[arg(required_unless_present = "run")]
    pub spec: Option<PathBuf>,
    /// Show the stored credit table of run ID instead (a `credit` run, or a run an outside
    /// trainer such as TRL recorded through the Python package).
    #[arg(long, value_name = "ID", conflicts_with = "spec")]
    pub run: Option<i64>,
    /// Which method(s).
    #[arg(long, value_enum, default_value_t = Method::All)]
    pub method: Method,
    /// Orders sampled by `shapley-sampled`.
    #[arg(long, default_value_t = 32)]
    pub permutations: usize,
    #[command(flatten)]
    pub flags: RunFlags,
}

pub fn credit(db: &Path, args: CreditArgs) -> anyhow::Result<ExitCode> {
    if let Some(id) = args.run {
        return stored(db, id, args.flags.json.as_deref());
    }
    let spec = args.spec.as_deref().expect("clap requires a spec without --run");
    let (valid, text) = match crate::commands::load_spec(spec, &args.flags.overrides()) {
        Ok(v) => v,
        Err(e) => return crate::commands::exit_for(e),
    };
    if let Some(lm) = gristmill_lm_run::LmConfig::of(&valid).transpose()? {
        return crate::lmtrain::credit_lm(db, valid, &text, lm, args.method, &args.flags);
    }
    let config: TrainConfig = TrainConfig::of(&valid).ok_or_else(|| {
        anyhow!(
            "credit needs a trainable policy (`loglinear`, `mlp` or `lm`); the spec's policy is `{}`",
            valid.policy_kind().name
        )
    })?;
    let (pool, threads) = crate::commands::pool(args.flags.threads)?;
    let (seed, steps) = (valid.seed(), valid.spec().run.steps);
    let mut store = Store::open(db)?;
    let mut new = NewRun::new("credit".into(), valid.hash(), seed, steps);
    new.threads = threads as u32;
    new.config = json!({ "method": format!("{:?}", args.method), "permutations": args.permutations });
    let run_id = crate::commands::create_run(&mut store, &valid, &text, &new)?;
    let spec_hash = valid.hash().to_string();
    let m = args.method;
    let want = |x: Method| m == x || m == Method::All;
    let methods = Methods {
        inrun: want(Method::Inrun),
        shapley: want(Method::Shapley),
        sampled: (m == Method::ShapleySampled).then_some(args.permutations),
        loo: want(Method::Loo),
    };
    let services = crate::verdicts::services(db, &valid)?;
    let result = pool.install(|| -> anyhow::Result<CreditReport> {
        let env = Environment::build_with(valid, &services)?;
        // Each later phase (exact Shapley, leave-one-out) gets its own display of unknown length.
        let pb = std::cell::RefCell::new(progress(if methods.inrun { steps } else { 0 }, "in-run credit"));
        let mut phase = |name: &str| {
            pb.borrow().finish();
            *pb.borrow_mut() = progress(0, name);
        };
        let report = CreditReport::compute(&env, &config, methods, &mut |_| pb.borrow().inc(1), &mut phase)?;
        pb.borrow().finish();
        Ok(report)
    });
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            store.fail_run(run_id, &format!("{e:#}"))?;
            return Err(e);
        }
    };
    // The digest covers the report itself, before the run's own identifiers are added.
    let digest = Digest::new().str(&serde_json::to_value(&report)?.to_string()).hex();
    report.run_id = Some(run_id.0);
    report.spec_hash = Some(spec_hash);
    report.seed = Some(seed);
    report.steps = Some(steps);
    let body = serde_json::to_value(&report)?;
    store.put_result(run_id, "credit", &body)?;
    store.finish_run(run_id, &digest, &body)?;
    print_report(&body);
    if let Some(path) = &args.flags.json {
        write_json(path, &body)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `credit --run ID`: the credit result a run stored.
fn stored(db: &Path, id: i64, json_out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let store = Store::open(db)?;
    let run = store.run(gristmill_store::RunId(id))?;
    let body = store.result(run.id, "credit")?.ok_or_else(|| {
        anyhow!(
            "run {id} (`{}`, {}) has no stored credit result; `gristmill credit SPEC` and finished outside runs have one",
            run.kind.as_str(),
            run.status.as_str()
        )
    })?;
    if body.get("pieces").is_some() {
        print_report(&body);
    } else {
        print_outside(&body);
    }
    if let Some(path) = json_out {
        write_json(path, &body)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The table of an outside trainer's credit (`gristmill_run::OutsideReport`).
fn print_outside(body: &serde_json::Value) {
    let credit = &body["credit"];
    let f = |v: &serde_json::Value| v.as_f64();
    let columns: Vec<&str> =
        credit["columns"].as_array().into_iter().flatten().filter_map(|c| c.as_str()).collect();
    let mut header = vec!["row"];
    header.extend(columns.iter().copied());
    header.push("total");
    let mut t = table(&header);
    let cells: Vec<f64> = credit["cells"].as_array().into_iter().flatten().filter_map(f).collect();
    let width = columns.len().max(1);
    for (r, row) in credit["rows"].as_array().into_iter().flatten().enumerate() {
        let values = cells.get(r * width..(r + 1) * width).unwrap_or(&[]);
        let mut line = vec![Cell::new(row.as_str().unwrap_or(""))];
        line.extend(values.iter().map(|v| num(Some(*v), 6)));
        line.push(num(Some(values.iter().sum()), 6));
        t.add_row(line);
    }
    println!("{t}");
    println!(
        "run {} trained by {}: {} steps; ΔM = {} (se {}), residual {} (largest step {}); M after = {}",
        body["run_id"],
        body["trainer"].as_str().unwrap_or("?"),
        body["steps"],
        fmt(f(&credit["delta_metric"])),
        fmt(f(&body["delta_se"])),
        fmt(f(&credit["residual"])),
        fmt(f(&credit["max_step_residual"])),
        fmt(f(&body["gold_after"])),
    );
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.6}"))
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
