//! Streaming after the commit point: [`LiveStream`] reads the rest of a committed provider
//! stream under the idle and total limits; [`relay`] writes it in the caller's dialect;
//! [`replay`] turns a complete answer into events (servers that ignore `stream: true`).

pub mod accumulate;
pub mod continuation;
mod live;
pub mod relay;
pub mod replay;

pub use live::{LiveItem, LiveStream, StreamEnd, Timing};
