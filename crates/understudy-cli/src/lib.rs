//! The `understudy` binary's pieces, as a library so integration tests can start them in
//! process: the HTTP server (a thin shell around the engine), `check`, and the demo.

pub mod alerts;
pub mod check;
pub mod demo;
pub mod server;
pub mod telemetry;
