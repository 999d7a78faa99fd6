//! OpenAI Chat Completions: `POST /v1/chat/completions` (JSON and SSE) and `GET /v1/models`.

use bytes::{BufMut, BytesMut};
use http::header::HeaderMap;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{cdn_page, mask_key, sse, AuthFailure, ErrorSpec, Id, Invalid, Parsed, Tri};
use crate::answer::{script, Answer, Finish, SseFrames, StreamFaults};
use crate::body::MockBody;
use crate::fault::ErrorKind;
use crate::http::{format_secs, json_response, response, retry_after_secs, set_header, Resp};
use crate::parse::{Str, Words};

const ROLES: [&str; 6] = ["system", "developer", "user", "assistant", "tool", "function"];

#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(borrow)]
    model: Option<Str<'a>>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    #[serde(borrow)]
    tools: Option<Vec<Tool<'a>>>,
    tool_choice: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Option<Str<'a>>,
    content: Option<Words>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCallRef<'a>>>,
    #[serde(borrow)]
    tool_call_id: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct ToolCallRef<'a> {
    #[serde(borrow)]
    id: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow)]
    function: Option<Named<'a>>,
    #[serde(borrow)]
    custom: Option<Named<'a>>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    name: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

pub(crate) fn parse(body: &[u8]) -> Result<Parsed<'_>, Invalid> {
    let req: ChatRequest<'_> = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
    let invalid = validate(&req);
    let stream = req.stream.unwrap_or(false);
    let include_usage = stream
        && req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
    let prompt_words = req
        .messages
        .iter()
        .flatten()
        .filter_map(|m| m.content)
        .fold(0u32, |n, w| n.saturating_add(w.0));
    let tool = tool_to_call(req.tools, req.tool_choice.as_ref());
    Ok(Parsed {
        model: req.model,
        stream,
        include_usage,
        prompt_words,
        tool,
        invalid,
    })
}

fn json_error(e: &serde_json::Error) -> Invalid {
    if e.is_data() {
        return Invalid::new(format!("Invalid request body: {e}")).code("invalid_type");
    }
    Invalid::new(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP \
         library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you \
         have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
    )
}

fn validate(req: &ChatRequest<'_>) -> Option<Invalid> {
    if req.model.as_deref().is_none_or(str::is_empty) {
        return Some(Invalid::new("you must provide a model parameter"));
    }
    let Some(messages) = &req.messages else {
        return Some(
            Invalid::new("Missing required parameter: 'messages'.")
                .param("messages")
                .code("missing_required_parameter"),
        );
    };
    if messages.is_empty() {
        return Some(
            Invalid::new("[] is too short - 'messages'")
                .param("messages")
                .code("empty_array"),
        );
    }
    if let Some(bad) = validate_roles(messages) {
        return Some(bad);
    }
    if req.stream_options.is_some() && req.stream != Some(true) {
        return Some(
            Invalid::new("The 'stream_options' parameter is only allowed when 'stream' is enabled.")
                .param("stream_options"),
        );
    }
    None
}

/// Roles are known, and every assistant `tool_calls` id is answered by a `tool` message
/// before the next other message (a classic translation bug when tool results are merged).
fn validate_roles(messages: &[Message<'_>]) -> Option<Invalid> {
    let mut pending: Vec<&str> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let Some(role) = m.role.as_deref() else {
            return Some(
                Invalid::new(format!("Missing required parameter: 'messages[{i}].role'."))
                    .param(format!("messages[{i}].role"))
                    .code("missing_required_parameter"),
            );
        };
        if !ROLES.contains(&role) {
            return Some(
                Invalid::new(format!(
                    "Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', \
                     'tool', and 'developer'."
                ))
                .param(format!("messages[{i}].role"))
                .code("invalid_value"),
            );
        }
        if role == "tool" {
            let id = m.tool_call_id.as_deref().unwrap_or("");
            match pending.iter().position(|p| *p == id) {
                Some(p) => {
                    pending.swap_remove(p);
                }
                None => {
                    return Some(
                        Invalid::new(
                            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message \
                             with 'tool_calls'.",
                        )
                        .param(format!("messages.[{i}].role")),
                    )
                }
            }
            continue;
        }
        if !pending.is_empty() {
            return Some(unanswered(&pending, &format!("messages.[{i}].role")));
        }
        if role == "assistant" {
            pending = m.tool_calls.iter().flatten().filter_map(|c| c.id.as_deref()).collect();
        }
    }
    (!pending.is_empty()).then(|| unanswered(&pending, "messages"))
}

fn unanswered(ids: &[&str], param: &str) -> Invalid {
    Invalid::new(format!(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each \
         'tool_call_id'. The following tool_call_ids did not have response messages: {}",
        ids.join(", ")
    ))
    .param(param)
}

/// The named tool of `tool_choice`, else the first tool; none for `"none"` or no tools.
fn tool_to_call<'a>(tools: Option<Vec<Tool<'a>>>, choice: Option<&serde_json::Value>) -> Option<Str<'a>> {
    let tools = tools.filter(|t| !t.is_empty())?;
    match choice {
        Some(serde_json::Value::String(s)) if s == "none" => return None,
        Some(serde_json::Value::Object(o)) => {
            let named = o.get("function").and_then(|f| f.get("name")).and_then(|n| n.as_str());
            if let Some(name) = named {
                return Some(Str(name.to_string().into()));
            }
        }
        _ => {}
    }
    let first = tools.into_iter().next()?;
    first.function.or(first.custom).and_then(|n| n.name)
}

pub(crate) fn api_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

fn with_request_id(mut resp: Resp, request_id: u64) -> Resp {
    set_header(&mut resp, "x-request-id", format!("req_{request_id:032x}"));
    resp
}

fn error_body(
    status: StatusCode,
    message: &str,
    typ: &str,
    param: Option<&str>,
    code: Option<&str>,
    request_id: u64,
) -> Resp {
    let body = json!({"error": {"message": message, "type": typ, "param": param, "code": code}});
    with_request_id(json_response(status, &body), request_id)
}

pub(crate) fn auth_error(failure: AuthFailure, spec: &ErrorSpec<'_>) -> Resp {
    match failure {
        AuthFailure::Invalid => error(&ErrorSpec {
            kind: Some(ErrorKind::InvalidKey),
            status: None,
            ..*spec
        }),
        AuthFailure::Missing | AuthFailure::MissingVersion => error_body(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using \
             Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from \
             https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            None,
            spec.request_id,
        ),
    }
}

pub(crate) fn invalid(inv: &Invalid, request_id: u64) -> Resp {
    let (param, code) = (inv.param.as_deref(), inv.code);
    error_body(
        StatusCode::BAD_REQUEST,
        &inv.message,
        "invalid_request_error",
        param,
        code,
        request_id,
    )
}

pub(crate) fn error(spec: &ErrorSpec<'_>) -> Resp {
    let rid = spec.request_id;
    let model = spec.model;
    let Some(kind) = spec.kind else {
        let status = spec
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let typ = if status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        let message = format!("Mock upstream error: HTTP {status}");
        return error_body(status, &message, typ, None, None, rid);
    };
    let invalid_req = "invalid_request_error";
    match kind {
        ErrorKind::InvalidKey => {
            let message = format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                mask_key(spec.api_key)
            );
            error_body(
                StatusCode::UNAUTHORIZED,
                &message,
                invalid_req,
                None,
                Some("invalid_api_key"),
                rid,
            )
        }
        ErrorKind::AccountDeactivated => error_body(
            StatusCode::UNAUTHORIZED,
            "This key is associated with a deactivated account. If you feel this is an error, contact us through \
             our help center at help.openai.com.",
            invalid_req,
            None,
            Some("account_deactivated"),
            rid,
        ),
        ErrorKind::Forbidden => error_body(
            StatusCode::FORBIDDEN,
            "Country, region, or territory not supported",
            "request_forbidden",
            None,
            Some("unsupported_country_region_territory"),
            rid,
        ),
        ErrorKind::ModelNotFound => {
            let message = format!("The model `{model}` does not exist or you do not have access to it.");
            error_body(
                StatusCode::NOT_FOUND,
                &message,
                invalid_req,
                None,
                Some("model_not_found"),
                rid,
            )
        }
        ErrorKind::ContextLength => error_body(
            StatusCode::BAD_REQUEST,
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 \
             tokens. Please reduce the length of the messages.",
            invalid_req,
            Some("messages"),
            Some("context_length_exceeded"),
            rid,
        ),
        ErrorKind::ContentPolicy => error_body(
            StatusCode::BAD_REQUEST,
            "Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again \
             with a different prompt.",
            invalid_req,
            None,
            Some("invalid_prompt"),
            rid,
        ),
        ErrorKind::RateLimit => rate_limit(spec),
        ErrorKind::QuotaExhausted => error_body(
            StatusCode::TOO_MANY_REQUESTS,
            "You exceeded your current quota, please check your plan and billing details. For more information on \
             this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            None,
            Some("insufficient_quota"),
            rid,
        ),
        ErrorKind::Server => error_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            None,
            rid,
        ),
        ErrorKind::BadGateway => html(StatusCode::BAD_GATEWAY, rid),
        ErrorKind::Timeout => html(StatusCode::GATEWAY_TIMEOUT, rid),
        ErrorKind::Unavailable => error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable. Please try again later.",
            "service_unavailable_error",
            None,
            None,
            rid,
        ),
        ErrorKind::Overloaded => error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is overloaded, please try again later.",
            "service_unavailable_error",
            None,
            Some("server_is_overloaded"),
            rid,
        ),
        ErrorKind::BadRequest => error_body(
            StatusCode::BAD_REQUEST,
            "Unrecognized request argument supplied: mock_argument",
            invalid_req,
            None,
            None,
            rid,
        ),
    }
}

/// 429 with the "try again in" hint and `x-ratelimit-*` headers (reset only with a retry delay).
fn rate_limit(spec: &ErrorSpec<'_>) -> Resp {
    let secs = spec.retry_after.and_then(retry_after_secs);
    let hint = secs
        .map(|s| format!(" Please try again in {}.", format_secs(s)))
        .unwrap_or_default();
    let message = format!(
        "Rate limit reached for {} in organization org-mock on requests per min (RPM): Limit 500, Used 500, \
         Requested 1.{hint} Visit https://platform.openai.com/account/rate-limits to learn more.",
        spec.model
    );
    let mut resp = error_body(
        StatusCode::TOO_MANY_REQUESTS,
        &message,
        "requests",
        None,
        Some("rate_limit_exceeded"),
        spec.request_id,
    );
    set_header(&mut resp, "x-ratelimit-limit-requests", "500".into());
    set_header(&mut resp, "x-ratelimit-remaining-requests", "0".into());
    set_header(&mut resp, "x-ratelimit-limit-tokens", "30000".into());
    set_header(&mut resp, "x-ratelimit-remaining-tokens", "29000".into());
    if let Some(s) = secs {
        set_header(&mut resp, "x-ratelimit-reset-requests", format_secs(s));
        set_header(&mut resp, "x-ratelimit-reset-tokens", format_secs(s));
    }
    resp
}

fn html(status: StatusCode, rid: u64) -> Resp {
    with_request_id(response(status, "text/html", MockBody::full(cdn_page(status))), rid)
}

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
        prompt_tokens_details: PromptDetails {
            cached_tokens: 0,
            audio_tokens: 0,
        },
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
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: OutMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
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

pub(crate) fn answer(a: &Answer, parsed: &Parsed<'_>, faults: &StreamFaults) -> Resp {
    let resp = if parsed.stream {
        let frames = StreamFrames {
            a,
            include_usage: parsed.include_usage,
        };
        response(
            StatusCode::OK,
            "text/event-stream; charset=utf-8",
            script(&frames, faults),
        )
    } else {
        let tool_calls = a.tool.as_deref().map(|name| {
            [ToolCall {
                id: Id("call_", a.id),
                kind: "function",
                function: Function { name, arguments: "{}" },
            }]
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
                message: OutMessage {
                    role: "assistant",
                    content,
                    refusal: None,
                    annotations: [],
                    tool_calls,
                },
                logprobs: None,
                finish_reason: finish_reason(a.finish),
            }],
            usage: usage(a),
            service_tier: "default",
            system_fingerprint: "fp_mock",
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

const EMPTY_DELTA: Delta<'static> = Delta {
    role: None,
    content: Tri::Skip,
    refusal: Tri::Skip,
    tool_calls: None,
};

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
}

impl StreamFrames<'_> {
    fn frame(&self, buf: &mut BytesMut, delta: Delta<'_>, finish: Option<&'static str>) {
        let choices = [ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: finish,
        }];
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
        let content = if self.has_text() { Tri::Val("") } else { Tri::Null };
        let delta = Delta {
            role: Some("assistant"),
            content,
            refusal: Tri::Null,
            tool_calls: None,
        };
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
            let delta = Delta {
                content: Tri::Val(self.a.chunk(i)),
                ..EMPTY_DELTA
            };
            return self.frame(buf, delta, None);
        };
        // The first fragment names the call; the next carries the arguments.
        let tool = if i == 0 {
            DeltaTool {
                index: 0,
                id: Some(Id("call_", self.a.id)),
                kind: Some("function"),
                function: DeltaFunction {
                    name: Some(name),
                    arguments: "",
                },
            }
        } else {
            DeltaTool {
                index: 0,
                id: None,
                kind: None,
                function: DeltaFunction {
                    name: None,
                    arguments: "{}",
                },
            }
        };
        self.frame(
            buf,
            Delta {
                tool_calls: Some([tool]),
                ..EMPTY_DELTA
            },
            None,
        );
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
    with_request_id(
        json_response(StatusCode::OK, &json!({"object": "list", "data": data})),
        request_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Parsed<'_>, Invalid> {
        parse(s.as_bytes())
    }

    #[test]
    fn extracts_model_stream_usage_and_words() {
        let p = parse_str(
            r#"{"model":"m+hang","stream":true,"stream_options":{"include_usage":true},
                "messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi there"}]}]}"#,
        )
        .unwrap();
        assert_eq!(p.model.as_deref(), Some("m+hang"));
        assert!(p.stream && p.include_usage);
        assert_eq!(p.prompt_words, 4);
        assert_eq!(p.invalid, None);
    }

    #[test]
    fn validation_messages() {
        let cases = [
            (
                r#"{"messages":[{"role":"user","content":"x"}]}"#,
                "you must provide a model parameter",
            ),
            (r#"{"model":"m"}"#, "Missing required parameter: 'messages'."),
            (r#"{"model":"m","messages":[]}"#, "[] is too short - 'messages'"),
            (
                r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
                "Invalid value: 'robot'",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{}}"#,
                "only allowed when",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c1","content":"r"}]}"#,
                "must be a response to a preceeding message",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1"}]},{"role":"user","content":"y"}]}"#,
                "did not have response messages: c1",
            ),
        ];
        for (body, want) in cases {
            let got = parse_str(body).unwrap().invalid.map(|i| i.message).unwrap_or_default();
            assert!(got.contains(want), "{body}: {got}");
        }
        let ok = r#"{"model":"m","messages":[{"role":"user","content":"x"},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1"},{"id":"c2"}]},
            {"role":"tool","tool_call_id":"c2","content":"a"},{"role":"tool","tool_call_id":"c1","content":"b"}]}"#;
        assert_eq!(parse_str(ok).unwrap().invalid, None);
    }

    #[test]
    fn broken_json_is_refused() {
        assert!(parse_str("{")
            .unwrap_err()
            .message
            .contains("could not parse the JSON body"));
        assert!(parse_str(r#"{"model":5}"#).is_err());
    }

    #[test]
    fn tool_choice_selects_the_tool() {
        let tools =
            r#""tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}]"#;
        let base = r#"{"model":"m","messages":[{"role":"user","content":"x"}],"#;
        let tool_of = |body: String| parse_str(&body).unwrap().tool.map(|t| t.0.into_owned());
        assert_eq!(tool_of(format!("{base}{tools}}}")).as_deref(), Some("a"));
        assert_eq!(tool_of(format!(r#"{base}{tools},"tool_choice":"none"}}"#)), None);
        let named = format!(r#"{base}{tools},"tool_choice":{{"type":"function","function":{{"name":"b"}}}}}}"#);
        assert_eq!(tool_of(named).as_deref(), Some("b"));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse(&bytes);
        }
    }
}
