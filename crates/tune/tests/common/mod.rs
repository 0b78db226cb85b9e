//! Helpers shared by the tune crate's integration tests.

use gristmill_engine::Environment;
use gristmill_learn::TrainConfig;

/// An environment, its training configuration and root seed from spec text (which must name
/// a trainable policy).
pub fn build(text: &str) -> (Environment, TrainConfig, u64) {
    let (env, config, seed) =
        gristmill_learn::environment_from_toml(text, "test").unwrap_or_else(|e| panic!("{e}"));
    (env, config.expect("trainable policy"), seed)
}
