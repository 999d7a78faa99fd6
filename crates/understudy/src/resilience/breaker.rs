//! A circuit breaker per deployment: closed, open, half-open.
//!
//! Trips on `consecutive_failures` in a row, or on a failure rate over a rolling window once the
//! window holds `min_requests`. While open, callers skip the deployment at no cost. When the open
//! time has passed, half-open lets at most `half_open_probes` requests through; a success closes
//! the breaker, a failure re-opens it for twice as long (capped). The caller passes `now` in, so
//! the machine is deterministic and tests run on a paused clock.

use std::time::Duration;

use tokio::time::Instant;

use super::window::Window;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    pub consecutive_failures: u32,
    pub failure_rate: f64,
    pub window: Duration,
    pub min_requests: u32,
    pub open_for: Duration,
    pub max_open_for: Duration,
    pub half_open_probes: u32,
}

impl BreakerConfig {
    pub const DEFAULT: BreakerConfig = BreakerConfig {
        consecutive_failures: 5,
        failure_rate: 0.5,
        window: Duration::from_secs(30),
        min_requests: 20,
        open_for: Duration::from_secs(5),
        max_open_for: Duration::from_secs(120),
        half_open_probes: 1,
    };
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig::DEFAULT
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: u32, last_probe: Option<Instant> },
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open { .. } => "open",
            State::HalfOpen { .. } => "half_open",
        }
    }
}

/// What the breaker says about sending one more request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Half-open: this request is a probe; its outcome decides the state.
    Probe,
    No {
        until: Instant,
    },
}

/// A state change worth reporting.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: &'static str,
    pub to: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    cfg: BreakerConfig,
    state: State,
    consecutive: u32,
    window: Window,
    /// Consecutive trips without a successful probe: each doubles the open time.
    trips: u32,
    reason: String,
    since: Instant,
}

/// A probe that has not reported within this long is presumed lost (its caller went away),
/// so another may go.
const PROBE_TTL: Duration = Duration::from_secs(60);

impl Breaker {
    pub fn new(cfg: BreakerConfig, now: Instant) -> Breaker {
        Breaker {
            cfg,
            state: State::Closed,
            consecutive: 0,
            window: Window::new(cfg.window, now),
            trips: 0,
            reason: String::new(),
            since: now,
        }
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.cfg
    }

    pub fn set_config(&mut self, cfg: BreakerConfig, now: Instant) {
        if cfg.window != self.cfg.window {
            self.window = Window::new(cfg.window, now);
        }
        self.cfg = cfg;
    }

    /// The state as of `now` (an elapsed open period reads as half-open).
    pub fn state(&self, now: Instant) -> State {
        match self.state {
            State::Open { until } if now >= until => State::HalfOpen { in_flight: 0, last_probe: None },
            s => s,
        }
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub fn since(&self) -> Instant {
        self.since
    }

    pub fn trips(&self) -> u32 {
        self.trips
    }

    /// Would a request be let through now? Does not reserve a probe slot.
    pub fn available(&self, now: Instant) -> bool {
        match self.state(now) {
            State::Closed => true,
            State::Open { .. } => false,
            State::HalfOpen { in_flight, last_probe } => {
                in_flight < self.cfg.half_open_probes || last_probe.is_some_and(|t| now >= t + PROBE_TTL)
            }
        }
    }

    /// Asks to send one request; half-open reserves a probe slot.
    pub fn admit(&mut self, now: Instant) -> (Admit, Option<Transition>) {
        let mut transition = None;
        if let State::Open { until } = self.state {
            if now >= until {
                transition =
                    Some(self.go(State::HalfOpen { in_flight: 0, last_probe: None }, now, "open time elapsed"));
            }
        }
        let admit = match &mut self.state {
            State::Closed => Admit::Yes,
            State::Open { until } => Admit::No { until: *until },
            State::HalfOpen { in_flight, last_probe } => {
                if last_probe.is_some_and(|t| now >= t + PROBE_TTL) {
                    *in_flight = 0;
                }
                if *in_flight < self.cfg.half_open_probes {
                    *in_flight += 1;
                    *last_probe = Some(now);
                    Admit::Probe
                } else {
                    Admit::No { until: now + Duration::from_millis(100) }
                }
            }
        };
        (admit, transition)
    }

    /// Records an outcome that counts for health (successes and breaker failures).
    pub fn record(&mut self, now: Instant, ok: bool, reason: &str) -> Option<Transition> {
        self.window.add(now, ok);
        if ok {
            self.consecutive = 0;
        } else {
            self.consecutive += 1;
        }
        match self.state(now) {
            State::Closed => {
                if ok {
                    return None;
                }
                let (total, failed) = self.window.counts(now);
                let rate_trip =
                    total >= u64::from(self.cfg.min_requests) && failed as f64 >= self.cfg.failure_rate * total as f64;
                if self.consecutive >= self.cfg.consecutive_failures {
                    let why = format!("{} consecutive failures, last: {reason}", self.consecutive);
                    Some(self.trip(now, why))
                } else if rate_trip {
                    let why = format!("{failed} of {total} requests failed in {:?}, last: {reason}", self.cfg.window);
                    Some(self.trip(now, why))
                } else {
                    None
                }
            }
            State::HalfOpen { .. } => {
                if ok {
                    self.trips = 0;
                    self.consecutive = 0;
                    self.window = Window::new(self.cfg.window, now);
                    Some(self.go(State::Closed, now, "probe succeeded"))
                } else {
                    Some(self.trip(now, format!("probe failed: {reason}")))
                }
            }
            // A late result from before the trip changes nothing.
            State::Open { .. } => None,
        }
    }

    /// Opens now, for a time that doubles with each trip since the last close.
    /// A half-open probe was abandoned before it reported (it lost a hedge race): it did not
    /// prove the deployment healthy, so it counts as a failed probe. Without a verdict its slot
    /// would stay taken for `PROBE_TTL`, keeping a recovered deployment out of rotation.
    pub fn probe_abandoned(&mut self, now: Instant, reason: &str) -> Option<Transition> {
        match self.state(now) {
            State::HalfOpen { in_flight, .. } if in_flight > 0 => {
                Some(self.trip(now, format!("probe abandoned: {reason}")))
            }
            _ => None,
        }
    }

    fn trip(&mut self, now: Instant, reason: String) -> Transition {
        self.trips += 1;
        let factor = 1u32.checked_shl(self.trips.saturating_sub(1).min(20)).unwrap_or(u32::MAX);
        let open_for = self.cfg.open_for.saturating_mul(factor).min(self.cfg.max_open_for);
        self.go(State::Open { until: now + open_for }, now, &reason)
    }

    /// A probe whose outcome said nothing about the deployment: frees its slot for the next one.
    pub fn release_probe(&mut self) {
        if let State::HalfOpen { in_flight, .. } = &mut self.state {
            *in_flight = in_flight.saturating_sub(1);
        }
    }

    /// Forces the breaker open until `until` (admin drain, or a long auth cooldown).
    pub fn force_open(&mut self, now: Instant, until: Instant, reason: &str) -> Option<Transition> {
        if matches!(self.state, State::Open { until: u } if u >= until) {
            return None;
        }
        Some(self.go(State::Open { until }, now, reason))
    }

    /// Closes at once (admin restore).
    pub fn reset(&mut self, now: Instant, reason: &str) -> Option<Transition> {
        self.trips = 0;
        self.consecutive = 0;
        self.window = Window::new(self.cfg.window, now);
        (self.state != State::Closed).then(|| self.go(State::Closed, now, reason))
    }

    fn go(&mut self, to: State, now: Instant, reason: &str) -> Transition {
        let from = self.state.name();
        self.state = to;
        self.since = now;
        self.reason = reason.to_string();
        Transition { from, to: to.name(), reason: reason.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 3,
            failure_rate: 0.5,
            window: Duration::from_secs(10),
            min_requests: 10,
            open_for: Duration::from_secs(5),
            max_open_for: Duration::from_secs(40),
            half_open_probes: 1,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn trips_on_consecutive_failures_and_recovers_through_a_probe() {
        let mut b = Breaker::new(cfg(), Instant::now());
        assert_eq!(b.record(Instant::now(), false, "503"), None);
        assert_eq!(b.record(Instant::now(), false, "503"), None);
        let t = b.record(Instant::now(), false, "503").unwrap();
        assert_eq!((t.from, t.to), ("closed", "open"));
        assert!(t.reason.contains("3 consecutive failures"));
        assert!(!b.available(Instant::now()));
        assert!(matches!(b.admit(Instant::now()).0, Admit::No { .. }));

        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(b.state(Instant::now()).name(), "half_open");
        let (a, t) = b.admit(Instant::now());
        assert_eq!(a, Admit::Probe);
        assert_eq!(t.unwrap().to, "half_open");
        // Only a bounded number of probes pass; the rest of the traffic still skips it.
        assert!(matches!(b.admit(Instant::now()).0, Admit::No { .. }));
        assert!(!b.available(Instant::now()));
        let t = b.record(Instant::now(), true, "").unwrap();
        assert_eq!((t.from, t.to), ("half_open", "closed"));
        assert_eq!(b.admit(Instant::now()).0, Admit::Yes);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_for_longer_up_to_the_cap() {
        let mut b = Breaker::new(cfg(), Instant::now());
        for _ in 0..3 {
            b.record(Instant::now(), false, "x");
        }
        let mut expected = Duration::from_secs(5);
        for _ in 0..6 {
            let State::Open { until } = b.state(Instant::now()) else { panic!("open") };
            assert_eq!(until - Instant::now(), expected);
            tokio::time::advance(expected).await;
            assert_eq!(b.admit(Instant::now()).0, Admit::Probe);
            let t = b.record(Instant::now(), false, "still down").unwrap();
            assert_eq!((t.from, t.to), ("half_open", "open"));
            expected = (expected * 2).min(Duration::from_secs(40));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn trips_on_failure_rate_with_minimum_volume() {
        let mut b = Breaker::new(cfg(), Instant::now());
        // Alternating results never reach 3 in a row, but half of them fail.
        for i in 0..9 {
            assert_eq!(b.record(Instant::now(), i % 2 == 0, "x"), None, "below the minimum volume at {i}");
        }
        let t = b.record(Instant::now(), false, "x").unwrap();
        assert!(t.reason.contains("of 10 requests failed"), "{}", t.reason);
    }

    #[tokio::test(start_paused = true)]
    async fn old_failures_leave_the_window() {
        let mut b = Breaker::new(cfg(), Instant::now());
        for i in 0..8 {
            b.record(Instant::now(), i % 2 == 0, "x");
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        for _ in 0..9 {
            assert_eq!(b.record(Instant::now(), true, "x"), None);
        }
        assert_eq!(b.record(Instant::now(), false, "x"), None, "the old failures expired");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_probe_does_not_wedge_half_open() {
        let mut b = Breaker::new(cfg(), Instant::now());
        for _ in 0..3 {
            b.record(Instant::now(), false, "x");
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(b.admit(Instant::now()).0, Admit::Probe);
        tokio::time::advance(PROBE_TTL).await;
        assert_eq!(b.admit(Instant::now()).0, Admit::Probe, "the first probe never reported");
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_reopens_for_longer() {
        let mut b = Breaker::new(cfg(), Instant::now());
        for _ in 0..3 {
            b.record(Instant::now(), false, "x");
        }
        assert_eq!(b.probe_abandoned(Instant::now(), "hedge won"), None, "open: no probe to abandon");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(b.probe_abandoned(Instant::now(), "hedge won"), None, "half-open, but no probe in flight");
        assert_eq!(b.admit(Instant::now()).0, Admit::Probe);
        let t = b.probe_abandoned(Instant::now(), "hedge won").unwrap();
        assert_eq!((t.from, t.to), ("half_open", "open"));
        assert!(t.reason.contains("hedge won"));
        let State::Open { until } = b.state(Instant::now()) else { panic!("open") };
        assert_eq!(until - Instant::now(), Duration::from_secs(10), "a re-trip doubles the open time");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.admit(Instant::now()).0, Admit::Probe, "the next probe goes after the open time, not PROBE_TTL");
        assert_eq!(b.record(Instant::now(), true, "").unwrap().to, "closed");
    }

    #[tokio::test(start_paused = true)]
    async fn force_open_and_reset() {
        let mut b = Breaker::new(cfg(), Instant::now());
        let until = Instant::now() + Duration::from_secs(3600);
        assert_eq!(b.force_open(Instant::now(), until, "account deactivated").unwrap().to, "open");
        assert_eq!(b.reason(), "account deactivated");
        assert!(b.force_open(Instant::now(), until - Duration::from_secs(1), "again").is_none());
        assert_eq!(b.reset(Instant::now(), "restored").unwrap().to, "closed");
        assert!(b.available(Instant::now()));
    }

    proptest! {
        /// Whatever happens, an open breaker never admits, and a closed one always does.
        #[test]
        fn invariants(steps in proptest::collection::vec((0u64..3_000, any::<bool>(), any::<bool>()), 1..200)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
            rt.block_on(async {
                let mut b = Breaker::new(cfg(), Instant::now());
                for (ms, ok, ask) in steps {
                    tokio::time::advance(Duration::from_millis(ms)).await;
                    let now = Instant::now();
                    let before = b.state(now);
                    if ask {
                        let (a, _) = b.admit(now);
                        match before {
                            State::Closed => prop_assert_eq!(a, Admit::Yes),
                            State::Open { .. } => {
                                let refused = matches!(a, Admit::No { .. });
                                prop_assert!(refused);
                            }
                            State::HalfOpen { .. } => prop_assert!(a != Admit::Yes),
                        }
                        if a != Admit::Yes && !matches!(a, Admit::Probe) {
                            continue;
                        }
                    }
                    b.record(now, ok, "p");
                    if let State::Open { until } = b.state(now) {
                        prop_assert!(until - now <= cfg().max_open_for);
                    }
                }
                Ok(())
            })?;
        }
    }
}
