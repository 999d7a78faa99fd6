//! `understudy gameday`: plays incident scenarios against simulated providers (the built-in
//! mock) through a real gateway started in this process, with steady client traffic, once with
//! the gateway's protections (breakers, retry budgets, hedging) and once without, and reports
//! what callers and providers saw: a Markdown report, one SVG plot per scenario, the numbers as
//! JSON, every request as CSV, and a table on stdout.

pub mod plot;
pub mod report;
pub mod run;
pub mod scenarios;
pub mod summary;
pub mod traffic;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

pub use run::Run;
pub use scenarios::{Mode, Scenario, Timeline};
pub use summary::Summary;

/// What to run, and where the report goes.
#[derive(Clone, Debug)]
pub struct Options {
    pub out: PathBuf,
    /// Every duration (phases, latencies, timeouts, breaker times, Retry-After) times this.
    pub scale: f64,
    pub modes: Vec<Mode>,
    pub scenarios: Vec<Scenario>,
    /// Concurrent clients.
    pub clients: usize,
    /// Runs played at the same time (each with its own mock and gateway). 1 gives the cleanest
    /// numbers; more saves wall time at the cost of CPU contention between runs.
    pub jobs: usize,
    /// No progress lines on stderr.
    pub quiet: bool,
}

/// The default time scale: a full game day (8 scenarios, 2 modes) takes about two minutes.
pub const DEFAULT_SCALE: f64 = 0.15;

impl Default for Options {
    fn default() -> Self {
        Options {
            out: PathBuf::from("gameday-report"),
            scale: DEFAULT_SCALE,
            modes: vec![Mode::Protected, Mode::Unprotected],
            scenarios: Scenario::ALL.to_vec(),
            clients: 6,
            jobs: 1,
            quiet: false,
        }
    }
}

/// A finished game day.
pub struct Gameday {
    pub timeline: Timeline,
    pub clients: usize,
    pub runs: Vec<Run>,
    pub summaries: Vec<Summary>,
    pub wall: Duration,
    pub report: PathBuf,
    /// Every file written (report, JSON, plots).
    pub files: Vec<PathBuf>,
}

impl Gameday {
    pub fn summary(&self, scenario: Scenario, mode: Mode) -> Option<&Summary> {
        self.summaries.iter().find(|s| s.scenario == scenario && s.mode == mode)
    }
}

fn validate(opts: &Options) -> Result<(), String> {
    if !(opts.scale > 0.0 && opts.scale <= 1.0) {
        return Err(format!("--scale must be in (0, 1], got {}", opts.scale));
    }
    if !(1..=64).contains(&opts.clients) {
        return Err(format!("--clients must be 1..=64, got {}", opts.clients));
    }
    if !(1..=16).contains(&opts.jobs) {
        return Err(format!("--jobs must be 1..=16, got {}", opts.jobs));
    }
    if opts.modes.is_empty() || opts.scenarios.is_empty() {
        return Err("nothing to run".into());
    }
    Ok(())
}

/// Runs every scenario in every mode (both modes of a scenario back to back) and writes the
/// report. Progress goes to stderr unless `quiet`.
pub async fn run(opts: &Options) -> Result<Gameday, String> {
    validate(opts)?;
    let timeline = Timeline::new(opts.scale);
    let total = opts.scenarios.len() * opts.modes.len();
    if !opts.quiet {
        let each = timeline.run_len().as_secs_f64();
        eprintln!(
            "gameday: {} scenario(s) x {} mode(s), {each:.1}s each (time scale {}), about {:.0}s in all",
            opts.scenarios.len(),
            opts.modes.len(),
            opts.scale,
            each * total.div_ceil(opts.jobs) as f64
        );
    }
    let started = Instant::now();
    // Both modes of a scenario back to back; `buffered` keeps that order in the results.
    let plan = opts.scenarios.iter().flat_map(|&s| opts.modes.iter().map(move |&m| (s, m)));
    let runs: Vec<Run> = futures::stream::iter(plan.enumerate().map(|(i, (scenario, mode))| {
        let progress = run::Progress { quiet: opts.quiet, index: i + 1, of: total };
        async move { run::run(scenario, mode, &timeline, opts.clients, &progress).await }
    }))
    .buffered(opts.jobs)
    .try_collect()
    .await?;
    let summaries: Vec<Summary> = runs.iter().map(Summary::of).collect();
    let mut g = Gameday {
        timeline,
        clients: opts.clients,
        runs,
        summaries,
        wall: started.elapsed(),
        report: opts.out.join("report.md"),
        files: Vec::new(),
    };
    g.files = write(&opts.out, &g).map_err(|e| format!("cannot write the report to {}: {e}", opts.out.display()))?;
    Ok(g)
}

fn write(dir: &Path, g: &Gameday) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    let mut scenarios: Vec<Scenario> = g.runs.iter().map(|r| r.scenario).collect();
    scenarios.dedup();
    for s in scenarios {
        let runs: Vec<&Run> = g.runs.iter().filter(|r| r.scenario == s).collect();
        let path = dir.join(format!("{}.svg", s.slug()));
        std::fs::write(&path, plot::svg(s, &runs))?;
        files.push(path);
    }
    std::fs::write(dir.join("samples.csv"), report::csv(&g.runs))?;
    files.push(dir.join("samples.csv"));
    let json = serde_json::to_string_pretty(&report::json(g)).unwrap_or_default();
    std::fs::write(dir.join("report.json"), json)?;
    files.push(dir.join("report.json"));
    std::fs::write(&g.report, report::markdown(g))?;
    files.push(g.report.clone());
    Ok(files)
}

/// The CLI entry point: runs, prints the table, says where the report is.
pub async fn main(opts: Options) -> ExitCode {
    match run(&opts).await {
        Ok(g) => {
            println!("{}", report::table(&g.summaries));
            println!("report: {} ({} files, {:.0}s)", g.report.display(), g.files.len(), g.wall.as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gameday: {e}");
            ExitCode::FAILURE
        }
    }
}
