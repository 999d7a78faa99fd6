//! Resilience mechanics: backoff (and, as they arrive, breakers, budgets, latency estimates).

pub mod backoff;
