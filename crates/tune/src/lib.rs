//! # gristmill-tune
//!
//! Pieces that learn from their measured effect on the gold metric, and the protocols that
//! check what they taught stays with the model:
//!
//! * [`Tuner`]: a training run whose trainable pieces (curriculum, shaping and verifier
//!   weights, reward-model parameters, hint probability) update after every step from
//!   in-run credit and per-sample influence — never from training reward;
//! * [`withdraw`]: train with a piece, remove it, continue, and compare with the run that
//!   never had it (retention, drop);
//! * [`team`]: every trainable piece alone, in pairs and together — gains, counterfactual
//!   interaction, in-run alignment, interference;
//! * [`study`]: trained pieces against the pieces as configured and against the best static
//!   configuration of a grid search with the same rollout budget;
//! * [`Artifact`] and [`transfer`]: a trained piece as a versioned, content-hashed document,
//!   applied to a new seed, the other architecture, or another spec (a held-out family, for
//!   the kinds whose parameters do not depend on the family; [`Artifact::fit`] says which
//!   and refuses every misfit by naming both sides).
//!
//! Invariant: piece training is deterministic (keyed runs, fixed-order sums, a plain Adam),
//! so a tuning run replays bit for bit like any other.
#![warn(missing_docs)]

mod adam;
mod artifact;
mod protocols;
mod study;
mod tuner;

pub use adam::PieceAdam;
pub use artifact::{
    source_records, transfer, Answers, Artifact, ArtifactError, Misfit, SourceMismatch, SourceRecord,
    TrainedOn, TransferCase, ARTIFACT_FORMAT,
};
pub use protocols::{
    metric_with_piece, team, withdraw, Interaction, TeamReport, TeamRun, WithdrawReport, MIN_RETAINABLE_GAIN,
};
pub use study::{
    apply_static, grid_values, static_grid, study, study_runs, Arm, Compute, StaticConfig, StaticValue,
    StudyReport,
};
pub use tuner::{apply_learnable, rates, HintSignal, Learnable, TrainedPiece, TuneError, Tuner};
