//! Configuration: the TOML file as written ([`RawConfig`]), merged with the
//! environment and the command line into a validated [`Config`] that the
//! rest of the program uses.
//!
//! Precedence is flags over environment over file over defaults. clap
//! already folds the environment into the flags (each flag names its
//! variable), so the merge here is "flag-or-env if given, else file, else
//! default". Secrets come only from the environment or from files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gnip_client::{Credentials, Endpoint, StreamConfig};
use gnip_spool::{FullPolicy, SpoolConfig};
use secrecy::SecretString;
use serde::Deserialize;

use crate::cli::{LogFormat, RunArgs};
use crate::sinks::SinkSpec;

/// Where state goes when neither the file nor the flags say.
pub const DEFAULT_DATA_DIR: &str = "gnip-data";

/// Default size limit of an in-memory spool: a second or two of a busy
/// stream, so that memory stays bounded well under 100 MB with any sink.
pub const IN_MEMORY_SPOOL_BYTES: u64 = 16 << 20;

/// A configuration problem, with what to fix in the message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn bad(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

/// The TOML file, as written. Every table and key is optional; unknown keys
/// are errors so that a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Directory for the spool, cursors and gap journal.
    pub data_dir: Option<PathBuf>,
    /// `text` or `json`.
    pub log_format: Option<LogFormat>,
    /// Serve Prometheus metrics and a health check on this address.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Where records land: each a spec string (`stdout`, `files:DIR`,
    /// `sqlite:PATH`) or a table with a `type` key and the sink's settings.
    #[serde(default)]
    pub sinks: Vec<RawSink>,
    /// The stream to read.
    #[serde(default)]
    pub stream: RawStream,
    /// The on-disk spool between the stream and the sinks.
    #[serde(default)]
    pub spool: RawSpool,
    /// Batching and shutdown of the sink runners.
    #[serde(default)]
    pub pipeline: RawPipeline,
}

/// One entry of `sinks`: the short spec form (`"sqlite:/var/lib/gnip/prod.db"`)
/// or a table (`{ type = "files", dir = "...", roll_every = "1h" }`).
///
/// Kept as a TOML value until [`RawSink::to_spec`], so that a mistake in a
/// table is reported by the sink's own parser (naming the bad key) rather
/// than as "matched no variant".
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct RawSink(pub toml::Value);

impl RawSink {
    /// The sink this entry describes.
    ///
    /// # Errors
    ///
    /// When the spec or the table is not a valid sink, naming what is wrong.
    pub fn to_spec(self) -> Result<SinkSpec, ConfigError> {
        match self.0 {
            toml::Value::String(text) => text
                .parse::<SinkSpec>()
                .map_err(|e| bad(format!("sink {text:?}: {e}"))),
            table @ toml::Value::Table(_) => table
                .try_into::<SinkSpec>()
                .map_err(|e| bad(format!("sink table: {}", e.message()))),
            other => Err(bad(format!(
                "a sink is a string such as \"sqlite:PATH\" or a table with a `type` key, not {}",
                other.type_str()
            ))),
        }
    }
}

/// `[stream]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStream {
    /// Full stream URL.
    pub url: Option<String>,
    /// Basic-auth user name (enterprise streams).
    pub user: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// File holding the v2 bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// Partitions to connect to.
    #[serde(default)]
    pub partitions: Vec<u16>,
    /// Redundant connections per partition.
    pub connections_per_partition: Option<u8>,
    /// Silence after which a connection is dead.
    #[serde(default, with = "humantime_serde")]
    pub stall_timeout: Option<Duration>,
    /// Ask for backfill after a short outage.
    pub backfill: Option<bool>,
    /// Extra CA certificate to trust.
    pub ca_file: Option<PathBuf>,
    /// Name used in file names and logs (default: the stream label).
    pub name: Option<String>,
    /// Capacity of the duplicate filter, in post ids.
    pub dedup_capacity: Option<usize>,
    /// Longest record accepted, in bytes.
    pub max_record_bytes: Option<usize>,
    /// A connection up this long counts as healthy: backoff starts over.
    #[serde(default, with = "humantime_serde")]
    pub healthy_after: Option<Duration>,
    /// Network errors and stalls: step of the linear backoff (250ms).
    #[serde(default, with = "humantime_serde")]
    pub backoff_network_step: Option<Duration>,
    /// Network errors and stalls: longest wait (16s).
    #[serde(default, with = "humantime_serde")]
    pub backoff_network_max: Option<Duration>,
    /// HTTP errors: first wait of the exponential backoff (5s).
    #[serde(default, with = "humantime_serde")]
    pub backoff_http_start: Option<Duration>,
    /// HTTP errors: longest wait (320s).
    #[serde(default, with = "humantime_serde")]
    pub backoff_http_max: Option<Duration>,
    /// HTTP 420 / 429: first wait of the exponential backoff (60s).
    #[serde(default, with = "humantime_serde")]
    pub backoff_rate_limit_start: Option<Duration>,
}

/// `[spool]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpool {
    /// Keep the spool in memory (no crash safety).
    pub in_memory: Option<bool>,
    /// Size of one segment file.
    pub segment_bytes: Option<u64>,
    /// Longest time an appended record waits for its fsync.
    #[serde(default, with = "humantime_serde")]
    pub fsync_interval: Option<Duration>,
    /// Unsynced bytes that force an fsync.
    pub fsync_bytes: Option<u64>,
    /// Size limit of the spool on disk.
    pub max_bytes: Option<u64>,
    /// `pause` or `drop-oldest`.
    pub full_policy: Option<String>,
}

/// `[pipeline]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    /// Most records a sink writes in one batch.
    pub batch_records: Option<usize>,
    /// Most bytes a sink writes in one batch.
    pub batch_bytes: Option<usize>,
    /// On shutdown, how long to wait for sinks to drain the spool.
    #[serde(default, with = "humantime_serde")]
    pub drain_timeout: Option<Duration>,
    /// Longest wait between retries of a failing sink.
    #[serde(default, with = "humantime_serde")]
    pub retry_max: Option<Duration>,
}

/// How the sink runners batch and retry.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Most records per batch. 4096 records of ~3.4 KB is ~14 MB: large
    /// enough that per-batch costs (a transaction commit, an fsync) are
    /// spread thin, small enough to keep memory per sink bounded.
    pub batch_records: usize,
    /// Most payload bytes per batch: bounds the memory each sink holds
    /// (8 MiB is about 2,500 posts; with SQLite's cache and the client's
    /// channel it keeps the process under 100 MB).
    pub batch_bytes: usize,
    /// How long a runner waits for new entries before calling `idle`.
    pub idle_wait: Duration,
    /// On shutdown, how long to wait for the sinks to drain. What is left
    /// stays in the spool (on disk) for the next start.
    pub drain_timeout: Duration,
    /// First retry delay of a failing sink; doubles up to `retry_max`.
    pub retry_initial: Duration,
    /// Longest retry delay of a failing sink.
    pub retry_max: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            batch_records: 4096,
            batch_bytes: 8 << 20,
            idle_wait: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(60),
            retry_initial: Duration::from_millis(250),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// The validated configuration of `run`.
#[derive(Debug)]
pub struct Config {
    /// The connector's own state.
    pub data_dir: PathBuf,
    /// Name of the stream, used in file names.
    pub stream_name: String,
    /// Everything the stream client needs.
    pub stream: StreamConfig,
    /// The spool.
    pub spool: SpoolConfig,
    /// The sinks, in the order given.
    pub sinks: Vec<SinkSpec>,
    /// Batching, retries and shutdown.
    pub pipeline: PipelineConfig,
    /// Stop after this many activities.
    pub max_records: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Log format.
    pub log_format: LogFormat,
    /// Address of the metrics and health endpoint, if any.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Reads and parses a TOML configuration file.
///
/// # Errors
///
/// When the file cannot be read or is not valid configuration; the message
/// names the file and the offending key.
pub fn read_file(path: &Path) -> Result<RawConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| bad(format!("invalid config file {}: {e}", path.display())))
}

/// Reads a one-line secret from a file, trimming the line end.
fn read_secret(path: &Path, what: &str) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(format!(
            "cannot read the {what} file {}: {e}",
            path.display()
        ))
    })?;
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(bad(format!("the {what} file {} is empty", path.display())));
    }
    Ok(SecretString::from(secret.to_owned()))
}

/// Reads a secret from an environment variable, if set and not empty.
fn env_secret(name: &str) -> Option<SecretString> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(SecretString::from)
}

impl Config {
    /// Merges the file (if any), the environment and the flags of `run`.
    ///
    /// # Errors
    ///
    /// On any missing or invalid setting, with a message saying what to fix.
    pub fn from_run_args(args: &RunArgs) -> Result<Config, ConfigError> {
        let raw = match &args.config {
            Some(path) => read_file(path)?,
            None => RawConfig::default(),
        };
        Self::merge(raw, args, None)
    }

    /// As [`Config::from_run_args`], with the Basic-auth password given by
    /// the caller (the demo, which knows its own simulator's password).
    ///
    /// # Errors
    ///
    /// As for [`Config::from_run_args`].
    pub fn from_run_args_with_password(
        args: &RunArgs,
        password: SecretString,
    ) -> Result<Config, ConfigError> {
        let raw = match &args.config {
            Some(path) => read_file(path)?,
            None => RawConfig::default(),
        };
        Self::merge(raw, args, Some(password))
    }

    fn merge(
        raw: RawConfig,
        args: &RunArgs,
        password: Option<SecretString>,
    ) -> Result<Config, ConfigError> {
        let data_dir = args
            .data_dir
            .clone()
            .or(raw.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));

        // The stream and its credentials.
        let url = args.url.clone().or(raw.stream.url).ok_or_else(|| {
            bad("no stream URL: pass --url, set GNIP_URL, or set url in the [stream] table")
        })?;
        let endpoint = Endpoint::parse(&url).map_err(|e| bad(format!("stream URL: {e}")))?;
        let credentials = if endpoint.is_v2() {
            let token = match env_secret("X_BEARER_TOKEN") {
                Some(token) => token,
                None => {
                    let file = args
                        .bearer_token_file
                        .clone()
                        .or(raw.stream.bearer_token_file)
                        .ok_or_else(|| {
                            bad(
                                "an X API v2 stream needs a bearer token: set X_BEARER_TOKEN \
                                 or pass --bearer-token-file",
                            )
                        })?;
                    read_secret(&file, "bearer token")?
                }
            };
            Credentials::Bearer(token)
        } else {
            let username = args.user.clone().or(raw.stream.user).ok_or_else(|| {
                bad("an enterprise stream needs a user name: pass --user or set GNIP_USER")
            })?;
            let password = match password.or_else(|| env_secret("GNIP_PASSWORD")) {
                Some(password) => password,
                None => {
                    let file = args
                        .password_file
                        .clone()
                        .or(raw.stream.password_file)
                        .ok_or_else(|| {
                            bad("an enterprise stream needs a password: set GNIP_PASSWORD \
                                 or pass --password-file")
                        })?;
                    read_secret(&file, "password")?
                }
            };
            Credentials::Basic { username, password }
        };
        let stream_name = raw
            .stream
            .name
            .clone()
            .unwrap_or_else(|| stream_name_from_url(&url));
        if stream_name.is_empty()
            || !stream_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad(format!(
                "stream name {stream_name:?} must be letters, digits, '-' or '_'; \
                 set name in the [stream] table"
            )));
        }

        let mut stream = StreamConfig::new(endpoint, credentials);
        let partitions = if args.partitions.is_empty() {
            raw.stream.partitions
        } else {
            args.partitions.clone()
        };
        if partitions.contains(&0) {
            return Err(bad("partitions are numbered from 1"));
        }
        stream.partitions = partitions;
        if let Some(n) = args.connections.or(raw.stream.connections_per_partition) {
            if n == 0 || n > 4 {
                return Err(bad("connections per partition must be 1 to 4"));
            }
            stream.connections_per_partition = n;
        }
        if let Some(t) = args.stall_timeout.or(raw.stream.stall_timeout) {
            if t < Duration::from_millis(100) {
                return Err(bad("stall timeout must be at least 100ms"));
            }
            stream.stall_timeout = t;
        }
        if let Some(b) = raw.stream.backfill {
            stream.backfill = b;
        }
        if let Some(d) = raw.stream.healthy_after {
            stream.healthy_after = d;
        }
        let b = &mut stream.backoff;
        if let Some(d) = raw.stream.backoff_network_step {
            b.network_step = d;
        }
        if let Some(d) = raw.stream.backoff_network_max {
            b.network_max = d;
        }
        if let Some(d) = raw.stream.backoff_http_start {
            b.http_initial = d;
        }
        if let Some(d) = raw.stream.backoff_http_max {
            b.http_max = d;
        }
        if let Some(d) = raw.stream.backoff_rate_limit_start {
            b.rate_limit_initial = d;
        }
        if let Some(n) = raw.stream.dedup_capacity {
            stream.dedup_capacity = n;
        }
        if let Some(n) = raw.stream.max_record_bytes {
            stream.max_record_bytes = n;
        }
        if let Some(ca) = args.ca_file.clone().or(raw.stream.ca_file) {
            let pem = std::fs::read(&ca)
                .map_err(|e| bad(format!("cannot read CA file {}: {e}", ca.display())))?;
            stream.extra_ca_pem = Some(pem);
        }

        // The spool.
        let mut spool = SpoolConfig::new(data_dir.join("spool"));
        let r = raw.spool;
        spool.in_memory = args.spool_in_memory || r.in_memory.unwrap_or(false);
        match r.segment_bytes {
            Some(v) => spool.segment_bytes = v,
            // Small segments, so that the memory limit holds several.
            None if spool.in_memory => spool.segment_bytes = IN_MEMORY_SPOOL_BYTES / 8,
            None => {}
        }
        if let Some(v) = r.fsync_interval {
            spool.fsync_interval = v;
        }
        if let Some(v) = r.fsync_bytes {
            spool.fsync_bytes = v;
        }
        match r.max_bytes {
            Some(v) => spool.max_bytes = v,
            // In memory, the limit is memory: keep it to what a process can
            // hold without noticing (the disk default is gigabytes).
            None if spool.in_memory => spool.max_bytes = IN_MEMORY_SPOOL_BYTES,
            None => {}
        }
        if let Some(p) = r.full_policy {
            spool.full_policy = match p.as_str() {
                "pause" => FullPolicy::Pause,
                "drop-oldest" => FullPolicy::DropOldest,
                other => {
                    return Err(bad(format!(
                        "spool full_policy {other:?}: use \"pause\" or \"drop-oldest\""
                    )));
                }
            };
        }

        // The sinks; SQLite under the data directory when none is named.
        let raw_sinks = if !args.sinks.is_empty() {
            args.sinks
                .iter()
                .cloned()
                .map(|spec| RawSink(toml::Value::String(spec)))
                .collect::<Vec<_>>()
        } else if !raw.sinks.is_empty() {
            raw.sinks
        } else {
            vec![RawSink(toml::Value::String(format!(
                "sqlite:{}",
                data_dir.join("gnip.db").display()
            )))]
        };
        let mut sinks: Vec<SinkSpec> = Vec::with_capacity(raw_sinks.len());
        for raw_sink in raw_sinks {
            let spec = raw_sink.to_spec()?;
            spec.validate()
                .map_err(|e| bad(format!("sink {spec}: {e}")))?;
            if sinks.iter().any(|s| s.name() == spec.name()) {
                return Err(bad(format!(
                    "two sinks are named {:?}; give one a distinct name in its [[sinks]] table",
                    spec.name()
                )));
            }
            sinks.push(spec);
        }

        let mut pipeline = PipelineConfig::default();
        let p = raw.pipeline;
        if let Some(v) = p.batch_records {
            pipeline.batch_records = v.max(1);
        }
        if let Some(v) = p.batch_bytes {
            pipeline.batch_bytes = v.max(1);
        }
        if let Some(v) = p.drain_timeout {
            pipeline.drain_timeout = v;
        }
        if let Some(v) = p.retry_max {
            pipeline.retry_max = v.max(pipeline.retry_initial);
        }

        Ok(Config {
            data_dir,
            stream_name,
            stream,
            spool,
            sinks,
            pipeline,
            max_records: args.max_records,
            duration: args.duration,
            log_format: args
                .log
                .log_format
                .or(raw.log_format)
                .unwrap_or(LogFormat::Text),
            metrics_listen: args.metrics_listen.or(raw.metrics_listen),
        })
    }
}

/// The stream label from a URL: the last path segment without `.json`
/// (`.../twitter/prod.json` gives `prod`; v2 `/2/tweets/search/stream`
/// gives `stream`, so v2 streams get the product before it).
pub fn stream_name_from_url(url: &str) -> String {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let segments: Vec<&str> = path.split('/').skip(1).filter(|s| !s.is_empty()).collect();
    let clean = |s: &str| -> String {
        s.trim_end_matches(".json")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    match segments.as_slice() {
        [.., product, last] if *last == "stream" => format!("v2-{}", clean(product)),
        [.., last] => clean(last),
        [] => "stream".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn run_args(extra: &[&str]) -> RunArgs {
        let mut argv = vec!["gnip-connector", "run"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("flags parse").command {
            Command::Run(args) => args,
            _ => unreachable!("parsed a run command"),
        }
    }

    const PT: &str =
        "http://127.0.0.1:9/stream/powertrack/accounts/acme/publishers/twitter/prod.json";

    #[test]
    fn stream_names_come_from_the_label() {
        assert_eq!(stream_name_from_url(PT), "prod");
        assert_eq!(
            stream_name_from_url("https://api.x.com/2/tweets/search/stream?x=1"),
            "v2-search"
        );
        assert_eq!(
            stream_name_from_url(
                "https://gnip-stream.x.com/stream/sample10/accounts/a/publishers/twitter/dh.json?partition=1"
            ),
            "dh"
        );
    }

    #[test]
    fn file_then_flags_override() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").expect("write");
        let raw: RawConfig = toml::from_str(&format!(
            r#"
            data_dir = "{}"
            sinks = ["files:/tmp/a"]
            [stream]
            url = "{PT}"
            user = "file-user"
            password_file = "{}"
            stall_timeout = "45s"
            [spool]
            full_policy = "drop-oldest"
            fsync_interval = "50ms"
            "#,
            dir.path().display(),
            pw.display()
        ))
        .expect("valid toml");
        let args = run_args(&["--user", "flag-user", "--stall-timeout", "2s"]);
        let config = Config::merge(raw, &args, None).expect("valid config");
        assert_eq!(config.stream.stall_timeout, Duration::from_secs(2));
        assert_eq!(config.spool.full_policy, FullPolicy::DropOldest);
        assert_eq!(config.spool.fsync_interval, Duration::from_millis(50));
        assert_eq!(config.sinks.len(), 1);
        assert_eq!(config.stream_name, "prod");
        match &config.stream.credentials {
            Credentials::Basic { username, .. } => assert_eq!(username, "flag-user"),
            other => panic!("expected basic credentials, got {other:?}"),
        }
    }

    #[test]
    fn the_readme_example_config_is_valid() {
        let readme = include_str!("../../../README.md");
        let block = readme
            .split("```toml\n")
            .map(|rest| rest.split("```").next().unwrap_or_default())
            .find(|block| block.contains("[stream]"))
            .expect("the README has an example config");
        let raw: RawConfig = toml::from_str(block).expect("the README's example config parses");
        assert_eq!(raw.sinks.len(), 2);
        assert_eq!(raw.spool.full_policy.as_deref(), Some("pause"));
        let tables = readme
            .split("```toml\n")
            .map(|rest| rest.split("```").next().unwrap_or_default())
            .find(|block| block.contains("type = \"sqlite\""))
            .expect("the README shows sinks as tables");
        let raw: RawConfig = toml::from_str(tables).expect("the README's sink tables parse");
        let mut sinks = raw.sinks.into_iter();
        let first = sinks
            .next()
            .expect("a sink")
            .to_spec()
            .expect("valid sink table");
        assert!(matches!(first, SinkSpec::Sqlite(_)), "{first:?}");
    }

    #[test]
    fn a_typo_in_a_sink_table_names_the_key() {
        let raw: RawConfig =
            toml::from_str("sinks = [{ type = \"files\", dir = \"/x\", rol_every = \"1h\" }]")
                .expect("valid toml");
        let err = raw
            .sinks
            .into_iter()
            .next()
            .expect("a sink")
            .to_spec()
            .expect_err("typo");
        assert!(err.0.contains("rol_every"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = toml::from_str::<RawConfig>("[stream]\nurll = \"x\"\n").expect_err("typo");
        assert!(err.to_string().contains("urll"), "{err}");
    }

    #[test]
    fn missing_password_says_what_to_set() {
        // GNIP_PASSWORD may be set in a developer's shell; this test only
        // makes sense without it.
        if std::env::var_os("GNIP_PASSWORD").is_some() {
            return;
        }
        let args = run_args(&["--url", PT, "--user", "u"]);
        let err = Config::merge(RawConfig::default(), &args, None).expect_err("no password");
        assert!(err.0.contains("GNIP_PASSWORD"), "{err}");
    }

    #[test]
    fn missing_url_says_what_to_set() {
        let err = Config::merge(RawConfig::default(), &run_args(&[]), None).expect_err("no url");
        assert!(err.0.contains("--url"), "{err}");
    }
}
