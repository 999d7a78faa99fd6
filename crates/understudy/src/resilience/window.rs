//! A rolling count of successes and failures over a time window, in ten slots.

use std::time::Duration;

use tokio::time::Instant;

const SLOTS: usize = 10;

#[derive(Debug, Clone)]
pub struct Window {
    slot_len: Duration,
    /// (slot number since `origin`, total, failed)
    slots: [(u64, u64, u64); SLOTS],
    origin: Instant,
}

impl Window {
    pub fn new(len: Duration, now: Instant) -> Window {
        let slot_len = (len / SLOTS as u32).max(Duration::from_millis(1));
        Window { slot_len, slots: [(u64::MAX, 0, 0); SLOTS], origin: now }
    }

    fn slot_no(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.origin).as_nanos() / self.slot_len.as_nanos().max(1)) as u64
    }

    pub fn add(&mut self, now: Instant, ok: bool) {
        let n = self.slot_no(now);
        let s = &mut self.slots[(n % SLOTS as u64) as usize];
        if s.0 != n {
            *s = (n, 0, 0);
        }
        s.1 += 1;
        if !ok {
            s.2 += 1;
        }
    }

    /// (total, failed) within the window ending at `now`.
    pub fn counts(&self, now: Instant) -> (u64, u64) {
        let n = self.slot_no(now);
        self.slots
            .iter()
            .filter(|s| s.0 != u64::MAX && s.0 + SLOTS as u64 > n && s.0 <= n)
            .fold((0, 0), |(t, f), s| (t + s.1, f + s.2))
    }
}
