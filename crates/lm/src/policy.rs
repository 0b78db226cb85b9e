//! A chat model as a gristmill [`Policy`].

use std::sync::Arc;

use gristmill_core::policy::{Policy, Response};
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{Task, TaskSource};

use crate::sample::SamplingParams;
use crate::template::Message;
use crate::ChatModel;

/// Answers a task by showing its text rendering (the prompt, plus a hint line when one is
/// shown) to a chat model as one user message, and parsing the reply by the family's rule.
#[derive(Clone)]
pub struct LmPolicy {
    /// The model.
    pub model: Arc<dyn ChatModel>,
    /// How replies are sampled.
    pub params: SamplingParams,
    /// An optional system message (otherwise the template's default, if any).
    pub system: Option<String>,
}

impl LmPolicy {
    /// A policy over `model` with `params`.
    pub fn new(model: Arc<dyn ChatModel>, params: SamplingParams) -> LmPolicy {
        LmPolicy { model, params, system: None }
    }

    /// The messages a task is shown as.
    pub fn messages(&self, task: &Task) -> Vec<Message> {
        let mut m = Vec::with_capacity(2);
        if let Some(s) = &self.system {
            m.push(Message::system(s.clone()));
        }
        m.push(Message::user(task.observation_text()));
        m
    }
}

impl Policy for LmPolicy {
    fn name(&self) -> String {
        format!("{}(T={}, top_p={})", self.model.describe(), self.params.temperature, self.params.top_p)
    }

    /// A language model reads the prompt text, never the feature encoding.
    fn reads_features(&self) -> bool {
        false
    }

    /// The trait has no error channel: a failed generation becomes a response whose text
    /// names the error (so it appears in rollouts) and which parses as no answer.
    fn respond_into(&self, task: &Task, source: &dyn TaskSource, rng: &mut KeyedRng, out: &mut Response) {
        *out = match self.model.chat(&self.messages(task), &self.params, std::slice::from_mut(rng)) {
            Ok(mut g) if !g.is_empty() => Response::from_text(source, g.swap_remove(0).text),
            Ok(_) => Response { text: String::new(), answer: Err(gristmill_core::ParseError::Missing) },
            Err(e) => Response {
                text: format!("[generation failed: {e}]"),
                answer: Err(gristmill_core::ParseError::Missing),
            },
        };
    }
}
