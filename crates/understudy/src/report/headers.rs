//! Response headers that name who answered and why earlier attempts failed.

use super::Trace;

pub const SERVED_BY: &str = "x-understudy-served-by";
pub const ATTEMPTS: &str = "x-understudy-attempts";
pub const FALLBACK_REASONS: &str = "x-understudy-fallback-reasons";
pub const ROUTE: &str = "x-understudy-route";
pub const REQUEST_ID: &str = "x-request-id";
pub const HEDGES: &str = "x-understudy-hedges";
pub const TRUNCATED: &str = "x-understudy-truncated";

/// `(name, value)` pairs for a trace. Values are ASCII: deployment ids come from the
/// configuration and classes are fixed names.
pub fn for_trace(trace: &Trace) -> Vec<(&'static str, String)> {
    let mut h = vec![(ROUTE, trace.route.clone()), (ATTEMPTS, trace.attempts.len().to_string())];
    if let (Some(dep), Some(_)) = (&trace.served_by, &trace.served_model) {
        h.push((SERVED_BY, dep.clone()));
    }
    let reasons = trace.reasons();
    if !reasons.is_empty() {
        h.push((FALLBACK_REASONS, reasons.join(", ")));
    }
    if !trace.truncated.is_empty() {
        h.push((TRUNCATED, trace.truncated.join(", ")));
    }
    if trace.hedges > 0 {
        h.push((HEDGES, trace.hedges.to_string()));
    }
    h
}
