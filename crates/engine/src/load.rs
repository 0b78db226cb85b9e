//! The one loader: TOML text → validated spec → built environment.
//!
//! Every caller (the CLI, the server, the benches, the tests, the Python package) goes
//! through [`load`] or [`load_spec`], with the one [`catalog`](crate::catalog), so a spec
//! means the same thing everywhere and every problem is reported with its origin and field.

use gristmill_core::spec::{Overrides, ValidSpec};
use gristmill_core::SpecError;

use crate::env::{catalog, Environment};
use crate::error::EngineError;

/// Parses `text` (named `origin` in messages), applies `overrides` and validates it against
/// the catalog. Every problem is reported, each with its field path: unknown keys together
/// with the validation problems of the same file.
pub fn load_spec(text: &str, origin: &str, overrides: &Overrides) -> Result<ValidSpec, SpecError> {
    gristmill_core::spec::load_valid(text, origin, overrides, &catalog())
}

/// [`load_spec`], then builds the environment (sources, pieces; reward models train here,
/// on the spec's seed).
pub fn load(text: &str, origin: &str, overrides: &Overrides) -> Result<Environment, EngineError> {
    Environment::build(load_spec(text, origin, overrides)?)
}

/// [`load_spec`] from a file's bytes: invalid UTF-8 is a spec problem with its line and byte.
pub fn load_spec_bytes(bytes: &[u8], origin: &str, overrides: &Overrides) -> Result<ValidSpec, SpecError> {
    load_spec(gristmill_core::spec::decode_text(bytes, origin)?, origin, overrides)
}
