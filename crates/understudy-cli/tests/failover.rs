//! Every failure class of DESIGN section 3, over real HTTP against the fault-injecting mock:
//! what the caller sees, and what the providers saw.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// A two-step route: `primary` (openai) then a healthy anthropic backup.
fn two_step(primary_model: &str, extra: &str) -> String {
    format!(
        "  r:
    fallback_chain:
      - {{ provider: openai, model: \"{primary_model}\" {extra} }}
      - {{ provider: anthropic, model: backup }}
"
    )
}

async fn fails_over(fault_spec: &str, class: &str, primary_calls: u64) {
    let model = format!("primary+{fault_spec}");
    let env = env(&two_step(&model, ", timeout: 2s")).await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{fault_spec}: {}", r.text);
    assert_eq!(r.served_by(), "anthropic/backup", "{fault_spec}");
    assert_eq!(r.reasons().split(", ").next().unwrap(), format!("openai/{model}={class}"), "{fault_spec}");
    assert_eq!(r.attempts() as u64, primary_calls + 1, "{fault_spec}");
    assert_eq!(env.upstream("primary"), primary_calls, "{fault_spec}: calls on the primary");
    assert_eq!(env.upstream("backup"), 1);
    // The answer is the backup's, translated to the caller's dialect.
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "backup");
    assert!(!openai_text(&v).is_empty());
}

#[tokio::test]
async fn auth_failures_fail_over_at_once() {
    fails_over("error=account_deactivated", "auth", 1).await;
    fails_over("error=invalid_key", "auth", 1).await;
    fails_over("error=forbidden", "auth", 1).await;
}

#[tokio::test]
async fn deployment_invalid_fails_over_without_retry() {
    fails_over("error=model_not_found", "deployment_invalid", 1).await;
}

#[tokio::test]
async fn server_errors_retry_once_then_fail_over() {
    for spec in ["error=server", "error=bad_gateway", "error=unavailable", "error=overloaded", "status=504"] {
        fails_over(spec, "overloaded", 2).await;
    }
}

#[tokio::test]
async fn context_window_errors_fail_over_without_retry() {
    fails_over("error=context_length", "context_window", 1).await;
}

#[tokio::test]
async fn quota_exhaustion_fails_over_and_is_never_retried() {
    fails_over("error=quota_exhausted", "rate_limited", 1).await;
}

#[tokio::test]
async fn bad_answers_fail_over() {
    fails_over("empty", "invalid_response", 1).await;
    fails_over("truncated", "invalid_response", 1).await;
}

#[tokio::test]
async fn connection_reset_before_headers_is_a_connect_failure() {
    fails_over("reset", "connect", 2).await;
}

#[tokio::test]
async fn a_hung_provider_is_timed_out_and_not_retried() {
    let model = "primary+hang";
    let env = env(&two_step(model, ", timeout: 300ms")).await;
    let t0 = Instant::now();
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "anthropic/backup");
    assert_eq!(r.reasons(), format!("openai/{model}=timeout"));
    assert_eq!(env.upstream("primary"), 1, "a silent route is not retried");
    assert!(t0.elapsed() < Duration::from_secs(2), "bounded by the 300ms attempt timeout");
}

#[tokio::test]
async fn connection_refused_fails_over() {
    let env = env("  r:
    fallback_chain:
      - { provider: closed, model: m }
      - { provider: anthropic, model: backup }
")
    .await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.reasons().starts_with("closed/m=connect"), "{}", r.reasons());
}

#[tokio::test]
async fn a_callers_mistake_is_returned_unchanged_and_never_failed_over() {
    let env = env(&two_step("primary+error=bad_request", "")).await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 400);
    assert_eq!(env.upstream("backup"), 0, "no failover for the caller's own mistake");
    // Same dialect: the provider's body byte for byte.
    let direct = env
        .client
        .post(format!("{}/v1/chat/completions", env.mock.url()))
        .bearer_auth("k")
        .json(&json!({"model": "primary+error=bad_request", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status().as_u16(), 400);
    let direct_body = direct.text().await.unwrap();
    assert_eq!(r.json()["error"], serde_json::from_str::<serde_json::Value>(&direct_body).unwrap()["error"]);
    // An Anthropic caller gets it in its own shape.
    let r = env.messages(anthropic_body("r")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn content_policy_is_returned_with_the_providers_reason() {
    let env = env(&two_step("primary+error=content_policy", "")).await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(env.upstream("backup"), 0, "content policy does not fail over without its own chain");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_lowercase();
    assert!(msg.contains("policy") || msg.contains("flagged"), "{msg}");
}

#[tokio::test]
async fn retry_after_that_does_not_fit_the_deadline_fails_over_at_once() {
    let env = env(&two_step("primary+error=rate_limit+retry_after=60", "")).await;
    let t0 = Instant::now();
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.served_by(), "anthropic/backup");
    assert!(r.reasons().ends_with("=rate_limited"));
    assert_eq!(env.upstream("primary"), 1);
    assert!(t0.elapsed() < Duration::from_secs(2));
}

async fn retry_after_is_honoured(retry_after: String) {
    // The only other candidate is down, so the gateway comes back to the rate-limited primary
    // once its Retry-After has passed (it recovers meanwhile).
    let env = env("  r:
    deadline: 10s
    fallback_chain:
      - { provider: openai, model: primary }
      - { provider: anthropic, model: \"down+error=unavailable\" }
")
    .await;
    env.mock.set_fault("primary", fault(&format!("error=rate_limit+retry_after={retry_after}")));
    let mock = &env.mock;
    let t0 = Instant::now();
    let (r, _) = tokio::join!(env.chat(openai_body("r")), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        mock.clear_fault("primary");
    });
    let waited = t0.elapsed();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "openai/primary");
    assert_eq!(env.upstream("primary"), 2);
    assert!(waited >= Duration::from_millis(900), "came back only after Retry-After ({waited:?})");
    assert!(r.reasons().starts_with("openai/primary=rate_limited"), "{}", r.reasons());
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    retry_after_is_honoured("1".into()).await;
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    // HTTP-dates have one-second resolution, so this waits 1-2 s.
    retry_after_is_honoured(httpdate::fmt_http_date(at)).await;
}

#[tokio::test]
async fn when_everything_fails_the_caller_gets_a_clear_error_with_the_trace() {
    let env = env("  r:
    deadline: 5s
    fallback_chain:
      - { provider: openai, model: \"a+error=account_deactivated\" }
      - { provider: anthropic, model: \"b+error=rate_limit+retry_after=7\" }
      - { provider: gemini, model: \"c+error=unavailable\" }
")
    .await;
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("7"), "earliest recovery time");
    assert_eq!(r.header("x-should-retry"), Some("false"), "SDKs must not stack retries on the gateway's");
    let v = r.json();
    assert_eq!(v["error"]["type"], "all_candidates_failed");
    assert_eq!(v["error"]["code"], "all_candidates_failed");
    let attempts = v["error"]["attempts"].as_array().unwrap();
    let classes: Vec<&str> = attempts.iter().map(|a| a["class"].as_str().unwrap()).collect();
    assert_eq!(classes, ["auth", "rate_limited", "overloaded", "overloaded"]);
    assert!(!r.text.contains("test-openai-key") && !r.text.contains("test-gemini-key"), "no secrets in errors");
    // Anthropic callers get Anthropic's error shape.
    let r = env.messages(anthropic_body("r")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "all_candidates_failed");
}

#[tokio::test]
async fn one_deadline_spans_every_attempt() {
    let env = env("  r:
    deadline: 700ms
    fallback_chain:
      - { provider: openai, model: \"a+hang\", timeout: 500ms }
      - { provider: anthropic, model: \"b+hang\", timeout: 500ms }
      - { provider: gemini, model: \"c+hang\", timeout: 500ms }
")
    .await;
    let t0 = Instant::now();
    let r = env.chat(openai_body("r")).await;
    let took = t0.elapsed();
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(took < Duration::from_millis(1200), "3 x 500ms attempts were cut by the 700ms deadline: {took:?}");
    assert!(took >= Duration::from_millis(650), "{took:?}");
    // The request header overrides the route's deadline.
    let t0 = Instant::now();
    let r = env.post("/v1/chat/completions", &openai_body("r"), &[("x-understudy-deadline", "200ms")]).await;
    assert_eq!(r.status, 503);
    assert!(t0.elapsed() < Duration::from_millis(600));
}

#[tokio::test]
async fn a_fallback_entry_that_overrides_model_key_and_params_merges_correctly() {
    // The incident: a fallback entry overriding `model` plus other parameters broke the fallback
    // path. Here the entry overrides the model, the key and temperature together. The mock
    // refuses the provider's own key, so the fallback only answers if the override key was sent.
    let mock_config = understudy_mock::MockConfig {
        api_keys: vec!["override-key".into(), "test-anthropic-key".into()],
        ..Default::default()
    };
    let env = env_full(
        "  r:
    fallback_chain:
      - { provider: openai, model: primary }
      - { provider: openai, model: fallback-model, api_key: override-key, temperature: 0.1, max_tokens: 77, params: { seed: 7 } }
",
        "",
        mock_config,
    )
    .await;
    let r = env
        .chat(json!({
            "model": "r",
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.9,
            "logprobs": true,
            "metadata": {"team": "x"},
            "vendor_extra": {"keep": [1, 2]}
        }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.served_by(), "openai/fallback-model");
    assert_eq!(r.reasons(), "openai/primary=auth", "the provider's own key is refused");
    let rec = env.recorded("fallback-model");
    assert_eq!(rec.len(), 1);
    let body = &rec[0]["body"];
    assert_eq!(body["model"], "fallback-model");
    assert_eq!(body["temperature"], 0.1);
    assert_eq!(body["max_tokens"], 77);
    assert_eq!(body["seed"], 7);
    assert_eq!(body["logprobs"], true, "unknown fields survive");
    assert_eq!(body["metadata"], json!({"team": "x"}));
    assert_eq!(body["vendor_extra"], json!({"keep": [1, 2]}));
    // The primary saw the caller's temperature, untouched by the fallback's override.
    let prim = env.recorded("primary");
    assert_eq!(prim[0]["body"]["temperature"], 0.9);
}
