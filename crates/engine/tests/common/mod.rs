//! Helpers shared by the engine's integration tests.

use gristmill_core::spec::EnvSpec;
use gristmill_engine::{catalog, Environment};

/// The example spec `examples/<name>`, validated and built.
pub fn example(name: &str) -> Environment {
    let path = format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("example spec exists");
    let spec = EnvSpec::parse(&text, &path)
        .and_then(|s| s.validate(&catalog(&[]), &path))
        .expect("example is valid");
    Environment::build(spec).expect("example builds")
}
