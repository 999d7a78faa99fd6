//! Anthropic answers: the `message` JSON, the SSE event sequence, and the model list.

use bytes::{BufMut, BytesMut};
use http::StatusCode;
use serde::Serialize;
use serde_json::json;

use super::super::{sse, Id, Parsed};
use super::errors::request_id;
use crate::answer::{script, Answer, Finish, SseFrames, StreamFaults};
use crate::http::{json_response, response, set_header, Resp};

#[derive(Serialize)]
struct Usage {
    input_tokens: u32,
    output_tokens: u32,
    cache_creation_input_tokens: u32,
    cache_read_input_tokens: u32,
    service_tier: &'static str,
}

fn usage(a: &Answer, output_tokens: u32) -> Usage {
    Usage {
        input_tokens: a.prompt_tokens,
        output_tokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        service_tier: "standard",
    }
}

#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentOut<'a> {
    Text { text: &'a str },
    ToolUse { id: Id, name: &'a str, input: EmptyObject },
}

#[derive(Serialize)]
struct MessageOut<'a> {
    id: Id,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: &'a [ContentOut<'a>],
    stop_reason: Option<&'static str>,
    stop_sequence: Option<()>,
    usage: Usage,
}

fn stop_reason(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCall => "tool_use",
        Finish::ContentFilter | Finish::Blocked(_) => "refusal",
    }
}

/// The answer's single content block, if it has one (empty and refused answers have none).
fn block(a: &Answer) -> Option<ContentOut<'_>> {
    match (a.finish, a.tool.as_deref()) {
        (_, Some(name)) => Some(ContentOut::ToolUse { id: Id("toolu_", a.id), name, input: EmptyObject {} }),
        (Finish::Stop | Finish::Length, None) if !a.text().is_empty() => Some(ContentOut::Text { text: a.text() }),
        _ => None,
    }
}

pub(crate) fn answer(a: &Answer, parsed: &Parsed<'_>, faults: &StreamFaults) -> Resp {
    let mut resp = if parsed.stream {
        response(StatusCode::OK, "text/event-stream; charset=utf-8", script(&StreamFrames { a }, faults))
    } else {
        let blocks: Vec<ContentOut<'_>> = block(a).into_iter().collect();
        let body = MessageOut {
            id: Id("msg_", a.id),
            kind: "message",
            role: "assistant",
            model: &a.model,
            content: &blocks,
            stop_reason: Some(stop_reason(a.finish)),
            stop_sequence: None,
            usage: usage(a, a.completion_tokens()),
        };
        json_response(StatusCode::OK, &body)
    };
    set_header(&mut resp, "request-id", request_id(a.id));
    resp
}

struct StreamFrames<'a> {
    a: &'a Answer,
}

#[derive(Serialize)]
struct MessageStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: MessageOut<'a>,
}

#[derive(Serialize)]
struct BlockStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    content_block: ContentOut<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DeltaOut<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: DeltaOut<'a>,
}

#[derive(Serialize)]
struct BlockStop {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
}

#[derive(Serialize)]
struct DeltaUsage {
    input_tokens: u32,
    output_tokens: u32,
}

#[derive(Serialize)]
struct MessageDelta {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: StopDelta,
    usage: DeltaUsage,
}

/// `ping`, `message_stop`: just a type.
#[derive(Serialize)]
struct Bare {
    #[serde(rename = "type")]
    kind: &'static str,
}

fn event(buf: &mut BytesMut, kind: &str, data: &impl Serialize) {
    sse(buf, Some(kind), data, b"\n");
}

impl SseFrames for StreamFrames<'_> {
    fn head(&self, buf: &mut BytesMut) {
        let a = self.a;
        let message = MessageOut {
            id: Id("msg_", a.id),
            kind: "message",
            role: "assistant",
            model: &a.model,
            content: &[],
            stop_reason: None,
            stop_sequence: None,
            usage: usage(a, 1),
        };
        event(buf, "message_start", &MessageStart { kind: "message_start", message });
        if let Some(b) = block(a) {
            let content_block = match b {
                ContentOut::Text { .. } => ContentOut::Text { text: "" },
                tool => tool,
            };
            event(buf, "content_block_start", &BlockStart { kind: "content_block_start", index: 0, content_block });
        }
        event(buf, "ping", &Bare { kind: "ping" });
    }

    fn chunks(&self) -> usize {
        if self.a.tool.is_some() {
            1
        } else {
            self.a.chunk_count()
        }
    }

    fn chunk(&self, i: usize, buf: &mut BytesMut) {
        let delta = if self.a.tool.is_some() {
            DeltaOut::InputJsonDelta { partial_json: "{}" }
        } else {
            DeltaOut::TextDelta { text: self.a.chunk(i) }
        };
        event(buf, "content_block_delta", &BlockDelta { kind: "content_block_delta", index: 0, delta });
    }

    fn malformed(&self, buf: &mut BytesMut) {
        buf.put_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_del\n\n",
        );
    }

    fn error(&self, buf: &mut BytesMut) {
        let body = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        event(buf, "error", &body);
    }

    fn tail(&self, buf: &mut BytesMut, terminator: bool) {
        let a = self.a;
        if block(a).is_some() {
            event(buf, "content_block_stop", &BlockStop { kind: "content_block_stop", index: 0 });
        }
        let delta = MessageDelta {
            kind: "message_delta",
            delta: StopDelta { stop_reason: stop_reason(a.finish), stop_sequence: None },
            usage: DeltaUsage { input_tokens: a.prompt_tokens, output_tokens: a.completion_tokens() },
        };
        event(buf, "message_delta", &delta);
        if terminator {
            event(buf, "message_stop", &Bare { kind: "message_stop" });
        }
    }
}

pub(crate) fn models(models: &[String], rid: u64) -> Resp {
    let data: Vec<_> = models
        .iter()
        .map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-01-01T00:00:00Z"}))
        .collect();
    let body = json!({"data": data, "has_more": false, "first_id": models.first(), "last_id": models.last()});
    let mut resp = json_response(StatusCode::OK, &body);
    set_header(&mut resp, "request-id", request_id(rid));
    resp
}
