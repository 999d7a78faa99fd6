//! Shared server state: configuration, run-time fault rules, counters and the request recorder.
//!
//! Locks are std mutexes held only for a few instructions, never across `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::fault::Fault;

/// How the server behaves when no fault rule says otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MockConfig {
    /// Applied when neither a run-time rule nor the model name names a fault.
    pub default_fault: Fault,
    /// Answer text; `{model}` is replaced by the base model name. Default:
    /// `Simulated answer from {model}.`
    pub text: Option<String>,
    /// Accepted API keys; empty accepts any non-empty key. A key not listed gets the
    /// provider's invalid-key error.
    pub api_keys: Vec<String>,
    /// Model ids listed by the three model-listing endpoints.
    pub models: Vec<String>,
    /// Size of the ring buffer of recorded requests (0 disables recording).
    pub record_capacity: usize,
    /// When false (the default) unknown request fields are refused where the real API refuses
    /// them (Anthropic top level, Gemini top level and `generationConfig`, Bedrock top level,
    /// content blocks and `inferenceConfig`).
    pub lenient: bool,
    /// Bedrock: the secret access key SigV4 signatures are checked against (default
    /// [`AWS_TEST_SECRET_ACCESS_KEY`]).
    pub aws_secret_access_key: String,
    /// Bedrock: the only access key id accepted; any when unset. Bedrock API keys (bearer
    /// tokens) are checked against `api_keys`.
    pub aws_access_key_id: Option<String>,
    /// PEM public key (`PUBLIC KEY` or `RSA PUBLIC KEY`) that service-account JWTs sent to
    /// `POST /token` must be signed with. Without one, only their structure and claims are checked.
    pub token_public_key: Option<String>,
    /// Lifetime of the access tokens `POST /token` issues (`expires_in`), in seconds.
    pub token_lifetime_secs: u64,
}

/// The secret the mock checks SigV4 signatures with by default (AWS's documentation example).
pub const AWS_TEST_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            default_fault: Fault::default(),
            text: None,
            api_keys: Vec::new(),
            models: [
                "gpt-4o",
                "gpt-4o-mini",
                "claude-sonnet-4-5",
                "claude-haiku-4-5",
                "gemini-2.5-flash",
                "gemini-2.5-pro",
            ]
            .map(String::from)
            .to_vec(),
            record_capacity: 1000,
            lenient: false,
            aws_secret_access_key: AWS_TEST_SECRET_ACCESS_KEY.to_string(),
            aws_access_key_id: None,
            token_public_key: None,
            token_lifetime_secs: 3600,
        }
    }
}

/// The wire format a request arrived in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    #[serde(rename = "openai")]
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
}

/// Request counts since start or the last reset. Requests are counted when read, before any
/// fault (so hangs, resets and injected errors are included).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub total: u64,
    pub by_dialect: BTreeMap<Dialect, u64>,
    /// Keyed by base model name (the part before any `+` suffix).
    pub by_model: BTreeMap<String, u64>,
    /// Connections open right now (not reset by `reset`).
    pub open_connections: u64,
    /// Access tokens issued by `POST /token`.
    #[serde(default)]
    pub tokens_issued: u64,
}

impl Stats {
    /// Requests seen for one base model.
    pub fn model(&self, base: &str) -> u64 {
        self.by_model.get(base).copied().unwrap_or(0)
    }

    /// Requests seen in one dialect.
    pub fn dialect(&self, dialect: Dialect) -> u64 {
        self.by_dialect.get(&dialect).copied().unwrap_or(0)
    }
}

/// One recorded request, with credentials redacted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// Arrival order, starting at 1.
    pub seq: u64,
    pub dialect: Dialect,
    pub method: String,
    /// Path and query (a `key=` query parameter is redacted).
    pub path: String,
    /// Base model name ("" when the request named none).
    pub model: String,
    /// The model as requested, with any fault suffix.
    pub raw_model: String,
    /// Header values joined with ", "; credential headers read `[redacted]`.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (`null` when empty, a string when not JSON).
    pub body: serde_json::Value,
}

/// A request as stored: cheap to capture (the body is a shared `Bytes`), parsed when read.
pub(crate) struct RawRecord {
    pub dialect: Dialect,
    pub method: http::Method,
    pub path: String,
    pub model: String,
    pub raw_model: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub(crate) const REDACTED: &str = "[redacted]";
const CREDENTIAL_HEADERS: [&str; 5] =
    ["authorization", "x-api-key", "x-goog-api-key", "api-key", "x-amz-security-token"];

#[derive(Default)]
struct Counters {
    total: u64,
    by_dialect: BTreeMap<Dialect, u64>,
    by_model: HashMap<String, u64>,
    tokens_issued: u64,
}

pub(crate) struct State {
    pub config: MockConfig,
    pub default_fault: Arc<Fault>,
    faults: Mutex<HashMap<String, Arc<Fault>>>,
    counters: Mutex<Counters>,
    recorded: Mutex<VecDeque<(u64, RawRecord)>>,
    record_seq: AtomicU64,
    /// Source of response and tool-call ids.
    ids: AtomicU64,
    open_connections: AtomicU64,
    /// Access tokens issued by `POST /token`, with their expiry.
    tokens: Mutex<HashMap<String, Instant>>,
    /// `MockConfig::token_public_key` as DER `RSAPublicKey`.
    pub token_key: Option<Vec<u8>>,
}

/// Poisoning only means another request panicked mid-update; the counters are still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    pub fn new(config: MockConfig) -> State {
        let token_key = config.token_public_key.as_deref().and_then(|pem| crate::token::public_key_der(pem).ok());
        State {
            token_key,
            default_fault: Arc::new(config.default_fault.clone()),
            config,
            faults: Mutex::new(HashMap::new()),
            counters: Mutex::new(Counters::default()),
            recorded: Mutex::new(VecDeque::new()),
            record_seq: AtomicU64::new(0),
            ids: AtomicU64::new(0),
            open_connections: AtomicU64::new(0),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Records an issued access token valid for `lifetime`.
    pub fn issue_token(&self, token: String, lifetime: std::time::Duration) {
        let now = Instant::now();
        let mut tokens = lock(&self.tokens);
        tokens.retain(|_, expiry| *expiry > now);
        tokens.insert(token, now + lifetime);
        lock(&self.counters).tokens_issued += 1;
    }

    /// Whether `token` was issued here: `Some(true)` valid, `Some(false)` expired, `None` unknown.
    pub fn token_valid(&self, token: &str) -> Option<bool> {
        lock(&self.tokens).get(token).map(|expiry| *expiry > Instant::now())
    }

    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn set_fault(&self, model: &str, fault: Fault) {
        let (base, _) = Fault::split_model(model);
        lock(&self.faults).insert(base.to_string(), Arc::new(fault));
    }

    pub fn clear_fault(&self, model: &str) {
        let (base, _) = Fault::split_model(model);
        lock(&self.faults).remove(base);
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub fn faults(&self) -> BTreeMap<String, Fault> {
        lock(&self.faults).iter().map(|(k, v)| (k.clone(), Fault::clone(v))).collect()
    }

    /// The run-time rule for `base`, else the `*` rule.
    pub fn runtime_fault(&self, base: Option<&str>) -> Option<Arc<Fault>> {
        let faults = lock(&self.faults);
        if faults.is_empty() {
            return None;
        }
        base.and_then(|b| faults.get(b)).or_else(|| faults.get("*")).cloned()
    }

    pub fn count(&self, dialect: Dialect, base: Option<&str>) {
        let mut c = lock(&self.counters);
        c.total += 1;
        *c.by_dialect.entry(dialect).or_insert(0) += 1;
        if let Some(base) = base {
            // Look up by &str first so a known model costs no allocation.
            match c.by_model.get_mut(base) {
                Some(n) => *n += 1,
                None => {
                    c.by_model.insert(base.to_string(), 1);
                }
            }
        }
    }

    pub fn recording(&self) -> bool {
        self.config.record_capacity > 0
    }

    pub fn record(&self, mut raw: RawRecord) {
        let capacity = self.config.record_capacity;
        if capacity == 0 {
            return;
        }
        redact_headers(&mut raw.headers);
        let seq = self.record_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut ring = lock(&self.recorded);
        while ring.len() >= capacity {
            ring.pop_front();
        }
        ring.push_back((seq, raw));
    }

    pub fn stats(&self) -> Stats {
        let c = lock(&self.counters);
        Stats {
            total: c.total,
            by_dialect: c.by_dialect.clone(),
            by_model: c.by_model.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            open_connections: self.open_connections.load(Ordering::Relaxed),
            tokens_issued: c.tokens_issued,
        }
    }

    /// The most recent recorded requests (oldest first), optionally for one base model.
    pub fn requests(&self, model: Option<&str>, limit: usize) -> Vec<Recorded> {
        let ring = lock(&self.recorded);
        let matching: Vec<&(u64, RawRecord)> =
            ring.iter().rev().filter(|(_, r)| model.is_none_or(|m| r.model == m)).take(limit).collect();
        matching.into_iter().rev().map(|(seq, r)| to_recorded(*seq, r)).collect()
    }

    pub fn reset(&self) {
        self.clear_faults();
        *lock(&self.counters) = Counters::default();
        lock(&self.recorded).clear();
    }

    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

fn redact_headers(headers: &mut HeaderMap) {
    for name in CREDENTIAL_HEADERS {
        if headers.contains_key(name) {
            headers.insert(name, http::HeaderValue::from_static(REDACTED));
        }
    }
}

fn to_recorded(seq: u64, r: &RawRecord) -> Recorded {
    let mut headers = BTreeMap::new();
    for name in r.headers.keys() {
        let joined: Vec<String> =
            r.headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
        headers.insert(name.as_str().to_string(), joined.join(", "));
    }
    let body = if r.body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&r.body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&r.body).into_owned()))
    };
    Recorded {
        seq,
        dialect: r.dialect,
        method: r.method.to_string(),
        path: r.path.clone(),
        model: r.model.clone(),
        raw_model: r.raw_model.clone(),
        headers,
        body,
    }
}
