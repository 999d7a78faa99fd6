//! Routing: the request's `model` names a route; the route is a fallback chain of deployments.
//!
//! * [`table`]: configuration -> routes and deployments
//! * [`plan`]: the order of candidates for one request
//! * [`attempt`]: one call to one deployment, up to the commit point
//! * [`decide`]: after a failure, retry, fail over or stop
//! * [`fallback`]: the loop that ties them together under one deadline
//! * [`embed`]: the same loop for embeddings requests
//! * [`byok`]: callers' own provider keys, and which credential each attempt uses

pub mod attempt;
pub mod byok;
pub mod context;
pub mod decide;
pub mod embed;
pub mod fallback;
pub mod plan;
pub mod table;

pub use table::{Deployment, Limits, Route, RouteTable};
