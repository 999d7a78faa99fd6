//! The admin API, alerts and health probes, over real loopback HTTP against the mock provider.

mod common;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const KEYS: &str = "server:\n  api_keys: [caller-key]\n  admin_keys: [admin-key]\n";

/// `primary` (openai, breaker tuned by `breaker`) then a healthy anthropic `backup`.
fn two_step(primary: &str, breaker: &str, extra: &str) -> String {
    format!(
        "  r:
    max_retries: 0
    fallback_chain:
      - {{ provider: openai, model: \"{primary}\", breaker: {{ {breaker} }} {extra} }}
      - {{ provider: anthropic, model: backup }}
"
    )
}

struct Admin<'a> {
    env: &'a Env,
    key: Option<&'a str>,
}

impl Admin<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut rb = self.env.client.request(method, format!("{}{path}", self.env.gw.url()));
        if let Some(k) = self.key {
            rb = rb.bearer_auth(k);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("gateway reachable");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        Reply { status, headers, text: r.text().await.unwrap_or_default() }
    }

    async fn state(&self) -> Value {
        let r = self.send(Method::GET, "/admin/state", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }

    async fn deployment(&self, id: &str) -> Value {
        let s = self.state().await;
        let found = s["deployments"].as_array().unwrap().iter().find(|d| d["deployment"] == id).cloned();
        found.unwrap_or_else(|| panic!("{id} not in {s:#}"))
    }
}

fn admin<'a>(env: &'a Env, key: Option<&'a str>) -> Admin<'a> {
    Admin { env, key }
}

/// Polls `check` until it holds, or panics after `secs`.
async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A sample's value in Prometheus text (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

fn assert_openai_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{}", r.text);
    assert!(v["error"]["message"].is_string());
    assert!(v["error"]["type"].is_string());
}

#[tokio::test]
async fn admin_keys_are_separate_from_caller_keys() {
    let env = env_with(&two_step("primary", "", ""), KEYS).await;
    let r = admin(&env, None).send(Method::GET, "/admin/state", None).await;
    assert_openai_error(&r, 401, "missing_admin_key");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_openai_error(
        &admin(&env, Some("wrong")).send(Method::GET, "/admin/state", None).await,
        401,
        "invalid_admin_key",
    );
    let caller = admin(&env, Some("caller-key")).send(Method::GET, "/admin/state", None).await;
    assert_openai_error(&caller, 401, "invalid_admin_key");
    // Only a bearer token opens it, not the Anthropic-style header.
    let r = env.client.get(format!("{}/admin/state", env.gw.url())).header("x-api-key", "admin-key").send().await;
    assert_eq!(r.unwrap().status(), 401);
    // A wrong method reveals nothing more than a wrong key.
    let r = admin(&env, None).send(Method::GET, "/admin/faults", None).await;
    assert_eq!(r.status, 401);
    let r = admin(&env, Some("admin-key")).send(Method::GET, "/admin/faults", None).await;
    assert_openai_error(&r, 405, "method_not_allowed");

    let s = admin(&env, Some("admin-key")).state().await;
    assert_eq!(s["routes"][0]["name"], "r");
    assert_eq!(s["routes"][0]["steps"], json!([["openai/primary"], ["anthropic/backup"]]));
    // And the admin key is no caller key.
    let r = env.post("/v1/chat/completions", &openai_body("r"), &[("authorization", "Bearer admin-key")]).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn without_admin_keys_only_a_loopback_listener_answers() {
    let env = env(&two_step("primary", "", "")).await;
    let s = admin(&env, None).state().await;
    assert_eq!(s["deployments"].as_array().unwrap().len(), 2);

    // Listening on every interface, with caller keys but no admin keys: the admin API is absent.
    let mock = understudy_mock::start("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
    let yaml = config_yaml(&mock.url(), &two_step("primary", "", ""), "server:\n  api_keys: [caller-key]\n");
    let loaded = understudy::config::load_str(&yaml, "t.yaml").unwrap();
    let gw = understudy_cli::server::start(&loaded.config, "0.0.0.0:0".parse().unwrap()).await.unwrap();
    let url = format!("http://127.0.0.1:{}", gw.addr().port());
    let r = env.client.get(format!("{url}/admin/state")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["message"], "no such endpoint: /admin/state");
    let r = env.client.post(format!("{url}/admin/deployments/openai/primary/drain")).bearer_auth("caller-key").send();
    assert_eq!(r.await.unwrap().status(), 404);
    gw.shutdown().await;
}

#[tokio::test]
async fn state_shows_an_open_breaker_with_its_reason_and_time_left() {
    let env = env(&two_step("primary+error=unavailable", "open_for: 30s", "")).await;
    for _ in 0..5 {
        let r = env.chat(openai_body("r")).await;
        assert_eq!(r.served_by(), "anthropic/backup", "{}", r.text);
    }
    let id = "openai/primary+error=unavailable";
    let a = admin(&env, None);
    let d = a.deployment(id).await;
    assert_eq!(d["available"], false);
    assert_eq!(d["breaker"]["state"], "open");
    let reason = d["breaker"]["reason"].as_str().unwrap();
    assert!(reason.contains("5 consecutive failures") && reason.contains("overloaded"), "{reason}");
    let left = d["breaker"]["open_for_secs"].as_f64().unwrap();
    assert!(left > 25.0 && left <= 30.0, "{left}");
    let until = d["breaker"]["open_until"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(until).is_ok(), "{until}");
    assert_eq!(d["failures"]["overloaded"], 5);
    assert_eq!(d["attempts"], 5);
    assert_eq!(d["configured"], true);
    let s = a.state().await;
    assert_eq!(s["fallback_routes"], json!(["r"]));
    assert_eq!(s["routes"][0]["serving_from_fallback"], true);
    // The breaker spares the primary: the next request skips it at no cost.
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.reasons(), format!("{id}=circuit_open"));
    assert_eq!(env.upstream("primary"), 5);
}

#[tokio::test]
async fn a_drained_deployment_gets_no_traffic_until_restored() {
    let routes = format!(
        "{}  dup:\n    fallback_chain:\n      - {{ provider: openai, model: dup }}\n      - {{ provider: openai, model: dup }}\n",
        two_step("primary", "", "")
    );
    let env = env(&routes).await;
    let a = admin(&env, None);
    assert_eq!(env.chat(openai_body("r")).await.served_by(), "openai/primary");

    let r =
        a.send(Method::POST, "/admin/deployments/openai/primary/drain", Some(json!({"reason": "maintenance"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["drained"], "maintenance");
    for _ in 0..3 {
        let r = env.chat(openai_body("r")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.served_by(), "anthropic/backup");
        assert_eq!(r.reasons(), "openai/primary=drained");
    }
    assert_eq!(env.upstream("primary"), 1, "the drained deployment saw no more requests");
    assert_eq!(a.deployment("openai/primary").await["available"], false);

    let r = a.send(Method::POST, "/admin/deployments/openai/primary/restore", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["drained"], Value::Null);
    assert_eq!(env.chat(openai_body("r")).await.served_by(), "openai/primary");
    assert_eq!(env.upstream("primary"), 2);

    // Ids with `/` are the tail of the path; `#` is percent-encoded.
    let r = a.send(Method::POST, "/admin/deployments/openai/dup%232/drain", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["deployment"], "openai/dup#2");
    assert_eq!(a.deployment("openai/dup").await["drained"], Value::Null);

    let r = a.send(Method::POST, "/admin/deployments/openai/nope/drain", None).await;
    assert_openai_error(&r, 404, "deployment_not_found");
    let r = a.send(Method::POST, "/admin/deployments/openai/primary/pause", None).await;
    assert_openai_error(&r, 404, "not_found");
    let r = env
        .client
        .post(format!("{}/admin/deployments/openai/primary/drain", env.gw.url()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_admin_request");
}

#[tokio::test]
async fn an_injected_fault_fails_over_opens_the_breaker_and_recovers_through_a_half_open_probe() {
    let breaker = "consecutive_failures: 3, open_for: 300ms, max_open_for: 300ms";
    let env = env(&two_step("primary", breaker, "")).await;
    let a = admin(&env, None);
    let r = a.send(Method::PUT, "/admin/faults/openai/primary", Some(json!({"status": 503}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["injected_fault"]["status"], 503);

    for _ in 0..3 {
        let r = env.chat(openai_body("r")).await;
        assert_eq!(r.served_by(), "anthropic/backup");
        assert_eq!(r.reasons(), "openai/primary=overloaded");
    }
    assert_eq!(env.upstream("primary"), 0, "the fault strikes before the provider is called");
    let d = a.deployment("openai/primary").await;
    assert_eq!(d["breaker"]["state"], "open");
    assert!(d["breaker"]["reason"].as_str().unwrap().contains("3 consecutive failures"));
    assert_eq!(env.chat(openai_body("r")).await.reasons(), "openai/primary=circuit_open");

    let r = a.send(Method::DELETE, "/admin/faults/openai/primary", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["injected_fault"], Value::Null);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The first request after the open period is the half-open probe; it succeeds and closes.
    let r = env.chat(openai_body("r")).await;
    assert_eq!(r.served_by(), "openai/primary", "{}", r.reasons());
    let d = a.deployment("openai/primary").await;
    assert_eq!(d["breaker"]["state"], "closed");
    assert_eq!(d["breaker"]["reason"], "probe succeeded");

    // Invalid faults are refused; DELETE /admin/faults clears them all.
    for bad in [json!({"status": 200}), json!({"error_rate": 2.0, "status": 500}), json!({}), json!({"sttus": 500})] {
        let r = a.send(Method::PUT, "/admin/faults/openai/primary", Some(bad.clone())).await;
        assert_openai_error(&r, 400, "invalid_admin_request");
    }
    let r = a.send(Method::PUT, "/admin/faults/openai/nope", Some(json!({"hang": true}))).await;
    assert_openai_error(&r, 404, "deployment_not_found");
    let r = a.send(Method::DELETE, "/admin/faults/openai/%FF", None).await;
    assert_openai_error(&r, 400, "invalid_admin_request");
    for id in ["openai/primary", "anthropic/backup"] {
        let r = a.send(Method::PUT, &format!("/admin/faults/{id}"), Some(json!({"latency_ms": 5}))).await;
        assert_eq!(r.status, 200);
    }
    let r = a.send(Method::DELETE, "/admin/faults", None).await;
    assert_eq!(r.json()["cleared"], json!(["anthropic/backup", "openai/primary"]));
    assert_eq!(a.deployment("anthropic/backup").await["injected_fault"], Value::Null);
}

/// A webhook receiver on 127.0.0.1:0 that keeps every JSON body it gets.
async fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

fn alerts_yaml(url: &str, format: &str) -> String {
    format!("alerts:\n  webhook: \"{url}\"\n  format: {format}\n")
}

fn events(got: &Arc<Mutex<Vec<Value>>>) -> Vec<Value> {
    got.lock().unwrap().clone()
}

/// Trips `openai/primary` through an injected fault, then lets it recover.
async fn incident(env: &Env) {
    let a = admin(env, None);
    a.send(Method::PUT, "/admin/faults/openai/primary", Some(json!({"status": 503}))).await;
    for _ in 0..3 {
        env.chat(openai_body("r")).await;
    }
    a.send(Method::DELETE, "/admin/faults/openai/primary", None).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(env.chat(openai_body("r")).await.served_by(), "openai/primary");
}

#[tokio::test]
async fn alerts_post_json_events_to_the_webhook() {
    let (url, got) = webhook().await;
    let breaker = "consecutive_failures: 3, open_for: 300ms";
    let env = env_with(&two_step("primary", breaker, ""), &alerts_yaml(&url, "json")).await;
    incident(&env).await;
    let wanted = |e: &Value, event: &str| e["event"] == event && e["subject"] == "openai/primary";
    eventually(5, "a recovered alert", || async { events(&got).iter().any(|e| wanted(e, "recovered")) }).await;
    let evs = events(&got);
    let opened = evs.iter().position(|e| wanted(e, "breaker_opened")).expect("breaker_opened sent");
    let recovered = evs.iter().position(|e| wanted(e, "recovered")).unwrap();
    assert!(opened < recovered, "{evs:#?}");
    let e = &evs[opened];
    assert!(e["reason"].as_str().unwrap().contains("3 consecutive failures"), "{e}");
    assert!(humantime::parse_rfc3339(e["at"].as_str().unwrap()).is_ok(), "{e}");
    assert_eq!(e["suppressed"], 0);
    // The route's switch to its fallback and back is news too.
    assert!(evs.iter().any(|e| e["event"] == "fallback_started" && e["subject"] == "r"), "{evs:#?}");
    let m = env.client.get(format!("{}/metrics", env.gw.url())).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("understudy_alerts_sent_total{event=\"breaker_opened\"} 1"), "{m}");
    assert!(!m.contains(&url), "the webhook URL is a secret");
}

#[tokio::test]
async fn alerts_speak_slack() {
    let (url, got) = webhook().await;
    let breaker = "consecutive_failures: 3, open_for: 300ms";
    let env = env_with(&two_step("primary", breaker, ""), &alerts_yaml(&url, "slack")).await;
    incident(&env).await;
    let text = |e: &Value| e["text"].as_str().unwrap_or("").to_string();
    eventually(5, "a recovered alert", || async { events(&got).iter().any(|e| text(e).contains("recovered")) }).await;
    let evs = events(&got);
    for e in &evs {
        assert_eq!(e.as_object().unwrap().len(), 1, "only `text`: {e}");
    }
    assert!(evs.iter().any(|e| text(e).contains("circuit breaker opened for `openai/primary`")), "{evs:#?}");
    assert!(evs.iter().any(|e| text(e).contains("`openai/primary` recovered")), "{evs:#?}");
}

#[tokio::test]
async fn a_storm_sends_a_handful_of_alerts() {
    let (url, got) = webhook().await;
    // Every failure opens the breaker again: 50 failures, 50 breaker events.
    let breaker = "consecutive_failures: 1, open_for: 1ms, max_open_for: 1ms";
    let env = env_with(&two_step("primary+error=unavailable", breaker, ""), &alerts_yaml(&url, "json")).await;
    for _ in 0..50 {
        assert_eq!(env.chat(openai_body("r")).await.status, 200);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(env.upstream("primary") >= 40, "the breaker let the storm through: {}", env.upstream("primary"));
    eventually(5, "suppressed alerts in /metrics", || async {
        let m = env.client.get(format!("{}/metrics", env.gw.url())).send().await.unwrap().text().await.unwrap();
        metric(&m, "understudy_alerts_suppressed_total{event=\"breaker_opened\"}") >= 40.0
    })
    .await;
    let evs = events(&got);
    assert!(evs.len() <= 4, "an incident sends a handful of messages: {evs:#?}");
    assert_eq!(evs.iter().filter(|e| e["event"] == "breaker_opened").count(), 1, "{evs:#?}");

    // The next message that goes out says how many were held back.
    let r = admin(&env, None).send(Method::POST, "/admin/deployments/anthropic/backup/drain", None).await;
    assert_eq!(r.status, 200);
    eventually(5, "the drained alert", || async { events(&got).iter().any(|e| e["event"] == "drained") }).await;
    let drained = events(&got).into_iter().find(|e| e["event"] == "drained").unwrap();
    assert!(drained["suppressed"].as_u64().unwrap() >= 40, "{drained}");
}

#[tokio::test]
async fn an_unreachable_webhook_costs_callers_nothing() {
    let env = env_with(
        &two_step("primary+error=unavailable", "consecutive_failures: 1", ""),
        &alerts_yaml("http://127.0.0.1:9/hook/s3cret", "json"),
    )
    .await;
    for _ in 0..3 {
        let r = env.chat(openai_body("r")).await;
        assert_eq!(r.status, 200);
    }
    eventually(5, "a failed alert in /metrics", || async {
        let m = env.client.get(format!("{}/metrics", env.gw.url())).send().await.unwrap().text().await.unwrap();
        m.contains("understudy_alerts_failed_total")
    })
    .await;
}

#[tokio::test]
async fn probes_alone_open_and_close_the_breaker() {
    let probe = ", probe: { interval: 50ms, timeout: 1s }";
    let env = env(&two_step("primary", "open_for: 300ms, max_open_for: 600ms", probe)).await;
    let a = admin(&env, None);
    // Every deployment's breaker state is in /metrics from the start.
    let m = env.client.get(format!("{}/metrics", env.gw.url())).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("understudy_breaker_state{deployment=\"openai/primary\"} 0"), "{m}");
    assert!(m.contains("understudy_breaker_state{deployment=\"anthropic/backup\"} 0"), "{m}");

    // The provider's model listing (and everything else) starts failing.
    env.mock.set_fault("*", fault("error=unavailable"));
    eventually(10, "the probes to open the breaker", || async {
        a.deployment("openai/primary").await["breaker"]["state"] == "open"
    })
    .await;
    let d = a.deployment("openai/primary").await;
    assert!(d["breaker"]["reason"].as_str().unwrap().contains("consecutive failures"), "{d:#}");
    assert!(d["probe"]["failed"].as_u64().unwrap() >= 5, "{d:#}");
    assert_eq!(d["probe_config"]["kind"], "models");
    assert_eq!(d["probe_config"]["running"], true);
    assert_eq!(d["attempts"], 0, "no caller traffic");
    assert_eq!(env.upstream("primary"), 0);
    assert!(a.deployment("anthropic/backup").await["probe"].is_null(), "only configured probes run");

    env.mock.clear_faults();
    eventually(10, "the probes to close the breaker", || async {
        a.deployment("openai/primary").await["breaker"]["state"] == "closed"
    })
    .await;
    let d = a.deployment("openai/primary").await;
    assert_eq!(d["breaker"]["reason"], "probe succeeded");
    assert_eq!(d["probe"]["last_ok"], true);
    let m = env.client.get(format!("{}/metrics", env.gw.url())).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("understudy_probes_total{deployment=\"openai/primary\",outcome=\"overloaded\"}"), "{m}");
}

#[tokio::test]
async fn completion_probes_use_the_adapter_and_stop_with_the_server() {
    let probe = ", probe: { interval: 30ms, kind: completion }";
    let env = env(&two_step("primary", "", probe)).await;
    eventually(5, "completion probes", || async { env.upstream("primary") >= 3 }).await;
    let body = &env.recorded("primary")[0]["body"];
    assert_eq!(body["max_tokens"], 1, "{body}");
    assert_eq!(admin(&env, None).deployment("openai/primary").await["attempts"], 0);

    let Env { mock, gw, .. } = env;
    gw.shutdown().await;
    let seen = mock.stats().model("primary");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(mock.stats().model("primary"), seen, "no probe after shutdown");
}
