//! The typed failure classes of DESIGN section 3. Provider adapters decide the class from status,
//! structured error bodies and (only where a provider leaves no other choice) message text; the
//! router acts on the class and never inspects messages.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::canonical::Dialect;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Refused, reset before headers, TLS, DNS.
    Connect,
    /// No headers, no first token, idle gap mid-stream, or total time exceeded.
    Timeout,
    /// 429: retry only after Retry-After; cooldown, not a breaker failure.
    RateLimited,
    /// 500, 502, 503, 504, 529 and in-stream overload errors.
    Overloaded,
    /// 401, 403, deactivated account, revoked key.
    Auth,
    /// Unknown or retired model, parameter the model does not support.
    DeploymentInvalid,
    /// The prompt does not fit this model.
    ContextWindow,
    /// Content policy rejection or refusal.
    ContentFiltered,
    /// Any other 4xx: the caller's own mistake.
    InvalidRequest,
    /// Unparsable body, malformed stream, empty or truncated answer.
    InvalidResponse,
    /// Connection lost or stalled after the commit point.
    StreamBroken,
}

impl FailureClass {
    pub const ALL: [FailureClass; 11] = [
        FailureClass::Connect,
        FailureClass::Timeout,
        FailureClass::RateLimited,
        FailureClass::Overloaded,
        FailureClass::Auth,
        FailureClass::DeploymentInvalid,
        FailureClass::ContextWindow,
        FailureClass::ContentFiltered,
        FailureClass::InvalidRequest,
        FailureClass::InvalidResponse,
        FailureClass::StreamBroken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Connect => "connect",
            FailureClass::Timeout => "timeout",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::Overloaded => "overloaded",
            FailureClass::Auth => "auth",
            FailureClass::DeploymentInvalid => "deployment_invalid",
            FailureClass::ContextWindow => "context_window",
            FailureClass::ContentFiltered => "content_filtered",
            FailureClass::InvalidRequest => "invalid_request",
            FailureClass::InvalidResponse => "invalid_response",
            FailureClass::StreamBroken => "stream_broken",
        }
    }

    /// Whether the next candidate may be tried after this failure (before any refinement by
    /// route policy such as context windows or content-policy chains).
    pub fn fails_over(self) -> bool {
        !matches!(self, FailureClass::InvalidRequest | FailureClass::ContentFiltered)
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed attempt, classified.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub class: FailureClass,
    /// A finer, stable reason: `account_deactivated`, `quota_exhausted`, `ttft`, `idle`,
    /// `empty_content`, ... Free of secrets.
    pub detail: Option<&'static str>,
    /// Upstream HTTP status, when there was one.
    pub status: Option<u16>,
    /// A human-readable message (the provider's, when it gave one). Never contains credentials.
    pub message: String,
    /// When the provider said to come back (Retry-After, retry-after-ms, RetryInfo...).
    pub retry_after: Option<Duration>,
    /// The provider's error body and dialect, so that a caller of the same dialect can receive
    /// its own mistake (`invalid_request`) unchanged.
    pub upstream: Option<(Dialect, Bytes)>,
}

impl Failure {
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Failure { class, detail: None, status: None, message: message.into(), retry_after: None, upstream: None }
    }

    pub fn detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }

    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    pub fn upstream(mut self, dialect: Dialect, body: Bytes) -> Self {
        self.upstream = Some((dialect, body));
        self
    }

    /// Quota or billing exhaustion: a 429 that no amount of waiting within a request fixes.
    pub fn is_quota_exhausted(&self) -> bool {
        self.detail == Some("quota_exhausted")
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.class)?;
        if let Some(d) = self.detail {
            write!(f, " ({d})")?;
        }
        if let Some(s) = self.status {
            write!(f, " [{s}]")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// Scrubs credentials from a provider message: the given key, and tokens shaped like API keys
/// (`sk-…`, `sk-ant-…`, `AIza…`), which providers sometimes echo partially masked.
pub fn redact_secrets(message: &str, key: Option<&str>) -> String {
    let mut out = match key {
        Some(k) if k.len() >= 6 => message.replace(k, "[redacted]"),
        _ => message.to_string(),
    };
    for prefix in ["sk-", "AIza", "key-"] {
        let mut from = 0;
        while let Some(i) = out[from..].find(prefix).map(|i| i + from) {
            let end = out[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '*'))
                .map(|j| i + j)
                .unwrap_or(out.len());
            if end - i >= 8 {
                out.replace_range(i..end, "[redacted]");
                from = i + "[redacted]".len();
            } else {
                from = end.max(i + 1);
            }
            if from >= out.len() {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed() {
        let m = "Incorrect API key provided: sk-proj-abc***************xyz. You can find";
        assert_eq!(redact_secrets(m, None), "Incorrect API key provided: [redacted]. You can find");
        assert_eq!(redact_secrets("key mysecretvalue bad", Some("mysecretvalue")), "key [redacted] bad");
        assert_eq!(redact_secrets("risk-free", None), "risk-free");
        assert_eq!(redact_secrets("AIzaSyD-1234567890abcdef", None), "[redacted]");
    }
}
