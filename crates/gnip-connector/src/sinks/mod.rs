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
