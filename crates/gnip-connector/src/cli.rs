//! The command line: what each subcommand accepts, as parsed by clap.
//!
//! These are the "low" arguments, exactly as typed. [`crate::config`] merges
//! them with the TOML file and the environment into a validated
//! [`crate::config::Config`]. Secrets are never accepted as arguments: a
//! command line is visible to every user of the machine through `ps`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Lands every activity of a Gnip / X stream in files, SQLite and databases.
#[derive(Debug, Parser)]
#[command(name = "gnip-connector", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the connector: read the stream and land every record in the sinks.
    Run(RunArgs),
    /// Start the built-in simulator on loopback and run the connector
    /// against it, into SQLite and rolled files.
    Demo(DemoArgs),
    /// Run the simulator alone, serving the streaming and rules APIs.
    Sim(SimArgs),
    /// List the outages of the stream that backfill did not cover.
    Gaps(GapsArgs),
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Options shared by the commands that log.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, value_enum, env = "GNIP_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// More detail in the logs (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less in the logs (-q warnings and errors only, -qq errors only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub quiet: u8,
}

/// Arguments of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// TOML configuration file; environment variables and flags override it.
    #[arg(long, short = 'c', env = "GNIP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Full stream URL (PowerTrack, Decahose, Firehose, Compliance, or an X API v2 stream).
    #[arg(long, env = "GNIP_URL")]
    pub url: Option<String>,
    /// User name for HTTP Basic authentication (enterprise streams). The
    /// password comes from GNIP_PASSWORD or --password-file.
    #[arg(long, env = "GNIP_USER")]
    pub user: Option<String>,
    /// File holding the password (one line). GNIP_PASSWORD takes precedence.
    #[arg(long, env = "GNIP_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// File holding an X API v2 bearer token. X_BEARER_TOKEN takes precedence.
    #[arg(long, env = "X_BEARER_TOKEN_FILE")]
    pub bearer_token_file: Option<PathBuf>,
    /// Partition to connect to (repeatable); Decahose has 2, Firehose 20, Compliance 8.
    #[arg(long = "partition")]
    pub partitions: Vec<u16>,
    /// Open this many redundant connections per partition (duplicates are removed).
    #[arg(long)]
    pub connections: Option<u8>,
    /// Where to land records (repeatable): stdout, files:DIR, sqlite:PATH.
    #[arg(long = "sink")]
    pub sinks: Vec<String>,
    /// Stop cleanly once this many activities have been taken by every sink.
    #[arg(long)]
    pub max_records: Option<u64>,
    /// Stop cleanly after this long (e.g. 90s, 10m, 2h).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Directory for the connector's own state: spool, cursors, gap journal.
    #[arg(long, env = "GNIP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A connection with no byte for this long is dead and is reconnected.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub stall_timeout: Option<Duration>,
    /// Extra CA certificate (PEM) to trust, for a server with a private certificate.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Serve Prometheus metrics (/metrics) and a health check (/health) here.
    #[arg(long, env = "GNIP_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Keep the spool in memory instead of on disk (faster; a crash loses what is in flight).
    #[arg(long)]
    pub spool_in_memory: bool,
    /// Logging options.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Arguments of `demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where the demo writes its database, files and state.
    #[arg(long, default_value = "gnip-demo")]
    pub data_dir: PathBuf,
    /// Stop after this long (default: until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Stop once this many activities have been stored.
    #[arg(long)]
    pub max_records: Option<u64>,
    /// Activities per second served by the simulator.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Fault to inject in the simulator (repeatable), e.g. drop-every=5000.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Logging options.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Format of the generated activities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimFormat {
    /// Gnip Activity Streams.
    As,
    /// The original (native enriched) format.
    Original,
    /// X API v2.
    V2,
}

/// Arguments of `sim`.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Activities per second per stream (default: as fast as the client reads).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop generating after this many activities per stream (heartbeats go on).
    #[arg(long)]
    pub max_records: Option<u64>,
    /// Spikes on top of --rate: SIZE extra records every DURATION, e.g. 5000/30s.
    #[arg(long, value_parser = parse_burst)]
    pub burst: Option<(u64, Duration)>,
    /// Compliance events per second per compliance partition (default: as fast as read).
    #[arg(long)]
    pub compliance_rate: Option<f64>,
    /// Fault to inject (repeatable), e.g. status=503x3, drop-every=1000, stall-after=500@2.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Format of the generated activities.
    #[arg(long, value_enum, default_value = "as")]
    pub format: SimFormat,
    /// Serve real records from this corpus (jsonl or jsonl.gz) instead of generated ones.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// User name clients must present.
    #[arg(long)]
    pub user: Option<String>,
    /// File holding the password clients must present.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Seconds of idleness before a heartbeat.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub heartbeat: Option<Duration>,
    /// Write the accounting (records and ids sent) to this file on exit.
    #[arg(long)]
    pub accounting_file: Option<PathBuf>,
    /// Logging options.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Parses `SIZE/DURATION` (`5000/30s`).
fn parse_burst(text: &str) -> Result<(u64, Duration), String> {
    let (size, every) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: expected SIZE/DURATION, e.g. 5000/30s"))?;
    let size = size
        .trim()
        .parse()
        .map_err(|e| format!("burst size {size:?}: {e}"))?;
    let every = humantime::parse_duration(every.trim())
        .map_err(|e| format!("burst period {every:?}: {e}"))?;
    if every.is_zero() {
        return Err("the burst period must be more than zero".into());
    }
    Ok((size, every))
}

/// Arguments of `gaps`.
#[derive(Debug, Clone, Args)]
pub struct GapsArgs {
    /// The connector's data directory (as given to `run`).
    #[arg(long, env = "GNIP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Read the data directory from this configuration file.
    #[arg(long, short = 'c', env = "GNIP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_flags_parse() {
        let cli = Cli::try_parse_from([
            "gnip-connector",
            "run",
            "--url",
            "http://127.0.0.1:1/stream/powertrack/accounts/a/publishers/twitter/p.json",
            "--sink",
            "sqlite:/tmp/x.db",
            "--sink",
            "files:/tmp/f",
            "--duration",
            "90s",
            "--max-records",
            "10",
            "-v",
        ])
        .expect("valid flags parse");
        let Command::Run(args) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(args.sinks, ["sqlite:/tmp/x.db", "files:/tmp/f"]);
        assert_eq!(args.duration, Some(Duration::from_secs(90)));
        assert_eq!(args.max_records, Some(10));
        assert_eq!(args.log.verbose, 1);
    }

    #[test]
    fn burst_parses_size_and_period() {
        assert_eq!(parse_burst("5000/30s"), Ok((5000, Duration::from_secs(30))));
        assert!(parse_burst("5000").is_err());
        assert!(parse_burst("x/1s").is_err());
        assert!(parse_burst("10/0s").is_err());
    }

    #[test]
    fn password_is_not_a_flag() {
        let err = Cli::try_parse_from(["gnip-connector", "run", "--password", "hunter2"])
            .expect_err("a password on the command line is refused");
        assert!(err.to_string().contains("--password"));
    }
}
