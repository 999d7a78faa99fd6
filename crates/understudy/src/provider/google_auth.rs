//! Google OAuth2 access tokens from a service-account key file, for Vertex AI.
//!
//! The flow (reference section 6): read the key JSON, sign a JWT with its RSA key (RS256, `kid` =
//! `private_key_id`), POST it to the key's `token_uri` as a jwt-bearer grant, and cache the access
//! token. A token is refreshed once less than 3 min 45 s of its life remain (google-auth's
//! margin), by one fetch that every concurrent caller shares.
//!
//! Failures: a key that cannot be read or used, or a token endpoint that refuses the grant, is
//! `auth` (the credential is bad: take the deployment out of rotation). A token endpoint that is
//! unreachable or failing (connect, 5xx) is classified as such, so a blip at Google's token
//! service does not disable a deployment for an hour.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use futures::future::{BoxFuture, FutureExt, Shared};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use super::TokenSource;
use crate::config::Secret;
use crate::failure::{Failure, FailureClass};

/// The scope Vertex AI needs.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's token endpoint, when a key file names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Refresh this long before expiry (google-auth's `REFRESH_THRESHOLD`).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(225);
/// Lifetime asked for in the JWT (Google's maximum) and assumed when the answer gives none.
const LIFETIME: Duration = Duration::from_secs(3600);
/// Limits for one token request.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest token-endpoint answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// Locks are held for a few instructions only; a poisoned one is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A token source for one key file and scope.
pub struct ServiceAccount {
    path: String,
    scope: String,
    http: reqwest::Client,
    cache: TokenCache,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount").field("path", &self.path).field("scope", &self.scope).finish_non_exhaustive()
    }
}

type Registry = Mutex<HashMap<(String, String), Weak<ServiceAccount>>>;

impl ServiceAccount {
    /// The token source for `path` and `scope`, shared by every provider (and every configuration
    /// reload) that names the same key file, so that one credential has one cached token.
    pub fn shared(path: &str, scope: &str) -> Arc<dyn TokenSource> {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        let mut map = lock(REGISTRY.get_or_init(Default::default));
        let key = (path.to_string(), scope.to_string());
        if let Some(live) = map.get(&key).and_then(Weak::upgrade) {
            return live;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let account = Arc::new(ServiceAccount::new(path, scope));
        map.insert(key, Arc::downgrade(&account));
        account
    }

    /// A source with its own cache (tests, embedders).
    pub fn new(path: &str, scope: &str) -> ServiceAccount {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .unwrap_or_default();
        ServiceAccount { path: path.to_string(), scope: scope.to_string(), http, cache: TokenCache::default() }
    }
}

impl TokenSource for ServiceAccount {
    fn token(&self) -> BoxFuture<'_, Result<Secret, Failure>> {
        let (path, scope, http) = (self.path.clone(), self.scope.clone(), self.http.clone());
        // The key file is read at every fetch (hourly), so a rotated key needs no restart.
        self.cache.get(move || async move { fetch(&http, &path, &scope).await }.boxed()).boxed()
    }
}

/// A fetched token and how long it lives.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub token: Secret,
    pub lifetime: Duration,
}

#[derive(Debug, Clone)]
struct Cached {
    token: Secret,
    refresh_at: Instant,
    expires_at: Instant,
}

impl Cached {
    fn new(f: Fetched, received: Instant) -> Cached {
        Cached { token: f.token, refresh_at: received + refresh_after(f.lifetime), expires_at: received + f.lifetime }
    }
}

/// When to refresh a token of `lifetime`: [`REFRESH_MARGIN`] before expiry, or at half-life for
/// tokens too short-lived for that margin (which would otherwise be fetched for every call).
fn refresh_after(lifetime: Duration) -> Duration {
    lifetime.saturating_sub(REFRESH_MARGIN).max(lifetime / 2)
}

type SharedFetch = Shared<BoxFuture<'static, Result<Cached, Failure>>>;

#[derive(Default)]
enum Slot {
    #[default]
    Empty,
    Ready(Cached),
    /// One fetch in flight, awaited by every caller; `stale` is the token it replaces.
    Fetching {
        id: u64,
        fetch: SharedFetch,
        stale: Option<Cached>,
    },
}

/// A cached token with single-flight refresh. Times come from tokio, so tests run on a paused
/// clock.
#[derive(Default)]
pub struct TokenCache {
    slot: Mutex<Slot>,
    ids: AtomicU64,
}

impl TokenCache {
    /// The cached token, or the result of `fetch` (started only when no usable token is cached and
    /// no fetch is in flight). When a refresh fails, a token that has not expired yet is still
    /// used.
    pub async fn get<F>(&self, fetch: F) -> Result<Secret, Failure>
    where
        F: FnOnce() -> BoxFuture<'static, Result<Fetched, Failure>>,
    {
        let (id, shared) = {
            let mut slot = lock(&self.slot);
            match &*slot {
                Slot::Ready(c) if Instant::now() < c.refresh_at => return Ok(c.token.clone()),
                Slot::Fetching { id, fetch, .. } => (*id, fetch.clone()),
                _ => {
                    let stale = match std::mem::take(&mut *slot) {
                        Slot::Ready(c) => Some(c),
                        _ => None,
                    };
                    let id = self.ids.fetch_add(1, Ordering::Relaxed);
                    // Spawned so that the fetch completes even if every waiter gives up (times out).
                    let task = tokio::spawn(fetch().map(|r| r.map(|f| Cached::new(f, Instant::now()))));
                    let shared = task
                        .map(|joined| {
                            joined.unwrap_or_else(|_| {
                                Err(Failure::new(FailureClass::Auth, "the access-token fetch was aborted")
                                    .detail("token_fetch_aborted"))
                            })
                        })
                        .boxed()
                        .shared();
                    *slot = Slot::Fetching { id, fetch: shared.clone(), stale };
                    (id, shared)
                }
            }
        };
        let result = shared.await;
        let mut slot = lock(&self.slot);
        let stale = match &*slot {
            Slot::Fetching { id: current, stale, .. } if *current == id => Some(stale.clone()),
            _ => None,
        };
        let usable_stale = |s: Option<Cached>| s.filter(|c| Instant::now() < c.expires_at);
        match (result, stale) {
            (Ok(fresh), Some(_)) => {
                *slot = Slot::Ready(fresh.clone());
                Ok(fresh.token)
            }
            (Ok(fresh), None) => Ok(fresh.token),
            (Err(f), Some(stale)) => match usable_stale(stale) {
                Some(old) => {
                    let token = old.token.clone();
                    *slot = Slot::Ready(old);
                    Ok(token)
                }
                None => {
                    *slot = Slot::Empty;
                    Err(f)
                }
            },
            // Another waiter already settled the slot; a still-valid token there is fine to use.
            (Err(f), None) => match &*slot {
                Slot::Ready(c) if Instant::now() < c.expires_at => Ok(c.token.clone()),
                _ => Err(f),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The key file and the JWT

/// The fields of a service-account key file the flow needs. No `Debug`: it holds a private key.
#[derive(Deserialize)]
pub struct KeyFile {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(default)]
    pub token_uri: Option<String>,
}

impl KeyFile {
    pub fn parse(bytes: &[u8]) -> Result<KeyFile, Failure> {
        let key: KeyFile = serde_json::from_slice(bytes).map_err(|e| {
            // serde's message names the missing or mistyped field, never a value.
            bad_credentials(format!("the credentials file is not a service-account key: {e}"))
        })?;
        match key.kind.as_deref() {
            None | Some("service_account") => Ok(key),
            Some(other) => Err(bad_credentials(format!(
                "the credentials file is of type {other:?}; only service_account keys are supported (or give a ready \
                 access token as api_key)"
            ))),
        }
    }

    pub fn token_uri(&self) -> &str {
        self.token_uri.as_deref().filter(|u| !u.is_empty()).unwrap_or(DEFAULT_TOKEN_URI)
    }

    /// The signed assertion for the jwt-bearer grant, issued at `now` (Unix seconds).
    pub fn assertion(&self, scope: &str, now: u64) -> Result<String, Failure> {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = self.private_key_id.as_deref().filter(|k| !k.is_empty()) {
            header["kid"] = kid.into();
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": self.token_uri(),
            "iat": now,
            "exp": now + LIFETIME.as_secs(),
        });
        let signing_input = format!("{}.{}", b64url_json(&header), b64url_json(&claims));
        let signature = sign_rs256(&self.private_key, signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

fn b64url_json(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn bad_credentials(message: impl Into<String>) -> Failure {
    Failure::new(FailureClass::Auth, message).detail("bad_credentials")
}

/// RSASSA-PKCS1-v1_5 with SHA-256 over `message`, with a PEM key (PKCS#8 as Google issues them,
/// or PKCS#1).
pub fn sign_rs256(pem: &str, message: &[u8]) -> Result<Vec<u8>, Failure> {
    let (label, der) = pem_to_der(pem).ok_or_else(|| bad_credentials("the private key is not PEM"))?;
    let pair = match label.as_str() {
        "RSA PRIVATE KEY" => ring::signature::RsaKeyPair::from_der(&der),
        _ => ring::signature::RsaKeyPair::from_pkcs8(&der),
    }
    .map_err(|e| bad_credentials(format!("the private key is not a usable RSA key ({e})")))?;
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), message, &mut signature)
        .map_err(|_| bad_credentials("signing the token request failed"))?;
    Ok(signature)
}

/// The label and bytes of the first PEM block.
fn pem_to_der(pem: &str) -> Option<(String, Vec<u8>)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = pem.get(start + "-----BEGIN ".len()..)?;
    let (label, rest) = rest.split_once("-----")?;
    let end = rest.find("-----END ")?;
    let body: String = rest.get(..end)?.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(body).ok().map(|der| (label.to_string(), der))
}

// ---------------------------------------------------------------------------------------------
// The token request

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<f64>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Reads the key file, signs a JWT and exchanges it for an access token.
async fn fetch(http: &reqwest::Client, path: &str, scope: &str) -> Result<Fetched, Failure> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| bad_credentials(format!("cannot read the credentials file {path}: {e}")))?;
    let key = KeyFile::parse(&bytes)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let assertion = key.assertion(scope, now)?;
    // The JWT's alphabet (base64url and dots) needs no form-encoding.
    let body = format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}");
    let sent = http
        .post(key.token_uri())
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| token_endpoint_down(&e))?;
    let status = sent.status().as_u16();
    let answer = read_answer(sent).await?;
    token_from_answer(status, &answer)
}

async fn read_answer(mut resp: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| token_endpoint_down(&e))? {
        if buf.len() + chunk.len() > MAX_ANSWER {
            return Err(Failure::new(FailureClass::InvalidResponse, "the token endpoint's answer is too large")
                .detail("token_endpoint"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

fn token_endpoint_down(e: &reqwest::Error) -> Failure {
    let class = if e.is_timeout() { FailureClass::Timeout } else { FailureClass::Connect };
    Failure::new(class, format!("the token endpoint could not be reached: {e}")).detail("token_endpoint")
}

/// Classifies the token endpoint's answer: a token, a refused grant (`auth`), or a failing
/// endpoint.
pub fn token_from_answer(status: u16, body: &[u8]) -> Result<Fetched, Failure> {
    let answer: Option<TokenAnswer> = serde_json::from_slice(body).ok();
    if (200..300).contains(&status) {
        let token = answer.as_ref().and_then(|a| a.access_token.as_deref()).filter(|t| !t.is_empty());
        return match (token, answer.as_ref()) {
            (Some(token), Some(a)) => {
                let secs = a.expires_in.filter(|s| s.is_finite() && *s > 0.0).unwrap_or(LIFETIME.as_secs_f64());
                Ok(Fetched { token: Secret::new(token), lifetime: Duration::from_secs_f64(secs.min(86_400.0)) })
            }
            _ => {
                Err(Failure::new(FailureClass::InvalidResponse, "the token endpoint answered without an access token")
                    .detail("token_endpoint")
                    .status(status))
            }
        };
    }
    let reason = answer
        .as_ref()
        .map(|a| {
            let code = a.error.as_deref().unwrap_or("error");
            match a.error_description.as_deref() {
                Some(d) => format!("{code}: {d}"),
                None => code.to_string(),
            }
        })
        .unwrap_or_else(|| format!("HTTP {status}"));
    let reason: String = reason.chars().take(300).collect();
    let (class, detail) = match status {
        429 => (FailureClass::RateLimited, "token_endpoint"),
        408 | 500..=599 => (FailureClass::Overloaded, "token_endpoint"),
        // invalid_grant (bad signature, unknown or disabled key, clock skew), invalid_client...
        _ => (FailureClass::Auth, "token_rejected"),
    };
    Err(Failure::new(class, format!("the token endpoint refused the credentials ({reason})"))
        .detail(detail)
        .status(status))
}

#[cfg(test)]
#[path = "google_auth_tests.rs"]
mod tests;
