//! The Anthropic Messages dialect (`POST /v1/messages`), both directions:
//! * front: [`request::decode`], [`response::encode`], [`stream::Encoder`], [`error::encode`];
//! * provider: [`request::encode`], [`response::decode`], [`stream::Decoder`], [`error::classify`].
//!
//! Helpers shared by the two directions (stop reasons, usage, ids) live here.

pub mod error;
pub mod request;
pub mod response;
pub mod stream;

use serde_json::{json, Value};

use crate::canonical::{FinishReason, Usage};

/// Maps Anthropic's `stop_reason` (and `stop_sequence`) to the canonical finish reason.
pub(crate) fn finish_reason(stop_reason: &str, stop_sequence: Option<&str>) -> FinishReason {
    match stop_reason {
        "end_turn" => FinishReason::Stop,
        "stop_sequence" => FinishReason::StopSequence(stop_sequence.map(str::to_string)),
        // Output that filled the context window is truncated output, like max_tokens.
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

/// The canonical finish reason as Anthropic's `(stop_reason, stop_sequence)`.
pub(crate) fn stop_reason(reason: &FinishReason) -> (&'static str, Option<String>) {
    match reason {
        FinishReason::Stop | FinishReason::Other(_) => ("end_turn", None),
        FinishReason::StopSequence(s) => ("stop_sequence", s.clone()),
        FinishReason::Length => ("max_tokens", None),
        FinishReason::ToolCalls => ("tool_use", None),
        FinishReason::ContentFilter => ("refusal", None),
    }
}

/// Reads an Anthropic `usage` object. Canonical input counts every prompt token, so the cache
/// reads and writes that Anthropic reports separately are added back in.
pub(crate) fn usage_from(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cache_read = n("cache_read_input_tokens");
    let cache_write = n("cache_creation_input_tokens");
    Usage {
        input_tokens: n("input_tokens").saturating_add(cache_read).saturating_add(cache_write),
        output_tokens: n("output_tokens"),
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
    }
}

/// Anthropic's `input_tokens`: the uncached part of the prompt.
pub(crate) fn uncached_input(u: &Usage) -> u64 {
    u.input_tokens.saturating_sub(u.cache_read_tokens).saturating_sub(u.cache_write_tokens)
}

/// A full Anthropic `usage` object for a canonical one.
pub(crate) fn usage_to(u: &Usage) -> Value {
    json!({
        "input_tokens": uncached_input(u),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
    })
}

/// Message ids start with `msg_`; ids from other dialects get the prefix so SDKs that check
/// the shape stay happy.
pub(crate) fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_string()
    } else {
        format!("msg_{id}")
    }
}

/// Parses tool arguments (JSON text) into the object Anthropic's `input` requires; anything
/// that is not a JSON object becomes `{}` so one bad call does not sink the whole message.
pub(crate) fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::Object(Default::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_map_both_ways() {
        assert_eq!(finish_reason("end_turn", None), FinishReason::Stop);
        assert_eq!(
            finish_reason("stop_sequence", Some("\n\nHuman:")),
            FinishReason::StopSequence(Some("\n\nHuman:".into()))
        );
        assert_eq!(finish_reason("max_tokens", None), FinishReason::Length);
        assert_eq!(finish_reason("model_context_window_exceeded", None), FinishReason::Length);
        assert_eq!(finish_reason("tool_use", None), FinishReason::ToolCalls);
        assert_eq!(finish_reason("refusal", None), FinishReason::ContentFilter);
        assert_eq!(finish_reason("pause_turn", None), FinishReason::Other("pause_turn".into()));
        assert_eq!(stop_reason(&FinishReason::Other("x".into())), ("end_turn", None));
        assert_eq!(stop_reason(&FinishReason::StopSequence(Some("END".into()))), ("stop_sequence", Some("END".into())));
    }

    #[test]
    fn usage_counts_cache_as_input() {
        let u = usage_from(&json!({"input_tokens": 32, "output_tokens": 35,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 380}));
        assert_eq!(u.input_tokens, 412);
        assert_eq!(u.cache_read_tokens, 380);
        assert_eq!(usage_to(&u)["input_tokens"], 32);
    }

    #[test]
    fn ids_and_tool_input() {
        assert_eq!(message_id("msg_01"), "msg_01");
        assert_eq!(message_id("chatcmpl-1"), "msg_chatcmpl-1");
        assert_eq!(tool_input("{\"a\":1}"), json!({"a": 1}));
        assert_eq!(tool_input("[1]"), json!({}));
        assert_eq!(tool_input("{\"a\":"), json!({}));
    }
}
