//! Exponential backoff with full jitter: pause = uniform(0, min(max, base * 2^n)).
//! Full jitter spreads retries of many callers evenly instead of synchronising them.

use std::time::Duration;

/// The pause before retry number `n` (0-based). `unit` is a uniform draw in [0, 1).
pub fn full_jitter(base: Duration, max: Duration, n: u32, unit: f64) -> Duration {
    let ceiling = base.saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX)).min(max);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grows_then_caps() {
        let b = Duration::from_millis(100);
        let m = Duration::from_secs(2);
        assert_eq!(full_jitter(b, m, 0, 1.0), b);
        assert_eq!(full_jitter(b, m, 3, 1.0), Duration::from_millis(800));
        assert_eq!(full_jitter(b, m, 10, 1.0), m);
        assert_eq!(full_jitter(b, m, 40, 1.0), m);
        assert_eq!(full_jitter(b, m, 3, 0.0), Duration::ZERO);
    }

    proptest! {
        #[test]
        fn never_exceeds_the_cap(base_ms in 0u64..10_000, max_ms in 0u64..100_000, n in 0u32..100, u in 0.0f64..1.0) {
            let d = full_jitter(Duration::from_millis(base_ms), Duration::from_millis(max_ms), n, u);
            prop_assert!(d <= Duration::from_millis(max_ms));
            prop_assert!(d <= Duration::from_millis(base_ms).saturating_mul(1 << n.min(31)));
        }
    }
}
