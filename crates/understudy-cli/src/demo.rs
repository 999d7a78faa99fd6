//! `understudy demo`: the embedded default. Starts simulated providers (the built-in mock) and
//! a gateway in this process, sends steady traffic through it, then breaks the primary the way
//! real incidents do (account deactivated, then a latency spike from 600 ms to 12 s, then
//! recovery) and shows, second by second, the success rate, latency and who served.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use understudy_mock::{Fault, MockConfig};

const PRIMARY_MODEL: &str = "gpt-4o";

/// The demo's configuration: an OpenAI primary, an Anthropic backup, a Gemini last resort,
/// all simulated by one mock provider.
pub fn demo_config(mock_url: &str) -> String {
    format!(
        r#"server:
  listen: 127.0.0.1:0
providers:
  openai:    {{ kind: openai,    base_url: "{mock_url}/v1",     api_key: demo-openai-key }}
  anthropic: {{ kind: anthropic, base_url: "{mock_url}",        api_key: demo-anthropic-key }}
  gemini:    {{ kind: gemini,    base_url: "{mock_url}/v1beta", api_key: demo-gemini-key }}
defaults:
  connect_timeout: 1s
routes:
  smart:
    deadline: 20s
    fallback_chain:
      - {{ provider: openai,    model: {PRIMARY_MODEL},   priority: 1, timeout: 2s, ttft_timeout: 2s }}
      - {{ provider: anthropic, model: claude-sonnet-4-5, priority: 2, timeout: 10s }}
      - {{ provider: gemini,    model: gemini-2.5-flash,  priority: 3, timeout: 10s }}
"#
    )
}

struct Phase {
    name: &'static str,
    /// Fault for the primary, in mock syntax; `None` = healthy.
    fault: Option<&'static str>,
}

const PHASES: [Phase; 4] = [
    Phase { name: "healthy", fault: Some("latency=600ms") },
    Phase { name: "account deactivated (401)", fault: Some("error=account_deactivated") },
    Phase { name: "latency spike 600ms -> 12s", fault: Some("latency=12s") },
    Phase { name: "recovered", fault: Some("latency=600ms") },
];

#[derive(Clone, Debug)]
struct Sample {
    at: Duration,
    phase: usize,
    latency: Duration,
    ok: bool,
    served_by: String,
}

pub async fn run(phase_secs: u64) -> ExitCode {
    let phase_len = Duration::from_secs(phase_secs.max(2));
    let mock =
        match understudy_mock::start("127.0.0.1:0".parse().expect("literal address"), MockConfig::default()).await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("demo: cannot start the mock provider: {e}");
                return ExitCode::FAILURE;
            }
        };
    // The backups answer a little slower than the healthy primary, so the switch is visible.
    for (model, spec) in [("claude-sonnet-4-5", "latency=900ms"), ("gemini-2.5-flash", "latency=1100ms")] {
        if let Ok(f) = Fault::parse(spec) {
            mock.set_fault(model, f);
        }
    }
    let yaml = demo_config(&mock.url());
    let loaded = match understudy::config::load_str(&yaml, "<demo>") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let gw = match crate::server::start(&loaded.config, "127.0.0.1:0".parse().expect("literal address")).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("understudy demo: mock providers at {}, gateway at {}", mock.url(), gw.url());
    println!(
        "route `smart`: openai/{PRIMARY_MODEL} (timeout 2s) -> anthropic/claude-sonnet-4-5 -> gemini/gemini-2.5-flash"
    );
    println!(
        "{} phases of {}s, 6 clients in a loop (every third request streams)\n",
        PHASES.len(),
        phase_len.as_secs()
    );

    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let phase_now = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let total = phase_len * PHASES.len() as u32;
    let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap_or_default();
    let mut workers = Vec::new();
    for w in 0..6 {
        let (client, url, samples, phase_now) = (client.clone(), gw.url(), samples.clone(), phase_now.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < total {
                n += 1;
                let stream = (n + w).is_multiple_of(3);
                let phase = phase_now.load(std::sync::atomic::Ordering::Relaxed);
                let t0 = Instant::now();
                let (ok, served_by) = one_request(&client, &url, stream).await;
                let s = Sample { at: start.elapsed(), phase, latency: t0.elapsed(), ok, served_by };
                samples.lock().unwrap_or_else(|p| p.into_inner()).push(s);
            }
        }));
    }

    println!("{:>5}  {:<28} {:>6} {:>8} {:>8}   served by", "t", "phase", "ok%", "p50", "max");
    let mut shown = 0usize;
    for (i, phase) in PHASES.iter().enumerate() {
        phase_now.store(i, std::sync::atomic::Ordering::Relaxed);
        match phase.fault.map(Fault::parse) {
            Some(Ok(f)) => mock.set_fault(PRIMARY_MODEL, f),
            _ => mock.clear_fault(PRIMARY_MODEL),
        }
        let phase_end = start.elapsed() + phase_len;
        while start.elapsed() < phase_end {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let all = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let fresh = &all[shown.min(all.len())..];
            shown = all.len();
            println!("{}", line(start.elapsed(), phase.name, fresh));
        }
    }
    for w in workers {
        let _ = w.await;
    }
    let all = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    println!("\nsummary");
    println!("{:<28} {:>8} {:>7} {:>8} {:>8}   served by", "phase", "requests", "ok%", "p50", "p95");
    for (i, phase) in PHASES.iter().enumerate() {
        let s: Vec<Sample> = all.iter().filter(|s| s.phase == i).cloned().collect();
        let (ok, p50, p95, _) = stats(&s);
        println!("{:<28} {:>8} {:>6.1}% {:>8} {:>8}   {}", phase.name, s.len(), ok, ms(p50), ms(p95), served(&s));
    }
    let stats_json = serde_json::to_string(&mock.stats()).unwrap_or_default();
    println!("\nupstream requests seen by the mock: {stats_json}");
    let failed = all.iter().filter(|s| !s.ok).count();
    println!("{} requests, {} failed. The primary's incidents cost callers latency, not errors.", all.len(), failed);
    gw.shutdown().await;
    mock.shutdown().await;
    let _ = Duration::ZERO;
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn one_request(client: &reqwest::Client, url: &str, stream: bool) -> (bool, String) {
    let body = serde_json::json!({
        "model": "smart",
        "messages": [{"role": "user", "content": "Say hello."}],
        "stream": stream,
    });
    let resp = match client.post(format!("{url}/v1/chat/completions")).json(&body).send().await {
        Ok(r) => r,
        Err(_) => return (false, "-".into()),
    };
    let served = resp.headers().get("x-understudy-served-by").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
    let ok = resp.status().is_success();
    match resp.text().await {
        // A stream only counts when it finished cleanly.
        Ok(t) => (ok && (!stream || t.contains("[DONE]")), served),
        Err(_) => (false, served),
    }
}

fn stats(s: &[Sample]) -> (f64, Duration, Duration, Duration) {
    if s.is_empty() {
        return (0.0, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    }
    let ok = s.iter().filter(|x| x.ok).count() as f64 * 100.0 / s.len() as f64;
    let mut l: Vec<Duration> = s.iter().map(|x| x.latency).collect();
    l.sort();
    let q = |p: f64| l[((l.len() - 1) as f64 * p).round() as usize];
    (ok, q(0.5), q(0.95), q(1.0))
}

fn served(s: &[Sample]) -> String {
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for x in s {
        *by.entry(x.served_by.as_str()).or_default() += 1;
    }
    by.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

fn line(t: Duration, phase: &str, fresh: &[Sample]) -> String {
    if fresh.is_empty() {
        return format!("{:>4}s  {:<28} {:>6} {:>8} {:>8}   (waiting for answers)", t.as_secs(), phase, "-", "-", "-");
    }
    let (ok, p50, _, max) = stats(fresh);
    let _ = fresh.iter().map(|s| s.at).max();
    format!("{:>4}s  {:<28} {:>5.0}% {:>8} {:>8}   {}", t.as_secs(), phase, ok, ms(p50), ms(max), served(fresh))
}
