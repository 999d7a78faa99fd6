//! Health-aware routing over real HTTP: breakers keep a dead primary out of the traffic (it
//! sees only probes), long cooldowns for auth failures, Retry-After cooldowns, the retry budget,
//! hedging, the adaptive first-token limit and latency-aware balancing.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn stream_body(route: &str) -> Value {
    json!({"model": route, "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn a_dead_primary_receives_only_probe_traffic() {
    let env = env("  r:
    breaker: { consecutive_failures: 3, open_for: 400ms, max_open_for: 400ms }
    max_retries: 0
    fallback_chain:
      - { provider: openai, model: primary }
      - { provider: anthropic, model: backup }
")
    .await;
    env.mock.set_fault("primary", fault("error=unavailable"));
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed() < Duration::from_millis(1500) {
        let r = env.chat(openai_body("r")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.served_by(), "anthropic/backup");
        n += 1;
    }
    let primary = env.upstream("primary");
    // 3 failures trip it; then one probe per 400 ms open period.
    assert!(n > 50, "{n} requests sent");
    assert!(primary <= 3 + 5, "the dead primary saw {primary} of {n} requests: only the trip and probes");
    let r = env.chat(openai_body("r")).await;
    assert!(r.reasons().contains("openai/primary=circuit_open") || r.reasons().contains("openai/primary=overloaded"));

    // Recovery: once the primary answers again, a half-open probe closes the breaker.
    env.mock.clear_fault("primary");
    tokio::time::sleep(Duration::from_millis(450)).await;
    let mut back = false;
    for _ in 0..5 {
        if env.chat(openai_body("r")).await.served_by() == "openai/primary" {
            back = true;
            break;
        }
    }
    assert!(back, "traffic returned to the primary after recovery");
    let state = env.chat(openai_body("r")).await;
    assert_eq!(state.served_by(), "openai/primary");
}

#[tokio::test]
async fn a_deactivated_account_is_taken_out_of_rotation_at_once() {
    let env = env("  r:
    disable_for: 1h
    fallback_chain:
      - { provider: openai, model: \"primary+error=account_deactivated\" }
      - { provider: anthropic, model: backup }
")
    .await;
    for _ in 0..10 {
        let r = env.chat(openai_body("r")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.served_by(), "anthropic/backup");
    }
    assert_eq!(env.upstream("primary"), 1, "one 401 disables it; no further calls");
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.reasons(), "openai/primary+error=account_deactivated=circuit_open");
    assert_eq!(r.attempts(), 1, "a skipped candidate costs no attempt");
}

#[tokio::test]
async fn a_rate_limited_deployment_cools_down_until_retry_after() {
    let env = env("  r:
    fallback_chain:
      - { provider: openai, model: primary }
      - { provider: anthropic, model: backup }
")
    .await;
    env.mock.set_fault("primary", fault("error=rate_limit+retry_after=1"));
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.served_by(), "anthropic/backup");
    for _ in 0..5 {
        let r = env.chat(openai_body("r")).await;
        assert!(r.reasons().contains("openai/primary=cooling_down"), "{}", r.reasons());
    }
    assert_eq!(env.upstream("primary"), 1, "no calls during the cooldown");
    env.mock.clear_fault("primary");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(env.chat(openai_body("r")).await.served_by(), "openai/primary");
}

#[tokio::test]
async fn the_retry_budget_stops_retry_storms() {
    // Every attempt fails with a retryable 503 and the entry allows 3 retries each. With a budget
    // of no extra load, no retry is made.
    let routes = |budget: &str| {
        format!(
            "  r:
    max_retries: 3
    retry_budget: {budget}
    breaker: {{ enabled: false }}
    fallback_chain:
      - {{ provider: openai, model: \"primary+error=unavailable\" }}
"
        )
    };
    let env = common::env(&routes("{ ratio: 0.0, min_per_sec: 0 }")).await;
    for _ in 0..10 {
        assert_eq!(env.chat(openai_body("r")).await.status, 503);
    }
    assert_eq!(env.upstream("primary"), 10, "budget spent: one attempt per request, no retries");

    let env = common::env(&routes("{ enabled: false }")).await;
    for _ in 0..10 {
        assert_eq!(env.chat(openai_body("r")).await.status, 503);
    }
    assert_eq!(env.upstream("primary"), 40, "without a budget every request is retried 3 times");

    let env = common::env(&routes("{ ratio: 0.2, min_per_sec: 0 }")).await;
    for _ in 0..20 {
        env.chat(openai_body("r")).await;
    }
    let calls = env.upstream("primary");
    assert!((20..=25).contains(&calls), "retries add at most ~20%: {calls} calls for 20 requests");
}

#[tokio::test]
async fn a_hedge_answers_when_the_primary_is_slow() {
    let env = env("  r:
    hedge: { delay: 200ms }
    fallback_chain:
      - { provider: openai, model: \"primary+latency=3s\" }
      - { provider: anthropic, model: backup }
")
    .await;
    let t0 = Instant::now();
    let r = env.chat(stream_body("r")).await;
    let took = t0.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.served_by(), "anthropic/backup");
    assert_eq!(r.header("x-understudy-hedges"), Some("1"));
    assert_eq!(r.reasons(), "openai/primary+latency=3s=hedged_out", "the slow primary is reported");
    assert_eq!(r.attempts(), 2);
    assert!(took < Duration::from_secs(2), "the hedge won after ~200ms, not the 3s primary: {took:?}");
    assert!(openai_stream_text(&r).1);
    // The loser was cancelled: its connection closed instead of waiting out the 3 s; only the
    // winner's idle keep-alive connection remains.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(env.mock.stats().open_connections <= 1, "the slow primary's call was dropped");
    assert_eq!(env.upstream("primary"), 1);
}

#[tokio::test]
async fn the_adaptive_first_token_limit_follows_observed_latency() {
    let env = env("  r:
    ttft_timeout: auto
    adaptive_ttft: { multiplier: 3, floor: 150ms, ceiling: 10s, min_samples: 5, initial: 5s }
    breaker: { enabled: false }
    fallback_chain:
      - { provider: openai, model: primary }
      - { provider: anthropic, model: backup }
")
    .await;
    for _ in 0..6 {
        let r = env.chat(stream_body("r")).await;
        assert_eq!(r.served_by(), "openai/primary");
    }
    // Now the primary's first token takes 2 s: the learned limit (floor 150 ms, since the
    // observed p95 is tiny) fails over long before the 5 s initial limit would.
    env.mock.set_fault("primary", fault("ttft=2s"));
    let t0 = Instant::now();
    let r = env.chat(stream_body("r")).await;
    assert_eq!(r.served_by(), "anthropic/backup");
    assert!(r.reasons().ends_with("=timeout"));
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn latency_aware_balancing_prefers_the_faster_deployment() {
    let env = env("  r:
    balance: latency
    fallback_chain:
      - { provider: openai, model: \"slow+latency=150ms\", priority: 1 }
      - { provider: openai, model: fast, priority: 1 }
")
    .await;
    for _ in 0..40 {
        assert_eq!(env.chat(openai_body("r")).await.status, 200);
    }
    let (slow, fast) = (env.upstream("slow"), env.upstream("fast"));
    assert_eq!(slow + fast, 40);
    assert!(fast >= 30, "p2c over peak-EWMA sends most traffic to the fast one: fast {fast}, slow {slow}");
}

#[tokio::test]
async fn weighted_balancing_spreads_by_weight() {
    let env = env("  r:
    fallback_chain:
      - { provider: openai, model: a, priority: 1, weight: 3 }
      - { provider: openai, model: b, priority: 1, weight: 1 }
")
    .await;
    for _ in 0..200 {
        env.chat(openai_body("r")).await;
    }
    let (a, b) = (env.upstream("a"), env.upstream("b"));
    assert_eq!(a + b, 200);
    assert!((120..=180).contains(&a), "about 3:1, got {a}:{b}");
}

#[tokio::test]
async fn when_every_candidate_is_unavailable_the_caller_is_told_when_to_come_back() {
    let env = env("  r:
    disable_for: 30s
    fallback_chain:
      - { provider: openai, model: \"a+error=account_deactivated\" }
      - { provider: anthropic, model: \"b+error=invalid_key\" }
")
    .await;
    assert_eq!(env.chat(openai_body("r")).await.status, 503);
    let t0 = Instant::now();
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 503);
    assert!(t0.elapsed() < Duration::from_millis(200), "no call was made");
    assert_eq!(r.attempts(), 0);
    let ra: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((25..=30).contains(&ra), "retry-after from the earliest recovery: {ra}");
    assert!(r.text.contains("unavailable"), "{}", r.text);
}
