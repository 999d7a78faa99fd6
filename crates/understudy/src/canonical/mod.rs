//! The hub of hub-and-spoke translation: one canonical chat request, response and stream event.
//!
//! Every wire format (`crate::wire::*`) converts to and from these types; there are no pairwise
//! converters. Fields the gateway does not understand survive in two ways:
//! * [`Native`] keeps the caller's original body so that a provider speaking the same dialect
//!   receives every unknown top-level field unchanged;
//! * [`ContentPart::Other`] keeps content blocks of a dialect the canonical model has no name for.

mod embeddings;
mod request;
mod response;
mod stream;

pub use embeddings::*;
pub use request::*;
pub use response::*;
pub use stream::*;

/// A wire format family. A front (what the caller speaks) and a provider both have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    OpenAi,
    Anthropic,
    Gemini,
    /// AWS Bedrock Converse (provider side only).
    Bedrock,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Anthropic => "anthropic",
            Dialect::Gemini => "gemini",
            Dialect::Bedrock => "bedrock",
        }
    }
}
