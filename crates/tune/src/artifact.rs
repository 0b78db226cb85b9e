//! Trained pieces as versioned artifacts, and their transfer to new policies and tasks.
//!
//! An artifact records, besides the learned parameters, what they were learned *over*: the
//! piece's configuration, the name of every learned coordinate, and each training source's
//! family, resolved knobs, answer space and feature count. [`Artifact::fit`] checks those
//! against a target environment before anything runs, so a transfer that would make the
//! parameters meaningless is refused with a [`Misfit`] naming both sides instead of training
//! on silently reinterpreted numbers.

use std::collections::BTreeMap;
use std::fmt;

use gristmill_core::digest::content_hash;
use gristmill_core::params::Params;
use gristmill_core::piece::PieceKind;
use gristmill_engine::{EnvPiece, Environment};
use gristmill_learn::model::Arch;
use gristmill_learn::TrainConfig;
use gristmill_pieces::reward_model::{FEATURE_NAMES, MAX_ABS_WEIGHT};
use gristmill_pieces::BuiltPiece;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::tuner::{apply_learnable, Learnable, TuneError};

/// The artifact format this version writes and reads. Format 1 recorded only the training
/// spec's source ids, which cannot tell a curriculum over `addition` from one over
/// `counting` under the same ids; format 2 adds [`Artifact::piece_params`],
/// [`Artifact::param_names`] and a [`SourceRecord`] per source.
pub const ARTIFACT_FORMAT: u32 = 2;

/// A trained piece, self-describing. Its version is the content hash of its JSON, which
/// covers every field, the training-environment records included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Format version of this document ([`ARTIFACT_FORMAT`]).
    pub format: u32,
    /// Piece id in the spec it was trained in.
    pub piece_id: String,
    /// Piece kind name (e.g. `curriculum`).
    pub piece_kind: String,
    /// The piece's resolved parameters in the training spec (every declared name, given or
    /// default), rendered as JSON values.
    pub piece_params: BTreeMap<String, serde_json::Value>,
    /// The learned parameters.
    pub params: Learnable,
    /// The name of each coordinate of `params`, in order: source ids for a curriculum,
    /// answer-feature names for a reward model, `log_weight` or `logit` for the scalars.
    pub param_names: Vec<String>,
    /// The training spec's single-turn sources, in spec order (a curriculum's logits are
    /// over these).
    pub sources: Vec<SourceRecord>,
    /// Where it was trained.
    pub trained_on: TrainedOn,
}

/// One source of the training environment, as far as a trained piece can depend on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Source id in the spec.
    pub id: String,
    /// Task family name.
    pub family: String,
    /// Resolved difficulty knobs (defaults filled in, so `{}` and the explicit defaults are
    /// the same source).
    pub knobs: BTreeMap<String, serde_json::Value>,
    /// The source's answer space.
    pub answers: Answers,
    /// Length of the source's feature vector (what a learned policy reads).
    pub features: usize,
}

/// An answer space `lo ..= lo + size − 1`, as recorded in an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answers {
    /// Smallest answer.
    pub lo: i64,
    /// Number of answers.
    pub size: u32,
}

impl fmt::Display for Answers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.size {
            0 => write!(f, "no answers"),
            // Saturating: a recorded space may come from a hand-edited file.
            n => write!(f, "answers {}..={}", self.lo, self.lo.saturating_add(i64::from(n) - 1)),
        }
    }
}

/// `name = value, …` in name order (TOML-like), `{}` when empty.
fn render_params(p: &BTreeMap<String, serde_json::Value>) -> String {
    let inner = p.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ");
    format!("{{{inner}}}")
}

impl fmt::Display for SourceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "family `{}` {} ({}, {} features)",
            self.family,
            render_params(&self.knobs),
            self.answers,
            self.features
        )
    }
}

/// Resolved parameters as an ordered map of JSON values (exact: the workspace's serde_json
/// round-trips floats).
fn params_map(p: &Params) -> BTreeMap<String, serde_json::Value> {
    p.iter()
        .map(|(k, v)| (k.to_string(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null)))
        .collect()
}

/// The sources of `env` as an artifact records them.
pub fn source_records(env: &Environment) -> Vec<SourceRecord> {
    env.spec
        .spec()
        .sources
        .iter()
        .zip(env.sources.iter())
        .zip(env.spec.source_knobs())
        .map(|((spec, src), knobs)| {
            let a = src.answers();
            SourceRecord {
                id: spec.id.clone(),
                family: src.family().to_string(),
                knobs: params_map(knobs),
                answers: Answers { lo: a.lo, size: a.size },
                features: src.feature_dim(),
            }
        })
        .collect()
}

/// The coordinate names a piece's learned parameters have in `env` (see
/// [`Artifact::param_names`]).
fn layout(env: &Environment, piece: &EnvPiece) -> Vec<String> {
    match &piece.built {
        BuiltPiece::Curriculum(_) => env.spec.spec().sources.iter().map(|s| s.id.clone()).collect(),
        BuiltPiece::RewardModel(_) => FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        BuiltPiece::Reward(_) => vec!["log_weight".into()],
        BuiltPiece::Hint(_) => vec!["logit".into()],
    }
}

/// Piece parameters that an artifact's learned values replace (a curriculum's
/// `source_weights`, a hint's `probability`) or make irrelevant (a reward model's fit
/// settings only shape the fit its `φ` supersedes). Every other parameter shapes what the
/// piece emits together with the learned values, so it must match the training spec's.
fn superseded(kind: &str) -> &'static [&'static str] {
    match kind {
        "curriculum" => &["source_weights"],
        "hint" => &["probability"],
        "reward_model" => &["pairs", "heldout_pairs", "label_noise", "bias", "l2"],
        _ => &[],
    }
}

/// Provenance of an artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedOn {
    /// Spec content hash.
    pub spec_hash: String,
    /// Root seed.
    pub seed: u64,
    /// Policy architecture and optimizer.
    pub policy: String,
    /// Steps trained.
    pub steps: u64,
}

/// An artifact document that cannot be read or is inconsistent in itself.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArtifactError {
    /// Not JSON, or not an object with a numeric `format`.
    #[error("not a gristmill artifact: {0}")]
    NotAnArtifact(String),
    /// Written by an older gristmill, without the records transfer checks.
    #[error(
        "artifact format {found} is too old: it records only the training spec's source ids, not \
         each source's family, knobs, answer space and feature count, nor the piece's \
         configuration, so its fit to a target spec cannot be checked; re-create it with \
         `gristmill tune --export` (format {expected})"
    )]
    OldFormat {
        /// The document's format.
        found: u64,
        /// [`ARTIFACT_FORMAT`].
        expected: u32,
    },
    /// Written by a newer gristmill.
    #[error("artifact format {found} is newer than this gristmill reads (format {expected})")]
    NewerFormat {
        /// The document's format.
        found: u64,
        /// [`ARTIFACT_FORMAT`].
        expected: u32,
    },
    /// The right format, but a field is missing or mistyped.
    #[error("not a valid format-{ARTIFACT_FORMAT} artifact: {0}")]
    Invalid(String),
    /// The fields contradict each other or hold unusable values.
    #[error("malformed artifact for piece `{piece}`: {why}")]
    Malformed {
        /// Piece id of the artifact.
        piece: String,
        /// What is wrong.
        why: String,
    },
}

/// Why an artifact does not fit a target environment. Each variant names the artifact's
/// side and the target's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Misfit {
    /// The target has no piece of the artifact's id.
    #[error(
        "the artifact is piece `{piece}` (a `{kind}`), the target spec has no piece of that id \
         (its pieces: {known})"
    )]
    NoPiece {
        /// Artifact's piece id.
        piece: String,
        /// Artifact's piece kind.
        kind: String,
        /// The target's piece ids, comma-separated.
        known: String,
    },
    /// Same id, different kind.
    #[error("the artifact is a `{artifact}`, the target spec's piece `{piece}` is a `{target}`")]
    Kind {
        /// Piece id.
        piece: String,
        /// Artifact's kind.
        artifact: String,
        /// Target's kind.
        target: String,
    },
    /// A curriculum over a different set of source ids.
    #[error(
        "the curriculum weighs sources [{}], the target spec has sources [{}]",
        artifact.join(", "),
        target.join(", ")
    )]
    SourceIds {
        /// Artifact's source ids.
        artifact: Vec<String>,
        /// Target's source ids.
        target: Vec<String>,
    },
    /// A curriculum whose sources have the same ids but are different task distributions.
    #[error("{}", .0.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("; "))]
    Sources(Vec<SourceMismatch>),
    /// Learned coordinates the target piece does not have (e.g. reward-model features).
    #[error(
        "the artifact's parameters are over [{}] ({} values), the target spec's piece `{piece}` \
         takes [{}] ({} values)",
        artifact.join(", "),
        artifact.len(),
        target.join(", "),
        target.len()
    )]
    Layout {
        /// Piece id.
        piece: String,
        /// Artifact's coordinate names.
        artifact: Vec<String>,
        /// Target's coordinate names.
        target: Vec<String>,
    },
    /// A piece parameter that is not superseded by the artifact differs.
    #[error(
        "piece `{piece}` was trained with {}, the target spec's piece has {}",
        render_params(artifact),
        render_params(target)
    )]
    PieceParams {
        /// Piece id.
        piece: String,
        /// The differing parameters on the artifact's side (absent ones as `null`).
        artifact: BTreeMap<String, serde_json::Value>,
        /// The same parameters on the target's side.
        target: BTreeMap<String, serde_json::Value>,
    },
    /// The target piece rejected the learned values.
    #[error("{0}")]
    Rejected(String),
}

/// One curriculum source whose task distribution differs between artifact and target.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceMismatch {
    /// The source as the artifact recorded it.
    pub artifact: SourceRecord,
    /// The source of the same id in the target spec.
    pub target: SourceRecord,
}

impl fmt::Display for SourceMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "source `{}`: the artifact was trained on {}, the target spec has {}",
            self.artifact.id, self.artifact, self.target
        )
    }
}

/// The first 12 characters of `s` (whole characters, so a hand-edited value cannot panic).
fn short(s: &str) -> &str {
    s.char_indices().nth(12).map_or(s, |(i, _)| &s[..i])
}

impl Artifact {
    /// The artifact of `params` learned for piece `index` of `env` (the training
    /// environment), recording the piece's configuration and the environment's sources.
    pub fn new(env: &Environment, index: usize, params: Learnable, trained_on: TrainedOn) -> Artifact {
        let piece = &env.pieces[index];
        Artifact {
            format: ARTIFACT_FORMAT,
            piece_id: piece.id.clone(),
            piece_kind: piece.kind_name.to_string(),
            piece_params: params_map(&env.spec.piece_params()[index]),
            params,
            param_names: layout(env, piece),
            sources: source_records(env),
            trained_on,
        }
    }

    /// Reads an artifact document. Older formats, which lack the records [`Artifact::fit`]
    /// checks, are refused by name rather than read with guessed defaults.
    pub fn from_json(text: &str) -> Result<Artifact, ArtifactError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ArtifactError::NotAnArtifact(e.to_string()))?;
        Artifact::from_value(value)
    }

    /// [`Artifact::from_json`] from a parsed document (e.g. a run-store record).
    pub fn from_value(value: serde_json::Value) -> Result<Artifact, ArtifactError> {
        let Some(format) = value.get("format").and_then(|f| f.as_u64()) else {
            return Err(ArtifactError::NotAnArtifact("no numeric `format` field".into()));
        };
        let expected = ARTIFACT_FORMAT;
        if format < u64::from(expected) {
            return Err(ArtifactError::OldFormat { found: format, expected });
        }
        if format > u64::from(expected) {
            return Err(ArtifactError::NewerFormat { found: format, expected });
        }
        let a: Artifact = serde_json::from_value(value).map_err(|e| ArtifactError::Invalid(e.to_string()))?;
        a.check()?;
        Ok(a)
    }

    /// The artifact's version: BLAKE3 of its canonical JSON.
    pub fn hash(&self) -> String {
        content_hash(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// Internal consistency: the learned parameters match the piece kind, have one value per
    /// named coordinate (a curriculum one per recorded source), and are usable numbers.
    pub fn check(&self) -> Result<(), ArtifactError> {
        let bad = |why: String| ArtifactError::Malformed { piece: self.piece_id.clone(), why };
        if self.format != ARTIFACT_FORMAT {
            return Err(bad(format!("format {} where {ARTIFACT_FORMAT} is expected", self.format)));
        }
        let Some(info) = gristmill_pieces::kind(&self.piece_kind) else {
            return Err(bad(format!("unknown piece kind `{}`", self.piece_kind)));
        };
        let values: &[f64] = match (&self.params, info.kind) {
            (Learnable::Curriculum { logits }, PieceKind::Curriculum) => logits,
            (Learnable::RewardModel { weights }, PieceKind::RewardModel) => weights,
            (Learnable::Weight { log_weight }, PieceKind::Verifier | PieceKind::Shaping) => {
                std::slice::from_ref(log_weight)
            }
            (Learnable::Hint { logit }, PieceKind::Hint) => std::slice::from_ref(logit),
            (p, _) => {
                let variant = match p {
                    Learnable::Curriculum { .. } => "curriculum",
                    Learnable::RewardModel { .. } => "reward_model",
                    Learnable::Weight { .. } => "weight",
                    Learnable::Hint { .. } => "hint",
                };
                return Err(bad(format!("`{variant}` parameters for a piece of kind `{}`", self.piece_kind)));
            }
        };
        if values.len() != self.param_names.len() {
            return Err(bad(format!(
                "{} learned values for {} named coordinates [{}]",
                values.len(),
                self.param_names.len(),
                self.param_names.join(", ")
            )));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!("coordinate `{}` is {}", self.param_names[i], values[i])));
        }
        if let Learnable::RewardModel { weights } = &self.params {
            if let Some(i) = weights.iter().position(|w| w.abs() > MAX_ABS_WEIGHT) {
                return Err(bad(format!(
                    "coordinate `{}` is {}, beyond the reward model's bound ±{MAX_ABS_WEIGHT:e}",
                    self.param_names[i], weights[i]
                )));
            }
        }
        if let Learnable::Weight { log_weight } = self.params {
            // The channel weight is e^λ; the spec accepts any finite weight >= 0.
            if !log_weight.exp().is_finite() {
                return Err(bad(format!("log_weight {log_weight} gives an infinite channel weight")));
            }
        }
        if let Learnable::Curriculum { .. } = self.params {
            let ids: Vec<&str> = self.sources.iter().map(|s| s.id.as_str()).collect();
            if ids != self.param_names.iter().map(String::as_str).collect::<Vec<_>>() {
                return Err(bad(format!(
                    "the curriculum's coordinates [{}] are not its recorded sources [{}]",
                    self.param_names.join(", "),
                    ids.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Where the artifact fits in `env` (`target` names it in messages): the index of the
    /// piece it replaces. Refuses, naming both sides, every difference that would make the
    /// learned values mean something else there. Per kind:
    ///
    /// * every kind: the target must have a piece of the same id and kind, and the piece
    ///   parameters the artifact does not supersede must be equal (a noisy verifier's flip
    ///   rate, a length-shaping target, a reward model's `scale`: with the learned values they
    ///   define what the piece emits). Superseded: a curriculum's `source_weights`, a hint's
    ///   `probability` (the artifact replaces them) and a reward model's fit settings
    ///   (`pairs`, `heldout_pairs`, `label_noise`, `bias`, `l2`), which only shaped the fit its
    ///   learned `φ` replaces. The channel weight in the spec is the target environment's
    ///   mixing of channels, applied alike to the untrained and the trained piece, and is not
    ///   compared (except that a trained shaping or verifier weight replaces it).
    /// * **curriculum** — its logits are one per source, so the target must have the same
    ///   source ids (order may differ: logits are matched by id) and, per id, the same family,
    ///   resolved knobs, answer space and feature count. A weight learned for `add` over
    ///   one-digit sums says nothing about `add` over counting problems or three-digit sums.
    ///   So a curriculum does **not** transfer to a held-out family: it has no weight for it.
    /// * **reward model** — `φ` weighs the eight answer features of
    ///   [`gristmill_pieces::reward_model`] (exactness, closeness, digit match, …), which are
    ///   defined on any task's answer space and gold answer, so it transfers to any sources,
    ///   a held-out family included; the feature names must match the target's model.
    /// * **shaping / verifier weight** and **hint probability** — one scalar on a signal
    ///   defined for every family (a verdict, partial credit, the gold answer's last digit),
    ///   so they transfer to any sources, a held-out family included.
    ///
    /// The policy is never part of the check: every transfer run trains a fresh policy, so a
    /// new seed and the other architecture are always allowed.
    pub fn fit(&self, env: &Environment, target: &str) -> Result<usize, TuneError> {
        self.check()?;
        self.misfit(env).map_err(|reason| TuneError::Misfit {
            artifact: short(&self.hash()).to_string(),
            piece: self.piece_id.clone(),
            target: target.to_string(),
            reason: Box::new(reason),
        })
    }

    /// [`Artifact::fit`] without the context.
    fn misfit(&self, env: &Environment) -> Result<usize, Misfit> {
        let Some(index) = env.piece_index(&self.piece_id) else {
            let known = env.pieces.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ");
            return Err(Misfit::NoPiece {
                piece: self.piece_id.clone(),
                kind: self.piece_kind.clone(),
                known,
            });
        };
        let here = &env.pieces[index];
        if here.kind_name != self.piece_kind {
            return Err(Misfit::Kind {
                piece: here.id.clone(),
                artifact: self.piece_kind.clone(),
                target: here.kind_name.to_string(),
            });
        }
        self.check_piece_params(env, index)?;
        if let Learnable::Curriculum { .. } = self.params {
            self.check_sources(env)?;
        } else {
            let target = layout(env, here);
            if target != self.param_names {
                return Err(Misfit::Layout {
                    piece: here.id.clone(),
                    artifact: self.param_names.clone(),
                    target,
                });
            }
        }
        apply_learnable(&self.in_order_of(env), here).map_err(|e| Misfit::Rejected(e.to_string()))?;
        Ok(index)
    }

    fn check_piece_params(&self, env: &Environment, index: usize) -> Result<(), Misfit> {
        let target = params_map(&env.spec.piece_params()[index]);
        let skip = superseded(&self.piece_kind);
        let names: std::collections::BTreeSet<&String> =
            self.piece_params.keys().chain(target.keys()).collect();
        let (mut a, mut t) = (BTreeMap::new(), BTreeMap::new());
        for name in names.into_iter().filter(|n| !skip.contains(&n.as_str())) {
            let (x, y) = (self.piece_params.get(name), target.get(name));
            if x != y {
                a.insert(name.clone(), x.cloned().unwrap_or(serde_json::Value::Null));
                t.insert(name.clone(), y.cloned().unwrap_or(serde_json::Value::Null));
            }
        }
        if a.is_empty() {
            Ok(())
        } else {
            Err(Misfit::PieceParams { piece: self.piece_id.clone(), artifact: a, target: t })
        }
    }

    fn check_sources(&self, env: &Environment) -> Result<(), Misfit> {
        let target = source_records(env);
        let mut mine: Vec<&str> = self.sources.iter().map(|s| s.id.as_str()).collect();
        let mut theirs: Vec<&str> = target.iter().map(|s| s.id.as_str()).collect();
        mine.sort_unstable();
        theirs.sort_unstable();
        if mine != theirs {
            return Err(Misfit::SourceIds {
                artifact: self.sources.iter().map(|s| s.id.clone()).collect(),
                target: target.iter().map(|s| s.id.clone()).collect(),
            });
        }
        let mismatches: Vec<SourceMismatch> = self
            .sources
            .iter()
            .filter_map(|a| {
                let t = target.iter().find(|t| t.id == a.id)?;
                (a != t).then(|| SourceMismatch { artifact: a.clone(), target: t.clone() })
            })
            .collect();
        if mismatches.is_empty() {
            Ok(())
        } else {
            Err(Misfit::Sources(mismatches))
        }
    }

    /// The learned parameters laid out for `env`: a curriculum's logits reordered to the
    /// target's source order (after [`Artifact::fit`] has checked the ids match), the rest
    /// as they are.
    fn in_order_of(&self, env: &Environment) -> Learnable {
        match &self.params {
            Learnable::Curriculum { logits } => {
                let logits = env
                    .spec
                    .spec()
                    .sources
                    .iter()
                    .filter_map(|s| {
                        self.sources.iter().position(|r| r.id == s.id).and_then(|i| logits.get(i).copied())
                    })
                    .collect();
                Learnable::Curriculum { logits }
            }
            other => other.clone(),
        }
    }

    /// `env` with this artifact in place of its piece.
    pub fn apply(&self, env: &Environment, target: &str) -> Result<Environment, TuneError> {
        let index = self.fit(env, target)?;
        Ok(env.with_piece(index, apply_learnable(&self.in_order_of(env), &env.pieces[index])?))
    }
}

/// One transfer setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferCase {
    /// What changed from the training setting.
    pub setting: String,
    /// Policy used.
    pub policy: String,
    /// Seed used.
    pub seed: u64,
    /// Final `M` with the piece as configured in the target spec (untrained).
    pub metric_untrained: f64,
    /// Final `M` with the trained artifact in its place (frozen).
    pub metric_trained: f64,
    /// `metric_trained − metric_untrained`: the gain the trained piece keeps.
    pub gain_kept: f64,
}

/// Applies `artifact` to `env` under three settings — the target spec as given (a held-out
/// task family, when `env` has one and the kind allows it, see [`Artifact::fit`]), a new
/// policy seed, and the other policy architecture — and reports the gain kept against the
/// untrained piece, each from `steps`-step runs on common random numbers. A misfit is
/// refused before any run starts.
pub fn transfer(
    artifact: &Artifact,
    env: &Environment,
    config: &TrainConfig,
    steps: u64,
    target: &str,
) -> Result<Vec<TransferCase>, TuneError> {
    let seed = env.seed();
    let trained = artifact.apply(env, target)?;
    let mut other = config.clone();
    other.arch = match config.arch {
        Arch::LogLinear => Arch::Mlp { hidden: 32 },
        Arch::Mlp { .. } => Arch::LogLinear,
    };
    // A new policy seed is a new root seed: the spec is validated again with it and the
    // environment rebuilt (pieces trained at build time too), then the artifact applied.
    let reseeded = env.reseeded(seed.wrapping_add(1))?;
    let reseeded_trained = artifact.apply(&reseeded, target)?;
    let cases = [
        ("target spec", config.clone(), env, &trained),
        ("new policy seed", config.clone(), &reseeded, &reseeded_trained),
        ("other architecture", other, env, &trained),
    ];
    let run = |e: &Environment, c: &TrainConfig| -> Result<f64, TuneError> {
        let mut run = gristmill_run::Run::without_credit(e.clone(), c.clone())?;
        run.advance(steps)?;
        Ok(run.trainer().current_metric())
    };
    cases
        .par_iter()
        .map(|(name, c, untrained, trained)| {
            let (a, b) = rayon::join(|| run(untrained, c), || run(trained, c));
            let (metric_untrained, metric_trained) = (a?, b?);
            Ok(TransferCase {
                setting: name.to_string(),
                policy: c.arch_name(),
                seed: untrained.seed(),
                metric_untrained,
                metric_trained,
                gain_kept: metric_trained - metric_untrained,
            })
        })
        .collect()
}
