//! The files sink: raw records in gzip files, one record per line, rolled
//! by time and by size, under `DIR/YYYY/MM/DD/HH/` of each file's roll
//! start. Activities, compliance events, system messages and unknown
//! shapes each go to files of their own
//! (`STREAM-activities-20261203T170000Z-0001.jsonl.gz`, `-compliance-`,
//! `-system-`, `-unknown-`).
//!
//! Records are filed by the time they were received, so a sink catching
//! up after an outage puts each record in the hour it arrived. A file
//! being written ends in `.part` and is renamed once it is a finished gzip
//! file. Each batch ends with a gzip sync flush and an fsync, so everything
//! acknowledged survives a crash or a power cut; on open, `.part` files
//! left by a crash are rebuilt into finished files.

mod disk;
mod naming;
mod recover;
mod sink;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use sink::FilesSink;

use super::{SpecError, validate_name};

/// Default roll period: one file per hour, the unit people ask for when
/// they look for "what came in between 17:00 and 18:00".
pub const DEFAULT_ROLL_EVERY: Duration = Duration::from_secs(3600);

/// Default size at which a file rolls early, in uncompressed bytes: 1 GiB,
/// about 300,000 records of 3.4 KB, or 100-150 MB of gzip at the fast
/// level; small enough to move and re-read in one go.
pub const DEFAULT_ROLL_BYTES: u64 = 1 << 30;

/// Default gzip level: 1 (fast). Tweets compress about 6 to 8 times at
/// level 1; higher levels gain a few percent for several times the CPU.
pub const DEFAULT_LEVEL: u32 = 1;

/// Settings of the files sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// Cursor name; `files` when unset.
    #[serde(default)]
    pub name: Option<String>,
    /// Root directory of the files; created if missing.
    pub dir: PathBuf,
    /// Roll period, aligned on UTC midnight (for example `1h`, `15m`).
    #[serde(default = "default_roll_every", with = "humantime_serde")]
    pub roll_every: Duration,
    /// Uncompressed bytes after which a file rolls before its period ends.
    #[serde(default = "default_roll_bytes")]
    pub roll_bytes: u64,
    /// gzip level, 0 (store) to 9 (smallest).
    #[serde(default = "default_level")]
    pub level: u32,
}

fn default_roll_every() -> Duration {
    DEFAULT_ROLL_EVERY
}

fn default_roll_bytes() -> u64 {
    DEFAULT_ROLL_BYTES
}

fn default_level() -> u32 {
    DEFAULT_LEVEL
}

impl FilesConfig {
    /// Default settings for files under `dir`.
    pub fn new(dir: PathBuf) -> Self {
        FilesConfig {
            name: None,
            dir,
            roll_every: DEFAULT_ROLL_EVERY,
            roll_bytes: DEFAULT_ROLL_BYTES,
            level: DEFAULT_LEVEL,
        }
    }

    /// Checks the settings without touching the disk.
    ///
    /// # Errors
    ///
    /// [`SpecError::Invalid`] when the roll period is not a whole number of
    /// seconds from 1 s to 24 h dividing a day (so that every day's files
    /// start at the same times), when `roll_bytes` is below 1 MiB, when the
    /// level is above 9, or when the name cannot be a cursor name.
    pub fn validate(&self) -> Result<(), SpecError> {
        let invalid = |message: String| SpecError::Invalid {
            sink: self.name.clone().unwrap_or_else(|| "files".to_owned()),
            message,
        };
        validate_name("files", self.name.as_deref())?;
        if self.dir.as_os_str().is_empty() {
            return Err(invalid("`dir` is empty".to_owned()));
        }
        let secs = self.roll_every.as_secs();
        if self.roll_every.subsec_nanos() != 0 || secs == 0 || secs > 86_400 || 86_400 % secs != 0 {
            return Err(invalid(format!(
                "`roll_every` = {} must be whole seconds from 1s to 24h that divide a day (1h, 15m, 6h, ...)",
                humantime::format_duration(self.roll_every)
            )));
        }
        if self.roll_bytes < 1 << 20 {
            return Err(invalid(format!(
                "`roll_bytes` = {} is below the 1 MiB minimum",
                self.roll_bytes
            )));
        }
        if self.level > 9 {
            return Err(invalid(format!(
                "`level` = {} is not a gzip level (0 to 9)",
                self.level
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        FilesConfig::new("/tmp/x".into()).validate().unwrap();
    }

    #[test]
    fn bad_settings_are_named() {
        let base = FilesConfig::new("/tmp/x".into());
        let cases = [
            (
                FilesConfig {
                    roll_every: Duration::from_secs(7 * 60),
                    ..base.clone()
                },
                "roll_every",
            ),
            (
                FilesConfig {
                    roll_every: Duration::from_millis(1500),
                    ..base.clone()
                },
                "roll_every",
            ),
            (
                FilesConfig {
                    roll_every: Duration::from_secs(2 * 86_400),
                    ..base.clone()
                },
                "roll_every",
            ),
            (
                FilesConfig {
                    roll_bytes: 10,
                    ..base.clone()
                },
                "roll_bytes",
            ),
            (
                FilesConfig {
                    level: 10,
                    ..base.clone()
                },
                "level",
            ),
            (
                FilesConfig {
                    dir: PathBuf::new(),
                    ..base.clone()
                },
                "dir",
            ),
        ];
        for (config, word) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(word), "{err}");
        }
    }
}
