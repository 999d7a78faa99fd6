//! understudy: the engine of an LLM gateway that keeps answering when providers fail.
//!
//! The request's path, in the order of the modules that handle it:
//! 1. [`wire`] decodes the caller's dialect into a [`canonical::ChatRequest`];
//! 2. [`route`] resolves the route ([`route::table`]), orders candidates ([`route::plan`]), calls
//!    a provider through its [`provider`] adapter ([`route::attempt`]), and picks retry, fallback
//!    or stop after a failure ([`route::decide`], [`route::fallback`]);
//! 3. [`validate`] turns bad "successful" answers into failures;
//! 4. [`stream`] reads committed streams and relays them in the caller's dialect;
//! 5. [`report`] names who answered and why (headers, metrics, the log record).
//!
//! [`Gateway`] ties them together. There is no HTTP server here: `understudy-cli` wraps this crate.

pub mod canonical;
pub mod config;
pub mod degrade;
pub mod failure;
pub mod gateway;
pub mod models;
pub mod provider;
pub mod report;
pub mod resilience;
pub mod route;
pub mod stream;
pub mod tokens;
pub mod validate;
pub mod wire;

pub use failure::{Failure, FailureClass};
pub use gateway::{CallOptions, Gateway, GatewayError, Handled, HandledEmbeddings, Reply};
