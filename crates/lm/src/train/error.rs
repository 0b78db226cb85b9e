//! Errors of the training engine: every one names the sample, channel, layer or parameter it
//! is about.

use crate::error::LmError;

/// What went wrong building, running or training a [`TrainableLm`](super::TrainableLm).
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Loading the GGUF file failed (missing, corrupt, unsupported).
    #[error(transparent)]
    Load(#[from] LmError),
    /// A LoRA target names a projection the model does not have.
    #[error("unknown LoRA target `{target}`; the model's projections are: {valid}")]
    UnknownTarget {
        /// The name given.
        target: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// A layer index is out of range.
    #[error("layer {layer} does not exist: the model has layers 0..{layers}")]
    LayerOutOfRange {
        /// The index given.
        layer: usize,
        /// Number of layers.
        layers: usize,
    },
    /// The trainable configuration is invalid (rank 0, a non-finite alpha, nothing trainable…).
    #[error("invalid trainable configuration: {0}")]
    Config(String),
    /// A sample has an empty prompt.
    #[error("sample {sample}: the prompt is empty")]
    EmptyPrompt {
        /// Sample index.
        sample: usize,
    },
    /// A sample has an empty completion (nothing to score or train on).
    #[error("sample {sample}: the completion is empty (nothing to score)")]
    EmptyCompletion {
        /// Sample index.
        sample: usize,
    },
    /// A sample does not fit the model's context window.
    #[error("sample {sample}: {tokens} tokens exceed the model's context window of {context}")]
    TooLong {
        /// Sample index.
        sample: usize,
        /// Tokens the sample needs.
        tokens: usize,
        /// The context window.
        context: usize,
    },
    /// A token id is not in the vocabulary.
    #[error("sample {sample}: token id {token} is outside the vocabulary of {vocab}")]
    TokenOutOfVocab {
        /// Sample index.
        sample: usize,
        /// The token id.
        token: u32,
        /// Vocabulary size.
        vocab: usize,
    },
    /// The weight matrix does not have one row per sample, or its rows differ in length.
    #[error("weight matrix: {0}")]
    WeightShape(String),
    /// A channel weight is NaN or infinite.
    #[error("weight of sample {sample}, channel {channel} is {value} (must be finite)")]
    NonFiniteWeight {
        /// Sample index.
        sample: usize,
        /// Channel index.
        channel: usize,
        /// The value.
        value: f64,
    },
    /// A parameter vector has the wrong length.
    #[error("parameter vector has {got} entries; the model has {expected} trainable parameters")]
    ParamLength {
        /// Expected length.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// A parameter value is NaN or infinite.
    #[error("parameter {index} ({block}) is {value} (must be finite)")]
    NonFiniteParam {
        /// Index in the flat vector.
        index: usize,
        /// The block it belongs to (e.g. `blk.3.attn_q.lora_a`).
        block: String,
        /// The value.
        value: f64,
    },
    /// The model produced NaN or infinite logits for a sample.
    #[error("sample {sample}: the model produced non-finite logits")]
    NonFiniteLogits {
        /// Sample index.
        sample: usize,
    },
    /// Invalid request (sampling parameters, stream count).
    #[error("invalid request: {0}")]
    Request(String),
}
