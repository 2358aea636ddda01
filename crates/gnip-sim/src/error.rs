//! The errors [`crate::start`] and the accounting file can report. Faults
//! on a client connection are not errors of the simulator: they are counted
//! in the accounting and logged.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the simulator could not start or finish cleanly.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The corpus file could not be read.
    #[error("cannot read corpus {path}: {source}")]
    Corpus {
        /// The corpus file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The corpus file holds no record the simulator can replay.
    #[error("corpus {path} holds no usable record ({skipped} lines skipped)")]
    EmptyCorpus {
        /// The corpus file.
        path: PathBuf,
        /// Lines that were not a JSON object with a post id.
        skipped: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    /// The accounting file could not be written at shutdown.
    #[error("cannot write accounting file {path}: {source}")]
    AccountingFile {
        /// The file asked for.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
}
