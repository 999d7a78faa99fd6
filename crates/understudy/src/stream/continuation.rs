//! Mid-stream continuation (`stream_failure: continue`): when a committed stream breaks, the
//! answer resumes on the next candidates. A candidate known to accept an assistant prefill gets
//! the partial answer as one and its output is spliced on; any other restarts from scratch, and
//! the caller is told in the stream. If every continuation fails, the caller gets the original
//! failure, never a masking error from a continuation attempt.

use std::sync::Arc;

use tokio::time::Instant;

use super::LiveStream;
use crate::canonical::{ChatRequest, ContentPart, Decoded, Message, ResponseFormat, Role, StreamEvent};
use crate::route::attempt::Success;
use crate::route::byok::CallerKeys;
use crate::route::fallback;
use crate::route::{Deployment, Route};

/// What a broken stream needs to resume.
pub struct Continuation {
    pub route: Arc<Route>,
    pub req: ChatRequest,
    /// Candidates after the one that broke, in chain order.
    pub remaining: Vec<Arc<Deployment>>,
    pub deadline: Instant,
    /// The caller's own provider keys, if it sent any.
    pub caller_keys: CallerKeys,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The new candidate continues the partial answer: its output is appended seamlessly.
    Spliced,
    /// The new candidate answers from scratch.
    Restarted,
}

impl Continuation {
    /// Tool-call and JSON-mode answers are never spliced (half a JSON document or a tool call
    /// glued to another model's is worse than an error).
    pub fn eligible(&self, delivered_tool_call: bool) -> bool {
        let json =
            matches!(self.req.response_format, Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. }));
        !json && !delivered_tool_call && !self.remaining.is_empty()
    }

    /// Tries the remaining candidates in order; `None` when none of them answered.
    pub async fn resume(self, partial: &str) -> Option<(Box<LiveStream>, Mode, String)> {
        for dep in &self.remaining {
            let prefill = dep.prefill && !partial.trim().is_empty();
            let mut req = self.req.clone();
            req.stream = true;
            if prefill {
                // Prefill may not end in whitespace (Anthropic refuses it).
                let mut m = Message::text(Role::Assistant, partial.trim_end());
                m.name = None;
                req.messages.push(m);
                if let Some(n) = req.native.as_mut() {
                    n.messages_edited = true;
                }
            }
            let single = Route {
                name: self.route.name.clone(),
                steps: vec![vec![dep.clone()]],
                limits: self.route.limits,
                stream_failure: self.route.stream_failure,
                description: None,
                hedge: None,
                balance: self.route.balance,
                rules: self.route.rules.clone(),
                truncate: self.route.truncate,
                content_policy: None,
                byok: self.route.byok.clone(),
            };
            let exec = fallback::execute(&single, &req, self.deadline, &self.caller_keys).await;
            let mode = if prefill { Mode::Spliced } else { Mode::Restarted };
            match exec.result {
                Ok((d, Success::Stream(live))) => return Some((live, mode, d.id.clone())),
                Ok((d, Success::Complete(resp))) => {
                    let frames = vec![Decoded { events: super::replay::events(&resp), raw: bytes::Bytes::new() }];
                    return Some((Box::new(LiveStream::replayed(d.clone(), frames)), mode, d.id.clone()));
                }
                Err(_) => continue,
            }
        }
        None
    }
}

/// Whether a delivered event was part of a tool call.
pub fn is_tool_call(ev: &StreamEvent) -> bool {
    matches!(ev, StreamEvent::ToolCall { .. })
}

/// The text of an assistant message (for the prefill).
pub fn text_of(parts: &[ContentPart]) -> String {
    parts
        .iter()
        .filter_map(|p| match p {
            ContentPart::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}
