//! The language-model run's checkpoint: a versioned binary record of its state. This crate
//! owns the format.
//!
//! Layout: the 8-byte magic `GMLMCKPT`, the format number as a little-endian `u32`, then
//! [`LmCheckpoint`] with postcard (f64s as their IEEE-754 bytes, so every value comes back
//! bit for bit). State only: the trainable parameters (f64 masters), the split optimizer's
//! moments, the ledgers' running totals, the digest — not the evaluations at the current
//! parameters, which are recomputed on resume (deterministically: the same bits), nor the
//! frozen base model, which is the spec's model file or seed.

use gristmill_learn::optim::SplitOptimizer;
use gristmill_measure::LedgerState;
use serde::{Deserialize, Serialize};

/// The format this build writes and reads.
pub const LM_CHECKPOINT_FORMAT: u32 = 1;

const MAGIC: &[u8; 8] = b"GMLMCKPT";

/// What a language-model run's checkpoint holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmCheckpoint {
    /// Steps done.
    pub steps_done: u64,
    /// The trainable parameters (the model's f64 master values, in its layout).
    pub params: Vec<f64>,
    /// The split optimizer.
    pub optimizer: SplitOptimizer,
    /// The chained digest after the last step.
    pub digest: String,
    /// Reward per channel summed over steps.
    pub reward_sums: Vec<f64>,
    /// `M(θ₀)` (estimated) and `L(θ₀)`.
    pub gold_before: f64,
    /// `L(θ₀)`, when credit is on.
    pub loglik_before: Option<f64>,
    /// Ledger of the estimated gold metric.
    pub gold: Option<LedgerState>,
    /// Ledger of the log-likelihood metric.
    pub loglik: Option<LedgerState>,
    /// Largest relative split error seen.
    pub max_split_error: f64,
}

/// A checkpoint that cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LmCheckpointError {
    /// Written by another format.
    #[error("language-model checkpoint format {found} is not readable by this gristmill (it reads format {expected})")]
    Format {
        /// The format found.
        found: u32,
        /// The format this build reads.
        expected: u32,
    },
    /// Not a language-model checkpoint (perhaps gristmill-learn's).
    #[error("not a gristmill language-model checkpoint ({0})")]
    NotACheckpoint(String),
    /// The payload does not decode.
    #[error("language-model checkpoint format {LM_CHECKPOINT_FORMAT} is damaged: {0}")]
    Corrupt(String),
}

impl LmCheckpoint {
    /// The checkpoint's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&LM_CHECKPOINT_FORMAT.to_le_bytes());
        // A plain-data struct encodes into a Vec without failing.
        out.extend(postcard::to_stdvec(self).expect("checkpoints encode"));
        out
    }

    /// Reads a checkpoint, refusing other formats by name.
    ///
    /// # Errors
    /// [`LmCheckpointError`].
    pub fn decode(bytes: &[u8]) -> Result<LmCheckpoint, LmCheckpointError> {
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            let what = if bytes.starts_with(b"GMCHKPT\0") {
                "a checkpoint of gristmill-learn's policies".to_string()
            } else {
                format!("{} bytes without the magic header", bytes.len())
            };
            return Err(LmCheckpointError::NotACheckpoint(what));
        }
        let found = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if found != LM_CHECKPOINT_FORMAT {
            return Err(LmCheckpointError::Format { found, expected: LM_CHECKPOINT_FORMAT });
        }
        let (c, rest) = postcard::take_from_bytes::<LmCheckpoint>(&bytes[12..])
            .map_err(|e| LmCheckpointError::Corrupt(e.to_string()))?;
        if !rest.is_empty() {
            return Err(LmCheckpointError::Corrupt(format!("{} trailing bytes", rest.len())));
        }
        Ok(c)
    }
}
