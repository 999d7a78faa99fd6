//! Latency over time as SVG, written by hand: one panel per mode, one dot per request (colour =
//! the deployment that served it, a red cross when it failed), the incident shaded, and vertical
//! markers at the incident, the failover, the primary leaving rotation, the recovery and the
//! primary's return.

use std::fmt::Write;

use super::run::Run;
use super::scenarios::{Scenario, FALLBACK, LAST_RESORT, PRIMARY};
use super::summary::Summary;
use super::traffic::Sample;

const WIDTH: f64 = 960.0;
const PANEL: f64 = 300.0;
const HEADER: f64 = 44.0;
const LEGEND: f64 = 40.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 24.0;
/// Inside a panel: room for the title and marker labels above, tick labels below.
const TOP: f64 = 84.0;
const BOTTOM: f64 = 46.0;

const RED: &str = "#d62728";

/// (deployment, label, colour)
const DEPLOYMENTS: [(&str, &str, &str); 3] =
    [(PRIMARY, "primary", "#1f77b4"), (FALLBACK, "fallback", "#ff7f0e"), (LAST_RESORT, "last resort", "#2ca02c")];

/// Scales from data to pixels for one panel.
struct Frame {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    t_max: f64,
    ms_max: f64,
}

impl Frame {
    fn x(&self, t: f64) -> f64 {
        self.x0 + (t / self.t_max).clamp(0.0, 1.0) * self.w
    }

    fn y(&self, ms: f64) -> f64 {
        self.y0 + self.h - (ms / self.ms_max).clamp(0.0, 1.0) * self.h
    }
}

/// The SVG for one scenario's runs (one panel per mode).
pub fn svg(scenario: Scenario, runs: &[&Run]) -> String {
    let height = HEADER + PANEL * runs.len() as f64 + LEGEND;
    let t_max = axis_max(runs.iter().map(|r| r.end_at).fold(1.0, f64::max));
    let ms_max = axis_max(runs.iter().flat_map(|r| r.samples.iter().map(|s| s.latency_ms)).fold(10.0, f64::max));
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(out, r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#);
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="26" font-size="16" font-weight="bold">{}</text>"#,
        escape(&format!("{} ({})", scenario.title(), scenario.slug()))
    );
    for (i, run) in runs.iter().enumerate() {
        let top = HEADER + PANEL * i as f64;
        let f = Frame { x0: LEFT, y0: top + TOP, w: WIDTH - LEFT - RIGHT, h: PANEL - TOP - BOTTOM, t_max, ms_max };
        panel(&mut out, run, &f, top);
    }
    legend(&mut out, height - LEGEND + 16.0);
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, run: &Run, f: &Frame, top: f64) {
    let s = Summary::of(run);
    let title = format!(
        "{}: ok {:.1}% during the incident, {:.2} upstream requests per request, {} on the sick primary",
        run.mode, s.incident.success_rate, s.incident_amplification, s.primary_attempts_incident
    );
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="{:.1}" font-size="13" font-weight="bold">{}</text>"#,
        top + 18.0,
        escape(&title)
    );
    // The incident, shaded.
    let (xa, xb) = (f.x(run.incident_at), f.x(run.recovery_at));
    let _ = write!(
        out,
        r##"<rect class="incident-span" x="{xa:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#d62728" fill-opacity="0.06"/>"##,
        f.y0,
        (xb - xa).max(0.0),
        f.h
    );
    axes(out, f);
    for sample in &run.samples {
        point(out, f, sample);
    }
    let markers = [
        ("incident", Some(run.incident_at), RED, "6,4"),
        ("failover", s.failover_after_s.map(|d| run.incident_at + d), "#ff7f0e", "2,3"),
        ("out-of-rotation", s.out_of_rotation_after_s.map(|d| run.incident_at + d), "#9467bd", "2,3"),
        ("recovery", Some(run.recovery_at), "#2ca02c", "6,4"),
        ("back-on-primary", s.back_on_primary_after_s.map(|d| run.recovery_at + d), "#1f77b4", "2,3"),
    ];
    for (row, (name, at, colour, dash)) in markers.into_iter().enumerate() {
        if let Some(at) = at {
            marker(out, f, name, at, colour, dash, row);
        }
    }
}

fn axes(out: &mut String, f: &Frame) {
    let (x1, y1) = (f.x0 + f.w, f.y0 + f.h);
    let _ = write!(
        out,
        r##"<g stroke="#333" stroke-width="1"><line x1="{:.1}" y1="{y1:.1}" x2="{x1:.1}" y2="{y1:.1}"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{y1:.1}"/></g>"##,
        f.x0, f.x0, f.y0, f.x0
    );
    for t in ticks(f.t_max) {
        let x = f.x(t);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="{y1:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            y1 + 4.0,
            y1 + 17.0,
            trim(t)
        );
    }
    for ms in ticks(f.ms_max) {
        let y = f.y(ms);
        let _ = write!(
            out,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            f.x0,
            f.x0 - 6.0,
            y + 4.0,
            trim(ms)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time since the run started (s)</text>"#,
        f.x0 + f.w / 2.0,
        y1 + 34.0
    );
    let (lx, ly) = (f.x0 - 52.0, f.y0 + f.h / 2.0);
    let _ = write!(
        out,
        r#"<text x="{lx:.1}" y="{ly:.1}" text-anchor="middle" transform="rotate(-90 {lx:.1} {ly:.1})">latency (ms)</text>"#
    );
}

fn point(out: &mut String, f: &Frame, s: &Sample) {
    let (x, y) = (f.x(s.start), f.y(s.latency_ms));
    if !s.ok {
        let _ = write!(
            out,
            r#"<path class="failed" d="M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}" stroke="{RED}" stroke-width="1.5"/>"#,
            x - 3.0,
            y - 3.0,
            x + 3.0,
            y + 3.0,
            x - 3.0,
            y + 3.0,
            x + 3.0,
            y - 3.0
        );
        return;
    }
    let colour =
        DEPLOYMENTS.iter().find(|(d, _, _)| s.served_by.as_deref() == Some(*d)).map(|d| d.2).unwrap_or("#7f7f7f");
    let _ = write!(out, r#"<circle cx="{x:.1}" cy="{y:.1}" r="2" fill="{colour}" fill-opacity="0.7"/>"#);
}

#[allow(clippy::too_many_arguments)]
fn marker(out: &mut String, f: &Frame, name: &str, at: f64, colour: &str, dash: &str, row: usize) {
    let x = f.x(at);
    let label_y = f.y0 - 8.0 - 11.0 * row as f64;
    let _ = write!(
        out,
        r#"<line class="marker {name}" x1="{x:.1}" y1="{label_y:.1}" x2="{x:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"/>"#,
        f.y0 + f.h
    );
    let label = format!("{} {}s", name.replace('-', " "), trim((at * 100.0).round() / 100.0));
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" fill="{colour}" font-size="11">{}</text>"#,
        x + 3.0,
        label_y + 3.0,
        escape(&label)
    );
}

fn legend(out: &mut String, y: f64) {
    let mut x = LEFT;
    for (dep, label, colour) in DEPLOYMENTS {
        let _ = write!(out, r#"<circle cx="{x:.1}" cy="{:.1}" r="4" fill="{colour}"/>"#, y - 4.0);
        let text = format!("{label} ({dep})");
        let _ = write!(out, r#"<text x="{:.1}" y="{y:.1}">{}</text>"#, x + 8.0, escape(&text));
        x += 28.0 + 7.0 * text.len() as f64;
    }
    let _ = write!(out, r#"<text x="{x:.1}" y="{y:.1}" fill="{RED}">x failed</text>"#);
}

/// The smallest 1, 2 or 5 x 10^k at or above `v`.
fn nice(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|c| *c >= v * 0.999_999).unwrap_or(10.0 * p)
}

/// The tick step for an axis from 0 to about `max`: about five ticks.
fn step(max: f64) -> f64 {
    nice(max / 5.0)
}

/// `v` rounded up to a whole number of tick steps.
fn axis_max(v: f64) -> f64 {
    let s = step(v);
    (v / s).ceil().max(1.0) * s
}

/// Round ticks from 0 to `max` (inclusive).
fn ticks(max: f64) -> Vec<f64> {
    let s = step(max);
    let n = (max / s + 1e-9).floor() as usize;
    (0..=n.min(50)).map(|i| i as f64 * s).collect()
}

/// A number without trailing zeros.
fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_numbers_and_ticks() {
        assert_eq!(nice(7.3), 10.0);
        assert_eq!(nice(0.14), 0.2);
        assert_eq!(nice(450.0), 500.0);
        assert_eq!(nice(2.0), 2.0);
        assert_eq!(nice(f64::NAN), 1.0);
        assert_eq!(ticks(10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(axis_max(7.3), 8.0);
        assert_eq!(axis_max(157.0), 200.0);
        assert_eq!(ticks(8.0), vec![0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(trim(1.500), "1.5");
        assert_eq!(trim(2.0), "2");
        assert_eq!(escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }
}
