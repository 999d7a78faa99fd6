//! AWS Bedrock Runtime: `POST /model/{modelId}/converse` (JSON), `/converse-stream` (binary
//! `application/vnd.amazon.eventstream`) and `/invoke` for the Titan and Cohere embeddings
//! models. Requests are authenticated like the real service: a SigV4 signature checked against
//! the secret the mock knows, or a Bedrock API key as a bearer token.

use std::time::SystemTime;

use http::request::Parts;
use http::StatusCode;
use serde_json::{Map, Value};

use super::{Invalid, Parsed};
use crate::http::Resp;
use crate::parse::{count_words, Str};
use crate::state::MockConfig;

mod embed;
mod errors;
pub(crate) mod frames;
mod reply;
pub(crate) mod sigv4;

pub(crate) use embed::embeddings;
pub(crate) use errors::{auth_error, aws_error, error, invalid};
pub(crate) use reply::answer;

/// The signing name Bedrock Runtime's signatures are scoped to.
const SERVICE: &str = "bedrock";

const TOP_LEVEL: [&str; 12] = [
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
    "serviceTier",
    "outputConfig",
];

const BLOCK_KINDS: [&str; 10] = [
    "text",
    "image",
    "document",
    "video",
    "toolUse",
    "toolResult",
    "guardContent",
    "cachePoint",
    "reasoningContent",
    "citationsContent",
];

/// Checks the request's credentials: `None` for a valid signature or an accepted Bedrock API
/// key, else the error Bedrock would answer.
pub(crate) fn authenticate(parts: &Parts, body: &[u8], config: &MockConfig, rid: u64) -> Option<Resp> {
    let auth = parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some(key) = auth.strip_prefix("Bearer ") {
        let key = key.trim();
        if key.is_empty() || !(config.api_keys.is_empty() || config.api_keys.iter().any(|k| k == key)) {
            return Some(aws_error(
                StatusCode::FORBIDDEN,
                "UnrecognizedClientException",
                "Authentication failed: Please make sure your API Key is valid.",
                rid,
            ));
        }
        return None;
    }
    if auth.is_empty() {
        return Some(aws_error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
            rid,
        ));
    }
    let req = sigv4::SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body,
    };
    let secret_for = |key_id: &str| match &config.aws_access_key_id {
        Some(known) if known != key_id => None,
        _ => Some(config.aws_secret_access_key.clone()),
    };
    match sigv4::verify(&req, auth, SERVICE, secret_for, SystemTime::now()) {
        Ok(_) => None,
        Err(sigv4::SigError::Incomplete(m)) => {
            Some(aws_error(StatusCode::BAD_REQUEST, "IncompleteSignatureException", &m, rid))
        }
        Err(sigv4::SigError::UnknownKey) => Some(aws_error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            rid,
        )),
        Err(sigv4::SigError::Invalid(m)) => {
            Some(aws_error(StatusCode::FORBIDDEN, "InvalidSignatureException", &m, rid))
        }
    }
}

/// Reads a Converse body. The model and the streaming mode come from the path (the caller sets
/// them); this checks the body as the real API does and counts the prompt's words.
pub(crate) fn parse(body: &[u8], lenient: bool) -> Result<Parsed<'static>, Invalid> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Invalid::new(format!("Malformed input request: {e}, please reformat your input and try again."))
    })?;
    let Value::Object(req) = value else {
        return Err(Invalid::new(
            "Malformed input request: expected a JSON object, please reformat your input and try again.",
        ));
    };
    let mut parsed =
        Parsed { prompt_words: words(&req), tool: tool_to_call(&req).map(|t| Str(t.into())), ..Parsed::default() };
    parsed.invalid = validate(&req, lenient).err();
    Ok(parsed)
}

fn words(req: &Map<String, Value>) -> u32 {
    fn texts(v: &Value) -> u32 {
        match v {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("text", Value::String(s)) => count_words(s),
                    (_, v) => texts(v),
                })
                .fold(0u32, u32::saturating_add),
            Value::Array(items) => items.iter().map(texts).fold(0u32, u32::saturating_add),
            _ => 0,
        }
    }
    texts(req.get("system").unwrap_or(&Value::Null)).saturating_add(texts(req.get("messages").unwrap_or(&Value::Null)))
}

/// `toolChoice.tool.name`, else the first declared tool.
fn tool_to_call(req: &Map<String, Value>) -> Option<String> {
    let config = req.get("toolConfig")?;
    if let Some(name) = config.pointer("/toolChoice/tool/name").and_then(Value::as_str) {
        return Some(name.to_string());
    }
    config.get("tools")?.as_array()?.iter().find_map(|t| t.pointer("/toolSpec/name")?.as_str().map(str::to_string))
}

fn validate(req: &Map<String, Value>, lenient: bool) -> Result<(), Invalid> {
    if !lenient {
        if let Some(k) = req.keys().find(|k| !TOP_LEVEL.contains(&k.as_str())) {
            return Err(Invalid::new(format!("Malformed input request: extraneous key [{k}] is not permitted")));
        }
    }
    let Some(messages) = req.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()) else {
        return Err(Invalid::new("A conversation must start with a user message. Try again with a conversation that starts with a user message."));
    };
    validate_turns(messages)?;
    let uses_tools = messages
        .iter()
        .flat_map(|m| m.get("content").and_then(Value::as_array).into_iter().flatten())
        .any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some());
    if uses_tools && req.get("toolConfig").is_none() {
        return Err(Invalid::new(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
        ));
    }
    if let Some(system) = req.get("system") {
        let ok = system.as_array().is_some_and(|s| {
            s.iter().all(|b| {
                b.get("text").and_then(Value::as_str).is_some_and(|t| !t.is_empty())
                    || b.get("cachePoint").is_some()
                    || b.get("guardContent").is_some()
            })
        });
        if !ok {
            return Err(Invalid::new("The system field must be a list of non-blank text blocks."));
        }
    }
    if let Some(config) = req.get("inferenceConfig") {
        validate_inference(config)?;
    }
    if let Some(config) = req.get("toolConfig") {
        validate_tools(config)?;
    }
    Ok(())
}

/// Roles are user/assistant, the conversation starts with the user and alternates, every block
/// is a one-key union of a known kind, and every tool result answers a call of the turn before.
fn validate_turns(messages: &[Value]) -> Result<(), Invalid> {
    let mut previous: Option<&str> = None;
    let mut calls: Vec<&str> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if !matches!(role, "user" | "assistant") {
            return Err(Invalid::new(format!("1 validation error detected: Value '{role}' at 'messages.{}.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]", i + 1)));
        }
        match previous {
            None if role != "user" => {
                return Err(Invalid::new("A conversation must start with a user message. Try again with a conversation that starts with a user message."))
            }
            Some(p) if p == role => {
                return Err(Invalid::new("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again."))
            }
            _ => {}
        }
        previous = Some(role);
        let blocks = m.get("content").and_then(Value::as_array).filter(|c| !c.is_empty()).ok_or_else(|| {
            Invalid::new(format!("The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."))
        })?;
        let mut this_turn_calls = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            validate_block(b, i, j)?;
            if let Some(id) = b.pointer("/toolUse/toolUseId").and_then(Value::as_str) {
                this_turn_calls.push(id);
            }
            if let Some(id) = b.pointer("/toolResult/toolUseId").and_then(Value::as_str) {
                if !calls.contains(&id) {
                    return Err(Invalid::new(format!("messages.{i}.content.{j}: the toolResult block's toolUseId {id} does not match any toolUse block in the previous turn.")));
                }
            }
        }
        calls = this_turn_calls;
    }
    Ok(())
}

fn validate_block(b: &Value, i: usize, j: usize) -> Result<(), Invalid> {
    let at = format!("messages.{i}.content.{j}");
    let Some(obj) = b.as_object().filter(|o| o.len() == 1) else {
        return Err(Invalid::new(format!("The ContentBlock object at {at} must set exactly one of its members.")));
    };
    let (kind, value) = obj.iter().next().map(|(k, v)| (k.as_str(), v)).unwrap_or(("", &Value::Null));
    if !BLOCK_KINDS.contains(&kind) {
        return Err(Invalid::new(format!("Malformed input request: unknown ContentBlock member [{kind}] at {at}")));
    }
    match kind {
        "text" if value.as_str().is_none_or(|t| t.trim().is_empty()) => Err(Invalid::new(format!(
            "The text field in the ContentBlock object at {at} is blank. Add text to the text field, and try again."
        ))),
        "image" => {
            let format_ok =
                matches!(value.get("format").and_then(Value::as_str), Some("png" | "jpeg" | "gif" | "webp"));
            let source_ok = value.pointer("/source/bytes").and_then(Value::as_str).is_some()
                || value.pointer("/source/s3Location/uri").is_some();
            if format_ok && source_ok {
                Ok(())
            } else {
                Err(Invalid::new(format!(
                    "The image block at {at} needs a format (png, jpeg, gif, webp) and a source."
                )))
            }
        }
        "toolUse" => {
            let ok = value.get("toolUseId").and_then(Value::as_str).is_some()
                && value.get("name").and_then(Value::as_str).is_some()
                && value.get("input").is_some_and(Value::is_object);
            ok.then_some(()).ok_or_else(|| {
                Invalid::new(format!("The toolUse block at {at} needs toolUseId, name and an input object."))
            })
        }
        "toolResult" => {
            let ok = value.get("toolUseId").and_then(Value::as_str).is_some()
                && value.get("content").is_some_and(Value::is_array);
            ok.then_some(()).ok_or_else(|| {
                Invalid::new(format!("The toolResult block at {at} needs toolUseId and a content list."))
            })
        }
        _ => Ok(()),
    }
}

fn validate_inference(config: &Value) -> Result<(), Invalid> {
    let Some(c) = config.as_object() else {
        return Err(Invalid::new("inferenceConfig must be an object."));
    };
    for (k, v) in c {
        let ok = match k.as_str() {
            "maxTokens" => v.as_u64().is_some_and(|n| n >= 1),
            "temperature" | "topP" => v.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x)),
            "stopSequences" => v.as_array().is_some_and(|s| s.iter().all(Value::is_string)),
            _ => {
                return Err(Invalid::new(format!(
                    "Malformed input request: extraneous key [{k}] is not permitted in inferenceConfig"
                )))
            }
        };
        if !ok {
            return Err(Invalid::new(format!(
                "1 validation error detected: Value '{v}' at 'inferenceConfig.{k}' failed to satisfy constraint"
            )));
        }
    }
    Ok(())
}

fn validate_tools(config: &Value) -> Result<(), Invalid> {
    let tools = config.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty());
    let Some(tools) = tools else {
        return Err(Invalid::new("The toolConfig field must have at least one tool."));
    };
    for (i, t) in tools.iter().enumerate() {
        let spec = t.get("toolSpec");
        let ok = spec.is_some_and(|s| {
            s.get("name").and_then(Value::as_str).is_some_and(|n| !n.is_empty())
                && s.pointer("/inputSchema/json").is_some_and(Value::is_object)
        });
        if !ok && t.get("cachePoint").is_none() {
            return Err(Invalid::new(format!("toolConfig.tools.{i}: a toolSpec needs a name and inputSchema.json.")));
        }
    }
    if let Some(choice) = config.get("toolChoice") {
        let ok = choice.as_object().is_some_and(|c| {
            c.len() == 1 && (c.contains_key("auto") || c.contains_key("any") || choice.pointer("/tool/name").is_some())
        });
        if !ok {
            return Err(Invalid::new(format!("toolConfig.toolChoice must be one of auto, any or tool, not {choice}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn invalid_of(body: Value) -> String {
        parse(&serde_json::to_vec(&body).unwrap(), false).unwrap().invalid.map(|i| i.message).unwrap_or_default()
    }

    #[test]
    fn extracts_words_and_the_tool() {
        let body = json!({
            "system": [{"text": "Be brief."}],
            "messages": [{"role": "user", "content": [{"text": "hello there"}]}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]}
        });
        let p = parse(&serde_json::to_vec(&body).unwrap(), false).unwrap();
        assert_eq!(p.prompt_words, 4);
        assert_eq!(p.tool.as_deref(), Some("get_weather"));
        assert_eq!(p.invalid, None);
    }

    #[test]
    fn validation_messages() {
        let u = json!({"role": "user", "content": [{"text": "hi"}]});
        let a = json!({"role": "assistant", "content": [{"text": "yo"}]});
        let cases = [
            (json!({"messages": []}), "must start with a user message"),
            (json!({"messages": [a.clone()]}), "must start with a user message"),
            (json!({"messages": [u.clone(), u.clone()]}), "must alternate"),
            (json!({"messages": [u.clone()], "maxTokens": 5}), "extraneous key [maxTokens]"),
            (json!({"messages": [{"role": "user", "content": [{"text": ""}]}]}), "is blank"),
            (json!({"messages": [{"role": "user", "content": [{"text": "a", "image": {}}]}]}), "exactly one"),
            (json!({"messages": [{"role": "user", "content": [{"type": "text"}]}]}), "unknown ContentBlock member"),
            (json!({"messages": [u.clone()], "inferenceConfig": {"max_tokens": 5}}), "extraneous key [max_tokens]"),
            (json!({"messages": [u.clone()], "inferenceConfig": {"temperature": 3}}), "inferenceConfig.temperature"),
            (
                json!({"messages": [u.clone(), {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]}]}),
                "toolConfig field must be defined",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"toolResult": {"toolUseId": "t9", "content": []}}]}],
                       "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {}}}}]}}),
                "does not match any toolUse",
            ),
            (json!({"messages": [u.clone()], "toolConfig": {"tools": []}}), "at least one tool"),
        ];
        for (body, want) in cases {
            let got = invalid_of(body.clone());
            assert!(got.contains(want), "{body}: {got}");
        }
        let ok = json!({
            "messages": [u, {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]},
                         {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "4C"}]}}]}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}], "toolChoice": {"auto": {}}},
            "inferenceConfig": {"maxTokens": 10, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
            "additionalModelRequestFields": {"top_k": 5}
        });
        assert_eq!(invalid_of(ok), "");
        assert!(parse(b"[1]", false).is_err());
        assert!(parse(b"nope", false).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse(&bytes, false);
        }
    }
}
