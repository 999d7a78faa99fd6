//! Prometheus metrics, through the `metrics` facade (the binary installs the exporter).
//! Names are stable; labels never carry credentials or caller content.

use std::time::Duration;

use metrics::{counter, histogram};

use super::Trace;

pub const REQUESTS: &str = "understudy_requests_total";
pub const ATTEMPTS: &str = "understudy_attempts_total";
pub const FALLBACKS: &str = "understudy_fallbacks_total";
pub const REQUEST_SECONDS: &str = "understudy_request_duration_seconds";
pub const ATTEMPT_SECONDS: &str = "understudy_attempt_duration_seconds";
pub const TTFT_SECONDS: &str = "understudy_ttft_seconds";
pub const OVERHEAD_SECONDS: &str = "understudy_overhead_seconds";
pub const TOKENS: &str = "understudy_tokens_total";
pub const MALFORMED: &str = "understudy_stream_malformed_chunks_total";
pub const STREAMS_BROKEN: &str = "understudy_streams_broken_total";

/// Histogram names, so the exporter can give them sensible buckets.
pub const HISTOGRAMS: [&str; 4] = [REQUEST_SECONDS, ATTEMPT_SECONDS, TTFT_SECONDS, OVERHEAD_SECONDS];

/// Records the attempts of a finished request (or a stream at its commit point).
pub fn record_attempts(trace: &Trace) {
    for a in &trace.attempts {
        let outcome = a.class.map(|c| c.as_str()).unwrap_or("ok");
        counter!(ATTEMPTS, "route" => trace.route.clone(), "deployment" => a.deployment.clone(), "outcome" => outcome)
            .increment(1);
        histogram!(ATTEMPT_SECONDS, "deployment" => a.deployment.clone()).record(a.elapsed_ms.as_secs_f64());
    }
    if trace.fell_back() {
        counter!(FALLBACKS, "route" => trace.route.clone()).increment(1);
    }
}

/// Records the end of a request. `outcome` is `ok`, `error` or a failure class.
pub fn record_request(route: &str, front: &str, outcome: &str, total: Duration, overhead: Duration) {
    counter!(REQUESTS, "route" => route.to_string(), "front" => front.to_string(), "outcome" => outcome.to_string())
        .increment(1);
    histogram!(REQUEST_SECONDS, "route" => route.to_string()).record(total.as_secs_f64());
    histogram!(OVERHEAD_SECONDS).record(overhead.as_secs_f64());
}

pub fn record_ttft(deployment: &str, ttft: Duration) {
    histogram!(TTFT_SECONDS, "deployment" => deployment.to_string()).record(ttft.as_secs_f64());
}

pub fn record_usage(deployment: &str, input: u64, output: u64) {
    counter!(TOKENS, "deployment" => deployment.to_string(), "kind" => "input").increment(input);
    counter!(TOKENS, "deployment" => deployment.to_string(), "kind" => "output").increment(output);
}

pub const BREAKER_STATE: &str = "understudy_breaker_state";
pub const BREAKER_TRANSITIONS: &str = "understudy_breaker_transitions_total";
pub const DISABLED: &str = "understudy_deployment_disabled_total";
pub const BUDGET_EXHAUSTED: &str = "understudy_retry_budget_exhausted_total";
pub const HEDGES: &str = "understudy_hedges_total";
pub const SKIPPED: &str = "understudy_skipped_total";
pub const PROBES: &str = "understudy_probes_total";
pub const ALERTS_SENT: &str = "understudy_alerts_sent_total";
pub const ALERTS_SUPPRESSED: &str = "understudy_alerts_suppressed_total";
pub const ALERTS_FAILED: &str = "understudy_alerts_failed_total";
