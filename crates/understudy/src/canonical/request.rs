use serde_json::{Map, Value};

use super::Dialect;

/// A chat request in the gateway's own terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// What the caller asked for: a route name (or `provider/model`). Adapters send the target's
    /// model instead.
    pub model: String,
    /// System prompt as text parts (OpenAI `system`/`developer` messages, Anthropic `system`,
    /// Gemini `systemInstruction`).
    pub system: Vec<ContentPart>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDef>,
    pub tool_choice: Option<ToolChoice>,
    pub params: Params,
    pub response_format: Option<ResponseFormat>,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`: the caller wants a final usage chunk.
    pub include_usage: bool,
    /// The caller's original body, for same-dialect passthrough of unknown fields.
    pub native: Option<Native>,
}

/// Sampling parameters the gateway understands (and that a chain entry may override).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
}

/// The caller's body as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Native {
    pub dialect: Dialect,
    pub body: Map<String, Value>,
    /// Set when the gateway rewrote the conversation (system prompt or messages), so that an
    /// encoder must serialise the canonical messages instead of copying the native ones.
    pub messages_edited: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentPart>,
    /// OpenAI's optional participant name.
    pub name: Option<String>,
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Message { role, content: vec![ContentPart::Text { text: text.into() }], name: None }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ContentPart {
    Text {
        text: String,
    },
    Image {
        source: ImageSource,
    },
    /// An assistant's request to call a tool. `arguments` is JSON text, as OpenAI sends it;
    /// dialects that use objects parse and serialise it.
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    /// A tool's answer, sent in a user turn (OpenAI `role: tool` messages map here).
    ToolResult {
        call_id: String,
        /// Gemini matches results by name; filled from the matching call when known.
        name: Option<String>,
        content: Vec<ContentPart>,
        is_error: bool,
    },
    /// A block the canonical model has no name for (thinking, documents, audio...). Forwarded
    /// only to a provider of the same dialect; dropped (and logged) elsewhere.
    Other {
        dialect: Dialect,
        value: Value,
    },
}

impl ContentPart {
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text { text: text.into() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// An http(s) URL.
    Url(String),
    /// Inline bytes, base64-encoded, with their media type (`image/png`).
    Base64 { media_type: String, data: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    /// The model must call some tool (OpenAI `required`, Anthropic `any`, Gemini `ANY`).
    Required,
    Tool(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { name: String, schema: Value, strict: Option<bool> },
}

impl ChatRequest {
    /// All text of the conversation, system prompt included, for token estimates and cache keys.
    pub fn text_len(&self) -> usize {
        fn parts_len(parts: &[ContentPart]) -> usize {
            parts
                .iter()
                .map(|p| match p {
                    ContentPart::Text { text } => text.len(),
                    ContentPart::ToolCall { arguments, name, .. } => arguments.len() + name.len(),
                    ContentPart::ToolResult { content, .. } => parts_len(content),
                    _ => 0,
                })
                .sum()
        }
        parts_len(&self.system) + self.messages.iter().map(|m| parts_len(&m.content)).sum::<usize>()
    }
}

impl ChatRequest {
    /// The conversation as plain text with role labels, for journals and reviews.
    pub fn transcript(&self) -> String {
        fn text(parts: &[ContentPart]) -> String {
            parts
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text { text } => Some(text.clone()),
                    ContentPart::ToolCall { name, arguments, .. } => Some(format!("[tool call {name} {arguments}]")),
                    ContentPart::ToolResult { content, .. } => Some(format!("[tool result] {}", text(content))),
                    ContentPart::Image { .. } => Some("[image]".into()),
                    ContentPart::Other { .. } => None,
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
        let mut out = String::new();
        if !self.system.is_empty() {
            out.push_str(&format!("system: {}\n", text(&self.system)));
        }
        for m in &self.messages {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            out.push_str(&format!("{role}: {}\n", text(&m.content)));
        }
        out
    }
}
