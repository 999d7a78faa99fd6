//! ConverseStream (`application/vnd.amazon.eventstream`) -> canonical stream events.
//!
//! Each frame is one event (`:event-type` names it, the JSON payload is its body):
//! `messageStart`, `contentBlockStart` (tool use only: text blocks open on their first delta),
//! `contentBlockDelta`, `contentBlockStop`, `messageStop` (the stop reason), then `metadata`
//! (usage). The stream is complete after `metadata` has followed `messageStop`: `Done` is
//! emitted then, or at end of input when `messageStop` was seen. Exceptions after the 200 arrive
//! as `:message-type: exception` frames and become [`StreamEvent::Error`].

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::Value;

use super::error::classify_exception;
use super::eventstream::{Frame, FrameError, FrameParser};
use super::{finish_reason, stop_sequence, usage};
use crate::canonical::{Decoded, StreamEvent};
use crate::failure::{Failure, FailureClass};
use crate::wire::{Malformed, StreamDecoder};

#[derive(Debug, Default)]
pub struct Decoder {
    frames: FrameParser,
    /// `messageStop` was seen.
    stopped: bool,
    /// `Done` was emitted.
    done: bool,
    /// An exception or lost framing: the stream cannot end cleanly.
    failed: bool,
    /// Content block index -> tool call ordinal, for the input deltas that follow.
    tool_blocks: HashMap<u64, u32>,
    calls: u32,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn decode(&mut self, frames: Vec<Result<Frame, FrameError>>, out: &mut Vec<Result<Decoded, Malformed>>) {
        for frame in frames {
            match frame {
                Ok(f) => out.push(self.frame(&f).map(|events| Decoded { events, raw: f.raw.clone() })),
                Err(FrameError::Frame(m)) => out.push(Err(Malformed(m))),
                Err(FrameError::Framing(m)) => {
                    // Frame boundaries are lost: nothing more can be read, and waiting for the
                    // connection to close would only delay the failover.
                    self.failed = true;
                    out.push(Err(Malformed(m.clone())));
                    let f =
                        Failure::new(FailureClass::InvalidResponse, format!("unreadable Bedrock event stream: {m}"))
                            .detail("malformed_stream");
                    out.push(Ok(Decoded { events: vec![StreamEvent::Error(f)], raw: Bytes::new() }));
                }
            }
        }
    }

    fn frame(&mut self, frame: &Frame) -> Result<Vec<StreamEvent>, Malformed> {
        match frame.header_str(":message-type") {
            Some("event") => {}
            Some("exception") => {
                self.failed = true;
                let kind = frame.header_str(":exception-type").unwrap_or("");
                return Ok(vec![StreamEvent::Error(classify_exception(kind, &frame.payload))]);
            }
            Some("error") => {
                self.failed = true;
                let code = frame.header_str(":error-code").unwrap_or("");
                let message = frame.header_str(":error-message").unwrap_or("");
                let payload = serde_json::json!({ "message": message }).to_string();
                return Ok(vec![StreamEvent::Error(classify_exception(code, payload.as_bytes()))]);
            }
            // A message type added after this was written.
            _ => return Ok(Vec::new()),
        }
        let kind = frame.header_str(":event-type").unwrap_or("");
        let data: Value =
            serde_json::from_slice(&frame.payload).map_err(|e| Malformed(format!("unparsable {kind} payload: {e}")))?;
        if !data.is_object() {
            return Err(Malformed(format!("{kind} payload is not an object")));
        }
        Ok(match kind {
            "messageStart" => vec![StreamEvent::Start { id: None, model: None }],
            "contentBlockStart" => self.block_start(&data),
            "contentBlockDelta" => self.block_delta(&data)?,
            "messageStop" => {
                self.stopped = true;
                let stop = data.get("stopReason").and_then(Value::as_str).unwrap_or("end_turn");
                vec![StreamEvent::Finish { index: 0, reason: finish_reason(stop, stop_sequence(&data)) }]
            }
            "metadata" => {
                let mut events = Vec::new();
                if let Some(u) = data.get("usage").filter(|u| u.is_object()) {
                    events.push(StreamEvent::Usage(usage(u)));
                }
                if self.stopped && !self.done && !self.failed {
                    self.done = true;
                    events.push(StreamEvent::Done);
                }
                events
            }
            // contentBlockStop, and event types added after this was written.
            _ => Vec::new(),
        })
    }

    fn block_start(&mut self, data: &Value) -> Vec<StreamEvent> {
        let Some(tool) = data.pointer("/start/toolUse") else {
            // toolResult and image starts carry no answer content of ours.
            return Vec::new();
        };
        let call = self.calls;
        self.calls += 1;
        if let Some(index) = data.get("contentBlockIndex").and_then(Value::as_u64) {
            self.tool_blocks.insert(index, call);
        }
        let field = |k: &str| tool.get(k).and_then(Value::as_str).map(str::to_string);
        vec![StreamEvent::ToolCall {
            index: 0,
            call,
            id: field("toolUseId"),
            name: field("name"),
            arguments: String::new(),
        }]
    }

    fn block_delta(&mut self, data: &Value) -> Result<Vec<StreamEvent>, Malformed> {
        let delta = data.get("delta").ok_or_else(|| Malformed("contentBlockDelta without a delta".into()))?;
        if let Some(text) = delta.get("text") {
            let text = text.as_str().ok_or_else(|| Malformed("a text delta that is not a string".into()))?;
            return Ok(if text.is_empty() {
                Vec::new()
            } else {
                vec![StreamEvent::Text { index: 0, text: text.into() }]
            });
        }
        if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str) {
            let index = data.get("contentBlockIndex").and_then(Value::as_u64);
            // Input for a block whose start we never saw has no call to belong to.
            return Ok(match index.and_then(|i| self.tool_blocks.get(&i)) {
                Some(&call) if !input.is_empty() => {
                    vec![StreamEvent::ToolCall { index: 0, call, id: None, name: None, arguments: input.into() }]
                }
                _ => Vec::new(),
            });
        }
        // reasoningContent, citation, toolResult and image deltas.
        Ok(Vec::new())
    }
}

impl StreamDecoder for Decoder {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Result<Decoded, Malformed>>) {
        let mut frames = Vec::new();
        self.frames.feed(bytes, &mut frames);
        self.decode(frames, out);
    }

    fn finish(&mut self, out: &mut Vec<Result<Decoded, Malformed>>) {
        let mut frames = Vec::new();
        self.frames.finish(&mut frames);
        self.decode(frames, out);
        if self.stopped && !self.done && !self.failed {
            self.done = true;
            out.push(Ok(Decoded { events: vec![StreamEvent::Done], raw: Bytes::new() }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{FinishReason, Usage};
    use crate::wire::bedrock::eventstream::{event, exception};

    fn ev(kind: &str, json: &str) -> Vec<u8> {
        event(kind, json.as_bytes()).unwrap().to_vec()
    }

    fn tool_stream() -> Vec<u8> {
        [
            ev("messageStart", r#"{"p":"abcdefghijkl","role":"assistant"}"#),
            ev("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Let me check"},"p":"abc"}"#),
            ev("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":" é"}}"#),
            ev("contentBlockStop", r#"{"contentBlockIndex":0}"#),
            ev(
                "contentBlockStart",
                r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"tooluse_2","name":"get_weather"}}}"#,
            ),
            ev("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\":\"Os"}}}"#),
            ev("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"lo\"}"}}}"#),
            ev("contentBlockStop", r#"{"contentBlockIndex":1}"#),
            ev("messageStop", r#"{"stopReason":"tool_use"}"#),
            ev(
                "metadata",
                r#"{"usage":{"inputTokens":412,"outputTokens":35,"totalTokens":447},"metrics":{"latencyMs":812}}"#,
            ),
        ]
        .concat()
    }

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
        out.iter().filter_map(|d| d.as_ref().ok()).flat_map(|d| d.events.clone()).collect()
    }

    #[test]
    fn realistic_tool_stream() {
        let out = run(&[&tool_stream()]);
        assert_eq!(out.len(), 10, "one decoded item per frame, no synthetic Done");
        assert_eq!(
            events(&out),
            vec![
                StreamEvent::Start { id: None, model: None },
                StreamEvent::Text { index: 0, text: "Let me check".into() },
                StreamEvent::Text { index: 0, text: " é".into() },
                StreamEvent::ToolCall {
                    index: 0,
                    call: 0,
                    id: Some("tooluse_2".into()),
                    name: Some("get_weather".into()),
                    arguments: String::new()
                },
                StreamEvent::ToolCall { index: 0, call: 0, id: None, name: None, arguments: "{\"city\":\"Os".into() },
                StreamEvent::ToolCall { index: 0, call: 0, id: None, name: None, arguments: "lo\"}".into() },
                StreamEvent::Finish { index: 0, reason: FinishReason::ToolCalls },
                StreamEvent::Usage(Usage { input_tokens: 412, output_tokens: 35, ..Default::default() }),
                StreamEvent::Done,
            ]
        );
        // Each item keeps its frame's bytes.
        let first = out[0].as_ref().unwrap();
        assert_eq!(first.raw, ev("messageStart", r#"{"p":"abcdefghijkl","role":"assistant"}"#));
    }

    #[test]
    fn split_at_every_byte_gives_identical_events() {
        let s = tool_stream();
        let whole = run(&[&s]);
        for i in 0..=s.len() {
            let (a, b) = s.split_at(i);
            assert_eq!(run(&[a, b]), whole, "split at {i}");
        }
    }

    #[test]
    fn done_at_end_of_input_when_metadata_is_missing() {
        let s = [
            ev("messageStart", r#"{"role":"assistant"}"#),
            ev("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#),
            ev("messageStop", r#"{"stopReason":"end_turn"}"#),
        ]
        .concat();
        let out = run(&[&s]);
        assert_eq!(out.last().unwrap().as_ref().unwrap().events, vec![StreamEvent::Done]);
        assert!(out.last().unwrap().as_ref().unwrap().raw.is_empty());
        // Without messageStop: no Done (a truncated stream).
        let s = [
            ev("messageStart", r#"{"role":"assistant"}"#),
            ev("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#),
        ]
        .concat();
        assert!(!events(&run(&[&s])).contains(&StreamEvent::Done));
    }

    #[test]
    fn exceptions_become_classified_errors() {
        let s = [
            ev("messageStart", r#"{"role":"assistant"}"#),
            ev("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#),
            exception("throttlingException", br#"{"message":"Too many tokens, please wait before trying again."}"#)
                .unwrap()
                .to_vec(),
        ]
        .concat();
        let evs = events(&run(&[&s]));
        match evs.last() {
            Some(StreamEvent::Error(f)) => assert_eq!(f.class, FailureClass::RateLimited),
            other => panic!("{other:?}"),
        }
        let s = exception("modelStreamErrorException", br#"{"message":"boom","originalStatusCode":500}"#).unwrap();
        assert!(matches!(&events(&run(&[&s]))[..], [StreamEvent::Error(f)] if f.class == FailureClass::Overloaded));
        // The `error` message type carries its code in headers.
        use crate::wire::bedrock::eventstream::{encode, HeaderValue};
        let s = encode(
            &[
                (":message-type", HeaderValue::String("error".into())),
                (":error-code", HeaderValue::String("ThrottlingException".into())),
                (":error-message", HeaderValue::String("slow down".into())),
            ],
            b"",
        )
        .unwrap();
        match &events(&run(&[&s]))[..] {
            [StreamEvent::Error(f)] => {
                assert_eq!(f.class, FailureClass::RateLimited);
                assert!(f.message.contains("slow down"), "{}", f.message);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_exception_after_message_stop_leaves_no_done() {
        let s = [
            ev("messageStart", r#"{"role":"assistant"}"#),
            ev("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#),
            ev("messageStop", r#"{"stopReason":"end_turn"}"#),
            exception("internalServerException", br#"{"message":"oops"}"#).unwrap().to_vec(),
        ]
        .concat();
        assert!(!events(&run(&[&s])).contains(&StreamEvent::Done));
    }

    #[test]
    fn bad_crc_frames_are_skipped_and_counted() {
        let mut bad = ev("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"lost"}}"#);
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        let s = [
            ev("messageStart", r#"{"role":"assistant"}"#),
            bad,
            ev("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"kept"}}"#),
            ev("messageStop", r#"{"stopReason":"end_turn"}"#),
            ev("metadata", r#"{"usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2}}"#),
        ]
        .concat();
        let out = run(&[&s]);
        assert_eq!(out.iter().filter(|d| d.is_err()).count(), 1);
        let evs = events(&out);
        assert!(evs.contains(&StreamEvent::Text { index: 0, text: "kept".into() }));
        assert!(!evs.contains(&StreamEvent::Text { index: 0, text: "lost".into() }));
        assert_eq!(evs.last(), Some(&StreamEvent::Done));
    }

    #[test]
    fn lost_framing_is_an_error_not_a_hang() {
        let mut s = ev("messageStart", r#"{"role":"assistant"}"#);
        s.extend_from_slice(b"garbage that is not a prelude at all");
        s.extend_from_slice(&ev("messageStop", r#"{"stopReason":"end_turn"}"#));
        let out = run(&[&s]);
        assert_eq!(out.iter().filter(|d| d.is_err()).count(), 1);
        match events(&out).last() {
            Some(StreamEvent::Error(f)) => {
                assert_eq!((f.class, f.detail), (FailureClass::InvalidResponse, Some("malformed_stream")))
            }
            other => panic!("{other:?}"),
        }
        assert!(!events(&out).contains(&StreamEvent::Done));
    }

    #[test]
    fn malformed_payloads_and_unknown_events() {
        let s = [
            ev("contentBlockDelta", "not json"),
            ev("contentBlockDelta", "[1]"),
            ev("contentBlockDelta", r#"{"contentBlockIndex":0}"#),
            ev("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":3}}"#),
            ev("somethingNew", r#"{"x":1}"#),
            ev("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"hmm"}}}"#),
            ev("contentBlockDelta", r#"{"contentBlockIndex":7,"delta":{"toolUse":{"input":"{}"}}}"#),
            ev("contentBlockStart", r#"{"contentBlockIndex":2,"start":{"image":{"format":"png"}}}"#),
        ]
        .concat();
        let out = run(&[&s]);
        assert_eq!(out.iter().filter(|d| d.is_err()).count(), 4);
        assert!(events(&out).is_empty());
    }
}
