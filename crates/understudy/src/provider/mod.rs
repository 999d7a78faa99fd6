//! Provider adapters: one per provider kind. An adapter owns its wire format (through
//! [`crate::wire`]) and its error classification, nothing else: no I/O, no retries, no state.
//! The attempt layer (`route::attempt`) does the HTTP call.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod gemini;
pub mod google_auth;
pub mod openai;
pub mod presets;
pub mod vertex;

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::canonical::{ChatRequest, ChatResponse, Dialect, EmbeddingsRequest, EmbeddingsResponse};
use crate::config::{ProviderConfig, ProviderKind, Secret};
use crate::failure::Failure;
use crate::wire::StreamDecoder;

/// A configured provider: where it lives and how to authenticate.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The key under `providers:` in the configuration.
    pub name: String,
    pub kind: ProviderKind,
    /// Without a trailing slash.
    pub base_url: String,
    pub api_key: Secret,
    /// Extra headers from the configuration, sent on every call.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Anthropic's `anthropic-version`.
    pub anthropic_version: String,
    /// Bedrock: the region and SigV4 credentials (`None` for other kinds).
    pub aws: Option<bedrock::AwsSettings>,
    /// Azure's and Vertex's settings (empty for other kinds).
    pub cloud: CloudSettings,
    /// Where the bearer token comes from when it is fetched rather than configured (Vertex with a
    /// service-account key file). Awaited before `Adapter::build`, which receives the token as
    /// `Call::api_key`.
    pub token_source: Option<Arc<dyn TokenSource>>,
}

/// Settings only Azure and Vertex use.
#[derive(Debug, Clone, Default)]
pub struct CloudSettings {
    /// Azure: `api-version` for classic deployment URLs; `None` selects the v1 API.
    pub api_version: Option<String>,
    /// Vertex: the Google Cloud project.
    pub project: String,
    /// Vertex: the location (`us-central1`, `global`, `us`, `eu`).
    pub location: String,
}

/// An access token fetched over the network and cached (OAuth2). Adapters stay free of I/O: the
/// attempt layer awaits the token first and hands it to `build` as the call's key.
pub trait TokenSource: Send + Sync + std::fmt::Debug {
    /// A token valid for a while yet, fetched or refreshed when needed. Concurrent callers share
    /// one fetch. A credential that cannot produce a token is an `auth` failure.
    fn token(&self) -> BoxFuture<'_, Result<Secret, Failure>>;
}

impl Endpoint {
    pub fn from_config(name: &str, c: &ProviderConfig) -> Endpoint {
        let aws =
            (c.kind == ProviderKind::Bedrock).then(|| bedrock::AwsSettings::from_config(c, |k| std::env::var(k).ok()));
        let base = match (&c.base_url, &aws) {
            (Some(u), _) => u.value.trim_end_matches('/').to_string(),
            (None, Some(aws)) => aws.default_base_url(),
            (None, None) => default_base_url(c.kind).to_string(),
        };
        let headers = c
            .headers
            .iter()
            .filter_map(|(k, v)| {
                let name = HeaderName::from_bytes(k.as_bytes()).ok()?;
                let mut value = HeaderValue::from_str(v.expose()).ok()?;
                value.set_sensitive(true);
                Some((name, value))
            })
            .collect();
        let cloud = CloudSettings {
            api_version: c.api_version.clone(),
            project: c.project.clone().unwrap_or_default(),
            location: c.location.clone().unwrap_or_default(),
        };
        let base = match (&c.base_url, c.kind) {
            // Vertex's host follows the location.
            (None, ProviderKind::Vertex) => vertex::host(&cloud.location),
            _ => base,
        };
        Endpoint {
            name: name.to_string(),
            kind: c.kind,
            base_url: base,
            api_key: c.api_key.clone().unwrap_or_default(),
            headers,
            anthropic_version: c.anthropic_version.clone().unwrap_or_else(|| "2023-06-01".into()),
            aws,
            cloud,
            token_source: token_source(c),
        }
    }
}

/// A service-account token source for a Vertex provider with a key file and no ready token.
fn token_source(c: &ProviderConfig) -> Option<Arc<dyn TokenSource>> {
    match (&c.credentials_file, &c.api_key) {
        (Some(file), None) if c.kind == ProviderKind::Vertex => {
            Some(google_auth::ServiceAccount::shared(&file.value, google_auth::CLOUD_PLATFORM))
        }
        _ => None,
    }
}

/// The credential a call sends: the deployment's key, or, when its endpoint fetches tokens and no
/// key is configured, a token from the endpoint's source (fetched by `deadline` at the latest).
/// `None` means "use the key as it is".
pub async fn fetched_token(
    endpoint: &Endpoint,
    api_key: &Secret,
    deadline: tokio::time::Instant,
) -> Result<Option<Secret>, Failure> {
    let Some(source) = endpoint.token_source.as_ref().filter(|_| api_key.is_empty()) else {
        return Ok(None);
    };
    match tokio::time::timeout_at(deadline, source.token()).await {
        Ok(token) => token.map(Some),
        Err(_) => Err(Failure::new(crate::FailureClass::Timeout, "no access token in time (token endpoint)")
            .detail("token_timeout")),
    }
}

pub fn default_base_url(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Openai => "https://api.openai.com/v1",
        ProviderKind::Anthropic => "https://api.anthropic.com",
        ProviderKind::Gemini => "https://generativelanguage.googleapis.com/v1beta",
        // Derived from the region / resource / project at call time; these are placeholders.
        ProviderKind::Bedrock => "https://bedrock-runtime.us-east-1.amazonaws.com",
        ProviderKind::Azure => "https://example.openai.azure.com",
        ProviderKind::Vertex => "https://aiplatform.googleapis.com",
        ProviderKind::Groq => "https://api.groq.com/openai/v1",
        ProviderKind::Together => "https://api.together.xyz/v1",
        ProviderKind::Mistral => "https://api.mistral.ai/v1",
        ProviderKind::Deepseek => "https://api.deepseek.com/v1",
        ProviderKind::Fireworks => "https://api.fireworks.ai/inference/v1",
        ProviderKind::Openrouter => "https://openrouter.ai/api/v1",
        ProviderKind::Ollama => "http://127.0.0.1:11434/v1",
        ProviderKind::Vllm => "http://127.0.0.1:8000/v1",
    }
}

/// What one attempt sends, beyond the canonical request.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub endpoint: &'a Endpoint,
    /// The target's model (never the caller's route name).
    pub model: &'a str,
    /// The chain entry's key when it overrides the provider's.
    pub api_key: &'a Secret,
    /// Provider-native fields merged into the top level of the body last.
    pub extra_params: &'a Map<String, Value>,
    pub stream: bool,
}

/// An HTTP request ready to send.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub url: String,
    /// Credentials are marked sensitive so that they never print.
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub trait Adapter: Send + Sync {
    fn dialect(&self) -> Dialect;
    /// Encodes the request for this provider.
    fn build(&self, req: &ChatRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure>;
    /// Decodes a 2xx non-streaming body. Content-level judgements (empty, filtered) are the
    /// validator's, but a body that is not this provider's response shape is `invalid_response`,
    /// and an answer that carries no answer at all (Gemini's blocked prompt) is classified here.
    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, Failure>;
    /// Classifies a non-2xx answer from its status, headers and body.
    fn classify_error(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Failure;
    fn stream_decoder(&self) -> Box<dyn StreamDecoder>;
    /// The provider's model listing, sent as a `GET` (the body is empty) by background health
    /// probes: free, and it proves the endpoint answers and the key is accepted. `None` when the
    /// provider has no listing.
    fn models_request(&self, endpoint: &Endpoint, api_key: &Secret) -> Option<Result<UpstreamRequest, Failure>> {
        let _ = (endpoint, api_key);
        None
    }
    /// Encodes an embeddings request; providers without embeddings refuse it as
    /// `deployment_invalid` (so a route fails over to one that has them).
    fn build_embeddings(&self, req: &EmbeddingsRequest, call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        let _ = (req, call);
        Err(Failure::new(crate::FailureClass::DeploymentInvalid, "this provider kind has no embeddings endpoint")
            .detail("no_embeddings"))
    }
    /// Decodes a 2xx embeddings answer.
    fn decode_embeddings(&self, body: &[u8]) -> Result<EmbeddingsResponse, Failure> {
        let _ = body;
        Err(Failure::new(crate::FailureClass::InvalidResponse, "this provider kind has no embeddings endpoint"))
    }
}

/// The adapter for a provider kind.
pub fn adapter(kind: ProviderKind) -> Arc<dyn Adapter> {
    match kind {
        ProviderKind::Openai => Arc::new(openai::OpenAi),
        ProviderKind::Anthropic => Arc::new(anthropic::Anthropic),
        ProviderKind::Gemini => Arc::new(gemini::Gemini),
        ProviderKind::Bedrock => Arc::new(bedrock::Bedrock),
        ProviderKind::Azure => Arc::new(azure::Azure),
        // Gemini models; Claude models on Vertex need `adapter_for`, which sees the model.
        ProviderKind::Vertex => Arc::new(vertex::VertexGemini),
        ProviderKind::Groq
        | ProviderKind::Together
        | ProviderKind::Mistral
        | ProviderKind::Deepseek
        | ProviderKind::Fireworks
        | ProviderKind::Openrouter
        | ProviderKind::Ollama
        | ProviderKind::Vllm => Arc::new(presets::Preset::new(kind)),
    }
}

/// The adapter for one deployment: as [`adapter`], except that a Vertex provider serves Gemini and
/// Claude models in two different wire formats, chosen by the model name.
pub fn adapter_for(kind: ProviderKind, model: &str) -> Arc<dyn Adapter> {
    match kind {
        ProviderKind::Vertex => vertex::adapter_for(model),
        _ => adapter(kind),
    }
}

/// Merges provider-native parameters into an encoded body (last writer wins).
pub fn merge_params(body: &mut Map<String, Value>, params: &Map<String, Value>) {
    for (k, v) in params {
        body.insert(k.clone(), v.clone());
    }
}

/// A header value holding a credential: marked sensitive so it never prints.
pub fn secret_header(value: &str) -> Result<HeaderValue, Failure> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Failure::new(crate::FailureClass::Auth, "the configured API key contains characters not allowed in a header")
            .detail("bad_api_key")
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// The body as bytes.
pub fn to_body(body: &Map<String, Value>) -> Bytes {
    // Serialising a Map of Values cannot fail.
    Bytes::from(serde_json::to_vec(body).unwrap_or_default())
}
