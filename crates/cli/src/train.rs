//! Training runs: the loop with in-run credit, checkpoints and the closing report.

use anyhow::Context;
use gristmill_core::digest::Digest;
use gristmill_core::spec::ValidSpec;
use gristmill_engine::Environment;
use gristmill_learn::{TrainConfig, TrainState, Trainer};
use gristmill_measure::InRunCredit;
use gristmill_store::{RunId, Store};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::output::{num, progress, table};

/// What a checkpoint holds: the trainer state and the credit accumulated so far.
#[derive(Serialize, Deserialize)]
pub struct Checkpoint {
    /// Trainer state.
    pub state: TrainState,
    /// In-run credit so far.
    pub credit: Option<InRunCredit>,
    /// Training reward sums per channel so far.
    pub reward_sums: Vec<f64>,
}

/// The result of a finished training run.
pub struct TrainOutcome {
    pub gold_before: f64,
    pub gold_after: f64,
    pub digest: String,
    pub credit: Option<InRunCredit>,
    pub mean_reward: Vec<f64>,
    pub curve: Vec<serde_json::Value>,
}

/// The train config of a validated spec, if its policy trains.
pub fn train_config(valid: &ValidSpec) -> Option<TrainConfig> {
    TrainConfig::from_params(valid.policy_kind.name, &valid.policy_params)
}

/// Builds a trainer for `valid` at step 0, or restored from `checkpoint` (a stored
/// checkpoint's step and bytes).
/// A training run in memory: the trainer and what the closing report accumulates.
pub struct Session {
    /// The trainer.
    pub trainer: Trainer,
    /// In-run credit so far (when credit nodes > 0).
    pub credit: Option<InRunCredit>,
    /// Training reward sums per channel so far.
    pub reward_sums: Vec<f64>,
    /// `M(θ₀)`.
    pub gold_before: f64,
}

pub fn prepare(
    valid: ValidSpec,
    config: TrainConfig,
    checkpoint: Option<(u64, Vec<u8>)>,
) -> anyhow::Result<Session> {
    let seed = valid.spec.run.seed;
    let env = Environment::build(valid)?;
    let mut trainer = Trainer::new(env, config.clone(), seed)?;
    let gold_before = trainer.state.metric;
    let mut credit = (config.credit_nodes > 0).then(|| InRunCredit::new(&trainer, config.credit_nodes));
    let mut reward_sums = vec![0.0; trainer.env.channels.len()];
    if let Some((step, bytes)) = checkpoint {
        let ck: Checkpoint = serde_json::from_slice(&bytes)
            .with_context(|| format!("checkpoint at step {step} is unreadable"))?;
        trainer.restore(ck.state)?;
        credit = ck.credit;
        reward_sums = ck.reward_sums;
    }
    Ok(Session { trainer, credit, reward_sums, gold_before })
}

/// Runs `trainer` to `total_steps`, checkpointing every `checkpoint_every` steps and on
/// failure (the last good state), storing the curve as it goes.
pub fn train_loop(
    store: &mut Store,
    run_id: RunId,
    session: &mut Session,
    total_steps: u64,
    show_progress: bool,
) -> anyhow::Result<TrainOutcome> {
    let Session { trainer, credit, reward_sums, gold_before } = session;
    let gold_before = *gold_before;
    let every = trainer.config.checkpoint_every.max(1);
    let ids = trainer.env.channel_ids();
    let pb = progress(total_steps, "training");
    if !show_progress {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    pb.set_position(trainer.state.step);
    let mut buffered: Buffered = Vec::new();
    while trainer.state.step < total_steps {
        let result = trainer.step().map_err(anyhow::Error::from).and_then(|report| {
            let mut values = vec![
                ("gold".to_string(), report.metric_after),
                ("train_gold".to_string(), report.train_gold),
            ];
            for (id, r) in ids.iter().zip(&report.train_reward) {
                values.push((format!("reward.{id}"), *r));
            }
            for (s, r) in reward_sums.iter_mut().zip(&report.train_reward) {
                *s += r;
            }
            if let Some(c) = credit.as_mut() {
                let sc = c.observe(trainer, &report)?;
                values.push(("residual".to_string(), sc.residual));
                for (id, total) in c.rows.iter().zip(c.row_totals()) {
                    values.push((format!("credit.{id}"), total));
                }
            }
            Ok((report.step, values))
        });
        match result {
            Ok((step, values)) => {
                buffered.push((step, values));
                pb.inc(1);
                if trainer.state.step.is_multiple_of(every) || trainer.state.step == total_steps {
                    checkpoint(store, run_id, trainer, credit, reward_sums, &mut buffered)?;
                }
            }
            Err(e) => {
                // Keep everything computed so far: the finished steps' metrics and a
                // checkpoint of the last good state.
                checkpoint(store, run_id, trainer, credit, reward_sums, &mut buffered)?;
                store.fail_run(run_id, &format!("{e:#}"))?;
                pb.abandon();
                return Err(e.context(format!(
                    "run {run_id} stopped; last good state checkpointed at step {}",
                    trainer.state.step
                )));
            }
        }
    }
    pb.finish_and_clear();
    let mut d = Digest::new();
    d.str(&trainer.state.digest);
    if let Some(c) = credit {
        d.f64s(&c.cells).f64(c.delta_metric);
    }
    let steps = trainer.state.step.max(1) as f64;
    let curve = store
        .step_metrics(run_id)?
        .into_iter()
        .fold(
            std::collections::BTreeMap::<u64, serde_json::Map<String, serde_json::Value>>::new(),
            |mut acc, m| {
                acc.entry(m.step).or_default().insert(m.name, json!(m.value));
                acc
            },
        )
        .into_iter()
        .map(|(step, mut values)| {
            values.insert("step".into(), json!(step));
            serde_json::Value::Object(values)
        })
        .collect();
    Ok(TrainOutcome {
        gold_before,
        gold_after: trainer.state.metric,
        digest: d.hex(),
        credit: credit.clone(),
        mean_reward: reward_sums.iter().map(|s| s / steps).collect(),
        curve,
    })
}

type Buffered = Vec<(u64, Vec<(String, f64)>)>;

/// Flushes the buffered step metrics and writes a checkpoint of the trainer's state.
fn checkpoint(
    store: &mut Store,
    run_id: RunId,
    trainer: &Trainer,
    credit: &Option<InRunCredit>,
    reward_sums: &[f64],
    buffered: &mut Buffered,
) -> anyhow::Result<()> {
    let ck = Checkpoint {
        state: trainer.state.clone(),
        credit: credit.clone(),
        reward_sums: reward_sums.to_vec(),
    };
    let bytes = serde_json::to_vec(&ck)?;
    let pending = std::mem::take(buffered);
    // Metrics and checkpoint land in one transaction: a kill leaves both or neither.
    store.batch(|b| -> Result<(), gristmill_store::StoreError> {
        for (step, values) in &pending {
            b.put_step_metrics(run_id, *step, values)?;
        }
        b.put_checkpoint(run_id, trainer.state.step, &bytes, &trainer.state.digest)?;
        b.set_progress(run_id, trainer.state.step)?;
        Ok(())
    })?;
    Ok(())
}

/// Prints the closing tables of a training run.
pub fn print_train(trainer: &Trainer, o: &TrainOutcome) {
    println!(
        "gold metric M (expected gold score on {} held-out tasks): before {:.4} → after {:.4} (Δ {:+.4})",
        trainer.suite.len(),
        o.gold_before,
        o.gold_after,
        o.gold_after - o.gold_before
    );
    let mut t = table(&["piece", "kind", "weight", "mean train reward", "in-run credit"]);
    let credit_rows = o.credit.as_ref().map(|c| (c.rows.clone(), c.row_totals()));
    let credit_of = |id: &str| {
        credit_rows.as_ref().and_then(|(rows, totals)| rows.iter().position(|r| r == id).map(|i| totals[i]))
    };
    for p in trainer.env.pieces.iter() {
        let ch = trainer.env.channels.iter().position(|&i| trainer.env.pieces[i].id == p.id);
        t.add_row(vec![
            comfy_table::Cell::new(&p.id),
            comfy_table::Cell::new(p.kind_name),
            num(Some(p.weight), 2),
            num(ch.map(|c| o.mean_reward[c]), 4),
            num(credit_of(&p.id), 5),
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
            ]);
        }
    }
    println!("{t}");
    if let Some(c) = &o.credit {
        println!(
            "ΔM = {:+.6e}, Σ credit = {:+.6e}, residual = {:+.3e}",
            c.delta_metric,
            c.delta_metric - c.residual(),
            c.residual()
        );
    }
}

/// The JSON of a training run.
pub fn train_json(trainer: &Trainer, o: &TrainOutcome) -> serde_json::Value {
    let mut pieces = serde_json::Map::new();
    let credit = o.credit.as_ref().map(|c| (c.rows.clone(), c.row_totals()));
    for p in trainer.env.pieces.iter() {
        let ch = trainer.env.channels.iter().position(|&i| trainer.env.pieces[i].id == p.id);
        let inrun = credit.as_ref().and_then(|(rows, t)| rows.iter().position(|r| r == &p.id).map(|i| t[i]));
        pieces.insert(
            p.id.clone(),
            json!({ "kind": p.kind_name, "weight": p.weight, "mean_reward": ch.map(|c| o.mean_reward[c]), "inrun": inrun }),
        );
    }
    json!({
        "gold_before": o.gold_before,
        "gold_after": o.gold_after,
        "pieces": pieces,
        "curve": o.curve,
        "credit": o.credit.as_ref().map(|c| json!({
            "delta_metric": c.delta_metric,
            "residual": c.residual(),
            "max_step_residual": c.max_step_residual,
            "rows": c.rows,
            "columns": c.columns,
            "cells": c.cells,
        })),
    })
}
