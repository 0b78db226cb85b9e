//! A tiny llama-architecture model with a byte-level vocabulary, built in code.

use super::error::TrainError;
use super::weights::ModelShape;
use crate::local::TextSide;
use crate::template::ChatTemplate;
use crate::tokenizer::{bytes_to_unicode, Tokenizer};

/// The shape and seed of a tiny random model ([`TrainableLm::tiny`](super::TrainableLm::tiny)).
///
/// The vocabulary is GPT-2 byte-level BPE built in code: `<|endoftext|>`, `<|im_start|>`,
/// `<|im_end|>` (control tokens, ids 0–2, `<|im_end|>` ends a turn), the 256 byte tokens and a
/// few merges (` t`, `he`, ` the`, `in`), rendered with the ChatML template — the same
/// tokenizer and template code as a GGUF model.
#[derive(Debug, Clone, PartialEq)]
pub struct TinyConfig {
    /// Decoder layers.
    pub layers: usize,
    /// Embedding width (a multiple of `heads`).
    pub embed: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// Feed-forward width.
    pub ffn: usize,
    /// Context window.
    pub context: usize,
    /// Seed of the weights.
    pub seed: u64,
}

impl Default for TinyConfig {
    fn default() -> Self {
        TinyConfig { layers: 2, embed: 32, heads: 4, kv_heads: 2, ffn: 48, context: 96, seed: 1 }
    }
}

impl TinyConfig {
    pub(crate) fn build(&self) -> Result<(TextSide, ModelShape), TrainError> {
        let bad = |why: String| Err(TrainError::Config(format!("tiny model: {why}")));
        if self.layers == 0 || self.embed == 0 || self.ffn == 0 || self.context < 2 {
            return bad("layers, embed and ffn must be positive and the context at least 2".into());
        }
        if self.heads == 0
            || self.kv_heads == 0
            || !self.embed.is_multiple_of(self.heads)
            || !self.heads.is_multiple_of(self.kv_heads)
        {
            return bad(format!(
                "{} wide with {} heads and {} key/value heads",
                self.embed, self.heads, self.kv_heads
            ));
        }
        if !(self.embed / self.heads).is_multiple_of(2) {
            return bad("the head width must be even (rotary pairs)".into());
        }
        let mut tokens: Vec<String> =
            ["<|endoftext|>", "<|im_start|>", "<|im_end|>"].map(String::from).to_vec();
        let mut types = vec![3, 3, 3];
        for c in bytes_to_unicode() {
            tokens.push(c.to_string());
            types.push(1);
        }
        let merges: Vec<String> = ["Ġ t", "h e", "Ġt he", "i n"].map(String::from).to_vec();
        for m in &merges {
            tokens.push(m.replace(' ', ""));
            types.push(1);
        }
        let tokenizer = Tokenizer::new("gpt2", tokens, types, &merges)
            .map_err(|e| TrainError::Config(format!("tiny vocabulary: {e}")))?;
        let shape = ModelShape {
            layers: self.layers,
            embed: self.embed,
            heads: self.heads,
            kv_heads: self.kv_heads,
            head_dim: self.embed / self.heads,
            ffn: self.ffn,
            vocab: tokenizer.vocab_size(),
            context: self.context,
            rms_eps: 1e-5,
            rope_base: 10000.0,
        };
        let text = TextSide {
            tokenizer,
            template: ChatTemplate::ChatMl { default_system: None },
            bos: None,
            eos: Some(2),
        };
        Ok((text, shape))
    }
}
