//! `Ledger`: the credit ledger of a run trained in Python, recorded in the run store.

use std::sync::Mutex;

use gristmill_measure::StepContribution;
use gristmill_run::{NewOutsideRun, OutsideError, OutsideRun};
use gristmill_store::{RunId, Store};
use pyo3::prelude::*;

use crate::env::Environment;
use crate::{LedgerError, StoreError};

fn py_err(e: OutsideError) -> PyErr {
    match e {
        OutsideError::Ledger(l) => LedgerError::new_err(l.to_string()),
        other => StoreError::new_err(other.to_string()),
    }
}

fn open(db: Option<&str>) -> PyResult<Store> {
    match db {
        None => Store::open_in_memory(),
        Some(path) => Store::open(path),
    }
    .map_err(|e| StoreError::new_err(e.to_string()))
}

/// The credit ledger of one training run: per step, each cell's first-order credit
/// `Δθ_cell · ∇M`, the observed `ΔM` and its standard error in; cumulative credit per cell
/// and the residual `ΔM − Σ credit` out. Backed by a run in the store (`db`, or an
/// in-memory store when `None`), which `gristmill runs` and `gristmill credit --run` read.
#[pyclass(module = "gristmill._native")]
pub struct Ledger {
    run: Mutex<Option<OutsideRun>>,
}

impl Ledger {
    fn with<T>(&self, f: impl FnOnce(&mut OutsideRun) -> Result<T, OutsideError>) -> PyResult<T> {
        let mut guard =
            self.run.lock().map_err(|_| StoreError::new_err("the ledger was poisoned by a panic"))?;
        match guard.as_mut() {
            None => Err(LedgerError::new_err("the ledger's run is finished; resume it or create a new one")),
            Some(run) => f(run).map_err(py_err),
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

#[pymethods]
impl Ledger {
    /// A new run of `steps` steps for `env` in the store at `db`, credit cells
    /// `rows × columns` (e.g. pieces × `["all"]`); `trainer` says who trains, `config` (JSON
    /// text) is kept with the run.
    #[staticmethod]
    #[pyo3(signature = (env, rows, columns, steps, db = None, trainer = "python", config = "{}"))]
    fn create(
        env: &Environment,
        rows: Vec<String>,
        columns: Vec<String>,
        steps: u64,
        db: Option<&str>,
        trainer: &str,
        config: &str,
    ) -> PyResult<Ledger> {
        if rows.is_empty() || columns.is_empty() {
            return Err(LedgerError::new_err("a ledger needs at least one row and one column"));
        }
        let config: serde_json::Value = serde_json::from_str(config)
            .map_err(|e| LedgerError::new_err(format!("config is not JSON: {e}")))?;
        let new = NewOutsideRun {
            spec: &env.env.spec,
            spec_text: &env.text,
            trainer,
            rows,
            columns,
            steps,
            config,
        };
        let run = OutsideRun::create(open(db)?, new).map_err(py_err)?;
        Ok(Ledger { run: Mutex::new(Some(run)) })
    }

    /// Resumes run `run_id` of the store at `db` from its latest checkpoint.
    #[staticmethod]
    fn resume(db: &str, run_id: i64) -> PyResult<Ledger> {
        let run = OutsideRun::resume(open(Some(db))?, RunId(run_id)).map_err(py_err)?;
        Ok(Ledger { run: Mutex::new(Some(run)) })
    }

    /// The run's id in the store.
    #[getter]
    fn run_id(&self) -> PyResult<i64> {
        self.with(|r| Ok(r.id().0))
    }

    /// The step the ledger expects next.
    #[getter]
    fn next_step(&self) -> PyResult<u64> {
        self.with(|r| Ok(r.ledger().next_step()))
    }

    /// Row names.
    #[getter]
    fn rows(&self) -> PyResult<Vec<String>> {
        self.with(|r| Ok(r.ledger().rows().to_vec()))
    }

    /// Column names.
    #[getter]
    fn columns(&self) -> PyResult<Vec<String>> {
        self.with(|r| Ok(r.ledger().columns().to_vec()))
    }

    /// Feeds step `step` (steps arrive in order): `cells` flat `[row][column]`. Returns the
    /// step as credited, as JSON text.
    #[pyo3(signature = (step, metric_before, metric_after, cells, delta_se = None))]
    fn observe(
        &self,
        step: u64,
        metric_before: f64,
        metric_after: f64,
        cells: Vec<f64>,
        delta_se: Option<f64>,
    ) -> PyResult<String> {
        let contribution =
            StepContribution { step, metric_before, metric_after, delta_se, cells, conflict: None };
        self.with(|r| r.observe(contribution).map(|c| json(&c)))
    }

    /// Makes everything observed so far durable (step metrics and the ledger's state).
    fn checkpoint(&self) -> PyResult<()> {
        self.with(|r| r.checkpoint())
    }

    /// The report as it stands, as JSON text.
    fn report(&self) -> PyResult<String> {
        self.with(|r| Ok(json(&r.report())))
    }

    /// The per-step series (after a checkpoint), as JSON text: `{name: [[step, value], …]}`.
    fn curves(&self) -> PyResult<String> {
        self.with(|r| {
            let curves = r.curves()?;
            let map: serde_json::Map<String, serde_json::Value> =
                curves.into_iter().map(|(n, s)| (n, serde_json::json!(s))).collect();
            Ok(serde_json::Value::Object(map).to_string())
        })
    }

    /// Checkpoints, stores the report as the run's `credit` result and finishes the run.
    /// Returns the report as JSON text.
    fn finish(&self) -> PyResult<String> {
        let mut guard =
            self.run.lock().map_err(|_| StoreError::new_err("the ledger was poisoned by a panic"))?;
        let run = guard.take().ok_or_else(|| LedgerError::new_err("the ledger's run is already finished"))?;
        run.finish().map(|r| json(&r)).map_err(py_err)
    }
}
