//! Background health probes: for each deployment with `probe:` configured, a task that checks it
//! every `interval` (jittered, so that replicas and deployments do not probe in step) and feeds
//! the verdict to its health, so that a breaker can open before any caller pays for an outage,
//! and close again (as its half-open probe) without a caller being the test subject.
//!
//! `models` probes `GET` the provider's model listing (free; proves the endpoint answers).
//! `completion` probes send a one-token request through the adapter (costs a token; proves the
//! model answers). A fault injected through the admin API applies to probes too, as a real
//! incident would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout_at, Instant};

use super::health::ProbeOutcome;
use crate::canonical::{ChatRequest, Message, Params, Role};
use crate::config::{ProbeConfig, ProbeKind};
use crate::failure::{Failure, FailureClass};
use crate::provider::{fetched_token, Call, UpstreamRequest};
use crate::route::attempt::{injected, transport_failure};
use crate::route::table::{Deployment, RouteTable};

/// Used when `probe.timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// A floor under `interval`, so that a typo cannot turn a probe into a flood.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Enough for any model listing or one-token answer.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// What a probe found, before it is reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Healthy,
    Failed(Failure),
    Inconclusive(Failure),
}

impl Verdict {
    fn label(&self) -> &'static str {
        match self {
            Verdict::Healthy => "ok",
            Verdict::Failed(f) => f.class.as_str(),
            Verdict::Inconclusive(_) => "inconclusive",
        }
    }

    fn outcome(&self) -> ProbeOutcome<'_> {
        match self {
            Verdict::Healthy => ProbeOutcome::Healthy,
            Verdict::Failed(f) => ProbeOutcome::Failed(f),
            Verdict::Inconclusive(f) => ProbeOutcome::Inconclusive(f),
        }
    }
}

/// The running probe tasks, by deployment id. Dropping it stops them.
#[derive(Default)]
pub struct Probes {
    running: Mutex<HashMap<String, Running>>,
}

struct Running {
    dep: Arc<Deployment>,
    task: JoinHandle<()>,
}

impl Probes {
    pub fn new() -> Probes {
        Probes::default()
    }

    /// Makes the running probes match `table`: starts those missing, restarts those whose
    /// deployment was rebuilt (a reload: new credentials or settings), stops the rest. Must be
    /// called inside a tokio runtime.
    pub fn sync(&self, table: &RouteTable) {
        let wanted: HashMap<String, Arc<Deployment>> =
            table.deployments().into_iter().filter(|d| d.probe.is_some()).map(|d| (d.id.clone(), d)).collect();
        let mut running = self.lock();
        running.retain(|id, r| {
            let keep = wanted.get(id).is_some_and(|d| Arc::ptr_eq(d, &r.dep));
            if !keep {
                r.task.abort();
            }
            keep
        });
        for (id, dep) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let Some(cfg) = dep.probe else { continue };
            let task = tokio::spawn(run(dep.clone(), cfg));
            running.insert(id, Running { dep, task });
        }
    }

    /// Stops every probe (server shutdown).
    pub fn stop(&self) {
        for (_, r) in self.lock().drain() {
            r.task.abort();
        }
    }

    /// Ids of the deployments being probed, sorted.
    pub fn running(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().keys().cloned().collect();
        v.sort();
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One deployment's probe loop; ends only when aborted.
async fn run(dep: Arc<Deployment>, cfg: ProbeConfig) {
    let interval = cfg.interval.0.max(MIN_INTERVAL);
    let limit = cfg.timeout.map(|t| t.0).unwrap_or(DEFAULT_TIMEOUT);
    // A random first delay spreads deployments (and replicas started together) over the interval.
    let first = interval.mul_f64(rand::rng().random_range(0.0..1.0));
    sleep(first).await;
    let mut last_label = "ok";
    loop {
        let verdict = check(&dep, cfg.kind, limit).await;
        report(&dep, &verdict, last_label);
        last_label = verdict.label();
        let next = interval.mul_f64(rand::rng().random_range(0.8..1.2));
        sleep(next).await;
    }
}

/// Feeds the verdict to the deployment's health; logs only changes, not every probe.
fn report(dep: &Deployment, verdict: &Verdict, last_label: &str) {
    let label = verdict.label();
    metrics::counter!(crate::report::metrics::PROBES, "deployment" => dep.id.clone(), "outcome" => label).increment(1);
    dep.health.probe_result(Instant::now(), verdict.outcome(), dep.limits.disable_for, dep.limits.rate_limit_cooldown);
    if label == last_label {
        return;
    }
    match verdict {
        Verdict::Healthy => tracing::info!(target: "understudy::probe", deployment = %dep.id, "probe succeeds again"),
        Verdict::Failed(f) => {
            tracing::warn!(target: "understudy::probe", deployment = %dep.id, failure = %f, "probe failed")
        }
        Verdict::Inconclusive(f) => tracing::warn!(
            target: "understudy::probe", deployment = %dep.id, failure = %f,
            "probe inconclusive (no health effect): the model listing refused this key or is missing; consider `kind: completion`"
        ),
    }
}

/// Runs one probe of `dep` within `limit`.
pub async fn check(dep: &Deployment, kind: ProbeKind, limit: Duration) -> Verdict {
    let until = Instant::now() + limit;
    let result = match kind {
        ProbeKind::Models => models(dep, until).await,
        ProbeKind::Completion => completion(dep, until).await,
    };
    judge(kind, result)
}

/// A model listing answers for the endpoint, not for the model or its quota, and has
/// permissions and limits of its own (a restricted key may chat but not list): only
/// availability failures count against the deployment. A one-token completion is the real
/// path, so everything it meets counts as an attempt's failure would.
pub fn judge(kind: ProbeKind, result: Result<(), Failure>) -> Verdict {
    match (kind, result) {
        (_, Ok(())) => Verdict::Healthy,
        (ProbeKind::Completion, Err(f)) => Verdict::Failed(f),
        (ProbeKind::Models, Err(f)) => match f.class {
            FailureClass::Connect
            | FailureClass::Timeout
            | FailureClass::Overloaded
            | FailureClass::InvalidResponse
            | FailureClass::StreamBroken => Verdict::Failed(f),
            _ => Verdict::Inconclusive(f),
        },
    }
}

async fn models(dep: &Deployment, until: Instant) -> Result<(), Failure> {
    preflight(dep, until).await?;
    let token = fetched_token(&dep.endpoint, &dep.api_key, until).await?;
    let Some(req) = dep.adapter.models_request(&dep.endpoint, token.as_ref().unwrap_or(&dep.api_key)) else {
        return Err(Failure::new(FailureClass::InvalidRequest, "this provider kind has no model listing to probe")
            .detail("no_listing"));
    };
    let req = req?;
    let sent = dep.http.get(&req.url).headers(req.headers).send();
    send(dep, sent, until).await.map(|_| ())
}

async fn completion(dep: &Deployment, until: Instant) -> Result<(), Failure> {
    preflight(dep, until).await?;
    let req = ChatRequest {
        model: dep.model.clone(),
        messages: vec![Message::text(Role::User, "ping")],
        params: Params { max_tokens: Some(1), ..Params::default() },
        ..ChatRequest::default()
    };
    let token = fetched_token(&dep.endpoint, &dep.api_key, until).await?;
    let call = Call {
        endpoint: &dep.endpoint,
        model: &dep.model,
        api_key: token.as_ref().unwrap_or(&dep.api_key),
        extra_params: &dep.overrides.params,
        stream: false,
    };
    let UpstreamRequest { url, headers, body } = dep.adapter.build(&req, &call)?;
    let sent = dep.http.post(&url).headers(headers).body(body).send();
    let body = send(dep, sent, until).await?;
    // One token may well be empty text (a reasoning model): a well-formed answer is enough.
    dep.adapter.decode_response(&body).map(|_| ()).map_err(|f| redact(f, dep))
}

/// What every probe checks before sending: a configured key, and an injected fault.
async fn preflight(dep: &Deployment, until: Instant) -> Result<(), Failure> {
    if !dep.api_key.missing_vars().is_empty() {
        let vars = dep.api_key.missing_vars().join(", ");
        return Err(Failure::new(FailureClass::Auth, format!("no API key: environment variable {vars} is not set"))
            .detail("missing_api_key"));
    }
    if let Some(fault) = dep.health.fault() {
        if let Some(f) = injected(dep, &fault, until, false).await {
            return Err(f);
        }
    }
    Ok(())
}

/// Sends, and returns a 2xx body; anything else is classified by the provider's adapter.
async fn send(
    dep: &Deployment,
    sent: impl std::future::Future<Output = Result<reqwest::Response, reqwest::Error>>,
    until: Instant,
) -> Result<Bytes, Failure> {
    let timed_out = || Failure::new(FailureClass::Timeout, "the health probe got no answer in time").detail("total");
    let resp = match timeout_at(until, sent).await {
        Err(_) => return Err(timed_out()),
        Ok(Err(e)) => return Err(transport_failure(&e)),
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = match timeout_at(until, read_limited(resp)).await {
        Err(_) => return Err(timed_out()),
        Ok(b) => b?,
    };
    if status.is_success() {
        Ok(body)
    } else {
        Err(redact(dep.adapter.classify_error(status.as_u16(), &headers, &body), dep))
    }
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Bytes, Failure> {
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport_failure(&e))? {
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(Failure::new(FailureClass::InvalidResponse, "probe answer too large").detail("too_large"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn redact(mut f: Failure, dep: &Deployment) -> Failure {
    f.message = crate::failure::redact_secrets(&f.message, Some(dep.api_key.expose()));
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::resilience::health::HealthRegistry;

    #[test]
    fn a_listing_only_speaks_for_availability() {
        let f = |c| Failure::new(c, "x");
        for c in [FailureClass::Connect, FailureClass::Timeout, FailureClass::Overloaded, FailureClass::InvalidResponse]
        {
            assert_eq!(judge(ProbeKind::Models, Err(f(c))), Verdict::Failed(f(c)));
        }
        for c in [FailureClass::Auth, FailureClass::DeploymentInvalid, FailureClass::RateLimited] {
            assert_eq!(judge(ProbeKind::Models, Err(f(c))), Verdict::Inconclusive(f(c)));
            assert_eq!(judge(ProbeKind::Completion, Err(f(c))), Verdict::Failed(f(c)));
        }
        assert_eq!(judge(ProbeKind::Models, Ok(())), Verdict::Healthy);
    }

    fn table(yaml_probe: &str) -> RouteTable {
        let yaml = format!(
            "providers:\n  down: {{ kind: openai, base_url: \"http://127.0.0.1:9/v1\", api_key: k }}\n\
             routes:\n  r:\n    fallback_chain:\n      - {{ provider: down, model: m, breaker: {{ open_for: 1h }} {yaml_probe} }}\n      - {{ provider: down, model: other }}\n"
        );
        let loaded = load_str(&yaml, "t.yaml").unwrap();
        RouteTable::from_config(&loaded.config, Arc::new(HealthRegistry::default()))
    }

    #[tokio::test]
    async fn probes_alone_open_the_breaker_and_stop_when_told() {
        let t = table(", probe: { interval: 10ms, timeout: 1s }");
        let probes = Probes::new();
        probes.sync(&t);
        assert_eq!(probes.running(), vec!["down/m".to_string()]);
        let health = t.health().find("down/m").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while health.snapshot(Instant::now()).breaker.state != "open" {
            assert!(Instant::now() < deadline, "the breaker never opened");
            sleep(Duration::from_millis(10)).await;
        }
        let snap = health.snapshot(Instant::now());
        assert!(snap.breaker.reason.contains("consecutive failures"), "{}", snap.breaker.reason);
        assert!(snap.probe.unwrap().failed >= 5);
        assert_eq!(snap.attempts, 0, "no caller traffic was involved");
        // The unprobed deployment was left alone.
        assert!(t.health().find("down/other").unwrap().snapshot(Instant::now()).probe.is_none());

        probes.stop();
        assert!(probes.running().is_empty());
        let before = health.snapshot(Instant::now()).probe.unwrap();
        sleep(Duration::from_millis(60)).await;
        let after = health.snapshot(Instant::now()).probe.unwrap();
        assert_eq!(before.failed + before.ok, after.failed + after.ok, "no probe ran after stop");
    }

    #[tokio::test]
    async fn sync_follows_a_reload() {
        let registry = Arc::new(HealthRegistry::default());
        let yaml = |probe: &str| {
            format!(
                "providers:\n  down: {{ kind: openai, base_url: \"http://127.0.0.1:9/v1\", api_key: k }}\n\
                 routes:\n  r:\n    fallback_chain:\n      - {{ provider: down, model: m {probe} }}\n"
            )
        };
        let cfg = |p: &str| load_str(&yaml(p), "t.yaml").unwrap().config;
        let probes = Probes::new();
        let t1 = RouteTable::from_config(&cfg(", probe: { interval: 1h }"), registry.clone());
        probes.sync(&t1);
        assert_eq!(probes.running(), vec!["down/m".to_string()]);
        let t2 = RouteTable::from_config(&cfg(""), registry.clone());
        probes.sync(&t2);
        assert!(probes.running().is_empty(), "a reload that removes the probe stops it");
        let t3 = RouteTable::from_config(&cfg(", probe: { interval: 1h, kind: completion }"), registry);
        probes.sync(&t3);
        assert_eq!(probes.running(), vec!["down/m".to_string()]);
    }
}
