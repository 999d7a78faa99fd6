//! Bring your own key: provider keys a caller sends with one request (`x-understudy-openai-key`
//! and so on), and which credential each attempt of that request uses.
//!
//! Rules (the README's "Bring your own key" section says the same for users):
//! * A caller's key of kind K goes to the route's providers of kind K that accept callers' keys:
//!   those listed in the route's `byok.providers`, or by default those at their kind's official
//!   base URL (a caller's OpenAI key never reaches a third-party server configured as `openai`).
//! * Such a provider is called with the caller's key only, never with the gateway's, unless the
//!   caller's key was refused (auth failure or exhausted quota) and the route sets
//!   `byok.fallback_to_gateway_keys`: then the same deployment is tried again at once with the
//!   gateway's key, and so are that provider's later deployments in this request. Without it, that
//!   provider's later deployments are skipped (`caller_key_rejected`).
//! * Providers for which the caller sent no key use the gateway's keys as usual.
//! * A caller's key lives in this request only: it is never logged, never cached and never counted
//!   into the deployment's health when the outcome depends on the key (auth failures, rate limits,
//!   unknown models): one caller's bad key must not take a deployment away from everyone else.

use std::sync::Mutex;

use http::HeaderMap;
use tokio::time::Instant;

use super::table::{Deployment, Route};
use crate::config::{ByokConfig, ProviderKind, Secret};
use crate::failure::{Failure, FailureClass};
use crate::provider::default_base_url;
use crate::resilience::health::Unavailable;
use crate::wire::BadRequest;

/// Request headers carrying callers' keys: `x-understudy-<kind>-key`.
const PREFIX: &str = "x-understudy-";
const SUFFIX: &str = "-key";

/// Provider kinds whose whole credential is one key, with the name used in the header.
const KINDS: [(&str, ProviderKind); 12] = [
    ("openai", ProviderKind::Openai),
    ("anthropic", ProviderKind::Anthropic),
    ("gemini", ProviderKind::Gemini),
    ("azure", ProviderKind::Azure),
    ("groq", ProviderKind::Groq),
    ("together", ProviderKind::Together),
    ("mistral", ProviderKind::Mistral),
    ("deepseek", ProviderKind::Deepseek),
    ("fireworks", ProviderKind::Fireworks),
    ("openrouter", ProviderKind::Openrouter),
    ("ollama", ProviderKind::Ollama),
    ("vllm", ProviderKind::Vllm),
];

/// The provider keys one caller sent with one request. `Debug` never shows them.
#[derive(Clone, Default)]
pub struct CallerKeys {
    keys: Vec<(ProviderKind, Secret)>,
}

impl std::fmt::Debug for CallerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<&str> = self.keys.iter().map(|(k, _)| kind_name(*k)).collect();
        f.debug_struct("CallerKeys").field("kinds", &kinds).finish()
    }
}

impl CallerKeys {
    /// Keys from `x-understudy-<kind>-key` headers. A header naming a kind that has no single-key
    /// credential (Bedrock, Vertex) or no kind at all, or holding an empty or non-text value, is
    /// the caller's mistake: silently using the gateway's keys instead would bill the wrong account.
    pub fn from_headers(headers: &HeaderMap) -> Result<CallerKeys, BadRequest> {
        let mut keys = Vec::new();
        for (name, value) in headers {
            let Some(kind) = name.as_str().strip_prefix(PREFIX).and_then(|r| r.strip_suffix(SUFFIX)) else {
                continue;
            };
            let Some((_, k)) = KINDS.iter().find(|(n, _)| *n == kind) else {
                let known: Vec<String> = KINDS.iter().map(|(n, _)| format!("{PREFIX}{n}{SUFFIX}")).collect();
                return Err(BadRequest::new(format!(
                    "{name}: no provider kind takes a caller's key this way; use one of {}",
                    known.join(", ")
                ))
                .param(name.as_str()));
            };
            let key = value.to_str().map(str::trim).unwrap_or("");
            if key.is_empty() {
                return Err(BadRequest::new(format!("{name} must hold a provider API key")).param(name.as_str()));
            }
            keys.retain(|(existing, _)| existing != k);
            keys.push((*k, Secret::new(key)));
        }
        Ok(CallerKeys { keys })
    }

    pub fn new(keys: Vec<(ProviderKind, Secret)>) -> CallerKeys {
        CallerKeys { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn get(&self, kind: ProviderKind) -> Option<&Secret> {
        self.keys.iter().find(|(k, _)| *k == kind).map(|(_, s)| s)
    }

    /// Every key, to scrub from anything recorded.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.keys.iter().map(|(_, s)| s)
    }
}

/// The header name for a kind, e.g. `x-understudy-openai-key` (`None`: no single-key credential).
pub fn header_for(kind: ProviderKind) -> Option<String> {
    KINDS.iter().find(|(_, k)| *k == kind).map(|(n, _)| format!("{PREFIX}{n}{SUFFIX}"))
}

fn kind_name(kind: ProviderKind) -> &'static str {
    KINDS.iter().find(|(_, k)| *k == kind).map(|(n, _)| *n).unwrap_or("other")
}

/// The credential for one attempt.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    /// The deployment's configured key.
    Gateway,
    /// The caller's own key.
    Caller(&'a Secret),
}

impl<'a> Credential<'a> {
    pub fn key<'d>(&self, dep: &'d Deployment) -> &'d Secret
    where
        'a: 'd,
    {
        match self {
            Credential::Gateway => &dep.api_key,
            Credential::Caller(k) => k,
        }
    }

    pub fn is_caller(&self) -> bool {
        matches!(self, Credential::Caller(_))
    }
}

/// One request's credentials: the caller's keys, the route's policy, and which providers have
/// refused the caller's key so far. Shared by concurrent branches (hedges), hence the lock, which
/// is never held across an `.await`.
pub struct KeyRing<'a> {
    caller: &'a CallerKeys,
    policy: &'a ByokConfig,
    /// Provider names whose caller key was refused in this request.
    refused: Mutex<Vec<String>>,
}

impl<'a> KeyRing<'a> {
    pub fn new(caller: &'a CallerKeys, route: &'a Route) -> KeyRing<'a> {
        KeyRing { caller, policy: &route.byok, refused: Mutex::new(Vec::new()) }
    }

    /// The credential for `dep`'s next attempt, or `None` when it must be skipped (the caller's
    /// key was refused and the gateway's keys may not stand in).
    pub fn choose(&self, dep: &Deployment) -> Option<Credential<'a>> {
        let Some(key) = self.caller_key(dep) else {
            return Some(Credential::Gateway);
        };
        if !self.was_refused(&dep.endpoint.name) {
            return Some(Credential::Caller(key));
        }
        self.policy.fallback_to_gateway_keys.then_some(Credential::Gateway)
    }

    /// After a failed attempt with the caller's key: whether the failure refuses the key itself
    /// (auth, exhausted quota); if so it is remembered for the rest of the request.
    pub fn refuses(&self, dep: &Deployment, f: &Failure) -> bool {
        let refused = f.class == FailureClass::Auth || f.is_quota_exhausted();
        if refused {
            let mut r = self.refused.lock().unwrap_or_else(|p| p.into_inner());
            if !r.contains(&dep.endpoint.name) {
                r.push(dep.endpoint.name.clone());
            }
        }
        refused
    }

    pub fn fallback_to_gateway_keys(&self) -> bool {
        self.policy.fallback_to_gateway_keys
    }

    fn was_refused(&self, provider: &str) -> bool {
        self.refused.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|p| p == provider)
    }

    /// The caller's key for `dep`, when it has one and `dep`'s provider accepts callers' keys.
    fn caller_key(&self, dep: &Deployment) -> Option<&'a Secret> {
        let key = self.caller.get(dep.endpoint.kind)?;
        let accepts = match &self.policy.providers {
            Some(list) => list.iter().any(|p| *p == dep.endpoint.name),
            None => dep.endpoint.base_url == default_base_url(dep.endpoint.kind),
        };
        accepts.then_some(key)
    }
}

/// Reserves an attempt on `dep`'s health. A caller's key is a credential of its own: the
/// gateway key's troubles (auth or quota cooldown, 429 cooldown) do not keep it out, while a
/// drain or a breaker opened by the provider's own failures does.
pub fn admit(dep: &Deployment, cred: Credential<'_>, now: Instant) -> Result<bool, Unavailable> {
    if cred.is_caller() {
        dep.health.admit_caller_key(now)
    } else {
        dep.health.admit(now)
    }
}

/// Records a failed attempt on `dep`'s health. With a caller's key, failures that depend on the
/// key (auth, rate limits and quotas, models the key's account cannot use) say nothing about
/// the deployment and leave its health untouched.
pub fn record_failure(dep: &Deployment, cred: Credential<'_>, f: &Failure, probe: bool, now: Instant) {
    let key_dependent =
        matches!(f.class, FailureClass::Auth | FailureClass::RateLimited | FailureClass::DeploymentInvalid);
    if cred.is_caller() && key_dependent {
        dep.health.neutral(probe);
    } else {
        dep.health.failure(now, f, dep.limits.disable_for, dep.limits.rate_limit_cooldown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn parses_one_header_per_kind() {
        let k = CallerKeys::from_headers(&headers(&[
            ("x-understudy-openai-key", "sk-caller-1"),
            ("x-understudy-gemini-key", " AIza-caller "),
            ("x-understudy-deadline", "10s"),
            ("authorization", "Bearer gw"),
        ]))
        .unwrap();
        assert_eq!(k.get(ProviderKind::Openai).unwrap().expose(), "sk-caller-1");
        assert_eq!(k.get(ProviderKind::Gemini).unwrap().expose(), "AIza-caller");
        assert!(k.get(ProviderKind::Anthropic).is_none());
        let dbg = format!("{k:?}");
        assert!(dbg.contains("openai") && !dbg.contains("sk-caller-1"), "{dbg}");
        assert!(CallerKeys::from_headers(&HeaderMap::new()).unwrap().is_empty());
    }

    #[test]
    fn unknown_kinds_and_empty_keys_are_refused_without_echoing_the_key() {
        for (name, value) in [
            ("x-understudy-bedrock-key", "secret-value-1"),
            ("x-understudy-vertex-key", "secret-value-1"),
            ("x-understudy-opneai-key", "secret-value-1"),
            ("x-understudy-openai-key", " "),
        ] {
            let e = CallerKeys::from_headers(&headers(&[(name, value)])).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(name));
            assert!(!e.message.contains("secret-value-1"), "{}", e.message);
        }
    }

    #[test]
    fn header_names() {
        assert_eq!(header_for(ProviderKind::Anthropic).as_deref(), Some("x-understudy-anthropic-key"));
        assert_eq!(header_for(ProviderKind::Bedrock), None);
        assert_eq!(header_for(ProviderKind::Vertex), None);
    }
}
