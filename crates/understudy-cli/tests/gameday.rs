//! A whole game day, time-scaled to run in about 20 s: every scenario in both modes, then the
//! shape of the results (bounds are generous: this must hold on a loaded 2-core machine) and
//! the files of the report.

use std::path::Path;

use understudy_cli::gameday::scenarios::{FALLBACK, LAST_RESORT};
use understudy_cli::gameday::{self, Gameday, Mode, Options, Scenario, Summary};

fn served_by_backups(s: &Summary) -> usize {
    [FALLBACK, LAST_RESORT].iter().map(|d| s.incident.served.get(*d).copied().unwrap_or(0)).sum()
}

fn protected_shape(g: &Gameday, sc: Scenario) {
    let p = g.summary(sc, Mode::Protected).unwrap();
    assert!(p.incident.requests >= 20, "{sc}: too little traffic to judge: {}", p.incident.requests);
    if sc == Scenario::StreamCut {
        // Past the commit point a cut cannot be hidden (see the scenario's note): only streams may
        // fail, and never more often than without protection.
        let run = g.runs.iter().find(|r| r.scenario == sc && r.mode == Mode::Protected).unwrap();
        assert!(run.samples.iter().filter(|s| !s.ok).all(|s| s.stream), "{sc}: a plain request failed");
        let u = g.summary(sc, Mode::Unprotected).unwrap();
        assert!(u.incident.success_rate < 90.0, "{sc}: unprotected callers should see the cut streams");
        assert!(p.incident.success_rate >= u.incident.success_rate, "{sc}: {p:?}\nvs {u:?}");
    } else {
        assert!(p.incident.success_rate >= 99.0, "{sc}: {:?}", p.incident);
        assert!(p.whole.success_rate >= 99.0, "{sc}: {:?}", p.whole);
        assert!(served_by_backups(p) > 0, "{sc}: nothing served by a fallback: {:?}", p.incident.served);
    }
    assert!(p.amplification <= 1.3, "{sc}: {} upstream requests per request", p.amplification);
    assert!(p.incident_amplification <= 1.6, "{sc}: {} during the incident", p.incident_amplification);
    assert!(p.back_on_primary_after_s.is_some(), "{sc}: traffic never returned to the primary");
    assert!(p.primary_share_end >= 0.5, "{sc}: the primary served {} at the end", p.primary_share_end);
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
    let opts = Options { out: out.clone(), scale: 0.02, quiet: true, ..Options::default() };
    let g = gameday::run(&opts).await.unwrap();
    assert_eq!(g.summaries.len(), Scenario::ALL.len() * 2);

    for sc in Scenario::ALL {
        protected_shape(&g, sc);
    }

    // The dead primary saw a handful of probes while protected, the traffic while not.
    let p = g.summary(Scenario::HardDown, Mode::Protected).unwrap();
    let u = g.summary(Scenario::HardDown, Mode::Unprotected).unwrap();
    assert!(
        p.primary_attempts_incident <= 30,
        "protected: {} requests on the dead primary",
        p.primary_attempts_incident
    );
    assert!(u.primary_attempts_incident >= 40, "unprotected: {}", u.primary_attempts_incident);
    assert!(
        u.primary_attempts_incident >= 3 * p.primary_attempts_incident,
        "{} vs {}",
        u.primary_attempts_incident,
        p.primary_attempts_incident
    );
    assert!(u.incident_amplification >= 1.8, "unprotected retries and fails over: {}", u.incident_amplification);
    assert!(p.out_of_rotation_after_s.is_some() && u.out_of_rotation_after_s.is_none());

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
    assert!(report.contains("## Time scale") && report.contains("0.02"));
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
        Options { modes: vec![], ..Options::default() },
    ];
    for opts in bad {
        assert!(gameday::run(&opts).await.is_err(), "{opts:?}");
    }
}
