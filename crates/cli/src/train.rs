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
    let delta = o.gold_after - o.gold_before;
    println!(
        "gold metric M (expected gold score on {} held-out tasks): before {:.4} → after {:.4} (ΔM {:+.4})",
        trainer.suite.len(),
        o.gold_before,
        o.gold_after,
        delta
    );
    let credit_rows = o.credit.as_ref().map(|c| (c.rows.clone(), c.row_totals()));
    let credit_of = |id: &str| {
        credit_rows.as_ref().and_then(|(rows, totals)| rows.iter().position(|r| r == id).map(|i| totals[i]))
    };
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
    for p in trainer.env.pieces.iter() {
        let ch = trainer.env.channels.iter().position(|&i| trainer.env.pieces[i].id == p.id);
        t.add_row(vec![
            comfy_table::Cell::new(&p.id),
            comfy_table::Cell::new(p.kind_name),
            num(Some(p.weight), 2),
            num(ch.map(|c| o.mean_reward[c]), 4),
            num(credit_of(&p.id), 5),
            share(credit_of(&p.id)),
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
        c.delta_metric - c.residual(),
        c.residual()
    );
    let sources = c.column_totals();
    let by_source: Vec<String> = c
        .columns
        .iter()
        .zip(&sources)
        .filter(|(id, v)| id.as_str() != "(global)" || **v != 0.0)
        .map(|(id, v)| format!("{id} {v:+.4}"))
        .collect();
    println!("credit by source: {}", by_source.join(", "));
    print_conflict(c);
}

/// The conflict index and the pairs of pieces that pull against each other most.
pub fn print_conflict(c: &InRunCredit) {
    if let Some(index) = c.conflict_index() {
        println!("conflict index Σ|credit|/|ΔM| = {index:.2} (1.00: no piece works against the gain)");
    }
    let pairs = conflict_pairs(c);
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

/// One pair of credit rows and how much they cancelled each other.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConflictPair {
    /// First row.
    pub a: String,
    /// Second row.
    pub b: String,
    /// Row-level opposition (see `gristmill_measure::Conflict`).
    pub opposition: f64,
    /// Opposition per source column.
    pub by_source: Vec<(String, f64)>,
    /// The source with the most opposition.
    pub worst_source: String,
}

/// Pairs with non-zero opposition, largest first.
pub fn conflict_pairs(c: &InRunCredit) -> Vec<ConflictPair> {
    let (n, cols) = (c.rows.len(), c.columns.len());
    let mut out = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            let opposition = c.conflict.rows.get(a * n + b).copied().unwrap_or(0.0);
            if opposition <= 0.0 {
                continue;
            }
            let by_source: Vec<(String, f64)> = (0..cols)
                .map(|s| {
                    (
                        c.columns[s].clone(),
                        c.conflict.cells.get((a * n + b) * cols + s).copied().unwrap_or(0.0),
                    )
                })
                .collect();
            let worst_source =
                by_source.iter().max_by(|x, y| x.1.total_cmp(&y.1)).map(|x| x.0.clone()).unwrap_or_default();
            out.push(ConflictPair {
                a: c.rows[a].clone(),
                b: c.rows[b].clone(),
                opposition,
                by_source,
                worst_source,
            });
        }
    }
    out.sort_by(|x, y| y.opposition.total_cmp(&x.opposition));
    out
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
            "sources": c.column_totals(),
            "conflict_index": c.conflict_index(),
            "conflict": conflict_pairs(c),
        })),
    })
}
