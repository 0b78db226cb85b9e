//! Training runs: a [`Run`] recorded into the store, and its closing tables.

use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Context;
use gristmill_core::spec::ValidSpec;
use gristmill_engine::Environment;
use gristmill_learn::TrainConfig;
use gristmill_run::report::{curve, TrainReport};
use gristmill_run::{Run, RunError, StoreSink, Trained};
use gristmill_store::lease::LeaseHolder;
use gristmill_store::{CheckpointRetention, RunId, Store};

use crate::output::{interrupt_flag, num, progress, table, write_json, Interrupted, Progress};

/// Trains `valid` as run `run_id` of `store` (from scratch, or from its last checkpoint when
/// `resume`), recording steps and checkpoints, and returns the run. A failing step is
/// checkpointed at the last good state and the run marked failed.
pub fn train_into(
    store: &mut Store,
    run_id: RunId,
    valid: ValidSpec,
    config: TrainConfig,
    resume: Option<(u64, Vec<u8>)>,
    show_progress: bool,
    services: &gristmill_engine::Services,
) -> anyhow::Result<Run> {
    let steps = valid.spec().run.steps;
    let built =
        Environment::build_with(valid, services).map_err(anyhow::Error::from).and_then(|env| match &resume {
            Some((step, bytes)) => {
                Run::resume(env, config, bytes).with_context(|| format!("checkpoint at step {step}"))
            }
            None => Ok(Run::with_config(env, config)?),
        });
    let mut run = match built {
        Ok(run) => run,
        Err(e) => {
            store.fail_run(run_id, &format!("{e:#}"))?;
            return Err(e);
        }
    };
    let pb = if show_progress { progress(steps, "training") } else { Progress::hidden() };
    pb.set_position(run.trainer().steps_done());
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
        Err(e @ RunError::Stopped { checkpointed_at: at, .. }) if e.is_outside_failure() => {
            // A grader or sandbox that failed is not the run's fault and may come back: the
            // run is stopped at its checkpoint, not failed, so it can be resumed.
            store.stop_run(run_id)?;
            Err(anyhow::Error::from(e).context(format!(
                "run {run_id} stopped at step {at} (checkpointed) because an outside service failed; \
                 `gristmill resume {run_id}` continues once it answers"
            )))
        }
        Err(e @ RunError::Stopped { .. }) => {
            store.fail_run(run_id, &e.to_string())?;
            Err(anyhow::Error::from(e).context(format!("run {run_id} stopped")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Trains (from scratch or from the run's last checkpoint), stores and reports.
pub fn train_run(
    store: &mut Store,
    run_id: RunId,
    valid: ValidSpec,
    config: TrainConfig,
    threads: Option<usize>,
    json_path: Option<&Path>,
    resume: bool,
) -> anyhow::Result<ExitCode> {
    let (pool, _) = crate::commands::pool(threads)?;
    if resume {
        // One writer per run: a second `resume` of a run being trained is refused at once,
        // naming the holder; the lease of a process that died is taken over.
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
    let run = pool.install(|| train_into(store, run_id, valid, config, checkpoint, true, &services))?;
    let report = TrainReport::of(&run, run_id.0, curve(store.step_metrics(run_id)?));
    let summary = serde_json::to_value(&report)?;
    for (id, piece) in &report.pieces {
        store.put_piece_summary(run_id, id, &piece.kind, &serde_json::to_value(piece)?)?;
    }
    store.finish_run(run_id, &report.digest, &without_curve(&summary))?;
    println!(
        "run {run_id}: {name} (spec {}), seed {}, trained steps {from}..{} with {}",
        &spec_hash[..12],
        report.seed,
        report.steps,
        run.trainer().config().arch_name()
    );
    print_train(&run, &report);
    println!("digest {}", report.digest);
    if let Some(path) = json_path {
        write_json(path, &summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The summary as stored: the learning curve lives once, in the step metrics (a 100k-step
/// report's curve is ~30 MB of JSON, more than everything else the run stores together).
fn without_curve(summary: &serde_json::Value) -> serde_json::Value {
    let mut stored = summary.clone();
    if let Some(fields) = stored.as_object_mut() {
        fields.remove("curve");
    }
    stored
}

/// A finished run's report as `train_run` printed it: the stored summary with the learning
/// curve put back from the step metrics.
pub fn stored_report(
    store: &Store,
    run_id: RunId,
    summary: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let mut report = summary.clone();
    if let Some(fields) = report.as_object_mut() {
        fields.insert("curve".into(), serde_json::to_value(curve(store.step_metrics(run_id)?))?);
    }
    Ok(report)
}

/// The spec's checkpoint retention: the latest `checkpoint_keep` and the first of every
/// `checkpoint_keep_every` steps, so the store grows linearly with the run.
fn retention(config: &TrainConfig) -> CheckpointRetention {
    let last =
        std::num::NonZeroUsize::new(config.checkpoint_keep as usize).unwrap_or(std::num::NonZeroUsize::MIN);
    match std::num::NonZeroU64::new(config.checkpoint_keep_every) {
        Some(every) => CheckpointRetention::LastAndEvery { last, every },
        None => CheckpointRetention::Last(last),
    }
}

/// Prints the closing tables of a training run.
pub fn print_train(run: &Run, o: &TrainReport) {
    let trainer = run.trainer();
    println!(
        "gold metric M (expected gold score on {} held-out tasks): before {:.4} → after {:.4} (ΔM {:+.4})",
        trainer.suite().len(),
        o.gold_before,
        o.gold_after,
        o.gold_after - o.gold_before
    );
    let credit_of = |id: &str| run.ledger().and_then(|l| l.row(id));
    let share = |v: Option<f64>| match (v, o.credit.as_ref()) {
        (Some(v), Some(c)) if c.delta_metric != 0.0 => {
            comfy_table::Cell::new(format!("{:+.0}%", 100.0 * v / c.delta_metric))
                .set_alignment(comfy_table::CellAlignment::Right)
        }
        _ => num(None, 0),
    };
    if o.credit.is_some() {
        println!(
            "in-run credit: how much of ΔM each piece's share of the updates produced; the column sums to ΔM"
        );
    }
    let mut t = table(&["piece", "kind", "weight", "mean train reward", "in-run credit", "of ΔM"]);
    for p in trainer.env().pieces.iter() {
        let r = &o.pieces[&p.id];
        t.add_row(vec![
            comfy_table::Cell::new(&p.id),
            comfy_table::Cell::new(p.kind_name),
            num(Some(p.weight), 2),
            num(r.mean_reward, 4),
            num(r.inrun, 5),
            share(r.inrun),
        ]);
    }
    for pseudo in ["kl", "weight_decay"] {
        if let Some(v) = credit_of(pseudo) {
            t.add_row(vec![
                comfy_table::Cell::new(pseudo),
                comfy_table::Cell::new("pseudo-piece"),
                num(None, 2),
                num(None, 4),
                num(Some(v), 5),
                share(Some(v)),
            ]);
        }
    }
    println!("{t}");
    let Some(c) = &o.credit else { return };
    println!(
        "ΔM = {:+.6e}, Σ credit = {:+.6e}, residual = {:+.3e} (quadrature and rounding; a check, not a fit)",
        c.delta_metric,
        c.delta_metric - c.residual,
        c.residual
    );
    let by_source: Vec<String> = c
        .columns
        .iter()
        .zip(&c.sources)
        .filter(|(id, v)| id.as_str() != "(global)" || **v != 0.0)
        .map(|(id, v)| format!("{id} {v:+.4}"))
        .collect();
    println!("credit by source: {}", by_source.join(", "));
    print_conflict(c.conflict_index, &c.conflict);
}

/// The conflict index and the pairs of pieces that pull against each other most.
pub fn print_conflict(index: Option<f64>, pairs: &[gristmill_run::report::ConflictPair]) {
    if let Some(index) = index {
        println!("conflict index Σ|credit|/|ΔM| = {index:.2} (1.00: no piece works against the gain)");
    }
    if pairs.is_empty() {
        return;
    }
    let text: Vec<String> = pairs
        .iter()
        .take(3)
        .map(|p| format!("{} ↔ {} {:.4} (most on {})", p.a, p.b, p.opposition, p.worst_source))
        .collect();
    println!("pulling against each other (credit each cancelled of the other): {}", text.join("; "));
}
