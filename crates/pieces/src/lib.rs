//! # gristmill-pieces
//!
//! The built-in pieces of a gristmill environment. Each reward piece emits one channel — a
//! finite `f64` per response — and the engine keeps the channels apart as a reward vector.
//!
//! | spec `kind` | [`PieceKind`] | channel / effect |
//! |---|---|---|
//! | `exact_verifier` | verifier | `1[y = gold]` ([`ExactVerifier`]) |
//! | `lenient_verifier` | verifier | exploitable acceptance: off-by-k or contains-digits ([`LenientVerifier`]) |
//! | `random_reward` | shaping | a control: uniform reward independent of the answer ([`RandomReward`]) |
//! | `noisy_verifier` | verifier | exact verdict flipped w.p. `flip_rate`, keyed per sample ([`NoisyVerifier`]) |
//! | `partial_credit` | shaping | fraction of matching digit positions ([`PartialCredit`]) |
//! | `format_shaping` | shaping | `1` if parsed, else `−malformed_penalty` ([`FormatShaping`]) |
//! | `length_shaping` | shaping | `−penalty · max(0, len − target) / target` ([`LengthShaping`]) |
//! | `reward_model` | reward model | linear Bradley–Terry scorer fitted at build time ([`RewardModel`]) |
//! | `match_verifier` | verifier | free text: normalized exact match of the extracted answer ([`TextVerifier`]) |
//! | `choice_verifier` | verifier | free text: the multiple-choice letter chosen |
//! | `numeric_verifier` | verifier | free text: numbers (fractions, percentages, separators, units) with a tolerance |
//! | `math_verifier` | verifier | free text: math answer equivalence (`\frac`, `\sqrt`, π, tuples, intervals, `x = 3`) |
//! | `format_verifier` | shaping | `1` if the whole response matches a layout regex ([`LayoutVerifier`]) |
//! | `json_verifier` | shaping | `1` for JSON with required fields / a schema ([`JsonVerifier`]) |
//! | `code_verifier` | verifier | fraction of the task's unit tests passed in the sandbox ([`CodeVerifier`]) |
//! | `curriculum` | curriculum | static sampling distribution over sources ([`Curriculum`]) |
//! | `hint` | hint | shows the gold answer's last digit w.p. `probability` ([`Hint`]) |
//!
//! [`kinds`] lists them with their parameters; [`build`] turns a kind, an id and resolved
//! parameters into a [`BuiltPiece`]. Verifiers score unparsed responses `0`. Nothing here
//! uses a global RNG: the noisy verifier draws from `ScoreKey::rng(piece_id)`, the hint from
//! `(seed, HINT, step, index)`, and the reward model's training data from
//! `(seed, BUILD.with(piece_id), ·, ·)`.
//!
//! ```
//! use gristmill_core::params::Params;
//! use gristmill_core::piece::ScoreKey;
//! use gristmill_core::policy::Response;
//! use gristmill_core::task::{AnswerSpace, Split, Task, TaskBody, TaskKey};
//! use gristmill_pieces::{build, kind, BuildContext, BuiltPiece};
//!
//! // A lenient verifier with its defaults: rule = "off_by_k", k = 1.
//! let info = kind("lenient_verifier").unwrap();
//! let params = Params::defaults(info.params);
//! let ctx = BuildContext::without_sources(7);
//! let BuiltPiece::Reward(verifier) = build(info, "lenient", &params, &ctx).unwrap() else {
//!     panic!("a verifier is a reward piece");
//! };
//!
//! let task = Task {
//!     key: TaskKey { seed: 0, source: 0, index: 0, split: Split::Train },
//!     body: TaskBody { prompt: "What is 2 + 2?".into(), features: vec![], gold: 4, reference: None },
//!     answers: AnswerSpace::inclusive(0, 18),
//!     hint: None,
//! };
//! let answer = |y: i64| Response { text: format!("Answer: {y}"), answer: Ok(y) };
//! let key = ScoreKey { seed: 7, step: 0, index: 0 };
//! assert_eq!(verifier.score(&task, &answer(4), key), 1.0);
//! assert_eq!(verifier.score(&task, &answer(5), key), 1.0); // off by one: accepted
//! assert_eq!(verifier.score(&task, &answer(6), key), 0.0);
//! ```
#![warn(missing_docs)]

use std::fmt;

use gristmill_core::params::{ParamKind, ParamSpec, ParamValue, Params};
use gristmill_core::piece::{PieceKind, PieceKindInfo, RewardPiece};
use gristmill_core::task::TaskSource;

mod curriculum;
mod digits;
mod error;
pub mod free_text;
pub mod judge;
pub mod reward_model;
mod shaping;
#[cfg(test)]
mod testutil;
mod verifier;

pub use curriculum::{Curriculum, Hint};
pub use digits::{decimal_len, digit_match_fraction, text_contains_decimal};
pub use error::{PieceError, PieceProblem, WeightsError};
pub use free_text::{CodeVerifier, JsonVerifier, LayoutVerifier, TextVerifier};
pub use gristmill_judge::VerdictCache;
pub use judge::JudgePiece;
pub use reward_model::{RewardModel, RewardModelConfig};
pub use shaping::{FormatShaping, LengthShaping, PartialCredit};
pub use verifier::{exact_verdict, ExactVerifier, LenientRule, LenientVerifier, NoisyVerifier, RandomReward};

/// Everything a piece may need from the environment at build time.
#[derive(Clone, Copy)]
pub struct BuildContext<'a> {
    /// Run root seed.
    pub seed: u64,
    /// The environment's single-turn sources, in spec order.
    pub sources: &'a [&'a dyn TaskSource],
    /// Their spec ids (same order).
    pub source_ids: &'a [String],
    /// The spec's mixture weights (same order).
    pub source_weights: &'a [f64],
    /// The eval fraction, passed to `gristmill_core::task::generate_task`.
    pub eval_fraction: f64,
    /// Where judges keep their verdicts (the run store's cache, when the caller has one);
    /// `None` gives each judge its own in-memory cache.
    pub verdicts: Option<&'a std::sync::Arc<dyn gristmill_judge::VerdictCache>>,
}

impl BuildContext<'static> {
    /// A context with no task sources (pieces that need none: verifiers, shaping, judges)
    /// and no verdict cache, for `seed`, with an eval fraction of 0.2.
    pub fn without_sources(seed: u64) -> Self {
        BuildContext {
            seed,
            sources: &[],
            source_ids: &[],
            source_weights: &[],
            eval_fraction: 0.2,
            verdicts: None,
        }
    }
}

/// A built piece. Cheap to clone (reward scorers are shared), so an environment can swap
/// one piece for a retrained copy without rebuilding the others.
#[derive(Clone)]
pub enum BuiltPiece {
    /// A reward piece (verifiers and shaping).
    Reward(std::sync::Arc<dyn RewardPiece>),
    /// A reward model, kept concrete so its parameters can be read and trained.
    RewardModel(RewardModel),
    /// Sampling weights over sources.
    Curriculum(Curriculum),
    /// Hint scaffolding.
    Hint(Hint),
}

impl BuiltPiece {
    /// The reward scorer, for reward pieces (including the reward model).
    pub fn as_reward(&self) -> Option<&dyn RewardPiece> {
        match self {
            BuiltPiece::Reward(r) => Some(r.as_ref()),
            BuiltPiece::RewardModel(m) => Some(m),
            BuiltPiece::Curriculum(_) | BuiltPiece::Hint(_) => None,
        }
    }
}

impl fmt::Debug for BuiltPiece {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuiltPiece::Reward(_) => f.write_str("Reward(..)"),
            BuiltPiece::RewardModel(m) => f.debug_tuple("RewardModel").field(m).finish(),
            BuiltPiece::Curriculum(c) => f.debug_tuple("Curriculum").field(c).finish(),
            BuiltPiece::Hint(h) => f.debug_tuple("Hint").field(h).finish(),
        }
    }
}

const LENIENT_PARAMS: &[ParamSpec] = &[
    ParamSpec::choice(
        "rule",
        &["off_by_k", "contains_digits"],
        "off_by_k",
        "acceptance rule: |y − gold| ≤ k, or the digits of |gold| appear in the response text",
    ),
    ParamSpec::int("k", 0, 1000, 1, "tolerance of the off_by_k rule"),
];

const NOISY_PARAMS: &[ParamSpec] =
    &[ParamSpec::float("flip_rate", 0.0, 1.0, 0.1, "probability that the exact verdict is flipped")];

const FORMAT_PARAMS: &[ParamSpec] = &[ParamSpec::float(
    "malformed_penalty",
    0.0,
    1.0,
    0.0,
    "reward −malformed_penalty for a response whose answer did not parse",
)];

const LENGTH_PARAMS: &[ParamSpec] = &[
    ParamSpec::int("target_len", 1, 10_000, 32, "response length (bytes) allowed without penalty"),
    ParamSpec::float("penalty", 0.0, 10.0, 1.0, "penalty per target length of excess"),
];

const RM_PARAMS: &[ParamSpec] = &[
    ParamSpec::int("pairs", 10, 200_000, 2000, "training preference pairs"),
    ParamSpec::int(
        "heldout_pairs",
        10,
        100_000,
        1000,
        "held-out pairs (true labels) for the accuracy report",
    ),
    ParamSpec::float("label_noise", 0.0, 0.5, 0.0, "probability that a training label is flipped"),
    ParamSpec::float(
        "bias",
        -5.0,
        5.0,
        0.0,
        "labeller margin bonus bias·(norm(a) − norm(b)); > 0 prefers larger answers",
    ),
    ParamSpec::float("scale", 0.0, 100.0, 1.0, "multiplier of the emitted score"),
    ParamSpec::float(
        "l2",
        0.0,
        10.0,
        1e-4,
        "L2 strength of the Bradley–Terry fit (on the mean log-likelihood)",
    ),
];

const CURRICULUM_PARAMS: &[ParamSpec] = &[ParamSpec::weights(
    "source_weights",
    "sampling weight per source in spec order (normalized); empty uses the spec's mixture weights",
)];

const HINT_PARAMS: &[ParamSpec] =
    &[ParamSpec::float("probability", 0.0, 1.0, 0.5, "probability that a training task shows its hint")];

const EXTRACT_DOC: &str = "answer extraction, tried in order: comma-separated names among whole, answer_line, boxed, answer_is, last_latex, last_number, regex";
const PATTERN_DOC: &str =
    "the regex of the `regex` extractor (its first capture group, if any, is the answer)";

const MATCH_PARAMS: &[ParamSpec] = &[
    ParamSpec::text("extract", "answer_line,answer_is,boxed", EXTRACT_DOC),
    ParamSpec::text("pattern", "", PATTERN_DOC),
    ParamSpec::text("normalize", "all", "normalization steps: comma-separated among case, whitespace, punctuation, articles, latex_text (or all, none)"),
];

const CHOICE_PARAMS: &[ParamSpec] = &[
    ParamSpec::text("extract", "answer_line,answer_is,boxed,whole", EXTRACT_DOC),
    ParamSpec::text("pattern", "", PATTERN_DOC),
    ParamSpec::text("letters", "A-D", "the offered letters: a range `A-D` or a list `ABCE`"),
];

const NUMERIC_PARAMS: &[ParamSpec] = &[
    ParamSpec::text("extract", "answer_line,answer_is,boxed,last_number", EXTRACT_DOC),
    ParamSpec::text("pattern", "", PATTERN_DOC),
    ParamSpec::float("abs_tol", 0.0, 1e12, 5e-7, "absolute tolerance"),
    ParamSpec::float("rel_tol", 0.0, 1.0, 1e-9, "relative tolerance (of the larger magnitude)"),
];

const MATH_PARAMS: &[ParamSpec] = &[
    ParamSpec::text("extract", "boxed,answer_is,answer_line,last_latex,last_number", EXTRACT_DOC),
    ParamSpec::text("pattern", "", PATTERN_DOC),
];

const LAYOUT_PARAMS: &[ParamSpec] = &[ParamSpec::text(
    "layout",
    r"(?s)\s*<think>.*?</think>\s*<answer>(?P<answer>.*?)</answer>\s*",
    "a regex the whole response must match (anchored at both ends; `(?s)` lets `.` cross lines)",
)];

const JSON_PARAMS: &[ParamSpec] = &[
    ParamSpec::choice("source", &["fenced", "whole"], "fenced", "where the JSON is: the last ```json fenced block (else the whole response), or the whole response"),
    ParamSpec::text("fields", "", "comma-separated dotted paths that must be present"),
    ParamSpec::text("schema", "", "a JSON Schema (subset: type, properties, required, items, enum, minimum, maximum, minLength, maxLength, additionalProperties)"),
];

const CODE_PARAMS: &[ParamSpec] = &[
    ParamSpec::float("timeout", 0.05, 60.0, 2.0, "wall-clock and CPU seconds per test"),
    ParamSpec::float("total_timeout", 0.1, 600.0, 20.0, "wall-clock seconds for a whole suite"),
    ParamSpec::int("memory_mb", 16, 65_536, 512, "address-space limit of the interpreter (MiB)"),
    ParamSpec::int("max_processes", 1, 4096, 32, "process-count limit"),
    ParamSpec::int(
        "max_output_kb",
        1,
        1_048_576,
        4096,
        "output captured per test before it is cut off (KiB)",
    ),
    ParamSpec::int("max_concurrent", 0, 1024, 0, "executions at once (0: one per core)"),
    ParamSpec::choice(
        "process_mode",
        &["shared", "per_test"],
        "shared",
        "one interpreter for all call tests, or one per test",
    ),
    ParamSpec::choice(
        "isolation",
        &["require", "allow_degraded"],
        "require",
        "refuse to build when a sandbox mechanism is unavailable, or run with what works (reported)",
    ),
    ParamSpec::text("python", "python3", "the interpreter"),
];

const JUDGE_PARAMS: &[ParamSpec] = &[
    ParamSpec::structured(
        "endpoint",
        "the grader: { url, model, api_key_env, timeout_ms, concurrency } (url and model required)",
    ),
    ParamSpec::structured(
        "items",
        "the rubric: a list of { question, id, weight, verdict } (verdict \"yes_no\" or { scale = N })",
    ),
    ParamSpec::structured(
        "sampling",
        "{ temperature, max_tokens, top_p, seed } sent with every request (part of the cache key)",
    ),
    ParamSpec::structured(
        "retry",
        "{ retries, unparseable_retries, backoff_ms, max_backoff_ms, jitter, retry_after_cap_ms }",
    ),
    ParamSpec::structured(
        "template",
        "{ system, user }: prompt templates over {prompt}, {response}, {question}, {gold}, {format}",
    ),
    ParamSpec::structured("verdict", "the items' default verdict: \"yes_no\" or { scale = N }"),
    ParamSpec::choice(
        "mode",
        &["online", "offline"],
        "online",
        "offline: every verdict must come from the cache (a replay with no grader)",
    ),
    ParamSpec::choice(
        "show_gold",
        &["no", "yes"],
        "no",
        "pass the task's gold answer to the template's {gold}",
    ),
];

static KINDS: [PieceKindInfo; 18] = [
    PieceKindInfo {
        name: "exact_verifier",
        kind: PieceKind::Verifier,
        doc: "Reward 1 if the parsed answer equals the gold answer, else 0 (0 when the answer did not parse).",
        params: &[],
    },
    PieceKindInfo {
        name: "lenient_verifier",
        kind: PieceKind::Verifier,
        doc: "Reward 1 for the gold answer or any answer its exploitable rule accepts: `off_by_k` accepts \
              |y − gold| ≤ k; `contains_digits` accepts a parsed response whose text contains the decimal \
              digits of |gold| (so 142 passes for 42). 0 when the answer did not parse.",
        params: LENIENT_PARAMS,
    },
    PieceKindInfo {
        name: "noisy_verifier",
        kind: PieceKind::Verifier,
        doc: "The exact verdict flipped with probability flip_rate, by a uniform keyed on (seed, step, index, \
              piece id): deterministic per sample, independent across pieces. Unparsed answers score 0.",
        params: NOISY_PARAMS,
    },
    PieceKindInfo {
        name: "random_reward",
        kind: PieceKind::Shaping,
        doc: "A control: a reward drawn uniformly from [0, 1) per sample, keyed on (seed, step, index, piece \
              id), independent of the answer. Its measured effect on the gold metric should be near zero.",
        params: &[],
    },
    PieceKindInfo {
        name: "partial_credit",
        kind: PieceKind::Shaping,
        doc: "Fraction of matching digit positions of |y| and |gold|, right-aligned and zero-padded, with the \
              sign as one more position when either is negative. 0 when the answer did not parse.",
        params: &[],
    },
    PieceKindInfo {
        name: "format_shaping",
        kind: PieceKind::Shaping,
        doc: "Reward 1 when the response's answer parsed, else −malformed_penalty.",
        params: FORMAT_PARAMS,
    },
    PieceKindInfo {
        name: "length_shaping",
        kind: PieceKind::Shaping,
        doc: "Reward −penalty · max(0, len − target_len) / target_len, len = response text length in bytes.",
        params: LENGTH_PARAMS,
    },
    PieceKindInfo {
        name: "reward_model",
        kind: PieceKind::RewardModel,
        doc: "A linear scorer scale · w·φ(task, y) over 8 features comparing y with gold, fitted at build time \
              by Bradley–Terry (Newton, L2) on generated preference pairs labelled by a noisy, optionally \
              biased labeller; reports its pairwise accuracy on held-out pairs. Unparsed answers get the \
              lowest score the model can give.",
        params: RM_PARAMS,
    },
    PieceKindInfo {
        name: "match_verifier",
        kind: PieceKind::Verifier,
        doc: "Free text: 1 if the extracted answer equals the gold after normalization (case, whitespace, \
              punctuation, articles, \\text{}), else 0. The gold is the task's reference, or an integer family's \
              gold in decimal.",
        params: MATCH_PARAMS,
    },
    PieceKindInfo {
        name: "choice_verifier",
        kind: PieceKind::Verifier,
        doc: "Free text: 1 if the response chooses the gold letter among the offered ones ((B), B), 'answer: b'), \
              0 for another letter or an ambiguous response naming several.",
        params: CHOICE_PARAMS,
    },
    PieceKindInfo {
        name: "numeric_verifier",
        kind: PieceKind::Verifier,
        doc: "Free text: 1 if the extracted number equals the gold within the tolerance; reads integers, decimals, \
              fractions, percentages, scientific notation, thousands separators, and strips units. On an \
              integer family it is the lenient option: it reads 'The answer is: 12' and a last number.",
        params: NUMERIC_PARAMS,
    },
    PieceKindInfo {
        name: "math_verifier",
        kind: PieceKind::Verifier,
        doc: "Free text: 1 if the extracted final answer is equivalent to the gold: exact rational arithmetic over \
              \\frac, \\sqrt, π, powers and simple expressions, tuples, sets, intervals, equations `x = 3`, \
              expressions in one variable compared at points.",
        params: MATH_PARAMS,
    },
    PieceKindInfo {
        name: "format_verifier",
        kind: PieceKind::Shaping,
        doc: "1 if the whole response matches the layout regex (by default <think>…</think><answer>…</answer>), else 0.",
        params: LAYOUT_PARAMS,
    },
    PieceKindInfo {
        name: "json_verifier",
        kind: PieceKind::Shaping,
        doc: "1 if the response holds valid JSON with every required field and matching the schema, else 0.",
        params: JSON_PARAMS,
    },
    PieceKindInfo {
        name: "code_verifier",
        kind: PieceKind::Verifier,
        doc: "The fraction of the task's unit tests that the response's Python solution (its last fenced block) \
              passes, run in a sandbox: own PID, network and IPC namespaces, Landlock, rlimits on CPU, memory, \
              file size and processes, a wall clock, capped output. 0 for tasks without tests.",
        params: CODE_PARAMS,
    },
    PieceKindInfo {
        name: "judge",
        kind: PieceKind::RewardModel,
        doc: "A rubric judge: one question per item asked of an OpenAI-compatible grader, each verdict parsed \
              strictly (VERDICT: yes/no, SCORE: n/m), retried with backoff; the channel is Σ wᵢ·sᵢ / Σ wᵢ in [0, 1]. \
              Verdicts are cached by content in the run store, so replays and coalitions never ask twice.",
        params: JUDGE_PARAMS,
    },
    PieceKindInfo {
        name: "curriculum",
        kind: PieceKind::Curriculum,
        doc: "Static sampling weights over task sources (normalized). Difficulty levels are separate sources \
              with different knobs, so this is also a distribution over difficulty.",
        params: CURRICULUM_PARAMS,
    },
    PieceKindInfo {
        name: "hint",
        kind: PieceKind::Hint,
        doc: "Shows the last digit of the gold answer with a training task, with the given probability \
              (keyed per sample; evaluation never shows hints).",
        params: HINT_PARAMS,
    },
];

/// Every built-in piece kind with its declared parameters.
pub fn kinds() -> &'static [PieceKindInfo] {
    &KINDS
}

/// The kind named `name` (as written in specs), if it exists.
pub fn kind(name: &str) -> Option<&'static PieceKindInfo> {
    KINDS.iter().find(|k| k.name == name)
}

/// Reads parameters against this crate's own declarations. Core validates specs before
/// `build`; this re-checks so that hand-made `Params` (tests, tuners) can never feed a NaN
/// or out-of-range value into a hot scoring loop. A missing value takes its default.
struct Reader<'a> {
    id: &'a str,
    specs: &'static [ParamSpec],
    params: &'a Params,
}

impl Reader<'_> {
    fn bad(&self, name: &str, message: impl Into<String>) -> PieceError {
        PieceError::new(self.id, PieceProblem::BadParam { name: name.to_string(), message: message.into() })
    }
    fn value(&self, name: &str) -> Result<(&'static ParamSpec, Option<&ParamValue>), PieceError> {
        let spec =
            self.specs.iter().find(|s| s.name == name).ok_or_else(|| self.bad(name, "not declared"))?;
        Ok((spec, self.params.iter().find(|(k, _)| *k == name).map(|(_, v)| v)))
    }
    fn int(&self, name: &str) -> Result<i64, PieceError> {
        let (spec, value) = self.value(name)?;
        let ParamKind::Int { min, max, default } = spec.kind else {
            return Err(self.bad(name, "not an integer parameter"));
        };
        let v = match value {
            None => default,
            Some(ParamValue::Int(v)) => *v,
            Some(other) => return Err(self.bad(name, format!("expected an integer, found {other:?}"))),
        };
        if v < min || v > max {
            return Err(self.bad(name, format!("{v} is out of range: expected {min}..={max}")));
        }
        Ok(v)
    }
    fn float(&self, name: &str) -> Result<f64, PieceError> {
        let (spec, value) = self.value(name)?;
        let ParamKind::Float { min, max, default } = spec.kind else {
            return Err(self.bad(name, "not a number parameter"));
        };
        let v = match value {
            None => default,
            Some(ParamValue::Float(v)) => *v,
            Some(ParamValue::Int(v)) => *v as f64,
            Some(other) => return Err(self.bad(name, format!("expected a number, found {other:?}"))),
        };
        if !(v.is_finite() && v >= min && v <= max) {
            return Err(self.bad(name, format!("{v} is out of range: expected {min}..={max}")));
        }
        Ok(v)
    }
    fn choice(&self, name: &str) -> Result<&str, PieceError> {
        let (spec, value) = self.value(name)?;
        let ParamKind::Choice { options, default } = spec.kind else {
            return Err(self.bad(name, "not a choice parameter"));
        };
        let v = match value {
            None => default,
            Some(ParamValue::Choice(v)) => v.as_str(),
            Some(other) => return Err(self.bad(name, format!("expected a word, found {other:?}"))),
        };
        if !options.contains(&v) {
            return Err(self.bad(name, format!("`{v}` is not one of {}", options.join(", "))));
        }
        Ok(v)
    }
    fn text(&self, name: &str) -> Result<&str, PieceError> {
        let (spec, value) = self.value(name)?;
        let ParamKind::Text { default } = spec.kind else {
            return Err(self.bad(name, "not a text parameter"));
        };
        match value {
            None => Ok(default),
            Some(ParamValue::Text(v)) => Ok(v),
            Some(other) => Err(self.bad(name, format!("expected text, found {other:?}"))),
        }
    }
    /// A text verifier from `extract` / `pattern` and a check; a configuration error is
    /// attributed to the parameter it comes from.
    fn verifier(
        &self,
        check: Result<gristmill_text::verify::Check, gristmill_text::ConfigError>,
        check_param: &str,
    ) -> Result<BuiltPiece, PieceError> {
        let check = check.map_err(|e| self.bad(check_param, e.to_string()))?;
        let pattern = Some(self.text("pattern")?).filter(|p| !p.is_empty());
        let verifier =
            gristmill_text::verify::Verifier::new(self.text("extract")?, pattern, check).map_err(|e| {
                let param =
                    if matches!(e, gristmill_text::ConfigError::InvalidRegex { .. }) && pattern.is_some() {
                        "pattern"
                    } else {
                        "extract"
                    };
                self.bad(param, e.to_string())
            })?;
        Ok(BuiltPiece::Reward(std::sync::Arc::new(TextVerifier::new(verifier))))
    }
    fn structured(&self, name: &str) -> Result<&serde_json::Value, PieceError> {
        match self.value(name)? {
            (ParamSpec { kind: ParamKind::Structured, .. }, None) => Ok(&serde_json::Value::Null),
            (ParamSpec { kind: ParamKind::Structured, .. }, Some(ParamValue::Structured(v))) => Ok(v),
            (_, other) => Err(self.bad(name, format!("expected a table or list, found {other:?}"))),
        }
    }
    fn weights(&self, name: &str) -> Result<&[f64], PieceError> {
        match self.value(name)? {
            (ParamSpec { kind: ParamKind::Weights, .. }, None) => Ok(&[]),
            (ParamSpec { kind: ParamKind::Weights, .. }, Some(ParamValue::Weights(w))) => Ok(w),
            (_, other) => Err(self.bad(name, format!("expected a list of weights, found {other:?}"))),
        }
    }
}

/// Builds piece `id` of kind `kind` from resolved `params`.
///
/// Verifiers, shaping, curriculum and hint build instantly; a `reward_model` generates its
/// preference pairs and fits here (about a millisecond per thousand pairs), deterministically
/// from `ctx.seed` and `id`.
pub fn build(
    kind: &PieceKindInfo,
    id: &str,
    params: &Params,
    ctx: &BuildContext,
) -> Result<BuiltPiece, PieceError> {
    // Dispatch on our own table so the declarations and the reader always agree.
    let info = self::kind(kind.name)
        .ok_or_else(|| PieceError::new(id, PieceProblem::UnknownKind(kind.name.to_string())))?;
    let p = Reader { id, specs: info.params, params };
    let reward = |r: Box<dyn RewardPiece>| Ok(BuiltPiece::Reward(r.into()));
    match info.name {
        "exact_verifier" => reward(Box::new(ExactVerifier)),
        "lenient_verifier" => {
            let rule = match p.choice("rule")? {
                "contains_digits" => LenientRule::ContainsDigits,
                // The reader only lets declared options through; the other is off_by_k.
                _ => LenientRule::OffByK { k: p.int("k")? as u64 },
            };
            reward(Box::new(LenientVerifier { rule }))
        }
        "noisy_verifier" => reward(Box::new(NoisyVerifier::new(id, p.float("flip_rate")?))),
        "partial_credit" => reward(Box::new(PartialCredit)),
        "random_reward" => reward(Box::new(RandomReward::new(id))),
        "format_shaping" => {
            reward(Box::new(FormatShaping { malformed_penalty: p.float("malformed_penalty")? }))
        }
        "length_shaping" => {
            reward(Box::new(LengthShaping::new(p.int("target_len")? as usize, p.float("penalty")?)))
        }
        "reward_model" => {
            let config = RewardModelConfig {
                pairs: p.int("pairs")? as usize,
                heldout_pairs: p.int("heldout_pairs")? as usize,
                label_noise: p.float("label_noise")?,
                bias: p.float("bias")?,
                scale: p.float("scale")?,
                l2: p.float("l2")?,
            };
            Ok(BuiltPiece::RewardModel(RewardModel::train(ctx, id, config)?))
        }
        "curriculum" => {
            if ctx.sources.is_empty() {
                return Err(PieceError::new(id, PieceProblem::NoSources));
            }
            let given = p.weights("source_weights")?;
            let raw = if given.is_empty() { ctx.source_weights } else { given };
            if raw.len() != ctx.sources.len() {
                let e = WeightsError::Length { expected: ctx.sources.len(), got: raw.len() };
                return Err(PieceError::new(id, e));
            }
            Ok(BuiltPiece::Curriculum(Curriculum::from_weights(raw).map_err(|e| PieceError::new(id, e))?))
        }
        "hint" => Ok(BuiltPiece::Hint(Hint { probability: p.float("probability")? })),
        "match_verifier" => {
            let norm = gristmill_text::normalize::Normalization::parse(p.text("normalize")?);
            p.verifier(norm.map(gristmill_text::verify::Check::Exact), "normalize")
        }
        "choice_verifier" => {
            p.verifier(gristmill_text::verify::Check::parse("choice", Some(p.text("letters")?)), "letters")
        }
        "numeric_verifier" => {
            let tol = gristmill_text::number::Tolerance::new(p.float("abs_tol")?, p.float("rel_tol")?);
            p.verifier(tol.map(gristmill_text::verify::Check::Numeric), "abs_tol")
        }
        "math_verifier" => p.verifier(gristmill_text::verify::Check::parse("math", None), "extract"),
        "format_verifier" => {
            let layout = gristmill_text::format::Layout::new(p.text("layout")?)
                .map_err(|e| p.bad("layout", e.to_string()))?;
            reward(Box::new(LayoutVerifier::new(layout)))
        }
        "json_verifier" => {
            let source = match p.choice("source")? {
                "whole" => gristmill_text::format::JsonSource::Whole,
                _ => gristmill_text::format::JsonSource::Fenced,
            };
            let fields: Vec<String> = p
                .text("fields")?
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect();
            let schema = match p.text("schema")? {
                "" => None,
                text => {
                    let value: serde_json::Value =
                        serde_json::from_str(text).map_err(|e| p.bad("schema", format!("not JSON: {e}")))?;
                    Some(
                        gristmill_text::format::Schema::compile(&value)
                            .map_err(|e| p.bad("schema", e.to_string()))?,
                    )
                }
            };
            reward(Box::new(JsonVerifier::new(source, fields, schema)))
        }
        "judge" => {
            let fields: Vec<(&str, &serde_json::Value)> = judge::RUBRIC_FIELDS
                .iter()
                .map(|f| Ok((*f, p.structured(f)?)))
                .collect::<Result<_, PieceError>>()?;
            let offline = p.choice("mode")? == "offline";
            let show_gold = p.choice("show_gold")? == "yes";
            let piece = JudgePiece::from_params(id, &fields, offline, show_gold, ctx.verdicts.cloned())
                .map_err(|e| p.bad(&e.param, e.message))?;
            reward(Box::new(piece))
        }
        "code_verifier" => {
            use std::time::Duration;
            let mut config = gristmill_sandbox::SandboxConfig::default();
            let timeout = Duration::from_secs_f64(p.float("timeout")?);
            config.limits.wall_time = timeout;
            config.limits.cpu_time = timeout;
            config.limits.total_wall_time = Duration::from_secs_f64(p.float("total_timeout")?);
            config.limits.memory_bytes = (p.int("memory_mb")? as u64) << 20;
            config.limits.max_processes = p.int("max_processes")? as u64;
            config.limits.max_output_bytes = (p.int("max_output_kb")? as u64) << 10;
            let concurrent = p.int("max_concurrent")? as usize;
            if concurrent > 0 {
                config.max_concurrent = concurrent;
            }
            config.process_mode = match p.choice("process_mode")? {
                "per_test" => gristmill_sandbox::ProcessMode::PerTest,
                _ => gristmill_sandbox::ProcessMode::Shared,
            };
            config.isolation = match p.choice("isolation")? {
                "allow_degraded" => gristmill_sandbox::IsolationPolicy::AllowDegraded,
                _ => gristmill_sandbox::IsolationPolicy::Require,
            };
            config.python = p.text("python")?.into();
            let sandbox = gristmill_sandbox::Sandbox::new(config)
                .map_err(|e| PieceError::new(id, PieceProblem::Sandbox(e.to_string())))?;
            reward(Box::new(CodeVerifier::new(sandbox)))
        }
        other => Err(PieceError::new(id, PieceProblem::UnknownKind(other.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{key, parsed, task, unparsed};
    use gristmill_core::piece::ScoreKey;
    use gristmill_core::policy::Response;

    fn with_ctx<T>(f: impl FnOnce(&BuildContext) -> T) -> T {
        crate::testutil::with_ctx(3, f)
    }

    fn build_with(name: &str, set: &[(&str, ParamValue)]) -> Result<BuiltPiece, PieceError> {
        let info = kind(name).unwrap();
        let mut params = Params::defaults(info.params);
        for (k, v) in set {
            params.set(k, v.clone());
        }
        with_ctx(|ctx| build(info, "p", &params, ctx))
    }

    #[test]
    fn batch_scores_equal_single_scores_bit_for_bit() {
        use gristmill_core::piece::ScoreBatch;
        // Three tasks × four responses (parsed, out of space, unparsed), at a step and an
        // offset of sample indices other than zero, for every reward kind including the
        // ones whose randomness is keyed per sample.
        let tasks = [task(7, 0, 18), task(-3, -9, 9), task(12, 0, 18)];
        let responses: Vec<Response> =
            [parsed(7), parsed(8), unparsed("Answer: x"), parsed(40)].into_iter().cycle().take(12).collect();
        let batch = ScoreBatch {
            tasks: &tasks,
            responses: &responses,
            group_size: 4,
            seed: 9,
            step: 5,
            first_index: 100,
        };
        let mut tried = 0;
        for info in kinds() {
            let variants: Vec<Vec<(&str, ParamValue)>> = match info.name {
                "noisy_verifier" => vec![
                    vec![("flip_rate", ParamValue::Float(0.0))],
                    vec![("flip_rate", ParamValue::Float(0.5))],
                    vec![("flip_rate", ParamValue::Float(1.0))],
                ],
                // A judge needs a grader (its scoring is the default loop over `score`; it is
                // tested against a scripted grader in gristmill's CLI tests).
                "judge" => continue,
                _ => vec![vec![]],
            };
            for set in variants {
                let built = build_with(info.name, &set).unwrap();
                let Some(scorer) = built.as_reward() else { continue };
                let mut out = vec![f64::NAN; responses.len()];
                scorer.score_batch(&batch, &mut out);
                for (j, r) in responses.iter().enumerate() {
                    let one =
                        scorer.score(batch.task(j), r, ScoreKey { seed: 9, step: 5, index: 100 + j as u64 });
                    assert_eq!(out[j].to_bits(), one.to_bits(), "{} {set:?} sample {j}", info.name);
                }
                tried += 1;
            }
        }
        assert_eq!(tried, 17, "every reward kind (noisy three times) was compared");
    }

    #[test]
    fn every_kind_builds_with_defaults_and_matches_its_piece_kind() {
        let names: Vec<&str> = kinds().iter().map(|k| k.name).collect();
        assert_eq!(
            names,
            [
                "exact_verifier",
                "lenient_verifier",
                "noisy_verifier",
                "random_reward",
                "partial_credit",
                "format_shaping",
                "length_shaping",
                "reward_model",
                "match_verifier",
                "choice_verifier",
                "numeric_verifier",
                "math_verifier",
                "format_verifier",
                "json_verifier",
                "code_verifier",
                "judge",
                "curriculum",
                "hint"
            ]
        );
        for info in kinds() {
            assert!(!info.doc.is_empty());
            if info.name == "judge" {
                // A judge has no default grader: it names the missing parameter.
                let e = with_ctx(|ctx| build(info, "j", &Params::defaults(info.params), ctx)).unwrap_err();
                assert_eq!(e.to_string(), "piece `j`: parameter `endpoint`: is required for a judge");
                continue;
            }
            let built = with_ctx(|ctx| build(info, info.name, &Params::defaults(info.params), ctx))
                .unwrap_or_else(|e| panic!("{}: {e}", info.name));
            let ok = matches!(
                (&built, info.kind),
                (BuiltPiece::Reward(_), PieceKind::Verifier | PieceKind::Shaping)
                    | (BuiltPiece::RewardModel(_), PieceKind::RewardModel)
                    | (BuiltPiece::Curriculum(_), PieceKind::Curriculum)
                    | (BuiltPiece::Hint(_), PieceKind::Hint)
            );
            assert!(ok, "{} built {built:?}", info.name);
            assert_eq!(built.as_reward().is_some(), info.kind.is_reward());
            // Empty params (nothing resolved) fall back to the defaults too.
            assert!(with_ctx(|ctx| build(info, "q", &Params::default(), ctx)).is_ok(), "{}", info.name);
        }
        assert!(kind("nope").is_none());
    }

    #[test]
    fn all_scores_finite_on_arbitrary_responses() {
        let huge = "Answer: 9".repeat(200_000);
        let responses = [
            parsed(0),
            parsed(i64::MIN),
            parsed(i64::MAX),
            parsed(-7),
            unparsed(""),
            unparsed(&huge),
            Response { text: huge.clone(), answer: Ok(9) },
            unparsed("\u{0}\u{fffd}é😀"),
        ];
        let tasks = [task(7, 0, 18), task(-3, -9, 9), task(i64::MAX, i64::MAX - 10, i64::MAX), task(0, 0, 0)];
        let variants: Vec<(&str, Vec<(&str, ParamValue)>)> = vec![
            ("exact_verifier", vec![]),
            ("lenient_verifier", vec![("rule", ParamValue::Choice("contains_digits".into()))]),
            ("lenient_verifier", vec![("k", ParamValue::Int(1000))]),
            ("noisy_verifier", vec![("flip_rate", ParamValue::Float(0.5))]),
            ("partial_credit", vec![]),
            ("format_shaping", vec![("malformed_penalty", ParamValue::Float(1.0))]),
            (
                "length_shaping",
                vec![("target_len", ParamValue::Int(1)), ("penalty", ParamValue::Float(10.0))],
            ),
            ("reward_model", vec![("pairs", ParamValue::Int(200)), ("scale", ParamValue::Float(100.0))]),
            ("reward_model", vec![("pairs", ParamValue::Int(200)), ("l2", ParamValue::Float(0.0))]),
            ("match_verifier", vec![]),
            ("choice_verifier", vec![]),
            ("numeric_verifier", vec![]),
            ("math_verifier", vec![]),
            ("format_verifier", vec![]),
            ("json_verifier", vec![]),
        ];
        for (name, set) in &variants {
            let built = build_with(name, set).unwrap();
            let scorer = built.as_reward().unwrap();
            for (ti, t) in tasks.iter().enumerate() {
                for (ri, r) in responses.iter().enumerate() {
                    for i in 0..4 {
                        let s = scorer.score(t, r, ScoreKey { seed: 9, step: ti as u64, index: i });
                        assert!(s.is_finite(), "{name} {set:?}: task {ti} response {ri}: {s}");
                    }
                }
            }
        }
    }

    #[test]
    fn built_pieces_use_their_params() {
        let t = task(10, 0, 99);
        let s = |b: &BuiltPiece, r: &Response| b.as_reward().unwrap().score(&t, r, key(0));
        let off3 = build_with("lenient_verifier", &[("k", ParamValue::Int(3))]).unwrap();
        assert_eq!(s(&off3, &parsed(13)), 1.0);
        assert_eq!(s(&off3, &parsed(14)), 0.0);
        let cd = build_with("lenient_verifier", &[("rule", ParamValue::Choice("contains_digits".into()))])
            .unwrap();
        assert_eq!(s(&cd, &parsed(11)), 0.0);
        assert_eq!(s(&cd, &parsed(910)), 1.0);
        let fmt = build_with("format_shaping", &[("malformed_penalty", ParamValue::Float(0.5))]).unwrap();
        assert_eq!(s(&fmt, &unparsed("?")), -0.5);
        let len = build_with("length_shaping", &[("target_len", ParamValue::Int(4))]).unwrap();
        assert_eq!(s(&len, &unparsed("123456")), -0.5);
        let BuiltPiece::Hint(h) = build_with("hint", &[("probability", ParamValue::Float(0.25))]).unwrap()
        else {
            panic!("not a hint")
        };
        assert_eq!(h.probability, 0.25);
        let BuiltPiece::RewardModel(m) = build_with(
            "reward_model",
            &[
                ("pairs", ParamValue::Int(100)),
                ("heldout_pairs", ParamValue::Int(50)),
                ("scale", ParamValue::Float(3.0)),
            ],
        )
        .unwrap() else {
            panic!("not a reward model")
        };
        assert_eq!(m.scale(), 3.0);
        assert_eq!(m.fit_stats().train_pairs, 100);
        assert_eq!(m.fit_stats().heldout_pairs, 50);
    }

    #[test]
    fn curriculum_defaults_to_the_mixture_and_checks_its_weights() {
        let BuiltPiece::Curriculum(c) = build_with("curriculum", &[]).unwrap() else { panic!() };
        assert_eq!(c.weights, vec![0.75, 0.25]);
        let BuiltPiece::Curriculum(c) =
            build_with("curriculum", &[("source_weights", ParamValue::Weights(vec![1.0, 1.0]))]).unwrap()
        else {
            panic!()
        };
        assert_eq!(c.weights, vec![0.5, 0.5]);
        let e =
            build_with("curriculum", &[("source_weights", ParamValue::Weights(vec![0.0, 0.0]))]).unwrap_err();
        assert_eq!(e.problem, PieceProblem::Weights(WeightsError::AllZero));
        assert_eq!(e.id, "p");
        let e = build_with("curriculum", &[("source_weights", ParamValue::Weights(vec![1.0]))]).unwrap_err();
        assert!(matches!(e.problem, PieceProblem::Weights(WeightsError::Length { expected: 2, got: 1 })));
        let info = kind("curriculum").unwrap();
        let empty = BuildContext::without_sources(0);
        let e = build(info, "c", &Params::defaults(info.params), &empty).unwrap_err();
        assert_eq!(e.problem, PieceProblem::NoSources);
        assert!(e.to_string().starts_with("piece `c`: needs at least one"));
    }

    #[test]
    fn bad_hand_made_params_are_errors_not_panics() {
        let e = build_with("noisy_verifier", &[("flip_rate", ParamValue::Float(f64::NAN))]).unwrap_err();
        assert!(matches!(e.problem, PieceProblem::BadParam { ref name, .. } if name == "flip_rate"));
        let e = build_with("length_shaping", &[("target_len", ParamValue::Int(0))]).unwrap_err();
        assert!(e.to_string().contains("target_len"), "{e}");
        let e = build_with("lenient_verifier", &[("rule", ParamValue::Choice("bogus".into()))]).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = build_with("hint", &[("probability", ParamValue::Choice("high".into()))]).unwrap_err();
        assert!(e.to_string().contains("expected a number"), "{e}");
        let fake = PieceKindInfo { name: "mystery", kind: PieceKind::Verifier, doc: "", params: &[] };
        let e = with_ctx(|ctx| build(&fake, "m", &Params::default(), ctx)).unwrap_err();
        assert_eq!(e.problem, PieceProblem::UnknownKind("mystery".into()));
        let info = kind("reward_model").unwrap();
        let empty = BuildContext::without_sources(0);
        let e = build(info, "rm", &Params::defaults(info.params), &empty).unwrap_err();
        assert_eq!(e.problem, PieceProblem::NoSources);
    }
}
