//! Anthropic Messages requests: [`decode`] what a caller sends the gateway, [`encode`] what the
//! gateway sends an Anthropic provider.

use serde_json::{json, Map, Value};

use super::tool_input;
use crate::canonical::{
    ChatRequest, ContentPart, Dialect, ImageSource, Message, Native, Params, ResponseFormat, Role, ToolChoice, ToolDef,
};
use crate::wire::BadRequest;

type Obj = Map<String, Value>;

/// Anthropic requires `max_tokens`; requests from dialects where it is optional get this.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Put before a conversation that starts with an assistant turn: Anthropic wants the user first.
const LEADING_USER_TURN: &str = "Continue.";

// ---------------------------------------------------------------------------------------------
// Front: decode

/// Decodes a caller's `POST /v1/messages` body, validating it the way the real API does and
/// naming the offending field in [`BadRequest::param`]. The whole body is kept in
/// [`ChatRequest::native`] so that an Anthropic provider receives every field unchanged.
pub fn decode(body: &[u8]) -> Result<ChatRequest, BadRequest> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| BadRequest::new(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(BadRequest::new("request body must be a JSON object"));
    };
    let model = required_str(&obj, "model")?;
    if model.is_empty() {
        return Err(BadRequest::new("model: must not be empty").param("model"));
    }
    let max_tokens = match field(&obj, "max_tokens") {
        None => return Err(missing("max_tokens")),
        Some(v) => v.as_u64().ok_or_else(|| wrong_type("max_tokens", "non-negative integer"))?,
    };
    let messages = match field(&obj, "messages") {
        None => return Err(missing("messages")),
        Some(v) => decode_messages(v)?,
    };
    let system = match field(&obj, "system") {
        None => Vec::new(),
        Some(v) => decode_system(v)?,
    };
    let params = Params {
        max_tokens: Some(u32::try_from(max_tokens).unwrap_or(u32::MAX)),
        temperature: optional_f64(&obj, "temperature")?,
        top_p: optional_f64(&obj, "top_p")?,
        stop: match field(&obj, "stop_sequences") {
            None => Vec::new(),
            Some(v) => string_list(v, "stop_sequences")?,
        },
    };
    let tools = match field(&obj, "tools") {
        None => Vec::new(),
        Some(v) => decode_tools(v)?,
    };
    let tool_choice = field(&obj, "tool_choice").map(decode_tool_choice).transpose()?;
    let stream = match field(&obj, "stream") {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| wrong_type("stream", "boolean"))?,
    };
    Ok(ChatRequest {
        model: model.to_string(),
        system,
        messages,
        tools,
        tool_choice,
        params,
        response_format: None,
        stream,
        include_usage: false,
        native: Some(Native { dialect: Dialect::Anthropic, body: obj, messages_edited: false }),
    })
}

/// A present, non-null member (the SDKs send `null` for "not given" in a few places).
fn field<'a>(obj: &'a Obj, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn missing(param: &str) -> BadRequest {
    BadRequest::new(format!("{param}: Field required")).param(param)
}

fn wrong_type(param: &str, expected: &str) -> BadRequest {
    BadRequest::new(format!("{param}: Input should be a valid {expected}")).param(param)
}

fn required_str<'a>(obj: &'a Obj, key: &str) -> Result<&'a str, BadRequest> {
    field(obj, key).ok_or_else(|| missing(key))?.as_str().ok_or_else(|| wrong_type(key, "string"))
}

/// A required string member of a nested object; `param` names the object.
fn member_str<'a>(obj: &'a Obj, key: &str, param: &str) -> Result<&'a str, BadRequest> {
    let p = format!("{param}.{key}");
    field(obj, key).ok_or_else(|| missing(&p))?.as_str().ok_or_else(|| wrong_type(&p, "string"))
}

fn optional_f64(obj: &Obj, key: &str) -> Result<Option<f64>, BadRequest> {
    field(obj, key).map(|v| v.as_f64().ok_or_else(|| wrong_type(key, "number"))).transpose()
}

fn as_object<'a>(v: &'a Value, param: &str) -> Result<&'a Obj, BadRequest> {
    v.as_object().ok_or_else(|| wrong_type(param, "object"))
}

fn string_list(v: &Value, param: &str) -> Result<Vec<String>, BadRequest> {
    let arr = v.as_array().ok_or_else(|| wrong_type(param, "list"))?;
    arr.iter()
        .enumerate()
        .map(|(i, s)| s.as_str().map(str::to_string).ok_or_else(|| wrong_type(&format!("{param}[{i}]"), "string")))
        .collect()
}

fn decode_messages(v: &Value) -> Result<Vec<Message>, BadRequest> {
    let arr = v.as_array().ok_or_else(|| wrong_type("messages", "list"))?;
    if arr.is_empty() {
        return Err(BadRequest::new("messages: at least one message is required").param("messages"));
    }
    arr.iter().enumerate().map(|(i, m)| decode_message(m, &format!("messages[{i}]"))).collect()
}

fn decode_message(v: &Value, param: &str) -> Result<Message, BadRequest> {
    let obj = as_object(v, param)?;
    let role = match member_str(obj, "role", param)? {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => {
            let p = format!("{param}.role");
            return Err(BadRequest::new(format!("{p}: Input should be 'user' or 'assistant'")).param(p));
        }
    };
    let p = format!("{param}.content");
    let content = decode_content(field(obj, "content").ok_or_else(|| missing(&p))?, &p)?;
    Ok(Message { role, content, name: None })
}

/// `content`: a string or a list of blocks.
fn decode_content(v: &Value, param: &str) -> Result<Vec<ContentPart>, BadRequest> {
    match v {
        Value::String(s) => Ok(vec![ContentPart::text(s.as_str())]),
        Value::Array(blocks) => {
            blocks.iter().enumerate().map(|(j, b)| decode_block(b, &format!("{param}[{j}]"))).collect()
        }
        _ => Err(wrong_type(param, "string or list of content blocks")),
    }
}

fn decode_block(v: &Value, param: &str) -> Result<ContentPart, BadRequest> {
    let obj = as_object(v, param)?;
    let other = || ContentPart::Other { dialect: Dialect::Anthropic, value: v.clone() };
    Ok(match member_str(obj, "type", param)? {
        "text" => ContentPart::text(member_str(obj, "text", param)?),
        "image" => decode_image(obj, param)?.map_or_else(other, |source| ContentPart::Image { source }),
        "tool_use" => {
            let p = format!("{param}.input");
            let input = field(obj, "input").ok_or_else(|| missing(&p))?;
            as_object(input, &p)?;
            ContentPart::ToolCall {
                id: member_str(obj, "id", param)?.to_string(),
                name: member_str(obj, "name", param)?.to_string(),
                arguments: input.to_string(),
            }
        }
        "tool_result" => decode_tool_result(obj, param)?,
        // thinking, redacted_thinking, document, search_result, server tool blocks...: kept whole.
        _ => other(),
    })
}

/// An image block's source; `None` for source kinds the canonical model has no name for
/// (`file`...), which then travel as `Other`.
fn decode_image(obj: &Obj, param: &str) -> Result<Option<ImageSource>, BadRequest> {
    let p = format!("{param}.source");
    let source = as_object(field(obj, "source").ok_or_else(|| missing(&p))?, &p)?;
    Ok(match member_str(source, "type", &p)? {
        "base64" => Some(ImageSource::Base64 {
            media_type: member_str(source, "media_type", &p)?.to_string(),
            data: member_str(source, "data", &p)?.to_string(),
        }),
        "url" => Some(ImageSource::Url(member_str(source, "url", &p)?.to_string())),
        _ => None,
    })
}

fn decode_tool_result(obj: &Obj, param: &str) -> Result<ContentPart, BadRequest> {
    let call_id = member_str(obj, "tool_use_id", param)?.to_string();
    let content = match field(obj, "content") {
        None => Vec::new(),
        Some(v) => decode_content(v, &format!("{param}.content"))?,
    };
    let is_error = match field(obj, "is_error") {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| wrong_type(&format!("{param}.is_error"), "boolean"))?,
    };
    Ok(ContentPart::ToolResult { call_id, name: None, content, is_error })
}

/// `system`: a string or a list of text blocks.
fn decode_system(v: &Value) -> Result<Vec<ContentPart>, BadRequest> {
    match v {
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![ContentPart::text(s.as_str())]),
        Value::Array(blocks) => blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let p = format!("system[{i}]");
                let obj = as_object(b, &p)?;
                match member_str(obj, "type", &p)? {
                    "text" => Ok(ContentPart::text(member_str(obj, "text", &p)?)),
                    _ => Err(BadRequest::new(format!("{p}.type: Input should be 'text'")).param(format!("{p}.type"))),
                }
            })
            .collect(),
        _ => Err(wrong_type("system", "string or list of text blocks")),
    }
}

/// Client tools (no `type`, or `custom`) become [`ToolDef`]s; server tools (`web_search_...`,
/// `bash_...`) have no canonical form and reach an Anthropic provider through `native` only.
fn decode_tools(v: &Value) -> Result<Vec<ToolDef>, BadRequest> {
    let arr = v.as_array().ok_or_else(|| wrong_type("tools", "list"))?;
    let mut tools = Vec::new();
    for (i, t) in arr.iter().enumerate() {
        let p = format!("tools[{i}]");
        let obj = as_object(t, &p)?;
        let name = member_str(obj, "name", &p)?;
        let client_tool = matches!(field(obj, "type").and_then(Value::as_str), None | Some("custom"));
        if !client_tool {
            continue;
        }
        let sp = format!("{p}.input_schema");
        let schema = field(obj, "input_schema").ok_or_else(|| missing(&sp))?;
        as_object(schema, &sp)?;
        let description = match field(obj, "description") {
            None => None,
            Some(d) => Some(d.as_str().ok_or_else(|| wrong_type(&format!("{p}.description"), "string"))?.to_string()),
        };
        tools.push(ToolDef { name: name.to_string(), description, parameters: schema.clone() });
    }
    Ok(tools)
}

fn decode_tool_choice(v: &Value) -> Result<ToolChoice, BadRequest> {
    let obj = as_object(v, "tool_choice")?;
    Ok(match member_str(obj, "type", "tool_choice")? {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Tool(member_str(obj, "name", "tool_choice")?.to_string()),
        _ => {
            return Err(BadRequest::new("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
                .param("tool_choice.type"))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Provider: encode

/// Encodes a request for an Anthropic provider serving `model`.
///
/// A request that arrived in this dialect is sent as the caller wrote it (every unknown field,
/// `cache_control` and thinking block included), with the target's model, the stream flag and
/// the canonical parameters (which a chain entry may have overridden) written over it. Only
/// when the gateway edited the conversation are `system` and `messages` re-encoded.
///
/// Anthropic has no `response_format`: a JSON object or JSON Schema format is asked for by an
/// instruction appended to the system prompt instead (see [`json_instruction`]).
pub fn encode(req: &ChatRequest, model: &str, stream: bool) -> Map<String, Value> {
    let mut body = match &req.native {
        Some(native) if native.dialect == Dialect::Anthropic => {
            let mut body = native.body.clone();
            if native.messages_edited {
                set_system(&mut body, system_text(&req.system));
                body.insert("messages".into(), Value::Array(encode_messages(&req.messages)));
            }
            body
        }
        _ => encode_canonical(req),
    };
    body.insert("model".into(), Value::from(model));
    match req.params.max_tokens {
        Some(n) => {
            body.insert("max_tokens".into(), Value::from(n));
        }
        None if !body.contains_key("max_tokens") => {
            body.insert("max_tokens".into(), Value::from(DEFAULT_MAX_TOKENS));
        }
        None => {}
    }
    if let Some(t) = req.params.temperature {
        body.insert("temperature".into(), Value::from(t));
    }
    if let Some(p) = req.params.top_p {
        body.insert("top_p".into(), Value::from(p));
    }
    if !req.params.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(req.params.stop));
    }
    // `stream: false` is the default: written only when the caller had the field.
    if stream || body.contains_key("stream") {
        body.insert("stream".into(), Value::Bool(stream));
    }
    if let Some(instruction) = req.response_format.as_ref().and_then(json_instruction) {
        append_system(&mut body, &instruction);
    }
    body
}

fn encode_canonical(req: &ChatRequest) -> Obj {
    let mut body = Obj::new();
    // Placeholders keep the conventional key order; `encode` fills them in.
    body.insert("model".into(), Value::Null);
    body.insert("max_tokens".into(), Value::from(DEFAULT_MAX_TOKENS));
    set_system(&mut body, system_text(&req.system));
    body.insert("messages".into(), Value::Array(encode_messages(&req.messages)));
    if !req.tools.is_empty() {
        body.insert("tools".into(), req.tools.iter().map(encode_tool).collect());
        if let Some(choice) = &req.tool_choice {
            body.insert("tool_choice".into(), encode_tool_choice(choice));
        }
    }
    body
}

/// The system prompt's text parts, one paragraph each (the system prompt is text only).
fn system_text(parts: &[ContentPart]) -> String {
    let texts: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            ContentPart::Text { text } if !text.is_empty() => Some(text.as_str()),
            _ => None,
        })
        .collect();
    texts.join("\n\n")
}

fn set_system(body: &mut Obj, text: String) {
    if text.is_empty() {
        body.remove("system");
    } else {
        body.insert("system".into(), Value::String(text));
    }
}

/// Adds a paragraph to whatever shape of system prompt the body has.
fn append_system(body: &mut Obj, text: &str) {
    match body.get_mut("system") {
        Some(Value::String(s)) if !s.is_empty() => {
            s.push_str("\n\n");
            s.push_str(text);
        }
        Some(Value::Array(blocks)) => blocks.push(json!({"type": "text", "text": text})),
        _ => {
            body.insert("system".into(), Value::from(text));
        }
    }
}

/// The instruction that stands in for OpenAI's `response_format`, which Anthropic lacks.
pub fn json_instruction(format: &ResponseFormat) -> Option<String> {
    match format {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some("Respond only with a JSON object.".into()),
        ResponseFormat::JsonSchema { schema, .. } => {
            Some(format!("Respond only with a JSON object that conforms to this JSON Schema: {schema}"))
        }
    }
}

/// Canonical messages as Anthropic turns: roles alternate starting with the user (consecutive
/// same-role turns merged, a placeholder user turn put before a leading assistant turn), tool
/// results lead their user turn, tool calls sit in assistant turns, and blocks Anthropic cannot
/// take (empty text, other dialects' blocks) are left out.
pub fn encode_messages(messages: &[Message]) -> Vec<Value> {
    let mut turns: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in messages {
        for part in &m.content {
            let Some((role, block)) = encode_part(m.role, part) else {
                continue;
            };
            match turns.last_mut() {
                Some((r, blocks)) if *r == role => blocks.push(block),
                _ => turns.push((role, vec![block])),
            }
        }
    }
    if matches!(turns.first(), Some((Role::Assistant, _))) {
        turns.insert(0, (Role::User, vec![json!({"type": "text", "text": LEADING_USER_TURN})]));
    }
    turns
        .into_iter()
        .map(|(role, blocks)| {
            let (role, blocks) = match role {
                Role::User => ("user", tool_results_first(blocks)),
                Role::Assistant => ("assistant", blocks),
            };
            json!({"role": role, "content": blocks})
        })
        .collect()
}

/// Anthropic wants a user turn's `tool_result` blocks before anything else in it.
fn tool_results_first(blocks: Vec<Value>) -> Vec<Value> {
    let (mut results, rest): (Vec<Value>, Vec<Value>) =
        blocks.into_iter().partition(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"));
    results.extend(rest);
    results
}

/// One canonical part as a block and the role of the turn it belongs in.
fn encode_part(role: Role, part: &ContentPart) -> Option<(Role, Value)> {
    match part {
        ContentPart::ToolCall { id, name, arguments } => {
            Some((Role::Assistant, json!({"type": "tool_use", "id": id, "name": name, "input": tool_input(arguments)})))
        }
        ContentPart::ToolResult { call_id, content, is_error, .. } => {
            let mut block = json!({"type": "tool_result", "tool_use_id": call_id});
            if let Some(c) = tool_result_content(content) {
                block["content"] = c;
            }
            if *is_error {
                block["is_error"] = Value::Bool(true);
            }
            Some((Role::User, block))
        }
        _ => encode_plain(part).map(|b| (role, b)),
    }
}

/// Text, images and this dialect's own blocks; `None` for what Anthropic cannot take.
fn encode_plain(part: &ContentPart) -> Option<Value> {
    match part {
        ContentPart::Text { text } if text.is_empty() => None,
        ContentPart::Text { text } => Some(json!({"type": "text", "text": text})),
        ContentPart::Image { source } => Some(json!({"type": "image", "source": image_source(source)})),
        ContentPart::Other { dialect: Dialect::Anthropic, value } => Some(value.clone()),
        ContentPart::Other { dialect, .. } => {
            tracing::debug!(dialect = dialect.as_str(), "dropping a content block Anthropic cannot take");
            None
        }
        ContentPart::ToolCall { .. } | ContentPart::ToolResult { .. } => None,
    }
}

/// A tool result's content: a plain string when it is one text, blocks otherwise, nothing when
/// empty.
fn tool_result_content(parts: &[ContentPart]) -> Option<Value> {
    if let [ContentPart::Text { text }] = parts {
        return Some(Value::from(text.as_str()));
    }
    let blocks: Vec<Value> = parts.iter().filter_map(encode_plain).collect();
    (!blocks.is_empty()).then_some(Value::Array(blocks))
}

fn image_source(source: &ImageSource) -> Value {
    match source {
        ImageSource::Base64 { media_type, data } => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        // A `data:` URL is inline bytes: Anthropic's url source takes only http(s).
        ImageSource::Url(url) => match parse_data_url(url) {
            Some((media_type, data)) => json!({"type": "base64", "media_type": media_type, "data": data}),
            None => json!({"type": "url", "url": url}),
        },
    }
}

/// Splits `data:image/png;base64,iVBOR...` into its media type and payload.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

fn encode_tool(t: &ToolDef) -> Value {
    let mut tool = Obj::new();
    tool.insert("name".into(), Value::from(t.name.as_str()));
    if let Some(d) = &t.description {
        tool.insert("description".into(), Value::from(d.as_str()));
    }
    // Anthropic requires an object schema; OpenAI allows a tool without parameters.
    let schema = match &t.parameters {
        Value::Object(_) => t.parameters.clone(),
        _ => json!({"type": "object", "properties": {}}),
    };
    tool.insert("input_schema".into(), schema);
    Value::Object(tool)
}

fn encode_tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
    }
}

#[cfg(test)]
mod tests;
