//! Degradation: what the gateway can still serve when providers cannot — cached answers (fresh,
//! stale, or semantically near), a configured last answer — and the final error otherwise.

pub mod store;
