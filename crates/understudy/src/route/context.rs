//! Context windows: whether a prompt fits a candidate, and when it does not, skipping the
//! candidate or trimming the conversation deliberately (never sending a request bound to fail).

use std::borrow::Cow;
use std::collections::HashMap;

use super::table::Deployment;
use crate::canonical::{ChatRequest, ContentPart, Message, Role};
use crate::config::TruncateMode;
use crate::tokens::{self, Encoding};

/// Prompt sizes of one request, counted once per tokenizer.
pub struct Sizer<'a> {
    req: &'a ChatRequest,
    bound: usize,
    counts: HashMap<Encoding, usize>,
}

impl<'a> Sizer<'a> {
    pub fn new(req: &'a ChatRequest) -> Self {
        Sizer { req, bound: tokens::upper_bound(req), counts: HashMap::new() }
    }

    fn exact(&mut self, enc: Encoding) -> usize {
        let req = self.req;
        *self.counts.entry(enc).or_insert_with(|| tokens::prompt_tokens(req, enc))
    }
}

/// What to send a candidate. (Returned once per candidate and consumed at once: boxing the
/// large variant would only add an allocation.)
#[allow(clippy::large_enum_variant)]
pub enum Fit<'a> {
    /// Send this request (borrowed when unchanged). `truncated` names what was removed.
    Send(Cow<'a, ChatRequest>, Option<String>),
    /// The prompt cannot fit: skip the candidate.
    Skip,
}

/// Prepares `req` for `dep`: clamps `max_tokens` to the model's output limit, and checks the
/// window. `min_window` is the largest window that already refused this prompt.
pub fn prepare<'a>(
    dep: &Deployment,
    req: &'a ChatRequest,
    sizer: &mut Sizer<'a>,
    mode: TruncateMode,
    min_window: Option<u32>,
) -> Fit<'a> {
    let Some(w) = dep.window else { return Fit::Send(Cow::Borrowed(req), None) };
    if min_window.is_some_and(|m| w.context_window <= m) {
        return Fit::Skip;
    }
    let asked = dep.overrides.max_tokens.or(req.params.max_tokens);
    let out = asked.map(|m| m.min(w.max_output)).unwrap_or(0) as usize;
    let mut req: Cow<'a, ChatRequest> = Cow::Borrowed(req);
    if asked.is_some_and(|m| m > w.max_output) && dep.overrides.max_tokens.is_none() {
        // A fallback with a smaller output limit would refuse the caller's max_tokens outright.
        req.to_mut().params.max_tokens = Some(w.max_output);
    }
    let window = w.context_window as usize;
    if sizer.bound + out <= window {
        return Fit::Send(req, None);
    }
    let enc = tokens::encoding_for(&dep.model);
    let needed = sizer.exact(enc) + out;
    if needed <= window {
        return Fit::Send(req, None);
    }
    if mode == TruncateMode::None {
        return Fit::Skip;
    }
    match truncate(&req, mode, window.saturating_sub(out), enc) {
        Some((trimmed, removed)) => {
            let note = format!("{}={}:{removed}", dep.id, mode_name(mode));
            Fit::Send(Cow::Owned(trimmed), Some(note))
        }
        None => Fit::Skip,
    }
}

fn mode_name(m: TruncateMode) -> &'static str {
    match m {
        TruncateMode::None => "none",
        TruncateMode::DropOldest => "drop_oldest",
        TruncateMode::MiddleOut => "middle_out",
    }
}

/// Turns that must stay together: a user turn with what answers it, and tool calls with their
/// results (dropping one without the other would make the conversation invalid).
fn units(messages: &[Message]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let only_tool_results =
            !m.content.is_empty() && m.content.iter().all(|p| matches!(p, ContentPart::ToolResult { .. }));
        let starts = m.role == Role::User && !only_tool_results;
        match out.last_mut() {
            Some(last) if !starts => last.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

/// Removes whole units until the prompt fits `budget` tokens, keeping the system prompt and the
/// latest unit. Returns the trimmed request and how many messages were removed.
fn truncate(req: &ChatRequest, mode: TruncateMode, budget: usize, enc: Encoding) -> Option<(ChatRequest, usize)> {
    let units = units(&req.messages);
    let unit_tokens: Vec<usize> = units
        .iter()
        .map(|r| {
            tokens::prompt_tokens(
                &ChatRequest { messages: req.messages[r.clone()].to_vec(), ..Default::default() },
                enc,
            )
        })
        .collect();
    let fixed = tokens::prompt_tokens(&ChatRequest { messages: vec![], ..req.clone() }, enc);
    let mut keep = vec![true; units.len()];
    let mut total = fixed + unit_tokens.iter().sum::<usize>();
    let last = units.len().checked_sub(1)?;
    while total > budget {
        let kept: Vec<usize> = (0..last).filter(|&i| keep[i]).collect();
        let victim = match mode {
            TruncateMode::DropOldest | TruncateMode::None => *kept.first()?,
            // Keep the opening (often the task) and the latest turns; cut from the middle.
            TruncateMode::MiddleOut if kept.len() > 1 => kept[kept.len() / 2].max(kept[1]),
            TruncateMode::MiddleOut => *kept.first()?,
        };
        keep[victim] = false;
        total -= unit_tokens[victim];
    }
    let mut out = req.clone();
    out.messages =
        units.iter().zip(&keep).filter(|(_, k)| **k).flat_map(|(r, _)| req.messages[r.clone()].to_vec()).collect();
    let removed = req.messages.len() - out.messages.len();
    if let Some(n) = out.native.as_mut() {
        n.messages_edited = true;
    }
    Some((out, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convo(n: usize) -> ChatRequest {
        let mut messages = Vec::new();
        for i in 0..n {
            messages.push(Message::text(Role::User, format!("question {i} {}", "word ".repeat(50))));
            messages.push(Message::text(Role::Assistant, format!("answer {i} {}", "word ".repeat(50))));
        }
        messages.push(Message::text(Role::User, "the latest question"));
        ChatRequest { system: vec![ContentPart::text("You are helpful.")], messages, ..Default::default() }
    }

    fn texts(r: &ChatRequest) -> Vec<String> {
        r.messages
            .iter()
            .map(|m| match &m.content[0] {
                ContentPart::Text { text } => text.split(' ').take(2).collect::<Vec<_>>().join(" "),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn drop_oldest_keeps_system_and_latest_turn() {
        let req = convo(10);
        let full = tokens::prompt_tokens(&req, Encoding::O200k);
        let (t, removed) = truncate(&req, TruncateMode::DropOldest, full / 2, Encoding::O200k).unwrap();
        assert!(tokens::prompt_tokens(&t, Encoding::O200k) <= full / 2);
        assert_eq!(t.system, req.system);
        assert_eq!(texts(&t).last().unwrap(), "the latest");
        assert!(removed >= 10 && removed % 2 == 0, "whole turns: {removed}");
        assert!(texts(&t)[0].starts_with("question") && !texts(&t).contains(&"question 0".to_string()));
    }

    #[test]
    fn middle_out_keeps_the_opening() {
        let req = convo(10);
        let full = tokens::prompt_tokens(&req, Encoding::O200k);
        let (t, _) = truncate(&req, TruncateMode::MiddleOut, full / 2, Encoding::O200k).unwrap();
        let tx = texts(&t);
        assert_eq!(tx[0], "question 0", "{tx:?}");
        assert_eq!(tx.last().unwrap(), "the latest");
        assert!(tx.contains(&"question 9".to_string()), "recent turns stay: {tx:?}");
        assert!(!tx.contains(&"question 5".to_string()), "the middle went: {tx:?}");
    }

    #[test]
    fn impossible_budgets_give_up() {
        assert!(truncate(&convo(3), TruncateMode::DropOldest, 5, Encoding::O200k).is_none());
    }

    #[test]
    fn tool_calls_and_results_stay_together() {
        let m = vec![
            Message::text(Role::User, "q"),
            Message {
                role: Role::Assistant,
                content: vec![ContentPart::ToolCall { id: "c".into(), name: "f".into(), arguments: "{}".into() }],
                name: None,
            },
            Message {
                role: Role::User,
                content: vec![ContentPart::ToolResult {
                    call_id: "c".into(),
                    name: None,
                    content: vec![],
                    is_error: false,
                }],
                name: None,
            },
            Message::text(Role::Assistant, "a"),
            Message::text(Role::User, "q2"),
        ];
        assert_eq!(units(&m), vec![0..4, 4..5]);
    }
}
