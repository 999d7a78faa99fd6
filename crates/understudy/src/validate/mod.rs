//! Response validation: a "successful" bad answer is a failure like any other
//! (`invalid_response`), so that it fails over instead of reaching the caller.

use crate::canonical::{ChatRequest, ChatResponse, FinishReason};
use crate::failure::{Failure, FailureClass};

/// The rules every route applies to a complete answer.
pub fn check(resp: &ChatResponse, req: &ChatRequest) -> Result<(), Failure> {
    let Some(choice) = resp.choices.first() else {
        return Err(Failure::new(FailureClass::InvalidResponse, "the answer has no choices").detail("empty_content"));
    };
    let filtered = choice.finish_reason == FinishReason::ContentFilter || choice.refusal.is_some();
    if !filtered && choice.text().trim().is_empty() && !choice.has_tool_calls() {
        return Err(Failure::new(FailureClass::InvalidResponse, "the answer is empty").detail("empty_content"));
    }
    if choice.finish_reason == FinishReason::Length {
        // Cut by the length limit when the caller's own limit was not reached.
        let reached = req.params.max_tokens.is_some_and(|m| resp.usage.output_tokens >= u64::from(m));
        if !reached {
            return Err(Failure::new(
                FailureClass::InvalidResponse,
                format!(
                    "the answer was cut by the length limit after {} tokens (requested limit: {})",
                    resp.usage.output_tokens,
                    req.params.max_tokens.map(|m| m.to_string()).unwrap_or_else(|| "none".into())
                ),
            )
            .detail("truncated"));
        }
    }
    Ok(())
}
