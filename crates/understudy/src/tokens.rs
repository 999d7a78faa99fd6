//! Prompt size in tokens. OpenAI model families are counted exactly with their tokenizer
//! (o200k_base for gpt-4o, gpt-4.1, gpt-5 and the o-series; cl100k_base for gpt-4 and
//! gpt-3.5). Other providers do not publish theirs: their count is an estimate, o200k_base
//! plus 10%, which errs on the side of a larger prompt.

use std::sync::OnceLock;

use crate::canonical::{ChatRequest, ContentPart};

/// Tokens a message costs beyond its text (role, separators), as OpenAI documents.
const PER_MESSAGE: usize = 4;
/// An image's cost, estimated (a high-detail 512 px tile set is about this much).
const PER_IMAGE: usize = 765;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    O200k,
    Cl100k,
    /// Not a published tokenizer: o200k_base plus 10%.
    Estimate,
}

pub fn encoding_for(model: &str) -> Encoding {
    let m = model.rsplit('/').next().unwrap_or(model);
    let o_series = m.starts_with('o') && m.chars().nth(1).is_some_and(|c| c.is_ascii_digit());
    if o_series || ["gpt-4o", "gpt-4.1", "gpt-5", "chatgpt"].iter().any(|p| m.starts_with(p)) {
        Encoding::O200k
    } else if m.starts_with("gpt-4") || m.starts_with("gpt-3.5") {
        Encoding::Cl100k
    } else {
        Encoding::Estimate
    }
}

fn o200k() -> Option<&'static tiktoken_rs::CoreBPE> {
    static BPE: OnceLock<Option<tiktoken_rs::CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().ok()).as_ref()
}

fn cl100k() -> Option<&'static tiktoken_rs::CoreBPE> {
    static BPE: OnceLock<Option<tiktoken_rs::CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().ok()).as_ref()
}

fn count_text(text: &str, enc: Encoding) -> usize {
    let bpe = match enc {
        Encoding::Cl100k => cl100k(),
        _ => o200k(),
    };
    let n = match bpe {
        Some(b) => b.encode_ordinary(text).len(),
        // Without a tokenizer, a conservative four characters per token.
        None => text.len().div_ceil(4),
    };
    match enc {
        Encoding::Estimate => n + n / 10,
        _ => n,
    }
}

/// One text's size for `enc` (embeddings inputs, whose providers may report no usage).
pub fn text_tokens(text: &str, enc: Encoding) -> usize {
    count_text(text, enc)
}

/// The prompt's size for `enc`: system prompt, messages, tool definitions.
pub fn prompt_tokens(req: &ChatRequest, enc: Encoding) -> usize {
    fn parts(p: &[ContentPart], enc: Encoding) -> usize {
        p.iter()
            .map(|part| match part {
                ContentPart::Text { text } => count_text(text, enc),
                ContentPart::Image { .. } => PER_IMAGE,
                ContentPart::ToolCall { name, arguments, .. } => count_text(name, enc) + count_text(arguments, enc),
                ContentPart::ToolResult { content, .. } => parts(content, enc),
                ContentPart::Other { value, .. } => count_text(&value.to_string(), enc),
            })
            .sum()
    }
    let mut n = parts(&req.system, enc) + PER_MESSAGE;
    for m in &req.messages {
        n += parts(&m.content, enc) + PER_MESSAGE;
    }
    for t in &req.tools {
        n += count_text(&t.name, enc) + count_text(t.description.as_deref().unwrap_or(""), enc);
        n += count_text(&t.parameters.to_string(), enc);
    }
    n
}

/// An upper bound that needs no tokenizer: no tokenizer makes a token of less than one byte...
/// except for images, counted at their estimate.
pub fn upper_bound(req: &ChatRequest) -> usize {
    let images: usize =
        req.messages.iter().flat_map(|m| &m.content).filter(|p| matches!(p, ContentPart::Image { .. })).count();
    let tools: usize = req.tools.iter().map(|t| t.name.len() + t.parameters.to_string().len() + 64).sum();
    (req.text_len() + tools) * 11 / 10 + images * PER_IMAGE + PER_MESSAGE * (req.messages.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{Message, Role};

    #[test]
    fn exact_for_openai_estimates_elsewhere() {
        let req = ChatRequest {
            messages: vec![Message::text(Role::User, "Hello there, how are you doing today?")],
            ..Default::default()
        };
        let exact = prompt_tokens(&req, Encoding::O200k);
        assert!((9..=20).contains(&exact), "{exact}");
        assert!(prompt_tokens(&req, Encoding::Estimate) >= exact);
        assert!(upper_bound(&req) >= prompt_tokens(&req, Encoding::Estimate));
        assert_eq!(encoding_for("gpt-4o-mini"), Encoding::O200k);
        assert_eq!(encoding_for("o3-mini"), Encoding::O200k);
        assert_eq!(encoding_for("gpt-4"), Encoding::Cl100k);
        assert_eq!(encoding_for("claude-3-haiku"), Encoding::Estimate);
    }
}
