//! Builds the complete answer from stream events: for validating a buffered stream, and for
//! whatever needs the whole answer afterwards (journal, cache).

use crate::canonical::{ChatResponse, Choice, ContentPart, FinishReason, StreamEvent, Usage};

#[derive(Debug, Default)]
pub struct Accumulator {
    id: Option<String>,
    model: Option<String>,
    text: String,
    /// (call number, id, name, arguments)
    calls: Vec<(u32, String, String, String)>,
    finish: Option<FinishReason>,
    usage: Usage,
}

impl Accumulator {
    pub fn push(&mut self, ev: &StreamEvent) {
        match ev {
            StreamEvent::Start { id, model } => {
                if self.id.is_none() {
                    self.id.clone_from(id);
                }
                if self.model.is_none() {
                    self.model.clone_from(model);
                }
            }
            StreamEvent::Text { index: 0, text } => self.text.push_str(text),
            StreamEvent::ToolCall { index: 0, call, id, name, arguments } => {
                match self.calls.iter_mut().find(|c| c.0 == *call) {
                    Some(c) => {
                        if let Some(id) = id {
                            c.1.clone_from(id);
                        }
                        if let Some(n) = name {
                            c.2.clone_from(n);
                        }
                        c.3.push_str(arguments);
                    }
                    None => self.calls.push((
                        *call,
                        id.clone().unwrap_or_default(),
                        name.clone().unwrap_or_default(),
                        arguments.clone(),
                    )),
                }
            }
            StreamEvent::Finish { index: 0, reason } => self.finish = Some(reason.clone()),
            StreamEvent::Usage(u) => self.usage = *u,
            _ => {}
        }
    }

    pub fn finished(&self) -> bool {
        self.finish.is_some()
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn has_tool_calls(&self) -> bool {
        !self.calls.is_empty()
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The answer so far as a complete response.
    pub fn response(&self) -> ChatResponse {
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(ContentPart::text(self.text.clone()));
        }
        for (_, id, name, arguments) in &self.calls {
            content.push(ContentPart::ToolCall { id: id.clone(), name: name.clone(), arguments: arguments.clone() });
        }
        ChatResponse {
            id: self.id.clone().unwrap_or_default(),
            model: self.model.clone().unwrap_or_default(),
            choices: vec![Choice {
                index: 0,
                content,
                finish_reason: self.finish.clone().unwrap_or_default(),
                refusal: None,
            }],
            usage: self.usage,
            native: None,
        }
    }
}
