//! Training settings of the trainable policy kinds (the `[policy]` table of a spec). The
//! kinds and their declared parameters live in the engine's catalog
//! (`gristmill_engine::TRAINABLE_POLICIES`), so everything that validates a spec shares one
//! catalog; this module turns resolved params into a [`TrainConfig`].

use gristmill_core::params::Params;

use crate::model::Arch;
use crate::optim::OptimizerKind;

/// How group advantages are normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalization {
    /// One σ per group: the std of the combined reward (GRPO on the summed reward).
    Shared,
    /// One σ per channel and group: each reward normalised on its own.
    PerChannel,
    /// No σ: `A_c = w_c (r_c − mean_group(r_c))` (as in Dr. GRPO). Reward scale then sets
    /// the step size, which is what makes a flat reward model teach slowly.
    None,
}

/// Everything the trainer needs besides the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Architecture.
    pub arch: Arch,
    /// Optimizer rule.
    pub optimizer: OptimizerKind,
    /// Learning rate.
    pub learning_rate: f64,
    /// Advantage normalisation.
    pub normalization: Normalization,
    /// KL-to-initial-policy coefficient β (a pseudo-piece when > 0).
    pub kl: f64,
    /// Weight decay λ (a pseudo-piece when > 0).
    pub weight_decay: f64,
    /// Scale of the MLP's random input layer.
    pub init_scale: f64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Checkpoints kept: the latest `checkpoint_keep`...
    pub checkpoint_keep: u64,
    /// ...and the first of every span of `checkpoint_keep_every` steps (0: none).
    pub checkpoint_keep_every: u64,
    /// Gauss–Legendre nodes for in-run credit (0 turns credit off).
    pub credit_nodes: usize,
}

/// The guard added to group standard deviations.
pub const SIGMA_EPS: f64 = 1e-6;

impl TrainConfig {
    /// The config of a validated spec whose policy trains; `None` for other policy kinds.
    pub fn of(spec: &gristmill_core::spec::ValidSpec) -> Option<TrainConfig> {
        TrainConfig::from_params(spec.policy_kind().name, spec.policy_params())
    }

    /// The config of a trainable kind from resolved params; `None` for other kinds.
    pub fn from_params(kind: &str, p: &Params) -> Option<TrainConfig> {
        let arch = match kind {
            "loglinear" => Arch::LogLinear,
            "mlp" => Arch::Mlp { hidden: p.int("hidden") as usize },
            _ => return None,
        };
        let optimizer = match p.choice("optimizer") {
            "sgd" => OptimizerKind::Sgd,
            _ => {
                OptimizerKind::Adam { beta1: p.float("beta1"), beta2: p.float("beta2"), eps: p.float("eps") }
            }
        };
        Some(TrainConfig {
            arch,
            optimizer,
            learning_rate: p.float("learning_rate"),
            normalization: match p.choice("normalization") {
                "per_channel" => Normalization::PerChannel,
                "none" => Normalization::None,
                _ => Normalization::Shared,
            },
            kl: p.float("kl"),
            weight_decay: p.float("weight_decay"),
            init_scale: if kind == "mlp" { p.float("init_scale") } else { 0.0 },
            checkpoint_every: p.int("checkpoint_every") as u64,
            checkpoint_keep: p.int("checkpoint_keep") as u64,
            checkpoint_keep_every: p.int("checkpoint_keep_every") as u64,
            credit_nodes: p.int("credit_nodes") as usize,
        })
    }
}

impl TrainConfig {
    /// A short name of the architecture and optimizer, for tables.
    pub fn arch_name(&self) -> String {
        let arch = match self.arch {
            Arch::LogLinear => "loglinear".to_string(),
            Arch::Mlp { hidden } => format!("mlp(hidden={hidden})"),
        };
        let opt = match self.optimizer {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam { .. } => "adam",
        };
        format!("{arch}, {opt}, lr {}", self.learning_rate)
    }
}
