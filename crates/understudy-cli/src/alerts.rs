//! Alerts: health events (breaker opened, deployment disabled, recovered, drained, restored, a
//! route answering from a fallback and back) posted to a webhook, as generic JSON or as a Slack
//! message.
//!
//! An incident must send a handful of messages, not thousands: at most one per subject and event
//! kind per `min_interval`, and at most [`GLOBAL_CAP`] per [`GLOBAL_WINDOW`] overall. What is
//! held back is counted, and the count rides on the next message that goes out. Sending happens
//! on its own task, one message at a time with a timeout, and is never retried: a failing
//! webhook costs a log line, never a request. The webhook URL is a secret and is never logged.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use understudy::config::{AlertFormat, AlertsConfig};
use understudy::report::metrics as m;
use understudy::resilience::health::{EventKind, HealthEvent};

/// Default `alerts.min_interval`.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(300);
/// At most this many messages per [`GLOBAL_WINDOW`], whatever their subject.
pub const GLOBAL_CAP: usize = 20;
pub const GLOBAL_WINDOW: Duration = Duration::from_secs(60);
/// One webhook call, connection included.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Reasons are provider messages; a webhook needs the gist.
const MAX_REASON: usize = 500;

/// Decides which events become messages.
pub struct Limiter {
    min_interval: Duration,
    cap: usize,
    window: Duration,
    last: HashMap<(String, &'static str), Instant>,
    sent: VecDeque<Instant>,
    suppressed: u64,
}

impl Limiter {
    pub fn new(min_interval: Duration, cap: usize, window: Duration) -> Limiter {
        Limiter { min_interval, cap, window, last: HashMap::new(), sent: VecDeque::new(), suppressed: 0 }
    }

    /// `Some(n)`: send it, mentioning the `n` events held back since the last message.
    /// `None`: hold it back (and count it).
    pub fn admit(&mut self, now: Instant, subject: &str, kind: EventKind) -> Option<u64> {
        let key = (subject.to_string(), kind_name(kind));
        let recent = self.last.get(&key).is_some_and(|t| now.saturating_duration_since(*t) < self.min_interval);
        while self.sent.front().is_some_and(|t| now.saturating_duration_since(*t) >= self.window) {
            self.sent.pop_front();
        }
        if recent || self.sent.len() >= self.cap {
            self.suppressed += 1;
            return None;
        }
        self.sent.push_back(now);
        self.last.insert(key, now);
        if self.last.len() > 4096 {
            // Subjects come from the configuration and direct `provider/model` use: bounded in
            // practice, but forget the stale ones rather than grow for ever.
            let min = self.min_interval;
            self.last.retain(|_, t| now.saturating_duration_since(*t) < min);
        }
        Some(std::mem::take(&mut self.suppressed))
    }

    /// Events lost before the limiter saw them (the channel overflowed).
    pub fn lost(&mut self, n: u64) {
        self.suppressed += n;
    }
}

pub fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::BreakerOpened => "breaker_opened",
        EventKind::Disabled => "disabled",
        EventKind::Recovered => "recovered",
        EventKind::Drained => "drained",
        EventKind::Restored => "restored",
        EventKind::FallbackStarted => "fallback_started",
        EventKind::FallbackEnded => "fallback_ended",
    }
}

/// The webhook body for one event.
pub fn payload(format: AlertFormat, ev: &HealthEvent, suppressed: u64, at: SystemTime) -> Value {
    let reason = clip(&ev.reason);
    match format {
        AlertFormat::Json => json!({
            "event": kind_name(ev.kind),
            "subject": ev.deployment,
            "reason": reason,
            "at": humantime::format_rfc3339_seconds(at).to_string(),
            "suppressed": suppressed,
        }),
        AlertFormat::Slack => json!({ "text": slack_text(ev, &reason, suppressed) }),
    }
}

fn slack_text(ev: &HealthEvent, reason: &str, suppressed: u64) -> String {
    let who = format!("`{}`", slack_escape(&ev.deployment));
    let head = match ev.kind {
        EventKind::BreakerOpened => format!(":red_circle: understudy: circuit breaker opened for {who}"),
        EventKind::Disabled => format!(":no_entry: understudy: {who} taken out of rotation"),
        EventKind::Recovered => format!(":large_green_circle: understudy: {who} recovered"),
        EventKind::Drained => format!(":construction: understudy: {who} drained"),
        EventKind::Restored => format!(":white_check_mark: understudy: {who} restored"),
        EventKind::FallbackStarted => format!(":warning: understudy: route {who} is answering from a fallback"),
        EventKind::FallbackEnded => format!(":large_green_circle: understudy: route {who} is back on its first choice"),
    };
    let mut text = head;
    if !reason.is_empty() {
        text.push_str(&format!(": {}", slack_escape(reason)));
    }
    if suppressed > 0 {
        text.push_str(&format!(" ({suppressed} more alerts held back since the last message)"));
    }
    text
}

/// Slack reads `&`, `<` and `>` as markup.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn clip(s: &str) -> String {
    if s.len() <= MAX_REASON {
        return s.to_string();
    }
    let mut cut = MAX_REASON;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// Starts the alert sender, or explains in the log why it cannot (never naming the URL).
pub fn spawn(cfg: &AlertsConfig, events: broadcast::Receiver<HealthEvent>) -> Option<JoinHandle<()>> {
    let missing = cfg.webhook.missing_vars();
    if !missing.is_empty() {
        tracing::warn!(target: "understudy::alerts", "alerts are off: alerts.webhook uses unset environment variable {}", missing.join(", "));
        return None;
    }
    let url = cfg.webhook.expose().trim().to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) || reqwest::Url::parse(&url).is_err() {
        tracing::warn!(target: "understudy::alerts", "alerts are off: alerts.webhook is not an http(s) URL");
        return None;
    }
    let client = reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .connect_timeout(SEND_TIMEOUT / 2)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let min_interval = cfg.min_interval.map(|d| d.0).unwrap_or(DEFAULT_MIN_INTERVAL);
    let sender = Sender { client, url, format: cfg.format };
    let limiter = Limiter::new(min_interval, GLOBAL_CAP, GLOBAL_WINDOW);
    Some(tokio::spawn(run(sender, events, limiter)))
}

struct Sender {
    client: reqwest::Client,
    /// Secret: never logged (reqwest errors are stripped of it).
    url: String,
    format: AlertFormat,
}

async fn run(sender: Sender, mut events: broadcast::Receiver<HealthEvent>, mut limiter: Limiter) {
    loop {
        let ev = match events.recv().await {
            Ok(ev) => ev,
            Err(RecvError::Lagged(n)) => {
                metrics::counter!(m::ALERTS_SUPPRESSED, "event" => "lost").increment(n);
                limiter.lost(n);
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let event = kind_name(ev.kind);
        match limiter.admit(Instant::now(), &ev.deployment, ev.kind) {
            None => metrics::counter!(m::ALERTS_SUPPRESSED, "event" => event).increment(1),
            Some(suppressed) => sender.send(&ev, suppressed).await,
        }
    }
}

impl Sender {
    async fn send(&self, ev: &HealthEvent, suppressed: u64) {
        let event = kind_name(ev.kind);
        let body = payload(self.format, ev, suppressed, SystemTime::now());
        match self.client.post(&self.url).json(&body).send().await {
            Ok(r) if r.status().is_success() => {
                metrics::counter!(m::ALERTS_SENT, "event" => event).increment(1);
                tracing::info!(target: "understudy::alerts", event, subject = %ev.deployment, "alert sent");
            }
            Ok(r) => {
                metrics::counter!(m::ALERTS_FAILED, "event" => event).increment(1);
                tracing::warn!(target: "understudy::alerts", event, status = r.status().as_u16(), "the alert webhook refused the alert");
            }
            Err(e) => {
                metrics::counter!(m::ALERTS_FAILED, "event" => event).increment(1);
                let e = error_chain(&e.without_url());
                tracing::warn!(target: "understudy::alerts", event, error = %e, "the alert webhook could not be reached");
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind, subject: &str) -> HealthEvent {
        HealthEvent {
            deployment: subject.into(),
            kind,
            reason: "5 consecutive failures, last: overloaded [503]".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_message_per_subject_and_kind_per_interval() {
        let mut l = Limiter::new(Duration::from_secs(300), 20, Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(l.admit(now, "a", EventKind::BreakerOpened), Some(0));
        assert_eq!(l.admit(now, "a", EventKind::BreakerOpened), None);
        assert_eq!(l.admit(now, "a", EventKind::BreakerOpened), None);
        // Another kind or another subject is news.
        assert_eq!(l.admit(now, "a", EventKind::Recovered), Some(2));
        assert_eq!(l.admit(now, "b", EventKind::BreakerOpened), Some(0));
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(l.admit(Instant::now(), "a", EventKind::BreakerOpened), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(l.admit(Instant::now(), "a", EventKind::BreakerOpened), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_global_cap_bounds_a_storm_across_subjects() {
        let mut l = Limiter::new(Duration::ZERO, 3, Duration::from_secs(60));
        let sent = (0..50).filter(|i| l.admit(Instant::now(), &format!("d{i}"), EventKind::BreakerOpened).is_some());
        assert_eq!(sent.count(), 3);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(l.admit(Instant::now(), "x", EventKind::Recovered), Some(47));
        l.lost(4);
        assert_eq!(l.admit(Instant::now(), "y", EventKind::Recovered), Some(4));
    }

    #[test]
    fn json_and_slack_payloads() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let e = ev(EventKind::BreakerOpened, "openai/gpt-4o");
        assert_eq!(
            payload(AlertFormat::Json, &e, 3, at),
            json!({"event": "breaker_opened", "subject": "openai/gpt-4o",
                "reason": "5 consecutive failures, last: overloaded [503]", "at": "2023-11-14T22:13:20Z", "suppressed": 3})
        );
        let s = payload(AlertFormat::Slack, &e, 0, at);
        assert_eq!(s.as_object().unwrap().len(), 1);
        let text = s["text"].as_str().unwrap();
        assert!(text.contains("circuit breaker opened for `openai/gpt-4o`: 5 consecutive failures"), "{text}");
        assert!(!text.contains("held back"));
        let mut e = ev(EventKind::FallbackStarted, "smart");
        e.reason = "<b> & co".into();
        let text = payload(AlertFormat::Slack, &e, 2, at)["text"].as_str().unwrap().to_string();
        assert!(
            text.contains("route `smart` is answering from a fallback: &lt;b&gt; &amp; co (2 more alerts held back")
        );
    }

    #[test]
    fn long_reasons_are_clipped_on_a_char_boundary() {
        let mut e = ev(EventKind::Disabled, "x");
        e.reason = "é".repeat(400);
        let v = payload(AlertFormat::Json, &e, 0, SystemTime::UNIX_EPOCH);
        let r = v["reason"].as_str().unwrap();
        assert!(r.len() <= MAX_REASON + '…'.len_utf8() && r.ends_with('…'));
    }

    #[test]
    fn every_kind_has_a_name_matching_its_serde_form() {
        for k in [
            EventKind::BreakerOpened,
            EventKind::Disabled,
            EventKind::Recovered,
            EventKind::Drained,
            EventKind::Restored,
            EventKind::FallbackStarted,
            EventKind::FallbackEnded,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), json!(kind_name(k)));
        }
    }

    #[tokio::test]
    async fn a_failed_send_never_prints_the_webhook_url() {
        let e = reqwest::Client::new().post("http://127.0.0.1:9/services/T0/B0/s3cret").send().await.unwrap_err();
        assert!(e.to_string().contains("s3cret"), "reqwest does print it: {e}");
        let logged = error_chain(&e.without_url());
        assert!(!logged.contains("s3cret") && !logged.contains("/services/"), "{logged}");
    }
}
