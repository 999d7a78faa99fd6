//! Chat Completions requests: [`decode`] reads a caller's request (front), [`encode`] writes one
//! for an OpenAI-compatible provider (provider side, in `request/encode.rs`).

mod encode;

pub use encode::encode;

use serde_json::{json, Map, Value};

use crate::canonical::{
    ChatRequest, ContentPart, Dialect, ImageSource, Message, Native, Params, ResponseFormat, Role, ToolChoice, ToolDef,
};
use crate::wire::BadRequest;

/// Decodes and validates a `POST /v1/chat/completions` body, naming the offending field in
/// [`BadRequest::param`] as OpenAI does (`messages[2].content`).
///
/// The canonical model has one system prompt, so `system` and `developer` messages are pulled to
/// the top of the conversation (into [`ChatRequest::system`]) even when they appear later. The
/// original order survives in `native` and reaches OpenAI-dialect providers unchanged.
///
/// Validation covers types and required fields; value ranges (temperature up to 2...) are left
/// to the provider, whose limits differ. Unknown fields, content parts and tool types are kept
/// (in `native`, or as [`ContentPart::Other`]).
pub fn decode(body: &[u8]) -> Result<ChatRequest, BadRequest> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        BadRequest::new(format!(
            "We could not parse the JSON body of your request ({e}). The OpenAI API expects a JSON payload."
        ))
    })?;
    let Value::Object(body) = value else {
        return Err(BadRequest::new("The request body must be a JSON object."));
    };
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) => return Err(missing("model")),
        Some(other) => return Err(invalid_type("model", "a string", other)),
    };
    let messages = match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => return Err(BadRequest::new(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        )
        .param("messages")),
        None | Some(Value::Null) => return Err(missing("messages")),
        Some(other) => return Err(invalid_type("messages", "an array", other)),
    };
    let mut req = ChatRequest { model, ..ChatRequest::default() };
    decode_messages(messages, &mut req)?;
    req.tools = decode_tools(body.get("tools"))?;
    req.tool_choice = decode_tool_choice(body.get("tool_choice"))?;
    req.response_format = decode_response_format(body.get("response_format"))?;
    req.params = decode_params(&body)?;
    req.stream = opt_bool(body.get("stream"), "stream")?.unwrap_or(false);
    req.include_usage = decode_stream_options(body.get("stream_options"), req.stream)?;
    req.native = Some(Native { dialect: Dialect::OpenAi, body, messages_edited: false });
    Ok(req)
}

fn decode_messages(messages: &[Value], req: &mut ChatRequest) -> Result<(), BadRequest> {
    // Consecutive tool messages answer one assistant turn: they share one canonical user message.
    let mut tool_turn_open = false;
    for (i, message) in messages.iter().enumerate() {
        let p = format!("messages[{i}]");
        let obj = message.as_object().ok_or_else(|| invalid_type(&p, "an object", message))?;
        let role = match obj.get("role") {
            Some(Value::String(r)) => r.as_str(),
            None | Some(Value::Null) => return Err(missing(&format!("{p}.role"))),
            Some(other) => return Err(invalid_type(&format!("{p}.role"), "a string", other)),
        };
        let name = opt_str(obj.get("name"), &format!("{p}.name"))?.map(str::to_string);
        match role {
            "system" | "developer" => req.system.extend(text_content(obj, &p, false)?),
            "user" => {
                let content = user_content(obj, &p)?;
                req.messages.push(Message {
                    role: Role::User,
                    content,
                    name,
                });
                tool_turn_open = false;
            }
            "assistant" => {
                let content = assistant_content(obj, &p)?;
                req.messages.push(Message {
                    role: Role::Assistant,
                    content,
                    name,
                });
                tool_turn_open = false;
            }
            "tool" | "function" => {
                let result = tool_result(obj, &p, role == "function")?;
                match req.messages.last_mut() {
                    Some(last) if tool_turn_open => last.content.push(result),
                    _ => req.messages.push(Message {
                        role: Role::User,
                        content: vec![result],
                        name: None,
                    }),
                }
                tool_turn_open = true;
            }
            other => {
                return Err(BadRequest::new(format!(
                    "Invalid value: '{other}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."
                ))
                .param(format!("{p}.role")))
            }
        }
    }
    Ok(())
}

/// Content of system, developer and tool messages: a string or text parts. `nullable` lets the
/// legacy `function` role send `content: null`.
fn text_content(obj: &Map<String, Value>, p: &str, nullable: bool) -> Result<Vec<ContentPart>, BadRequest> {
    let param = format!("{p}.content");
    match obj.get("content") {
        Some(Value::String(s)) => Ok(vec![ContentPart::text(s.as_str())]),
        Some(Value::Array(parts)) => {
            non_empty_parts(parts, &param)?;
            parts
                .iter()
                .enumerate()
                .map(|(j, part)| {
                    let pp = format!("{param}[{j}]");
                    match part_type(part, &pp)? {
                        "text" => text_part(part, &pp),
                        other => {
                            Err(BadRequest::new(format!("Invalid value: '{other}'. Supported values are: 'text'."))
                                .param(format!("{pp}.type")))
                        }
                    }
                })
                .collect()
        }
        None | Some(Value::Null) if nullable => Ok(Vec::new()),
        None | Some(Value::Null) => Err(missing(&param)),
        Some(other) => Err(invalid_type(&param, "one of a string or array of objects", other)),
    }
}

/// User content: a string, or text, image and other parts (audio, files... kept as `Other`).
fn user_content(obj: &Map<String, Value>, p: &str) -> Result<Vec<ContentPart>, BadRequest> {
    let param = format!("{p}.content");
    match obj.get("content") {
        Some(Value::String(s)) => Ok(vec![ContentPart::text(s.as_str())]),
        Some(Value::Array(parts)) => {
            non_empty_parts(parts, &param)?;
            parts
                .iter()
                .enumerate()
                .map(|(j, part)| {
                    let pp = format!("{param}[{j}]");
                    match part_type(part, &pp)? {
                        "text" => text_part(part, &pp),
                        "image_url" => image_part(part, &pp),
                        _ => Ok(ContentPart::Other { dialect: Dialect::OpenAi, value: part.clone() }),
                    }
                })
                .collect()
        }
        None | Some(Value::Null) => Err(missing(&param)),
        Some(other) => Err(invalid_type(&param, "one of a string or array of objects", other)),
    }
}

/// Assistant content: text (string, text or refusal parts) then tool calls. `content` may be
/// null when the message carries tool calls (or a refusal).
fn assistant_content(obj: &Map<String, Value>, p: &str) -> Result<Vec<ContentPart>, BadRequest> {
    let param = format!("{p}.content");
    let mut out = Vec::new();
    let has_calls =
        obj.get("tool_calls").is_some_and(|c| !c.is_null()) || obj.get("function_call").is_some_and(|c| !c.is_null());
    let refusal = opt_str(obj.get("refusal"), &format!("{p}.refusal"))?;
    match obj.get("content") {
        // "" is what clients send beside tool calls: a placeholder, not text.
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => out.push(ContentPart::text(s.as_str())),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let pp = format!("{param}[{j}]");
                out.push(match part_type(part, &pp)? {
                    "text" => text_part(part, &pp)?,
                    "refusal" => ContentPart::text(req_str(part.get("refusal"), &format!("{pp}.refusal"))?),
                    _ => ContentPart::Other { dialect: Dialect::OpenAi, value: part.clone() },
                });
            }
        }
        None | Some(Value::Null) if has_calls || refusal.is_some() => {}
        None | Some(Value::Null) => return Err(missing(&param)),
        Some(other) => return Err(invalid_type(&param, "one of a string or array of objects", other)),
    }
    if let Some(refusal) = refusal.filter(|_| out.is_empty()) {
        out.push(ContentPart::text(refusal));
    }
    out.extend(tool_calls(obj.get("tool_calls"), p)?);
    if let Some(call) = obj.get("function_call").filter(|c| !c.is_null()) {
        out.push(legacy_function_call(call, &format!("{p}.function_call"))?);
    }
    Ok(out)
}

fn tool_calls(v: Option<&Value>, p: &str) -> Result<Vec<ContentPart>, BadRequest> {
    let param = format!("{p}.tool_calls");
    let calls = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(calls)) => calls,
        Some(other) => return Err(invalid_type(&param, "an array", other)),
    };
    calls
        .iter()
        .enumerate()
        .map(|(k, call)| {
            let pp = format!("{param}[{k}]");
            let obj = call.as_object().ok_or_else(|| invalid_type(&pp, "an object", call))?;
            let id = req_str(obj.get("id"), &format!("{pp}.id"))?.to_string();
            // Custom (free-text) tool calls have no canonical form: same-dialect only.
            if obj.get("type").and_then(Value::as_str).is_some_and(|t| t != "function") {
                return Ok(ContentPart::Other { dialect: Dialect::OpenAi, value: call.clone() });
            }
            let fp = format!("{pp}.function");
            let function = req_obj(obj.get("function"), &fp)?;
            Ok(ContentPart::ToolCall {
                id,
                name: req_str(function.get("name"), &format!("{fp}.name"))?.to_string(),
                arguments: req_str(function.get("arguments"), &format!("{fp}.arguments"))?.to_string(),
            })
        })
        .collect()
}

/// The deprecated `function_call` has no id: the function's name stands in for one, and the
/// matching `role: function` result uses the same.
fn legacy_function_call(call: &Value, p: &str) -> Result<ContentPart, BadRequest> {
    let obj = call.as_object().ok_or_else(|| invalid_type(p, "an object", call))?;
    let name = req_str(obj.get("name"), &format!("{p}.name"))?.to_string();
    Ok(ContentPart::ToolCall {
        id: name.clone(),
        arguments: req_str(obj.get("arguments"), &format!("{p}.arguments"))?.to_string(),
        name,
    })
}

fn tool_result(obj: &Map<String, Value>, p: &str, legacy: bool) -> Result<ContentPart, BadRequest> {
    let (call_id, name) = if legacy {
        let name = req_str(obj.get("name"), &format!("{p}.name"))?.to_string();
        (name.clone(), Some(name))
    } else {
        (req_str(obj.get("tool_call_id"), &format!("{p}.tool_call_id"))?.to_string(), None)
    };
    Ok(ContentPart::ToolResult { call_id, name, content: text_content(obj, p, legacy)?, is_error: false })
}

fn non_empty_parts(parts: &[Value], param: &str) -> Result<(), BadRequest> {
    if parts.is_empty() {
        return Err(BadRequest::new(format!(
            "Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead."
        ))
        .param(param));
    }
    Ok(())
}

fn part_type<'v>(part: &'v Value, pp: &str) -> Result<&'v str, BadRequest> {
    let obj = part.as_object().ok_or_else(|| invalid_type(pp, "an object", part))?;
    req_str(obj.get("type"), &format!("{pp}.type"))
}

fn text_part(part: &Value, pp: &str) -> Result<ContentPart, BadRequest> {
    Ok(ContentPart::text(req_str(part.get("text"), &format!("{pp}.text"))?))
}

/// `{"type":"image_url","image_url":{"url"}}`; a `data:<type>;base64,<data>` URL becomes inline
/// bytes, anything else stays a URL. (A bare string `image_url` is tolerated.)
fn image_part(part: &Value, pp: &str) -> Result<ContentPart, BadRequest> {
    let param = format!("{pp}.image_url");
    let url = match part.get("image_url") {
        Some(Value::String(url)) => url.as_str(),
        Some(Value::Object(o)) => req_str(o.get("url"), &format!("{param}.url"))?,
        None | Some(Value::Null) => return Err(missing(&param)),
        Some(other) => return Err(invalid_type(&param, "an object", other)),
    };
    Ok(ContentPart::Image { source: image_source(url) })
}

fn image_source(url: &str) -> ImageSource {
    let inline = url.strip_prefix("data:").and_then(|rest| {
        let (meta, data) = rest.split_once(',')?;
        let media_type = meta.strip_suffix(";base64")?;
        Some(ImageSource::Base64 { media_type: media_type.to_string(), data: data.to_string() })
    });
    inline.unwrap_or_else(|| ImageSource::Url(url.to_string()))
}

/// Function tools become [`ToolDef`]s; other tool types (custom...) live on only in `native`.
fn decode_tools(v: Option<&Value>) -> Result<Vec<ToolDef>, BadRequest> {
    let tools = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(other) => return Err(invalid_type("tools", "an array", other)),
    };
    let mut out = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let p = format!("tools[{i}]");
        let obj = tool.as_object().ok_or_else(|| invalid_type(&p, "an object", tool))?;
        if req_str(obj.get("type"), &format!("{p}.type"))? != "function" {
            continue;
        }
        let fp = format!("{p}.function");
        let function = req_obj(obj.get("function"), &fp)?;
        let parameters = match function.get("parameters") {
            // Omitted parameters mean a function without arguments.
            None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
            Some(schema @ Value::Object(_)) => schema.clone(),
            Some(other) => return Err(invalid_type(&format!("{fp}.parameters"), "an object", other)),
        };
        out.push(ToolDef {
            name: req_str(function.get("name"), &format!("{fp}.name"))?.to_string(),
            description: opt_str(function.get("description"), &format!("{fp}.description"))?.map(str::to_string),
            parameters,
        });
    }
    Ok(out)
}

/// `"none" | "auto" | "required"`, `{"type":"function","function":{"name"}}`, or the
/// `allowed_tools` form (mapped to its mode; the list itself lives on in `native`).
fn decode_tool_choice(v: Option<&Value>) -> Result<Option<ToolChoice>, BadRequest> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "none" => Ok(Some(ToolChoice::None)),
            "auto" => Ok(Some(ToolChoice::Auto)),
            "required" => Ok(Some(ToolChoice::Required)),
            other => Err(BadRequest::new(format!(
                "Invalid value: '{other}'. Supported values are: 'none', 'auto', and 'required'."
            ))
            .param("tool_choice")),
        },
        Some(Value::Object(o)) => match req_str(o.get("type"), "tool_choice.type")? {
            "function" => {
                let function = req_obj(o.get("function"), "tool_choice.function")?;
                let name = req_str(function.get("name"), "tool_choice.function.name")?;
                Ok(Some(ToolChoice::Tool(name.to_string())))
            }
            "allowed_tools" => {
                let mode = o.get("allowed_tools").and_then(|a| a.get("mode")).and_then(Value::as_str);
                Ok(match mode {
                    Some("required") => Some(ToolChoice::Required),
                    Some("auto") => Some(ToolChoice::Auto),
                    _ => None,
                })
            }
            _ => Ok(None),
        },
        Some(other) => Err(invalid_type("tool_choice", "one of a string or an object", other)),
    }
}

/// `text`, `json_object` or `json_schema`; a newer type lives on only in `native`.
fn decode_response_format(v: Option<&Value>) -> Result<Option<ResponseFormat>, BadRequest> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(other) => return Err(invalid_type("response_format", "an object", other)),
    };
    Ok(match req_str(obj.get("type"), "response_format.type")? {
        "text" => Some(ResponseFormat::Text),
        "json_object" => Some(ResponseFormat::JsonObject),
        "json_schema" => {
            let js = req_obj(obj.get("json_schema"), "response_format.json_schema")?;
            Some(ResponseFormat::JsonSchema {
                name: req_str(js.get("name"), "response_format.json_schema.name")?.to_string(),
                schema: js.get("schema").cloned().unwrap_or_else(|| json!({})),
                strict: opt_bool(js.get("strict"), "response_format.json_schema.strict")?,
            })
        }
        _ => None,
    })
}

fn decode_params(body: &Map<String, Value>) -> Result<Params, BadRequest> {
    let max_completion = opt_token_count(body.get("max_completion_tokens"), "max_completion_tokens")?;
    let max_tokens = opt_token_count(body.get("max_tokens"), "max_tokens")?;
    Ok(Params {
        max_tokens: max_completion.or(max_tokens),
        temperature: opt_number(body.get("temperature"), "temperature")?,
        top_p: opt_number(body.get("top_p"), "top_p")?,
        stop: decode_stop(body.get("stop"))?,
    })
}

/// `stop`: a string or an array of strings.
fn decode_stop(v: Option<&Value>) -> Result<Vec<String>, BadRequest> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.as_str().map(str::to_string).ok_or_else(|| invalid_type(&format!("stop[{i}]"), "a string", s))
            })
            .collect(),
        Some(other) => Err(invalid_type("stop", "one of a string or array of strings", other)),
    }
}

/// `stream_options.include_usage`. Like OpenAI, `stream_options` is refused without `stream`.
fn decode_stream_options(v: Option<&Value>, stream: bool) -> Result<bool, BadRequest> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(false),
        Some(Value::Object(o)) => o,
        Some(other) => return Err(invalid_type("stream_options", "an object", other)),
    };
    if !stream {
        return Err(BadRequest::new("The 'stream_options' parameter is only allowed when 'stream' is enabled.")
            .param("stream_options"));
    }
    Ok(opt_bool(obj.get("include_usage"), "stream_options.include_usage")?.unwrap_or(false))
}

fn opt_number(v: Option<&Value>, param: &str) -> Result<Option<f64>, BadRequest> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(invalid_type(param, "a number", other)),
    }
}

/// A non-negative integer; values beyond `u32` saturate (no model has such a limit).
fn opt_token_count(v: Option<&Value>, param: &str) -> Result<Option<u32>, BadRequest> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().map(|n| u32::try_from(n).unwrap_or(u32::MAX))),
        Some(other) => Err(invalid_type(param, "a non-negative integer", other)),
    }
}

fn opt_bool(v: Option<&Value>, param: &str) -> Result<Option<bool>, BadRequest> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(invalid_type(param, "a boolean", other)),
    }
}

fn opt_str<'v>(v: Option<&'v Value>, param: &str) -> Result<Option<&'v str>, BadRequest> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid_type(param, "a string", other)),
    }
}

fn req_str<'v>(v: Option<&'v Value>, param: &str) -> Result<&'v str, BadRequest> {
    opt_str(v, param)?.ok_or_else(|| missing(param))
}

fn req_obj<'v>(v: Option<&'v Value>, param: &str) -> Result<&'v Map<String, Value>, BadRequest> {
    match v {
        None | Some(Value::Null) => Err(missing(param)),
        Some(Value::Object(o)) => Ok(o),
        Some(other) => Err(invalid_type(param, "an object", other)),
    }
}

pub(super) fn missing(param: &str) -> BadRequest {
    BadRequest::new(format!("Missing required parameter: '{param}'.")).param(param)
}

pub(super) fn invalid_type(param: &str, expected: &str, got: &Value) -> BadRequest {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    BadRequest::new(format!("Invalid type for '{param}': expected {expected}, but got {got} instead.")).param(param)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
