//! Shared test helpers: build an environment from spec text.

use gristmill_engine::Environment;
use gristmill_learn::TrainConfig;

/// Parses, validates and builds `text`; returns the environment and its train config.
pub fn build(text: &str) -> (Environment, TrainConfig, u64) {
    let (env, config, seed) =
        gristmill_learn::environment_from_toml(text, "test").unwrap_or_else(|e| panic!("{e}"));
    (env, config.expect("trainable policy"), seed)
}

/// A spec with every piece kind that splits the update differently: reward channels, a
/// curriculum, a hint; `policy` is the `[policy]` table body.
pub fn rich_spec(policy: &str) -> String {
    format!(
        r#"
name = "rich"
[run]
seed = 5
steps = 6
tasks_per_step = 12
responses_per_task = 6
[policy]
{policy}
[[source]]
id = "add"
family = "addition"
knobs = {{ digits = 1 }}
[[source]]
id = "cmp"
family = "comparison"
knobs = {{ digits = 2 }}
[[piece]]
id = "gold"
kind = "exact_verifier"
[[piece]]
id = "noisy"
kind = "noisy_verifier"
weight = 0.5
params = {{ flip_rate = 0.2 }}
[[piece]]
id = "partial"
kind = "partial_credit"
weight = 0.3
[[piece]]
id = "rm"
kind = "reward_model"
weight = 0.4
params = {{ pairs = 300 }}
[[piece]]
id = "curriculum"
kind = "curriculum"
params = {{ source_weights = [3.0, 1.0] }}
[[piece]]
id = "hint"
kind = "hint"
params = {{ probability = 0.5 }}
[eval]
size = 64
seed = 3
"#
    )
}
