//! Latency estimates per deployment: a peak-EWMA of time to first token for load balancing
//! (reacts at once to a slow-down, forgets it gradually), and recent percentiles of time to first
//! token and total time for adaptive limits and hedging delays.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Peak-sensitive moving average, as linkerd's and Finagle's load balancers use.
#[derive(Debug, Clone)]
pub struct PeakEwma {
    value: f64,
    at: Option<Instant>,
    tau: Duration,
}

impl PeakEwma {
    pub fn new(tau: Duration) -> Self {
        PeakEwma { value: 0.0, at: None, tau }
    }

    pub fn observe(&mut self, now: Instant, sample: Duration) {
        let s = sample.as_secs_f64();
        match self.at {
            None => self.value = s,
            Some(last) if s > self.value => {
                let _ = last;
                self.value = s;
            }
            Some(last) => {
                let w = (-now.saturating_duration_since(last).as_secs_f64() / self.tau.as_secs_f64()).exp();
                self.value = self.value * w + s * (1.0 - w);
            }
        }
        self.at = Some(now);
    }

    /// The estimate in seconds; `None` before any sample.
    pub fn get(&self) -> Option<f64> {
        self.at.map(|_| self.value)
    }
}

/// The most recent samples (bounded by count and age), for percentiles.
#[derive(Debug, Clone)]
pub struct Recent {
    samples: VecDeque<(Instant, Duration)>,
    cap: usize,
    max_age: Duration,
}

impl Recent {
    pub fn new(cap: usize, max_age: Duration) -> Self {
        Recent { samples: VecDeque::with_capacity(cap), cap, max_age }
    }

    pub fn observe(&mut self, now: Instant, d: Duration) {
        if self.samples.len() == self.cap {
            self.samples.pop_front();
        }
        self.samples.push_back((now, d));
    }

    fn fresh(&self, now: Instant) -> Vec<Duration> {
        self.samples
            .iter()
            .filter(|(t, _)| now.saturating_duration_since(*t) <= self.max_age)
            .map(|(_, d)| *d)
            .collect()
    }

    pub fn count(&self, now: Instant) -> usize {
        self.samples.iter().filter(|(t, _)| now.saturating_duration_since(*t) <= self.max_age).count()
    }

    /// The `q` quantile (0..=1) of fresh samples, with at least `min` of them.
    pub fn quantile(&self, now: Instant, q: f64, min: usize) -> Option<Duration> {
        let mut v = self.fresh(now);
        if v.is_empty() || v.len() < min {
            return None;
        }
        let k = ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        let (_, nth, _) = v.select_nth_unstable(k);
        Some(*nth)
    }
}

/// clamp(multiplier x p95, floor, ceiling), or `initial` until `min_samples` have been seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptive {
    pub multiplier: f64,
    pub floor: Duration,
    pub ceiling: Duration,
    pub min_samples: usize,
    pub initial: Duration,
}

impl Adaptive {
    pub fn limit(&self, p95: Option<Duration>) -> Duration {
        match p95 {
            Some(p) => p.mul_f64(self.multiplier).clamp(self.floor, self.ceiling.max(self.floor)),
            None => self.initial,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn peak_ewma_jumps_up_and_decays_down() {
        let mut e = PeakEwma::new(Duration::from_secs(10));
        e.observe(Instant::now(), Duration::from_millis(100));
        e.observe(Instant::now(), Duration::from_secs(2));
        assert_eq!(e.get(), Some(2.0), "a slow sample is taken at once");
        tokio::time::advance(Duration::from_secs(10)).await;
        e.observe(Instant::now(), Duration::from_millis(100));
        let v = e.get().unwrap();
        assert!(v < 2.0 && v > 0.1, "{v}: forgets gradually");
        for _ in 0..20 {
            tokio::time::advance(Duration::from_secs(10)).await;
            e.observe(Instant::now(), Duration::from_millis(100));
        }
        assert!((e.get().unwrap() - 0.1).abs() < 0.01);
    }

    #[tokio::test(start_paused = true)]
    async fn quantiles_of_recent_samples() {
        let mut r = Recent::new(100, Duration::from_secs(60));
        for i in 1..=100 {
            r.observe(Instant::now(), Duration::from_millis(i * 10));
        }
        assert_eq!(r.quantile(Instant::now(), 0.95, 20), Some(Duration::from_millis(950)));
        assert_eq!(r.quantile(Instant::now(), 0.5, 200), None, "not enough samples");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(r.quantile(Instant::now(), 0.5, 1), None, "stale samples are ignored");
    }

    #[test]
    fn adaptive_limit_is_clamped() {
        let a = Adaptive {
            multiplier: 3.0,
            floor: Duration::from_millis(500),
            ceiling: Duration::from_secs(10),
            min_samples: 20,
            initial: Duration::from_secs(5),
        };
        assert_eq!(a.limit(None), Duration::from_secs(5));
        assert_eq!(a.limit(Some(Duration::from_millis(100))), Duration::from_millis(500));
        assert_eq!(a.limit(Some(Duration::from_secs(1))), Duration::from_secs(3));
        assert_eq!(a.limit(Some(Duration::from_secs(9))), Duration::from_secs(10));
    }
}
