//! Logging (one JSON line per request, to stderr) and the Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use understudy::report::metrics as m;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the global metrics recorder once per process (tests start many servers).
pub fn install_metrics() {
    PROMETHEUS.get_or_init(|| {
        let mut b = PrometheusBuilder::new();
        for name in m::HISTOGRAMS {
            let buckets: &[f64] = if name == m::OVERHEAD_SECONDS {
                &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05]
            } else {
                &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]
            };
            b = b
                .set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
        }
        let recorder = b.build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).ok().map(|_| handle)
    });
}

pub fn render_metrics() -> String {
    install_metrics();
    match PROMETHEUS.get() {
        Some(Some(h)) => h.render(),
        _ => String::new(),
    }
}

/// JSON logs by default (`UNDERSTUDY_LOG=info`, `UNDERSTUDY_LOG_FORMAT=pretty` for humans).
///
/// Lines are written by a background thread through a buffer, so a request never waits on a
/// write to stderr; if that thread falls far behind, lines are dropped rather than slow requests.
/// Keep the returned guard alive: dropping it flushes what is left.
pub fn init_logging(default_level: &str) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("UNDERSTUDY_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let pretty = std::env::var("UNDERSTUDY_LOG_FORMAT").is_ok_and(|v| v == "pretty");
    let (writer, guard) = tracing_appender::non_blocking(std::io::BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let _ = if pretty { builder.try_init() } else { builder.json().flatten_event(true).try_init() };
    guard
}
