//! What the gateway knows about well-known models: context window and output limit. A chain
//! entry's `context_window` / `max_output_tokens` override the table; unknown models are assumed
//! to fit (the provider's own context error then fails over to larger windows only).

/// (name prefix, context window, max output tokens). The longest matching prefix wins, so
/// `gpt-4o-mini` and `gpt-4o` can differ from `gpt-4`.
const TABLE: &[(&str, u32, u32)] = &[
    // OpenAI
    ("gpt-5", 400_000, 128_000),
    ("gpt-4.1", 1_047_576, 32_768),
    ("gpt-4o", 128_000, 16_384),
    ("chatgpt-4o", 128_000, 16_384),
    ("gpt-4-turbo", 128_000, 4_096),
    ("gpt-4-32k", 32_768, 4_096),
    ("gpt-4", 8_192, 4_096),
    ("gpt-3.5-turbo", 16_385, 4_096),
    ("o1", 200_000, 100_000),
    ("o3", 200_000, 100_000),
    ("o4-mini", 200_000, 100_000),
    // Anthropic
    ("claude-3-opus", 200_000, 4_096),
    ("claude-3-sonnet", 200_000, 4_096),
    ("claude-3-haiku", 200_000, 4_096),
    ("claude-3-5-sonnet", 200_000, 8_192),
    ("claude-3-5-haiku", 200_000, 8_192),
    ("claude-3-7-sonnet", 200_000, 64_000),
    ("claude-sonnet-4", 200_000, 64_000),
    ("claude-opus-4", 200_000, 32_000),
    ("claude-haiku-4", 200_000, 64_000),
    // Google
    ("gemini-1.5-pro", 2_097_152, 8_192),
    ("gemini-1.5-flash", 1_048_576, 8_192),
    ("gemini-2.0-flash", 1_048_576, 8_192),
    ("gemini-2.5-pro", 1_048_576, 65_536),
    ("gemini-2.5-flash", 1_048_576, 65_536),
    // Open models as commonly served
    ("llama-3.1", 131_072, 4_096),
    ("llama-3.3", 131_072, 4_096),
    ("mistral-large", 131_072, 4_096),
    ("deepseek-chat", 65_536, 8_192),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelLimits {
    pub context_window: u32,
    pub max_output: u32,
}

/// Limits of a model by name, ignoring provider prefixes (`anthropic.`, `us.anthropic.`,
/// `models/`) and version suffixes.
pub fn limits(model: &str) -> Option<ModelLimits> {
    let name = model.rsplit('/').next().unwrap_or(model);
    let name = name.trim_start_matches("us.").trim_start_matches("eu.").trim_start_matches("anthropic.");
    TABLE
        .iter()
        .filter(|(prefix, _, _)| name.starts_with(prefix))
        .max_by_key(|(prefix, _, _)| prefix.len())
        .map(|&(_, context_window, max_output)| ModelLimits { context_window, max_output })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(limits("gpt-4o-mini-2024-07-18").unwrap().context_window, 128_000);
        assert_eq!(limits("gpt-4").unwrap().context_window, 8_192);
        assert_eq!(limits("gpt-4-turbo-preview").unwrap().context_window, 128_000);
        assert_eq!(limits("claude-3-haiku-20240307").unwrap().max_output, 4_096);
        assert_eq!(limits("us.anthropic.claude-sonnet-4-5-20250929-v1:0").unwrap().context_window, 200_000);
        assert_eq!(limits("models/gemini-2.5-flash").unwrap().context_window, 1_048_576);
        assert_eq!(limits("my-private-model"), None);
    }
}
