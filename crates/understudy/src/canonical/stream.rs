use super::{FinishReason, Usage};
use crate::failure::Failure;

/// One step of a streamed answer, decoded from any provider's stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Metadata known at the start (OpenAI's first chunk, Anthropic `message_start`).
    Start {
        id: Option<String>,
        model: Option<String>,
    },
    /// Answer text for choice `index`.
    Text {
        index: u32,
        text: String,
    },
    /// A tool call fragment. The first fragment of a call carries `id` and `name`; later ones
    /// carry argument text to append. `call` numbers the calls of one choice from 0.
    ToolCall {
        index: u32,
        call: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    Finish {
        index: u32,
        reason: FinishReason,
    },
    /// Token counts; a later `Usage` supersedes an earlier one (values are cumulative).
    Usage(Usage),
    /// The provider reported an error inside an HTTP 200 stream.
    Error(Failure),
    /// The stream's own terminator (`[DONE]`, `message_stop`). Gemini has none: its decoder
    /// emits `Done` after the chunk that carries the finish reason, at end of input.
    Done,
}

impl StreamEvent {
    /// Content is what passes the commit point: text or a tool call.
    pub fn is_content(&self) -> bool {
        match self {
            StreamEvent::Text { text, .. } => !text.is_empty(),
            StreamEvent::ToolCall { .. } => true,
            _ => false,
        }
    }
}

/// What a stream decoder produced from one wire frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub events: Vec<StreamEvent>,
    /// The frame exactly as received (an SSE event including its blank line), so a caller of
    /// the same dialect can receive it unchanged.
    pub raw: bytes::Bytes,
}
