//! The caller-facing side of each dialect, dispatched by [`Dialect`]: decoding a caller's
//! request, and encoding answers, streams and errors back in the caller's format.

use serde_json::Value;

use super::{anthropic, openai, BadRequest, ErrorBody, StreamEncoder, StreamInit};
use crate::canonical::{ChatRequest, ChatResponse, Dialect};

/// Dialects callers may speak.
pub const FRONTS: [Dialect; 2] = [Dialect::OpenAi, Dialect::Anthropic];

pub fn decode_request(front: Dialect, body: &[u8]) -> Result<ChatRequest, BadRequest> {
    match front {
        Dialect::OpenAi => openai::request::decode(body),
        Dialect::Anthropic => anthropic::request::decode(body),
        Dialect::Gemini => Err(BadRequest::new("the Gemini dialect is not served to callers")),
        Dialect::Bedrock => Err(BadRequest::new("the Bedrock dialect is not served to callers")),
    }
}

pub fn encode_response(front: Dialect, resp: &ChatResponse) -> Value {
    match front {
        Dialect::Anthropic => anthropic::response::encode(resp),
        _ => openai::response::encode(resp),
    }
}

pub fn stream_encoder(front: Dialect, init: StreamInit) -> Box<dyn StreamEncoder> {
    match front {
        Dialect::Anthropic => Box::new(anthropic::stream::Encoder::new(init)),
        _ => Box::new(openai::stream::Encoder::new(init)),
    }
}

pub fn encode_error(front: Dialect, err: &ErrorBody) -> Value {
    match front {
        Dialect::Anthropic => anthropic::error::encode(err),
        _ => openai::error::encode(err),
    }
}

/// The bytes that close a complete stream in `front`'s dialect, for a same-dialect stream
/// whose provider never sent its terminator.
pub fn stream_terminator(front: Dialect) -> &'static [u8] {
    match front {
        Dialect::Anthropic => b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        _ => b"data: [DONE]\n\n",
    }
}

/// Tells a streaming caller that the answer restarted from the beginning on another model (its
/// text so far should be discarded): an SSE comment for raw readers, plus a frame SDKs pass over
/// (an OpenAI chunk with empty content and an `understudy` member; an Anthropic event type SDKs
/// skip as unknown).
pub fn restart_notice(front: Dialect, id: &str, model: &str, message: &str) -> Vec<u8> {
    let mut out = format!(": understudy: {}\n\n", message.replace('\n', " ")).into_bytes();
    let notice = serde_json::json!({"restarted": true, "message": message});
    let frame = match front {
        Dialect::Anthropic => {
            let data = serde_json::json!({"type": "understudy_restart", "understudy": notice});
            format!("event: understudy_restart\ndata: {data}\n\n")
        }
        _ => {
            let data = serde_json::json!({
                "id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": null}],
                "understudy": notice,
            });
            format!("data: {data}\n\n")
        }
    };
    out.extend_from_slice(frame.as_bytes());
    out
}
