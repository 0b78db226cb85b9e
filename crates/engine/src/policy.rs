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

/// The language-model policy's parameters (trained by `gristmill-lm-run`).
const LM_PARAMS: &[ParamSpec] = &[
    ParamSpec::text("model", "tiny", "`tiny` (a random llama model built in code, for tests), `default` (SmolLM2-135M-Instruct from the model cache) or a path to a llama-family .gguf"),
    ParamSpec::int("tiny_layers", 1, 64, 2, "tiny model: decoder layers"),
    ParamSpec::int("tiny_embed", 4, 4096, 32, "tiny model: embedding width (a multiple of 4 heads, head width even)"),
    ParamSpec::int("tiny_ffn", 1, 16384, 48, "tiny model: feed-forward width"),
    ParamSpec::int("tiny_context", 8, 65536, 512, "tiny model: context window in tokens"),
    ParamSpec::int("tiny_seed", 0, i64::MAX, 1, "tiny model: seed of its random weights"),
    ParamSpec::int("lora_rank", 0, 1024, 8, "LoRA rank r (0: no adapters; then `unfrozen_layers` must name a layer)"),
    ParamSpec::float("lora_alpha", 0.0, 1e6, 16.0, "LoRA scale numerator α (updates scaled by α/r)"),
    ParamSpec::text("lora_targets", "q,v", "comma-separated projections to adapt: q, k, v, o, gate, up, down"),
    ParamSpec::text("unfrozen_layers", "", "comma-separated layer indices trained in full (empty: none)"),
    ParamSpec::float("learning_rate", 0.0, 100.0, 1e-3, "optimizer step size η"),
    ParamSpec::choice("optimizer", &["sgd", "adam"], "adam", "update rule (AdamW: Adam's step split by the Owen value over credit cells, decoupled decay its own share)"),
    ParamSpec::float("beta1", 0.0, 0.999999, 0.9, "Adam first-moment decay"),
    ParamSpec::float("beta2", 0.0, 0.999999, 0.999, "Adam second-moment decay"),
    ParamSpec::float("eps", 1e-300, 1.0, 1e-8, "Adam denominator guard"),
    ParamSpec::float("weight_decay", 0.0, 10.0, 0.0, "decoupled (AdamW) weight decay λ: step −ηλθ, pseudo-piece `weight_decay`"),
    ParamSpec::float("kl", 0.0, 100.0, 0.0, "KL-to-reference coefficient β (k3 estimator on the sampled tokens; pseudo-piece `kl`)"),
    ParamSpec::choice("normalization", &["shared", "per_channel", "none"], "shared", "advantage σ: shared (combined reward), per channel, or none"),
    ParamSpec::choice("token_normalization", &["token_mean", "sequence", "token_batch"], "token_mean", "policy-gradient loss over tokens: mean per sequence (GRPO), sum per sequence, or one mean over the batch's tokens"),
    ParamSpec::float("temperature", 0.0, 10.0, 1.0, "training sampling temperature"),
    ParamSpec::float("top_p", 0.0, 1.0, 1.0, "training nucleus sampling"),
    ParamSpec::int("max_new_tokens", 1, 4096, 32, "tokens generated per response at most"),
    ParamSpec::text("stop", "", "a stop string (empty: none); the text is cut before it"),
    ParamSpec::int("eval_samples", 2, 1024, 4, "samples per gold-suite task for the estimated gold metric M (common random numbers; ≥ 2 for the leave-one-out baseline of ∇M)"),
    ParamSpec::text("gold_completion", "Answer: {gold}", "the completion whose teacher-forced log-likelihood is the smooth second metric; `{gold}` is the task's gold answer"),
    ParamSpec::int("checkpoint_every", 1, 1_000_000, 10, "steps between checkpoints"),
    ParamSpec::int("checkpoint_keep", 1, 1_000_000, 3, "checkpoints kept besides the every-M-th ones (the latest N)"),
    ParamSpec::int("checkpoint_keep_every", 0, 1_000_000_000, 5000, "also keep the first checkpoint of every span of this many steps (0: none)"),
    ParamSpec::int("credit_nodes", 0, 16, 4, "Gauss–Legendre nodes for the log-likelihood metric's path integral; 0 turns in-run credit off"),
];

/// The trainable policy kinds (the hand-written ones trained by `gristmill-learn`, the
/// language model by `gristmill-lm-run`; declared here so that one catalog validates every
/// spec).
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
    PolicyKindInfo {
        name: "lm",
        doc: "A llama-family language model (GGUF dequantized to f32, or a tiny random one) trained with LoRA or unfrozen layers by channel-split GRPO over tokens; gold metric estimated on common random numbers.",
        trainable: true,
        params: LM_PARAMS,
    },
];

/// Every policy kind a spec may name: the reference policies, then the trainable ones.
pub const POLICY_KINDS: &[PolicyKindInfo] = &[
    REFERENCE_POLICIES[0],
    REFERENCE_POLICIES[1],
    TRAINABLE_POLICIES[0],
    TRAINABLE_POLICIES[1],
    TRAINABLE_POLICIES[2],
];

/// Builds a reference policy by kind name, or `None` if the kind is not a reference policy.
pub fn reference_policy(kind: &str, params: &Params) -> Option<Box<dyn Policy>> {
    match kind {
        "uniform" => Some(Box::new(UniformPolicy)),
        "oracle" => Some(Box::new(OraclePolicy { error_rate: params.float("error_rate") })),
        _ => None,
    }
}
