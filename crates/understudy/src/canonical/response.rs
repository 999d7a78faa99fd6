use serde_json::Value;

use super::{ContentPart, Dialect};

/// A complete (non-streaming) answer in the gateway's own terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatResponse {
    /// The provider's response id.
    pub id: String,
    /// The model that answered, as the provider reported it.
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: Usage,
    /// The provider's body as received, for same-dialect passthrough of fields the canonical
    /// model does not carry (logprobs, system_fingerprint, citations...).
    pub native: Option<(Dialect, Value)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Choice {
    pub index: u32,
    /// Text and tool calls, in order.
    pub content: Vec<ContentPart>,
    pub finish_reason: FinishReason,
    /// OpenAI `message.refusal`.
    pub refusal: Option<String>,
}

impl Choice {
    /// Concatenated text content.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn has_tool_calls(&self) -> bool {
        self.content.iter().any(|p| matches!(p, ContentPart::ToolCall { .. }))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FinishReason {
    /// Natural end of turn.
    #[default]
    Stop,
    /// A caller-supplied stop sequence matched (Anthropic reports which).
    StopSequence(Option<String>),
    /// The output limit was reached.
    Length,
    ToolCalls,
    ContentFilter,
    /// Anything else, as the provider named it.
    Other(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All prompt tokens, cached ones included.
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}
