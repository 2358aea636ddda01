//! Counters shared by the pipeline's threads, read by the status line, the
//! periodic status log and the exit summary. Plain relaxed atomics: each is
//! written by one thread and only ever read as an approximate snapshot.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the ingest thread has taken into the spool.
#[derive(Debug, Default)]
pub struct IngestCounters {
    /// Records appended to the spool (every kind).
    pub records: AtomicU64,
    /// Activities appended to the spool.
    pub activities: AtomicU64,
    /// Compliance events appended.
    pub compliance: AtomicU64,
    /// System messages appended.
    pub system: AtomicU64,
    /// Payload bytes appended.
    pub bytes: AtomicU64,
    /// Reconnections seen (connections after the first, over all partitions).
    pub reconnects: AtomicU64,
    /// Failed appends to the spool (each retried).
    pub spool_errors: AtomicU64,
    /// Times the stream had to wait for a full spool (pause policy).
    pub spool_full_waits: AtomicU64,
    /// Records dropped from the spool by the drop-oldest policy.
    pub spool_dropped: AtomicU64,
    /// Writes to the gap journal that failed.
    pub gap_journal_errors: AtomicU64,
    /// Receive time of the newest record, ms since the epoch (0: none yet).
    pub last_received_at_ms: AtomicU64,
}

/// What one sink runner has done.
#[derive(Debug)]
pub struct SinkCounters {
    /// The sink's name (also its spool cursor's name).
    pub name: String,
    /// Entries written and committed.
    pub written: AtomicU64,
    /// Activities among them.
    pub activities: AtomicU64,
    /// Batches written and committed.
    pub batches: AtomicU64,
    /// Failed write attempts (each retried unless fatal).
    pub failures: AtomicU64,
    /// The sink is failing right now (retrying).
    pub failing: AtomicBool,
    /// The sink stopped for good.
    pub dead: AtomicBool,
    /// The last error, for the status display.
    pub last_error: Mutex<Option<String>>,
}

impl SinkCounters {
    /// Fresh counters for the sink called `name`.
    pub fn new(name: &str) -> Arc<SinkCounters> {
        Arc::new(SinkCounters {
            name: name.to_owned(),
            written: AtomicU64::new(0),
            activities: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            last_error: Mutex::new(None),
        })
    }

    /// Notes an error message for the status display.
    pub fn set_error(&self, error: Option<String>) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = error;
        }
    }
}

/// Reads a counter.
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Adds to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}
