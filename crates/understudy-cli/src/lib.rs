//! The `understudy` binary's pieces, as a library so integration tests can start them in
//! process: the HTTP server (a thin shell around the engine), `check`, the demo and the game day.

pub mod alerts;
pub mod check;
pub mod demo;
pub mod gameday;
pub mod server;
pub mod telemetry;
