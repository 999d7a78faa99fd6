//! Where cached answers live: in process by default, in Redis when several replicas share one.
//! Values are opaque bytes (the serialised cached answer); keys are already hashed.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

/// One cached entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub value: Bytes,
    /// How long ago it was written.
    pub age: Duration,
}

/// A key-value store for cached answers. Implementations never block the async runtime and
/// never fail a request: an unreachable backend answers `None` / drops the write, and reports
/// itself through metrics and logs.
pub trait CacheStore: Send + Sync {
    /// The entry, if present and younger than `max_age` (fresh TTL plus any allowed staleness).
    fn get<'a>(&'a self, key: &'a str, max_age: Duration) -> BoxFuture<'a, Option<Stored>>;
    /// Writes an entry that may be read for up to `keep` (fresh TTL plus allowed staleness).
    fn put<'a>(&'a self, key: &'a str, value: Bytes, keep: Duration) -> BoxFuture<'a, ()>;
    /// A short name for reports (`memory`, `redis`).
    fn kind(&self) -> &'static str;
}
