//! A retry budget, as tower's and Finagle's: retries and hedges together may add at most
//! `ratio` of the traffic, plus a small floor per second so that a quiet deployment can still
//! retry. Every first attempt deposits; every retry or hedge withdraws. When the budget is
//! spent the router fails over instead of retrying, so a failing provider never sees a storm.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Extra load allowed from retries and hedges, as a fraction of first attempts.
    pub ratio: f64,
    /// Retries always allowed per second, regardless of traffic.
    pub min_per_sec: u32,
    /// How long deposits count.
    pub ttl: Duration,
}

impl BudgetConfig {
    pub const DEFAULT: BudgetConfig = BudgetConfig { ratio: 0.2, min_per_sec: 1, ttl: Duration::from_secs(10) };
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig::DEFAULT
    }
}

const SLOTS: usize = 10;

#[derive(Debug, Clone)]
pub struct Budget {
    cfg: BudgetConfig,
    slot_len: Duration,
    origin: Instant,
    /// (slot number, deposits, withdrawals)
    slots: [(u64, u64, u64); SLOTS],
    /// Withdrawals refused since creation, for metrics.
    pub exhausted: u64,
}

impl Budget {
    pub fn new(cfg: BudgetConfig, now: Instant) -> Budget {
        let slot_len = (cfg.ttl / SLOTS as u32).max(Duration::from_millis(1));
        Budget { cfg, slot_len, origin: now, slots: [(u64::MAX, 0, 0); SLOTS], exhausted: 0 }
    }

    fn slot(&mut self, now: Instant) -> &mut (u64, u64, u64) {
        let n = (now.saturating_duration_since(self.origin).as_nanos() / self.slot_len.as_nanos().max(1)) as u64;
        let s = &mut self.slots[(n % SLOTS as u64) as usize];
        if s.0 != n {
            *s = (n, 0, 0);
        }
        s
    }

    fn totals(&self, now: Instant) -> (u64, u64) {
        let n = (now.saturating_duration_since(self.origin).as_nanos() / self.slot_len.as_nanos().max(1)) as u64;
        self.slots
            .iter()
            .filter(|s| s.0 != u64::MAX && s.0 <= n && s.0 + SLOTS as u64 > n)
            .fold((0, 0), |(d, w), s| (d + s.1, w + s.2))
    }

    pub fn deposit(&mut self, now: Instant) {
        self.slot(now).1 += 1;
    }

    /// Spends one retry or hedge if the budget allows it.
    pub fn withdraw(&mut self, now: Instant) -> bool {
        if self.remaining(now) >= 1.0 {
            self.slot(now).2 += 1;
            true
        } else {
            self.exhausted += 1;
            false
        }
    }

    /// Retries still allowed right now.
    pub fn remaining(&self, now: Instant) -> f64 {
        let (deposits, withdrawn) = self.totals(now);
        let floor = f64::from(self.cfg.min_per_sec) * self.cfg.ttl.as_secs_f64();
        deposits as f64 * self.cfg.ratio + floor - withdrawn as f64
    }

    /// (first attempts, retries) within the window, for the admin view.
    pub fn usage(&self, now: Instant) -> (u64, u64) {
        self.totals(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[tokio::test(start_paused = true)]
    async fn retries_are_a_fraction_of_traffic() {
        let cfg = BudgetConfig { ratio: 0.1, min_per_sec: 0, ttl: Duration::from_secs(10) };
        let mut b = Budget::new(cfg, Instant::now());
        for _ in 0..100 {
            b.deposit(Instant::now());
        }
        let granted = (0..50).filter(|_| b.withdraw(Instant::now())).count();
        assert_eq!(granted, 10, "10% of 100 requests");
        assert_eq!(b.exhausted, 40);
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_allows_a_few_retries_without_traffic() {
        let cfg = BudgetConfig { ratio: 0.2, min_per_sec: 1, ttl: Duration::from_secs(10) };
        let mut b = Budget::new(cfg, Instant::now());
        let granted = (0..50).filter(|_| b.withdraw(Instant::now())).count();
        assert_eq!(granted, 10, "1 per second over a 10 s window");
    }

    #[tokio::test(start_paused = true)]
    async fn deposits_expire() {
        let cfg = BudgetConfig { ratio: 1.0, min_per_sec: 0, ttl: Duration::from_secs(10) };
        let mut b = Budget::new(cfg, Instant::now());
        for _ in 0..5 {
            b.deposit(Instant::now());
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!b.withdraw(Instant::now()), "old traffic no longer pays for retries");
    }

    proptest! {
        /// Over any sequence, retries granted within one window never exceed
        /// ratio x deposits + floor.
        #[test]
        fn never_exceeds_the_budget(ops in proptest::collection::vec(any::<bool>(), 1..500), ratio in 0.0f64..1.0) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
            rt.block_on(async {
                let cfg = BudgetConfig { ratio, min_per_sec: 1, ttl: Duration::from_secs(10) };
                let mut b = Budget::new(cfg, Instant::now());
                let (mut deposits, mut granted) = (0u64, 0u64);
                for deposit in ops {
                    if deposit {
                        b.deposit(Instant::now());
                        deposits += 1;
                    } else if b.withdraw(Instant::now()) {
                        granted += 1;
                    }
                }
                prop_assert!(granted as f64 <= deposits as f64 * ratio + 10.0 + 1e-9);
                Ok(())
            })?;
        }
    }
}
