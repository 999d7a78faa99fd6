//! The incidents a game day plays, the time scale they are played at, and the two gateway
//! configurations (protected and unprotected) they are played against.
//!
//! Every duration is written as its real-world value and multiplied by the scale when a run
//! starts, so that phase lengths, provider latencies, timeouts, breaker times and Retry-After keep
//! their proportions.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// The three simulated deployments of the route `smart`, as the gateway names them.
pub const PRIMARY: &str = "openai/gpt-4o";
pub const FALLBACK: &str = "anthropic/claude-sonnet-4-5";
pub const LAST_RESORT: &str = "gemini/gemini-2.5-flash";
/// Base model names, as the mock counts them.
pub const PRIMARY_MODEL: &str = "gpt-4o";
pub const FALLBACK_MODEL: &str = "claude-sonnet-4-5";
pub const LAST_RESORT_MODEL: &str = "gemini-2.5-flash";
pub const ROUTE: &str = "smart";

/// Real-world durations, in milliseconds (scaled before use).
pub mod real {
    /// Healthy latencies: a uniform jitter is added to each.
    pub const PRIMARY: u64 = 550;
    pub const FALLBACK: u64 = 850;
    pub const LAST_RESORT: u64 = 1050;
    pub const JITTER: u64 = 100;
    /// The latency spike's latency.
    pub const SPIKE: u64 = 12_000;
    /// `Retry-After` of the 429 storm.
    pub const RETRY_AFTER: u64 = 5_000;
    /// Phase lengths.
    pub const BASELINE: u64 = 8_000;
    pub const INCIDENT: u64 = 24_000;
    pub const RECOVERY: u64 = 20_000;
    /// Route limits (both modes).
    pub const DEADLINE: u64 = 20_000;
    pub const PRIMARY_TIMEOUT: u64 = 3_000;
    pub const BACKUP_TIMEOUT: u64 = 10_000;
    pub const BACKUP_TTFT: u64 = 5_000;
    pub const TTFT_FLOOR: u64 = 1_000;
    pub const TTFT_CEILING: u64 = 3_000;
    pub const TTFT_INITIAL: u64 = 2_000;
    pub const IDLE: u64 = 5_000;
    pub const CONNECT: u64 = 1_000;
    pub const BACKOFF_BASE: u64 = 100;
    pub const BACKOFF_MAX: u64 = 1_000;
    pub const MAX_RETRY_WAIT: u64 = 10_000;
    /// Protection (protected mode).
    pub const BREAKER_WINDOW: u64 = 5_000;
    pub const OPEN_FOR: u64 = 2_000;
    pub const MAX_OPEN_FOR: u64 = 8_000;
    pub const BUDGET_TTL: u64 = 10_000;
    pub const HEDGE_DELAY: u64 = 1_500;
    /// How long an auth failure takes a deployment out of rotation (the built-in default is 1 h).
    pub const DISABLE_FOR: u64 = 8_000;
    pub const RATE_LIMIT_COOLDOWN: u64 = 5_000;
}

/// Loopback connects are instant, but a loaded machine may take a few milliseconds: never
/// scale the connect timeout below this.
const CONNECT_FLOOR_MS: f64 = 250.0;

/// How much faster than real time the game day runs: every duration is multiplied by `scale`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Timeline {
    pub scale: f64,
}

impl Timeline {
    pub fn new(scale: f64) -> Timeline {
        Timeline { scale }
    }

    /// `real_ms` scaled, at least 1 ms.
    pub fn d(&self, real_ms: u64) -> Duration {
        Duration::from_secs_f64((real_ms as f64 * self.scale).max(1.0) / 1000.0)
    }

    /// `real_ms` scaled, in the configuration's and the mock's duration syntax (`37ms`, `2s`).
    pub fn ms(&self, real_ms: u64) -> String {
        let ms = self.d(real_ms).as_millis().max(1);
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    }

    pub fn baseline(&self) -> Duration {
        self.d(real::BASELINE)
    }

    pub fn incident(&self) -> Duration {
        self.d(real::INCIDENT)
    }

    pub fn recovery(&self) -> Duration {
        self.d(real::RECOVERY)
    }

    /// Length of one run (one scenario in one mode), not counting requests still in flight.
    pub fn run_len(&self) -> Duration {
        self.baseline() + self.incident() + self.recovery()
    }

    /// A healthy deployment's fault: latency with jitter.
    pub fn healthy(&self, latency_ms: u64) -> String {
        format!("latency={}+latency_jitter={}", self.ms(latency_ms), self.ms(real::JITTER))
    }

    /// The retry budget's floor is per second of wall-clock time: compressing time by `scale`
    /// would shrink it, so it is raised by the same factor.
    pub fn budget_min_per_sec(&self) -> u32 {
        (1.0 / self.scale).round().clamp(1.0, 10_000.0) as u32
    }
}

/// Protected: breakers, retry budgets and hedging on. Unprotected: the same routes without them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Protected,
    Unprotected,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Protected => "protected",
            Mode::Unprotected => "unprotected",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One incident on the primary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    HardDown,
    AccountDeactivated,
    RateLimited,
    LatencySpike,
    Hung,
    Flapping,
    StreamCut,
    OutageRecovery,
}

impl Scenario {
    pub const ALL: [Scenario; 8] = [
        Scenario::HardDown,
        Scenario::AccountDeactivated,
        Scenario::RateLimited,
        Scenario::LatencySpike,
        Scenario::Hung,
        Scenario::Flapping,
        Scenario::StreamCut,
        Scenario::OutageRecovery,
    ];

    /// Short name, used on the command line and for file names.
    pub fn slug(self) -> &'static str {
        match self {
            Scenario::HardDown => "hard-down",
            Scenario::AccountDeactivated => "account-deactivated",
            Scenario::RateLimited => "rate-limited",
            Scenario::LatencySpike => "latency-spike",
            Scenario::Hung => "hung",
            Scenario::Flapping => "flapping",
            Scenario::StreamCut => "stream-cut",
            Scenario::OutageRecovery => "outage-recovery",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Scenario::HardDown => "Primary hard down (503)",
            Scenario::AccountDeactivated => "Account deactivated (401)",
            Scenario::RateLimited => "429 storm with Retry-After",
            Scenario::LatencySpike => "Latency spike, 600 ms to 12 s",
            Scenario::Hung => "Hung primary (accepts, never answers)",
            Scenario::Flapping => "Flapping primary (30% errors)",
            Scenario::StreamCut => "Streams cut mid-answer",
            Scenario::OutageRecovery => "Outage (connections reset), then recovery",
        }
    }

    /// What the primary does during the incident, in words.
    pub fn about(self) -> &'static str {
        match self {
            Scenario::HardDown => "every call to the primary answers 503 Service Unavailable at once.",
            Scenario::AccountDeactivated => {
                "every call answers 401 `account_deactivated` (the account is reinstated at recovery)."
            }
            Scenario::RateLimited => "every call answers 429 with `Retry-After` (5 s real-world).",
            Scenario::LatencySpike => "answers still come, but after 12 s instead of 600 ms.",
            Scenario::Hung => "the primary accepts the connection and the request, and never answers.",
            Scenario::Flapping => "30% of calls answer 503, the others are healthy.",
            Scenario::StreamCut => {
                "streams are cut after two content chunks (past the commit point); plain requests are healthy."
            }
            Scenario::OutageRecovery => {
                "every connection is reset before any response (the provider is unreachable); recovery is \
                 the point of this one: how long until traffic returns."
            }
        }
    }

    /// What to keep in mind when reading this scenario's numbers.
    pub fn note(self) -> Option<&'static str> {
        match self {
            Scenario::RateLimited => Some(
                "Retry-After cooldowns are not one of the mechanisms switched off in unprotected mode: both modes \
                 skip the primary until its Retry-After has passed, which is why they look alike.",
            ),
            Scenario::StreamCut => Some(
                "Protected, the route uses `stream_failure: continue`: a stream cut after its commit point \
                 resumes on the next candidate (restarted, with an in-stream notice, since the fallbacks here \
                 do not take a prefill), and a cut stream counts as a failure for the primary's breaker. \
                 Unprotected, the route keeps the default `stream_failure: error`: the stream ends with an \
                 in-band error and no `[DONE]`.",
            ),
            Scenario::Flapping => Some(
                "Unprotected, the primary stays in rotation and each failure costs a retry and often a fallback; \
                 protected, the breaker trips on the failure rate (20% of at least 10 requests in its window).",
            ),
            _ => None,
        }
    }

    /// The primary's fault during the incident, in the mock's suffix syntax.
    pub fn incident_fault(self, t: &Timeline) -> String {
        let healthy = t.healthy(real::PRIMARY);
        match self {
            Scenario::HardDown => "error=unavailable".into(),
            Scenario::AccountDeactivated => "error=account_deactivated".into(),
            Scenario::RateLimited => {
                format!("error=rate_limit+retry_after={:.3}", t.d(real::RETRY_AFTER).as_secs_f64())
            }
            Scenario::LatencySpike => format!("latency={}+latency_jitter={}", t.ms(real::SPIKE), t.ms(real::JITTER)),
            Scenario::Hung => "hang".into(),
            Scenario::Flapping => format!("{healthy}+error=unavailable+error_rate=0.3"),
            Scenario::StreamCut => format!("{healthy}+cut_after=2"),
            Scenario::OutageRecovery => "reset".into(),
        }
    }

    pub fn parse(s: &str) -> Result<Scenario, String> {
        let s = s.trim();
        Scenario::ALL.into_iter().find(|k| k.slug() == s).ok_or_else(|| {
            let known: Vec<&str> = Scenario::ALL.iter().map(|k| k.slug()).collect();
            format!("unknown scenario `{s}` (known: {})", known.join(", "))
        })
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.slug())
    }
}

/// The gateway configuration for one mode: three providers on one mock, one route.
pub fn config_yaml(mock_url: &str, mode: Mode, t: &Timeline) -> String {
    let ms = |real_ms: u64| t.ms(real_ms);
    let connect = Timeline::new(1.0).ms((real::CONNECT as f64 * t.scale).max(CONNECT_FLOOR_MS).round() as u64);
    let (protection, hedge) = match mode {
        Mode::Protected => (
            format!(
                "  breaker: {{ consecutive_failures: 5, failure_rate: 0.2, min_requests: 10, window: {}, \
                 open_for: {}, max_open_for: {}, half_open_probes: 1 }}\n  \
                 retry_budget: {{ ratio: 0.2, min_per_sec: {}, ttl: {} }}\n",
                ms(real::BREAKER_WINDOW),
                ms(real::OPEN_FOR),
                ms(real::MAX_OPEN_FOR),
                t.budget_min_per_sec(),
                ms(real::BUDGET_TTL),
            ),
            format!("    hedge: {{ delay: {} }}\n    stream_failure: continue\n", ms(real::HEDGE_DELAY)),
        ),
        Mode::Unprotected => {
            ("  breaker: { enabled: false }\n  retry_budget: { enabled: false }\n".to_string(), String::new())
        }
    };
    format!(
        r#"server:
  listen: 127.0.0.1:0
providers:
  openai:    {{ kind: openai,    base_url: "{mock_url}/v1",     api_key: gameday-openai-key }}
  anthropic: {{ kind: anthropic, base_url: "{mock_url}",        api_key: gameday-anthropic-key }}
  gemini:    {{ kind: gemini,    base_url: "{mock_url}/v1beta", api_key: gameday-gemini-key }}
defaults:
  connect_timeout: {connect}
  idle_timeout: {idle}
  max_retries: 1
  backoff_base: {backoff_base}
  backoff_max: {backoff_max}
  max_retry_wait: {max_retry_wait}
  disable_for: {disable_for}
  rate_limit_cooldown: {cooldown}
  ttft_timeout: auto
  adaptive_ttft: {{ multiplier: 3, floor: {floor}, ceiling: {ceiling}, min_samples: 10, initial: {initial} }}
{protection}routes:
  {ROUTE}:
    deadline: {deadline}
{hedge}    fallback_chain:
      - {{ provider: openai,    model: {PRIMARY_MODEL},            priority: 1, timeout: {primary_timeout} }}
      - {{ provider: anthropic, model: {FALLBACK_MODEL}, priority: 2, timeout: {backup}, ttft_timeout: {backup_ttft} }}
      - {{ provider: gemini,    model: {LAST_RESORT_MODEL},  priority: 3, timeout: {backup}, ttft_timeout: {backup_ttft} }}
"#,
        idle = ms(real::IDLE),
        backoff_base = ms(real::BACKOFF_BASE),
        backoff_max = ms(real::BACKOFF_MAX),
        max_retry_wait = ms(real::MAX_RETRY_WAIT),
        disable_for = ms(real::DISABLE_FOR),
        cooldown = ms(real::RATE_LIMIT_COOLDOWN),
        floor = ms(real::TTFT_FLOOR),
        ceiling = ms(real::TTFT_CEILING),
        initial = ms(real::TTFT_INITIAL),
        deadline = ms(real::DEADLINE),
        primary_timeout = ms(real::PRIMARY_TIMEOUT),
        backup = ms(real::BACKUP_TIMEOUT),
        backup_ttft = ms(real::BACKUP_TTFT),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_configurations_load_at_every_scale() {
        for scale in [1.0, 0.15, 0.02] {
            let t = Timeline::new(scale);
            for mode in [Mode::Protected, Mode::Unprotected] {
                let yaml = config_yaml("http://127.0.0.1:9", mode, &t);
                let loaded = understudy::config::load_str(&yaml, "<gameday>");
                assert!(loaded.is_ok(), "{mode} at {scale}: {:?}\n{yaml}", loaded.err());
            }
        }
    }

    #[test]
    fn every_incident_fault_parses() {
        let t = Timeline::new(0.15);
        for s in Scenario::ALL {
            assert!(understudy_mock::Fault::parse(&s.incident_fault(&t)).is_ok(), "{s}");
            assert_eq!(Scenario::parse(s.slug()), Ok(s));
        }
        assert!(Scenario::parse("nope").unwrap_err().contains("hard-down"));
    }

    #[test]
    fn scaling_keeps_proportions() {
        let t = Timeline::new(0.1);
        assert_eq!(t.d(12_000), Duration::from_millis(1200));
        assert_eq!(t.ms(600), "60ms");
        assert_eq!(Timeline::new(1.0).ms(2000), "2s");
        assert_eq!(t.budget_min_per_sec(), 10);
        assert_eq!(Timeline::new(1e-9).d(5), Duration::from_millis(1), "never zero");
    }
}
