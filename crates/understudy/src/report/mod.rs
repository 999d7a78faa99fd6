//! Reporting: who answered and why. The attempt trace of one request, the response headers
//! that summarise it, Prometheus metrics, and one structured log record per request.

pub mod headers;
pub mod journal;
pub mod metrics;

use std::time::Duration;

use serde::Serialize;

use crate::failure::{Failure, FailureClass};

/// One attempt on one deployment.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub deployment: String,
    /// `None` for the attempt that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<FailureClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(serialize_with = "millis")]
    pub elapsed_ms: Duration,
    #[serde(skip)]
    pub retry_after: Option<Duration>,
    /// A half-open breaker's probe.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub probe: bool,
    /// Made with the caller's own key (BYOK), not the gateway's.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub caller_key: bool,
}

/// A candidate skipped without a call: its breaker is open, it is cooling down, or drained.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub deployment: String,
    pub reason: &'static str,
    #[serde(skip)]
    pub until: Option<tokio::time::Instant>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

impl AttemptRecord {
    pub fn ok(deployment: &str, elapsed: Duration) -> Self {
        AttemptRecord {
            deployment: deployment.to_string(),
            class: None,
            detail: None,
            status: None,
            message: None,
            elapsed_ms: elapsed,
            retry_after: None,
            probe: false,
            caller_key: false,
        }
    }

    /// An attempt cancelled because a hedge answered first.
    pub fn hedged_out(deployment: &str, elapsed: Duration) -> Self {
        AttemptRecord { detail: Some("hedged_out"), ..AttemptRecord::ok(deployment, elapsed) }
    }

    pub fn failed(deployment: &str, f: &Failure, elapsed: Duration) -> Self {
        let mut message = f.message.clone();
        if message.len() > 300 {
            let mut cut = 300;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        AttemptRecord {
            deployment: deployment.to_string(),
            class: Some(f.class),
            detail: f.detail,
            status: f.status,
            message: Some(message),
            elapsed_ms: elapsed,
            retry_after: f.retry_after,
            probe: false,
            caller_key: false,
        }
    }
}

/// Everything one request went through.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub route: String,
    pub attempts: Vec<AttemptRecord>,
    /// Candidates passed over without a call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Conversations trimmed to fit a smaller window: `deployment=mode:messages removed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
    /// Hedges started.
    #[serde(skip_serializing_if = "is_zero")]
    pub hedges: u32,
    /// The deployment id that answered.
    pub served_by: Option<String>,
    /// Its model.
    pub served_model: Option<String>,
    /// Time spent waiting on providers (up to the commit point for streams).
    #[serde(skip)]
    pub upstream: Duration,
    /// Time spent in backoff and Retry-After pauses.
    #[serde(skip)]
    pub waited: Duration,
}

impl Trace {
    pub fn new(route: &str) -> Self {
        Trace {
            route: route.to_string(),
            attempts: Vec::new(),
            skipped: Vec::new(),
            truncated: Vec::new(),
            hedges: 0,
            served_by: None,
            served_model: None,
            upstream: Duration::ZERO,
            waited: Duration::ZERO,
        }
    }

    /// Adds what a concurrent branch (a hedge) went through.
    pub fn merge(&mut self, other: Trace) {
        self.attempts.extend(other.attempts);
        self.skipped.extend(other.skipped);
        self.truncated.extend(other.truncated);
        self.hedges += other.hedges;
        // Concurrent branches overlap in time; count the longer one as upstream time.
        self.upstream = self.upstream.max(other.upstream);
        self.waited += other.waited;
    }

    /// Failed attempts, in order.
    pub fn failures(&self) -> impl Iterator<Item = &AttemptRecord> {
        self.attempts.iter().filter(|a| a.class.is_some())
    }

    /// Why each earlier candidate did not answer, in order: `deployment=reason` for skips,
    /// failures (their class) and hedged-out attempts.
    pub fn reasons(&self) -> Vec<String> {
        let skips = self.skipped.iter().map(|s| format!("{}={}", s.deployment, s.reason));
        let tried = self.attempts.iter().filter_map(|a| match (a.class, a.detail) {
            (Some(c), _) => Some(format!("{}={}", a.deployment, c.as_str())),
            (None, Some("hedged_out")) => Some(format!("{}=hedged_out", a.deployment)),
            _ => None,
        });
        skips.chain(tried).collect()
    }

    /// Answered by something other than the route's first choice (tried or skipped).
    pub fn fell_back(&self) -> bool {
        match (self.attempts.first(), &self.served_by) {
            // A deployment that cannot serve this kind of request at all (no embeddings endpoint)
            // was never a choice: passing it over is not a fallback.
            (Some(first), Some(s)) => {
                &first.deployment != s || self.skipped.iter().any(|k| k.reason != "no_embeddings")
            }
            _ => false,
        }
    }
}
