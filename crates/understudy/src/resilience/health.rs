//! Health per deployment: breaker, cooldown, drain, retry budget, latency estimates and
//! counters, kept across configuration reloads by deployment id. Every method takes the lock
//! briefly and never across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::breaker::{Admit, Breaker, BreakerConfig, Transition};
use super::budget::{Budget, BudgetConfig};
use super::latency::{Adaptive, PeakEwma, Recent};
use crate::failure::{Failure, FailureClass};

/// Why a deployment is skipped right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    CircuitOpen { until: Instant },
    CoolingDown { until: Instant },
    Drained,
}

impl Unavailable {
    pub fn as_str(&self) -> &'static str {
        match self {
            Unavailable::CircuitOpen { .. } => "circuit_open",
            Unavailable::CoolingDown { .. } => "cooling_down",
            Unavailable::Drained => "drained",
        }
    }

    /// When it may be available again (`None`: only by hand).
    pub fn until(&self) -> Option<Instant> {
        match self {
            Unavailable::CircuitOpen { until } | Unavailable::CoolingDown { until } => Some(*until),
            Unavailable::Drained => None,
        }
    }
}

/// Something operators should hear about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthEvent {
    /// The deployment (or, for route events, the route).
    pub deployment: String,
    pub kind: EventKind,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The breaker opened (or re-opened).
    BreakerOpened,
    /// Taken out of rotation for a long time: auth, deployment or quota failure.
    Disabled,
    /// Back in rotation (breaker closed).
    Recovered,
    Drained,
    Restored,
    /// A route began answering from a fallback (its first choice is failing or skipped).
    FallbackStarted,
    /// A route's first choice answers again.
    FallbackEnded,
}

/// A fault injected on the real attempt path (game days).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectedFault {
    /// Added before the request is sent.
    #[serde(default, with = "opt_millis")]
    pub latency_ms: Option<u64>,
    /// Answer with this status instead of calling the provider.
    #[serde(default)]
    pub status: Option<u16>,
    /// Share of requests the status or hang applies to (default 1).
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Never answer (until the attempt's own timeout).
    #[serde(default)]
    pub hang: bool,
}

mod opt_millis {
    pub fn serialize<S: serde::Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(v, s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        serde::Deserialize::deserialize(d)
    }
}

struct State {
    breaker: Breaker,
    breaker_on: bool,
    cooldown: Option<(Instant, String)>,
    /// End of the breaker's open period when `disable` set it (a key-level failure of the
    /// gateway's own key), so that a caller's own key is not kept out by it.
    disabled_until: Option<Instant>,
    drained: Option<String>,
    budget: Budget,
    budget_on: bool,
    ttft: Recent,
    total: Recent,
    ewma: PeakEwma,
    in_flight: u32,
    attempts: u64,
    failures: [u64; FailureClass::ALL.len()],
    last_failure: Option<(Instant, String)>,
    fault: Option<InjectedFault>,
    probes: ProbeRecord,
}

/// Background probe results (see `resilience::probe`).
#[derive(Default)]
struct ProbeRecord {
    last: Option<(Instant, bool, String)>,
    ok: u64,
    failed: u64,
    inconclusive: u64,
}

/// What one background probe found.
#[derive(Debug, Clone, Copy)]
pub enum ProbeOutcome<'a> {
    Healthy,
    /// Counts against the deployment like a failed attempt.
    Failed(&'a Failure),
    /// Says nothing about the deployment (a model listing refused for want of a permission the
    /// chat calls do not need, for instance): shown, but without health effect.
    Inconclusive(&'a Failure),
}

pub struct DeploymentHealth {
    pub id: String,
    state: Mutex<State>,
    events: broadcast::Sender<HealthEvent>,
}

impl DeploymentHealth {
    fn new(
        id: &str,
        breaker: Option<BreakerConfig>,
        budget: Option<BudgetConfig>,
        events: broadcast::Sender<HealthEvent>,
    ) -> Self {
        let now = Instant::now();
        DeploymentHealth {
            id: id.to_string(),
            state: Mutex::new(State {
                breaker: Breaker::new(breaker.unwrap_or_default(), now),
                breaker_on: breaker.is_some(),
                cooldown: None,
                disabled_until: None,
                drained: None,
                budget: Budget::new(budget.unwrap_or_default(), now),
                budget_on: budget.is_some(),
                ttft: Recent::new(256, Duration::from_secs(300)),
                total: Recent::new(256, Duration::from_secs(300)),
                ewma: PeakEwma::new(Duration::from_secs(10)),
                in_flight: 0,
                attempts: 0,
                failures: [0; FailureClass::ALL.len()],
                last_failure: None,
                fault: None,
                probes: ProbeRecord::default(),
            }),
            events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock still holds consistent counters: use it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn configure(&self, breaker: Option<BreakerConfig>, budget: Option<BudgetConfig>) {
        let now = Instant::now();
        let mut s = self.lock();
        s.breaker_on = breaker.is_some();
        if let Some(b) = breaker {
            s.breaker.set_config(b, now);
        }
        s.budget_on = budget.is_some();
        if let Some(b) = budget {
            s.budget = Budget::new(b, now);
        }
    }

    /// Whether the planner should skip this deployment now (reserves nothing).
    pub fn unavailable(&self, now: Instant) -> Option<Unavailable> {
        let s = self.lock();
        if s.drained.is_some() {
            return Some(Unavailable::Drained);
        }
        if let Some((until, _)) = s.cooldown {
            if now < until {
                return Some(Unavailable::CoolingDown { until });
            }
        }
        if s.breaker_on && !s.breaker.available(now) {
            let until = match s.breaker.state(now) {
                super::breaker::State::Open { until } => until,
                _ => now + Duration::from_millis(100),
            };
            return Some(Unavailable::CircuitOpen { until });
        }
        None
    }

    /// Reserves the right to send one attempt: `Err` when it must be skipped after all (a
    /// half-open breaker's probe slot was taken meanwhile).
    pub fn admit(&self, now: Instant) -> Result<bool, Unavailable> {
        if let Some(u) = self.unavailable(now) {
            return Err(u);
        }
        let mut s = self.lock();
        s.in_flight += 1;
        s.attempts += 1;
        if !s.breaker_on {
            return Ok(false);
        }
        let (admit, t) = s.breaker.admit(now);
        drop(s);
        self.admitted(admit, t)
    }

    /// Like [`admit`](Self::admit), for an attempt with a caller's own key (BYOK): the troubles of
    /// the gateway's key (an auth or quota disable, a 429 cooldown) do not keep it out; a drain,
    /// or a breaker opened by the provider's own failures, does.
    pub fn admit_caller_key(&self, now: Instant) -> Result<bool, Unavailable> {
        let mut s = self.lock();
        if s.drained.is_some() {
            return Err(Unavailable::Drained);
        }
        let disabled = s
            .disabled_until
            .is_some_and(|d| matches!(s.breaker.state(now), super::breaker::State::Open { until } if until == d));
        s.in_flight += 1;
        s.attempts += 1;
        if !s.breaker_on || disabled {
            return Ok(false);
        }
        let (admit, t) = s.breaker.admit(now);
        drop(s);
        self.admitted(admit, t)
    }

    fn admitted(&self, admit: Admit, t: Option<Transition>) -> Result<bool, Unavailable> {
        if let Some(t) = t {
            self.emit(&t, true);
        }
        match admit {
            Admit::Yes => Ok(false),
            Admit::Probe => Ok(true),
            Admit::No { until } => {
                self.lock().in_flight -= 1;
                Err(Unavailable::CircuitOpen { until })
            }
        }
    }

    /// A stream reached its commit point: its time to first token counts now; its verdict comes
    /// when it ends ([`Self::success`], [`Self::failure`] or [`Self::abandoned`]), so that a
    /// stream cut after its first token is a failure, not a success and a failure.
    pub fn committed(&self, now: Instant, ttft: Duration) {
        let mut s = self.lock();
        s.ttft.observe(now, ttft);
        s.ewma.observe(now, ttft);
    }

    /// An attempt whose outcome says nothing about the deployment (a caller's own key refused or
    /// rate limited): releases what `admit` reserved, a half-open probe slot included, and
    /// records nothing.
    pub fn neutral(&self, probe: bool) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if probe {
            s.breaker.release_probe();
        }
    }

    /// An attempt completed well.
    pub fn success(&self, now: Instant, ttft: Option<Duration>, total: Option<Duration>) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if let Some(t) = ttft {
            s.ttft.observe(now, t);
            s.ewma.observe(now, t);
        }
        if let Some(t) = total {
            s.total.observe(now, t);
            if ttft.is_none() {
                // A non-streaming answer's first token is its whole answer.
                s.ewma.observe(now, t);
            }
        }
        let t = if s.breaker_on { s.breaker.record(now, true, "") } else { None };
        drop(s);
        if let Some(t) = t {
            self.emit(&t, true);
        }
    }

    /// An attempt failed; the class decides the health effect (DESIGN section 3).
    pub fn failure(&self, now: Instant, f: &Failure, limits_disable_for: Duration, rate_limit_cooldown: Duration) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if let Some(i) = FailureClass::ALL.iter().position(|c| *c == f.class) {
            s.failures[i] += 1;
        }
        s.last_failure = Some((now, f.to_string()));
        let events = self.apply_failure(&mut s, now, f, limits_disable_for, rate_limit_cooldown);
        drop(s);
        for (t, notify) in events {
            self.emit(&t, notify);
        }
    }

    /// The health effect of one failure (an attempt's or a background probe's).
    fn apply_failure(
        &self,
        s: &mut State,
        now: Instant,
        f: &Failure,
        disable_for: Duration,
        rate_limit_cooldown: Duration,
    ) -> Vec<(Transition, bool)> {
        let mut events: Vec<(Transition, bool)> = Vec::new();
        match f.class {
            FailureClass::Auth | FailureClass::DeploymentInvalid => {
                events.extend(self.disable(s, now, disable_for, f).map(|t| (t, false)));
            }
            FailureClass::RateLimited if f.is_quota_exhausted() => {
                events.extend(self.disable(s, now, disable_for, f).map(|t| (t, false)));
            }
            FailureClass::RateLimited => {
                let until = now + f.retry_after.unwrap_or(rate_limit_cooldown);
                if s.cooldown.as_ref().is_none_or(|(u, _)| *u < until) {
                    s.cooldown = Some((until, format!("rate limited: {f}")));
                }
            }
            FailureClass::Connect
            | FailureClass::Timeout
            | FailureClass::Overloaded
            | FailureClass::InvalidResponse
            | FailureClass::StreamBroken => {
                if s.breaker_on {
                    if let Some(t) = s.breaker.record(now, false, &short(f)) {
                        events.push((t, true));
                    }
                }
            }
            FailureClass::ContextWindow | FailureClass::ContentFiltered | FailureClass::InvalidRequest => {}
        }
        events
    }

    /// A background health probe's verdict. A failure counts like an attempt's. A success only
    /// matters to a half-open breaker, where it is the probe that closes it: while closed it
    /// would reset the streak of real failures, and while open it would cut short the rest the
    /// open period gives a struggling provider.
    pub fn probe_result(
        &self,
        now: Instant,
        outcome: ProbeOutcome<'_>,
        disable_for: Duration,
        rate_limit_cooldown: Duration,
    ) {
        let mut s = self.lock();
        let events = match outcome {
            ProbeOutcome::Healthy => {
                s.probes.ok += 1;
                s.probes.last = Some((now, true, String::new()));
                let half_open = matches!(s.breaker.state(now), super::breaker::State::HalfOpen { .. });
                let t = if s.breaker_on && half_open { s.breaker.record(now, true, "") } else { None };
                t.map(|t| (t, true)).into_iter().collect()
            }
            ProbeOutcome::Failed(f) => {
                s.probes.failed += 1;
                s.probes.last = Some((now, false, short(f)));
                self.apply_failure(&mut s, now, f, disable_for, rate_limit_cooldown)
            }
            ProbeOutcome::Inconclusive(f) => {
                s.probes.inconclusive += 1;
                s.probes.last = Some((now, false, format!("inconclusive: {}", short(f))));
                Vec::new()
            }
        };
        drop(s);
        for (t, notify) in events {
            self.emit(&t, notify);
        }
    }

    /// The attempt was abandoned (a hedge lost, the caller left): no verdict on health, except
    /// that an abandoned half-open probe counts as a failed one (see `Breaker::probe_abandoned`).
    pub fn abandoned(&self) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        let t = if s.breaker_on { s.breaker.probe_abandoned(Instant::now(), "slower than the hedge") } else { None };
        drop(s);
        if let Some(t) = t {
            self.emit(&t, true);
        }
    }

    fn disable(&self, s: &mut State, now: Instant, for_: Duration, f: &Failure) -> Option<Transition> {
        let reason = format!("disabled for {}: {}", humantime::format_duration(for_), short(f));
        // The breaker carries the long cooldown, and its half-open probe afterwards.
        let t = s.breaker.force_open(now, now + for_, &reason);
        if t.is_some() {
            s.disabled_until = Some(now + for_);
            let _ = self.events.send(HealthEvent { deployment: self.id.clone(), kind: EventKind::Disabled, reason });
            metrics::counter!(crate::report::metrics::DISABLED, "deployment" => self.id.clone()).increment(1);
        }
        t
    }

    /// Reports a breaker transition; `notify` also tells alert subscribers.
    fn emit(&self, t: &Transition, notify: bool) {
        metrics::counter!(crate::report::metrics::BREAKER_TRANSITIONS, "deployment" => self.id.clone(), "to" => t.to)
            .increment(1);
        metrics::gauge!(crate::report::metrics::BREAKER_STATE, "deployment" => self.id.clone()).set(gauge_value(t.to));
        tracing::warn!(target: "understudy::health", deployment = %self.id, from = t.from, to = t.to, reason = %t.reason, "breaker");
        let kind = match (t.from, t.to) {
            _ if !notify => None,
            (_, "open") => Some(EventKind::BreakerOpened),
            ("half_open", "closed") | ("open", "closed") => Some(EventKind::Recovered),
            _ => None,
        };
        if let Some(kind) = kind {
            let _ = self.events.send(HealthEvent { deployment: self.id.clone(), kind, reason: t.reason.clone() });
        }
    }

    /// Spends one retry or hedge from this deployment's budget.
    pub fn withdraw(&self, now: Instant) -> bool {
        let mut s = self.lock();
        if !s.budget_on {
            return true;
        }
        let ok = s.budget.withdraw(now);
        if !ok {
            metrics::counter!(crate::report::metrics::BUDGET_EXHAUSTED, "deployment" => self.id.clone()).increment(1);
        }
        ok
    }

    pub fn deposit(&self, now: Instant) {
        self.lock().budget.deposit(now);
    }

    /// The first-token limit for the next attempt.
    pub fn ttft_limit(&self, now: Instant, a: &Adaptive) -> Duration {
        let s = self.lock();
        a.limit(s.ttft.quantile(now, 0.95, a.min_samples.max(1)))
    }

    /// A percentile of recent time to first token (for hedging delays).
    pub fn ttft_quantile(&self, now: Instant, q: f64, min: usize) -> Option<Duration> {
        self.lock().ttft.quantile(now, q, min)
    }

    /// Load-balancing cost: peak-EWMA of time to first token, scaled by requests in flight.
    pub fn cost(&self) -> f64 {
        let s = self.lock();
        s.ewma.get().unwrap_or(0.0) * f64::from(s.in_flight + 1)
    }

    pub fn drain(&self, reason: &str) {
        self.lock().drained = Some(reason.to_string());
        let _ = self.events.send(HealthEvent {
            deployment: self.id.clone(),
            kind: EventKind::Drained,
            reason: reason.into(),
        });
    }

    /// Back into rotation: undrained, cooldown cleared, breaker closed.
    pub fn restore(&self, reason: &str) {
        let now = Instant::now();
        let mut s = self.lock();
        s.drained = None;
        s.cooldown = None;
        s.disabled_until = None;
        let t = s.breaker.reset(now, reason);
        drop(s);
        if let Some(t) = t {
            self.emit(&t, true);
        }
        let _ = self.events.send(HealthEvent {
            deployment: self.id.clone(),
            kind: EventKind::Restored,
            reason: reason.into(),
        });
    }

    pub fn set_fault(&self, fault: Option<InjectedFault>) {
        self.lock().fault = fault;
    }

    pub fn fault(&self) -> Option<InjectedFault> {
        self.lock().fault
    }

    /// Sets the breaker-state gauge to the current state, so that `/metrics` lists every
    /// deployment from the start rather than from its first transition.
    pub fn publish_state(&self, now: Instant) {
        let state = self.lock().breaker.state(now).name();
        metrics::gauge!(crate::report::metrics::BREAKER_STATE, "deployment" => self.id.clone()).set(gauge_value(state));
    }

    /// Everything the admin API shows.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let s = self.lock();
        let secs_until = |t: Instant| t.saturating_duration_since(now).as_secs_f64();
        let bstate = s.breaker.state(now);
        let (deposits, retries) = s.budget.usage(now);
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        Snapshot {
            deployment: self.id.clone(),
            available: !(s.drained.is_some()
                || s.cooldown.as_ref().is_some_and(|(u, _)| now < *u)
                || (s.breaker_on && !s.breaker.available(now))),
            breaker: BreakerSnapshot {
                enabled: s.breaker_on,
                state: bstate.name(),
                reason: s.breaker.reason().to_string(),
                since_secs_ago: now.saturating_duration_since(s.breaker.since()).as_secs_f64(),
                open_for_secs: match bstate {
                    super::breaker::State::Open { until } => Some(secs_until(until)),
                    _ => None,
                },
                trips: s.breaker.trips(),
            },
            cooldown: s
                .cooldown
                .as_ref()
                .filter(|(u, _)| now < *u)
                .map(|(u, r)| Cooldown { reason: r.clone(), for_secs: secs_until(*u) }),
            drained: s.drained.clone(),
            latency_ms: Latency {
                ttft_p50: ms(s.ttft.quantile(now, 0.5, 1)),
                ttft_p95: ms(s.ttft.quantile(now, 0.95, 1)),
                total_p50: ms(s.total.quantile(now, 0.5, 1)),
                total_p95: ms(s.total.quantile(now, 0.95, 1)),
                ttft_ewma: s.ewma.get().map(|v| v * 1e3),
                samples: s.ttft.count(now).max(s.total.count(now)),
            },
            budget: BudgetSnapshot {
                enabled: s.budget_on,
                first_attempts: deposits,
                retries,
                remaining: s.budget.remaining(now).max(0.0),
                refused: s.budget.exhausted,
            },
            in_flight: s.in_flight,
            attempts: s.attempts,
            failures: FailureClass::ALL
                .iter()
                .zip(s.failures.iter())
                .filter(|(_, n)| **n > 0)
                .map(|(c, n)| (c.as_str(), *n))
                .collect(),
            last_failure: s.last_failure.as_ref().map(|(t, m)| LastFailure {
                secs_ago: now.saturating_duration_since(*t).as_secs_f64(),
                message: m.clone(),
            }),
            injected_fault: s.fault,
            probe: (s.probes.ok + s.probes.failed + s.probes.inconclusive > 0).then(|| ProbeSnapshot {
                ok: s.probes.ok,
                failed: s.probes.failed,
                inconclusive: s.probes.inconclusive,
                last_ok: s.probes.last.as_ref().map(|(_, ok, _)| *ok),
                last_secs_ago: s.probes.last.as_ref().map(|(t, _, _)| now.saturating_duration_since(*t).as_secs_f64()),
                last_failure: s.probes.last.as_ref().filter(|(_, ok, _)| !ok).map(|(_, _, m)| m.clone()),
            }),
        }
    }
}

/// `understudy_breaker_state`: 0 closed, 1 half-open, 2 open.
fn gauge_value(state: &str) -> f64 {
    match state {
        "closed" => 0.0,
        "half_open" => 1.0,
        _ => 2.0,
    }
}

fn short(f: &Failure) -> String {
    let mut m = f.to_string();
    if m.len() > 200 {
        let mut cut = 200;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
    }
    m
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub deployment: String,
    pub available: bool,
    pub breaker: BreakerSnapshot,
    pub cooldown: Option<Cooldown>,
    pub drained: Option<String>,
    pub latency_ms: Latency,
    pub budget: BudgetSnapshot,
    pub in_flight: u32,
    pub attempts: u64,
    pub failures: std::collections::BTreeMap<&'static str, u64>,
    pub last_failure: Option<LastFailure>,
    pub injected_fault: Option<InjectedFault>,
    /// Background probe results, when the deployment is probed.
    pub probe: Option<ProbeSnapshot>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeSnapshot {
    pub ok: u64,
    pub failed: u64,
    pub inconclusive: u64,
    pub last_ok: Option<bool>,
    pub last_secs_ago: Option<f64>,
    pub last_failure: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BreakerSnapshot {
    pub enabled: bool,
    pub state: &'static str,
    pub reason: String,
    pub since_secs_ago: f64,
    /// Seconds until half-open, when open.
    pub open_for_secs: Option<f64>,
    pub trips: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cooldown {
    pub reason: String,
    pub for_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub ttft_p50: Option<f64>,
    pub ttft_p95: Option<f64>,
    pub total_p50: Option<f64>,
    pub total_p95: Option<f64>,
    pub ttft_ewma: Option<f64>,
    pub samples: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BudgetSnapshot {
    pub enabled: bool,
    pub first_attempts: u64,
    pub retries: u64,
    pub remaining: f64,
    pub refused: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastFailure {
    pub secs_ago: f64,
    pub message: String,
}

/// Health of every deployment, by id, surviving reloads.
pub struct HealthRegistry {
    map: Mutex<HashMap<String, Arc<DeploymentHealth>>>,
    events: broadcast::Sender<HealthEvent>,
    /// Routes currently answering from a fallback.
    fallback_routes: Mutex<HashMap<String, bool>>,
}

impl Default for HealthRegistry {
    fn default() -> Self {
        let (events, _) = broadcast::channel(1024);
        HealthRegistry { map: Mutex::default(), events, fallback_routes: Mutex::default() }
    }
}

impl HealthRegistry {
    /// The health of `id`, created on first use; its settings follow the latest configuration.
    pub fn get(&self, id: &str, breaker: Option<BreakerConfig>, budget: Option<BudgetConfig>) -> Arc<DeploymentHealth> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = map.get(id) {
            h.configure(breaker, budget);
            return h.clone();
        }
        let h = Arc::new(DeploymentHealth::new(id, breaker, budget, self.events.clone()));
        map.insert(id.to_string(), h.clone());
        h
    }

    pub fn find(&self, id: &str) -> Option<Arc<DeploymentHealth>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<DeploymentHealth>> {
        let mut v: Vec<_> = self.map.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Health events (breaker opened, disabled, recovered...), for alerts.
    pub fn subscribe(&self) -> broadcast::Receiver<HealthEvent> {
        self.events.subscribe()
    }

    /// Routes whose latest answer came from a fallback.
    pub fn fallback_routes(&self) -> Vec<String> {
        let map = self.fallback_routes.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<String> = map.iter().filter(|(_, on)| **on).map(|(r, _)| r.clone()).collect();
        v.sort();
        v
    }

    /// Notes whether a route's answer came from a fallback; reports the changes.
    pub fn route_served(&self, route: &str, from_fallback: bool) {
        let mut map = self.fallback_routes.lock().unwrap_or_else(|p| p.into_inner());
        let was = map.get(route).copied().unwrap_or(false);
        if was == from_fallback {
            return;
        }
        map.insert(route.to_string(), from_fallback);
        drop(map);
        let (kind, reason) = if from_fallback {
            (EventKind::FallbackStarted, "answers now come from a fallback")
        } else {
            (EventKind::FallbackEnded, "the first choice answers again")
        };
        tracing::warn!(target: "understudy::health", route, event = ?kind, "{reason}");
        let _ = self.events.send(HealthEvent { deployment: route.to_string(), kind, reason: reason.to_string() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);
    const COOL: Duration = Duration::from_secs(5);

    fn setup() -> (HealthRegistry, Arc<DeploymentHealth>) {
        let reg = HealthRegistry::default();
        let h = reg.get("p/m", Some(BreakerConfig::default()), None);
        (reg, h)
    }

    fn down() -> Failure {
        Failure::new(FailureClass::Overloaded, "503").status(503)
    }

    #[tokio::test(start_paused = true)]
    async fn a_callers_key_is_kept_out_by_provider_failures_but_not_by_the_gateway_keys_troubles() {
        let (_reg, h) = setup();
        let now = Instant::now();
        // The gateway's key is revoked: out of rotation for it, not for a caller's own key.
        h.admit(now).unwrap();
        h.failure(now, &Failure::new(FailureClass::Auth, "revoked"), LONG, COOL);
        assert!(h.admit(now).is_err());
        assert_eq!(h.admit_caller_key(now), Ok(false));
        h.success(now, None, Some(Duration::from_millis(5)));
        assert_eq!(h.snapshot(now).breaker.state, "open", "a caller's success does not vouch for the gateway's key");

        // A 429 cooldown is the gateway key's too.
        let (_reg, h) = setup();
        h.admit(now).unwrap();
        h.failure(now, &Failure::new(FailureClass::RateLimited, "429"), LONG, COOL);
        assert!(matches!(h.admit(now), Err(Unavailable::CoolingDown { .. })));
        assert_eq!(h.admit_caller_key(now), Ok(false));
        h.neutral(false);

        // A breaker opened by the provider's failures, or a drain, keeps everyone out.
        let (_reg, h) = setup();
        for _ in 0..5 {
            h.admit(now).unwrap();
            h.failure(now, &down(), LONG, COOL);
        }
        assert!(matches!(h.admit_caller_key(now), Err(Unavailable::CircuitOpen { .. })));
        let (_reg, h) = setup();
        h.drain("maintenance");
        assert_eq!(h.admit_caller_key(now), Err(Unavailable::Drained));
    }

    #[tokio::test(start_paused = true)]
    async fn a_neutral_probe_frees_its_half_open_slot() {
        let (_reg, h) = setup();
        for _ in 0..5 {
            h.admit(Instant::now()).unwrap();
            h.failure(Instant::now(), &down(), LONG, COOL);
        }
        tokio::time::advance(BreakerConfig::default().open_for).await;
        assert_eq!(h.admit_caller_key(Instant::now()), Ok(true), "the half-open probe");
        assert!(h.admit(Instant::now()).is_err(), "the only probe slot is taken");
        h.neutral(true);
        assert_eq!(h.admit(Instant::now()), Ok(true), "freed for the next request");
        assert_eq!(h.snapshot(Instant::now()).breaker.state, "half_open");
    }

    #[tokio::test(start_paused = true)]
    async fn probe_failures_alone_open_the_breaker_and_a_half_open_probe_closes_it() {
        let (reg, h) = setup();
        let mut events = reg.subscribe();
        let f = down();
        let auth = Failure::new(FailureClass::Auth, "listing refused");
        h.probe_result(Instant::now(), ProbeOutcome::Inconclusive(&auth), LONG, COOL);
        for _ in 0..5 {
            h.probe_result(Instant::now(), ProbeOutcome::Failed(&f), LONG, COOL);
        }
        let s = h.snapshot(Instant::now());
        assert_eq!(s.breaker.state, "open");
        assert_eq!(s.attempts, 0);
        let p = s.probe.unwrap();
        assert_eq!((p.ok, p.failed, p.inconclusive, p.last_ok), (0, 5, 1, Some(false)));
        assert_eq!(events.try_recv().unwrap().kind, EventKind::BreakerOpened);

        // While open, a success does not cut the open period short.
        h.probe_result(Instant::now(), ProbeOutcome::Healthy, LONG, COOL);
        assert_eq!(h.snapshot(Instant::now()).breaker.state, "open");

        tokio::time::advance(BreakerConfig::default().open_for).await;
        h.probe_result(Instant::now(), ProbeOutcome::Healthy, LONG, COOL);
        let s = h.snapshot(Instant::now());
        assert_eq!(s.breaker.state, "closed");
        assert_eq!(s.breaker.reason, "probe succeeded");
        let e = events.try_recv().unwrap();
        assert_eq!((e.kind, e.deployment.as_str()), (EventKind::Recovered, "p/m"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_success_does_not_hide_a_streak_of_real_failures() {
        let (_reg, h) = setup();
        for _ in 0..4 {
            h.admit(Instant::now()).unwrap();
            h.failure(Instant::now(), &down(), LONG, COOL);
        }
        h.probe_result(Instant::now(), ProbeOutcome::Healthy, LONG, COOL);
        h.admit(Instant::now()).unwrap();
        h.failure(Instant::now(), &down(), LONG, COOL);
        assert_eq!(h.snapshot(Instant::now()).breaker.state, "open");
    }

    #[tokio::test(start_paused = true)]
    async fn a_completion_probe_refused_for_auth_disables() {
        let (_reg, h) = setup();
        let f = Failure::new(FailureClass::Auth, "key revoked").status(401);
        h.probe_result(Instant::now(), ProbeOutcome::Failed(&f), LONG, COOL);
        let s = h.snapshot(Instant::now());
        assert!(!s.available);
        assert!(s.breaker.reason.starts_with("disabled for 1h"), "{}", s.breaker.reason);
    }

    #[tokio::test(start_paused = true)]
    async fn fallback_routes_are_listed() {
        let reg = HealthRegistry::default();
        reg.route_served("a", true);
        reg.route_served("b", false);
        reg.route_served("c", true);
        assert_eq!(reg.fallback_routes(), vec!["a".to_string(), "c".to_string()]);
        reg.route_served("a", false);
        assert_eq!(reg.fallback_routes(), vec!["c".to_string()]);
    }
}
