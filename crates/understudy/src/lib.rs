//! understudy: the engine of an LLM gateway that keeps answering when providers fail.
//!
//! The request's path, in the order of the modules that handle it:
//! 1. [`wire`] decodes the caller's dialect into a [`canonical::ChatRequest`];
//! 2. [`route`] resolves the route, [`route::plan`] orders candidates, [`route::attempt`] calls a
//!    provider through its [`provider`] adapter, [`route::decide`] picks retry, fallback or stop;
//! 3. [`stream`] holds the commit point and relays streams;
//! 4. [`report`] names who answered and why (headers, metrics, the log record).
//!
//! There is no HTTP server here: `understudy-cli` wraps this crate.

pub mod canonical;
pub mod config;
pub mod failure;
pub mod provider;
pub mod wire;

pub use failure::{Failure, FailureClass};
