//! The checkpoint: a versioned, binary record of everything a killed run needs to resume to
//! the same bits. This crate owns the format.
//!
//! Layout: the 8-byte magic `GMCHKPT\0`, the format number as a little-endian `u32`, then the
//! [`Checkpoint`] encoded with postcard (f64s as their 8 IEEE-754 bytes, so every value comes
//! back bit for bit). A checkpoint of another format is refused by name, never guessed at:
//! format 1 was the JSON dump of the trainer state written before this crate existed.
//!
//! A checkpoint holds state, not history: the trainer's parameters, optimizer state, metric
//! and digest, the ledger's running totals, and the reward sums — not the credit curve,
//! which lives once, in the step metrics. So its size does not grow with the run's length.
//! `checkpoint_format_is_pinned` in the tests pins the bytes of a known checkpoint: if a
//! type inside changes, that test fails, and the format number must go up.

use gristmill_learn::TrainState;
use gristmill_measure::LedgerState;
use serde::{Deserialize, Serialize};

/// The format this build writes and reads.
pub const CHECKPOINT_FORMAT: u32 = 2;

const MAGIC: &[u8; 8] = b"GMCHKPT\0";

/// What a checkpoint holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The trainer's state after the last finished step.
    pub trainer: TrainState,
    /// The credit ledger's state, when the run keeps in-run credit.
    pub ledger: Option<LedgerState>,
    /// Mean training reward per channel, summed over the steps so far.
    pub reward_sums: Vec<f64>,
}

/// A checkpoint that cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckpointError {
    /// Written by another format.
    #[error(
        "checkpoint format {found} is not readable by this gristmill (it reads format {expected}); \
         rerun the training from the start, or resume it with the gristmill that wrote it"
    )]
    Format {
        /// The format found.
        found: u32,
        /// The format this build reads.
        expected: u32,
    },
    /// Not a checkpoint at all.
    #[error("not a gristmill checkpoint ({0})")]
    NotACheckpoint(String),
    /// The payload does not decode.
    #[error("checkpoint format {CHECKPOINT_FORMAT} is damaged: {0}")]
    Corrupt(String),
}

impl Checkpoint {
    /// The checkpoint's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&CHECKPOINT_FORMAT.to_le_bytes());
        // Encoding a plain-data struct into a Vec cannot fail.
        out.extend(postcard::to_stdvec(self).expect("checkpoints encode"));
        out
    }

    /// Reads a checkpoint, refusing other formats by name.
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
        if bytes.first() == Some(&b'{') {
            // The JSON dump of gristmill before the typed checkpoint.
            return Err(CheckpointError::Format { found: 1, expected: CHECKPOINT_FORMAT });
        }
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(CheckpointError::NotACheckpoint(format!(
                "{} bytes without the magic header",
                bytes.len()
            )));
        }
        let found = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if found != CHECKPOINT_FORMAT {
            return Err(CheckpointError::Format { found, expected: CHECKPOINT_FORMAT });
        }
        let (checkpoint, rest) = postcard::take_from_bytes::<Checkpoint>(&bytes[12..])
            .map_err(|e| CheckpointError::Corrupt(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CheckpointError::Corrupt(format!("{} trailing bytes", rest.len())));
        }
        Ok(checkpoint)
    }
}
