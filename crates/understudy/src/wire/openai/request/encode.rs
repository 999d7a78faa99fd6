//! Provider side: the body sent to an OpenAI-compatible `/chat/completions`.

use serde_json::{json, Map, Value};

use super::decode_stop;
use crate::canonical::{
    ChatRequest, ContentPart, Dialect, ImageSource, Message, Native, Params, ResponseFormat, Role, ToolChoice,
};
use crate::wire::openai::response::tool_call_json;

/// Encodes `req` for `model`.
///
/// A request that arrived in the OpenAI dialect starts from the caller's own body, so every field
/// the gateway does not model (logprobs, seed, metadata, n, vendor extras) reaches the provider
/// unchanged; only the model, streaming flags, and the parameters a chain entry may override are
/// written over it. Any other request is built from the canonical form.
pub fn encode(req: &ChatRequest, model: &str, stream: bool) -> Map<String, Value> {
    match &req.native {
        Some(native) if native.dialect == Dialect::OpenAi => from_native(req, native, model, stream),
        _ => from_canonical(req, model, stream),
    }
}

fn from_native(req: &ChatRequest, native: &Native, model: &str, stream: bool) -> Map<String, Value> {
    let mut body = native.body.clone();
    body.insert("model".into(), model.into());
    body.insert("stream".into(), stream.into());
    set_stream_options(&mut body, stream);
    overwrite_params(&mut body, &req.params);
    if native.messages_edited {
        let system_role = if uses_developer_role(&native.body) { "developer" } else { "system" };
        body.insert("messages".into(), Value::Array(messages(req, system_role)));
    }
    body
}

/// The gateway always wants usage when streaming (it hides the usage chunk from callers that did
/// not ask); `stream_options` is an error without `stream`.
fn set_stream_options(body: &mut Map<String, Value>, stream: bool) {
    if !stream {
        body.remove("stream_options");
        return;
    }
    let options = body.entry("stream_options").or_insert_with(|| json!({}));
    if !options.is_object() {
        *options = json!({});
    }
    if let Some(o) = options.as_object_mut() {
        o.insert("include_usage".into(), true.into());
    }
}

/// Writes the canonical parameters where they are set and differ from the native ones (a chain
/// entry may have overridden them); equal values keep their original spelling (`1` vs `1.0`).
fn overwrite_params(body: &mut Map<String, Value>, params: &Params) {
    for (key, value) in [("temperature", params.temperature), ("top_p", params.top_p)] {
        if let Some(v) = value {
            if body.get(key).and_then(Value::as_f64) != Some(v) {
                body.insert(key.into(), v.into());
            }
        }
    }
    if !params.stop.is_empty() && decode_stop(body.get("stop")).ok().as_ref() != Some(&params.stop) {
        body.insert("stop".into(), params.stop.clone().into());
    }
    if let Some(max) = params.max_tokens {
        let mut keys: Vec<&str> = ["max_completion_tokens", "max_tokens"]
            .into_iter()
            .filter(|k| body.get(*k).is_some_and(|v| !v.is_null()))
            .collect();
        if keys.is_empty() {
            keys.push("max_tokens");
        }
        for key in keys {
            body.insert(key.into(), max.into());
        }
    }
}

fn uses_developer_role(body: &Map<String, Value>) -> bool {
    body.get("messages")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|m| m.get("role").and_then(Value::as_str) == Some("developer")))
}

fn from_canonical(req: &ChatRequest, model: &str, stream: bool) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), Value::Array(messages(req, "system")));
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req.tools.iter().map(tool_json).collect();
        body.insert("tools".into(), tools.into());
        // OpenAI refuses `tool_choice` without `tools`.
        if let Some(choice) = &req.tool_choice {
            body.insert("tool_choice".into(), tool_choice_json(choice));
        }
    }
    if let Some(format) = &req.response_format {
        body.insert("response_format".into(), response_format_json(format));
    }
    // `max_tokens`, not `max_completion_tokens`: most OpenAI-compatible servers know only it.
    if let Some(max) = req.params.max_tokens {
        body.insert("max_tokens".into(), max.into());
    }
    if let Some(t) = req.params.temperature {
        body.insert("temperature".into(), t.into());
    }
    if let Some(p) = req.params.top_p {
        body.insert("top_p".into(), p.into());
    }
    if !req.params.stop.is_empty() {
        body.insert("stop".into(), req.params.stop.clone().into());
    }
    body.insert("stream".into(), stream.into());
    if stream {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    body
}

fn tool_json(tool: &crate::canonical::ToolDef) -> Value {
    let mut function = Map::new();
    function.insert("name".into(), tool.name.clone().into());
    if let Some(d) = &tool.description {
        function.insert("description".into(), d.clone().into());
    }
    if !tool.parameters.is_null() {
        function.insert("parameters".into(), tool.parameters.clone());
    }
    json!({"type": "function", "function": function})
}

fn tool_choice_json(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => "auto".into(),
        ToolChoice::None => "none".into(),
        ToolChoice::Required => "required".into(),
        ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
    }
}

fn response_format_json(format: &ResponseFormat) -> Value {
    match format {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema { name, schema, strict } => {
            let mut js = Map::new();
            js.insert("name".into(), name.clone().into());
            js.insert("schema".into(), schema.clone());
            if let Some(strict) = strict {
                js.insert("strict".into(), (*strict).into());
            }
            json!({"type": "json_schema", "json_schema": js})
        }
    }
}

/// The conversation as OpenAI messages: the system prompt first (as one message, its parts
/// joined by blank lines, since many compatible servers accept only a string there), then turns.
fn messages(req: &ChatRequest, system_role: &str) -> Vec<Value> {
    let mut out = Vec::with_capacity(req.messages.len() + 1);
    let system = join_text(&req.system, "\n\n");
    if !system.is_empty() {
        out.push(json!({"role": system_role, "content": system}));
    }
    for message in &req.messages {
        match message.role {
            Role::User => user_messages(message, &mut out),
            Role::Assistant => out.push(assistant_message(message)),
        }
    }
    out
}

/// A user turn: its tool results first, as `role: tool` messages (they must follow the
/// assistant's tool calls directly), then the rest as one user message.
fn user_messages(message: &Message, out: &mut Vec<Value>) {
    for part in &message.content {
        if let ContentPart::ToolResult { call_id, content, .. } = part {
            out.push(json!({"role": "tool", "tool_call_id": call_id, "content": join_text(content, "\n")}));
        }
    }
    let rest: Vec<&ContentPart> =
        message.content.iter().filter(|p| !matches!(p, ContentPart::ToolResult { .. })).collect();
    let content = match rest.as_slice() {
        [] => return,
        [ContentPart::Text { text }] => Value::from(text.as_str()),
        parts => {
            let parts: Vec<Value> = parts.iter().filter_map(|p| user_part(p)).collect();
            if parts.is_empty() {
                return;
            }
            Value::Array(parts)
        }
    };
    let mut msg = Map::new();
    msg.insert("role".into(), "user".into());
    msg.insert("content".into(), content);
    if let Some(name) = &message.name {
        msg.insert("name".into(), name.clone().into());
    }
    out.push(Value::Object(msg));
}

fn user_part(part: &ContentPart) -> Option<Value> {
    match part {
        ContentPart::Text { text } => Some(json!({"type": "text", "text": text})),
        ContentPart::Image { source } => {
            let url = match source {
                ImageSource::Url(url) => url.clone(),
                ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
            };
            Some(json!({"type": "image_url", "image_url": {"url": url}}))
        }
        ContentPart::Other { dialect: Dialect::OpenAi, value } => Some(value.clone()),
        ContentPart::Other { dialect, .. } => {
            tracing::debug!(dialect = dialect.as_str(), "dropping a content block OpenAI cannot carry");
            None
        }
        ContentPart::ToolCall { .. } | ContentPart::ToolResult { .. } => None,
    }
}

/// An assistant turn: its text as a string (`null` when it only calls tools), then tool calls.
fn assistant_message(message: &Message) -> Value {
    let text = join_text(&message.content, "");
    let calls: Vec<Value> = message
        .content
        .iter()
        .filter_map(|p| match p {
            ContentPart::ToolCall { id, name, arguments } => Some(tool_call_json(id, name, arguments)),
            // A custom tool call kept from an OpenAI request.
            ContentPart::Other { dialect: Dialect::OpenAi, value }
                if value.get("type").and_then(Value::as_str) == Some("custom") =>
            {
                Some(value.clone())
            }
            _ => None,
        })
        .collect();
    let mut msg = Map::new();
    msg.insert("role".into(), "assistant".into());
    let content = if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::from(text) };
    msg.insert("content".into(), content);
    if let Some(name) = &message.name {
        msg.insert("name".into(), name.clone().into());
    }
    if !calls.is_empty() {
        msg.insert("tool_calls".into(), Value::Array(calls));
    }
    Value::Object(msg)
}

fn join_text(parts: &[ContentPart], sep: &str) -> String {
    let texts: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            ContentPart::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    texts.join(sep)
}
