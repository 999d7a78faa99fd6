//! Bedrock answers: the Converse JSON, and ConverseStream's binary event stream
//! (`messageStart`, content block events, `messageStop`, then `metadata` with the usage).

use bytes::BytesMut;
use http::StatusCode;
use serde_json::{json, Value};

use super::super::{Id, Parsed};
use super::errors::request_id;
use super::frames;
use crate::answer::{script, Answer, Finish, SseFrames, StreamFaults};
use crate::http::{json_response, response, set_header, to_bytes, Resp};

const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";
/// What a guardrail answers by default when it blocks a prompt.
const GUARDRAIL_MESSAGE: &str = "Sorry, the model cannot answer this question.";
/// Bedrock pads event payloads with a random-length `p` field (so that sizes leak nothing);
/// gateways must ignore it.
const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn stop_reason(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCall => "tool_use",
        Finish::ContentFilter => "content_filtered",
        Finish::Blocked(_) => "guardrail_intervened",
    }
}

fn usage(a: &Answer, output: u32) -> Value {
    json!({"inputTokens": a.prompt_tokens, "outputTokens": output,
           "totalTokens": a.prompt_tokens.saturating_add(output)})
}

/// The answer's content blocks: text, a tool call, a guardrail's message, or nothing (an
/// empty or filtered answer).
fn blocks(a: &Answer) -> Vec<Value> {
    match (a.finish, a.tool.as_deref()) {
        (_, Some(name)) => vec![json!({"toolUse": {"toolUseId": tool_use_id(a), "name": name, "input": {}}})],
        (Finish::Blocked(_), None) => vec![json!({ "text": GUARDRAIL_MESSAGE })],
        (Finish::Stop | Finish::Length, None) if !a.text().is_empty() => vec![json!({ "text": a.text() })],
        _ => Vec::new(),
    }
}

fn tool_use_id(a: &Answer) -> String {
    Id("tooluse_", a.id).to_string()
}

pub(crate) fn answer(a: &Answer, parsed: &Parsed<'_>, faults: &StreamFaults) -> Resp {
    let mut resp = if parsed.stream {
        response(StatusCode::OK, EVENT_STREAM, script(&StreamFrames { a }, faults))
    } else {
        let body = json!({
            "output": {"message": {"role": "assistant", "content": blocks(a)}},
            "stopReason": stop_reason(a.finish),
            "usage": usage(a, a.completion_tokens()),
            "metrics": {"latencyMs": 42},
        });
        json_response(StatusCode::OK, &body)
    };
    set_header(&mut resp, "x-amzn-requestid", request_id(a.id));
    resp
}

struct StreamFrames<'a> {
    a: &'a Answer,
}

impl StreamFrames<'_> {
    /// Writes an event whose payload carries a padding field of a length that varies by event.
    fn event(&self, buf: &mut BytesMut, kind: &str, mut payload: Value) {
        let n = (self.a.id as usize + buf.len()) % PADDING.len();
        if let Value::Object(m) = &mut payload {
            m.insert("p".into(), Value::from(&PADDING[..n]));
        }
        frames::event(buf, kind, &to_bytes(&payload));
    }

    /// The text a guardrail put in place of the answer, streamed as one delta.
    fn blocked(&self) -> bool {
        matches!(self.a.finish, Finish::Blocked(_))
    }
}

impl SseFrames for StreamFrames<'_> {
    fn head(&self, buf: &mut BytesMut) {
        self.event(buf, "messageStart", json!({"role": "assistant"}));
        if let Some(name) = self.a.tool.as_deref() {
            let start = json!({"toolUse": {"toolUseId": tool_use_id(self.a), "name": name}});
            self.event(buf, "contentBlockStart", json!({"contentBlockIndex": 0, "start": start}));
        }
    }

    fn chunks(&self) -> usize {
        if self.a.tool.is_some() || self.blocked() {
            1
        } else {
            self.a.chunk_count()
        }
    }

    fn chunk(&self, i: usize, buf: &mut BytesMut) {
        let delta = if self.a.tool.is_some() {
            json!({"toolUse": {"input": "{}"}})
        } else if self.blocked() {
            json!({ "text": GUARDRAIL_MESSAGE })
        } else {
            json!({ "text": self.a.chunk(i) })
        };
        self.event(buf, "contentBlockDelta", json!({"contentBlockIndex": 0, "delta": delta}));
    }

    /// A delta whose message CRC is wrong (its prelude is fine, so the frames after it still
    /// decode).
    fn malformed(&self, buf: &mut BytesMut) {
        frames::event(buf, "contentBlockDelta", br#"{"contentBlockIndex":0,"delta":{"text":" garbled"}}"#);
        if let Some(last) = buf.last_mut() {
            *last ^= 0xff;
        }
    }

    fn error(&self, buf: &mut BytesMut) {
        let payload = json!({"message": "The model stream had an error. Retry your request.",
                             "originalStatusCode": 500, "originalMessage": "Internal server error"});
        frames::exception(buf, "modelStreamErrorException", &to_bytes(&payload));
    }

    /// Block stop, and (with `terminator`) `messageStop` and `metadata`.
    fn tail(&self, buf: &mut BytesMut, terminator: bool) {
        let a = self.a;
        if !blocks(a).is_empty() {
            self.event(buf, "contentBlockStop", json!({"contentBlockIndex": 0}));
        }
        if terminator {
            self.event(buf, "messageStop", json!({"stopReason": stop_reason(a.finish)}));
            let output = a.completion_tokens();
            self.event(buf, "metadata", json!({"usage": usage(a, output), "metrics": {"latencyMs": 42}}));
        }
    }
}
