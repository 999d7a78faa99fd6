//! The configuration schema. Every struct rejects unknown keys.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::values::{ByteSize, EnvString, HumanDuration, Secret};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Timeouts and retry settings every target inherits unless its route or entry says otherwise.
    #[serde(default)]
    pub defaults: Policy,
    #[serde(default)]
    pub routes: BTreeMap<String, RouteConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; `understudy serve --listen` overrides it.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer keys callers must present (`Authorization: Bearer` or `x-api-key`).
    #[serde(default)]
    pub api_keys: Vec<Secret>,
    /// Serve without caller keys on a non-loopback address (otherwise refused at start).
    #[serde(default)]
    pub allow_unauthenticated: bool,
    /// Largest request body accepted.
    #[serde(default = "default_max_body")]
    pub max_body: ByteSize,
    /// Time allowed for a client to send its request headers.
    #[serde(default = "default_header_timeout")]
    pub header_read_timeout: HumanDuration,
    /// Let callers address `provider/model` directly, as a one-target route.
    #[serde(default = "yes")]
    pub direct_models: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            api_keys: vec![],
            allow_unauthenticated: false,
            max_body: default_max_body(),
            header_read_timeout: default_header_timeout(),
            direct_models: true,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:4000".into()
}
fn default_max_body() -> ByteSize {
    ByteSize(32 * 1024 * 1024)
}
fn default_header_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI or any OpenAI-compatible server (vLLM, Ollama, Groq, Together, DeepSeek...).
    Openai,
    Anthropic,
    /// Google AI Gemini API (generativelanguage).
    Gemini,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// Defaults: `https://api.openai.com/v1`, `https://api.anthropic.com`,
    /// `https://generativelanguage.googleapis.com/v1beta`.
    #[serde(default)]
    pub base_url: Option<EnvString>,
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Extra headers sent on every call (values may use `${ENV}`).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Anthropic only: the `anthropic-version` header (default `2023-06-01`).
    #[serde(default)]
    pub anthropic_version: Option<String>,
}

/// Declares a config struct that carries the timeout and retry keys inline (serde's `flatten`
/// would lose both `deny_unknown_fields` and error line numbers), plus its own fields.
macro_rules! with_policy {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Deserialize, Default, PartialEq)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Whole-request budget across every retry and fallback (route and defaults level).
            #[serde(default)]
            pub deadline: Option<HumanDuration>,
            /// Total time for one attempt.
            #[serde(default)]
            pub timeout: Option<HumanDuration>,
            #[serde(default)]
            pub connect_timeout: Option<HumanDuration>,
            /// Time to the first content token of a stream.
            #[serde(default)]
            pub ttft_timeout: Option<HumanDuration>,
            /// Longest gap between stream chunks.
            #[serde(default)]
            pub idle_timeout: Option<HumanDuration>,
            /// Retries of the same deployment (fallbacks not counted).
            #[serde(default)]
            pub max_retries: Option<u32>,
            /// First backoff step; each retry doubles it, with full jitter.
            #[serde(default)]
            pub backoff_base: Option<HumanDuration>,
            #[serde(default)]
            pub backoff_max: Option<HumanDuration>,
            /// Longest Retry-After the gateway waits out on the same deployment.
            #[serde(default)]
            pub max_retry_wait: Option<HumanDuration>,
            $($(#[$fm])* pub $f: $t,)*
        }

        impl $name {
            pub fn policy(&self) -> Policy {
                Policy {
                    deadline: self.deadline,
                    timeout: self.timeout,
                    connect_timeout: self.connect_timeout,
                    ttft_timeout: self.ttft_timeout,
                    idle_timeout: self.idle_timeout,
                    max_retries: self.max_retries,
                    backoff_base: self.backoff_base,
                    backoff_max: self.backoff_max,
                    max_retry_wait: self.max_retry_wait,
                }
            }
        }
    };
}

with_policy! {
    /// Timeouts and retries. Each level (defaults, route, chain entry) may set any of these; the
    /// most specific wins.
    pub struct Policy {}
}

impl Policy {
    /// `self` overridden by the values `over` sets.
    pub fn overlay(&self, over: &Policy) -> Policy {
        Policy {
            deadline: over.deadline.or(self.deadline),
            timeout: over.timeout.or(self.timeout),
            connect_timeout: over.connect_timeout.or(self.connect_timeout),
            ttft_timeout: over.ttft_timeout.or(self.ttft_timeout),
            idle_timeout: over.idle_timeout.or(self.idle_timeout),
            max_retries: over.max_retries.or(self.max_retries),
            backoff_base: over.backoff_base.or(self.backoff_base),
            backoff_max: over.backoff_max.or(self.backoff_max),
            max_retry_wait: over.max_retry_wait.or(self.max_retry_wait),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamFailure {
    /// An in-band error event and no terminator.
    #[default]
    Error,
    /// Resume on the next candidate.
    Continue,
}

with_policy! {
    pub struct RouteConfig {
        /// Chain entries, tried in `priority` order (then file order). Entries that share a
        /// priority are equivalent deployments, balanced by `weight`.
        pub fallback_chain: Vec<TargetConfig>,
        #[serde(default)]
        pub stream_failure: StreamFailure,
        /// Shown by `GET /v1/models`.
        #[serde(default)]
        pub description: Option<String>,
    }
}

with_policy! {
    pub struct TargetConfig {
        /// A key of `providers`.
        pub provider: String,
        /// The provider's model name.
        pub model: String,
        /// Lower is tried first; equal priorities form a load-balanced group.
        #[serde(default)]
        pub priority: Option<i64>,
        /// Relative share inside a group of equal priority.
        #[serde(default)]
        pub weight: Option<u32>,
        /// Overrides the provider's key for this entry.
        #[serde(default)]
        pub api_key: Option<Secret>,
        // Request parameters this entry overrides.
        #[serde(default)]
        pub temperature: Option<f64>,
        #[serde(default)]
        pub top_p: Option<f64>,
        #[serde(default)]
        pub max_tokens: Option<u32>,
        #[serde(default)]
        pub stop: Option<Vec<String>>,
        /// Provider-native body fields merged into the request last (e.g. `top_k`, `seed`).
        #[serde(default)]
        pub params: serde_json::Map<String, Value>,
    }
}
