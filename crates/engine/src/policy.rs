//! Reference policies: uniform random, and an oracle that errs with rate ε.

use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::policy::{Policy, Response};
use gristmill_core::rng::KeyedRng;
use gristmill_core::spec::PolicyKindInfo;
use gristmill_core::task::{Task, TaskSource};
use rand::Rng;

/// Answers uniformly at random over the task's answer space.
#[derive(Debug, Clone, Copy, Default)]
pub struct UniformPolicy;

impl Policy for UniformPolicy {
    fn name(&self) -> String {
        "uniform".into()
    }
    fn reads_features(&self) -> bool {
        false
    }
    fn respond_into(&self, task: &Task, source: &dyn TaskSource, rng: &mut KeyedRng, out: &mut Response) {
        if task.answers.size == 0 {
            // A free-text task has no answer space to draw from: the chance baseline says
            // nothing (and scores 0 on every verifier).
            out.text.clear();
            out.answer = Err(gristmill_core::ParseError::Missing);
            return;
        }
        let i = rng.random_range(0..task.answers.size as usize);
        out.set_answer(source, task.answers.value(i));
    }
}

/// Answers the gold answer with probability `1 − ε`, otherwise a uniformly drawn wrong one.
#[derive(Debug, Clone, Copy)]
pub struct OraclePolicy {
    /// ε, the error rate.
    pub error_rate: f64,
}

impl Policy for OraclePolicy {
    fn name(&self) -> String {
        format!("oracle(error_rate={})", self.error_rate)
    }
    fn reads_features(&self) -> bool {
        false
    }
    fn respond_into(&self, task: &Task, source: &dyn TaskSource, rng: &mut KeyedRng, out: &mut Response) {
        if let Some(reference) = &task.body.reference {
            // Free text: the gold response (`Answer: <gold>`, or the reference solution of a
            // code task) with probability 1 − ε, else a non-answer. One uniform either way,
            // as for integer tasks.
            let u: f64 = rng.random();
            out.answer = Err(gristmill_core::ParseError::Missing);
            if u >= self.error_rate && reference.render_gold_into(&mut out.text).is_ok() {
                return;
            }
            out.text.clear();
            out.text.push_str("Answer: I do not know.");
            return;
        }
        let gold = task.gold();
        let size = task.answers.size as usize;
        let u: f64 = rng.random();
        if u >= self.error_rate || size < 2 {
            return out.set_answer(source, gold);
        }
        // A uniform wrong answer: draw among the size − 1 others and skip over gold.
        let g = task.answers.index_of(gold).unwrap_or(0);
        let mut i = rng.random_range(0..size - 1);
        if i >= g {
            i += 1;
        }
        out.set_answer(source, task.answers.value(i));
    }
}

const ORACLE_PARAMS: &[ParamSpec] = &[ParamSpec::float(
    "error_rate",
    0.0,
    1.0,
    0.3,
    "probability of answering a uniformly drawn wrong answer",
)];

/// The reference policy kinds the engine provides.
pub const REFERENCE_POLICIES: &[PolicyKindInfo] = &[
    PolicyKindInfo {
        name: "uniform",
        doc: "Answers uniformly at random over the answer space (the chance baseline); says nothing to free-text tasks.",
        trainable: false,
        params: &[],
    },
    PolicyKindInfo {
        name: "oracle",
        doc: "Answers the gold answer with probability 1 − error_rate, otherwise a uniform wrong answer (free text: `Answer: <gold>` or the reference solution, otherwise \"Answer: I do not know.\").",
        trainable: false,
        params: ORACLE_PARAMS,
    },
];

macro_rules! common_params {
    ($($extra:expr),*) => {
        &[
            ParamSpec::float("learning_rate", 0.0, 100.0, 0.05, "optimizer step size η"),
            ParamSpec::choice("optimizer", &["sgd", "adam"], "adam", "update rule (Adam's step is split by the Owen value of its update over credit cells)"),
            ParamSpec::float("beta1", 0.0, 0.999999, 0.9, "Adam first-moment decay"),
            ParamSpec::float("beta2", 0.0, 0.999999, 0.999, "Adam second-moment decay"),
            ParamSpec::float("eps", 1e-300, 1.0, 1e-8, "Adam denominator guard"),
            ParamSpec::choice("normalization", &["shared", "per_channel", "none"], "shared", "advantage σ: shared (combined reward), per channel, or none"),
            ParamSpec::float("kl", 0.0, 100.0, 0.0, "KL-to-initial-policy coefficient β (pseudo-piece `kl`)"),
            ParamSpec::float("weight_decay", 0.0, 10.0, 0.0, "weight decay λ (pseudo-piece `weight_decay`)"),
            ParamSpec::int("checkpoint_every", 1, 1_000_000, 10, "steps between checkpoints"),
            ParamSpec::int("checkpoint_keep", 1, 1_000_000, 3, "checkpoints kept besides the every-M-th ones (the latest N)"),
            ParamSpec::int("checkpoint_keep_every", 0, 1_000_000_000, 5000, "also keep the first checkpoint of every span of this many steps (0: none)"),
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

/// The trainable policy kinds (trained by `gristmill-learn`; declared here so that one catalog
/// validates every spec).
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

/// Every policy kind a spec may name: the reference policies, then the trainable ones.
pub const POLICY_KINDS: &[PolicyKindInfo] =
    &[REFERENCE_POLICIES[0], REFERENCE_POLICIES[1], TRAINABLE_POLICIES[0], TRAINABLE_POLICIES[1]];

/// Builds a reference policy by kind name, or `None` if the kind is not a reference policy.
pub fn reference_policy(kind: &str, params: &Params) -> Option<Box<dyn Policy>> {
    match kind {
        "uniform" => Some(Box::new(UniformPolicy)),
        "oracle" => Some(Box::new(OraclePolicy { error_rate: params.float("error_rate") })),
        _ => None,
    }
}
