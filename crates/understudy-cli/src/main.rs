use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// understudy: an LLM gateway that keeps answering when providers fail.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long, short, env = "UNDERSTUDY_CONFIG")]
        config: PathBuf,
        /// Overrides `server.listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Validate a configuration file without starting.
    Check { file: PathBuf },
    /// Run the fault-injecting mock provider (OpenAI, Anthropic and Gemini wire formats).
    Mock {
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// Default fault for every request, in model-suffix syntax: `error=rate_limit+retry_after=2`.
        #[arg(long)]
        fault: Option<String>,
        /// The answer text.
        #[arg(long)]
        text: Option<String>,
        /// Do not record requests for the control plane (for benchmarks).
        #[arg(long)]
        no_record: bool,
    },
    /// Start simulated providers and the gateway, break the primary, and watch traffic fail over.
    Demo {
        /// Seconds per phase.
        #[arg(long, default_value_t = 8)]
        phase_secs: u64,
    },
    /// Play incident scenarios (503, 401, 429, latency spike, hang, flapping, cut streams, outage)
    /// against simulated providers, with and without protection, and write a report.
    Gameday {
        /// Where the report, JSON and plots go.
        #[arg(long, default_value = "gameday-report")]
        out: PathBuf,
        /// Time scale: every duration (phases, latencies, timeouts, breaker times) times this.
        #[arg(long, default_value_t = understudy_cli::gameday::DEFAULT_SCALE)]
        scale: f64,
        /// Which modes to run.
        #[arg(long, value_enum, default_value_t = GamedayMode::Both)]
        mode: GamedayMode,
        /// Scenarios to run (comma-separated; default all): hard-down, account-deactivated,
        /// rate-limited, latency-spike, hung, flapping, stream-cut, outage-recovery.
        #[arg(long, value_delimiter = ',')]
        scenario: Vec<String>,
        /// Concurrent clients.
        #[arg(long, default_value_t = 6)]
        clients: usize,
        /// Runs played at the same time (1: cleanest numbers).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// No progress lines on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GamedayMode {
    Both,
    Protected,
    Unprotected,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file } => match understudy_cli::check::check(&file) {
            Ok((_, summary)) => {
                print!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve { config, listen } => serve(config, listen).await,
        Command::Mock { listen, fault, text, no_record } => mock(listen, fault, text, no_record).await,
        Command::Demo { phase_secs } => understudy_cli::demo::run(phase_secs).await,
        Command::Gameday { out, scale, mode, scenario, clients, jobs, quiet } => {
            let opts = understudy_cli::gameday::Options { out, scale, clients, jobs, quiet, ..Default::default() };
            gameday(opts, mode, &scenario).await
        }
    }
}

async fn gameday(opts: understudy_cli::gameday::Options, mode: GamedayMode, scenarios: &[String]) -> ExitCode {
    use understudy_cli::gameday::{Mode, Options, Scenario};
    // Quiet unless asked: `UNDERSTUDY_LOG=understudy::health=warn` shows breaker transitions.
    let _log = understudy_cli::telemetry::init_logging("off");
    let scenarios = match scenarios.iter().map(|s| Scenario::parse(s)).collect::<Result<Vec<_>, _>>() {
        Ok(s) if s.is_empty() => Scenario::ALL.to_vec(),
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --scenario: {e}");
            return ExitCode::FAILURE;
        }
    };
    let modes = match mode {
        GamedayMode::Both => vec![Mode::Protected, Mode::Unprotected],
        GamedayMode::Protected => vec![Mode::Protected],
        GamedayMode::Unprotected => vec![Mode::Unprotected],
    };
    understudy_cli::gameday::main(Options { scenarios, modes, ..opts }).await
}

async fn serve(path: PathBuf, listen: Option<SocketAddr>) -> ExitCode {
    let _log = understudy_cli::telemetry::init_logging("info");
    understudy_cli::telemetry::install_metrics();
    let loaded = match understudy::config::load_file(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let addr = match listen.map(Ok).unwrap_or_else(|| loaded.config.server.listen.parse()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: server.listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    match understudy_cli::server::start(&loaded.config, addr).await {
        Ok(handle) => {
            tracing::info!(listen = %handle.addr(), routes = loaded.config.routes.len(), "understudy is serving");
            tokio::select! {
                _ = handle_wait(handle) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn handle_wait(h: understudy_cli::server::ServerHandle) {
    h.wait().await
}

async fn mock(listen: SocketAddr, fault: Option<String>, text: Option<String>, no_record: bool) -> ExitCode {
    let _log = understudy_cli::telemetry::init_logging("warn");
    let default_fault = match fault.as_deref().map(understudy_mock::Fault::parse).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => {
            eprintln!("error: --fault: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = understudy_mock::MockConfig {
        default_fault,
        text,
        // Recording every request costs the mock time that benchmarks would charge to the gateway.
        record_capacity: if no_record { 0 } else { 1000 },
        ..Default::default()
    };
    match understudy_mock::start(listen, config).await {
        Ok(h) => {
            println!(
                "understudy mock provider on {} (OpenAI /v1, Anthropic /v1/messages, Gemini /v1beta, Bedrock /model)",
                h.url()
            );
            let _ = tokio::signal::ctrl_c().await;
            h.shutdown().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            ExitCode::FAILURE
        }
    }
}
