//! The commands: what `run`, `demo`, `sim` and `gaps` do, and the one place
//! where outcomes become exit codes.
//!
//! Exit codes (documented in the README):
//! - 0: stopped cleanly (signal, `--duration`, `--max-records`);
//! - 1: a runtime failure (spool or disk, a sink that failed for good);
//! - 2: a configuration error (flags, config file, credentials missing);
//! - 3: the stream refused the credentials (HTTP 401 / 403);
//! - 4: the stream refused the request otherwise (404, 406, ...).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use tracing::{error, info};

use crate::cli::{Cli, Command, DemoArgs, GapsArgs, LogFormat, RunArgs, SimArgs, SimFormat};
use crate::config::{self, Config, ConfigError};
use crate::pipeline::runner::RunnerEnd;
use crate::pipeline::{self, Stop, Summary};
use crate::telemetry;

/// Exit code: clean stop.
pub const EXIT_OK: u8 = 0;
/// Exit code: runtime failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: configuration error.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code: credentials refused.
pub const EXIT_AUTH: u8 = 3;
/// Exit code: request refused.
pub const EXIT_REFUSED: u8 = 4;

/// How often the status is logged when nobody watches a terminal.
const STATUS_LOG_EVERY: Duration = Duration::from_secs(60);

/// Runs the parsed command line and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("gnip-rt")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let code = match cli.command {
        Command::Run(args) => runtime.block_on(cmd_run(args)),
        Command::Demo(args) => runtime.block_on(cmd_demo(args)),
        Command::Sim(args) => runtime.block_on(cmd_sim(args)),
        Command::Gaps(args) => cmd_gaps(args),
    };
    // Connections still closing must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    ExitCode::from(code)
}

async fn cmd_run(args: RunArgs) -> u8 {
    let config = match Config::from_run_args(&args) {
        Ok(config) => config,
        Err(ConfigError(message)) => {
            telemetry::init_logs(&args.log, args.log.log_format.unwrap_or(LogFormat::Text));
            eprintln!("error: {message}");
            return EXIT_CONFIG;
        }
    };
    telemetry::init_logs(&args.log, config.log_format);
    run_to_exit(config).await
}

/// Runs the pipeline with signal handling and the status display, prints
/// the summary, and decides the exit code.
async fn run_to_exit(config: Config) -> u8 {
    let stop = Stop::default();
    spawn_signal_handler(stop.clone());
    let done = Arc::new(AtomicBool::new(false));
    let mut status_thread = None;
    let status_done = done.clone();
    let result = pipeline::run(config, stop, |live| {
        status_thread = std::thread::Builder::new()
            .name("status".into())
            .spawn(move || telemetry::status_loop(live, &status_done, STATUS_LOG_EVERY))
            .ok();
    })
    .await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(t) = status_thread {
        let _ = t.join();
    }
    match result {
        Ok(summary) => {
            eprintln!("{summary}");
            exit_code(&summary)
        }
        Err(e) => {
            error!(error = format!("{e:#}"), "Connector failed.");
            eprintln!("error: {e:#}");
            EXIT_FAILURE
        }
    }
}

fn exit_code(summary: &Summary) -> u8 {
    if let Some(fatal) = &summary.fatal {
        eprintln!("error: {fatal}");
        return match fatal {
            gnip_client::StreamError::Http {
                status: 401 | 403, ..
            } => EXIT_AUTH,
            gnip_client::StreamError::Http { .. } => EXIT_REFUSED,
            _ if fatal.is_fatal() => EXIT_CONFIG,
            _ => EXIT_FAILURE,
        };
    }
    if summary.lost > 0
        || summary
            .sinks
            .iter()
            .any(|(_, _, end)| matches!(end, RunnerEnd::Failed(_)))
    {
        return EXIT_FAILURE;
    }
    EXIT_OK
}

/// SIGINT / SIGTERM ask for a clean stop; a second one abandons the drain.
/// The handlers are in place when this returns, so a signal that follows
/// at once is not lost to the default action.
fn spawn_signal_handler(stop: Stop) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            error!("Cannot install signal handlers; stop with --duration or --max-records.");
            return;
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => info!(signal = "SIGTERM", "Stopping."),
                    _ = int.recv() => info!(signal = "SIGINT", "Stopping."),
                }
                stop.request();
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            stop.request();
        }
    });
}

fn sim_config(args: &SimArgs) -> anyhow::Result<gnip_sim::SimConfig> {
    let mut config = gnip_sim::SimConfig {
        listen: args.listen,
        rate: args.rate,
        max_records: args.max_records,
        corpus: args.corpus.clone(),
        accounting_file: args.accounting_file.clone(),
        burst: args
            .burst
            .map(|(size, every)| gnip_sim::Burst { size, every }),
        compliance_rate: args.compliance_rate,
        format: match args.format {
            SimFormat::As => gnip_sim::Format::ActivityStreams,
            SimFormat::Original => gnip_sim::Format::Original,
            SimFormat::V2 => gnip_sim::Format::V2,
        },
        ..gnip_sim::SimConfig::default()
    };
    if let Some(user) = &args.user {
        config.username = user.clone();
    }
    if let Some(file) = &args.password_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the password file {}", file.display()))?;
        config.password = text.trim_end_matches(['\r', '\n']).to_owned();
    }
    if let Some(h) = args.heartbeat {
        config.heartbeat_interval = h;
    }
    if !args.faults.is_empty() {
        config.faults = gnip_sim::FaultPlan::parse(&args.faults.join(","))
            .map_err(|e| anyhow::anyhow!("--fault: {e}"))?;
    }
    Ok(config)
}

async fn cmd_sim(args: SimArgs) -> u8 {
    telemetry::init_logs(&args.log, args.log.log_format.unwrap_or(LogFormat::Text));
    let config = match sim_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return EXIT_CONFIG;
        }
    };
    let sim = match gnip_sim::start(config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("error: cannot start the simulator: {e}");
            return EXIT_FAILURE;
        }
    };
    // Handle signals before saying where we listen: whoever reads that
    // line may signal at once.
    let stop = Stop::default();
    spawn_signal_handler(stop.clone());
    print_sim_endpoints(&sim, &args);
    while !stop.is_requested() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sim.shutdown().await;
    EXIT_OK
}

/// Tells the operator where the simulator listens and how to log in; one
/// `name: value` per line so scripts can pick what they need.
fn print_sim_endpoints(sim: &gnip_sim::SimHandle, args: &SimArgs) {
    let defaults = gnip_sim::SimConfig::default();
    println!("listening: {}", sim.base_url());
    println!("powertrack: {}", sim.powertrack_url());
    println!("rules: {}", sim.rules_url());
    println!("decahose: {} (partitions 1-2)", sim.decahose_url(1));
    println!("firehose: {} (partitions 1-20)", sim.firehose_url(1));
    println!("compliance: {} (partitions 1-8)", sim.compliance_url(1));
    println!("v2-filtered: {}", sim.v2_filtered_url());
    println!("v2-sample: {}", sim.v2_sample_url());
    println!("accounting: {}/_sim/accounting", sim.base_url());
    println!(
        "user: {}",
        args.user.as_deref().unwrap_or(&defaults.username)
    );
    if args.password_file.is_some() {
        println!("password: (from the password file)");
    } else {
        println!("password: {}", defaults.password);
    }
    println!("bearer-token: {}", defaults.bearer_token);
    // Scripts read the lines above through a pipe: flush them now.
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

async fn cmd_demo(args: DemoArgs) -> u8 {
    telemetry::init_logs(&args.log, args.log.log_format.unwrap_or(LogFormat::Text));
    match demo(&args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_FAILURE
        }
    }
}

/// The demo: the simulator on loopback, the connector against it into
/// SQLite and rolled files under the data directory.
async fn demo(args: &DemoArgs) -> anyhow::Result<u8> {
    let mut sim_config = gnip_sim::SimConfig {
        rate: Some(args.rate),
        ..gnip_sim::SimConfig::default()
    };
    if !args.faults.is_empty() {
        sim_config.faults = gnip_sim::FaultPlan::parse(&args.faults.join(","))
            .map_err(|e| anyhow::anyhow!("--fault: {e}"))?;
    }
    let (user, password) = (sim_config.username.clone(), sim_config.password.clone());
    let sim = gnip_sim::start(sim_config)
        .await
        .map_err(|e| anyhow::anyhow!("starting the simulator: {e}"))?;
    let url = sim.powertrack_url();
    info!(url = %url, "Simulator serving on loopback.");

    let data_dir = args.data_dir.clone();
    let db = data_dir.join("gnip.db");
    let files = data_dir.join("files");
    let run = RunArgs {
        config: None,
        url: Some(url),
        user: Some(user),
        password_file: None,
        bearer_token_file: None,
        partitions: Vec::new(),
        connections: None,
        sinks: vec![
            format!("sqlite:{}", db.display()),
            format!("files:{}", files.display()),
        ],
        max_records: args.max_records,
        duration: args.duration,
        data_dir: Some(data_dir.join("state")),
        stall_timeout: None,
        ca_file: None,
        spool_in_memory: false,
        metrics_listen: None,
        log: args.log.clone(),
    };
    let mut config = Config::from_run_args_with_password(&run, SecretString::from(password))
        .map_err(|e| anyhow::anyhow!(e))?;
    config.stream.user_agent = format!("gnip-connector-demo/{}", env!("CARGO_PKG_VERSION"));
    eprintln!(
        "Demo: simulator at {} -> SQLite {} and files under {}. Ctrl-C to stop.",
        sim.base_url(),
        db.display(),
        files.display()
    );
    let code = run_to_exit(config).await;
    sim.shutdown().await;
    eprintln!();
    eprintln!("Data is in {}:", data_dir.display());
    eprintln!("  SQLite: {}", db.display());
    eprintln!("  files:  {}/YYYY/MM/DD/HH/*.jsonl.gz", files.display());
    eprintln!("Try:");
    eprintln!(
        "  sqlite3 {} \"SELECT lang, count(*) FROM posts GROUP BY lang ORDER BY 2 DESC LIMIT 10;\"",
        db.display()
    );
    Ok(code)
}

fn cmd_gaps(args: GapsArgs) -> u8 {
    let data_dir = match (&args.data_dir, &args.config) {
        (Some(dir), _) => dir.clone(),
        (None, Some(file)) => match config::read_file(file) {
            Ok(raw) => raw
                .data_dir
                .unwrap_or_else(|| config::DEFAULT_DATA_DIR.into()),
            Err(ConfigError(message)) => {
                eprintln!("error: {message}");
                return EXIT_CONFIG;
            }
        },
        (None, None) => config::DEFAULT_DATA_DIR.into(),
    };
    let path = pipeline::gap_journal_path(&data_dir);
    match crate::gaps::uncovered_report(&path, args.json) {
        Ok(text) => {
            print!("{text}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: reading the gap journal {}: {e}", path.display());
            EXIT_FAILURE
        }
    }
}
