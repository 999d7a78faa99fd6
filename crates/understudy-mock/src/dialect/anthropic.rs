//! Anthropic Messages: `POST /v1/messages` (JSON and SSE) and `GET /v1/models` (when the
//! request carries Anthropic headers).

use std::fmt;

use bytes::{BufMut, BytesMut};
use http::header::HeaderMap;
use http::StatusCode;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{cdn_page, sse, AuthFailure, ErrorSpec, Id, Invalid, Parsed};
use crate::answer::{script, Answer, Finish, SseFrames, StreamFaults};
use crate::body::MockBody;
use crate::fault::ErrorKind;
use crate::http::{json_response, response, retry_after_secs, rfc3339_in, set_header, set_static_header, Resp};
use crate::parse::{count_words, first_unknown_top_level, KeyList, Str, Words};

struct TopLevel;

impl KeyList for TopLevel {
    const KEYS: &'static [&'static str] = &[
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "output_config",
        "output_format",
        "inference_geo",
    ];
    const NORMALISE: bool = false;
}

#[derive(Deserialize)]
struct MessagesRequest<'a> {
    #[serde(borrow)]
    model: Option<Str<'a>>,
    max_tokens: Option<u64>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    system: Option<Words>,
    stream: Option<bool>,
    #[serde(borrow)]
    tools: Option<Vec<Tool<'a>>>,
    tool_choice: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Option<Str<'a>>,
    #[serde(borrow)]
    content: Option<Content<'a>>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow)]
    name: Option<Str<'a>>,
}

/// Message content: a string, or blocks (whose tool ids we check).
enum Content<'a> {
    Text(Words),
    Blocks(Vec<Block<'a>>),
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Str<'a>>,
    text: Option<Words>,
    #[serde(borrow)]
    id: Option<Str<'a>>,
    #[serde(borrow)]
    tool_use_id: Option<Str<'a>>,
    content: Option<Words>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of content blocks")
            }
            fn visit_str<E>(self, v: &str) -> Result<Content<'a>, E> {
                Ok(Content::Text(Words(count_words(v))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content<'a>, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(2).min(64));
                while let Some(b) = seq.next_element()? {
                    blocks.push(b);
                }
                Ok(Content::Blocks(blocks))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Content<'_> {
    fn words(&self) -> u32 {
        match self {
            Content::Text(w) => w.0,
            Content::Blocks(bs) => bs.iter().fold(0u32, |n, b| {
                n.saturating_add(b.text.map_or(0, |w| w.0))
                    .saturating_add(b.content.map_or(0, |w| w.0))
            }),
        }
    }

    fn blocks_of<'s>(&'s self, kind: &'s str) -> impl Iterator<Item = &'s Block<'s>> + 's {
        let blocks: &[Block<'_>] = match self {
            Content::Blocks(bs) => bs,
            Content::Text(_) => &[],
        };
        blocks.iter().filter(move |b| b.kind.as_deref() == Some(kind))
    }
}

pub(crate) fn parse(body: &[u8], lenient: bool) -> Result<Parsed<'_>, Invalid> {
    let req: MessagesRequest<'_> = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
    let unknown = if lenient {
        None
    } else {
        first_unknown_top_level::<TopLevel>(body)
    };
    let invalid = match unknown {
        Some(key) => Some(Invalid::new(format!("{key}: Extra inputs are not permitted"))),
        None => validate(&req),
    };
    let prompt_words = req
        .messages
        .iter()
        .flatten()
        .filter_map(|m| m.content.as_ref())
        .fold(req.system.map_or(0, |w| w.0), |n, c| n.saturating_add(c.words()));
    let tool = tool_to_call(req.tools, req.tool_choice.as_ref());
    Ok(Parsed {
        model: req.model,
        stream: req.stream.unwrap_or(false),
        include_usage: false,
        prompt_words,
        tool,
        invalid,
    })
}

fn json_error(e: &serde_json::Error) -> Invalid {
    if e.is_data() {
        return Invalid::new(format!("Invalid request body: {e}"));
    }
    Invalid::new(format!("There was an error parsing the body: {e}"))
}

fn validate(req: &MessagesRequest<'_>) -> Option<Invalid> {
    if req.model.as_deref().is_none_or(str::is_empty) {
        return Some(Invalid::new("model: Field required"));
    }
    if req.max_tokens.is_none() {
        return Some(Invalid::new("max_tokens: Field required"));
    }
    let Some(messages) = &req.messages else {
        return Some(Invalid::new("messages: Field required"));
    };
    if messages.is_empty() {
        return Some(Invalid::new("messages: at least one message is required"));
    }
    validate_turns(messages).or_else(|| validate_tool_results(messages))
}

/// Roles are user/assistant (no system role), start with user and alternate.
fn validate_turns(messages: &[Message<'_>]) -> Option<Invalid> {
    let mut previous: Option<&str> = None;
    for (i, m) in messages.iter().enumerate() {
        let role =
            match m.role.as_deref() {
                None => return Some(Invalid::new(format!("messages.{i}.role: Field required"))),
                Some("system") => return Some(Invalid::new(
                    "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, \
                     not \"system\" as an input message role.",
                )),
                Some(r @ ("user" | "assistant")) => r,
                Some(_) => {
                    return Some(Invalid::new(format!(
                        "messages.{i}.role: Input should be 'user' or 'assistant'"
                    )))
                }
            };
        if m.content.is_none() {
            return Some(Invalid::new(format!("messages.{i}.content: Field required")));
        }
        match previous {
            None if role != "user" => {
                return Some(Invalid::new("messages: first message must use the \"user\" role"));
            }
            Some(p) if p == role => {
                return Some(Invalid::new(format!(
                    "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{role}\" \
                     roles in a row"
                )));
            }
            _ => {}
        }
        previous = Some(role);
    }
    None
}

/// Every `tool_result` answers a `tool_use` of the previous message, and every `tool_use`
/// is answered in the next message.
fn validate_tool_results(messages: &[Message<'_>]) -> Option<Invalid> {
    let empty = Content::Blocks(Vec::new());
    for (i, m) in messages.iter().enumerate() {
        let here = m.content.as_ref().unwrap_or(&empty);
        let before = i
            .checked_sub(1)
            .and_then(|p| messages.get(p))
            .and_then(|p| p.content.as_ref())
            .unwrap_or(&empty);
        for (j, b) in here.blocks_of("tool_result").enumerate() {
            let id = b.tool_use_id.as_deref().unwrap_or("");
            if !before.blocks_of("tool_use").any(|u| u.id.as_deref() == Some(id)) {
                return Some(Invalid::new(format!(
                    "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each \
                     `tool_result` block must have a corresponding `tool_use` block in the previous message."
                )));
            }
        }
        let Some(next) = messages.get(i + 1).and_then(|n| n.content.as_ref()) else {
            continue;
        };
        let missing: Vec<&str> = here
            .blocks_of("tool_use")
            .filter_map(|u| u.id.as_deref())
            .filter(|id| {
                !next
                    .blocks_of("tool_result")
                    .any(|r| r.tool_use_id.as_deref() == Some(*id))
            })
            .collect();
        if !missing.is_empty() {
            return Some(Invalid::new(format!(
                "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each \
                 `tool_use` block must have a corresponding `tool_result` block in the next message.",
                missing.join(", ")
            )));
        }
    }
    None
}

/// `tool_choice` `{"type":"tool","name"}` picks a tool, `{"type":"none"}` none, else the first.
fn tool_to_call<'a>(tools: Option<Vec<Tool<'a>>>, choice: Option<&serde_json::Value>) -> Option<Str<'a>> {
    let tools = tools.filter(|t| !t.is_empty())?;
    if let Some(choice) = choice {
        match choice.get("type").and_then(|t| t.as_str()) {
            Some("none") => return None,
            Some("tool") => {
                if let Some(name) = choice.get("name").and_then(|n| n.as_str()) {
                    return Some(Str(name.to_string().into()));
                }
            }
            _ => {}
        }
    }
    tools.into_iter().next().and_then(|t| t.name)
}

/// `x-api-key`, or an OAuth `Authorization: Bearer` token.
pub(crate) fn api_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key") {
        return key.to_str().ok();
    }
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

fn request_id(rid: u64) -> String {
    format!("req_mock{rid:020x}")
}

fn error_body(status: StatusCode, typ: &str, message: &str, rid: u64) -> Resp {
    error_with(status, json!({"type": typ, "message": message}), rid)
}

fn error_with(status: StatusCode, error: serde_json::Value, rid: u64) -> Resp {
    let body = json!({"type": "error", "error": error, "request_id": request_id(rid)});
    let mut resp = json_response(status, &body);
    set_header(&mut resp, "request-id", request_id(rid));
    resp
}

pub(crate) fn auth_error(failure: AuthFailure, spec: &ErrorSpec<'_>) -> Resp {
    let rid = spec.request_id;
    match failure {
        AuthFailure::Missing => error_body(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
            rid,
        ),
        AuthFailure::Invalid => error_body(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
            rid,
        ),
        AuthFailure::MissingVersion => error_body(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
            rid,
        ),
    }
}

pub(crate) fn invalid(inv: &Invalid, rid: u64) -> Resp {
    error_body(StatusCode::BAD_REQUEST, "invalid_request_error", &inv.message, rid)
}

/// The `error.type` Anthropic uses for a status.
fn type_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

pub(crate) fn error(spec: &ErrorSpec<'_>) -> Resp {
    let rid = spec.request_id;
    let Some(kind) = spec.kind else {
        let status = spec
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = format!("Mock upstream error: HTTP {status}");
        return error_body(status, type_for(status), &message, rid);
    };
    let simple = |status: StatusCode, message: &str| error_body(status, type_for(status), message, rid);
    match kind {
        ErrorKind::InvalidKey => simple(StatusCode::UNAUTHORIZED, "invalid x-api-key"),
        ErrorKind::AccountDeactivated => simple(StatusCode::UNAUTHORIZED, "This organization has been disabled."),
        ErrorKind::Forbidden => simple(
            StatusCode::FORBIDDEN,
            "Your API key does not have permission to use the specified resource.",
        ),
        ErrorKind::ModelNotFound => simple(StatusCode::NOT_FOUND, &format!("model: {}", spec.model)),
        ErrorKind::ContextLength => simple(
            StatusCode::BAD_REQUEST,
            "prompt is too long: 210266 tokens > 200000 maximum",
        ),
        ErrorKind::ContentPolicy => simple(StatusCode::BAD_REQUEST, "Output blocked by content filtering policy"),
        ErrorKind::RateLimit => rate_limit(spec),
        ErrorKind::QuotaExhausted => {
            let error = json!({"type": "rate_limit_error",
                "message": "You have reached your monthly spend limit. Raise the limit or wait until next month.",
                "details": {"error_code": "enforced_spend_limit_reached"}});
            let mut resp = error_with(StatusCode::TOO_MANY_REQUESTS, error, rid);
            set_static_header(&mut resp, "x-should-retry", "false");
            resp
        }
        ErrorKind::Server => simple(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
        ErrorKind::BadGateway => {
            let mut resp = response(
                StatusCode::BAD_GATEWAY,
                "text/html",
                MockBody::full(cdn_page(StatusCode::BAD_GATEWAY)),
            );
            set_header(&mut resp, "request-id", request_id(rid));
            resp
        }
        ErrorKind::Unavailable => simple(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"),
        ErrorKind::Overloaded => {
            let status = StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut resp = simple(status, "Overloaded");
            set_static_header(&mut resp, "x-should-retry", "true");
            resp
        }
        ErrorKind::BadRequest => simple(
            StatusCode::BAD_REQUEST,
            "temperature: Input should be less than or equal to 1",
        ),
        ErrorKind::Timeout => simple(StatusCode::GATEWAY_TIMEOUT, "Request timed out"),
    }
}

fn rate_limit(spec: &ErrorSpec<'_>) -> Resp {
    let message = "This request would exceed the rate limit for your organization of 50 requests per minute. \
                   For details, refer to: https://docs.anthropic.com/en/api/rate-limits.";
    let mut resp = error_body(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
        message,
        spec.request_id,
    );
    set_static_header(&mut resp, "anthropic-ratelimit-requests-limit", "50");
    set_static_header(&mut resp, "anthropic-ratelimit-requests-remaining", "0");
    if let Some(secs) = spec.retry_after.and_then(retry_after_secs) {
        set_header(&mut resp, "anthropic-ratelimit-requests-reset", rfc3339_in(secs));
    }
    resp
}

#[derive(Serialize)]
struct Usage {
    input_tokens: u32,
    output_tokens: u32,
    cache_creation_input_tokens: u32,
    cache_read_input_tokens: u32,
    service_tier: &'static str,
}

fn usage(a: &Answer, output_tokens: u32) -> Usage {
    Usage {
        input_tokens: a.prompt_tokens,
        output_tokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        service_tier: "standard",
    }
}

#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentOut<'a> {
    Text { text: &'a str },
    ToolUse { id: Id, name: &'a str, input: EmptyObject },
}

#[derive(Serialize)]
struct MessageOut<'a> {
    id: Id,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: &'a [ContentOut<'a>],
    stop_reason: Option<&'static str>,
    stop_sequence: Option<()>,
    usage: Usage,
}

fn stop_reason(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCall => "tool_use",
        Finish::ContentFilter | Finish::Blocked(_) => "refusal",
    }
}

/// The answer's single content block, if it has one (empty and refused answers have none).
fn block(a: &Answer) -> Option<ContentOut<'_>> {
    match (a.finish, a.tool.as_deref()) {
        (_, Some(name)) => Some(ContentOut::ToolUse {
            id: Id("toolu_", a.id),
            name,
            input: EmptyObject {},
        }),
        (Finish::Stop | Finish::Length, None) if !a.text().is_empty() => Some(ContentOut::Text { text: a.text() }),
        _ => None,
    }
}

pub(crate) fn answer(a: &Answer, parsed: &Parsed<'_>, faults: &StreamFaults) -> Resp {
    let mut resp = if parsed.stream {
        response(
            StatusCode::OK,
            "text/event-stream; charset=utf-8",
            script(&StreamFrames { a }, faults),
        )
    } else {
        let blocks: Vec<ContentOut<'_>> = block(a).into_iter().collect();
        let body = MessageOut {
            id: Id("msg_", a.id),
            kind: "message",
            role: "assistant",
            model: &a.model,
            content: &blocks,
            stop_reason: Some(stop_reason(a.finish)),
            stop_sequence: None,
            usage: usage(a, a.completion_tokens()),
        };
        json_response(StatusCode::OK, &body)
    };
    set_header(&mut resp, "request-id", request_id(a.id));
    resp
}

struct StreamFrames<'a> {
    a: &'a Answer,
}

#[derive(Serialize)]
struct MessageStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: MessageOut<'a>,
}

#[derive(Serialize)]
struct BlockStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    content_block: ContentOut<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DeltaOut<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: DeltaOut<'a>,
}

#[derive(Serialize)]
struct BlockStop {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
}

#[derive(Serialize)]
struct DeltaUsage {
    input_tokens: u32,
    output_tokens: u32,
}

#[derive(Serialize)]
struct MessageDelta {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: StopDelta,
    usage: DeltaUsage,
}

/// `ping`, `message_stop`: just a type.
#[derive(Serialize)]
struct Bare {
    #[serde(rename = "type")]
    kind: &'static str,
}

fn event(buf: &mut BytesMut, kind: &str, data: &impl Serialize) {
    sse(buf, Some(kind), data, b"\n");
}

impl SseFrames for StreamFrames<'_> {
    fn head(&self, buf: &mut BytesMut) {
        let a = self.a;
        let message = MessageOut {
            id: Id("msg_", a.id),
            kind: "message",
            role: "assistant",
            model: &a.model,
            content: &[],
            stop_reason: None,
            stop_sequence: None,
            usage: usage(a, 1),
        };
        event(
            buf,
            "message_start",
            &MessageStart {
                kind: "message_start",
                message,
            },
        );
        if let Some(b) = block(a) {
            let content_block = match b {
                ContentOut::Text { .. } => ContentOut::Text { text: "" },
                tool => tool,
            };
            event(
                buf,
                "content_block_start",
                &BlockStart {
                    kind: "content_block_start",
                    index: 0,
                    content_block,
                },
            );
        }
        event(buf, "ping", &Bare { kind: "ping" });
    }

    fn chunks(&self) -> usize {
        if self.a.tool.is_some() {
            1
        } else {
            self.a.chunk_count()
        }
    }

    fn chunk(&self, i: usize, buf: &mut BytesMut) {
        let delta = if self.a.tool.is_some() {
            DeltaOut::InputJsonDelta { partial_json: "{}" }
        } else {
            DeltaOut::TextDelta { text: self.a.chunk(i) }
        };
        event(
            buf,
            "content_block_delta",
            &BlockDelta {
                kind: "content_block_delta",
                index: 0,
                delta,
            },
        );
    }

    fn malformed(&self, buf: &mut BytesMut) {
        buf.put_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_del\n\n",
        );
    }

    fn error(&self, buf: &mut BytesMut) {
        let body = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        event(buf, "error", &body);
    }

    fn tail(&self, buf: &mut BytesMut, terminator: bool) {
        let a = self.a;
        if block(a).is_some() {
            event(
                buf,
                "content_block_stop",
                &BlockStop {
                    kind: "content_block_stop",
                    index: 0,
                },
            );
        }
        let delta = MessageDelta {
            kind: "message_delta",
            delta: StopDelta {
                stop_reason: stop_reason(a.finish),
                stop_sequence: None,
            },
            usage: DeltaUsage {
                input_tokens: a.prompt_tokens,
                output_tokens: a.completion_tokens(),
            },
        };
        event(buf, "message_delta", &delta);
        if terminator {
            event(buf, "message_stop", &Bare { kind: "message_stop" });
        }
    }
}

pub(crate) fn models(models: &[String], rid: u64) -> Resp {
    let data: Vec<_> = models
        .iter()
        .map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-01-01T00:00:00Z"}))
        .collect();
    let body = json!({"data": data, "has_more": false, "first_id": models.first(), "last_id": models.last()});
    let mut resp = json_response(StatusCode::OK, &body);
    set_header(&mut resp, "request-id", request_id(rid));
    resp
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
    fn extracts_fields() {
        let p = parse(
            br#"{"model":"claude+hang","max_tokens":10,"system":"be brief","stream":true,
                "messages":[{"role":"user","content":[{"type":"text","text":"hello there"}]}],
                "tools":[{"name":"get_weather","input_schema":{}}]}"#,
            false,
        )
        .unwrap();
        assert_eq!(p.model.as_deref(), Some("claude+hang"));
        assert!(p.stream);
        assert_eq!(p.prompt_words, 4);
        assert_eq!(p.tool.as_deref(), Some("get_weather"));
        assert_eq!(p.invalid, None);
    }

    #[test]
    fn validation_messages() {
        let u = r#"{"role":"user","content":"hi"}"#;
        let a = r#"{"role":"assistant","content":"yo"}"#;
        let cases = [
            (
                format!(r#"{{"max_tokens":1,"messages":[{u}]}}"#),
                "model: Field required",
            ),
            (
                format!(r#"{{"model":"m","messages":[{u}]}}"#),
                "max_tokens: Field required",
            ),
            (
                r#"{"model":"m","max_tokens":1}"#.to_string(),
                "messages: Field required",
            ),
            (
                format!(r#"{{"model":"m","max_tokens":1,"messages":[{a}]}}"#),
                "first message must use the \"user\" role",
            ),
            (
                format!(r#"{{"model":"m","max_tokens":1,"messages":[{u},{u}]}}"#),
                "roles must alternate",
            ),
            (
                format!(r#"{{"model":"m","max_tokens":1,"messages":[{{"role":"system","content":"x"}},{u}]}}"#),
                "Unexpected role \"system\"",
            ),
            (
                format!(r#"{{"model":"m","max_tokens":1,"messages":[{u}],"n":2}}"#),
                "n: Extra inputs are not permitted",
            ),
            (
                format!(
                    r#"{{"model":"m","max_tokens":1,"messages":[{u},{a},{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t9","content":"x"}}]}}]}}"#
                ),
                "unexpected `tool_use_id`",
            ),
            (
                format!(
                    r#"{{"model":"m","max_tokens":1,"messages":[{u},{{"role":"assistant","content":[{{"type":"tool_use","id":"t1","name":"f","input":{{}}}}]}},{u}]}}"#
                ),
                "`tool_use` ids were found without `tool_result`",
            ),
        ];
        for (body, want) in cases {
            let got = invalid_of(&body);
            assert!(got.contains(want), "{body}: {got}");
        }
        let ok = format!(
            r#"{{"model":"m","max_tokens":1,"messages":[{u},{{"role":"assistant","content":[{{"type":"tool_use","id":"t1","name":"f","input":{{}}}}]}},{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t1","content":"4C"}}]}}]}}"#
        );
        assert_eq!(invalid_of(&ok), "");
        assert!(parse(br#"{"model":"m","max_tokens":1,"messages":[],"n":2}"#, true)
            .unwrap()
            .invalid
            .is_some());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse(&bytes, false);
        }
    }
}
