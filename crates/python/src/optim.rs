//! The per-channel advantage split and the channel-split optimizer.

use gristmill_learn::optim::{OptimizerKind, SplitOptimizer as Split};
use gristmill_learn::Normalization;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::{floats, non_finite, to_bytes, GristmillError, ShapeError};

fn normalization(name: &str) -> PyResult<Normalization> {
    match name {
        "shared" => Ok(Normalization::Shared),
        "per_channel" => Ok(Normalization::PerChannel),
        "none" => Ok(Normalization::None),
        other => Err(ShapeError::new_err(format!(
            "normalization `{other}` is none of `shared` (one σ of the combined reward per group), \
             `per_channel` (one σ per channel and group), `none` (no σ)"
        ))),
    }
}

/// Per-sample, per-channel GRPO advantages of a reward matrix `rewards` (`bytes`,
/// `samples × len(weights)` float64, row-major), whose rows come in consecutive groups of
/// `group_size` samples of one prompt. Returns `(advantages, centred, inv_sigma)`:
/// `advantages[s][c] = weights[c] · centred[s][c] · inv_sigma[group][c]`, and the sum over
/// channels is the advantage GRPO gives the combined reward (for `shared`).
#[pyfunction]
pub fn group_advantages<'py>(
    py: Python<'py>,
    rewards: &[u8],
    weights: Vec<f64>,
    group_size: usize,
    normalization: &str,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let norm = self::normalization(normalization)?;
    let r = floats(rewards, "rewards")?;
    let c = weights.len();
    if c == 0 || group_size == 0 {
        return Err(ShapeError::new_err("need at least one channel weight and a group size ≥ 1"));
    }
    if r.len() % (c * group_size) != 0 {
        return Err(ShapeError::new_err(format!(
            "rewards hold {} values, not whole groups of {group_size} samples × {c} channels",
            r.len()
        )));
    }
    if let Some((i, v)) = non_finite(&r) {
        return Err(ShapeError::new_err(format!(
            "rewards[{}][{}] is {v}: rewards must be finite",
            i / c,
            i % c
        )));
    }
    if let Some((i, v)) = non_finite(&weights) {
        return Err(ShapeError::new_err(format!("weights[{i}] is {v}: weights must be finite")));
    }
    let (mut adv, mut centred, mut inv) = (Vec::new(), Vec::new(), Vec::new());
    for group in r.chunks_exact(c * group_size) {
        let (a, ce, s) = gristmill_learn::group_advantages(norm, group, &weights, group_size);
        adv.extend(a);
        centred.extend(ce);
        inv.extend(s);
    }
    Ok((
        PyBytes::new(py, &to_bytes(&adv)),
        PyBytes::new(py, &to_bytes(&centred)),
        PyBytes::new(py, &to_bytes(&inv)),
    ))
}

/// The channel-split optimizer over a flat parameter vector of `length` values and
/// `rows × columns` credit cells: SGD (linear split) or Adam split by the Owen value of its
/// update (exact, bounded), with AdamW's decoupled weight decay as its own share.
#[pyclass(module = "gristmill._native")]
pub struct SplitOptimizer {
    split: Split,
    weight_decay: f64,
}

#[pymethods]
impl SplitOptimizer {
    /// `kind` is `adam` or `sgd`; `rows × columns` cells (at most 128) over `length`
    /// parameters. Steps are ascent steps on the objective whose per-cell gradients
    /// [`step`](SplitOptimizer::step) takes.
    #[new]
    #[pyo3(signature = (kind, lr, rows, columns, length, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        kind: &str,
        lr: f64,
        rows: usize,
        columns: usize,
        length: usize,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    ) -> PyResult<SplitOptimizer> {
        let kind = match kind {
            "sgd" => OptimizerKind::Sgd,
            "adam" => {
                let valid = (0.0..1.0).contains(&beta1)
                    && (0.0..1.0).contains(&beta2)
                    && eps > 0.0
                    && eps.is_finite();
                if !valid {
                    return Err(ShapeError::new_err(format!(
                        "adam needs 0 ≤ beta1, beta2 < 1 and eps > 0; got beta1 {beta1}, beta2 {beta2}, eps {eps}"
                    )));
                }
                OptimizerKind::Adam { beta1, beta2, eps }
            }
            other => {
                return Err(ShapeError::new_err(format!("optimizer `{other}` is neither `adam` nor `sgd`")))
            }
        };
        if !(lr > 0.0 && lr.is_finite() && weight_decay >= 0.0 && weight_decay.is_finite()) {
            return Err(ShapeError::new_err(format!(
                "need lr > 0 and weight_decay ≥ 0, both finite; got lr {lr}, weight_decay {weight_decay}"
            )));
        }
        let cells = rows * columns;
        if cells == 0 || cells > 128 {
            return Err(ShapeError::new_err(format!(
                "{rows} rows × {columns} columns = {cells} cells; the split takes 1 to 128"
            )));
        }
        Ok(SplitOptimizer { split: Split::new(kind, lr, rows, columns, length), weight_decay })
    }

    /// Steps taken.
    #[getter]
    fn t(&self) -> u64 {
        self.split.t
    }

    /// The largest `|Δθ|` Adam can take on one coordinate next step (`None` for SGD); each
    /// cell's share is at most twice it.
    #[getter]
    fn step_bound(&self) -> Option<f64> {
        self.split.step_bound()
    }

    /// One step from per-cell gradients (`grads[cell]`: `bytes` of `length` float64, or
    /// empty for a cell with no gradient; cells `[row][column]`). `params` (the parameters
    /// before the step) is needed when `weight_decay > 0`. Returns
    /// `(cell_steps, real_step, decay_step)`: the real step is what to add to the
    /// parameters; `Σ cell_steps + decay_step = real_step` up to float rounding (for Adam
    /// the Owen split is exact in exact arithmetic). `lr` replaces the learning rate from
    /// this step on (a schedule): Adam's and SGD's steps are linear in it, so the moments
    /// need not know.
    #[pyo3(signature = (grads, params = None, lr = None))]
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        grads: Vec<Vec<u8>>,
        params: Option<Vec<u8>>,
        lr: Option<f64>,
    ) -> PyResult<(Vec<Bound<'py, PyBytes>>, Bound<'py, PyBytes>, Option<Bound<'py, PyBytes>>)> {
        if let Some(lr) = lr {
            if !(lr > 0.0 && lr.is_finite()) {
                return Err(ShapeError::new_err(format!("lr must be > 0 and finite, not {lr}")));
            }
            self.split.learning_rate = lr;
        }
        let (rows, columns) = self.split.layout();
        if grads.len() != rows * columns {
            return Err(ShapeError::new_err(format!(
                "{} gradients for {rows} × {columns} = {} cells: give one per cell (empty bytes for none)",
                grads.len(),
                rows * columns
            )));
        }
        let len = self.split.parameters();
        let mut g = Vec::with_capacity(grads.len());
        for (i, b) in grads.iter().enumerate() {
            let v = floats(b, &format!("grads[{i}]"))?;
            if !v.is_empty() && v.len() != len {
                return Err(ShapeError::new_err(format!(
                    "grads[{i}] has {} values; the parameters have {len}",
                    v.len()
                )));
            }
            if let Some((k, x)) = non_finite(&v) {
                return Err(GristmillError::new_err(format!(
                    "grads[{i}][{k}] is {x}: gradients must be finite"
                )));
            }
            g.push(v);
        }
        let decay = match (self.weight_decay > 0.0, params) {
            (false, _) => None,
            (true, None) => {
                return Err(ShapeError::new_err("weight_decay > 0 needs the parameters (`params`)"))
            }
            (true, Some(p)) => {
                let p = floats(&p, "params")?;
                if p.len() != len {
                    return Err(ShapeError::new_err(format!(
                        "params has {} values; the optimizer has {len}",
                        p.len()
                    )));
                }
                let scale = -self.split.learning_rate * self.weight_decay;
                Some(p.iter().map(|x| scale * x).collect::<Vec<f64>>())
            }
        };
        let step = py.detach(|| self.split.step(&g));
        let mut real = match step.real {
            Some(r) => r,
            None => (0..len).map(|k| step.cells.iter().map(|c| c[k]).sum()).collect(),
        };
        if let Some(d) = &decay {
            real.iter_mut().zip(d).for_each(|(r, d)| *r += d);
        }
        let cells = step.cells.iter().map(|c| PyBytes::new(py, &to_bytes(c))).collect();
        Ok((cells, PyBytes::new(py, &to_bytes(&real)), decay.map(|d| PyBytes::new(py, &to_bytes(&d)))))
    }

    /// The optimizer's whole state as JSON (for a checkpoint).
    fn to_json(&self) -> String {
        serde_json::json!({ "split": self.split, "weight_decay": self.weight_decay }).to_string()
    }

    /// An optimizer from [`to_json`](SplitOptimizer::to_json)'s text.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<SplitOptimizer> {
        #[derive(serde::Deserialize)]
        struct State {
            split: Split,
            weight_decay: f64,
        }
        let s: State = serde_json::from_str(text)
            .map_err(|e| GristmillError::new_err(format!("optimizer state: {e}")))?;
        Ok(SplitOptimizer { split: s.split, weight_decay: s.weight_decay })
    }
}
