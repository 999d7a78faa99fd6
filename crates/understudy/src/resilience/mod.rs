//! Resilience mechanics, each a small deterministic state machine driven by `tokio::time`:
//! backoff, circuit breaker, retry budget, latency estimates; [`health`] keeps one set per
//! deployment.

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod health;
pub mod latency;
pub mod probe;
pub mod window;
