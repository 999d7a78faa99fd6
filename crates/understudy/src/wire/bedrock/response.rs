//! Converse response -> canonical [`ChatResponse`].
//!
//! Converse names neither the model nor the response (the request id is a header), so the id
//! is made up here and the model is filled in by the attempt from the deployment.

use serde_json::Value;

use super::{finish_reason, media_type, stop_sequence, usage};
use crate::canonical::{ChatResponse, Choice, ContentPart, Dialect, ImageSource};
use crate::failure::{Failure, FailureClass};

/// Decodes a 2xx Converse body.
pub fn decode(body: &[u8]) -> Result<ChatResponse, Failure> {
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(format!("unparsable body: {e}")))?;
    let blocks = value
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("the body has no output.message.content list".into()))?;
    let content = blocks.iter().filter_map(content_part).collect();
    let stop = value.get("stopReason").and_then(Value::as_str).unwrap_or("end_turn");
    Ok(ChatResponse {
        id: format!("bedrock-{}", uuid::Uuid::new_v4().simple()),
        model: String::new(),
        choices: vec![Choice {
            index: 0,
            content,
            finish_reason: finish_reason(stop, stop_sequence(&value)),
            refusal: None,
        }],
        usage: value.get("usage").map(usage).unwrap_or_default(),
        native: Some((Dialect::Bedrock, value.clone())),
    })
}

fn malformed(message: String) -> Failure {
    Failure::new(FailureClass::InvalidResponse, message).detail("malformed_body")
}

/// A content block (a union with one key) as a canonical part: text, tool use and images;
/// reasoning is not answer content; other blocks are kept as Bedrock's own.
fn content_part(block: &Value) -> Option<ContentPart> {
    let obj = block.as_object()?;
    if let Some(text) = obj.get("text").and_then(Value::as_str) {
        return (!text.is_empty()).then(|| ContentPart::text(text));
    }
    if let Some(tool) = obj.get("toolUse") {
        let field = |k: &str| tool.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let arguments = match tool.get("input") {
            Some(input) if !input.is_null() => input.to_string(),
            _ => "{}".to_string(),
        };
        return Some(ContentPart::ToolCall { id: field("toolUseId"), name: field("name"), arguments });
    }
    if let Some(image) = obj.get("image") {
        let format = image.get("format").and_then(Value::as_str);
        let data = image.pointer("/source/bytes").and_then(Value::as_str);
        if let (Some(format), Some(data)) = (format, data) {
            let source = ImageSource::Base64 { media_type: media_type(format), data: data.to_string() };
            return Some(ContentPart::Image { source });
        }
    }
    if obj.contains_key("reasoningContent") || obj.is_empty() {
        return None;
    }
    Some(ContentPart::Other { dialect: Dialect::Bedrock, value: block.clone() })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::canonical::{FinishReason, Usage};

    fn decode_value(v: Value) -> Result<ChatResponse, Failure> {
        decode(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn reference_sample_with_a_tool_call() {
        let v = json!({
            "output": {"message": {"role": "assistant", "content": [
                {"text": "Checking."},
                {"toolUse": {"toolUseId": "tooluse_2", "name": "get_weather", "input": {"city": "Oslo"}}}
            ]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 412, "outputTokens": 35, "totalTokens": 447, "cacheReadInputTokens": 0,
                      "cacheWriteInputTokens": 0},
            "metrics": {"latencyMs": 812}
        });
        let r = decode_value(v.clone()).unwrap();
        assert!(r.id.starts_with("bedrock-"));
        assert_eq!(r.model, "");
        assert_eq!(
            r.choices,
            vec![Choice {
                index: 0,
                content: vec![
                    ContentPart::text("Checking."),
                    ContentPart::ToolCall {
                        id: "tooluse_2".into(),
                        name: "get_weather".into(),
                        arguments: r#"{"city":"Oslo"}"#.into()
                    },
                ],
                finish_reason: FinishReason::ToolCalls,
                refusal: None,
            }]
        );
        assert_eq!(r.usage, Usage { input_tokens: 412, output_tokens: 35, ..Default::default() });
        assert_eq!(r.native, Some((Dialect::Bedrock, v)));
    }

    #[test]
    fn stop_reasons_and_filters() {
        let with = |stop: &str, extra: Value| {
            let mut v = json!({"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
                               "stopReason": stop, "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}});
            if let Value::Object(m) = extra {
                v.as_object_mut().unwrap().extend(m);
            }
            decode_value(v).unwrap().choices[0].finish_reason.clone()
        };
        assert_eq!(with("end_turn", json!({})), FinishReason::Stop);
        assert_eq!(with("max_tokens", json!({})), FinishReason::Length);
        assert_eq!(with("model_context_window_exceeded", json!({})), FinishReason::Length);
        assert_eq!(with("guardrail_intervened", json!({})), FinishReason::ContentFilter);
        assert_eq!(with("content_filtered", json!({})), FinishReason::ContentFilter);
        assert_eq!(with("malformed_tool_use", json!({})), FinishReason::Other("malformed_tool_use".into()));
        assert_eq!(
            with("stop_sequence", json!({"additionalModelResponseFields": {"stop_sequence": "END"}})),
            FinishReason::StopSequence(Some("END".into()))
        );
        assert_eq!(with("stop_sequence", json!({})), FinishReason::StopSequence(None));
    }

    #[test]
    fn images_reasoning_and_unknown_blocks() {
        let v = json!({"output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
            {"image": {"format": "png", "source": {"bytes": "iVBOR"}}},
            {"citationsContent": {"content": [{"text": "cited"}]}},
            {"text": ""}
        ]}}, "stopReason": "end_turn", "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}});
        let r = decode_value(v).unwrap();
        assert_eq!(
            r.choices[0].content,
            vec![
                ContentPart::Image {
                    source: ImageSource::Base64 { media_type: "image/png".into(), data: "iVBOR".into() }
                },
                ContentPart::Other {
                    dialect: Dialect::Bedrock,
                    value: json!({"citationsContent": {"content": [{"text": "cited"}]}})
                },
            ]
        );
    }

    #[test]
    fn malformed_bodies() {
        for bad in [&b"not json"[..], b"", b"[]", b"{}", br#"{"output":{"message":{"content":3}}}"#] {
            let f = decode(bad).unwrap_err();
            assert_eq!((f.class, f.detail), (FailureClass::InvalidResponse, Some("malformed_body")));
        }
        // A tool call without input gets an empty object.
        let r = decode(br#"{"output":{"message":{"content":[{"toolUse":{"toolUseId":"t","name":"f"}}]}}}"#).unwrap();
        assert_eq!(
            r.choices[0].content[0],
            ContentPart::ToolCall { id: "t".into(), name: "f".into(), arguments: "{}".into() }
        );
        assert_eq!(r.choices[0].finish_reason, FinishReason::Stop);
    }
}
