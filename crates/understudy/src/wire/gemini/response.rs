//! Gemini `GenerateContentResponse` -> canonical [`ChatResponse`], and the pieces of it the
//! stream decoder shares (finish reasons, usage, blocked prompts, function calls).

use http::HeaderMap;
use serde_json::{Map, Value};

use super::error::classify_value;
use crate::canonical::{ChatResponse, Choice, ContentPart, Dialect, FinishReason, ImageSource, Usage};
use crate::failure::{Failure, FailureClass};

/// Decodes a 2xx non-streaming body (an object, or an array holding exactly one).
pub fn decode(body: &[u8]) -> Result<ChatResponse, Failure> {
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(format!("unparsable body: {e}")))?;
    let obj = unwrap_one(value).ok_or_else(|| malformed("body is not a GenerateContentResponse object".into()))?;
    if obj.contains_key("error") {
        return Err(classify_value(200, &HeaderMap::new(), &Value::Object(obj)));
    }
    if let Some(f) = blocked_prompt(&obj) {
        return Err(f);
    }
    let choices = match obj.get("candidates") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(cands)) => cands.iter().enumerate().filter_map(|(i, c)| choice(i, c)).collect(),
        Some(_) => return Err(malformed("`candidates` is not an array".into())),
    };
    Ok(ChatResponse {
        id: str_field(&obj, "responseId"),
        model: str_field(&obj, "modelVersion"),
        choices,
        usage: obj.get("usageMetadata").map(usage).unwrap_or_default(),
        native: Some((Dialect::Gemini, Value::Object(obj))),
    })
}

fn malformed(message: String) -> Failure {
    Failure::new(FailureClass::InvalidResponse, message).detail("malformed_body")
}

/// The object itself, or the only element of a one-element array.
pub(super) fn unwrap_one(value: Value) -> Option<Map<String, Value>> {
    match value {
        Value::Object(o) => Some(o),
        Value::Array(mut items) if items.len() == 1 => match items.pop() {
            Some(Value::Object(o)) => Some(o),
            _ => None,
        },
        _ => None,
    }
}

fn str_field(obj: &Map<String, Value>, key: &str) -> String {
    obj.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// A prompt Gemini refused to answer: HTTP 200, no candidates, `promptFeedback.blockReason`.
pub(super) fn blocked_prompt(obj: &Map<String, Value>) -> Option<Failure> {
    let has_candidates = obj.get("candidates").and_then(Value::as_array).is_some_and(|c| !c.is_empty());
    if has_candidates {
        return None;
    }
    let feedback = obj.get("promptFeedback")?;
    let reason = feedback.get("blockReason").and_then(Value::as_str)?;
    let mut message = format!("prompt blocked by Gemini: {reason}");
    if let Some(m) = feedback.get("blockReasonMessage").and_then(Value::as_str) {
        message.push_str(": ");
        message.push_str(m);
    }
    Some(Failure::new(FailureClass::ContentFiltered, message).detail("prompt_blocked"))
}

/// One candidate as a choice; `None` when it is not an object.
fn choice(position: usize, cand: &Value) -> Option<Choice> {
    let cand = cand.as_object()?;
    let mut content = Vec::new();
    let mut calls = 0u32;
    for part in candidate_parts(cand) {
        if let Some(call) = part.get("functionCall") {
            content.push(tool_call(call, calls));
            calls += 1;
        } else if let Some(p) = content_part(part) {
            content.push(p);
        }
    }
    let reason = cand.get("finishReason").and_then(Value::as_str).unwrap_or("STOP");
    Some(Choice {
        index: candidate_index(cand, position),
        content,
        finish_reason: finish_reason(reason, calls > 0),
        refusal: None,
    })
}

/// `candidate.index`, else its position in the array.
pub(super) fn candidate_index(cand: &Map<String, Value>, position: usize) -> u32 {
    cand.get("index")
        .and_then(Value::as_u64)
        .and_then(|i| u32::try_from(i).ok())
        .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX))
}

/// The candidate's parts that are answer content: thoughts (`thought: true`) are left out.
pub(super) fn candidate_parts(cand: &Map<String, Value>) -> impl Iterator<Item = &Map<String, Value>> {
    cand.get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
}

/// A non-call part: text, an image, or another Gemini part kept as [`ContentPart::Other`].
fn content_part(part: &Map<String, Value>) -> Option<ContentPart> {
    if let Some(text) = part.get("text").and_then(Value::as_str) {
        return (!text.is_empty()).then(|| ContentPart::text(text));
    }
    if let Some(img) = part.get("inlineData").and_then(|d| image(d, "data")) {
        let (media_type, data) = img;
        return Some(ContentPart::Image { source: ImageSource::Base64 { media_type, data } });
    }
    if let Some((_, uri)) = part.get("fileData").and_then(|d| image(d, "fileUri")) {
        return Some(ContentPart::Image { source: ImageSource::Url(uri) });
    }
    // Only a bare thought signature or metadata: nothing to carry.
    let meaningful = part.keys().any(|k| k != "thoughtSignature" && k != "partMetadata");
    meaningful.then(|| ContentPart::Other { dialect: Dialect::Gemini, value: Value::Object(part.clone()) })
}

/// `(mimeType, <key>)` of an `inlineData` / `fileData` holding an image.
fn image(data: &Value, key: &str) -> Option<(String, String)> {
    let mime = data.get("mimeType").and_then(Value::as_str)?;
    let payload = data.get(key).and_then(Value::as_str)?;
    mime.starts_with("image/").then(|| (mime.to_string(), payload.to_string()))
}

/// A `functionCall` part as a canonical tool call; `ordinal` numbers the calls of one choice.
pub(super) fn tool_call(call: &Value, ordinal: u32) -> ContentPart {
    let (id, name, arguments) = call_fields(call, ordinal);
    ContentPart::ToolCall { id, name, arguments }
}

/// `(id, name, arguments as JSON text)`. Gemini ids are optional: `call_<ordinal>` stands in.
pub(super) fn call_fields(call: &Value, ordinal: u32) -> (String, String, String) {
    let id = match call.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => format!("call_{ordinal}"),
    };
    let name = call.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let arguments = match call.get("args") {
        Some(args) if !args.is_null() => serde_json::to_string(args).unwrap_or_default(),
        _ => "{}".to_string(),
    };
    (id, name, arguments)
}

/// Maps a Gemini `finishReason`. A tool call ends with `STOP`; `has_calls` turns that into
/// [`FinishReason::ToolCalls`].
pub(super) fn finish_reason(reason: &str, has_calls: bool) -> FinishReason {
    match reason {
        "STOP" if has_calls => FinishReason::ToolCalls,
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "PROHIBITED_CONTENT"
        | "BLOCKLIST"
        | "SPII"
        | "RECITATION"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

/// `usageMetadata` -> [`Usage`]. Tool-use prompt tokens count as input (Gemini bills them so,
/// and `totalTokenCount` includes them); thinking tokens count as output.
pub(super) fn usage(meta: &Value) -> Usage {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n("promptTokenCount").saturating_add(n("toolUsePromptTokenCount")),
        output_tokens: n("candidatesTokenCount").saturating_add(n("thoughtsTokenCount")),
        cache_read_tokens: n("cachedContentTokenCount"),
        cache_write_tokens: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_value(v: Value) -> Result<ChatResponse, Failure> {
        decode(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn reference_sample() {
        let v = json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "STOP", "index": 0,
                            "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]}],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 3, "totalTokenCount": 15,
                              "thoughtsTokenCount": 0, "cachedContentTokenCount": 0},
            "modelVersion": "gemini-2.5-flash", "responseId": "abc"
        });
        let r = decode_value(v.clone()).unwrap();
        assert_eq!(r.id, "abc");
        assert_eq!(r.model, "gemini-2.5-flash");
        assert_eq!(
            r.choices,
            vec![Choice {
                index: 0,
                content: vec![ContentPart::text("Hi")],
                finish_reason: FinishReason::Stop,
                refusal: None
            }]
        );
        assert_eq!(r.usage, Usage { input_tokens: 12, output_tokens: 3, cache_read_tokens: 0, cache_write_tokens: 0 });
        assert_eq!(r.native, Some((Dialect::Gemini, v)));
    }

    #[test]
    fn function_calls_thoughts_and_usage() {
        let v = json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "planning...", "thought": true},
                {"text": "Let me check."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "c2ln"},
                {"functionCall": {"id": "fc-7", "name": "get_time", "args": {}}}
            ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 20, "thoughtsTokenCount": 30,
                              "cachedContentTokenCount": 64, "toolUsePromptTokenCount": 5},
            "modelVersion": "gemini-2.5-pro", "responseId": "r1"
        });
        let r = decode_value(v).unwrap();
        let c = &r.choices[0];
        assert_eq!(
            c.content,
            vec![
                ContentPart::text("Let me check."),
                ContentPart::ToolCall {
                    id: "call_0".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Oslo"}"#.into()
                },
                ContentPart::ToolCall { id: "fc-7".into(), name: "get_time".into(), arguments: "{}".into() },
            ]
        );
        assert_eq!(c.finish_reason, FinishReason::ToolCalls);
        assert_eq!(r.usage.input_tokens, 105);
        assert_eq!(r.usage.output_tokens, 50);
        assert_eq!(r.usage.cache_read_tokens, 64);
    }

    #[test]
    fn blocked_prompt_is_content_filtered() {
        let v = json!({
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT", "blockReasonMessage": "policy",
                               "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
            "modelVersion": "gemini-2.5-flash"
        });
        let f = decode_value(v).unwrap_err();
        assert_eq!(f.class, FailureClass::ContentFiltered);
        assert_eq!(f.detail, Some("prompt_blocked"));
        assert!(f.message.contains("PROHIBITED_CONTENT"), "{}", f.message);
        assert!(f.message.contains("policy"), "{}", f.message);
    }

    #[test]
    fn safety_and_other_finish_reasons() {
        let cand = |reason: &str| json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": reason}]});
        let reason = |r: &str| decode_value(cand(r)).unwrap().choices[0].finish_reason.clone();
        assert_eq!(reason("SAFETY"), FinishReason::ContentFilter);
        assert_eq!(reason("RECITATION"), FinishReason::ContentFilter);
        assert_eq!(reason("IMAGE_SAFETY"), FinishReason::ContentFilter);
        assert_eq!(reason("MAX_TOKENS"), FinishReason::Length);
        assert_eq!(reason("MALFORMED_FUNCTION_CALL"), FinishReason::Other("MALFORMED_FUNCTION_CALL".into()));
        // A safety stop may come without any content at all.
        let v = json!({"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": []}]});
        let r = decode_value(v).unwrap();
        assert_eq!(r.choices[0].finish_reason, FinishReason::ContentFilter);
        assert!(r.choices[0].content.is_empty());
    }

    #[test]
    fn array_wrapped_and_several_candidates() {
        let v = json!([{"candidates": [
            {"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP", "index": 0},
            {"content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS", "index": 1}
        ], "responseId": "x"}]);
        let r = decode_value(v).unwrap();
        assert_eq!(r.id, "x");
        assert_eq!(r.choices.len(), 2);
        assert_eq!(r.choices[1].index, 1);
        assert_eq!(r.choices[1].text(), "b");
        assert_eq!(r.choices[1].finish_reason, FinishReason::Length);
    }

    #[test]
    fn images_and_unknown_parts() {
        let v = json!({"candidates": [{"content": {"parts": [
            {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
            {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
            {"thoughtSignature": "c2ln"}
        ]}, "finishReason": "STOP"}]});
        let r = decode_value(v).unwrap();
        assert_eq!(
            r.choices[0].content,
            vec![
                ContentPart::Image {
                    source: ImageSource::Base64 { media_type: "image/png".into(), data: "iVBOR".into() }
                },
                ContentPart::Other {
                    dialect: Dialect::Gemini,
                    value: json!({"executableCode": {"language": "PYTHON", "code": "print(1)"}})
                },
            ]
        );
    }

    #[test]
    fn malformed_and_error_bodies() {
        for bad in [&b"not json"[..], b"", b"[]", b"[1,2]", b"42", br#"{"candidates": 3}"#] {
            let f = decode(bad).unwrap_err();
            assert_eq!(f.class, FailureClass::InvalidResponse, "{:?}", String::from_utf8_lossy(bad));
            assert_eq!(f.detail, Some("malformed_body"));
        }
        let f = decode(br#"{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}"#).unwrap_err();
        assert_eq!(f.class, FailureClass::Overloaded);
        assert_eq!(f.status, Some(503));
    }

    #[test]
    fn no_candidates_without_block_is_an_empty_answer() {
        let r = decode(br#"{"usageMetadata":{"promptTokenCount":3},"responseId":"e"}"#).unwrap();
        assert!(r.choices.is_empty());
        assert_eq!(r.usage.input_tokens, 3);
    }
}
