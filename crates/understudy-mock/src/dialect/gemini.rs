//! Gemini API v1beta: `POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse` (CRLF-framed `data:` events, no `[DONE]`) and
//! `GET /v1beta/models`.

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, BytesMut};
use http::header::HeaderMap;
use http::StatusCode;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{sse, AuthFailure, ErrorSpec, Id, Invalid, Parsed};
use crate::answer::{script, Answer, Finish, SseFrames, StreamFaults};
use crate::body::MockBody;
use crate::fault::ErrorKind;
use crate::http::{format_secs, query_param, response, retry_after_secs, to_bytes, Resp};
use crate::parse::{first_unknown_top_level, FirstUnknown, KeyList, Str, Words};

const JSON_UTF8: &str = "application/json; charset=UTF-8";
const CRLF: &[u8] = b"\r\n";

struct TopLevel;

impl KeyList for TopLevel {
    const KEYS: &'static [&'static str] = &[
        "contents",
        "tools",
        "toolconfig",
        "safetysettings",
        "systeminstruction",
        "generationconfig",
        "cachedcontent",
        "model",
    ];
    const NORMALISE: bool = true;
}

struct GenerationConfig;

impl KeyList for GenerationConfig {
    const KEYS: &'static [&'static str] = &[
        "stopsequences",
        "responsemimetype",
        "responseschema",
        "responsejsonschema",
        "responsemodalities",
        "candidatecount",
        "maxoutputtokens",
        "temperature",
        "topp",
        "topk",
        "seed",
        "presencepenalty",
        "frequencypenalty",
        "responselogprobs",
        "logprobs",
        "enableenhancedcivicanswers",
        "speechconfig",
        "thinkingconfig",
        "imageconfig",
        "mediaresolution",
    ];
    const NORMALISE: bool = true;
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateRequest<'a> {
    #[serde(borrow)]
    contents: Option<Vec<Content<'a>>>,
    #[serde(alias = "system_instruction")]
    system_instruction: Option<Words>,
    #[serde(borrow)]
    tools: Option<Vec<Tool<'a>>>,
    #[serde(alias = "tool_config")]
    tool_config: Option<Value>,
    #[serde(alias = "generation_config")]
    generation_config: Option<FirstUnknown<GenerationConfig>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow)]
    role: Option<Str<'a>>,
    parts: Option<Parts>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tool<'a> {
    #[serde(borrow, alias = "function_declarations")]
    function_declarations: Option<Vec<Named<'a>>>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    name: Option<Str<'a>>,
}

/// A `parts` list: how many parts and how many words, without keeping them.
#[derive(Clone, Copy)]
struct Parts {
    len: usize,
    words: u32,
}

impl<'de> Deserialize<'de> for Parts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Parts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of parts")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parts, A::Error> {
                let mut parts = Parts { len: 0, words: 0 };
                while let Some(Words(w)) = seq.next_element()? {
                    parts.len += 1;
                    parts.words = parts.words.saturating_add(w);
                }
                Ok(parts)
            }
        }
        d.deserialize_seq(V)
    }
}

/// Parses the body; the model and the stream flag come from the URL, set by the router.
pub(crate) fn parse(body: &[u8], lenient: bool) -> Result<Parsed<'_>, Invalid> {
    let req: GenerateRequest<'_> =
        serde_json::from_slice(body).map_err(|e| Invalid::new(format!("Invalid JSON payload received. {e}")))?;
    let invalid = if lenient { None } else { unknown_fields(body, &req) };
    let invalid = invalid.or_else(|| validate(&req));
    let prompt_words = req
        .contents
        .iter()
        .flatten()
        .filter_map(|c| c.parts)
        .fold(req.system_instruction.map_or(0, |w| w.0), |n, p| {
            n.saturating_add(p.words)
        });
    let tool = tool_to_call(req.tools, req.tool_config.as_ref());
    Ok(Parsed {
        model: None,
        stream: false,
        include_usage: false,
        prompt_words,
        tool,
        invalid,
    })
}

/// The real API refuses unknown fields (a gateway leaking OpenAI fields is a translation bug).
fn unknown_fields(body: &[u8], req: &GenerateRequest<'_>) -> Option<Invalid> {
    if let Some(key) = first_unknown_top_level::<TopLevel>(body) {
        return Some(Invalid::new(format!(
            "Invalid JSON payload received. Unknown name \"{key}\": Cannot find field."
        )));
    }
    let key = req.generation_config.as_ref().and_then(|g| g.key())?;
    Some(Invalid::new(format!(
        "Invalid JSON payload received. Unknown name \"{key}\" at 'generation_config': Cannot find field."
    )))
}

fn validate(req: &GenerateRequest<'_>) -> Option<Invalid> {
    let contents = req.contents.as_deref().unwrap_or(&[]);
    if contents.is_empty() {
        return Some(Invalid::new(
            "* GenerateContentRequest.contents: contents is not specified\n",
        ));
    }
    for (i, c) in contents.iter().enumerate() {
        if !matches!(c.role.as_deref(), Some("user" | "model")) {
            return Some(Invalid::new("Please use a valid role: user, model."));
        }
        if c.parts.is_none_or(|p| p.len == 0) {
            return Some(Invalid::new(format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
            )));
        }
    }
    None
}

/// Mode `NONE` calls nothing; `ANY` with `allowedFunctionNames` calls the first allowed.
fn tool_to_call<'a>(tools: Option<Vec<Tool<'a>>>, config: Option<&Value>) -> Option<Str<'a>> {
    let first = tools?
        .into_iter()
        .flat_map(|t| t.function_declarations.unwrap_or_default())
        .find_map(|n| n.name)?;
    let calling = config.and_then(|c| {
        c.get("functionCallingConfig")
            .or_else(|| c.get("function_calling_config"))
    });
    if let Some(calling) = calling {
        if calling.get("mode").and_then(Value::as_str) == Some("NONE") {
            return None;
        }
        let allowed = calling
            .get("allowedFunctionNames")
            .or_else(|| calling.get("allowed_function_names"));
        if let Some(name) = allowed.and_then(|a| a.get(0)).and_then(Value::as_str) {
            return Some(Str(name.to_string().into()));
        }
    }
    Some(first)
}

/// `x-goog-api-key`, else the `?key=` query parameter.
pub(crate) fn api_key<'h>(headers: &'h HeaderMap, query: Option<&'h str>) -> Option<Cow<'h, str>> {
    if let Some(key) = headers.get("x-goog-api-key") {
        return key.to_str().ok().map(Cow::Borrowed);
    }
    query_param(query, "key")
}

fn error_json(status: StatusCode, name: &str, message: &str, details: Vec<Value>) -> Resp {
    let mut error = json!({"code": status.as_u16(), "message": message, "status": name});
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    response(status, JSON_UTF8, MockBody::full(to_bytes(&json!({ "error": error }))))
}

fn error_info(reason: &str) -> Value {
    json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com",
           "metadata": {"service": "generativelanguage.googleapis.com"}})
}

fn invalid_key() -> Resp {
    let message = "API key not valid. Please pass a valid API key.";
    let localized =
        json!({"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message});
    error_json(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        message,
        vec![error_info("API_KEY_INVALID"), localized],
    )
}

pub(crate) fn auth_error(failure: AuthFailure, _spec: &ErrorSpec<'_>) -> Resp {
    match failure {
        AuthFailure::Invalid => invalid_key(),
        AuthFailure::Missing | AuthFailure::MissingVersion => error_json(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key \
             or other form of API consumer identity to call this API.",
            Vec::new(),
        ),
    }
}

pub(crate) fn invalid(inv: &Invalid) -> Resp {
    error_json(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", &inv.message, Vec::new())
}

/// The canonical google.rpc code name Google uses for an HTTP status.
fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if s >= 500 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

pub(crate) fn error(spec: &ErrorSpec<'_>) -> Resp {
    let Some(kind) = spec.kind else {
        let status = spec
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error_json(
            status,
            status_name(status),
            &format!("Mock upstream error: HTTP {status}"),
            Vec::new(),
        );
    };
    let simple = |status: StatusCode, message: &str| error_json(status, status_name(status), message, Vec::new());
    match kind {
        ErrorKind::InvalidKey => invalid_key(),
        ErrorKind::AccountDeactivated => error_json(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Permission denied: Consumer 'api_key:mock' has been suspended.",
            vec![error_info("CONSUMER_SUSPENDED")],
        ),
        ErrorKind::Forbidden => simple(StatusCode::FORBIDDEN, "The caller does not have permission"),
        ErrorKind::ModelNotFound => simple(
            StatusCode::NOT_FOUND,
            &format!(
                "models/{} is not found for API version v1beta, or is not supported for generateContent. Call \
                 ListModels to see the list of available models and their supported methods.",
                spec.model
            ),
        ),
        ErrorKind::ContextLength => simple(
            StatusCode::BAD_REQUEST,
            "The input token count (3475108) exceeds the maximum number of tokens allowed (1048576).",
        ),
        // Normally answered as a blocked prompt (HTTP 200); this body is used only with `status`.
        ErrorKind::ContentPolicy => simple(
            StatusCode::BAD_REQUEST,
            "The request was blocked by the content policy.",
        ),
        ErrorKind::RateLimit => quota(spec, "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
        ErrorKind::QuotaExhausted => quota(spec, "GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
        ErrorKind::Server => simple(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error has occurred. Please retry or report in \
             https://developers.generativeai.google/guide/troubleshooting",
        ),
        ErrorKind::BadGateway => response(
            StatusCode::BAD_GATEWAY,
            "text/html; charset=UTF-8",
            MockBody::full(GFE_502),
        ),
        ErrorKind::Unavailable => simple(StatusCode::SERVICE_UNAVAILABLE, "The service is currently unavailable."),
        ErrorKind::Overloaded => simple(
            StatusCode::SERVICE_UNAVAILABLE,
            "The model is overloaded. Please try again later.",
        ),
        ErrorKind::BadRequest => simple(StatusCode::BAD_REQUEST, "Request contains an invalid argument."),
        ErrorKind::Timeout => simple(
            StatusCode::GATEWAY_TIMEOUT,
            "Deadline expired before operation could complete.",
        ),
    }
}

/// The front end's own HTML error page (not JSON).
const GFE_502: &str =
    "<!DOCTYPE html>\n<html lang=en>\n<meta charset=utf-8>\n<title>Error 502 (Server Error)</title>\n\
<p><b>502.</b> <ins>That's an error.</ins>\n<p>The server encountered a temporary error and could not complete your \
request.<p>Please try again in 30 seconds. <ins>That's all we know.</ins>\n";

/// 429 RESOURCE_EXHAUSTED naming the quota (`...PerDay...` means a daily cap), with
/// RetryInfo when the fault gives a delay.
fn quota(spec: &ErrorSpec<'_>, quota_id: &str) -> Resp {
    let secs = spec.retry_after.and_then(retry_after_secs);
    let hint = secs
        .map(|s| format!(" Please retry in {}.", format_secs(s)))
        .unwrap_or_default();
    let message = format!(
        "You exceeded your current quota, please check your plan and billing details. For more information on this \
         error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.{hint}"
    );
    let mut details = vec![
        json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": quota_id,
            "quotaDimensions": {"location": "global", "model": spec.model},
            "quotaValue": "15"}]}),
        json!({"@type": "type.googleapis.com/google.rpc.Help", "links": [{
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}),
    ];
    if let Some(s) = secs {
        details.push(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format_secs(s)}));
    }
    error_json(StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED", &message, details)
}

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
        prompt_tokens_details: [ModalityCount {
            modality: "TEXT",
            token_count: a.prompt_tokens,
        }],
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
    let rating = |category, probability, blocked| SafetyRating {
        category,
        probability,
        blocked,
    };
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
            content: CandidateContent {
                parts: part.map(|p| [p]),
                role: "model",
            },
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
        Some(name) => Some(Part::FunctionCall {
            name,
            args: EmptyObject {},
        }),
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
        None => to_bytes(&candidate_response(
            a,
            whole_part(a),
            Some(finish_reason(a.finish)),
            a.completion_tokens(),
        )),
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
            Some(name) => Part::FunctionCall {
                name,
                args: EmptyObject {},
            },
            None => Part::Text(a.chunk(i)),
        };
        // Usage on every event is cumulative, as the real stream reports it.
        sse(
            buf,
            None,
            &candidate_response(a, Some(part), None, a.completion_tokens_after(i + 1)),
            CRLF,
        );
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
                let last = candidate_response(
                    a,
                    Some(Part::Text("")),
                    Some(finish_reason(a.finish)),
                    a.completion_tokens(),
                );
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
    response(
        StatusCode::OK,
        JSON_UTF8,
        MockBody::full(to_bytes(&json!({ "models": list }))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_of(body: &str) -> String {
        parse(body.as_bytes(), false)
            .unwrap()
            .invalid
            .map(|i| i.message)
            .unwrap_or_default()
    }

    #[test]
    fn extracts_words_and_tools() {
        let p = parse(
            br#"{"systemInstruction":{"parts":[{"text":"be brief"}]},
                "contents":[{"role":"user","parts":[{"text":"hello there"}]}],
                "tools":[{"functionDeclarations":[{"name":"get_weather"}]}],
                "generation_config":{"max_output_tokens":5}}"#,
            false,
        )
        .unwrap();
        assert_eq!(p.prompt_words, 4);
        assert_eq!(p.tool.as_deref(), Some("get_weather"));
        assert_eq!(p.invalid, None);
    }

    #[test]
    fn validation_messages() {
        let ok = r#"{"role":"user","parts":[{"text":"x"}]}"#;
        let cases = [
            ("{}".to_string(), "contents is not specified"),
            (r#"{"contents":[]}"#.to_string(), "contents is not specified"),
            (
                r#"{"contents":[{"role":"assistant","parts":[{"text":"x"}]}]}"#.to_string(),
                "valid role: user, model",
            ),
            (
                r#"{"contents":[{"parts":[{"text":"x"}]}]}"#.to_string(),
                "valid role: user, model",
            ),
            (
                r#"{"contents":[{"role":"user","parts":[]}]}"#.to_string(),
                "contents[0].parts",
            ),
            (
                format!(r#"{{"contents":[{ok}],"messages":[]}}"#),
                "Unknown name \"messages\"",
            ),
            (
                format!(r#"{{"contents":[{ok}],"generationConfig":{{"max_tokens":3}}}}"#),
                "at 'generation_config'",
            ),
        ];
        for (body, want) in cases {
            let got = invalid_of(&body);
            assert!(got.contains(want), "{body}: {got}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse(&bytes, false);
        }
    }
}
