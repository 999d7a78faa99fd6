//! Anthropic Messages streams: [`Encoder`] writes canonical events as Anthropic SSE for a caller,
//! [`Decoder`] reads an Anthropic provider's SSE into canonical events.

use std::collections::HashMap;

use bytes::BytesMut;
use http::HeaderMap;
use serde_json::{json, Value};

use super::{error, finish_reason, message_id, stop_reason, uncached_input, usage_from};
use crate::canonical::{Decoded, FinishReason, StreamEvent, Usage};
use crate::wire::sse::{write_event, SseFrame, SseParser};
use crate::wire::{ErrorBody, Malformed, StreamDecoder, StreamEncoder, StreamInit};

// ---------------------------------------------------------------------------------------------
// Provider: decode

/// Reads an Anthropic SSE stream. Anthropic has one choice, so every event has `index: 0`;
/// tool calls are numbered in the order their blocks start.
#[derive(Debug, Default)]
pub struct Decoder {
    sse: SseParser,
    /// Content block index -> tool call ordinal, for the `input_json_delta`s that follow.
    tool_blocks: HashMap<u64, u32>,
    calls: u32,
    /// Cumulative usage: `message_start` gives the input, `message_delta` updates the output.
    usage: Usage,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn decode_frames(&mut self, frames: Vec<Result<SseFrame, Malformed>>, out: &mut Vec<Result<Decoded, Malformed>>) {
        for frame in frames {
            out.push(frame.and_then(|f| {
                let events = self.events(&f)?;
                Ok(Decoded { events, raw: f.raw })
            }));
        }
    }

    fn events(&mut self, frame: &SseFrame) -> Result<Vec<StreamEvent>, Malformed> {
        if frame.data.trim().is_empty() {
            // An `event:` line without data carries nothing to decode.
            return match frame.event {
                Some(_) => Ok(Vec::new()),
                None => Err(Malformed("an event without data".into())),
            };
        }
        let data: Value =
            serde_json::from_str(&frame.data).map_err(|e| Malformed(format!("unparsable event data: {e}")))?;
        // `data.type` equals the event name; trust the data, fall back to the name.
        let kind = data.get("type").and_then(Value::as_str).or(frame.event.as_deref()).unwrap_or_default();
        match kind {
            "message_start" => self.message_start(&data),
            "content_block_start" => self.block_start(&data),
            "content_block_delta" => self.block_delta(&data),
            "message_delta" => Ok(self.message_delta(&data)),
            "message_stop" => Ok(vec![StreamEvent::Done]),
            "error" => {
                let err = data.get("error").cloned().unwrap_or(Value::Null);
                Ok(vec![StreamEvent::Error(error::classify_error_object(200, &HeaderMap::new(), &err))])
            }
            // ping, content_block_stop, and event types added after this was written.
            _ => Ok(Vec::new()),
        }
    }

    fn message_start(&mut self, data: &Value) -> Result<Vec<StreamEvent>, Malformed> {
        let msg = data
            .get("message")
            .filter(|m| m.is_object())
            .ok_or_else(|| Malformed("message_start without a message".into()))?;
        let text = |k: &str| msg.get(k).and_then(Value::as_str).map(str::to_string);
        let mut events = vec![StreamEvent::Start { id: text("id"), model: text("model") }];
        if let Some(u) = msg.get("usage") {
            self.usage = usage_from(u);
            events.push(StreamEvent::Usage(self.usage));
        }
        Ok(events)
    }

    fn block_start(&mut self, data: &Value) -> Result<Vec<StreamEvent>, Malformed> {
        let index = block_index(data)?;
        let block = data.get("content_block").ok_or_else(|| Malformed("content_block_start without a block".into()))?;
        let field = |k: &str| block.get(k).and_then(Value::as_str);
        Ok(match field("type") {
            Some("text") => match field("text") {
                Some(t) if !t.is_empty() => vec![text_event(t)],
                _ => Vec::new(),
            },
            Some("tool_use") => {
                let call = self.calls;
                self.calls += 1;
                self.tool_blocks.insert(index, call);
                // The input normally streams as deltas; a non-empty start input is kept.
                let arguments = match block.get("input") {
                    Some(Value::Object(m)) if !m.is_empty() => Value::Object(m.clone()).to_string(),
                    _ => String::new(),
                };
                vec![StreamEvent::ToolCall {
                    index: 0,
                    call,
                    id: field("id").map(str::to_string),
                    name: field("name").map(str::to_string),
                    arguments,
                }]
            }
            // thinking, server tool use and results: not canonical content.
            _ => Vec::new(),
        })
    }

    fn block_delta(&mut self, data: &Value) -> Result<Vec<StreamEvent>, Malformed> {
        let index = block_index(data)?;
        let delta = data.get("delta").ok_or_else(|| Malformed("content_block_delta without a delta".into()))?;
        let field = |k: &str| delta.get(k).and_then(Value::as_str);
        Ok(match field("type") {
            Some("text_delta") => match field("text") {
                Some(t) if !t.is_empty() => vec![text_event(t)],
                Some(_) => Vec::new(),
                None => return Err(Malformed("text_delta without text".into())),
            },
            // Deltas of a server tool's input belong to no client tool call: skipped.
            Some("input_json_delta") => match (self.tool_blocks.get(&index), field("partial_json")) {
                (Some(&call), Some(json)) if !json.is_empty() => {
                    vec![StreamEvent::ToolCall { index: 0, call, id: None, name: None, arguments: json.to_string() }]
                }
                _ => Vec::new(),
            },
            // thinking_delta, signature_delta, citations_delta...
            _ => Vec::new(),
        })
    }

    fn message_delta(&mut self, data: &Value) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        if let Some(stop) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
            let sequence = data.pointer("/delta/stop_sequence").and_then(Value::as_str);
            events.push(StreamEvent::Finish { index: 0, reason: finish_reason(stop, sequence) });
        }
        if let Some(u) = data.get("usage").filter(|u| u.is_object()) {
            // Cumulative counts; fields left out keep their earlier values.
            let n = |k: &str| u.get(k).and_then(Value::as_u64);
            let read = n("cache_read_input_tokens").unwrap_or(self.usage.cache_read_tokens);
            let write = n("cache_creation_input_tokens").unwrap_or(self.usage.cache_write_tokens);
            let uncached = n("input_tokens").unwrap_or_else(|| uncached_input(&self.usage));
            self.usage = Usage {
                input_tokens: uncached.saturating_add(read).saturating_add(write),
                output_tokens: n("output_tokens").unwrap_or(self.usage.output_tokens),
                cache_read_tokens: read,
                cache_write_tokens: write,
            };
            events.push(StreamEvent::Usage(self.usage));
        }
        events
    }
}

impl StreamDecoder for Decoder {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Result<Decoded, Malformed>>) {
        let mut frames = Vec::new();
        self.sse.feed(bytes, &mut frames);
        self.decode_frames(frames, out);
    }

    fn finish(&mut self, out: &mut Vec<Result<Decoded, Malformed>>) {
        let mut frames = Vec::new();
        self.sse.finish(&mut frames);
        self.decode_frames(frames, out);
    }
}

fn block_index(data: &Value) -> Result<u64, Malformed> {
    data.get("index").and_then(Value::as_u64).ok_or_else(|| Malformed("a content block event without an index".into()))
}

fn text_event(text: &str) -> StreamEvent {
    StreamEvent::Text { index: 0, text: text.to_string() }
}

// ---------------------------------------------------------------------------------------------
// Front: encode

/// Writes canonical events as Anthropic SSE: `message_start`, content blocks opened and closed
/// as the content changes kind, then `message_delta` and `message_stop` on [`finish`].
/// Only choice 0 is written (Anthropic has one).
///
/// [`finish`]: StreamEncoder::finish
#[derive(Debug)]
pub struct Encoder {
    init: StreamInit,
    started: bool,
    /// After `finish` or `error` nothing more is written.
    ended: bool,
    next_block: u32,
    open: Option<OpenBlock>,
    stop: Option<FinishReason>,
    usage: Option<Usage>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum OpenBlock {
    Text { block: u32 },
    Tool { block: u32, call: u32 },
}

impl OpenBlock {
    fn index(self) -> u32 {
        match self {
            OpenBlock::Text { block } | OpenBlock::Tool { block, .. } => block,
        }
    }
}

impl Encoder {
    pub fn new(init: StreamInit) -> Self {
        Encoder { init, started: false, ended: false, next_block: 0, open: None, stop: None, usage: None }
    }

    fn emit(out: &mut BytesMut, event: &str, data: &Value) {
        write_event(out, Some(event), &data.to_string());
    }

    fn ensure_started(&mut self, out: &mut BytesMut) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let message = json!({
            "id": message_id(&self.init.id),
            "type": "message",
            "role": "assistant",
            "model": self.init.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": self.init.input_tokens.unwrap_or(0), "output_tokens": 0},
        });
        Self::emit(out, "message_start", &json!({"type": "message_start", "message": message}));
    }

    fn close_block(&mut self, out: &mut BytesMut) {
        if let Some(open) = self.open.take() {
            Self::emit(out, "content_block_stop", &json!({"type": "content_block_stop", "index": open.index()}));
        }
    }

    /// Closes whatever is open and starts a block; returns its index.
    fn start_block(&mut self, out: &mut BytesMut, block: Value) -> u32 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        Self::emit(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }

    fn delta(out: &mut BytesMut, index: u32, delta: Value) {
        Self::emit(out, "content_block_delta", &json!({"type": "content_block_delta", "index": index, "delta": delta}));
    }

    fn text(&mut self, out: &mut BytesMut, text: &str) {
        self.ensure_started(out);
        let block = match self.open {
            Some(OpenBlock::Text { block }) => block,
            _ => {
                let block = self.start_block(out, json!({"type": "text", "text": ""}));
                self.open = Some(OpenBlock::Text { block });
                block
            }
        };
        Self::delta(out, block, json!({"type": "text_delta", "text": text}));
    }

    fn tool_call(&mut self, out: &mut BytesMut, call: u32, id: Option<&str>, name: Option<&str>, arguments: &str) {
        let block = if id.is_some() || name.is_some() {
            self.ensure_started(out);
            let id = id.map_or_else(|| format!("toolu_{call}"), str::to_string);
            let block = self
                .start_block(out, json!({"type": "tool_use", "id": id, "name": name.unwrap_or_default(), "input": {}}));
            self.open = Some(OpenBlock::Tool { block, call });
            block
        } else {
            match self.open {
                Some(OpenBlock::Tool { block, call: c }) if c == call => block,
                // A closed block cannot be reopened: fragments of interleaved calls are lost.
                _ => {
                    tracing::debug!(call, "dropping a tool call fragment whose block is not open");
                    return;
                }
            }
        };
        if !arguments.is_empty() {
            Self::delta(out, block, json!({"type": "input_json_delta", "partial_json": arguments}));
        }
    }
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        match event {
            StreamEvent::Text { index: 0, text } if !text.is_empty() => self.text(out, text),
            StreamEvent::ToolCall { index: 0, call, id, name, arguments } => {
                self.tool_call(out, *call, id.as_deref(), name.as_deref(), arguments)
            }
            StreamEvent::Finish { index: 0, reason } => self.stop = Some(reason.clone()),
            StreamEvent::Usage(u) => self.usage = Some(*u),
            _ => {}
        }
    }

    fn finish(&mut self, usage: Option<Usage>, out: &mut BytesMut) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.ensure_started(out);
        self.close_block(out);
        let (stop, sequence) = stop_reason(&self.stop.clone().unwrap_or_default());
        let u = usage.or(self.usage).unwrap_or_default();
        let mut usage = json!({"output_tokens": u.output_tokens, "input_tokens": uncached_input(&u)});
        // Cache counts only when there were any, as Anthropic does.
        if u.cache_write_tokens > 0 {
            usage["cache_creation_input_tokens"] = json!(u.cache_write_tokens);
        }
        if u.cache_read_tokens > 0 {
            usage["cache_read_input_tokens"] = json!(u.cache_read_tokens);
        }
        Self::emit(
            out,
            "message_delta",
            &json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": sequence}, "usage": usage}),
        );
        Self::emit(out, "message_stop", &json!({"type": "message_stop"}));
    }

    fn error(&mut self, err: &ErrorBody, out: &mut BytesMut) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        Self::emit(out, "error", &error::encode(err));
    }
}

#[cfg(test)]
mod tests;
