//! A whole game day, time-scaled to run in about 17 s: every scenario in both modes, four runs
//! at a time, then the shape of the results (bounds are generous: this must hold on a loaded
//! 2-core machine) and the files of the report.

use std::path::Path;

use understudy_cli::gameday::scenarios::{FALLBACK, LAST_RESORT};
use understudy_cli::gameday::{self, Gameday, Mode, Options, Scenario, Summary};

fn served_by_backups(s: &Summary) -> usize {
    [FALLBACK, LAST_RESORT].iter().map(|d| s.incident.served.get(*d).copied().unwrap_or(0)).sum()
}

const SCALE: f64 = 0.08;

/// Whether the machine kept up with the scaled timings: before the incident, the healthy primary
/// (600 ms real-world, 48 ms here) answered within three times its latency. On a starved machine
/// scheduling delays alone exceed the scaled timeouts, so even the healthy baseline fails over,
/// and the timing-based bounds below would judge the machine, not the gateway.
fn kept_up(s: &Summary) -> bool {
    let ok = s.baseline.p50_ms <= 3.0 * 600.0 * SCALE;
    if !ok {
        eprintln!(
            "{}: the machine is too loaded to judge timing (baseline p50 {:.0} ms)",
            s.scenario, s.baseline.p50_ms
        );
    }
    ok
}

fn protected_shape(g: &Gameday, sc: Scenario) {
    let p = g.summary(sc, Mode::Protected).unwrap();
    assert!(p.incident.requests >= 10, "{sc}: too little traffic to judge: {}", p.incident.requests);
    if sc == Scenario::StreamCut {
        // Protected, a cut stream resumes on the next candidate (`stream_failure: continue`);
        // unprotected, the caller sees the in-band error.
        let u = g.summary(sc, Mode::Unprotected).unwrap();
        assert!(u.incident.success_rate < 90.0, "{sc}: unprotected callers should see the cut streams");
        assert!(p.incident.success_rate >= 99.0, "{sc}: {:?}", p.incident);
    } else {
        assert!(p.incident.success_rate >= 99.0, "{sc}: {:?}", p.incident);
        assert!(p.whole.success_rate >= 99.0, "{sc}: {:?}", p.whole);
        assert!(served_by_backups(p) > 0, "{sc}: nothing served by a fallback: {:?}", p.incident.served);
    }
    assert!(p.back_on_primary_after_s.is_some(), "{sc}: traffic never returned to the primary");
    if !kept_up(p) {
        return;
    }
    assert!(p.amplification <= 1.3, "{sc}: {} upstream requests per request\n{p:?}", p.amplification);
    // A slow or hung primary is hedged (at most one extra call per request) until the retry
    // budget's floor is spent or the breaker opens: how long that takes depends on the traffic.
    let bound = if matches!(sc, Scenario::LatencySpike | Scenario::Hung) { 2.0 } else { 1.6 };
    assert!(p.incident_amplification <= bound, "{sc}: {} during the incident\n{p:?}", p.incident_amplification);
    assert!(p.primary_share_end >= 0.5, "{sc}: the primary served {} at the end\n{p:?}", p.primary_share_end);
}

fn svg_ok(path: &Path) {
    let svg = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(svg.starts_with("<svg"), "{}", path.display());
    assert!(svg.trim_end().ends_with("</svg>"), "{}", path.display());
    for marker in ["class=\"marker incident\"", "class=\"marker recovery\"", "class=\"marker failover\"", "<circle"] {
        assert!(svg.contains(marker), "{}: no {marker}", path.display());
    }
    assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
    assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_scaled_gameday_shows_what_protection_buys() {
    let out = std::env::temp_dir().join(format!("understudy-gameday-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // At this scale the primary answers in about 50 ms and its timeout is 240 ms.
    let opts = Options { out: out.clone(), scale: SCALE, clients: 4, jobs: 4, quiet: true, ..Options::default() };
    let g = gameday::run(&opts).await.unwrap();
    assert_eq!(g.summaries.len(), Scenario::ALL.len() * 2);
    // Shown when an assertion fails.
    println!("{}", gameday::report::table(&g.summaries));

    for sc in Scenario::ALL {
        protected_shape(&g, sc);
    }

    // The dead primary saw a handful of probes while protected, the traffic while not.
    let p = g.summary(Scenario::HardDown, Mode::Protected).unwrap();
    let u = g.summary(Scenario::HardDown, Mode::Unprotected).unwrap();
    let (pa, ua) = (p.primary_attempts_incident, u.primary_attempts_incident);
    assert!(pa <= 30, "protected: {pa} requests on the dead primary");
    assert!(ua as f64 >= 0.9 * u.incident.requests as f64, "unprotected: {ua} for {} requests", u.incident.requests);
    assert!(ua >= 2 * pa && ua >= 20, "{ua} vs {pa}");
    assert!(p.out_of_rotation_after_s.is_some() && u.out_of_rotation_after_s.is_none());
    if kept_up(u) {
        assert!(u.incident_amplification >= 1.8, "unprotected retries and fails over: {}", u.incident_amplification);
    }

    // The same for a deactivated account: out of rotation at once.
    let p = g.summary(Scenario::AccountDeactivated, Mode::Protected).unwrap();
    let u = g.summary(Scenario::AccountDeactivated, Mode::Unprotected).unwrap();
    assert!(p.primary_attempts_incident <= 15, "{}", p.primary_attempts_incident);
    assert!(u.primary_attempts_incident as usize >= u.incident.requests / 2, "{}", u.primary_attempts_incident);

    // The files.
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for sc in Scenario::ALL {
        assert!(report.contains(&format!("]({}.svg)", sc.slug())), "report does not link {sc}");
        assert!(
            report.contains(&format!("| [{}](#{}) | protected |", sc.slug(), sc.slug())),
            "no summary row for {sc}"
        );
        svg_ok(&out.join(format!("{}.svg", sc.slug())));
    }
    assert!(report.contains("## Time scale") && report.contains("**0.08**"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["runs"].as_array().map(Vec::len), Some(16));
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test]
async fn bad_options_are_refused_before_anything_starts() {
    let bad = [
        Options { scale: 0.0, ..Options::default() },
        Options { scale: 2.0, ..Options::default() },
        Options { clients: 0, ..Options::default() },
        Options { jobs: 0, ..Options::default() },
        Options { modes: vec![], ..Options::default() },
    ];
    for opts in bad {
        assert!(gameday::run(&opts).await.is_err(), "{opts:?}");
    }
}
