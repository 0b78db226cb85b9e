//! # gristmill-python
//!
//! The Python module `gristmill._native`: thin bindings over the Rust crates, so a Python
//! trainer (TRL) gets the same environments, scores, advantage split, split optimizer and
//! credit ledger as gristmill's own trainer, with no logic re-implemented in Python.
//!
//! Matrices cross the boundary as `bytes` of native-endian `f64` in row-major order (the
//! abi3 target for CPython 3.10 has no buffer protocol); the pure-Python layer
//! (`python/gristmill`) wraps them in NumPy arrays without copying.
//!
//! Long computations (scoring a batch, an optimizer step) release the GIL and run on rayon.
//! Every Rust error becomes a subclass of `gristmill.GristmillError` carrying its message.
//!
//! Invariant: this crate converts and validates at the boundary; it computes nothing the
//! Rust crates do not already compute for gristmill's own runs.

mod env;
mod ledger;
mod optim;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    gristmill._native,
    GristmillError,
    PyException,
    "Base class of every error gristmill raises."
);
create_exception!(
    gristmill._native,
    SpecError,
    GristmillError,
    "A spec that does not parse, validate or build."
);
create_exception!(
    gristmill._native,
    TaskKeyError,
    GristmillError,
    "A task key that is malformed or names no task."
);
create_exception!(
    gristmill._native,
    ScoringError,
    GristmillError,
    "Responses that cannot be scored, or a piece that gave a non-finite reward."
);
create_exception!(gristmill._native, ShapeError, GristmillError, "Arrays whose sizes do not fit each other.");
create_exception!(
    gristmill._native,
    LedgerError,
    GristmillError,
    "A credit step the ledger refuses (out of order, NaN, wrong cell count)."
);
create_exception!(
    gristmill._native,
    StoreError,
    GristmillError,
    "The run store failed or holds something else than asked for."
);

/// `f64`s of a `bytes` object (native-endian, as NumPy's `tobytes()` writes them).
pub(crate) fn floats(bytes: &[u8], what: &str) -> PyResult<Vec<f64>> {
    if !bytes.len().is_multiple_of(8) {
        return Err(ShapeError::new_err(format!(
            "{what}: {} bytes is not a whole number of float64 values",
            bytes.len()
        )));
    }
    Ok(bytes.chunks_exact(8).map(|c| f64::from_ne_bytes(c.try_into().expect("8 bytes"))).collect())
}

/// `bytes` of `f64`s (native-endian).
pub(crate) fn to_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

/// The first non-finite value of `values`, with its index.
pub(crate) fn non_finite(values: &[f64]) -> Option<(usize, f64)> {
    values.iter().copied().enumerate().find(|(_, v)| !v.is_finite())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("GristmillError", py.get_type::<GristmillError>())?;
    m.add("SpecError", py.get_type::<SpecError>())?;
    m.add("TaskKeyError", py.get_type::<TaskKeyError>())?;
    m.add("ScoringError", py.get_type::<ScoringError>())?;
    m.add("ShapeError", py.get_type::<ShapeError>())?;
    m.add("LedgerError", py.get_type::<LedgerError>())?;
    m.add("StoreError", py.get_type::<StoreError>())?;
    m.add_class::<env::Environment>()?;
    m.add_class::<env::Task>()?;
    m.add_function(wrap_pyfunction!(optim::group_advantages, m)?)?;
    m.add_class::<optim::SplitOptimizer>()?;
    m.add_class::<ledger::Ledger>()?;
    Ok(())
}
