//! Anthropic Messages responses: [`encode`] an answer for a caller of this dialect, [`decode`] an
//! Anthropic provider's answer.

use http::HeaderMap;
use serde_json::{json, Value};

use super::{error, finish_reason, message_id, stop_reason, tool_input, usage_from, usage_to};
use crate::canonical::{ChatResponse, Choice, ContentPart, Dialect};
use crate::failure::{Failure, FailureClass};

/// An answer as an Anthropic `message`. An answer that came from an Anthropic provider is
/// returned as received (citations, thinking blocks, `stop_details` and all).
pub fn encode(resp: &ChatResponse) -> Value {
    if let Some((Dialect::Anthropic, native)) = &resp.native {
        return native.clone();
    }
    let choice = resp.choices.iter().find(|c| c.index == 0).or(resp.choices.first());
    let content: Vec<Value> = choice.map(content_blocks).unwrap_or_default();
    let (stop, sequence) = stop_reason(&choice.map(|c| c.finish_reason.clone()).unwrap_or_default());
    json!({
        "id": message_id(&resp.id),
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": sequence,
        "usage": usage_to(&resp.usage),
    })
}

/// Text and tool calls as blocks. An OpenAI refusal with no text becomes the text, so the
/// caller sees why.
fn content_blocks(choice: &Choice) -> Vec<Value> {
    let mut blocks: Vec<Value> = choice
        .content
        .iter()
        .filter_map(|part| match part {
            ContentPart::Text { text } if !text.is_empty() => Some(json!({"type": "text", "text": text})),
            ContentPart::ToolCall { id, name, arguments } => {
                Some(json!({"type": "tool_use", "id": id, "name": name, "input": tool_input(arguments)}))
            }
            ContentPart::Other { dialect: Dialect::Anthropic, value } => Some(value.clone()),
            _ => None,
        })
        .collect();
    if let Some(refusal) = choice.refusal.as_deref().filter(|r| !r.is_empty()) {
        if !blocks.iter().any(|b| b["type"] == "text") {
            blocks.insert(0, json!({"type": "text", "text": refusal}));
        }
    }
    blocks
}

/// Decodes a 2xx body from an Anthropic provider. A body that is not a message is
/// `invalid_response` (`malformed_body`); an error object inside a 200 is classified.
pub fn decode(body: &[u8]) -> Result<ChatResponse, Failure> {
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(format!("unparsable body: {e}")))?;
    if value.get("type").and_then(Value::as_str) == Some("error") {
        let error = value.get("error").cloned().unwrap_or(Value::Null);
        return Err(error::classify_error_object(200, &HeaderMap::new(), &error));
    }
    if value.get("type").and_then(Value::as_str) != Some("message") {
        return Err(malformed("the body is not a message".into()));
    }
    let blocks = value
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("the message has no content list".into()))?;
    let content = blocks.iter().map(decode_block).collect::<Result<Vec<_>, _>>()?;
    let stop = value.get("stop_reason").and_then(Value::as_str).unwrap_or("end_turn");
    let sequence = value.get("stop_sequence").and_then(Value::as_str);
    let refusal = value.pointer("/stop_details/explanation").and_then(Value::as_str).map(str::to_string);
    let text_of = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    Ok(ChatResponse {
        id: text_of("id"),
        model: text_of("model"),
        choices: vec![Choice {
            index: 0,
            content: content.into_iter().flatten().collect(),
            finish_reason: finish_reason(stop, sequence),
            refusal,
        }],
        usage: value.get("usage").map(usage_from).unwrap_or_default(),
        native: Some((Dialect::Anthropic, value.clone())),
    })
}

/// Text and tool_use blocks; thinking, server tool and other blocks are not canonical content.
fn decode_block(block: &Value) -> Result<Option<ContentPart>, Failure> {
    let field = |k: &str| block.get(k).and_then(Value::as_str);
    Ok(match field("type") {
        Some("text") => {
            Some(ContentPart::text(field("text").ok_or_else(|| malformed("a text block without text".into()))?))
        }
        Some("tool_use") => {
            let (Some(id), Some(name)) = (field("id"), field("name")) else {
                return Err(malformed("a tool_use block without id or name".into()));
            };
            let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
            Some(ContentPart::ToolCall { id: id.to_string(), name: name.to_string(), arguments: input.to_string() })
        }
        _ => None,
    })
}

fn malformed(message: String) -> Failure {
    Failure::new(FailureClass::InvalidResponse, message).detail("malformed_body")
}

#[cfg(test)]
mod tests;
