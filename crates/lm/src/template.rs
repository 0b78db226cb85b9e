//! Chat templates: turning messages into the token sequence a chat model was trained on.
//!
//! GGUF files carry their template as Jinja source (`tokenizer.chat_template`). Rather than
//! embed a Jinja engine, gristmill recognises the template families in use and renders them
//! natively: **ChatML** (`<|im_start|>role\n…<|im_end|>\n`, SmolLM2, Qwen; including a default
//! system prompt the template inserts when the conversation has none) and **Llama 3**
//! (`<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>`). Anything else is refused with
//! a clear error; [`ChatTemplate::Raw`] (plain concatenation) is always available.
//!
//! Message contents are encoded as plain text: a special-token string inside a task prompt is
//! never turned into a control token.

use serde::{Deserialize, Serialize};

use crate::tokenizer::Tokenizer;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Message {
        Message { role: "user".into(), content: content.into() }
    }
    /// A system message.
    pub fn system(content: impl Into<String>) -> Message {
        Message { role: "system".into(), content: content.into() }
    }
}

/// A chat template family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTemplate {
    /// ChatML, with the system prompt the template inserts when none is given (if any).
    ChatMl {
        /// Default system prompt.
        default_system: Option<String>,
    },
    /// Llama 3 headers.
    Llama3,
    /// No template: message contents joined by newlines (for base models and raw prompts).
    Raw,
}

impl ChatTemplate {
    /// Recognises a Jinja template from GGUF metadata.
    ///
    /// # Errors
    /// A description of why the template is not recognised.
    pub fn detect(jinja: &str) -> Result<ChatTemplate, String> {
        if jinja.contains("<|im_start|>") {
            // SmolLM2: `'<|im_start|>system\nYou are …<|im_end|>\n'` inside a branch that runs
            // when the first message is not a system message.
            let default_system = jinja.find("<|im_start|>system").and_then(|start| {
                let rest = &jinja[start + "<|im_start|>system".len()..];
                let rest = rest.strip_prefix("\\n").or_else(|| rest.strip_prefix('\n'))?;
                let end = rest.find("<|im_end|>")?;
                let text = rest[..end].replace("\\n", "\n");
                // A template that splices a variable in has no literal default.
                (!text.contains("{{") && !text.contains('\'') && !text.is_empty()).then_some(text)
            });
            return Ok(ChatTemplate::ChatMl { default_system });
        }
        if jinja.contains("<|start_header_id|>") && jinja.contains("<|eot_id|>") {
            return Ok(ChatTemplate::Llama3);
        }
        let excerpt: String = jinja.chars().take(80).collect();
        Err(format!("neither ChatML nor Llama 3: `{excerpt}…`"))
    }

    /// A short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            ChatTemplate::ChatMl { .. } => "chatml",
            ChatTemplate::Llama3 => "llama3",
            ChatTemplate::Raw => "raw",
        }
    }

    /// The prompt tokens for `messages`, ending where the assistant's reply begins.
    ///
    /// # Errors
    /// A description naming a control token the vocabulary lacks.
    pub fn render(
        &self,
        tok: &Tokenizer,
        messages: &[Message],
        bos: Option<u32>,
    ) -> Result<Vec<u32>, String> {
        let special = |name: &str| tok.token_id(name).ok_or_else(|| format!("the vocabulary lacks `{name}`"));
        let mut out = Vec::new();
        match self {
            ChatTemplate::ChatMl { default_system } => {
                let (start, end) = (special("<|im_start|>")?, special("<|im_end|>")?);
                let turn = |role: &str, content: &str, out: &mut Vec<u32>| {
                    out.push(start);
                    out.extend(tok.encode(&format!("{role}\n{content}")));
                    out.push(end);
                    out.extend(tok.encode("\n"));
                };
                if let (Some(sys), false) =
                    (default_system, messages.first().is_some_and(|m| m.role == "system"))
                {
                    turn("system", sys, &mut out);
                }
                for m in messages {
                    turn(&m.role, &m.content, &mut out);
                }
                out.push(start);
                out.extend(tok.encode("assistant\n"));
            }
            ChatTemplate::Llama3 => {
                let (begin, head, head_end, eot) = (
                    special("<|begin_of_text|>")?,
                    special("<|start_header_id|>")?,
                    special("<|end_header_id|>")?,
                    special("<|eot_id|>")?,
                );
                out.push(begin);
                for m in messages {
                    out.push(head);
                    out.extend(tok.encode(&m.role));
                    out.push(head_end);
                    out.extend(tok.encode(&format!("\n\n{}", m.content.trim())));
                    out.push(eot);
                }
                out.push(head);
                out.extend(tok.encode("assistant"));
                out.push(head_end);
                out.extend(tok.encode("\n\n"));
            }
            ChatTemplate::Raw => {
                out.extend(bos);
                let text: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
                out.extend(tok.encode(&text.join("\n")));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_smollm2_chatml_with_its_default_system_prompt() {
        let jinja = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
        assert_eq!(
            ChatTemplate::detect(jinja),
            Ok(ChatTemplate::ChatMl {
                default_system: Some(
                    "You are a helpful AI assistant named SmolLM, trained by Hugging Face".into()
                )
            })
        );
        let plain = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}";
        assert_eq!(ChatTemplate::detect(plain), Ok(ChatTemplate::ChatMl { default_system: None }));
        assert!(ChatTemplate::detect("{{ bos_token }}[INST] x [/INST]").is_err());
    }
}
