//! One run: one scenario in one mode. Starts a fresh mock and gateway (so no health state leaks
//! between runs), sends steady traffic, and plays baseline, incident and recovery on the primary.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tokio::time::{sleep_until, Instant};
use understudy_mock::{Fault, MockConfig, MockHandle, Stats};

use super::scenarios::{
    config_yaml, real, Mode, Scenario, Timeline, FALLBACK, FALLBACK_MODEL, LAST_RESORT, LAST_RESORT_MODEL, PRIMARY,
    PRIMARY_MODEL,
};
use super::traffic::{self, Sample, Samples, Traffic};

/// What one run observed.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub scenario: Scenario,
    pub mode: Mode,
    /// Seconds since the run started.
    pub incident_at: f64,
    pub recovery_at: f64,
    /// When the clients stopped sending.
    pub until: f64,
    /// When the last request finished.
    pub end_at: f64,
    #[serde(skip)]
    pub samples: Vec<Sample>,
    pub upstream: Upstream,
}

/// What the providers saw, from the mock's counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Upstream {
    /// Requests per base model over the whole run.
    pub by_model: BTreeMap<String, u64>,
    pub total: u64,
    /// Requests before the incident.
    pub baseline_total: u64,
    /// Requests between the incident's start and the recovery.
    pub incident_total: u64,
    pub incident_primary: u64,
}

/// Where progress lines go, and which run of how many this is.
pub struct Progress {
    pub quiet: bool,
    pub index: usize,
    pub of: usize,
}

impl Progress {
    fn line(&self, s: Scenario, m: Mode, t: f64, total: f64, phase: &str, fresh: &[Sample]) {
        if self.quiet {
            return;
        }
        let head = format!(
            "gameday [{:>2}/{}] {:<20} {:<11} {:>5.1}s/{:.1}s  {:<9}",
            self.index, self.of, s, m, t, total, phase
        );
        if fresh.is_empty() {
            eprintln!("{head} (waiting for answers)");
            return;
        }
        let ok = fresh.iter().filter(|x| x.ok).count() as f64 * 100.0 / fresh.len() as f64;
        let by = |dep: &str| fresh.iter().filter(|x| x.ok && x.served_by.as_deref() == Some(dep)).count();
        eprintln!(
            "{head} ok {ok:>5.1}% of {:<4} primary {:<4} fallback {:<4} last resort {}",
            fresh.len(),
            by(PRIMARY),
            by(FALLBACK),
            by(LAST_RESORT)
        );
    }
}

/// Prints a progress line about once a second with the answers that arrived since the last.
struct Ticker<'a> {
    progress: &'a Progress,
    scenario: Scenario,
    mode: Mode,
    samples: Samples,
    shown: usize,
    origin: Instant,
    total: f64,
    last: Instant,
}

const TICK: Duration = Duration::from_secs(1);

impl Ticker<'_> {
    async fn wait_until(&mut self, at: Instant, phase: &str) {
        loop {
            let now = Instant::now();
            if now >= at {
                return;
            }
            sleep_until(at.min(self.last + TICK)).await;
            if Instant::now() >= self.last + TICK {
                self.tick(phase);
            }
        }
    }

    fn tick(&mut self, phase: &str) {
        self.last = Instant::now();
        let fresh = self.samples.since(self.shown);
        self.shown += fresh.len();
        let t = self.origin.elapsed().as_secs_f64();
        self.progress.line(self.scenario, self.mode, t, self.total, phase, &fresh);
    }
}

fn set_fault(mock: &MockHandle, model: &str, spec: &str) -> Result<(), String> {
    let fault = Fault::parse(spec).map_err(|e| format!("bad fault `{spec}`: {e}"))?;
    mock.set_fault(model, fault);
    Ok(())
}

fn local() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Plays `scenario` against a gateway in `mode`.
pub async fn run(
    scenario: Scenario,
    mode: Mode,
    t: &Timeline,
    clients: usize,
    progress: &Progress,
) -> Result<Run, String> {
    // Recording bodies is not needed here and costs the mock time.
    let config = MockConfig { record_capacity: 0, ..MockConfig::default() };
    let mock = understudy_mock::start(local(), config).await.map_err(|e| format!("cannot start the mock: {e}"))?;
    let healthy = t.healthy(real::PRIMARY);
    set_fault(&mock, PRIMARY_MODEL, &healthy)?;
    set_fault(&mock, FALLBACK_MODEL, &t.healthy(real::FALLBACK))?;
    set_fault(&mock, LAST_RESORT_MODEL, &t.healthy(real::LAST_RESORT))?;
    let yaml = config_yaml(&mock.url(), mode, t);
    let loaded = understudy::config::load_str(&yaml, "<gameday>").map_err(|e| e.to_string())?;
    let gw = crate::server::start(&loaded.config, local()).await.map_err(|e| e.to_string())?;

    let origin = Instant::now();
    let until = origin + t.run_len();
    let samples = Samples::default();
    let traffic =
        Traffic { url: gw.url(), clients, origin, until, timeout: t.d(real::DEADLINE) * 2 + Duration::from_secs(5) };
    let workers = traffic::start(&traffic, &samples);
    let mut ticker = Ticker {
        progress,
        scenario,
        mode,
        samples: samples.clone(),
        shown: 0,
        origin,
        total: t.run_len().as_secs_f64(),
        last: origin,
    };

    ticker.wait_until(origin + t.baseline(), "baseline").await;
    set_fault(&mock, PRIMARY_MODEL, &scenario.incident_fault(t))?;
    let incident_at = origin.elapsed().as_secs_f64();
    let at_incident = mock.stats();

    ticker.wait_until(origin + t.baseline() + t.incident(), "incident").await;
    set_fault(&mock, PRIMARY_MODEL, &healthy)?;
    let recovery_at = origin.elapsed().as_secs_f64();
    let at_recovery = mock.stats();

    ticker.wait_until(until, "recovery").await;
    for w in workers {
        let _ = w.await;
    }
    ticker.tick("done");
    let end_at = origin.elapsed().as_secs_f64();
    let at_end = mock.stats();
    gw.shutdown().await;
    mock.shutdown().await;

    Ok(Run {
        scenario,
        mode,
        incident_at,
        recovery_at,
        until: t.run_len().as_secs_f64(),
        end_at,
        samples: samples.take(),
        upstream: upstream(&at_incident, &at_recovery, &at_end),
    })
}

fn upstream(at_incident: &Stats, at_recovery: &Stats, at_end: &Stats) -> Upstream {
    Upstream {
        by_model: at_end.by_model.clone(),
        total: at_end.total,
        baseline_total: at_incident.total,
        incident_total: at_recovery.total.saturating_sub(at_incident.total),
        incident_primary: at_recovery.model(PRIMARY_MODEL).saturating_sub(at_incident.model(PRIMARY_MODEL)),
    }
}
