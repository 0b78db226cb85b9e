//! A run trained outside gristmill, recorded in the run store.
//!
//! An outside trainer (TRL through the Python package, or any loop that computes its own
//! first-order credit `Δθ_cell · ∇M`) feeds a [`CreditLedger`] step by step. An
//! [`OutsideRun`] is that ledger with a home: the run store keeps the spec the trainer used,
//! every step's metric, residual and credit curve, and the ledger's state as the run's
//! checkpoint, so a killed trainer resumes the ledger from the store and `gristmill runs` /
//! `gristmill credit --run` read the result back like any other run.
//!
//! What the store holds per step (metric names): `gold` (`M` after the step), `delta`
//! (`ΔM` of the step), `residual` (the step's `ΔM − Σ credit`), `delta_se` when `M` is
//! estimated, and `credit/<row>` (the row's cumulative credit: the per-horizon curve).
//! The finished run's summary and its `credit` result are the [`OutsideReport`].

use gristmill_core::digest::Digest;
use gristmill_core::spec::ValidSpec;
use gristmill_measure::{CreditLedger, LedgerError, LedgerState, StepContribution, StepCredit};
use gristmill_store::{LeaseHolder, NewRun, RunId, RunKind, Store, StoreError};
use serde::Serialize;

use crate::report::CreditTable;

/// The store's name for runs an outside trainer trained.
pub const OUTSIDE_KIND: &str = "outside";

/// What an outside run refuses.
#[derive(Debug, thiserror::Error)]
pub enum OutsideError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger refused a step.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The run is not one an outside trainer recorded, or its record is damaged.
    #[error("run {run}: {why}")]
    NotOutside {
        /// The run.
        run: i64,
        /// Why.
        why: String,
    },
}

/// The report of an outside run: its credit table and where `M` stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutsideReport {
    /// Store id of the run.
    pub run_id: i64,
    /// Who trained it (the `trainer` the run was created with).
    pub trainer: String,
    /// Steps observed.
    pub steps: u64,
    /// `M` after the last step, if any step was observed.
    pub gold_after: Option<f64>,
    /// Standard error of the cumulative `ΔM`, when `M` is estimated.
    pub delta_se: Option<f64>,
    /// The credit table (cells, residual, conflict).
    pub credit: CreditTable,
}

/// What an outside run is created with.
pub struct NewOutsideRun<'a> {
    /// The environment's validated spec.
    pub spec: &'a ValidSpec,
    /// Its text, stored with the run.
    pub spec_text: &'a str,
    /// Who trains (e.g. `trl`).
    pub trainer: &'a str,
    /// Credit rows (pieces, pseudo-pieces).
    pub rows: Vec<String>,
    /// Credit columns (sources, or one `all`).
    pub columns: Vec<String>,
    /// Planned steps (0 when unknown).
    pub steps: u64,
    /// Kept as the run's configuration.
    pub config: serde_json::Value,
}

/// One per-step series: `(step, value)` in step order.
pub type Series = Vec<(u64, f64)>;

/// A ledger fed by an outside trainer, recorded in a run store.
pub struct OutsideRun {
    store: Store,
    run: RunId,
    trainer: String,
    ledger: CreditLedger,
    pending: Vec<(u64, Vec<(String, f64)>)>,
}

impl OutsideRun {
    /// Creates the run `new` describes in `store` (the spec's text is stored with it).
    pub fn create(mut store: Store, new: NewOutsideRun<'_>) -> Result<OutsideRun, OutsideError> {
        let NewOutsideRun { spec, spec_text, trainer, rows, columns, steps, config } = new;
        let digest = store.put_spec(spec.hash(), &spec.spec().name, spec_text)?;
        let mut new = NewRun::new(RunKind::Other(OUTSIDE_KIND.into()), spec.hash(), spec.seed(), steps);
        new.config = serde_json::json!({
            "trainer": trainer,
            "rows": rows,
            "columns": columns,
            "config": config,
        });
        let run = store.create_run_with_spec_text(&new, &digest)?;
        let ledger = CreditLedger::new(rows, columns);
        Ok(OutsideRun { store, run, trainer: trainer.into(), ledger, pending: Vec::new() })
    }

    /// Resumes run `run` of `store`: takes its lease (refused while a live process holds
    /// it) and the ledger of its latest checkpoint (an empty one when none was taken).
    pub fn resume(mut store: Store, run: RunId) -> Result<OutsideRun, OutsideError> {
        let record = store.run(run)?;
        let not_outside = |why: String| OutsideError::NotOutside { run: run.0, why };
        if record.kind.as_str() != OUTSIDE_KIND {
            return Err(not_outside(format!(
                "is a `{}` run, not one an outside trainer recorded",
                record.kind.as_str()
            )));
        }
        let names = |field: &str| -> Result<Vec<String>, OutsideError> {
            serde_json::from_value(record.config[field].clone())
                .map_err(|e| not_outside(format!("its config has no list of {field}: {e}")))
        };
        let (rows, columns) = (names("rows")?, names("columns")?);
        let trainer = record.config["trainer"].as_str().unwrap_or("outside").to_string();
        store.acquire_lease(run, &LeaseHolder::this_process())?;
        let ledger = match store.latest_checkpoint(run)? {
            None => CreditLedger::new(rows, columns),
            Some(c) => {
                let state: LedgerState = serde_json::from_slice(&c.bytes).map_err(|e| {
                    not_outside(format!("checkpoint at step {} is not a ledger: {e}", c.step))
                })?;
                if state.rows != rows || state.columns != columns {
                    return Err(not_outside(format!(
                        "checkpoint at step {} has other rows/columns than the run was created with",
                        c.step
                    )));
                }
                CreditLedger::from_state(state)?
            }
        };
        Ok(OutsideRun { store, run, trainer, ledger, pending: Vec::new() })
    }

    /// The run's id in the store.
    pub fn id(&self) -> RunId {
        self.run
    }

    /// The ledger.
    pub fn ledger(&self) -> &CreditLedger {
        &self.ledger
    }

    /// Feeds one step to the ledger and queues its metrics for the next checkpoint.
    pub fn observe(&mut self, contribution: StepContribution) -> Result<StepCredit, OutsideError> {
        let credit = self.ledger.observe(contribution)?;
        let mut metrics = vec![
            ("gold".to_string(), credit.metric),
            ("delta".to_string(), credit.delta_metric),
            ("residual".to_string(), credit.residual),
        ];
        if let Some(se) = credit.delta_se {
            metrics.push(("delta_se".into(), se));
        }
        for (row, total) in self.ledger.rows().iter().zip(&credit.rows) {
            metrics.push((format!("credit/{row}"), *total));
        }
        self.pending.push((credit.step, metrics));
        Ok(credit)
    }

    /// Makes everything observed so far durable: the queued step metrics and the ledger's
    /// state, in one transaction (a kill leaves both or neither). A checkpoint at a step
    /// already checkpointed is a no-op.
    pub fn checkpoint(&mut self) -> Result<(), OutsideError> {
        let steps_done = self.ledger.next_step();
        let bytes = serde_json::to_vec(self.ledger.state()).expect("a ledger state serializes");
        let digest = Digest::new().str(&String::from_utf8_lossy(&bytes)).hex();
        let pending = std::mem::take(&mut self.pending);
        let run = self.run;
        let already = self.store.checkpoint_steps(run)?.last() == Some(&steps_done);
        self.store.batch(|b| -> Result<(), StoreError> {
            for (step, values) in &pending {
                b.put_step_metrics(run, *step, values)?;
            }
            if !already {
                b.put_checkpoint(run, steps_done, &bytes, &digest)?;
            }
            b.set_progress(run, steps_done)
        })?;
        Ok(())
    }

    /// Every per-step series stored so far, after a [`checkpoint`](OutsideRun::checkpoint):
    /// `gold`, `delta`, `residual`, `delta_se` (when estimated) and `credit/<row>` (the
    /// per-horizon credit curves), each `(step, value)` in step order.
    pub fn curves(&mut self) -> Result<Vec<(String, Series)>, OutsideError> {
        self.checkpoint()?;
        let mut names: Vec<String> = ["gold", "delta", "residual", "delta_se"].map(String::from).to_vec();
        names.extend(self.ledger.rows().iter().map(|r| format!("credit/{r}")));
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let series = self.store.metric_series(self.run, &name)?;
            if !series.is_empty() || name != "delta_se" {
                out.push((name, series));
            }
        }
        Ok(out)
    }

    /// The report as it stands.
    pub fn report(&self) -> OutsideReport {
        OutsideReport {
            run_id: self.run.0,
            trainer: self.trainer.clone(),
            steps: self.ledger.next_step(),
            gold_after: self.ledger.state().metric,
            delta_se: self.ledger.delta_se(),
            credit: CreditTable::of(&self.ledger),
        }
    }

    /// Checkpoints, stores the report as the run's `credit` result and summary, and marks
    /// the run finished.
    pub fn finish(mut self) -> Result<OutsideReport, OutsideError> {
        self.checkpoint()?;
        let report = self.report();
        let body = serde_json::to_value(&report).expect("a report serializes");
        let digest = Digest::new().str(&body.to_string()).hex();
        self.store.put_result(self.run, "credit", &body)?;
        self.store.finish_run(self.run, &digest, &body)?;
        Ok(report)
    }
}
