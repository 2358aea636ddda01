//! The SQLite sink, the embedded default: every post in one table keyed by
//! post id, its matching rules beside it, compliance events and system
//! messages in tables of their own. It runs on the sink's own thread and
//! owns its connection; nothing else in the process touches the database.
//!
//! Durability: WAL journal with `synchronous = FULL`, one transaction per
//! batch. With FULL the WAL is fsynced at every commit, so a batch the sink
//! acknowledged survives a process crash and a power cut; NORMAL would
//! survive a crash only, and could roll back the last batches on power
//! loss after the spool cursor had moved past them.
//!
//! Schema (created and migrated by the program, tracked in
//! `PRAGMA user_version`): see [`SCHEMA_DOC`].

mod schema;
mod sink;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use schema::{SCHEMA_DOC, SCHEMA_VERSION};
pub use sink::{SqliteSink, SqliteStats};

use super::{SpecError, validate_name};

/// Default wait for a lock held by another connection (a reader running a
/// long query, a backup): long enough to ride out a checkpoint, short
/// enough that the runner's backoff and logs take over when it persists.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the SQLite sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// Cursor name; `sqlite` when unset.
    #[serde(default)]
    pub name: Option<String>,
    /// The database file; created with its schema if missing.
    pub path: PathBuf,
    /// How long a write waits for a lock held by another connection
    /// before the batch fails as transient.
    #[serde(default = "default_busy_timeout", with = "humantime_serde")]
    pub busy_timeout: Duration,
}

fn default_busy_timeout() -> Duration {
    DEFAULT_BUSY_TIMEOUT
}

impl SqliteConfig {
    /// Default settings for a database at `path`.
    pub fn new(path: PathBuf) -> Self {
        SqliteConfig {
            name: None,
            path,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
        }
    }

    /// Checks the settings without touching the disk.
    ///
    /// # Errors
    ///
    /// [`SpecError::Invalid`] for an empty path, a busy timeout over ten
    /// minutes, or a name that cannot be a cursor name.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_name("sqlite", self.name.as_deref())?;
        let invalid = |message: String| SpecError::Invalid {
            sink: self.name.clone().unwrap_or_else(|| "sqlite".to_owned()),
            message,
        };
        if self.path.as_os_str().is_empty() {
            return Err(invalid("`path` is empty".to_owned()));
        }
        if self.busy_timeout > Duration::from_secs(600) {
            return Err(invalid(format!(
                "`busy_timeout` = {} is over the 10 min maximum",
                humantime::format_duration(self.busy_timeout)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        SqliteConfig::new("a.db".into()).validate().unwrap();
        assert!(SqliteConfig::new(PathBuf::new()).validate().is_err());
        let slow = SqliteConfig {
            busy_timeout: Duration::from_secs(3600),
            ..SqliteConfig::new("a.db".into())
        };
        assert!(
            slow.validate()
                .unwrap_err()
                .to_string()
                .contains("busy_timeout")
        );
    }
}
