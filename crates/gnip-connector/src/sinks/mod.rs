//! Sinks: the places records land. Each sink runs on its own thread, reads
//! batches of spooled entries, writes them durably, and only then lets the
//! runner move its spool cursor.
//!
//! A sink must be idempotent by post id: after a crash the runner hands it
//! again every entry past its last saved cursor, so the same record can
//! arrive twice and must be stored once.

use std::time::SystemTime;

use gnip_spool::Entry;

/// What went wrong in a sink, sorted by what the runner does next.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The service or the disk failed in a way that may pass (a database
    /// restarting, a full disk, a locked file). The runner retries the same
    /// batch with backoff; the sink falls behind in the spool meanwhile.
    #[error("{0}")]
    Transient(String),
    /// The sink cannot go on (bad configuration, schema it cannot migrate).
    /// The runner stops this sink and reports it; other sinks carry on.
    #[error("{0}")]
    Fatal(String),
}

/// A destination for records.
///
/// Methods are blocking: every sink runs on a thread of its own, so a slow
/// write never holds back the stream reader or another sink.
pub trait Sink: Send {
    /// Short name used in logs, metrics and as the spool cursor's name
    /// (for example `files`, `sqlite`).
    fn name(&self) -> &str;

    /// Writes every entry of `batch` durably. `Ok` means the whole batch
    /// would survive a crash; only then does the runner save the cursor.
    ///
    /// # Errors
    ///
    /// [`SinkError::Transient`] when a retry may succeed, and
    /// [`SinkError::Fatal`] when it cannot.
    fn write_batch(&mut self, batch: &[Entry]) -> Result<(), SinkError>;

    /// Called when no entry has arrived for a while, so that time-based
    /// work (rolling a file at the top of the hour) happens on a quiet
    /// stream too.
    ///
    /// # Errors
    ///
    /// As for [`Sink::write_batch`].
    fn idle(&mut self, _now: SystemTime) -> Result<(), SinkError> {
        Ok(())
    }

    /// Flushes and closes everything; the sink is not used afterwards.
    ///
    /// # Errors
    ///
    /// As for [`Sink::write_batch`].
    fn close(&mut self) -> Result<(), SinkError>;
}

pub mod files;
pub mod sqlite;
pub mod stdout;

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

pub use files::{FilesConfig, FilesSink};
pub use sqlite::{SqliteConfig, SqliteSink};
pub use stdout::{StdoutConfig, StdoutSink};

/// The sink specifications this build understands, as written after
/// `--sink`; listed in errors so an operator sees what to type instead.
pub const KNOWN_SINK_SPECS: &[&str] = &["stdout", "stdout:all", "files:DIR", "sqlite:PATH"];

/// What a sink needs to know about the stream it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkContext {
    /// The stream's configured name; it prefixes the names of rolled files.
    pub stream_name: String,
}

/// A sink as configured: by `--sink SPEC` on the command line, or as one
/// `[[sinks]]` table (with a `type` key) in the TOML configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkSpec {
    /// Raw records on standard output, one per line.
    Stdout(StdoutConfig),
    /// Rolled gzip files of raw records.
    Files(FilesConfig),
    /// An embedded SQLite database.
    Sqlite(SqliteConfig),
}

/// A sink specification or configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The part before `:` names no sink this build has.
    #[error("unknown sink `{scheme}`; known sinks: {}", KNOWN_SINK_SPECS.join(", "))]
    UnknownScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// A sink that stores data was given no place to store it.
    #[error("sink `{scheme}` needs a path, as in `{example}`")]
    MissingPath {
        /// The scheme as written.
        scheme: String,
        /// The form the specification should take.
        example: &'static str,
    },
    /// A setting is out of range; the message names it.
    #[error("sink `{sink}`: {message}")]
    Invalid {
        /// The sink's name.
        sink: String,
        /// What is wrong and what would be accepted.
        message: String,
    },
}

impl FromStr for SinkSpec {
    type Err = SpecError;

    /// Parses `stdout`, `stdout:all`, `files:DIR` or `sqlite:PATH`, with
    /// defaults for every other setting.
    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let spec = spec.trim();
        // `mysql://host/db` and friends split at the first `:` as well, so
        // a future scheme is reported by name rather than as a bad path.
        let (scheme, rest) = match spec.split_once(':') {
            Some((scheme, rest)) => (scheme, Some(rest)),
            None => (spec, None),
        };
        let path = |example: &'static str| match rest {
            Some(p) if !p.trim().is_empty() => Ok(std::path::PathBuf::from(p.trim())),
            _ => Err(SpecError::MissingPath {
                scheme: scheme.to_owned(),
                example,
            }),
        };
        match scheme.to_ascii_lowercase().as_str() {
            "stdout" => match rest {
                None | Some("") => Ok(SinkSpec::Stdout(StdoutConfig::default())),
                Some("all") => Ok(SinkSpec::Stdout(StdoutConfig {
                    all_kinds: true,
                    ..StdoutConfig::default()
                })),
                Some(other) => Err(SpecError::Invalid {
                    sink: "stdout".to_owned(),
                    message: format!("unknown option `{other}`; use `stdout` or `stdout:all`"),
                }),
            },
            "files" => Ok(SinkSpec::Files(FilesConfig::new(path("files:DIR")?))),
            "sqlite" => Ok(SinkSpec::Sqlite(SqliteConfig::new(path("sqlite:PATH")?))),
            _ => Err(SpecError::UnknownScheme {
                scheme: scheme.to_owned(),
            }),
        }
    }
}

impl fmt::Display for SinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkSpec::Stdout(c) if c.all_kinds => f.write_str("stdout:all"),
            SinkSpec::Stdout(_) => f.write_str("stdout"),
            SinkSpec::Files(c) => write!(f, "files:{}", c.dir.display()),
            SinkSpec::Sqlite(c) => write!(f, "sqlite:{}", c.path.display()),
        }
    }
}

impl SinkSpec {
    /// The sink's name: its spool cursor's name and its label in logs.
    pub fn name(&self) -> &str {
        match self {
            SinkSpec::Stdout(c) => c.name.as_deref().unwrap_or("stdout"),
            SinkSpec::Files(c) => c.name.as_deref().unwrap_or("files"),
            SinkSpec::Sqlite(c) => c.name.as_deref().unwrap_or("sqlite"),
        }
    }

    /// Checks every setting without touching the disk.
    ///
    /// # Errors
    ///
    /// [`SpecError::Invalid`] naming the first setting out of range.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            SinkSpec::Stdout(c) => c.validate(),
            SinkSpec::Files(c) => c.validate(),
            SinkSpec::Sqlite(c) => c.validate(),
        }
    }

    /// Validates the configuration and opens the sink: creates directories,
    /// recovers files left by a crash, opens and migrates the database.
    ///
    /// # Errors
    ///
    /// [`SinkError::Fatal`] for an invalid configuration or a database of a
    /// newer schema; [`SinkError::Transient`] when the disk or the database
    /// refuses for now (full, locked, read-only).
    pub fn open(&self, ctx: &SinkContext) -> Result<Box<dyn Sink>, SinkError> {
        self.validate()
            .map_err(|e| SinkError::Fatal(e.to_string()))?;
        Ok(match self {
            SinkSpec::Stdout(c) => Box::new(StdoutSink::stdout(c)),
            SinkSpec::Files(c) => Box::new(FilesSink::open(c, ctx)?),
            SinkSpec::Sqlite(c) => Box::new(SqliteSink::open(c)?),
        })
    }
}

/// Checks a configured sink name: it becomes a cursor file name, so it is
/// kept to lower-case letters, digits, `-` and `_`.
fn validate_name(kind: &str, name: Option<&str>) -> Result<(), SpecError> {
    let Some(name) = name else { return Ok(()) };
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SpecError::Invalid {
            sink: kind.to_owned(),
            message: format!("name `{name}` must be 1 to 64 characters of a-z, 0-9, `-` and `_`"),
        })
    }
}

/// Appends `payload` and a `\n` to `out`, keeping the one-record-per-line
/// shape: a record is framed on `\r\n` upstream, so a CR or LF left inside
/// it can only be JSON whitespace between tokens (JSON strings cannot hold
/// raw control characters), and turning it into a space keeps the JSON
/// equal. Returns whether the payload had to be changed.
fn push_line(out: &mut Vec<u8>, payload: &[u8]) -> bool {
    let start = out.len();
    out.extend_from_slice(payload);
    out.push(b'\n');
    // `contains` on bytes is a vectorised search; the rewrite below runs
    // only for the rare record that needs it.
    if !payload.contains(&b'\n') && !payload.contains(&b'\r') {
        return false;
    }
    for b in &mut out[start..start + payload.len()] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_specs() {
        assert_eq!(
            "stdout".parse::<SinkSpec>().unwrap(),
            SinkSpec::Stdout(StdoutConfig::default())
        );
        match "stdout:all".parse::<SinkSpec>().unwrap() {
            SinkSpec::Stdout(c) => assert!(c.all_kinds),
            other => panic!("parsed as {other:?}"),
        }
        match "files:/var/lib/gnip/out".parse::<SinkSpec>().unwrap() {
            SinkSpec::Files(c) => {
                assert_eq!(c.dir, std::path::Path::new("/var/lib/gnip/out"));
                assert_eq!(c.roll_every, std::time::Duration::from_secs(3600));
            }
            other => panic!("parsed as {other:?}"),
        }
        let s: SinkSpec = "sqlite:data/gnip.db".parse().unwrap();
        assert_eq!(s.name(), "sqlite");
        assert_eq!(s.to_string(), "sqlite:data/gnip.db");
    }

    #[test]
    fn unknown_scheme_lists_the_known_ones() {
        let err = "mysql://user@db/gnip".parse::<SinkSpec>().unwrap_err();
        assert_eq!(
            err,
            SpecError::UnknownScheme {
                scheme: "mysql".into()
            }
        );
        let text = err.to_string();
        for known in KNOWN_SINK_SPECS {
            assert!(text.contains(known), "{text}");
        }
    }

    #[test]
    fn storage_sinks_need_a_path() {
        for spec in ["files", "files:", "sqlite", "sqlite: "] {
            let err = spec.parse::<SinkSpec>().unwrap_err();
            assert!(
                matches!(err, SpecError::MissingPath { .. }),
                "{spec}: {err}"
            );
        }
        assert!(matches!(
            "stdout:some".parse::<SinkSpec>().unwrap_err(),
            SpecError::Invalid { .. }
        ));
    }

    #[derive(Debug, Deserialize)]
    struct Doc {
        sinks: Vec<SinkSpec>,
    }

    #[test]
    fn reads_sink_tables_from_toml() {
        let doc: Doc = toml::from_str(
            r#"
            [[sinks]]
            type = "files"
            dir = "/data/out"
            roll_every = "15m"
            roll_bytes = 1048576
            level = 6

            [[sinks]]
            type = "sqlite"
            name = "archive"
            path = "/data/gnip.db"
            busy_timeout = "2s"

            [[sinks]]
            type = "stdout"
            "#,
        )
        .unwrap();
        match &doc.sinks[0] {
            SinkSpec::Files(c) => {
                assert_eq!(c.roll_every, std::time::Duration::from_secs(900));
                assert_eq!(c.roll_bytes, 1 << 20);
                assert_eq!(c.level, 6);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(doc.sinks[1].name(), "archive");
        assert_eq!(doc.sinks[2].name(), "stdout");
        for s in &doc.sinks {
            s.validate().unwrap();
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<Doc>(
            "[[sinks]]\ntype = \"files\"\ndir = \"/x\"\nroll_evry = \"1h\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("roll_evry"), "{err}");
        let err = toml::from_str::<Doc>("[[sinks]]\ntype = \"kafka\"\n").unwrap_err();
        assert!(err.to_string().contains("kafka"), "{err}");
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("files", Some("files-2")).is_ok());
        assert!(validate_name("files", Some("")).is_err());
        assert!(validate_name("files", Some("../x")).is_err());
        assert!(validate_name("files", Some("Files")).is_err());
    }

    #[test]
    fn lines_stay_lines() {
        let mut out = Vec::new();
        assert!(!push_line(&mut out, b"{\"a\":1}"));
        assert!(push_line(&mut out, b"{\"b\":\r\n2}"));
        assert_eq!(out, b"{\"a\":1}\n{\"b\":  2}\n");
    }
}
