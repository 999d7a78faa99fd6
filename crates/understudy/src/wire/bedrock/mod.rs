//! The AWS Bedrock Runtime dialect: Converse (`POST /model/{modelId}/converse`), ConverseStream
//! (`/converse-stream`, a binary `application/vnd.amazon.eventstream`) and, for embeddings,
//! InvokeModel with the Titan and Cohere bodies. Provider side only: the gateway has no Bedrock
//! front, so there is no `request::decode`, `response::encode`, `stream::Encoder` or
//! `error::encode` here.
//!
//! Helpers shared by responses and streams (stop reasons, usage, model ids) live here.

pub mod embeddings;
pub mod error;
pub mod eventstream;
pub mod request;
pub mod response;
pub mod stream;

#[cfg(test)]
mod proptests;

use serde_json::Value;

use crate::canonical::{FinishReason, Usage};

/// Maps a Converse `stopReason`. Output that filled the context window is truncated output, like
/// `max_tokens`; a guardrail or content filter is a content filter; `malformed_model_output` and
/// `malformed_tool_use` keep their names.
pub(crate) fn finish_reason(stop_reason: &str, stop_sequence: Option<&str>) -> FinishReason {
    match stop_reason {
        "end_turn" => FinishReason::Stop,
        "tool_use" => FinishReason::ToolCalls,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "stop_sequence" => FinishReason::StopSequence(stop_sequence.map(str::to_string)),
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

/// The stop sequence a model reported in `additionalModelResponseFields` (Claude's
/// `stop_sequence`), when it did.
pub(crate) fn stop_sequence(message: &Value) -> Option<&str> {
    message.pointer("/additionalModelResponseFields/stop_sequence").and_then(Value::as_str)
}

/// Reads a Converse `usage` object. Canonical input counts every prompt token. Bedrock reports
/// cache reads and writes beside `inputTokens`; whether `inputTokens` already includes them is
/// read from `totalTokens` (which includes everything), so both conventions come out right.
pub(crate) fn usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (input, output) = (n("inputTokens"), n("outputTokens"));
    let (read, write) = (n("cacheReadInputTokens"), n("cacheWriteInputTokens"));
    let all_input = match u.get("totalTokens").and_then(Value::as_u64) {
        Some(total) if total.saturating_sub(output) >= input => total - output,
        _ => input.saturating_add(read).saturating_add(write),
    };
    Usage { input_tokens: all_input, output_tokens: output, cache_read_tokens: read, cache_write_tokens: write }
}

/// A model id (or inference profile id, or ARN) as one URL path segment: every byte but the
/// unreserved ones is percent-encoded (`:` -> `%3A`, `/` -> `%2F`).
pub fn encode_model_id(model: &str) -> String {
    let mut out = String::with_capacity(model.len() + 8);
    for b in model.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The media type of an image `format` (`png` -> `image/png`).
pub(crate) fn media_type(format: &str) -> String {
    match format {
        "jpg" => "image/jpeg".to_string(),
        other => format!("image/{other}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stop_reasons() {
        assert_eq!(finish_reason("end_turn", None), FinishReason::Stop);
        assert_eq!(finish_reason("tool_use", None), FinishReason::ToolCalls);
        assert_eq!(finish_reason("max_tokens", None), FinishReason::Length);
        assert_eq!(finish_reason("model_context_window_exceeded", None), FinishReason::Length);
        assert_eq!(finish_reason("stop_sequence", Some("END")), FinishReason::StopSequence(Some("END".into())));
        assert_eq!(finish_reason("stop_sequence", None), FinishReason::StopSequence(None));
        assert_eq!(finish_reason("guardrail_intervened", None), FinishReason::ContentFilter);
        assert_eq!(finish_reason("content_filtered", None), FinishReason::ContentFilter);
        assert_eq!(finish_reason("malformed_model_output", None), FinishReason::Other("malformed_model_output".into()));
        assert_eq!(finish_reason("malformed_tool_use", None), FinishReason::Other("malformed_tool_use".into()));
    }

    #[test]
    fn usage_counts_every_prompt_token_once() {
        // Cache counts beside inputTokens, included in totalTokens.
        let u = usage(&json!({"inputTokens": 12, "outputTokens": 5, "totalTokens": 417,
                              "cacheReadInputTokens": 380, "cacheWriteInputTokens": 20}));
        assert_eq!((u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens), (412, 5, 380, 20));
        // inputTokens already counting the cache.
        let u = usage(&json!({"inputTokens": 412, "outputTokens": 5, "totalTokens": 417, "cacheReadInputTokens": 380}));
        assert_eq!(u.input_tokens, 412);
        // No total: the cache is added.
        let u = usage(&json!({"inputTokens": 12, "outputTokens": 5, "cacheReadInputTokens": 380}));
        assert_eq!(u.input_tokens, 392);
        let u = usage(&json!({"inputTokens": 412, "outputTokens": 35, "totalTokens": 447}));
        assert_eq!((u.input_tokens, u.output_tokens), (412, 35));
        assert_eq!(usage(&json!("x")), Usage::default());
    }

    #[test]
    fn model_ids_are_one_path_segment() {
        assert_eq!(
            encode_model_id("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
        );
        assert_eq!(
            encode_model_id("arn:aws:bedrock:us-east-1:123:inference-profile/us.x"),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.x"
        );
        assert_eq!(encode_model_id("m+error=rate_limit"), "m%2Berror%3Drate_limit");
        assert_eq!(encode_model_id("é"), "%C3%A9");
    }
}
