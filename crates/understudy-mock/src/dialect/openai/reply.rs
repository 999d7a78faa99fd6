//! OpenAI answers: `chat.completion` JSON and `chat.completion.chunk` SSE, and the model list.

use bytes::{BufMut, BytesMut};
use http::StatusCode;
use serde::Serialize;
use serde_json::json;

use super::super::{sse, Id, Parsed, Tri};
use super::errors::with_request_id;
use crate::answer::{script, Answer, Finish, SseFrames, StreamFaults};
use crate::http::{json_response, response, Resp};

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u32,
    audio_tokens: u32,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u32,
    audio_tokens: u32,
    accepted_prediction_tokens: u32,
    rejected_prediction_tokens: u32,
}

fn usage(a: &Answer) -> Usage {
    let completion = a.completion_tokens();
    Usage {
        prompt_tokens: a.prompt_tokens,
        completion_tokens: completion,
        total_tokens: a.prompt_tokens.saturating_add(completion),
        prompt_tokens_details: PromptDetails { cached_tokens: 0, audio_tokens: 0 },
        completion_tokens_details: CompletionDetails {
            reasoning_tokens: 0,
            audio_tokens: 0,
            accepted_prediction_tokens: 0,
            rejected_prediction_tokens: 0,
        },
    }
}

fn finish_reason(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolCall => "tool_calls",
        Finish::ContentFilter | Finish::Blocked(_) => "content_filter",
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    id: Id,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: Usage,
    service_tier: &'static str,
    system_fingerprint: &'static str,
    /// Azure only.
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_filter_results: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: OutMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
    /// Azure only.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_filter_results: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: Option<()>,
    annotations: [(); 0],
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCall<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: Id,
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    arguments: &'static str,
}

/// Azure's content-filter annotations: every category `safe`, or violence filtered when the
/// answer was.
fn filter_results(filtered: bool) -> serde_json::Value {
    let safe = json!({"filtered": false, "severity": "safe"});
    let violence = if filtered { json!({"filtered": true, "severity": "medium"}) } else { safe.clone() };
    json!({"hate": safe, "self_harm": safe, "sexual": safe, "violence": violence})
}

fn prompt_filter_results() -> serde_json::Value {
    json!([{"prompt_index": 0, "content_filter_results": filter_results(false)}])
}

pub(crate) fn answer(a: &Answer, parsed: &Parsed<'_>, faults: &StreamFaults) -> Resp {
    answer_as(a, parsed, faults, false)
}

/// Azure OpenAI's variant: content-filter annotations, and a first stream chunk with
/// `choices: []` that carries only `prompt_filter_results`.
pub(crate) fn answer_azure(a: &Answer, parsed: &Parsed<'_>, faults: &StreamFaults) -> Resp {
    answer_as(a, parsed, faults, true)
}

fn answer_as(a: &Answer, parsed: &Parsed<'_>, faults: &StreamFaults, azure: bool) -> Resp {
    let resp = if parsed.stream {
        let frames = StreamFrames { a, include_usage: parsed.include_usage, azure };
        response(StatusCode::OK, "text/event-stream; charset=utf-8", script(&frames, faults))
    } else {
        let tool_calls = a.tool.as_deref().map(|name| {
            [ToolCall { id: Id("call_", a.id), kind: "function", function: Function { name, arguments: "{}" } }]
        });
        let content = match a.finish {
            Finish::ToolCall | Finish::ContentFilter | Finish::Blocked(_) => None,
            Finish::Stop | Finish::Length => Some(a.text()),
        };
        let body = Completion {
            id: Id("chatcmpl-", a.id),
            object: "chat.completion",
            created: a.created,
            model: &a.model,
            choices: [Choice {
                index: 0,
                message: OutMessage { role: "assistant", content, refusal: None, annotations: [], tool_calls },
                logprobs: None,
                finish_reason: finish_reason(a.finish),
                content_filter_results: azure.then(|| filter_results(a.finish == Finish::ContentFilter)),
            }],
            usage: usage(a),
            service_tier: "default",
            system_fingerprint: "fp_mock",
            prompt_filter_results: azure.then(prompt_filter_results),
        };
        json_response(StatusCode::OK, &body)
    };
    with_request_id(resp, a.id)
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: Id,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Tri::is_skip")]
    usage: Tri<Usage>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Tri::is_skip")]
    content: Tri<&'a str>,
    #[serde(skip_serializing_if = "Tri::is_skip")]
    refusal: Tri<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[DeltaTool<'a>; 1]>,
}

const EMPTY_DELTA: Delta<'static> = Delta { role: None, content: Tri::Skip, refusal: Tri::Skip, tool_calls: None };

#[derive(Serialize)]
struct DeltaTool<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Id>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: DeltaFunction<'a>,
}

#[derive(Serialize)]
struct DeltaFunction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

struct StreamFrames<'a> {
    a: &'a Answer,
    include_usage: bool,
    azure: bool,
}

impl StreamFrames<'_> {
    fn frame(&self, buf: &mut BytesMut, delta: Delta<'_>, finish: Option<&'static str>) {
        let choices = [ChunkChoice { index: 0, delta, logprobs: None, finish_reason: finish }];
        let usage = if self.include_usage { Tri::Null } else { Tri::Skip };
        sse(buf, None, &self.chunk(&choices, usage), b"\n");
    }

    fn chunk<'c>(&'c self, choices: &'c [ChunkChoice<'c>], usage: Tri<Usage>) -> Chunk<'c> {
        Chunk {
            id: Id("chatcmpl-", self.a.id),
            object: "chat.completion.chunk",
            created: self.a.created,
            model: &self.a.model,
            system_fingerprint: "fp_mock",
            choices,
            usage,
        }
    }

    fn has_text(&self) -> bool {
        matches!(self.a.finish, Finish::Stop | Finish::Length)
    }
}

impl SseFrames for StreamFrames<'_> {
    fn head(&self, buf: &mut BytesMut) {
        if self.azure {
            let prelude = json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                                 "prompt_filter_results": prompt_filter_results()});
            sse(buf, None, &prelude, b"\n");
        }
        let content = if self.has_text() { Tri::Val("") } else { Tri::Null };
        let delta = Delta { role: Some("assistant"), content, refusal: Tri::Null, tool_calls: None };
        self.frame(buf, delta, None);
    }

    fn chunks(&self) -> usize {
        if self.a.tool.is_some() {
            2
        } else {
            self.a.chunk_count()
        }
    }

    fn chunk(&self, i: usize, buf: &mut BytesMut) {
        let Some(name) = self.a.tool.as_deref() else {
            let delta = Delta { content: Tri::Val(self.a.chunk(i)), ..EMPTY_DELTA };
            return self.frame(buf, delta, None);
        };
        // The first fragment names the call; the next carries the arguments.
        let tool = if i == 0 {
            DeltaTool {
                index: 0,
                id: Some(Id("call_", self.a.id)),
                kind: Some("function"),
                function: DeltaFunction { name: Some(name), arguments: "" },
            }
        } else {
            DeltaTool { index: 0, id: None, kind: None, function: DeltaFunction { name: None, arguments: "{}" } }
        };
        self.frame(buf, Delta { tool_calls: Some([tool]), ..EMPTY_DELTA }, None);
    }

    fn malformed(&self, buf: &mut BytesMut) {
        buf.put_slice(b"data: {\"choices\":[{\n\n");
    }

    fn error(&self, buf: &mut BytesMut) {
        let err = json!({"error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error", "param": null, "code": null}});
        sse(buf, None, &err, b"\n");
    }

    fn tail(&self, buf: &mut BytesMut, terminator: bool) {
        self.frame(buf, EMPTY_DELTA, Some(finish_reason(self.a.finish)));
        if self.include_usage {
            sse(buf, None, &self.chunk(&[], Tri::Val(usage(self.a))), b"\n");
        }
        if terminator {
            buf.put_slice(b"data: [DONE]\n\n");
        }
    }
}

pub(crate) fn models(models: &[String], request_id: u64) -> Resp {
    let data: Vec<_> = models
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_715_367_049, "owned_by": "system"}))
        .collect();
    with_request_id(json_response(StatusCode::OK, &json!({"object": "list", "data": data})), request_id)
}
