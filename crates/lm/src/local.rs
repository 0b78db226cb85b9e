//! The in-process model: GGUF weights + tokenizer + chat template + keyed sampling.

use std::path::{Path, PathBuf};

use gristmill_core::rng::KeyedRng;

use crate::error::LmError;
use crate::model::{corrupt, read_gguf, Config, KvCache, Meta, Weights};
use crate::sample::{find_stop, log_normalizer, sample_token, Finish, Generation, SamplingParams};
use crate::template::{ChatTemplate, Message};
use crate::tokenizer::Tokenizer;
use crate::ChatModel;

/// Which chat template to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TemplateChoice {
    /// The one the GGUF file names (error if unrecognised).
    #[default]
    Auto,
    /// No template: the prompt text as is.
    Raw,
}

/// A llama-family GGUF model loaded in-process.
///
/// Immutable once loaded: share it with `Arc` across threads. Each call to
/// [`generate`](LocalModel::generate) keeps its own key/value cache.
pub struct LocalModel {
    path: PathBuf,
    weights: Weights,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    bos: Option<u32>,
    eos: Option<u32>,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel").field("path", &self.path).field("config", &self.weights.config).finish()
    }
}

impl LocalModel {
    /// Loads a GGUF model with the chat template its metadata names.
    ///
    /// # Errors
    /// [`LmError::Open`] (missing file), [`LmError::Corrupt`] (not GGUF, truncated, missing
    /// tensors or metadata), [`LmError::UnsupportedArchitecture`], [`LmError::Tokenizer`],
    /// [`LmError::Template`] — each naming the file.
    pub fn load(path: impl AsRef<Path>) -> Result<LocalModel, LmError> {
        LocalModel::load_with(path, TemplateChoice::Auto)
    }

    /// Loads a GGUF model with a chosen template.
    ///
    /// # Errors
    /// As [`LocalModel::load`].
    pub fn load_with(path: impl AsRef<Path>, template: TemplateChoice) -> Result<LocalModel, LmError> {
        let path = path.as_ref();
        let (content, mut reader) = read_gguf(path)?;
        let TextSide { tokenizer, template, bos, eos } = read_text_side(path, &content, template)?;
        let weights = Weights::load(path, &content, &mut reader)?;
        if weights.config.vocab != tokenizer.vocab_size() {
            return Err(corrupt(
                path,
                format!(
                    "the output matrix has {} rows but the vocabulary {} tokens",
                    weights.config.vocab,
                    tokenizer.vocab_size()
                ),
            ));
        }
        Ok(LocalModel { path: path.to_path_buf(), weights, tokenizer, template, bos, eos })
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file name, for tables.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(|| self.path.display().to_string(), |n| n.to_string_lossy().into_owned())
    }

    /// Hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.weights.config
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The chat template in use.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The prompt tokens for a conversation, ending where the assistant's reply begins.
    ///
    /// # Errors
    /// [`LmError::Template`] if the vocabulary lacks a token the template needs.
    pub fn chat_prompt(&self, messages: &[Message]) -> Result<Vec<u32>, LmError> {
        self.template
            .render(&self.tokenizer, messages, self.bos)
            .map_err(|why| LmError::Template { path: self.path.clone(), why })
    }

    /// Raw text as prompt tokens (with the beginning-of-text token if the model wants one).
    pub fn text_prompt(&self, text: &str) -> Vec<u32> {
        let mut out: Vec<u32> = self.bos.into_iter().collect();
        out.extend(self.tokenizer.encode(text));
        out
    }

    fn compute(&self, e: candle_core::Error) -> LmError {
        LmError::Compute { model: self.path.display().to_string(), why: e.to_string() }
    }

    fn check_tokens(&self, tokens: &[u32], extra: usize) -> Result<(), LmError> {
        if tokens.is_empty() {
            return Err(LmError::Request("the prompt is empty".into()));
        }
        if let Some(t) = tokens.iter().find(|&&t| t as usize >= self.tokenizer.vocab_size()) {
            return Err(LmError::Request(format!("token id {t} is outside the vocabulary")));
        }
        let context = self.weights.config.context;
        if tokens.len() + extra > context {
            return Err(LmError::Request(format!(
                "{} prompt tokens + {extra} new tokens exceed the model's context of {context}",
                tokens.len()
            )));
        }
        Ok(())
    }

    /// Log-probabilities of each token of `continuation` after `prompt`.
    ///
    /// Computed exactly as sampling computes them — the prompt in one pass, then one token at
    /// a time — so re-scoring a generated response gives its reported log-probs bit for bit.
    /// (candle's x86 kernels quantize activations differently for multi-row and single-row
    /// matmuls, so a single pass over the whole sequence would differ by up to ~0.1 nats.)
    ///
    /// # Errors
    /// [`LmError::Request`] for an empty prompt or too long a sequence.
    pub fn score(&self, prompt: &[u32], continuation: &[u32]) -> Result<Vec<f64>, LmError> {
        self.check_tokens(prompt, continuation.len())?;
        if let Some(t) = continuation.iter().find(|&&t| t as usize >= self.tokenizer.vocab_size()) {
            return Err(LmError::Request(format!("token id {t} is outside the vocabulary")));
        }
        let mut cache = KvCache::default();
        let mut out = Vec::with_capacity(continuation.len());
        let mut input: &[u32] = prompt;
        for t in continuation {
            let t = *t;
            let logits = self.weights.forward(input, 1, &mut cache, false).map_err(|e| self.compute(e))?;
            let row = Weights::rows(&logits).map_err(|e| self.compute(e))?.swap_remove(0);
            let lse = log_normalizer(&row)
                .ok_or_else(|| self.compute(candle_core::Error::Msg("non-finite logits".into())))?;
            out.push(row[t as usize] as f64 - lse);
            input = std::slice::from_ref(&continuation[out.len() - 1]);
        }
        Ok(out)
    }

    /// Samples one response per stream in `rngs` to the prompt tokens, as one batch: the
    /// prompt is run once, then all samples are decoded together (finished ones leave the
    /// batch). Sample `i` depends only on the prompt, the parameters and `rngs[i]`.
    ///
    /// # Errors
    /// [`LmError::Request`] for bad parameters or too long a prompt; [`LmError::Compute`] if
    /// the backend fails.
    pub fn generate(
        &self,
        prompt: &[u32],
        params: &SamplingParams,
        rngs: &mut [KeyedRng],
    ) -> Result<Vec<Generation>, LmError> {
        params.validate()?;
        self.check_tokens(prompt, params.max_new_tokens as usize)?;
        let n = rngs.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut cache = KvCache::default();
        let logits = self.weights.forward(prompt, 1, &mut cache, false).map_err(|e| self.compute(e))?;
        let first = Weights::rows(&logits).map_err(|e| self.compute(e))?.swap_remove(0);
        let mut cache = cache.repeat(n).map_err(|e| self.compute(e))?;
        let mut rows: Vec<Vec<f32>> = vec![first; n];
        let mut active: Vec<usize> = (0..n).collect();
        let mut out: Vec<Generation> = (0..n)
            .map(|_| Generation {
                text: String::new(),
                token_ids: Vec::new(),
                tokens: Vec::new(),
                logprobs: Vec::new(),
                finish: Finish::Length,
                prompt_tokens: Some(prompt.len()),
            })
            .collect();
        let nan = || self.compute(candle_core::Error::Msg("the model produced NaN logits".into()));
        loop {
            let mut still = Vec::with_capacity(active.len());
            let mut next = Vec::with_capacity(active.len());
            let mut keep_rows = Vec::with_capacity(active.len());
            for (row, &i) in active.iter().enumerate() {
                let (tok, lp) = sample_token(&rows[row], params, &mut rngs[i]).ok_or_else(nan)?;
                let g = &mut out[i];
                g.token_ids.push(tok);
                g.tokens.push(self.tokenizer.decode(&[tok], false));
                g.logprobs.push(lp);
                let end_of_turn = Some(tok) == self.eos || self.tokenizer.is_control(tok);
                let text = self.tokenizer.decode(&g.token_ids, true);
                if let Some(pos) = find_stop(&text, &params.stop) {
                    g.text = text[..pos].to_string();
                    g.finish = Finish::Stop;
                } else if end_of_turn {
                    g.text = text;
                    g.finish = Finish::Stop;
                } else if g.token_ids.len() >= params.max_new_tokens as usize {
                    g.text = text;
                    g.finish = Finish::Length;
                } else {
                    still.push(i);
                    next.push(tok);
                    keep_rows.push(row as u32);
                }
            }
            if still.is_empty() {
                break;
            }
            cache = cache.select(&keep_rows).map_err(|e| self.compute(e))?;
            let logits =
                self.weights.forward(&next, still.len(), &mut cache, false).map_err(|e| self.compute(e))?;
            rows = Weights::rows(&logits).map_err(|e| self.compute(e))?;
            active = still;
        }
        Ok(out)
    }
}

/// The text side of a GGUF model: tokenizer, chat template, begin- and end-of-text tokens.
pub(crate) struct TextSide {
    pub(crate) tokenizer: Tokenizer,
    pub(crate) template: ChatTemplate,
    pub(crate) bos: Option<u32>,
    pub(crate) eos: Option<u32>,
}

/// Reads the tokenizer and template from GGUF metadata (the architecture is checked first:
/// an unsupported model should say so, not complain about its tokenizer).
pub(crate) fn read_text_side(
    path: &Path,
    content: &candle_core::quantized::gguf_file::Content,
    template: TemplateChoice,
) -> Result<TextSide, LmError> {
    let meta = Meta { content, path };
    let arch = meta.string("general.architecture")?;
    if arch != "llama" {
        return Err(LmError::UnsupportedArchitecture { path: path.to_path_buf(), arch: arch.to_string() });
    }
    let model = meta.string("tokenizer.ggml.model")?;
    let tokens = meta.strings("tokenizer.ggml.tokens")?;
    let types = meta.ints("tokenizer.ggml.token_type")?;
    let merges = meta.strings("tokenizer.ggml.merges").unwrap_or_default();
    let tokenizer = Tokenizer::new(model, tokens, types, &merges)
        .map_err(|source| LmError::Tokenizer { path: path.to_path_buf(), source })?;
    let id = |key: &str| meta.u32(key).ok().filter(|&i| (i as usize) < tokenizer.vocab_size());
    let add_bos = matches!(
        meta.get("tokenizer.ggml.add_bos_token"),
        Some(candle_core::quantized::gguf_file::Value::Bool(true))
    );
    let bos = if add_bos { id("tokenizer.ggml.bos_token_id") } else { None };
    let eos = id("tokenizer.ggml.eos_token_id");
    let template = match template {
        TemplateChoice::Raw => ChatTemplate::Raw,
        TemplateChoice::Auto => match meta.string("tokenizer.chat_template") {
            Ok(jinja) => ChatTemplate::detect(jinja)
                .map_err(|why| LmError::Template { path: path.to_path_buf(), why })?,
            Err(_) => ChatTemplate::Raw,
        },
    };
    Ok(TextSide { tokenizer, template, bos, eos })
}

impl ChatModel for LocalModel {
    fn describe(&self) -> String {
        format!("lm:{}", self.path.display())
    }

    fn chat(
        &self,
        messages: &[Message],
        params: &SamplingParams,
        rngs: &mut [KeyedRng],
    ) -> Result<Vec<Generation>, LmError> {
        let prompt = self.chat_prompt(messages)?;
        self.generate(&prompt, params, rngs)
    }
}
