//! Wire formats, one module per dialect, each holding both directions of the hub and spoke:
//! the front side (what a caller sends the gateway and receives back) and the provider side
//! (what the gateway sends a provider and receives back).
//!
//! Every dialect module exposes the same functions:
//! * front: `request::decode`, `response::encode`, `stream::Encoder`, `error::encode`
//! * provider: `request::encode`, `response::decode`, `stream::Decoder`, `error::classify`

pub mod anthropic;
pub mod bedrock;
pub mod front;
pub mod gemini;
pub mod openai;
pub mod retry_after;
pub mod sse;

use bytes::BytesMut;
use serde_json::Value;

use crate::canonical::{Decoded, StreamEvent, Usage};

/// The caller's request could not be understood. Rendered as a 400 in the caller's error shape.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct BadRequest {
    pub message: String,
    /// The offending field, when one can be named (`messages[2].content`).
    pub param: Option<String>,
}

impl BadRequest {
    pub fn new(message: impl Into<String>) -> Self {
        BadRequest { message: message.into(), param: None }
    }

    pub fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }
}

/// A gateway error to render in the caller's dialect.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorBody {
    pub status: u16,
    /// The error type: OpenAI `error.type`, Anthropic `error.type` (e.g. `invalid_request_error`,
    /// `all_candidates_failed`).
    pub error_type: String,
    /// OpenAI `error.code` (Anthropic has none and ignores it).
    pub code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    /// Extra members of the error object, e.g. `attempts` (the attempt trace).
    pub extra: serde_json::Map<String, Value>,
}

impl ErrorBody {
    pub fn new(status: u16, error_type: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            status,
            error_type: error_type.into(),
            code: None,
            message: message.into(),
            param: None,
            extra: Default::default(),
        }
    }

    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
}

/// A malformed frame in a provider stream: skipped and counted, never forwarded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("malformed stream frame: {0}")]
pub struct Malformed(pub String);

/// Turns a provider's response bytes into canonical events, frame by frame.
pub trait StreamDecoder: Send {
    /// Feeds bytes as they arrive; every complete frame is appended to `out`.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Result<Decoded, Malformed>>);
    /// The upstream closed: flushes a trailing frame if one is buffered.
    fn finish(&mut self, out: &mut Vec<Result<Decoded, Malformed>>);
}

/// Writes canonical events as the caller's dialect of SSE.
pub trait StreamEncoder: Send {
    /// One canonical event. `Start`, `Usage` and `Done` may write nothing (the encoder keeps
    /// what it needs for `finish`).
    fn event(&mut self, event: &StreamEvent, out: &mut BytesMut);
    /// A complete stream: final usage when the caller asked for it, then the terminator.
    fn finish(&mut self, usage: Option<Usage>, out: &mut BytesMut);
    /// An in-band error after the commit point; nothing may follow it (no terminator).
    fn error(&mut self, error: &ErrorBody, out: &mut BytesMut);
}

/// What a front stream encoder needs to know when the stream commits.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInit {
    /// Response id to use in every chunk / the message.
    pub id: String,
    /// The answering deployment's model.
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    /// Prompt tokens when known at start (Anthropic `message_start.usage.input_tokens`).
    pub input_tokens: Option<u64>,
}
