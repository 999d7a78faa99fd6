//! Steady client traffic: a few concurrent clients in a loop through the gateway's OpenAI
//! endpoint, every third request streaming, each answer recorded as a [`Sample`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::scenarios::{PRIMARY, ROUTE};

/// One client request, as the caller saw it.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// When it was sent, in seconds since the run started.
    pub start: f64,
    /// Until the whole answer (or the error) arrived, in milliseconds.
    pub latency_ms: f64,
    /// A complete answer: a 2xx with content, or a stream that ended with `[DONE]`.
    pub ok: bool,
    pub stream: bool,
    /// `x-understudy-served-by`, when an answer was served.
    pub served_by: Option<String>,
    /// The gateway skipped the primary without calling it (breaker open, cooling down).
    pub primary_skipped: bool,
}

impl Sample {
    pub fn end(&self) -> f64 {
        self.start + self.latency_ms / 1000.0
    }

    pub fn served_by_primary(&self) -> bool {
        self.ok && self.served_by.as_deref() == Some(PRIMARY)
    }
}

/// Samples shared between the clients and the controller; the lock is held for a push or a copy.
#[derive(Clone, Default)]
pub struct Samples(Arc<Mutex<Vec<Sample>>>);

impl Samples {
    fn lock(&self) -> MutexGuard<'_, Vec<Sample>> {
        // A poisoned lock only means a client panicked mid-push: the samples are still valid.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn push(&self, s: Sample) {
        self.lock().push(s);
    }

    /// Samples from index `from` on.
    pub fn since(&self, from: usize) -> Vec<Sample> {
        let all = self.lock();
        all.get(from..).map(<[Sample]>::to_vec).unwrap_or_default()
    }

    pub fn take(&self) -> Vec<Sample> {
        std::mem::take(&mut *self.lock())
    }
}

/// Where and how long to send traffic.
#[derive(Clone)]
pub struct Traffic {
    pub url: String,
    pub clients: usize,
    pub origin: Instant,
    /// No request starts after this.
    pub until: Instant,
    /// Client-side limit per request (longer than the route's deadline).
    pub timeout: Duration,
}

/// Starts the clients; they stop by themselves at `until`.
pub fn start(t: &Traffic, samples: &Samples) -> Vec<JoinHandle<()>> {
    let client = reqwest::Client::builder().tcp_nodelay(true).timeout(t.timeout).build().unwrap_or_default();
    (0..t.clients)
        .map(|w| {
            let (client, t, samples) = (client.clone(), t.clone(), samples.clone());
            tokio::spawn(async move {
                let mut n = 0usize;
                while Instant::now() < t.until {
                    n += 1;
                    let stream = (n + w).is_multiple_of(3);
                    let t0 = Instant::now();
                    let mut s = one_request(&client, &t.url, stream).await;
                    s.start = (t0 - t.origin).as_secs_f64();
                    s.latency_ms = t0.elapsed().as_secs_f64() * 1000.0;
                    samples.push(s);
                }
            })
        })
        .collect()
}

async fn one_request(client: &reqwest::Client, url: &str, stream: bool) -> Sample {
    let mut sample = Sample { start: 0.0, latency_ms: 0.0, ok: false, stream, served_by: None, primary_skipped: false };
    let body = serde_json::json!({
        "model": ROUTE,
        "messages": [{"role": "user", "content": "Say hello."}],
        "stream": stream,
    });
    let Ok(resp) = client.post(format!("{url}/v1/chat/completions")).json(&body).send().await else {
        return sample;
    };
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    sample.served_by = header("x-understudy-served-by");
    sample.primary_skipped = header("x-understudy-fallback-reasons").is_some_and(|r| skipped(&r));
    let status_ok = resp.status().is_success();
    let Ok(text) = resp.text().await else {
        return sample;
    };
    sample.ok = status_ok && complete(&text, stream);
    sample
}

/// Whether the fallback reasons say the primary was skipped rather than called.
fn skipped(reasons: &str) -> bool {
    reasons.split(", ").any(|r| {
        r.split_once('=')
            .is_some_and(|(dep, why)| dep == PRIMARY && matches!(why, "circuit_open" | "cooling_down" | "drained"))
    })
}

/// A complete answer: a stream that ended with `[DONE]` and no in-band error, or a JSON answer
/// with content.
fn complete(text: &str, stream: bool) -> bool {
    if stream {
        let data: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
        let error = |d: &&str| serde_json::from_str::<serde_json::Value>(d).is_ok_and(|v| v.get("error").is_some());
        return data.last() == Some(&"[DONE]") && !data.iter().any(error);
    }
    serde_json::from_str::<serde_json::Value>(text)
        .is_ok_and(|v| v.pointer("/choices/0/message/content").and_then(|c| c.as_str()).is_some_and(|c| !c.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_stream_is_not_complete() {
        assert!(complete("data: {\"choices\":[]}\n\ndata: [DONE]\n\n", true));
        assert!(!complete("data: {\"choices\":[]}\n\ndata: {\"error\":{\"type\":\"stream_broken\"}}\n\n", true));
        assert!(!complete("data: {\"choices\":[]}\n\n", true));
        assert!(complete(r#"{"choices":[{"message":{"content":"hi"}}]}"#, false));
        assert!(!complete(r#"{"choices":[{"message":{"content":""}}]}"#, false));
        assert!(!complete("not json", false));
    }

    #[test]
    fn skips_are_read_from_the_fallback_reasons() {
        assert!(skipped("openai/gpt-4o=circuit_open"));
        assert!(skipped("anthropic/x=overloaded, openai/gpt-4o=cooling_down"));
        assert!(!skipped("openai/gpt-4o=overloaded"));
        assert!(!skipped(""));
    }
}
