use serde_json::{Map, Value};

/// An embeddings request in the gateway's own terms (OpenAI's `/v1/embeddings` is the front).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbeddingsRequest {
    /// The route name the caller asked for; adapters send the target's model.
    pub model: String,
    pub input: Vec<EmbeddingInput>,
    /// Requested vector size, where the model supports it.
    pub dimensions: Option<u32>,
    /// The caller's body, for same-dialect passthrough of fields the gateway does not use.
    pub native: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingInput {
    Text(String),
    /// Pre-tokenised input (OpenAI only).
    Tokens(Vec<u32>),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbeddingsResponse {
    /// The model that answered, as the provider reported it.
    pub model: String,
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    pub input_tokens: u64,
}
