//! Trainable policy kinds and their training settings (the `[policy]` table of a spec).

use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::spec::PolicyKindInfo;

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
    /// Gauss–Legendre nodes for in-run credit (0 turns credit off).
    pub credit_nodes: usize,
}

/// The guard added to group standard deviations.
pub const SIGMA_EPS: f64 = 1e-6;

macro_rules! common_params {
    ($($extra:expr),*) => {
        &[
            ParamSpec::float("learning_rate", 0.0, 100.0, 0.05, "optimizer step size η"),
            ParamSpec::choice("optimizer", &["sgd", "adam"], "adam", "update rule (Adam keeps one first moment per channel)"),
            ParamSpec::float("beta1", 0.0, 0.999999, 0.9, "Adam first-moment decay"),
            ParamSpec::float("beta2", 0.0, 0.999999, 0.999, "Adam second-moment decay"),
            ParamSpec::float("eps", 1e-300, 1.0, 1e-8, "Adam denominator guard"),
            ParamSpec::choice("normalization", &["shared", "per_channel", "none"], "shared", "advantage σ: shared (combined reward), per channel, or none"),
            ParamSpec::float("kl", 0.0, 100.0, 0.0, "KL-to-initial-policy coefficient β (pseudo-piece `kl`)"),
            ParamSpec::float("weight_decay", 0.0, 10.0, 0.0, "weight decay λ (pseudo-piece `weight_decay`)"),
            ParamSpec::int("checkpoint_every", 1, 1_000_000, 10, "steps between checkpoints"),
            ParamSpec::int("credit_nodes", 0, 16, 4, "Gauss–Legendre nodes for in-run credit; 0 turns it off"),
            $($extra),*
        ]
    };
}

const LOGLINEAR_PARAMS: &[ParamSpec] = common_params!();
const MLP_PARAMS: &[ParamSpec] = common_params!(
    ParamSpec::int("hidden", 1, 1024, 32, "hidden width"),
    ParamSpec::float("init_scale", 0.0, 10.0, 1.0, "std × √D of the random input layer")
);

/// The trainable policy kinds.
pub const TRAINABLE_POLICIES: &[PolicyKindInfo] = &[
    PolicyKindInfo {
        name: "loglinear",
        doc: "Log-linear policy over (task features × answer) plus (features × answer last digit); starts uniform.",
        trainable: true,
        params: LOGLINEAR_PARAMS,
    },
    PolicyKindInfo {
        name: "mlp",
        doc: "One-hidden-layer tanh MLP over the task encoding; zero output layer, so it starts uniform.",
        trainable: true,
        params: MLP_PARAMS,
    },
];

impl TrainConfig {
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
