//! Chat messages and how a request is rendered into them.

use serde::{Deserialize, Serialize};

use crate::config::Compiled;
use crate::fence::{fence, BlockLabel};
use crate::template::Values;
use crate::verdict::VerdictKind;

/// Who a message is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The system message.
    System,
    /// The user message.
    User,
}

/// One chat message, as sent to the grader.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// Who it is from.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Message {
        Message { role: Role::System, content: content.into() }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Message {
        Message { role: Role::User, content: content.into() }
    }
}

/// A request's untrusted parts, fenced once for all items.
pub(crate) struct Fenced {
    prompt: String,
    response: String,
    gold: String,
}

impl Fenced {
    pub(crate) fn new(prompt: &str, response: &str, gold: Option<&str>) -> Fenced {
        Fenced {
            prompt: fence(BlockLabel::Prompt, prompt),
            response: fence(BlockLabel::Response, response),
            gold: gold.map(|g| fence(BlockLabel::Reference, g)).unwrap_or_default(),
        }
    }
}

/// The messages for one item.
pub(crate) fn render(
    compiled: &Compiled,
    fenced: &Fenced,
    question: &str,
    kind: VerdictKind,
) -> Vec<Message> {
    let format = kind.instruction();
    let values = Values {
        prompt: &fenced.prompt,
        response: &fenced.response,
        question,
        gold: &fenced.gold,
        format: &format,
    };
    let mut messages = Vec::with_capacity(2);
    if let Some(system) = &compiled.system {
        messages.push(Message::system(system.render(&values)));
    }
    messages.push(Message::user(compiled.user.render(&values)));
    messages
}
