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
    /// Where to tell operators about incidents.
    #[serde(default)]
    pub alerts: Option<AlertsConfig>,
    /// A record of what users got when the first choice did not answer.
    #[serde(default)]
    pub journal: Option<JournalConfig>,
}

/// The fallback journal: requests answered by a fallback, a continuation or a degraded path,
/// written with the answer and the attempt trace as JSON Lines, so a team can review what users
/// got during an incident and tune prompts to be model-agnostic. Opt-in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// The JSON Lines file (appended to).
    pub path: EnvString,
    /// Share of eligible requests written (default 1.0).
    #[serde(default)]
    pub sample: Option<f64>,
    /// Mask e-mail addresses, long digit runs (phone and card numbers) and key-shaped tokens in
    /// prompts and answers (default true).
    #[serde(default)]
    pub redact: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertFormat {
    /// `{"event": ..., "subject": ..., "reason": ..., "at": ...}`
    #[default]
    Json,
    /// A Slack incoming-webhook message (`{"text": ...}`).
    Slack,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// The webhook URL (`${ENV}` allowed).
    pub webhook: Secret,
    #[serde(default)]
    pub format: AlertFormat,
    /// At most one message per subject and event kind within this interval (default 5m), so an
    /// incident sends a handful of messages, not thousands.
    #[serde(default)]
    pub min_interval: Option<HumanDuration>,
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
    /// Keys for `/admin/*` (Bearer), separate from callers' keys. Without any, the admin API
    /// only answers on a loopback listener.
    #[serde(default)]
    pub admin_keys: Vec<Secret>,
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
            admin_keys: vec![],
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
    /// OpenAI or any OpenAI-compatible server given a `base_url`.
    Openai,
    Anthropic,
    /// Google AI Gemini API (generativelanguage).
    Gemini,
    /// AWS Bedrock Runtime, Converse and ConverseStream (SigV4 or a Bedrock API key).
    Bedrock,
    /// Azure OpenAI: deployment URLs with `api_version`, or the v1 API without.
    Azure,
    /// Google Vertex AI: Gemini and Anthropic models, OAuth2 access tokens.
    Vertex,
    // OpenAI-compatible presets: known base URLs and quirks, so an entry is one line.
    Groq,
    Together,
    Mistral,
    Deepseek,
    Fireworks,
    Openrouter,
    Ollama,
    Vllm,
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
    /// Bedrock: the AWS region (else `AWS_REGION` / `AWS_DEFAULT_REGION`). Vertex: see `location`.
    #[serde(default)]
    pub region: Option<EnvString>,
    /// Bedrock: credentials (else the standard `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN` variables). With `api_key` set instead, a Bedrock API key is sent as a
    /// bearer token without SigV4.
    #[serde(default)]
    pub aws_access_key_id: Option<Secret>,
    #[serde(default)]
    pub aws_secret_access_key: Option<Secret>,
    #[serde(default)]
    pub aws_session_token: Option<Secret>,
    /// Azure: `api-version` for deployment URLs (`/openai/deployments/{model}/...`); without it,
    /// the v1 API (`/openai/v1/...`) with the deployment name as `model`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Vertex: the Google Cloud project and location (`us-central1`, `global`, `us`, `eu`).
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    /// Vertex: a service-account key file (JSON); its signed JWT is exchanged for an access
    /// token, refreshed before expiry. Or give a ready token as `api_key`.
    #[serde(default)]
    pub credentials_file: Option<EnvString>,
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
            /// Time to the first content token of a stream: a duration, or `auto` (from the
            /// deployment's observed p95, see `adaptive_ttft`).
            #[serde(default)]
            pub ttft_timeout: Option<TtftTimeout>,
            /// How `ttft_timeout: auto` is computed.
            #[serde(default)]
            pub adaptive_ttft: Option<AdaptiveTtft>,
            /// Circuit breaker per deployment.
            #[serde(default)]
            pub breaker: Option<BreakerSettings>,
            /// Retries and hedges may add at most this share of traffic per deployment.
            #[serde(default)]
            pub retry_budget: Option<BudgetSettings>,
            /// How long a deployment is taken out of rotation after an auth, deployment or quota
            /// failure (account deactivated, model retired, credit exhausted).
            #[serde(default)]
            pub disable_for: Option<HumanDuration>,
            /// Cooldown after a 429 that gives no Retry-After.
            #[serde(default)]
            pub rate_limit_cooldown: Option<HumanDuration>,
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
                    adaptive_ttft: self.adaptive_ttft,
                    breaker: self.breaker,
                    retry_budget: self.retry_budget,
                    disable_for: self.disable_for,
                    rate_limit_cooldown: self.rate_limit_cooldown,
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
            adaptive_ttft: overlay_opt(self.adaptive_ttft, over.adaptive_ttft, AdaptiveTtft::overlay),
            breaker: overlay_opt(self.breaker, over.breaker, BreakerSettings::overlay),
            retry_budget: overlay_opt(self.retry_budget, over.retry_budget, BudgetSettings::overlay),
            disable_for: over.disable_for.or(self.disable_for),
            rate_limit_cooldown: over.rate_limit_cooldown.or(self.rate_limit_cooldown),
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
        /// Start the next candidate too when the current one is slow to commit.
        #[serde(default)]
        pub hedge: Option<HedgeConfig>,
        /// How equivalent deployments of one step are ordered.
        #[serde(default)]
        pub balance: Balance,
        /// Rules an answer must pass; a failed rule fails over like an error.
        #[serde(default)]
        pub validate: ValidateConfig,
        /// When only candidates with a smaller context window remain: skip them (`none`), or trim
        /// the conversation to fit, keeping the system prompt and the latest user turn.
        #[serde(default)]
        pub truncate: TruncateMode,
        /// A chain tried when a provider refuses on content policy (a 400 policy error, or an
        /// answer finished by its content filter). Without one, the provider's reason goes back
        /// to the caller.
        #[serde(default)]
        pub on_content_filtered: Vec<TargetConfig>,
        /// Callers' own provider keys (`x-understudy-<kind>-key` headers): which providers take
        /// them, and whether the gateway's keys stand in when a caller's key is refused.
        #[serde(default)]
        pub byok: ByokConfig,
    }
}

/// Bring your own key: how a route treats provider keys that callers send with a request.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ByokConfig {
    /// When a caller's key is refused (auth failure or exhausted quota), call that provider with
    /// the gateway's own key after all. Off by default: the caller pays, or the provider is skipped.
    #[serde(default)]
    pub fallback_to_gateway_keys: bool,
    /// Providers (names under `providers:`) that receive callers' keys of their kind. Default:
    /// every provider that uses its kind's official base URL, so that a caller's key never
    /// reaches a third-party server configured with the same kind.
    #[serde(default)]
    pub providers: Option<Vec<String>>,
}

/// Response validation rules. The first five are on by default.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValidateConfig {
    /// The answer has text or a tool call.
    #[serde(default)]
    pub non_empty: Option<bool>,
    /// A `length` finish before the caller's `max_tokens` was reached is a truncation.
    #[serde(default)]
    pub truncation: Option<bool>,
    /// With `response_format` json_object / json_schema, the text parses as JSON.
    #[serde(default)]
    pub json: Option<bool>,
    /// With `response_format` json_schema, the JSON conforms to the caller's schema.
    #[serde(default)]
    pub json_schema: Option<bool>,
    /// Tool-call arguments parse as a JSON object.
    #[serde(default)]
    pub tool_arguments: Option<bool>,
    /// Regular expressions the answer text must match (all of them).
    #[serde(default)]
    pub must_match: Vec<String>,
    /// Regular expressions the answer text must not match (e.g. refusals).
    #[serde(default)]
    pub must_not_match: Vec<String>,
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
        /// Background health probe of this deployment.
        #[serde(default)]
        pub probe: Option<ProbeConfig>,
        /// The model's context window in tokens (overrides the built-in table).
        #[serde(default)]
        pub context_window: Option<u32>,
        /// The model's output limit in tokens (overrides the built-in table).
        #[serde(default)]
        pub max_output_tokens: Option<u32>,
        /// Prompt adaptation for this target: the prompt the fallback model works best with.
        #[serde(default)]
        pub prompt: Option<PromptAdaptation>,
        /// This model continues a trailing assistant message (prefill); used by
        /// `stream_failure: continue`. Default: known per model family.
        #[serde(default)]
        pub prefill: Option<bool>,
    }
}

fn overlay_opt<T: Copy>(base: Option<T>, over: Option<T>, f: fn(&T, &T) -> T) -> Option<T> {
    match (base, over) {
        (Some(b), Some(o)) => Some(f(&b, &o)),
        (b, o) => o.or(b),
    }
}

/// `ttft_timeout`: a duration, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TtftTimeout {
    Fixed(HumanDuration),
    Auto,
}

impl<'de> Deserialize<'de> for TtftTimeout {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim() == "auto" {
            return Ok(TtftTimeout::Auto);
        }
        humantime::parse_duration(s.trim()).map(|d| TtftTimeout::Fixed(HumanDuration(d))).map_err(|e| {
            serde::de::Error::custom(format!("invalid duration {s:?} ({e}); write e.g. 30s, 1500ms, or auto"))
        })
    }
}

/// Declares a settings block whose fields are all optional, with a field-by-field overlay (a
/// more specific level overrides only the fields it sets).
macro_rules! settings {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fm])* #[serde(default)] pub $f: Option<$t>,)*
        }

        impl $name {
            pub fn overlay(&self, over: &Self) -> Self {
                Self { $($f: over.$f.or(self.$f),)* }
            }
        }
    };
}

settings! {
    /// `ttft_timeout: auto` = clamp(multiplier x p95 of observed time to first token, floor,
    /// ceiling); `initial` until `min_samples` have been seen.
    pub struct AdaptiveTtft {
        pub multiplier: f64,
        pub floor: HumanDuration,
        pub ceiling: HumanDuration,
        pub min_samples: u32,
        pub initial: HumanDuration,
    }
}

settings! {
    /// Circuit breaker: trips on consecutive failures, or a failure rate over a window with a
    /// minimum volume; half-open lets a few probes through; re-trips double the open time.
    pub struct BreakerSettings {
        pub enabled: bool,
        pub consecutive_failures: u32,
        pub failure_rate: f64,
        pub window: HumanDuration,
        pub min_requests: u32,
        pub open_for: HumanDuration,
        pub max_open_for: HumanDuration,
        pub half_open_probes: u32,
    }
}

settings! {
    /// Retry budget: retries and hedges add at most `ratio` of first attempts, plus
    /// `min_per_sec`, counted over `ttl`.
    pub struct BudgetSettings {
        pub enabled: bool,
        pub ratio: f64,
        pub min_per_sec: u32,
        pub ttl: HumanDuration,
    }
}

/// When to start a hedge: a fixed delay, or a percentile of the current candidate's time to
/// first token (with `delay` used until there is data).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HedgeConfig {
    #[serde(default)]
    pub delay: Option<HumanDuration>,
    /// e.g. 95 for p95.
    #[serde(default)]
    pub percentile: Option<f64>,
    /// Hedges started per request at most (default 1).
    #[serde(default)]
    pub max: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Weighted random order.
    #[default]
    Weighted,
    /// Power of two choices over the peak-EWMA of time to first token.
    Latency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// `GET` the provider's model listing: free.
    #[default]
    Models,
    /// A one-token completion: costs a token, exercises the model itself.
    Completion,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    pub interval: HumanDuration,
    #[serde(default)]
    pub kind: ProbeKind,
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TruncateMode {
    #[default]
    None,
    /// Drop the oldest turns first.
    DropOldest,
    /// Drop turns from the middle outward, keeping the opening and the latest turns.
    MiddleOut,
}

/// Rewrites applied to the request for one chain entry.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PromptAdaptation {
    /// Replaces the system prompt.
    #[serde(default)]
    pub system_replace: Option<String>,
    /// Text put before the system prompt (separated by a blank line).
    #[serde(default)]
    pub system_prepend: Option<String>,
    /// Text put after the system prompt.
    #[serde(default)]
    pub system_append: Option<String>,
    /// A template for the latest user message; `{{content}}` stands for its text, e.g.
    /// `"{{content}}\n\nAnswer in at most three sentences."`.
    #[serde(default)]
    pub user_template: Option<String>,
}
