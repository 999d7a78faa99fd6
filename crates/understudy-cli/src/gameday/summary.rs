//! From a run's samples and the mock's counters to the numbers the report shows.

use std::collections::BTreeMap;

use serde::Serialize;

use super::run::{Run, Upstream};
use super::scenarios::{Mode, Scenario, PRIMARY};
use super::traffic::Sample;

/// What callers saw over one stretch of a run (requests grouped by when they were sent).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PhaseStats {
    pub requests: usize,
    pub ok: usize,
    /// Percent of requests that got a complete answer.
    pub success_rate: f64,
    /// Latency of every request, failed ones included (callers waited for those too).
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Complete answers by the deployment that served them.
    pub served: BTreeMap<String, usize>,
}

impl PhaseStats {
    pub fn of<'a>(samples: impl Iterator<Item = &'a Sample>) -> PhaseStats {
        let samples: Vec<&Sample> = samples.collect();
        let mut latencies: Vec<f64> = samples.iter().map(|s| s.latency_ms).collect();
        latencies.sort_by(f64::total_cmp);
        let ok = samples.iter().filter(|s| s.ok).count();
        let mut served = BTreeMap::new();
        for s in samples.iter().filter(|s| s.ok) {
            *served.entry(s.served_by.clone().unwrap_or_else(|| "-".into())).or_insert(0) += 1;
        }
        PhaseStats {
            requests: samples.len(),
            ok,
            success_rate: if samples.is_empty() { 100.0 } else { ok as f64 * 100.0 / samples.len() as f64 },
            p50_ms: percentile(&latencies, 0.50),
            p95_ms: percentile(&latencies, 0.95),
            p99_ms: percentile(&latencies, 0.99),
            served,
        }
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied().unwrap_or(0.0)
}

/// Everything the report says about one run.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub scenario: Scenario,
    pub mode: Mode,
    pub incident_at: f64,
    pub recovery_at: f64,
    pub end_at: f64,
    pub whole: PhaseStats,
    pub baseline: PhaseStats,
    pub incident: PhaseStats,
    pub recovery: PhaseStats,
    /// Upstream requests (every provider, as the mock counted them) per client request.
    pub amplification: f64,
    /// The same, before the incident (1 on a machine that keeps up with the scaled timeouts).
    pub baseline_amplification: f64,
    /// The same, during the incident only.
    pub incident_amplification: f64,
    /// Requests the sick primary received during the incident.
    pub primary_attempts_incident: u64,
    /// From the incident's start to the first complete answer served by another deployment.
    pub failover_after_s: Option<f64>,
    /// From the incident's start to the first request that skipped the primary without calling
    /// it (breaker open, disabled, cooling down).
    pub out_of_rotation_after_s: Option<f64>,
    /// From the recovery to the first complete answer served by the primary again.
    pub back_on_primary_after_s: Option<f64>,
    /// Share of the answers in the last quarter of the recovery served by the primary.
    pub primary_share_end: f64,
    pub upstream: Upstream,
}

impl Summary {
    pub fn of(run: &Run) -> Summary {
        let s = &run.samples;
        let (inc, rec) = (run.incident_at, run.recovery_at);
        let incident_requests = s.iter().filter(|x| x.start >= inc && x.start < rec).count();
        let baseline_requests = s.iter().filter(|x| x.start < inc).count();
        let first_end = |f: &dyn Fn(&Sample) -> bool, from: f64| {
            s.iter().filter(|x| x.start >= from && f(x)).map(|x| x.end() - from).min_by(f64::total_cmp)
        };
        let last_quarter = rec + (run.until - rec) * 0.75;
        let end: Vec<&Sample> = s.iter().filter(|x| x.start >= last_quarter && x.ok).collect();
        Summary {
            scenario: run.scenario,
            mode: run.mode,
            incident_at: inc,
            recovery_at: rec,
            end_at: run.end_at,
            whole: PhaseStats::of(s.iter()),
            baseline: PhaseStats::of(s.iter().filter(|x| x.start < inc)),
            incident: PhaseStats::of(s.iter().filter(|x| x.start >= inc && x.start < rec)),
            recovery: PhaseStats::of(s.iter().filter(|x| x.start >= rec)),
            amplification: ratio(run.upstream.total, s.len()),
            baseline_amplification: ratio(run.upstream.baseline_total, baseline_requests),
            incident_amplification: ratio(run.upstream.incident_total, incident_requests),
            primary_attempts_incident: run.upstream.incident_primary,
            failover_after_s: first_end(&|x| x.ok && x.served_by.as_deref() != Some(PRIMARY), inc),
            out_of_rotation_after_s: s
                .iter()
                .filter(|x| x.start >= inc && x.start < rec && x.primary_skipped)
                .map(|x| x.start - inc)
                .min_by(f64::total_cmp),
            back_on_primary_after_s: first_end(&|x| x.served_by_primary(), rec),
            primary_share_end: if end.is_empty() {
                0.0
            } else {
                end.iter().filter(|x| x.served_by_primary()).count() as f64 / end.len() as f64
            },
            upstream: run.upstream.clone(),
        }
    }
}

fn ratio(upstream: u64, requests: usize) -> f64 {
    if requests == 0 {
        0.0
    } else {
        upstream as f64 / requests as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gameday::scenarios::FALLBACK;

    fn sample(start: f64, latency_ms: f64, ok: bool, by: &str) -> Sample {
        Sample { start, latency_ms, ok, stream: false, served_by: Some(by.into()), primary_skipped: false }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.5), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn phases_markers_and_amplification() {
        let samples = vec![
            sample(0.5, 100.0, true, PRIMARY),
            sample(1.2, 300.0, true, FALLBACK),
            sample(1.4, 100.0, false, FALLBACK),
            sample(2.1, 200.0, true, FALLBACK),
            sample(2.2, 100.0, true, PRIMARY),
            sample(3.9, 100.0, true, PRIMARY),
        ];
        let run = Run {
            scenario: Scenario::HardDown,
            mode: Mode::Protected,
            incident_at: 1.0,
            recovery_at: 2.0,
            until: 4.0,
            end_at: 4.0,
            samples,
            upstream: Upstream {
                total: 9,
                baseline_total: 1,
                incident_total: 3,
                incident_primary: 1,
                ..Upstream::default()
            },
        };
        let s = Summary::of(&run);
        assert_eq!((s.baseline.requests, s.incident.requests, s.recovery.requests), (1, 2, 3));
        assert_eq!(s.incident.success_rate, 50.0);
        assert_eq!(s.amplification, 1.5);
        assert_eq!(s.incident_amplification, 1.5);
        assert_eq!(s.baseline_amplification, 1.0);
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        assert!(close(s.failover_after_s, 0.5), "{:?}", s.failover_after_s);
        assert!(close(s.back_on_primary_after_s, 0.3), "{:?}", s.back_on_primary_after_s);
        assert_eq!(s.out_of_rotation_after_s, None);
        assert_eq!(s.primary_share_end, 1.0);
    }
}
