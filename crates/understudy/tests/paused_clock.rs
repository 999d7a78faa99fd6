//! The engine as a library, on tokio's paused clock: timeouts, hedges and Retry-After waits are
//! exact and instant to test, against the in-process mock over real loopback sockets.

use std::time::Duration;

use tokio::time::Instant;
use understudy::config::load_str;
use understudy::{CallOptions, Gateway, Reply};

async fn gateway(routes: &str) -> (Gateway, understudy_mock::MockHandle) {
    let mock = understudy_mock::start("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
    let url = mock.url();
    let yaml = format!(
        "providers:\n  openai: {{ kind: openai, base_url: \"{url}/v1\", api_key: k }}\n  anthropic: {{ kind: anthropic, base_url: \"{url}\", api_key: k }}\nroutes:\n{routes}"
    );
    let config = load_str(&yaml, "t.yaml").unwrap().config;
    (Gateway::new(&config), mock)
}

fn request(stream: bool) -> understudy::canonical::ChatRequest {
    let body = serde_json::json!({"model": "r", "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    understudy::wire::front::decode_request(understudy::canonical::Dialect::OpenAi, body.to_string().as_bytes())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_hedge_starts_after_its_delay_and_the_first_to_commit_wins() {
    let (gw, mock) = gateway(
        "  r:
    hedge: { delay: 1s }
    fallback_chain:
      - { provider: openai, model: \"primary+latency=30s\" }
      - { provider: anthropic, model: backup }
",
    )
    .await;
    let t0 = Instant::now();
    let h = gw.chat(&request(true), &CallOptions::default()).await;
    let took = t0.elapsed();
    assert!(matches!(h.result, Ok(Reply::Stream(_))));
    assert_eq!(h.trace.served_by.as_deref(), Some("anthropic/backup"));
    assert_eq!(h.trace.hedges, 1);
    // Virtual time: the hedge went out at exactly 1 s and answered at once.
    assert!(took >= Duration::from_secs(1) && took < Duration::from_millis(1100), "{took:?}");
    assert_eq!(mock.stats().model("primary"), 1);
}

#[tokio::test(start_paused = true)]
async fn the_first_token_limit_is_exact() {
    let (gw, _mock) = gateway(
        "  r:
    fallback_chain:
      - { provider: openai, model: \"primary+ttft=10s\", ttft_timeout: 2500ms }
      - { provider: anthropic, model: backup }
",
    )
    .await;
    let t0 = Instant::now();
    let h = gw.chat(&request(true), &CallOptions::default()).await;
    assert_eq!(h.trace.served_by.as_deref(), Some("anthropic/backup"));
    let first = &h.trace.attempts[0];
    assert_eq!(first.detail, Some("ttft"));
    assert!(t0.elapsed() >= Duration::from_millis(2500) && t0.elapsed() < Duration::from_millis(2600));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_out_exactly_when_nothing_else_answers() {
    let (gw, mock) = gateway(
        "  r:
    fallback_chain:
      - { provider: openai, model: primary }
      - { provider: anthropic, model: \"down+error=unavailable\", max_retries: 0 }
",
    )
    .await;
    mock.set_fault("primary", understudy_mock::Fault::parse("error=rate_limit+retry_after=7").unwrap());
    let m = mock.control();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        m.clear_fault("primary");
    });
    let t0 = Instant::now();
    let h = gw.chat(&request(false), &CallOptions::default()).await;
    assert_eq!(h.trace.served_by.as_deref(), Some("openai/primary"));
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(7) && took < Duration::from_millis(7100), "{took:?}");
}
