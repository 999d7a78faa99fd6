//! The answer the mock gives (dialect-neutral): its words, finish kind, tool call and usage,
//! and the stream-shaping part of a fault.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;

use crate::body::{MockBody, ScriptBuilder};
use crate::fault::Fault;

const DEFAULT_TEXT: &str = "Simulated answer from {model}.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    Stop,
    Length,
    ToolCall,
    ContentFilter,
    /// Gemini only: a blocked prompt (HTTP 200, no candidates) with this `blockReason`.
    Blocked(&'static str),
}

pub(crate) struct Answer {
    /// Base model name, echoed in responses.
    pub model: String,
    /// Unique per response; dialects format their ids from it.
    pub id: u64,
    pub created: u64,
    text: String,
    /// End offset of each content chunk in `text` (a chunk carries its leading space).
    ends: Vec<usize>,
    pub tool: Option<String>,
    pub finish: Finish,
    pub prompt_tokens: u32,
}

pub(crate) struct AnswerSpec<'a> {
    pub base: &'a str,
    pub config_text: Option<&'a str>,
    pub fault: &'a Fault,
    /// Whether the failure part of the fault applies (see `Fault::error_rate`).
    pub failing: bool,
    pub prompt_words: u32,
    /// The tool the request offers (and allows) the model to call.
    pub tool: Option<&'a str>,
    pub id: u64,
    /// Set for Gemini's `content_policy`, which is a blocked prompt rather than an HTTP error.
    pub blocked: Option<&'static str>,
}

impl Answer {
    pub fn build(spec: AnswerSpec<'_>) -> Answer {
        let fault = spec.fault;
        let mut answer = Answer {
            model: spec.base.to_string(),
            id: spec.id,
            created: unix_now(),
            text: String::new(),
            ends: Vec::new(),
            tool: None,
            finish: Finish::Stop,
            prompt_tokens: spec.prompt_words.max(1),
        };
        if let Some(reason) = spec.blocked {
            answer.finish = Finish::Blocked(reason);
        } else if spec.failing && fault.content_filter {
            answer.finish = Finish::ContentFilter;
        } else if let Some(tool) = spec.tool.filter(|_| fault.tool_call) {
            answer.tool = Some(tool.to_string());
            answer.finish = Finish::ToolCall;
        } else {
            if !(spec.failing && fault.empty) {
                let template = fault.text.as_deref().or(spec.config_text).unwrap_or(DEFAULT_TEXT);
                answer.write_words(template, spec.base, fault.chunks);
            }
            if spec.failing && fault.truncated {
                answer.finish = Finish::Length;
            }
        }
        answer
    }

    /// Writes the template's words single-spaced (cycled to `chunks` words when given).
    fn write_words(&mut self, template: &str, base: &str, chunks: Option<u32>) {
        let words = template.split_whitespace();
        let wanted = match chunks {
            Some(n) => n as usize,
            None => words.clone().count(),
        };
        self.text.reserve(template.len() + base.len() + 8);
        for word in words.cycle().take(wanted) {
            if !self.text.is_empty() {
                self.text.push(' ');
            }
            let mut parts = word.split("{model}");
            if let Some(first) = parts.next() {
                self.text.push_str(first);
            }
            for rest in parts {
                self.text.push_str(base);
                self.text.push_str(rest);
            }
            self.ends.push(self.text.len());
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn chunk_count(&self) -> usize {
        self.ends.len()
    }

    /// Content chunk `i` (with its leading space after the first).
    pub fn chunk(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends.get(i - 1).copied().unwrap_or(0) };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.text.get(start..end).unwrap_or("")
    }

    /// Completion tokens: the answer's words, or 1 for a tool call.
    pub fn completion_tokens(&self) -> u32 {
        if self.tool.is_some() {
            1
        } else {
            u32::try_from(self.ends.len()).unwrap_or(u32::MAX)
        }
    }

    /// Output tokens after `chunks_sent` content chunks (streams report cumulative usage).
    pub fn completion_tokens_after(&self, chunks_sent: usize) -> u32 {
        if self.tool.is_some() {
            1
        } else {
            u32::try_from(chunks_sent.min(self.ends.len())).unwrap_or(u32::MAX)
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The stream-shaping part of a fault, with the failure parts already gated by `error_rate`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StreamFaults {
    pub ttft: Option<Duration>,
    pub chunk_delay: Option<Duration>,
    pub cut_after: Option<usize>,
    pub stall_after: Option<usize>,
    pub malformed_at: Option<usize>,
    pub error_after: Option<usize>,
    pub no_done: bool,
}

impl StreamFaults {
    pub fn new(fault: &Fault, failing: bool) -> StreamFaults {
        let gate = |n: Option<u32>| n.filter(|_| failing).map(|n| n as usize);
        StreamFaults {
            ttft: fault.ttft,
            chunk_delay: fault.chunk_delay,
            cut_after: gate(fault.cut_after),
            stall_after: gate(fault.stall_after),
            malformed_at: gate(fault.malformed_at),
            error_after: gate(fault.error_after),
            no_done: failing && fault.no_done,
        }
    }
}

/// One dialect's SSE frames for an answer.
pub(crate) trait SseFrames {
    /// Frames sent at once with the headers (role chunk, message_start...).
    fn head(&self, buf: &mut BytesMut);
    fn chunks(&self) -> usize;
    fn chunk(&self, i: usize, buf: &mut BytesMut);
    /// A syntactically broken frame.
    fn malformed(&self, buf: &mut BytesMut);
    /// An in-band error event after which the stream ends.
    fn error(&self, buf: &mut BytesMut);
    /// Finish, usage and (with `terminator`) the end marker, given `sent` content chunks.
    fn tail(&self, buf: &mut BytesMut, terminator: bool);
}

/// Interleaves a dialect's frames with the stream faults.
pub(crate) fn script(frames: &impl SseFrames, f: &StreamFaults) -> MockBody {
    let mut b = ScriptBuilder::new();
    frames.head(b.buf());
    b.sleep(f.ttft);
    let n = frames.chunks();
    // A breakage scheduled past the last chunk happens after all content, before the tail.
    let at = |k: Option<usize>, i: usize| k.map(|k| k.min(n)) == Some(i);
    for i in 0..=n {
        if at(f.malformed_at, i) {
            frames.malformed(b.buf());
        }
        if at(f.cut_after, i) {
            b.cut();
            return b.finish();
        }
        if at(f.stall_after, i) {
            b.stall();
            return b.finish();
        }
        if at(f.error_after, i) {
            frames.error(b.buf());
            return b.finish();
        }
        if i == n {
            break;
        }
        if i > 0 {
            b.sleep(f.chunk_delay);
        }
        frames.chunk(i, b.buf());
    }
    frames.tail(b.buf(), !f.no_done);
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(fault: &Fault) -> AnswerSpec<'_> {
        AnswerSpec {
            base: "m",
            config_text: None,
            fault,
            failing: true,
            prompt_words: 0,
            tool: None,
            id: 1,
            blocked: None,
        }
    }

    #[test]
    fn default_text_names_the_model_one_word_per_chunk() {
        let a = Answer::build(spec(&Fault::default()));
        assert_eq!(a.text(), "Simulated answer from m.");
        assert_eq!(a.chunk_count(), 4);
        assert_eq!(a.chunk(0), "Simulated");
        assert_eq!(a.chunk(3), " m.");
        assert_eq!(a.completion_tokens(), 4);
        assert_eq!(a.prompt_tokens, 1);
    }

    #[test]
    fn chunks_cycles_words() {
        let f = Fault { chunks: Some(6), text: Some("a b".into()), ..Fault::default() };
        assert_eq!(Answer::build(spec(&f)).text(), "a b a b a b");
        let f = Fault { chunks: Some(0), ..Fault::default() };
        assert_eq!(Answer::build(spec(&f)).text(), "");
    }

    #[test]
    fn failure_parts_need_failing() {
        let f = Fault { empty: true, truncated: true, ..Fault::default() };
        let a = Answer::build(AnswerSpec { failing: false, ..spec(&f) });
        assert_eq!((a.finish, a.chunk_count()), (Finish::Stop, 4));
        let a = Answer::build(spec(&f));
        assert_eq!((a.finish, a.chunk_count()), (Finish::Length, 0));
    }

    #[test]
    fn tool_call_needs_an_offered_tool() {
        let f = Fault { tool_call: true, ..Fault::default() };
        assert_eq!(Answer::build(spec(&f)).finish, Finish::Stop);
        let a = Answer::build(AnswerSpec { tool: Some("get_weather"), ..spec(&f) });
        assert_eq!((a.finish, a.tool.as_deref()), (Finish::ToolCall, Some("get_weather")));
    }
}
