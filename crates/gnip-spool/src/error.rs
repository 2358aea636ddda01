//! The one error type of the spool, sorted by what the caller does next:
//! fix the configuration, fix or remove a damaged file, wait and retry, or
//! stop.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::Position;

/// Everything that can go wrong in the spool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// A file system call failed (disk full, permissions, I/O error).
    #[error("spool I/O error: {op} {path}: {source}")]
    Io {
        /// What the spool was doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A segment file does not start with a valid header: not a spool file,
    /// a format this build does not read, or damage. Nothing is guessed.
    #[error("spool segment {path} has a bad header: {reason}")]
    BadHeader {
        /// The segment file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Data that was durable no longer reads back (bit rot, a file edited or
    /// truncated by something else, a missing segment).
    #[error("spool file {path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset in that file.
        offset: u64,
        /// What did not hold.
        reason: String,
    },
    /// Another process holds the spool directory.
    #[error("spool directory {0} is in use by another process")]
    Locked(PathBuf),
    /// The configuration cannot work.
    #[error("invalid spool configuration: {0}")]
    InvalidConfig(String),
    /// A writer is already open; the spool has one writer at a time.
    #[error("the spool already has a writer")]
    WriterBusy,
    /// A reader of that name is already open.
    #[error("spool reader {0:?} is already open")]
    ReaderBusy(String),
    /// A reader name must be 1 to 64 characters of `[A-Za-z0-9_.-]`, not
    /// starting with a dot, because it names a file.
    #[error("invalid spool reader name {0:?}: use 1 to 64 of A-Z a-z 0-9 _ . - (no leading dot)")]
    InvalidReaderName(String),
    /// An entry larger than the spool accepts.
    #[error("spool entry of {len} bytes exceeds the maximum of {max} bytes")]
    EntryTooLarge {
        /// The payload length.
        len: usize,
        /// The largest payload accepted with this configuration.
        max: usize,
    },
    /// A commit outside what the reader has read.
    #[error("cannot commit {upto:?}: the reader has read up to {read:?}")]
    InvalidCommit {
        /// The position asked for.
        upto: Position,
        /// How far the reader has read.
        read: Position,
    },
    /// The spool stayed full (pause policy) for the whole time allowed.
    #[error("spool is full ({max_bytes} bytes) and readers freed no space within {waited:?}")]
    Full {
        /// The configured limit.
        max_bytes: u64,
        /// How long the append waited.
        waited: Duration,
    },
}

impl SpoolError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        SpoolError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
