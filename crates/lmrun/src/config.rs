//! The `[policy] kind = "lm"` settings, read from a validated spec's resolved params.

use std::path::PathBuf;

use gristmill_core::params::Params;
use gristmill_core::spec::ValidSpec;
use gristmill_learn::optim::OptimizerKind;
use gristmill_learn::Normalization;
use gristmill_lm::train::{LoraConfig, Normalization as TokenNormalization, TinyConfig, TrainableConfig};
use gristmill_lm::SamplingParams;

use crate::LmRunError;

/// Which model is trained.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelChoice {
    /// A random llama-architecture model built in code (tests, CI).
    Tiny(TinyConfig),
    /// A llama-family GGUF file, dequantized to f32.
    File(PathBuf),
}

/// Everything the language-model trainer needs besides the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct LmConfig {
    /// The model.
    pub model: ModelChoice,
    /// What is trained (LoRA adapters, unfrozen layers).
    pub trainable: TrainableConfig,
    /// Optimizer rule (AdamW's decay is `weight_decay`, applied decoupled).
    pub optimizer: OptimizerKind,
    /// Learning rate η.
    pub learning_rate: f64,
    /// Decoupled weight decay λ: the step `−ηλθ`, its own credit row.
    pub weight_decay: f64,
    /// KL-to-reference coefficient β (its own credit row when > 0).
    pub kl: f64,
    /// Advantage normalisation (as the hand-written trainer's).
    pub normalization: Normalization,
    /// How a sample's token gradients are summed.
    pub token_normalization: TokenNormalization,
    /// Training sampling (temperature, top-p, max new tokens, stop string).
    pub sampling: SamplingParams,
    /// Samples per gold-suite task for the estimated gold metric.
    pub eval_samples: usize,
    /// Completion whose teacher-forced log-likelihood is the smooth metric (`{gold}` replaced).
    pub gold_completion: String,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Checkpoints kept (the latest N).
    pub checkpoint_keep: u64,
    /// Also keep the first checkpoint of every span of this many steps.
    pub checkpoint_keep_every: u64,
    /// Gauss–Legendre nodes for the log-likelihood metric; 0 turns in-run credit off.
    pub credit_nodes: usize,
}

fn list<T>(text: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, LmRunError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse(s).ok_or_else(|| LmRunError::Config(format!("policy.{what}: `{s}` is not a valid entry")))
        })
        .collect()
}

impl LmConfig {
    /// The config of a validated spec whose policy is `lm`; `None` for other policy kinds.
    ///
    /// # Errors
    /// [`LmRunError::Config`] naming the `policy.<param>` at fault (a bad layer list, no
    /// trainable parameters, `model = "default"` with no model in the cache).
    pub fn of(spec: &ValidSpec) -> Option<Result<LmConfig, LmRunError>> {
        (spec.policy_kind().name == "lm").then(|| LmConfig::from_params(spec.policy_params()))
    }

    /// The config from the `lm` kind's resolved params.
    ///
    /// # Errors
    /// As [`of`](LmConfig::of).
    pub fn from_params(p: &Params) -> Result<LmConfig, LmRunError> {
        let model = match p.text("model") {
            "tiny" => ModelChoice::Tiny(TinyConfig {
                layers: p.int("tiny_layers") as usize,
                embed: p.int("tiny_embed") as usize,
                heads: 4,
                kv_heads: 2,
                ffn: p.int("tiny_ffn") as usize,
                context: p.int("tiny_context") as usize,
                seed: p.int("tiny_seed") as u64,
            }),
            "default" => ModelChoice::File(gristmill_lm::find_model().ok_or_else(|| {
                LmRunError::Config(
                    "policy.model = \"default\" but SmolLM2-135M-Instruct is not in the model cache \
                     (run scripts/fetch-model.sh, or set GRISTMILL_MODEL)"
                        .into(),
                )
            })?),
            path => ModelChoice::File(PathBuf::from(path)),
        };
        let rank = p.int("lora_rank") as usize;
        let lora = (rank > 0).then(|| LoraConfig {
            rank,
            alpha: p.float("lora_alpha"),
            targets: p
                .text("lora_targets")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            layers: None,
            seed: 0,
        });
        let unfrozen_layers =
            list(p.text("unfrozen_layers"), "unfrozen_layers", |s| s.parse::<usize>().ok())?;
        if lora.is_none() && unfrozen_layers.is_empty() {
            return Err(LmRunError::Config(
                "policy: nothing to train (lora_rank = 0 and no unfrozen_layers)".into(),
            ));
        }
        let stop = p.text("stop");
        Ok(LmConfig {
            model,
            trainable: TrainableConfig { lora, unfrozen_layers },
            optimizer: match p.choice("optimizer") {
                "sgd" => OptimizerKind::Sgd,
                _ => OptimizerKind::Adam {
                    beta1: p.float("beta1"),
                    beta2: p.float("beta2"),
                    eps: p.float("eps"),
                },
            },
            learning_rate: p.float("learning_rate"),
            weight_decay: p.float("weight_decay"),
            kl: p.float("kl"),
            normalization: match p.choice("normalization") {
                "per_channel" => Normalization::PerChannel,
                "none" => Normalization::None,
                _ => Normalization::Shared,
            },
            token_normalization: match p.choice("token_normalization") {
                "sequence" => TokenNormalization::Sequence,
                "token_batch" => TokenNormalization::TokenBatch,
                _ => TokenNormalization::TokenMean,
            },
            sampling: SamplingParams {
                temperature: p.float("temperature"),
                top_p: p.float("top_p"),
                max_new_tokens: p.int("max_new_tokens") as u32,
                stop: if stop.is_empty() { Vec::new() } else { vec![stop.to_string()] },
            },
            eval_samples: p.int("eval_samples") as usize,
            gold_completion: p.text("gold_completion").to_string(),
            checkpoint_every: p.int("checkpoint_every") as u64,
            checkpoint_keep: p.int("checkpoint_keep") as u64,
            checkpoint_keep_every: p.int("checkpoint_keep_every") as u64,
            credit_nodes: p.int("credit_nodes") as usize,
        })
    }

    /// A short description for tables.
    pub fn describe(&self) -> String {
        let model = match &self.model {
            ModelChoice::Tiny(t) => format!("tiny llama ({} layers × {})", t.layers, t.embed),
            ModelChoice::File(p) => {
                p.file_name().map_or_else(|| p.display().to_string(), |f| f.to_string_lossy().into())
            }
        };
        let what = match &self.trainable.lora {
            Some(l) => format!("LoRA r{} on {}", l.rank, l.targets.join(",")),
            None => String::new(),
        };
        let layers = if self.trainable.unfrozen_layers.is_empty() {
            String::new()
        } else {
            format!(" + layers {:?} unfrozen", self.trainable.unfrozen_layers)
        };
        let opt = match self.optimizer {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam { .. } => "adamw",
        };
        format!("{model}, {what}{layers}, {opt}, lr {}", self.learning_rate)
    }
}
