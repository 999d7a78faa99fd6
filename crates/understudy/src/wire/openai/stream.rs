//! OpenAI streaming: `data:`-only SSE of `chat.completion.chunk` objects ending in
//! `data: [DONE]`. [`Encoder`] writes it for OpenAI callers; [`Decoder`] reads it from
//! OpenAI-compatible providers (Azure's quirks included).

use bytes::BytesMut;
use http::HeaderMap;
use serde_json::{json, Map, Value};

use super::error;
use super::response::{decode_finish_reason, decode_usage, finish_reason_str, usage_json};
use crate::canonical::{Decoded, StreamEvent, Usage};
use crate::wire::sse::{write_event, SseFrame, SseParser};
use crate::wire::{ErrorBody, Malformed, StreamDecoder, StreamEncoder, StreamInit};

/// Writes canonical events as OpenAI chunks. Every chunk carries the same id, created and model;
/// the first chunk of each choice is the role chunk, as OpenAI sends it.
#[derive(Debug)]
pub struct Encoder {
    /// `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":`, built once.
    prefix: String,
    include_usage: bool,
    /// Choices whose role chunk has been written.
    started: Vec<u32>,
    /// The latest `Usage` event, used by `finish` when it is given none.
    usage: Option<Usage>,
    /// After `finish` or `error` nothing more may be written.
    closed: bool,
}

impl Encoder {
    pub fn new(init: StreamInit) -> Encoder {
        let prefix = format!(
            "{{\"id\":{},\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{},\"choices\":",
            Value::from(init.id),
            init.created,
            Value::from(init.model),
        );
        Encoder { prefix, include_usage: init.include_usage, started: Vec::new(), usage: None, closed: false }
    }

    /// One `data:` line. `usage` is written only when the caller asked for usage: `null` on
    /// ordinary chunks, the totals on the last one.
    fn chunk(&self, choices: &Value, usage: &Value, out: &mut BytesMut) {
        let mut data = String::with_capacity(self.prefix.len() + 128);
        data.push_str(&self.prefix);
        data.push_str(&choices.to_string());
        if self.include_usage {
            data.push_str(",\"usage\":");
            data.push_str(&usage.to_string());
        }
        data.push('}');
        write_event(out, None, &data);
    }

    /// A chunk for one choice; writes the role chunk first if this choice has none yet.
    fn delta(&mut self, index: u32, delta: Value, finish_reason: Value, out: &mut BytesMut) {
        if !self.started.contains(&index) {
            self.started.push(index);
            let role = json!({"role": "assistant", "content": ""});
            self.chunk(&choice_json(index, role, Value::Null), &Value::Null, out);
        }
        self.chunk(&choice_json(index, delta, finish_reason), &Value::Null, out);
    }
}

fn choice_json(index: u32, delta: Value, finish_reason: Value) -> Value {
    json!([{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish_reason}])
}

/// `{"index","id"?,"type":"function"?,"function":{"name"?,"arguments"}}`: the first fragment of
/// a call names it, later ones only append arguments.
fn tool_call_delta(call: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> Value {
    let mut entry = Map::new();
    entry.insert("index".into(), call.into());
    if let Some(id) = id {
        entry.insert("id".into(), id.into());
        entry.insert("type".into(), "function".into());
    }
    let mut function = Map::new();
    if let Some(name) = name {
        function.insert("name".into(), name.into());
    }
    function.insert("arguments".into(), arguments.into());
    entry.insert("function".into(), Value::Object(function));
    json!({"tool_calls": [entry]})
}

impl StreamEncoder for Encoder {
    fn event(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        if self.closed {
            return;
        }
        match event {
            StreamEvent::Text { index, text } if !text.is_empty() => {
                self.delta(*index, json!({"content": text}), Value::Null, out);
            }
            StreamEvent::ToolCall { index, call, id, name, arguments } => {
                let delta = tool_call_delta(*call, id.as_deref(), name.as_deref(), arguments);
                self.delta(*index, delta, Value::Null, out);
            }
            StreamEvent::Finish { index, reason } => {
                self.delta(*index, json!({}), finish_reason_str(reason).into(), out);
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            // Start and Done carry nothing the caller sees; an in-stream provider error is the
            // relay's to render (through `error`) or to fail over from.
            StreamEvent::Text { .. } | StreamEvent::Start { .. } | StreamEvent::Error(_) | StreamEvent::Done => {}
        }
    }

    /// The usage chunk (when the caller asked for usage and it is known: from `usage`, else the
    /// last `Usage` event; never invented), then `data: [DONE]`.
    fn finish(&mut self, usage: Option<Usage>, out: &mut BytesMut) {
        if self.closed {
            return;
        }
        self.closed = true;
        if self.include_usage {
            if let Some(usage) = usage.or(self.usage) {
                self.chunk(&json!([]), &usage_json(&usage), out);
            }
        }
        write_event(out, None, "[DONE]");
    }

    fn error(&mut self, err: &ErrorBody, out: &mut BytesMut) {
        if self.closed {
            return;
        }
        self.closed = true;
        write_event(out, None, &error::encode(err).to_string());
    }
}

/// Reads an OpenAI-compatible provider's stream into canonical events, frame by frame.
#[derive(Debug, Default)]
pub struct Decoder {
    sse: SseParser,
    /// `Start` has been emitted.
    started: bool,
    /// Reused between feeds.
    frames: Vec<Result<SseFrame, Malformed>>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    fn drain(&mut self, out: &mut Vec<Result<Decoded, Malformed>>) {
        let mut frames = std::mem::take(&mut self.frames);
        for frame in frames.drain(..) {
            out.push(frame.and_then(|f| self.frame(f)));
        }
        self.frames = frames;
    }

    fn frame(&mut self, frame: SseFrame) -> Result<Decoded, Malformed> {
        let data = frame.data.trim();
        let events = if data == "[DONE]" {
            vec![StreamEvent::Done]
        } else if data.is_empty() {
            Vec::new()
        } else {
            let value: Value =
                serde_json::from_str(data).map_err(|e| Malformed(format!("unparsable OpenAI chunk: {e}")))?;
            self.chunk_events(&value)?
        };
        Ok(Decoded { events, raw: frame.raw })
    }

    fn chunk_events(&mut self, value: &Value) -> Result<Vec<StreamEvent>, Malformed> {
        let chunk = value.as_object().ok_or_else(|| Malformed("OpenAI chunk is not a JSON object".into()))?;
        if chunk.get("error").is_some_and(|e| !e.is_null()) {
            let failure = error::classify_value(200, &HeaderMap::new(), value);
            return Ok(vec![StreamEvent::Error(failure)]);
        }
        let mut events = Vec::new();
        if !self.started {
            let id = non_empty(chunk.get("id"));
            let model = non_empty(chunk.get("model"));
            // Azure's first chunk has an empty id and model: wait for a real one.
            if id.is_some() || model.is_some() {
                self.started = true;
                events.push(StreamEvent::Start { id, model });
            }
        }
        // Azure's first chunk has `choices: []`; never assume a choice is there.
        if let Some(choices) = chunk.get("choices").and_then(Value::as_array) {
            for (position, choice) in choices.iter().enumerate() {
                choice_events(index_of(choice, position), choice, &mut events);
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            events.push(StreamEvent::Usage(decode_usage(usage)));
        }
        Ok(events)
    }
}

impl StreamDecoder for Decoder {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Result<Decoded, Malformed>>) {
        let mut frames = std::mem::take(&mut self.frames);
        self.sse.feed(bytes, &mut frames);
        self.frames = frames;
        self.drain(out);
    }

    fn finish(&mut self, out: &mut Vec<Result<Decoded, Malformed>>) {
        let mut frames = std::mem::take(&mut self.frames);
        self.sse.finish(&mut frames);
        self.frames = frames;
        self.drain(out);
    }
}

/// Text, tool-call fragments and the finish reason of one choice's delta, in that order.
fn choice_events(index: u32, choice: &Value, events: &mut Vec<StreamEvent>) {
    if let Some(delta) = choice.get("delta") {
        // A refusal streams as text: the canonical stream has no refusal event, and dropping it
        // would make a refusal look like an empty answer.
        for key in ["content", "refusal"] {
            if let Some(text) = delta.get(key).and_then(Value::as_str).filter(|t| !t.is_empty()) {
                events.push(StreamEvent::Text { index, text: text.to_string() });
            }
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (position, call) in calls.iter().enumerate() {
                events.push(tool_call_event(index, index_of(call, position), call));
            }
        }
        if let Some(call) = delta.get("function_call").filter(|c| c.is_object()) {
            // The deprecated single function call: its name stands in for the missing id.
            let name = non_empty(call.get("name"));
            events.push(StreamEvent::ToolCall {
                index,
                call: 0,
                id: name.clone(),
                name,
                arguments: text_of(call.get("arguments")),
            });
        }
    }
    if let Some(reason) = choice.get("finish_reason").filter(|r| !r.is_null()) {
        events.push(StreamEvent::Finish { index, reason: decode_finish_reason(Some(reason)) });
    }
}

fn tool_call_event(index: u32, call: u32, value: &Value) -> StreamEvent {
    let function = value.get("function");
    StreamEvent::ToolCall {
        index,
        call,
        id: non_empty(value.get("id")),
        name: non_empty(function.and_then(|f| f.get("name"))),
        arguments: text_of(function.and_then(|f| f.get("arguments"))),
    }
}

/// `index` when present, else the position in its array.
fn index_of(v: &Value, position: usize) -> u32 {
    v.get("index")
        .and_then(Value::as_u64)
        .and_then(|i| u32::try_from(i).ok())
        .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX))
}

fn non_empty(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
