//! The simulator's configuration: where it listens, which credentials it
//! accepts, what it serves and how fast, and which faults it injects.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::SimError;
use crate::fault::FaultPlan;

/// The data format of the enterprise streams (the console setting of a real
/// stream). The v2 streams always use [`Format::V2`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Gnip Activity Streams (`verb`, `actor`, `gnip.matching_rules`).
    ActivityStreams,
    /// Twitter original / native enriched (`id_str`, `user`, root `matching_rules`).
    Original,
    /// X API v2 (`data`, `includes`, `matching_rules`).
    V2,
}

impl Format {
    /// The short name used on command lines: `as`, `original`, `v2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::ActivityStreams => "as",
            Format::Original => "original",
            Format::V2 => "v2",
        }
    }
}

impl FromStr for Format {
    type Err = String;

    /// Accepts `as` / `activity-streams`, `original` / `native`, `v2`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "as" | "activity-streams" | "activitystreams" => Ok(Format::ActivityStreams),
            "original" | "native" => Ok(Format::Original),
            "v2" => Ok(Format::V2),
            other => Err(format!(
                "unknown format {other:?} (expected as, original or v2)"
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Extra records appended to each rate-limited stream at a fixed period, on
/// top of the steady rate: a spike like a breaking-news event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Records appended at once.
    pub size: u64,
    /// Time between two bursts.
    pub every: Duration,
}

/// Everything the simulator needs to run. Build it with
/// `SimConfig { field: value, ..SimConfig::default() }`.
#[derive(Clone)]
pub struct SimConfig {
    /// Where to listen. Default `127.0.0.1:0` (a free port; see
    /// [`crate::SimHandle::addr`]).
    pub listen: SocketAddr,
    /// Enterprise account name in the URLs. Default `acme`.
    pub account: String,
    /// Enterprise stream label in the URLs. Default `prod`.
    pub label: String,
    /// Basic-auth user for the enterprise endpoints. Default `sim@example.com`.
    pub username: String,
    /// Basic-auth password for the enterprise endpoints. Default `sim-password`.
    pub password: String,
    /// Bearer token for the v2 endpoints. Default `sim-bearer-token`.
    pub bearer_token: String,
    /// Format of the enterprise streams. Default [`Format::Original`].
    pub format: Format,
    /// A JSON-lines file (optionally gzip-compressed) of real records to
    /// replay instead of generated ones. Default none.
    pub corpus: Option<PathBuf>,
    /// Records per second per stream and partition; `None` serves as fast as
    /// the fastest reader takes them. Default 20/s.
    pub rate: Option<f64>,
    /// Records per stream and partition before the stream goes quiet
    /// (heartbeats only). Default unlimited.
    pub max_records: Option<u64>,
    /// Idle time before an enterprise stream writes a `\r\n` heartbeat.
    /// Default 10 s, as documented.
    pub heartbeat_interval: Duration,
    /// Idle time before a v2 stream writes a heartbeat. Default 20 s, as documented.
    pub v2_heartbeat_interval: Duration,
    /// How far back the history kept for backfill and recovery reaches.
    /// Default 15 minutes (backfill needs 5).
    pub history: Duration,
    /// Upper bound on the history, in bytes of records. Default 512 MiB.
    /// A reader that falls further behind is disconnected as a slow client.
    pub history_bytes: u64,
    /// Simultaneous connections allowed per stream and partition. Default 2.
    pub max_connections: u32,
    /// Faults to inject. Default none.
    pub faults: FaultPlan,
    /// Seed for everything random (content, rule picks, chunk splits). Default 1.
    pub seed: u64,
    /// The initial rules `(value, tag)` of the PowerTrack and v2 filtered
    /// streams. Default three rules matching common generated words.
    pub rules: Vec<(String, Option<String>)>,
    /// Maximum number of rules per stream. Default 1000.
    pub rule_limit: usize,
    /// Time the rules API takes to process a request; requests arriving
    /// meanwhile are refused, as the real API refuses concurrent requests.
    /// Default zero.
    pub rules_latency: Duration,
    /// File the accounting is written to (JSON) at shutdown. Default none.
    pub accounting_file: Option<PathBuf>,
    /// Periodic bursts on rate-limited streams. Default none.
    pub burst: Option<Burst>,
    /// Events per second per compliance partition; `None` follows `rate`.
    pub compliance_rate: Option<f64>,
    /// Distinct generated records per format (ids and times always differ).
    /// Default 512.
    pub pool_size: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            account: "acme".into(),
            label: "prod".into(),
            username: "sim@example.com".into(),
            password: "sim-password".into(),
            bearer_token: "sim-bearer-token".into(),
            format: Format::Original,
            corpus: None,
            rate: Some(20.0),
            max_records: None,
            heartbeat_interval: Duration::from_secs(10),
            v2_heartbeat_interval: Duration::from_secs(20),
            history: Duration::from_secs(15 * 60),
            history_bytes: 512 << 20,
            max_connections: 2,
            faults: FaultPlan::default(),
            seed: 1,
            rules: vec![
                ("coffee OR tea".into(), Some("drinks".into())),
                ("(rain OR snow) lang:en".into(), Some("weather".into())),
                ("#rustlang".into(), None),
            ],
            rule_limit: 1000,
            rules_latency: Duration::ZERO,
            accounting_file: None,
            burst: None,
            compliance_rate: None,
            pool_size: 512,
        }
    }
}

impl fmt::Debug for SimConfig {
    // Hand-written so that the password and the bearer token never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("listen", &self.listen)
            .field("account", &self.account)
            .field("label", &self.label)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("bearer_token", &"<redacted>")
            .field("format", &self.format)
            .field("corpus", &self.corpus)
            .field("rate", &self.rate)
            .field("max_records", &self.max_records)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("v2_heartbeat_interval", &self.v2_heartbeat_interval)
            .field("history", &self.history)
            .field("history_bytes", &self.history_bytes)
            .field("max_connections", &self.max_connections)
            .field("faults", &self.faults)
            .field("seed", &self.seed)
            .field("rules", &self.rules)
            .field("rule_limit", &self.rule_limit)
            .field("rules_latency", &self.rules_latency)
            .field("accounting_file", &self.accounting_file)
            .field("burst", &self.burst)
            .field("compliance_rate", &self.compliance_rate)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl SimConfig {
    /// Checks the values that would make the simulator misbehave.
    ///
    /// # Errors
    ///
    /// [`SimError::Config`] naming the first bad value.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::Config(m.to_string()));
        for (name, rate) in [
            ("rate", self.rate),
            ("compliance_rate", self.compliance_rate),
        ] {
            if let Some(r) = rate
                && !(r.is_finite() && r > 0.0)
            {
                return bad(&format!(
                    "{name} must be a positive number of records per second"
                ));
            }
        }
        if self.heartbeat_interval.is_zero() || self.v2_heartbeat_interval.is_zero() {
            return bad("heartbeat intervals must be positive");
        }
        if self.max_connections == 0 {
            return bad("max_connections must be at least 1");
        }
        if self.pool_size == 0 {
            return bad("pool_size must be at least 1");
        }
        if self.history.is_zero() || self.history_bytes == 0 {
            return bad("history and history_bytes must be positive");
        }
        if let Some(b) = self.burst
            && (b.every.is_zero() || b.size == 0)
        {
            return bad("a burst needs a positive size and period");
        }
        if self.account.is_empty()
            || self.label.is_empty()
            || self.account.contains('/')
            || self.label.contains('/')
        {
            return bad("account and label must be non-empty path segments");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let c = SimConfig {
            password: "hunter2-secret".into(),
            bearer_token: "AAAA-token".into(),
            ..SimConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2-secret") && !shown.contains("AAAA-token"));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(SimConfig::default().validate().is_ok());
        let c = SimConfig {
            rate: Some(0.0),
            ..SimConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("rate"));
        let c = SimConfig {
            max_connections: 0,
            ..SimConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("max_connections")
        );
    }

    #[test]
    fn formats_parse_from_their_short_names() {
        assert_eq!("as".parse::<Format>(), Ok(Format::ActivityStreams));
        assert_eq!("original".parse::<Format>(), Ok(Format::Original));
        assert_eq!("V2".parse::<Format>(), Ok(Format::V2));
        assert!("xml".parse::<Format>().is_err());
    }
}
