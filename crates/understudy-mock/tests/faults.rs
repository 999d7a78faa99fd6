//! Transport faults, timing (on tokio's paused clock), error_rate, fault precedence, lifecycle.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use tokio::time::Instant;
use understudy_mock::{Dialect, ErrorKind, Fault, MockConfig};

/// Waits (in virtual time when paused) until the server has no open connection.
async fn connections_drain(m: &understudy_mock::MockHandle) -> bool {
    for _ in 0..200 {
        if m.stats().open_connections == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(start_paused = true)]
async fn hang_never_answers_and_is_released_when_the_client_leaves() {
    let m = mock().await;
    let started = Instant::now();
    let result = client()
        .post(format!("{}/v1/chat/completions", m.url()))
        .bearer_auth("k")
        .timeout(Duration::from_secs(30))
        .json(&openai_body("gpt-4o+hang"))
        .send()
        .await;
    let err = result.expect_err("a hung request must not answer");
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert_eq!(m.stats().model("gpt-4o"), 1, "hung requests are counted");
    assert!(connections_drain(&m).await, "the server lets go once the client has gone");
}

#[tokio::test(start_paused = true)]
async fn hang_applies_to_streams_and_gemini_paths_too() {
    let m = mock().await;
    let req = client()
        .post(gemini_url(&m, "g+hang", true))
        .header("x-goog-api-key", "k")
        .timeout(Duration::from_secs(5))
        .json(&gemini_body());
    assert!(req.send().await.unwrap_err().is_timeout());
}

#[tokio::test]
async fn reset_drops_the_connection_before_headers() {
    let m = mock().await;
    for (i, model) in ["m+reset", "m+reset+latency=5ms"].into_iter().enumerate() {
        let result = client()
            .post(format!("{}/v1/chat/completions", m.url()))
            .bearer_auth("k")
            .json(&openai_body(model))
            .send()
            .await;
        let err = result.expect_err("a reset request must fail before headers");
        assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");
        let chain = format!("{:?}", anyhow_chain(&err));
        // A TCP RST (SO_LINGER 0), not an orderly close.
        assert!(chain.contains("Connection reset by peer"), "{chain}");
        assert_eq!(m.stats().model("m"), i as u64 + 1, "reset requests are counted");
    }
    // The server is still healthy afterwards.
    assert_eq!(openai(&m, &openai_body("m")).await.status(), 200);
}

fn anyhow_chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        out.push(s.to_string());
        source = s.source();
    }
    out
}

#[tokio::test(start_paused = true)]
async fn latency_delays_the_headers() {
    let m = mock().await;
    let started = Instant::now();
    let resp = anthropic(&m, &anthropic_body("claude-3-opus+latency=600ms")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(started.elapsed(), Duration::from_millis(600));

    let started = Instant::now();
    let resp = openai(&m, &openai_body("m+latency=12s+latency_jitter=500ms")).await;
    assert_eq!(resp.status(), 200);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(12) && took <= Duration::from_millis(12_500), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn ttft_and_chunk_delay_pace_the_stream() {
    let m = mock().await;
    let started = Instant::now();
    let resp = openai(&m, &with_stream(openai_body("m+ttft=2s+chunk_delay=100ms"))).await;
    assert_eq!(started.elapsed(), Duration::ZERO, "headers and the role chunk come at once");
    let mut stream = resp.bytes_stream();
    let mut arrivals = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = String::from_utf8(chunk.unwrap().to_vec()).unwrap();
        arrivals.push((started.elapsed().as_millis(), chunk.matches("\"content\":\"").count()));
    }
    // Role chunk (content ""), then one word at 2s and one every 100 ms after it.
    let content_times: Vec<u128> = arrivals.iter().filter(|(_, n)| *n > 0).map(|(t, _)| *t).collect();
    assert_eq!(content_times, [0, 2000, 2100, 2200, 2300], "{arrivals:?}");
}

#[tokio::test]
async fn error_rate_zero_and_one() {
    let m = mock().await;
    for _ in 0..20 {
        assert_eq!(openai(&m, &openai_body("m+error=server+error_rate=0")).await.status(), 200);
        assert_eq!(openai(&m, &openai_body("m+error=server+error_rate=1")).await.status(), 500);
    }
    // error_rate gates hangs, resets and stream breakages too.
    let (raw, err) = read_all(openai(&m, &with_stream(openai_body("m+cut_after=1+error_rate=0"))).await).await;
    assert!(err.is_none() && raw.ends_with("data: [DONE]\n\n"));
    assert_eq!(openai(&m, &openai_body("m+reset+hang+error_rate=0")).await.status(), 200);
}

#[tokio::test]
async fn error_rate_flaps() {
    let m = mock().await;
    m.set_fault("flaky", Fault { error: Some(ErrorKind::Overloaded), error_rate: Some(0.5), ..Fault::default() });
    let mut codes = std::collections::BTreeMap::new();
    for _ in 0..200 {
        *codes.entry(anthropic(&m, &anthropic_body("flaky")).await.status().as_u16()).or_insert(0) += 1;
    }
    assert_eq!(codes.keys().copied().collect::<Vec<_>>(), [200, 529], "{codes:?}");
    assert!(codes.values().all(|n| *n > 40), "{codes:?}");
}

#[tokio::test]
async fn fault_precedence_rule_then_star_then_suffix_then_default() {
    let default_fault = Fault::parse("error=unavailable").unwrap();
    let m = mock_with(MockConfig { default_fault, ..MockConfig::default() }).await;
    let status = |model: &'static str| {
        let m = &m;
        async move { openai(m, &openai_body(model)).await.status().as_u16() }
    };
    assert_eq!(status("m").await, 503, "server default");
    assert_eq!(status("m+error=server").await, 500, "suffix beats the default");
    m.set_fault("*", Fault::parse("error=rate_limit").unwrap());
    assert_eq!(status("m+error=server").await, 429, "`*` beats the suffix");
    m.set_fault("m", Fault::parse("error=forbidden").unwrap());
    assert_eq!(status("m+error=server").await, 403, "the model's rule beats `*`");
    assert_eq!(status("other").await, 429);
    m.clear_fault("m");
    assert_eq!(status("m").await, 429);
    m.clear_faults();
    assert_eq!(status("m+empty").await, 200);
    assert_eq!(status("m").await, 503);
}

#[tokio::test]
async fn model_listings_obey_the_star_rule() {
    let m = mock().await;
    m.set_fault("*", Fault::parse("error=server").unwrap());
    let resp = client().get(format!("{}/v1beta/models", m.url())).header("x-goog-api-key", "k").send().await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(m.stats().dialect(Dialect::Gemini), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_hung_connections() {
    let m = mock().await;
    let url = m.url();
    let pending = tokio::spawn(async move {
        client().post(format!("{url}/v1/chat/completions")).bearer_auth("k").json(&openai_body("m+hang")).send().await
    });
    while m.stats().total == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    m.shutdown().await;
    let err = pending.await.unwrap().expect_err("the hung request ends when the server stops");
    assert!(!err.is_timeout());
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let m = mock().await;
    let url = m.url();
    assert_eq!(openai(&m, &openai_body("m")).await.status(), 200);
    drop(m);
    let mut refused = false;
    for _ in 0..100 {
        let fresh = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build().unwrap();
        if fresh.get(format!("{url}/v1/models")).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused);
}
