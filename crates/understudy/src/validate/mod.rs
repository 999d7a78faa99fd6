//! Response validation: a "successful" bad answer is a failure like any other
//! (`invalid_response`), so that it fails over instead of reaching the caller.
//!
//! Rules that can be judged from the first content (non-empty) run at the commit point of a
//! stream. Rules that need the whole answer (JSON, schema, regular expressions, tool arguments,
//! truncation) make a route buffer streams until the answer is complete and valid.

mod rules;

pub use rules::Rules;

use crate::canonical::{ChatRequest, ChatResponse, ContentPart, FinishReason, ResponseFormat};
use crate::failure::{Failure, FailureClass};

fn invalid(detail: &'static str, message: impl Into<String>) -> Failure {
    Failure::new(FailureClass::InvalidResponse, message).detail(detail)
}

/// Checks a complete answer against the route's rules.
pub fn check(resp: &ChatResponse, req: &ChatRequest, rules: &Rules) -> Result<(), Failure> {
    let Some(choice) = resp.choices.first() else {
        return Err(invalid("empty_content", "the answer has no choices"));
    };
    let filtered = choice.finish_reason == FinishReason::ContentFilter || choice.refusal.is_some();
    if filtered && rules.content_filter_fails {
        let why = choice.refusal.clone().unwrap_or_else(|| "the answer was stopped by the content filter".into());
        return Err(Failure::new(FailureClass::ContentFiltered, why).detail("filtered_answer"));
    }
    let text = choice.text();
    if rules.non_empty && !filtered && text.trim().is_empty() && !choice.has_tool_calls() {
        return Err(invalid("empty_content", "the answer is empty"));
    }
    if rules.truncation && choice.finish_reason == FinishReason::Length {
        // Cut by the length limit when the caller's own limit was not reached.
        let reached = req.params.max_tokens.is_some_and(|m| resp.usage.output_tokens >= u64::from(m));
        if !reached {
            let limit = req.params.max_tokens.map(|m| m.to_string()).unwrap_or_else(|| "none".into());
            let msg = format!(
                "the answer was cut by the length limit after {} tokens (requested limit: {limit})",
                resp.usage.output_tokens
            );
            return Err(invalid("truncated", msg));
        }
    }
    if rules.tool_arguments {
        for part in &choice.content {
            if let ContentPart::ToolCall { name, arguments, .. } = part {
                let ok = arguments.trim().is_empty()
                    || serde_json::from_str::<serde_json::Value>(arguments).is_ok_and(|v| v.is_object());
                if !ok {
                    return Err(invalid(
                        "invalid_tool_arguments",
                        format!("tool call `{name}` has arguments that are not a JSON object"),
                    ));
                }
            }
        }
    }
    let wants_json =
        matches!(req.response_format, Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. }));
    if wants_json && (rules.json || rules.json_schema) && !choice.has_tool_calls() && !filtered {
        let value: serde_json::Value = match serde_json::from_str(strip_fences(&text)) {
            Ok(v) => v,
            Err(e) if rules.json => return Err(invalid("invalid_json", format!("the answer is not valid JSON: {e}"))),
            Err(_) => serde_json::Value::Null,
        };
        if let (true, Some(ResponseFormat::JsonSchema { schema, name, .. })) = (rules.json_schema, &req.response_format)
        {
            rules.check_schema(name, schema, &value)?;
        }
    }
    if !filtered {
        rules.check_text(&text)?;
    }
    Ok(())
}

/// Models sometimes wrap JSON in a Markdown fence; the content inside is what counts.
fn strip_fences(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else { return t };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

#[cfg(test)]
mod tests;
