//! Language-model training runs (`[policy] kind = "lm"`): an [`LmRun`] recorded into the
//! store, its closing tables, and its counterfactual credit.

use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Context;
use gristmill_core::spec::ValidSpec;
use gristmill_engine::Environment;
use gristmill_lm_run::{LmConfig, LmReport, LmRun};
use gristmill_run::report::curve;
use gristmill_run::{StoreSink, Trained};
use gristmill_store::lease::LeaseHolder;
use gristmill_store::{CheckpointRetention, RunId, Store};

use crate::output::{interrupt_flag, num, progress, table, write_json, Interrupted, Progress};

fn retention(config: &LmConfig) -> CheckpointRetention {
    let last =
        std::num::NonZeroUsize::new(config.checkpoint_keep as usize).unwrap_or(std::num::NonZeroUsize::MIN);
    match std::num::NonZeroU64::new(config.checkpoint_keep_every) {
        Some(every) => CheckpointRetention::LastAndEvery { last, every },
        None => CheckpointRetention::Last(last),
    }
}

/// Trains `valid` as run `run_id` (from scratch, or from `resume`'s checkpoint), recording
/// steps and checkpoints; a failing step is checkpointed at the last good state and the run
/// marked failed.
pub fn train_lm_into(
    store: &mut Store,
    run_id: RunId,
    valid: ValidSpec,
    config: LmConfig,
    resume: Option<(u64, Vec<u8>)>,
    show_progress: bool,
    services: &gristmill_engine::Services,
) -> anyhow::Result<LmRun> {
    let steps = valid.spec().run.steps;
    let built =
        Environment::build_with(valid, services).map_err(anyhow::Error::from).and_then(|env| match &resume {
            Some((step, bytes)) => {
                LmRun::resume(env, config, bytes).with_context(|| format!("checkpoint at step {step}"))
            }
            None => Ok(LmRun::new(env, config)?),
        });
    let mut run = match built {
        Ok(run) => run,
        Err(e) => {
            store.fail_run(run_id, &format!("{e:#}"))?;
            return Err(e);
        }
    };
    let pb = if show_progress { progress(steps, "training the language model") } else { Progress::hidden() };
    pb.set_position(run.steps_done());
    let stop = interrupt_flag();
    let result = run.train(steps, &mut StoreSink::new(store, run_id), &mut |_| {
        pb.inc(1);
        if stop.load(Ordering::Relaxed) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    pb.finish();
    match result {
        Ok(Trained::Finished) => Ok(run),
        Ok(Trained::Stopped { at }) => {
            store.stop_run(run_id)?;
            Err(Interrupted { run: run_id, at }.into())
        }
        Err(e) => {
            store.fail_run(run_id, &e.to_string())?;
            Err(anyhow::Error::from(e).context(format!("run {run_id} stopped")))
        }
    }
}

/// Trains, stores and reports a language-model run.
pub fn train_lm_run(
    store: &mut Store,
    run_id: RunId,
    valid: ValidSpec,
    config: LmConfig,
    threads: Option<usize>,
    json_path: Option<&Path>,
    resume: bool,
) -> anyhow::Result<ExitCode> {
    let (pool, _) = crate::commands::pool(threads)?;
    if resume {
        store.acquire_lease(run_id, &LeaseHolder::this_process())?;
    }
    store.set_checkpoint_retention(retention(&config));
    let (name, spec_hash) = (valid.spec().name.clone(), valid.hash().to_string());
    let checkpoint = if resume { store.latest_checkpoint(run_id)?.map(|c| (c.step, c.bytes)) } else { None };
    let from = checkpoint.as_ref().map_or(0, |c| c.0);
    let services = match store.path() {
        Some(db) => crate::verdicts::services(db, &valid)?,
        None => gristmill_engine::Services::default(),
    };
    let (report, eval_size) = pool.install(|| -> anyhow::Result<(LmReport, usize)> {
        let eval_size = valid.spec().eval.size as usize;
        let mut run = train_lm_into(store, run_id, valid, config, checkpoint, true, &services)?;
        Ok((run.report()?, eval_size))
    })?;
    let mut summary = serde_json::to_value(&report)?;
    summary["run_id"] = run_id.0.into();
    summary["spec_hash"] = spec_hash.clone().into();
    store.finish_run(run_id, &report.digest, &summary)?;
    println!(
        "run {run_id}: {name} (spec {}), seed {}, trained steps {from}..{} of {} ({} trainable parameters)",
        &spec_hash[..12],
        report.seed,
        report.steps,
        report.model,
        report.trainable_params
    );
    print_lm(&report, eval_size);
    println!("digest {}", report.digest);
    if let Some(path) = json_path {
        summary["curve"] = serde_json::to_value(curve(store.step_metrics(run_id)?))?;
        write_json(path, &summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The closing tables of a language-model run.
pub fn print_lm(o: &LmReport, eval_size: usize) {
    println!(
        "gold metric M (expected gold score on {eval_size} held-out tasks, estimated on common random numbers): \
         before {:.4} → after {:.4} ± {:.4}",
        o.gold_before, o.gold_after, o.gold_se
    );
    if let (Some(a), Some(b)) = (o.loglik_before, o.loglik_after) {
        println!("log-likelihood metric L (teacher-forced gold completions): before {a:.4} → after {b:.4}");
    }
    let mut t = table(&["piece", "mean train reward", "credit on M", "credit on L"]);
    let credit = o.credit.as_ref();
    let reward = |id: &str| o.mean_rewards.get(id).copied();
    match credit {
        None => {
            for (id, r) in &o.mean_rewards {
                t.add_row(vec![comfy_table::Cell::new(id), num(Some(*r), 4), num(None, 5), num(None, 5)]);
            }
        }
        Some(c) => {
            for row in &c.rows {
                // A row is a piece, a part of one (`judge/item`: a rubric item), or a pseudo-piece.
                let (label, mean) = match (reward(&row.id), row.id.split_once('/')) {
                    (Some(r), _) => (row.id.clone(), Some(r)),
                    (None, Some((piece, _))) if reward(piece).is_some() => {
                        (format!("{} (item)", row.id), None)
                    }
                    _ => (format!("{} (pseudo-piece)", row.id), None),
                };
                t.add_row(vec![
                    comfy_table::Cell::new(label),
                    num(mean, 4),
                    num(Some(row.gold), 5),
                    num(Some(row.loglik), 5),
                ]);
            }
        }
    }
    println!("{t}");
    if let Some(c) = credit {
        println!(
            "ΔM = {:+.5} ± {:.5} (paired over the common samples), residual {:+.3e} (the trapezoid on an estimated ∇M)",
            c.gold_delta, c.gold_delta_se, c.gold_residual
        );
        println!(
            "ΔL = {:+.6e}, residual {:+.3e} (Gauss–Legendre; float32 model), largest per-step {:.2e}",
            c.loglik_delta, c.loglik_residual, c.loglik_max_step_residual
        );
        let sources: Vec<String> = c
            .columns
            .iter()
            .enumerate()
            .map(|(k, id)| {
                let g: f64 = c.rows.iter().map(|r| r.gold_by_column[k]).sum();
                let l: f64 = c.rows.iter().map(|r| r.loglik_by_column[k]).sum();
                format!("{id} M {g:+.4} L {l:+.4}")
            })
            .collect();
        println!("credit by source: {}", sources.join(", "));
    }
    println!("split: largest relative ‖Σ cells − Δθ‖∞ / ‖Δθ‖∞ = {:.1e}", o.max_split_error);
}

/// What a replay recomputes: the digest, every `(step, metric, value)`, the threads used.
pub type Replayed = (String, Vec<(u64, String, f64)>, usize);

/// Re-trains a stored language-model run into a scratch store: its digest and metrics.
pub fn replay_lm(
    valid: ValidSpec,
    text: &str,
    config: LmConfig,
    seed: u64,
    steps: u64,
    threads: Option<usize>,
    services: &gristmill_engine::Services,
) -> anyhow::Result<Replayed> {
    let (pool, n) = crate::commands::pool(threads)?;
    let mut scratch = Store::open_in_memory()?;
    scratch.put_spec(valid.hash(), &valid.spec().name, text)?;
    let id = scratch.create_run(&gristmill_store::NewRun::new(
        "train".into(),
        valid.hash().to_string(),
        seed,
        steps,
    ))?;
    let digest = pool.install(|| -> anyhow::Result<String> {
        let mut run = train_lm_into(&mut scratch, id, valid, config, None, true, services)?;
        Ok(run.report()?.digest)
    })?;
    let metrics = scratch.step_metrics(id)?.into_iter().map(|m| (m.step, m.name, m.value)).collect();
    Ok((digest, metrics, n))
}

/// `gristmill credit` for a language-model spec: in-run credit on both metrics, and the
/// counterfactual values (leave-one-out, exact Shapley) from coalition runs on common random
/// numbers, side by side.
pub fn credit_lm(
    db: &Path,
    valid: ValidSpec,
    text: &str,
    config: LmConfig,
    method: crate::credit::Method,
    flags: &crate::commands::RunFlags,
) -> anyhow::Result<ExitCode> {
    use crate::credit::Method;
    let (pool, threads) = crate::commands::pool(flags.threads)?;
    let (seed, steps) = (valid.seed(), valid.spec().run.steps);
    let mut store = Store::open(db)?;
    let mut new = gristmill_store::NewRun::new("credit".into(), valid.hash(), seed, steps);
    new.threads = threads as u32;
    new.config = serde_json::json!({ "method": format!("{method:?}"), "policy": "lm" });
    let run_id = crate::commands::create_run(&mut store, &valid, text, &new)?;
    let spec_hash = valid.hash().to_string();
    let services = crate::verdicts::services(db, &valid)?;
    let want = |x: Method| method == x || method == Method::All;
    if method == Method::ShapleySampled {
        anyhow::bail!(
            "sampled Shapley is not offered for language-model runs yet; use --method shapley or loo"
        );
    }
    let result = pool.install(|| -> anyhow::Result<serde_json::Value> {
        let env = Environment::build_with(valid, &services)?;
        let ids: Vec<String> = env.pieces.iter().map(|p| p.id.clone()).collect();
        let mut body = serde_json::json!({ "policy": "lm", "pieces": ids });
        if want(Method::Inrun) {
            let pb = progress(steps, "in-run credit");
            let mut run = LmRun::new(env.clone(), config.clone())?;
            for _ in 0..steps {
                run.step()?;
                pb.inc(1);
            }
            pb.finish();
            body["inrun"] = serde_json::to_value(run.report()?)?;
        }
        let tick = |what: &str| {
            let pb = progress(0, what);
            move |_mask: u64| pb.inc(1)
        };
        if want(Method::Loo) {
            let (loo, values) =
                gristmill_lm_run::leave_one_out(&env, &config, steps, &mut tick("leave-one-out"))?;
            body["loo"] = serde_json::to_value(&loo)?;
            body["loo_values"] = serde_json::to_value(&values)?;
        }
        if want(Method::Shapley) {
            let (phi, values) = gristmill_lm_run::shapley(&env, &config, steps, &mut tick("exact Shapley"))?;
            body["shapley"] = serde_json::to_value(&phi)?;
            body["coalition_values"] = serde_json::to_value(&values)?;
        }
        Ok(body)
    });
    let mut body = match result {
        Ok(b) => b,
        Err(e) => {
            store.fail_run(run_id, &format!("{e:#}"))?;
            return Err(e);
        }
    };
    let digest = gristmill_core::digest::Digest::new().str(&body.to_string()).hex();
    body["run_id"] = run_id.0.into();
    body["spec_hash"] = spec_hash.into();
    body["seed"] = seed.into();
    body["steps"] = steps.into();
    store.put_result(run_id, "credit", &body)?;
    store.finish_run(run_id, &digest, &body)?;
    let ids: Vec<String> = serde_json::from_value(body["pieces"].clone())?;
    let mut t = table(&["piece", "in-run on M", "in-run on L", "leave-one-out", "Shapley"]);
    for (i, id) in ids.iter().enumerate() {
        let row = body["inrun"]["credit"]["rows"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["id"] == id.as_str()));
        let at = |key: &str| body[key].get(i).and_then(|v| v.as_f64());
        t.add_row(vec![
            comfy_table::Cell::new(id),
            num(row.and_then(|r| r["gold"].as_f64()), 5),
            num(row.and_then(|r| r["loglik"].as_f64()), 5),
            num(at("loo"), 5),
            num(at("shapley"), 5),
        ]);
    }
    println!("credit run {run_id} (language model, {steps} steps, seed {seed})");
    println!("{t}");
    println!("digest {digest}");
    if let Some(path) = &flags.json {
        write_json(path, &body)?;
    }
    Ok(ExitCode::SUCCESS)
}
