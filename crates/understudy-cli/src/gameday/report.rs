//! The game day's report: Markdown (with links to the plots), a compact table for stdout, and
//! the numbers as JSON.

use std::fmt::Write;

use super::scenarios::{config_yaml, real, Mode, Scenario, Timeline, FALLBACK, LAST_RESORT, PRIMARY};
use super::summary::{PhaseStats, Summary};
use super::Gameday;

/// Milliseconds, readable: `87 ms`, `1.24 s`.
fn ms(v: f64) -> String {
    if v < 1000.0 {
        format!("{v:.0} ms")
    } else {
        format!("{:.2} s", v / 1000.0)
    }
}

fn secs(v: Option<f64>, none: &str) -> String {
    v.map(|s| ms(s * 1000.0)).unwrap_or_else(|| none.to_string())
}

/// Real-world milliseconds next to their scaled value.
fn both(real_ms: u64, t: &Timeline) -> String {
    format!("{} | {}", ms(real_ms as f64), ms(t.d(real_ms).as_secs_f64() * 1000.0))
}

/// The compact table printed at the end (incident-phase numbers).
pub fn table(summaries: &[Summary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:<11} {:>5} {:>6} {:>8} {:>8} {:>8} {:>7} {:>8} {:>9}",
        "scenario", "mode", "req", "ok%", "p50", "p95", "p99", "up/req", "primary", "back on"
    );
    for s in summaries {
        let i = &s.incident;
        let _ = writeln!(
            out,
            "{:<20} {:<11} {:>5} {:>6.1} {:>8} {:>8} {:>8} {:>7.2} {:>8} {:>9}",
            s.scenario.slug(),
            s.mode.as_str(),
            i.requests,
            i.success_rate,
            ms(i.p50_ms),
            ms(i.p95_ms),
            ms(i.p99_ms),
            s.incident_amplification,
            s.primary_attempts_incident,
            secs(s.back_on_primary_after_s, "never"),
        );
    }
    out.push_str(
        "(during the incident: requests, success, latency, upstream requests per request, requests the sick \
         primary received; then time from recovery to the first answer from the primary)",
    );
    out
}

pub fn markdown(g: &Gameday) -> String {
    let t = &g.timeline;
    let mut out = String::new();
    let modes: Vec<Mode> = {
        let mut m: Vec<Mode> = g.summaries.iter().map(|s| s.mode).collect();
        m.sort();
        m.dedup();
        m
    };
    let _ = writeln!(out, "# understudy game day\n");
    let _ = writeln!(
        out,
        "{} scenario(s) in {} mode(s) ({}), played against simulated providers (the built-in mock) through a \
         real gateway started in the same process. {} clients send requests in a loop to `POST \
         /v1/chat/completions` (route `smart`; every third request streams). Each run starts a fresh mock and \
         gateway, so no health state carries over. Time scale **{}** (see below); wall time {:.0} s.\n",
        g.summaries.len() / modes.len().max(1),
        modes.len(),
        modes.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(" and "),
        g.clients,
        t.scale,
        g.wall.as_secs_f64()
    );
    out.push_str("The route: `openai/gpt-4o` (primary) -> `anthropic/claude-sonnet-4-5` (fallback) -> ");
    out.push_str("`gemini/gemini-2.5-flash` (last resort). The incident always hits the primary.\n\n");
    summary_table(&mut out, &g.summaries);
    time_scale(&mut out, t);
    configuration(&mut out);
    let mut scenarios: Vec<Scenario> = g.summaries.iter().map(|s| s.scenario).collect();
    scenarios.dedup();
    let _ = writeln!(out, "## Scenarios\n");
    for (n, sc) in scenarios.iter().enumerate() {
        let runs: Vec<&Summary> = g.summaries.iter().filter(|s| s.scenario == *sc).collect();
        scenario_section(&mut out, n + 1, *sc, &runs, t);
    }
    out
}

fn summary_table(out: &mut String, summaries: &[Summary]) {
    out.push_str(
        "## Summary\n\nAll numbers are for the requests sent **during the incident**, except the last column.\n\n",
    );
    out.push_str("| scenario | mode | requests | ok % | p50 | p95 | p99 | upstream / request | requests on the sick primary | primary out of rotation after | back on primary after recovery |\n");
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for s in summaries {
        let i = &s.incident;
        let _ = writeln!(
            out,
            "| [{}](#{}) | {} | {} | {:.1} | {} | {} | {} | {:.2} | {} | {} | {} |",
            s.scenario.slug(),
            s.scenario.slug(),
            s.mode,
            i.requests,
            i.success_rate,
            ms(i.p50_ms),
            ms(i.p95_ms),
            ms(i.p99_ms),
            s.incident_amplification,
            s.primary_attempts_incident,
            secs(s.out_of_rotation_after_s, "never"),
            secs(s.back_on_primary_after_s, "not within the run"),
        );
    }
    out.push_str(
        "\n*upstream / request*: requests every provider received (the mock's counters: retries, hedges, \
         fallbacks and probes included) divided by client requests. *Out of rotation*: the first request \
         that skipped the primary without calling it (breaker open, disabled, cooling down). *Back on \
         primary*: from the recovery to the first complete answer served by the primary.\n\n",
    );
}

fn time_scale(out: &mut String, t: &Timeline) {
    let _ = writeln!(
        out,
        "## Time scale\n\nEvery duration was multiplied by **{}** so that the game day fits in minutes: phases, \
         provider latencies, Retry-After, and every timeout, breaker, budget and hedge setting alike, so \
         their proportions are the real ones. Two exceptions: `connect_timeout` is never below 250 ms, and the \
         retry budget's `min_per_sec` (a per-second floor) is raised by 1/scale to keep the same floor per \
         window.\n",
        t.scale
    );
    out.push_str("| what | real world | this run |\n|---|--:|--:|\n");
    let rows: [(&str, u64); 17] = [
        ("baseline phase", real::BASELINE),
        ("incident phase", real::INCIDENT),
        ("recovery phase", real::RECOVERY),
        ("primary latency (plus up to 100 ms jitter)", real::PRIMARY),
        ("fallback latency (plus jitter)", real::FALLBACK),
        ("last resort latency (plus jitter)", real::LAST_RESORT),
        ("latency during the spike", real::SPIKE),
        ("Retry-After during the 429 storm", real::RETRY_AFTER),
        ("request deadline", real::DEADLINE),
        ("primary `timeout` (whole attempt)", real::PRIMARY_TIMEOUT),
        ("`ttft_timeout: auto` floor (ceiling 3 s, 3 x p95)", real::TTFT_FLOOR),
        ("breaker `open_for` (doubles on a failed probe)", real::OPEN_FOR),
        ("breaker `max_open_for`", real::MAX_OPEN_FOR),
        ("breaker `window`", real::BREAKER_WINDOW),
        ("hedge `delay`", real::HEDGE_DELAY),
        ("`disable_for` after an auth failure (built-in default 1 h)", real::DISABLE_FOR),
        ("retry budget `ttl`", real::BUDGET_TTL),
    ];
    for (what, v) in rows {
        let _ = writeln!(out, "| {what} | {} |", both(v, t));
    }
    let _ = writeln!(out, "| retry budget `min_per_sec` | 1 | {} |\n", t.budget_min_per_sec());
}

fn configuration(out: &mut String) {
    let yaml = config_yaml("http://127.0.0.1:9000", Mode::Protected, &Timeline::new(1.0));
    let _ = writeln!(
        out,
        "## Configuration\n\n**Protected** (real-world durations; the runs used each times the scale). The breaker \
         trips on 5 consecutive failures, or when 20% of at least 10 requests in its 5 s window failed; the hedge starts the \
         fallback when the primary has not answered after 1.5 s (2.5 x its normal latency):\n\n```yaml\n{yaml}```\n\n\
         **Unprotected**: the same routes and timeouts, with `breaker: {{ enabled: false }}`, \
         `retry_budget: {{ enabled: false }}` and no `hedge`. Timeouts, `max_retries: 1` and Retry-After \
         cooldowns are the same in both modes.\n"
    );
}

fn scenario_section(out: &mut String, n: usize, sc: Scenario, runs: &[&Summary], t: &Timeline) {
    let _ = writeln!(out, "<a id=\"{}\"></a>\n### {n}. {}\n", sc.slug(), sc.title());
    let _ = writeln!(out, "During the incident {}", sc.about());
    let _ = writeln!(out, "Mock fault on the primary: `{}`.\n", sc.incident_fault(t));
    let _ = writeln!(out, "![{}]({}.svg)\n", sc.title(), sc.slug());
    out.push_str("| mode | phase | requests | ok % | p50 | p95 | p99 | served by primary / fallback / last resort |\n");
    out.push_str("|---|---|--:|--:|--:|--:|--:|---|\n");
    for s in runs {
        let phases: [(&str, &PhaseStats); 4] =
            [("baseline", &s.baseline), ("incident", &s.incident), ("recovery", &s.recovery), ("whole run", &s.whole)];
        for (name, p) in phases {
            let served = |d: &str| p.served.get(d).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "| {} | {name} | {} | {:.1} | {} | {} | {} | {} / {} / {} |",
                s.mode,
                p.requests,
                p.success_rate,
                ms(p.p50_ms),
                ms(p.p95_ms),
                ms(p.p99_ms),
                served(PRIMARY),
                served(FALLBACK),
                served(LAST_RESORT)
            );
        }
    }
    out.push_str("\n| mode | upstream / request (baseline) | upstream / request (run) | upstream / request (incident) | requests on the sick primary | first fallback answer after | primary out of rotation after | back on primary after recovery | primary share at the end |\n");
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for s in runs {
        let _ = writeln!(
            out,
            "| {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {:.0}% |",
            s.mode,
            s.baseline_amplification,
            s.amplification,
            s.incident_amplification,
            s.primary_attempts_incident,
            secs(s.failover_after_s, "never"),
            secs(s.out_of_rotation_after_s, "never"),
            secs(s.back_on_primary_after_s, "not within the run"),
            s.primary_share_end * 100.0
        );
    }
    if let Some(note) = sc.note() {
        let _ = writeln!(out, "\n{note}");
    }
    if let Some(text) = comparison(runs) {
        let _ = writeln!(out, "\n{text}");
    }
    out.push('\n');
}

/// One sentence on what protection bought, when both modes ran.
fn comparison(runs: &[&Summary]) -> Option<String> {
    let p = runs.iter().find(|s| s.mode == Mode::Protected)?;
    let u = runs.iter().find(|s| s.mode == Mode::Unprotected)?;
    let pair = |a: String, b: String| if a == b { format!("{a} in both modes") } else { format!("{a} instead of {b}") };
    Some(format!(
        "Protected vs unprotected, during the incident: requests on the sick primary {}; upstream requests \
         per request {}; success {}; p95 {}. Traffic returned to the primary {} after recovery ({} \
         unprotected).",
        pair(p.primary_attempts_incident.to_string(), u.primary_attempts_incident.to_string()),
        pair(format!("{:.2}", p.incident_amplification), format!("{:.2}", u.incident_amplification)),
        pair(format!("{:.1}%", p.incident.success_rate), format!("{:.1}%", u.incident.success_rate)),
        pair(ms(p.incident.p95_ms), ms(u.incident.p95_ms)),
        secs(p.back_on_primary_after_s, "not within the run"),
        secs(u.back_on_primary_after_s, "not within the run"),
    ))
}

/// Every request of every run, one line each.
pub fn csv(runs: &[super::Run]) -> String {
    let mut out = String::from("scenario,mode,start_s,latency_ms,ok,stream,served_by,primary_skipped\n");
    for r in runs {
        for s in &r.samples {
            let _ = writeln!(
                out,
                "{},{},{:.4},{:.1},{},{},{},{}",
                r.scenario.slug(),
                r.mode,
                s.start,
                s.latency_ms,
                s.ok,
                s.stream,
                s.served_by.as_deref().unwrap_or(""),
                s.primary_skipped
            );
        }
    }
    out
}

/// Every number of the report, for machines.
pub fn json(g: &Gameday) -> serde_json::Value {
    serde_json::json!({
        "scale": g.timeline.scale,
        "clients": g.clients,
        "wall_secs": g.wall.as_secs_f64(),
        "runs": g.summaries,
    })
}
