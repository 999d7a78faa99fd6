//! Gemini `streamGenerateContent?alt=sse` -> canonical stream events.
//!
//! Each SSE frame is `data: <GenerateContentResponse>` with no event name, and there is no
//! terminator: the stream is complete only if some chunk carried a `finishReason`, so `Done` is
//! emitted at end of input in that case alone (otherwise the relay sees a truncated stream).

use std::collections::BTreeMap;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Map, Value};

use super::error::classify_value;
use super::response::{
    blocked_prompt, call_fields, candidate_index, candidate_parts, finish_reason, unwrap_one, usage,
};
use crate::canonical::{Decoded, StreamEvent};
use crate::wire::sse::{SseFrame, SseParser};
use crate::wire::{Malformed, StreamDecoder};

#[derive(Debug, Default)]
pub struct Decoder {
    sse: SseParser,
    /// `Start` was emitted.
    started: bool,
    /// Some chunk carried a `finishReason`.
    finished: bool,
    /// An error chunk or a blocked prompt was seen: the stream cannot end cleanly.
    failed: bool,
    /// `Done` was emitted.
    done: bool,
    /// Tool calls seen so far, per candidate index (numbers the next call of that choice).
    calls: BTreeMap<u32, u32>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn frames(&mut self, frames: Vec<Result<SseFrame, Malformed>>, out: &mut Vec<Result<Decoded, Malformed>>) {
        for frame in frames {
            match frame {
                Ok(f) => {
                    if let Some(d) = self.frame(f) {
                        out.push(d);
                    }
                }
                Err(m) => out.push(Err(m)),
            }
        }
    }

    /// One SSE frame; `None` for a frame without data (nothing to decode, nothing to count).
    fn frame(&mut self, frame: SseFrame) -> Option<Result<Decoded, Malformed>> {
        let data = frame.data.trim();
        if data.is_empty() {
            return None;
        }
        let chunk = match serde_json::from_str::<Value>(data) {
            Ok(v) => unwrap_one(v),
            Err(e) => return Some(Err(Malformed(format!("gemini chunk is not JSON: {e}")))),
        };
        let Some(chunk) = chunk else {
            return Some(Err(Malformed("gemini chunk is not an object".into())));
        };
        let events = self.chunk(chunk);
        Some(Ok(Decoded { events, raw: frame.raw }))
    }

    fn chunk(&mut self, chunk: Map<String, Value>) -> Vec<StreamEvent> {
        if chunk.contains_key("error") {
            self.failed = true;
            return vec![StreamEvent::Error(classify_value(200, &HeaderMap::new(), &Value::Object(chunk)))];
        }
        if let Some(f) = blocked_prompt(&chunk) {
            self.failed = true;
            return vec![StreamEvent::Error(f)];
        }
        let mut events = Vec::new();
        if !std::mem::replace(&mut self.started, true) {
            let text = |k: &str| chunk.get(k).and_then(Value::as_str).map(str::to_string);
            events.push(StreamEvent::Start { id: text("responseId"), model: text("modelVersion") });
        }
        let candidates = chunk.get("candidates").and_then(Value::as_array).into_iter().flatten();
        for (position, cand) in candidates.enumerate() {
            if let Some(cand) = cand.as_object() {
                self.candidate(candidate_index(cand, position), cand, &mut events);
            }
        }
        if let Some(meta) = chunk.get("usageMetadata") {
            events.push(StreamEvent::Usage(usage(meta)));
        }
        events
    }

    fn candidate(&mut self, index: u32, cand: &Map<String, Value>, events: &mut Vec<StreamEvent>) {
        let calls = self.calls.entry(index).or_insert(0);
        for part in candidate_parts(cand) {
            if let Some(call) = part.get("functionCall") {
                // Calls arrive whole: one event carries id, name and the complete arguments.
                let (id, name, arguments) = call_fields(call, *calls);
                events.push(StreamEvent::ToolCall { index, call: *calls, id: Some(id), name: Some(name), arguments });
                *calls += 1;
            } else if let Some(text) = part.get("text").and_then(Value::as_str) {
                if !text.is_empty() {
                    events.push(StreamEvent::Text { index, text: text.to_string() });
                }
            }
        }
        if let Some(reason) = cand.get("finishReason").and_then(Value::as_str) {
            self.finished = true;
            events.push(StreamEvent::Finish { index, reason: finish_reason(reason, *calls > 0) });
        }
    }
}

impl StreamDecoder for Decoder {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Result<Decoded, Malformed>>) {
        let mut frames = Vec::new();
        self.sse.feed(bytes, &mut frames);
        self.frames(frames, out);
    }

    fn finish(&mut self, out: &mut Vec<Result<Decoded, Malformed>>) {
        let mut frames = Vec::new();
        self.sse.finish(&mut frames);
        self.frames(frames, out);
        if self.finished && !self.failed && !self.done {
            self.done = true;
            out.push(Ok(Decoded { events: vec![StreamEvent::Done], raw: Bytes::new() }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{FinishReason, Usage};
    use crate::failure::FailureClass;

    const STREAM: &[u8] = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The weather\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 20,\"totalTokenCount\": 20},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"resp-1\"}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"thinking\", \"thought\": true}, {\"text\": \" in Oslo \\u00e9\"}],\"role\": \"model\"},\"index\": 0}],\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"resp-1\"}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"city\": \"Oslo\"}},\"thoughtSignature\": \"c2ln\"}],\"role\": \"model\"},\"index\": 0}],\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"resp-1\"}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 20,\"candidatesTokenCount\": 15,\"thoughtsTokenCount\": 5,\"totalTokenCount\": 40},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"resp-1\"}\r\n\r\n";

    fn run(chunks: &[&[u8]]) -> Vec<Result<Decoded, Malformed>> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out);
        }
        d.finish(&mut out);
        out
    }

    fn events(out: &[Result<Decoded, Malformed>]) -> Vec<StreamEvent> {
        out.iter().flat_map(|d| d.as_ref().unwrap().events.clone()).collect()
    }

    #[test]
    fn realistic_stream() {
        let out = run(&[STREAM]);
        assert_eq!(out.len(), 5);
        assert_eq!(
            events(&out),
            vec![
                StreamEvent::Start { id: Some("resp-1".into()), model: Some("gemini-2.5-flash".into()) },
                StreamEvent::Text { index: 0, text: "The weather".into() },
                StreamEvent::Usage(Usage { input_tokens: 20, ..Default::default() }),
                StreamEvent::Text { index: 0, text: " in Oslo é".into() },
                StreamEvent::ToolCall {
                    index: 0,
                    call: 0,
                    id: Some("call_0".into()),
                    name: Some("get_weather".into()),
                    arguments: r#"{"city":"Oslo"}"#.into()
                },
                StreamEvent::Finish { index: 0, reason: FinishReason::ToolCalls },
                StreamEvent::Usage(Usage { input_tokens: 20, output_tokens: 20, ..Default::default() }),
                StreamEvent::Done,
            ]
        );
        // Each frame's raw bytes are kept; the synthetic `Done` has none.
        let first = out[0].as_ref().unwrap();
        assert!(first.raw.starts_with(b"data: {\"candidates\""));
        assert!(first.raw.ends_with(b"\r\n\r\n"));
        assert!(out[4].as_ref().unwrap().raw.is_empty());
    }

    #[test]
    fn split_at_every_byte_gives_identical_events() {
        let whole = run(&[STREAM]);
        for i in 1..STREAM.len() {
            let (a, b) = STREAM.split_at(i);
            assert_eq!(run(&[a, b]), whole, "split at {i}");
        }
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(run(&bytes), whole);
    }

    #[test]
    fn done_only_after_a_finish_reason() {
        // Cut before the last frame: three clean frames, no finish, so no `Done`.
        let last = STREAM.windows(8).rposition(|w| w == b"\r\n\r\ndata").unwrap() + 4;
        let out = run(&[&STREAM[..last]]);
        assert_eq!(out.len(), 3);
        assert!(!events(&out).iter().any(|e| matches!(e, StreamEvent::Finish { .. } | StreamEvent::Done)));
        // Cut inside the last frame: the partial frame is malformed, still no `Done`.
        let out = run(&[&STREAM[..STREAM.len() - 40]]);
        assert_eq!(out.len(), 4);
        assert!(out[3].is_err());
        let ok: Vec<_> = out.into_iter().filter_map(Result::ok).flat_map(|d| d.events).collect();
        assert!(!ok.contains(&StreamEvent::Done));

        let mut d = Decoder::new();
        let mut out = Vec::new();
        d.feed(STREAM, &mut out);
        assert!(!events(&out).contains(&StreamEvent::Done), "no Done before end of input");
        d.finish(&mut out);
        d.finish(&mut out);
        assert_eq!(events(&out).iter().filter(|e| **e == StreamEvent::Done).count(), 1);
    }

    #[test]
    fn in_stream_error_chunk() {
        let input = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}}]}\n\n\
data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}\n\n";
        let ev = events(&run(&[input]));
        assert_eq!(ev.len(), 3);
        let StreamEvent::Error(f) = &ev[2] else { panic!("{ev:?}") };
        assert_eq!(f.class, FailureClass::Overloaded);
        assert_eq!(f.status, Some(503));
        assert_eq!(f.message, "The model is overloaded.");
    }

    #[test]
    fn error_after_finish_suppresses_done() {
        let input = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}, \"finishReason\": \"STOP\"}]}\n\n\
data: [{\"error\": {\"code\": 500, \"message\": \"internal\", \"status\": \"INTERNAL\"}}]\n\n";
        let ev = events(&run(&[input]));
        assert!(matches!(ev.last(), Some(StreamEvent::Error(_))), "{ev:?}");
    }

    #[test]
    fn blocked_prompt_in_stream() {
        let input = b"data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\"}, \"usageMetadata\": {\"promptTokenCount\": 4}}\n\n";
        let ev = events(&run(&[input]));
        assert_eq!(ev.len(), 1);
        let StreamEvent::Error(f) = &ev[0] else { panic!("{ev:?}") };
        assert_eq!(f.class, FailureClass::ContentFiltered);
        assert_eq!(f.detail, Some("prompt_blocked"));
    }

    #[test]
    fn safety_finish_and_second_candidate() {
        let input = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"id\": \"fc1\", \"name\": \"f\"}}]}, \"index\": 1, \"finishReason\": \"SAFETY\"}]}\n\n";
        let ev = events(&run(&[input]));
        assert_eq!(
            ev[1..],
            [
                StreamEvent::ToolCall {
                    index: 1,
                    call: 0,
                    id: Some("fc1".into()),
                    name: Some("f".into()),
                    arguments: "{}".into()
                },
                StreamEvent::Finish { index: 1, reason: FinishReason::ContentFilter },
                StreamEvent::Done,
            ]
        );
    }

    #[test]
    fn malformed_frames_are_reported_and_the_stream_goes_on() {
        let input = b"data: {not json\n\ndata: 42\n\n: keep-alive\n\ndata: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"ok\"}]}}]}\n\n";
        let out = run(&[input]);
        assert_eq!(out.len(), 3);
        assert!(out[0].is_err());
        assert!(out[1].is_err());
        assert!(events(&out[2..]).contains(&StreamEvent::Text { index: 0, text: "ok".into() }));
    }

    #[test]
    fn trailing_frame_without_blank_line_is_decoded() {
        let input = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"end\"}]}, \"finishReason\": \"MAX_TOKENS\"}]}";
        let ev = events(&run(&[input]));
        assert_eq!(
            ev[1..],
            [
                StreamEvent::Text { index: 0, text: "end".into() },
                StreamEvent::Finish { index: 0, reason: FinishReason::Length },
                StreamEvent::Done,
            ]
        );
    }
}
