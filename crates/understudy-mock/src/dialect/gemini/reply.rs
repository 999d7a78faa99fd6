//! Gemini answers: `GenerateContentResponse` JSON, CRLF-framed SSE, blocked prompts, models.

use bytes::{BufMut, BytesMut};
use http::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};

use super::super::{sse, Id, Parsed};
use super::{CRLF, JSON_UTF8};
use crate::answer::{script, Answer, Finish, SseFrames, StreamFaults};
use crate::body::MockBody;
use crate::http::{response, to_bytes, Resp};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates: Option<[Candidate<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: UsageMetadata,
    model_version: &'a str,
    response_id: Id,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    content: CandidateContent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct CandidateContent<'a> {
    /// Left out for an empty answer, as the real API does (gateways must not index blindly).
    #[serde(skip_serializing_if = "Option::is_none")]
    parts: Option<[Part<'a>; 1]>,
    role: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Part<'a> {
    Text(&'a str),
    FunctionCall { name: &'a str, args: EmptyObject },
}

#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: &'static str,
    safety_ratings: [SafetyRating; 4],
}

#[derive(Serialize)]
struct SafetyRating {
    category: &'static str,
    probability: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    blocked: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates_token_count: Option<u32>,
    total_token_count: u32,
    prompt_tokens_details: [ModalityCount; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModalityCount {
    modality: &'static str,
    token_count: u32,
}

fn usage(a: &Answer, candidates: Option<u32>) -> UsageMetadata {
    UsageMetadata {
        prompt_token_count: a.prompt_tokens,
        candidates_token_count: candidates,
        total_token_count: a.prompt_tokens.saturating_add(candidates.unwrap_or(0)),
        prompt_tokens_details: [ModalityCount { modality: "TEXT", token_count: a.prompt_tokens }],
    }
}

/// Gemini reports a refused prompt as HTTP 200 without candidates.
fn block_reason(f: Finish) -> Option<&'static str> {
    match f {
        Finish::ContentFilter => Some("SAFETY"),
        Finish::Blocked(reason) => Some(reason),
        _ => None,
    }
}

fn blocked<'a>(a: &'a Answer, reason: &'static str) -> GenerateResponse<'a> {
    let rating = |category, probability, blocked| SafetyRating { category, probability, blocked };
    GenerateResponse {
        candidates: None,
        prompt_feedback: Some(PromptFeedback {
            block_reason: reason,
            safety_ratings: [
                rating("HARM_CATEGORY_SEXUALLY_EXPLICIT", "NEGLIGIBLE", false),
                rating("HARM_CATEGORY_HATE_SPEECH", "NEGLIGIBLE", false),
                rating("HARM_CATEGORY_HARASSMENT", "NEGLIGIBLE", false),
                rating("HARM_CATEGORY_DANGEROUS_CONTENT", "HIGH", true),
            ],
        }),
        usage_metadata: usage(a, None),
        model_version: &a.model,
        response_id: Id("", a.id),
    }
}

fn candidate_response<'a>(
    a: &'a Answer,
    part: Option<Part<'a>>,
    finish: Option<&'static str>,
    tokens: u32,
) -> GenerateResponse<'a> {
    GenerateResponse {
        candidates: Some([Candidate {
            content: CandidateContent { parts: part.map(|p| [p]), role: "model" },
            finish_reason: finish,
            index: 0,
        }]),
        prompt_feedback: None,
        usage_metadata: usage(a, Some(tokens)),
        model_version: &a.model,
        response_id: Id("", a.id),
    }
}

fn finish_reason(f: Finish) -> &'static str {
    match f {
        Finish::Length => "MAX_TOKENS",
        _ => "STOP",
    }
}

fn whole_part(a: &Answer) -> Option<Part<'_>> {
    match a.tool.as_deref() {
        Some(name) => Some(Part::FunctionCall { name, args: EmptyObject {} }),
        None if a.text().is_empty() => None,
        None => Some(Part::Text(a.text())),
    }
}

pub(crate) fn answer(a: &Answer, parsed: &Parsed<'_>, faults: &StreamFaults) -> Resp {
    if parsed.stream {
        return response(StatusCode::OK, "text/event-stream", script(&StreamFrames { a }, faults));
    }
    let body = match block_reason(a.finish) {
        Some(reason) => to_bytes(&blocked(a, reason)),
        None => to_bytes(&candidate_response(a, whole_part(a), Some(finish_reason(a.finish)), a.completion_tokens())),
    };
    response(StatusCode::OK, JSON_UTF8, MockBody::full(body))
}

struct StreamFrames<'a> {
    a: &'a Answer,
}

impl SseFrames for StreamFrames<'_> {
    /// Gemini sends no preamble: the first event already carries content.
    fn head(&self, _buf: &mut BytesMut) {}

    fn chunks(&self) -> usize {
        match (block_reason(self.a.finish), &self.a.tool) {
            (Some(_), _) => 0,
            (None, Some(_)) => 1,
            (None, None) => self.a.chunk_count(),
        }
    }

    fn chunk(&self, i: usize, buf: &mut BytesMut) {
        let a = self.a;
        let part = match a.tool.as_deref() {
            Some(name) => Part::FunctionCall { name, args: EmptyObject {} },
            None => Part::Text(a.chunk(i)),
        };
        // Usage on every event is cumulative, as the real stream reports it.
        sse(buf, None, &candidate_response(a, Some(part), None, a.completion_tokens_after(i + 1)), CRLF);
    }

    fn malformed(&self, buf: &mut BytesMut) {
        buf.put_slice(b"data: {\"candidates\":[{\"content\":\r\n\r\n");
    }

    fn error(&self, buf: &mut BytesMut) {
        let body = json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                                    "status": "UNAVAILABLE"}});
        sse(buf, None, &body, CRLF);
    }

    /// The last event carries `finishReason` and the final usage; `no_done` leaves it out.
    fn tail(&self, buf: &mut BytesMut, terminator: bool) {
        if !terminator {
            return;
        }
        let a = self.a;
        match block_reason(a.finish) {
            Some(reason) => sse(buf, None, &blocked(a, reason), CRLF),
            None => {
                let last =
                    candidate_response(a, Some(Part::Text("")), Some(finish_reason(a.finish)), a.completion_tokens());
                sse(buf, None, &last, CRLF);
            }
        }
    }
}

pub(crate) fn models(models: &[String]) -> Resp {
    let list: Vec<Value> = models
        .iter()
        .map(|id| {
            json!({"name": format!("models/{id}"), "version": "001", "displayName": id,
                   "description": "understudy mock model", "inputTokenLimit": 1_048_576, "outputTokenLimit": 65_536,
                   "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]})
        })
        .collect();
    response(StatusCode::OK, JSON_UTF8, MockBody::full(to_bytes(&json!({ "models": list }))))
}
