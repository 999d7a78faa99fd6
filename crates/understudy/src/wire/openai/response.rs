//! Non-streaming `chat.completion` bodies: rendering a canonical answer for OpenAI callers
//! (front) and decoding an OpenAI-compatible provider's answer (provider side).

use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use serde_json::{json, Map, Value};

use super::error;
use crate::canonical::{ChatResponse, Choice, ContentPart, Dialect, FinishReason, Usage};
use crate::failure::{Failure, FailureClass};

/// Renders `resp` as a `chat.completion`. An answer that came from an OpenAI-dialect provider is
/// returned unchanged, so the caller keeps logprobs, system_fingerprint, annotations and the like.
pub fn encode(resp: &ChatResponse) -> Value {
    if let Some((Dialect::OpenAi, native)) = &resp.native {
        return native.clone();
    }
    let choices: Vec<Value> = resp.choices.iter().map(encode_choice).collect();
    json!({
        "id": response_id(&resp.id),
        "object": "chat.completion",
        "created": unix_now(),
        "model": resp.model,
        "choices": choices,
        "usage": usage_json(&resp.usage),
    })
}

fn encode_choice(choice: &Choice) -> Value {
    let text = choice.text();
    let calls: Vec<Value> = choice
        .content
        .iter()
        .filter_map(|p| match p {
            ContentPart::ToolCall { id, name, arguments } => Some(tool_call_json(id, name, arguments)),
            _ => None,
        })
        .collect();
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    // OpenAI sends `content: null` when the answer is only tool calls.
    let content = if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::from(text) };
    message.insert("content".into(), content);
    message.insert("refusal".into(), choice.refusal.as_deref().map_or(Value::Null, Value::from));
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    json!({
        "index": choice.index,
        "message": message,
        "logprobs": null,
        "finish_reason": finish_reason_str(&choice.finish_reason),
    })
}

/// `{"id","type":"function","function":{"name","arguments"}}`; empty arguments become `{}`
/// because OpenAI clients parse the string as JSON.
pub(super) fn tool_call_json(id: &str, name: &str, arguments: &str) -> Value {
    let arguments = if arguments.trim().is_empty() { "{}" } else { arguments };
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
}

pub(super) fn finish_reason_str(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop | FinishReason::StopSequence(_) | FinishReason::Other(_) => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

pub(super) fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total(),
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
    })
}

/// The provider's id when it has one (an Anthropic `msg_...` id is fine for OpenAI clients).
fn response_id(id: &str) -> String {
    if id.is_empty() {
        format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
    } else {
        id.to_string()
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Decodes a 2xx `chat.completion` body. A body that is not JSON or has no `choices` is
/// `invalid_response` (`malformed_body`); a 200 holding an `error` object is classified like an
/// error answer. Unknown fields (Azure's filter results, annotations...) are ignored here and
/// kept in `native`.
pub fn decode(body: &[u8]) -> Result<ChatResponse, Failure> {
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(format!("unparsable body: {e}")))?;
    let obj = value.as_object().ok_or_else(|| malformed("body is not a JSON object".into()))?;
    if obj.get("error").is_some_and(|e| !e.is_null()) && obj.get("choices").is_none() {
        return Err(error::classify_value(200, &HeaderMap::new(), &value));
    }
    let choices =
        obj.get("choices").and_then(Value::as_array).ok_or_else(|| malformed("body has no choices array".into()))?;
    let mut resp = ChatResponse {
        id: str_field(obj, "id"),
        model: str_field(obj, "model"),
        choices: choices.iter().enumerate().map(|(i, c)| decode_choice(i, c)).collect(),
        usage: obj.get("usage").map(decode_usage).unwrap_or_default(),
        native: None,
    };
    resp.native = Some((Dialect::OpenAi, value));
    Ok(resp)
}

fn malformed(message: String) -> Failure {
    Failure::new(FailureClass::InvalidResponse, message).detail("malformed_body").status(200)
}

fn str_field(obj: &Map<String, Value>, key: &str) -> String {
    obj.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn decode_choice(position: usize, choice: &Value) -> Choice {
    let index = choice
        .get("index")
        .and_then(Value::as_u64)
        .and_then(|i| u32::try_from(i).ok())
        .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX));
    // Azure may leave out `message` (or its `content`) when the output was filtered.
    let empty = Value::Null;
    let message = choice.get("message").unwrap_or(&empty);
    let mut content = Vec::new();
    push_text(message.get("content"), &mut content);
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        content.extend(calls.iter().filter_map(decode_tool_call));
    }
    if let Some(call) = message.get("function_call").and_then(legacy_function_call) {
        content.push(call);
    }
    Choice {
        index,
        content,
        finish_reason: decode_finish_reason(choice.get("finish_reason")),
        refusal: message.get("refusal").and_then(Value::as_str).map(str::to_string),
    }
}

/// `content` is normally a string; some compatible servers answer with text parts.
fn push_text(content: Option<&Value>, out: &mut Vec<ContentPart>) {
    match content {
        Some(Value::String(s)) if !s.is_empty() => out.push(ContentPart::text(s.as_str())),
        Some(Value::Array(parts)) => {
            let texts = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str));
            out.extend(texts.filter(|t| !t.is_empty()).map(ContentPart::text));
        }
        _ => {}
    }
}

fn decode_tool_call(call: &Value) -> Option<ContentPart> {
    let function = call.get("function")?;
    Some(ContentPart::ToolCall {
        id: call.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
        name: function.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
        arguments: arguments_text(function.get("arguments")),
    })
}

/// The deprecated `function_call`: it has no id, so the function's name stands in for one
/// (the request decoder does the same for the matching `role: function` result).
fn legacy_function_call(call: &Value) -> Option<ContentPart> {
    let name = call.get("name").and_then(Value::as_str)?.to_string();
    Some(ContentPart::ToolCall { id: name.clone(), name, arguments: arguments_text(call.get("arguments")) })
}

/// Arguments are a JSON string; a server that sends an object gets it serialised.
fn arguments_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

pub(super) fn decode_finish_reason(v: Option<&Value>) -> FinishReason {
    match v.and_then(Value::as_str) {
        Some("stop") => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("content_filter") => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_string()),
        None => FinishReason::Other(String::new()),
    }
}

pub(super) fn decode_usage(v: &Value) -> Usage {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n(v.get("prompt_tokens")),
        output_tokens: n(v.get("completion_tokens")),
        cache_read_tokens: n(v.get("prompt_tokens_details").and_then(|d| d.get("cached_tokens"))),
        cache_write_tokens: 0,
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
