//! Trained pieces as versioned artifacts, and their transfer to new policies and tasks.

use gristmill_core::digest::content_hash;
use gristmill_engine::Environment;
use gristmill_learn::model::Arch;
use gristmill_learn::{TrainConfig, Trainer};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::tuner::{apply_learnable, Learnable, TuneError};

/// A trained piece, self-describing. Its version is the content hash of its JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Format version of this document.
    pub format: u32,
    /// Piece id in the spec it was trained in.
    pub piece_id: String,
    /// Piece kind name (e.g. `curriculum`).
    pub piece_kind: String,
    /// The learned parameters.
    pub params: Learnable,
    /// Source ids of the training spec (a curriculum's weights are over these).
    pub sources: Vec<String>,
    /// Where it was trained.
    pub trained_on: TrainedOn,
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

impl Artifact {
    /// The artifact's version: BLAKE3 of its canonical JSON.
    pub fn hash(&self) -> String {
        content_hash(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// Where the artifact fits in `env`: the index of the piece it replaces. A mismatch is an
    /// error naming both sides.
    pub fn fit(&self, env: &Environment, target: &str) -> Result<usize, TuneError> {
        let mismatch = |why: String| {
            TuneError::Piece(
                self.piece_id.clone(),
                format!("artifact {} does not fit {target}: {why}", &self.hash()[..12]),
            )
        };
        let Some(index) = env.piece_index(&self.piece_id) else {
            let known = env.pieces.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ");
            return Err(mismatch(format!(
                "the artifact is piece `{}` ({}), the spec has no piece of that id (its pieces: {known})",
                self.piece_id, self.piece_kind
            )));
        };
        let here = &env.pieces[index];
        if here.kind_name != self.piece_kind {
            return Err(mismatch(format!(
                "the artifact is a `{}`, the spec's piece `{}` is a `{}`",
                self.piece_kind, here.id, here.kind_name
            )));
        }
        if let Learnable::Curriculum { .. } = self.params {
            let target_sources: Vec<String> = env.spec.spec.sources.iter().map(|s| s.id.clone()).collect();
            if target_sources != self.sources {
                return Err(mismatch(format!(
                    "the curriculum weighs sources [{}], the spec has sources [{}]",
                    self.sources.join(", "),
                    target_sources.join(", ")
                )));
            }
        }
        apply_learnable(&self.params, here).map_err(|e| mismatch(e.to_string()))?;
        Ok(index)
    }

    /// `env` with this artifact in place of its piece.
    pub fn apply(&self, env: &Environment, target: &str) -> Result<Environment, TuneError> {
        let index = self.fit(env, target)?;
        Ok(env.with_piece(index, apply_learnable(&self.params, &env.pieces[index])?))
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

/// Applies `artifact` to `env` under three settings — the target spec as given, a new policy
/// seed, and the other policy architecture — and reports the gain kept against the untrained
/// piece, each from `steps`-step runs on common random numbers.
pub fn transfer(
    artifact: &Artifact,
    env: &Environment,
    config: &TrainConfig,
    seed: u64,
    steps: u64,
    target: &str,
) -> Result<Vec<TransferCase>, TuneError> {
    let trained = artifact.apply(env, target)?;
    let mut other = config.clone();
    other.arch = match config.arch {
        Arch::LogLinear => Arch::Mlp { hidden: 32 },
        Arch::Mlp { .. } => Arch::LogLinear,
    };
    let cases = [
        ("target spec", config.clone(), seed),
        ("new policy seed", config.clone(), seed.wrapping_add(1)),
        ("other architecture", other, seed),
    ];
    let run = |e: &Environment, c: &TrainConfig, s: u64| -> Result<f64, TuneError> {
        let mut t = Trainer::new(e.clone(), c.clone(), s)?;
        for _ in 0..steps {
            t.step()?;
        }
        Ok(t.state.metric)
    };
    cases
        .par_iter()
        .map(|(name, c, s)| {
            let (a, b) = rayon::join(|| run(env, c, *s), || run(&trained, c, *s));
            let (metric_untrained, metric_trained) = (a?, b?);
            Ok(TransferCase {
                setting: name.to_string(),
                policy: c.arch_name(),
                seed: *s,
                metric_untrained,
                metric_trained,
                gain_kept: metric_trained - metric_untrained,
            })
        })
        .collect()
}
