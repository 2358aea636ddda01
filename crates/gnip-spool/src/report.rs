//! What the spool tells its owner: what recovery did on open, which entries
//! a full spool dropped, and the numbers behind metrics.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::Position;

/// What [`Spool::open`](crate::Spool::open) found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes cut from the tail of the last segment (a torn or corrupt
    /// write); zero after a clean shutdown.
    pub truncated_bytes: u64,
    /// The segment that was cut, and the file offset of the cut.
    pub truncated_at: Option<(PathBuf, u64)>,
    /// Why the tail scan stopped (length or checksum), when it cut.
    pub truncation_reason: Option<String>,
    /// Segments discarded because a segment before a hole in the log was
    /// left over from an interrupted deletion.
    pub discarded_segments: usize,
    /// Segments retained.
    pub segments: usize,
    /// End of the durable log after recovery.
    pub head: Position,
    /// Readers found in `cursors/`.
    pub readers: usize,
}

/// Entries the [`FullPolicy::DropOldest`](crate::FullPolicy::DropOldest)
/// policy deleted before every reader had taken them: a gap that backfill
/// cannot cover, to be written to the gap journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropReport {
    /// Readers that had not committed past the dropped entries.
    pub readers: Vec<String>,
    /// Position of the first dropped entry that a reader had not taken:
    /// the start of the segment, or the cursor of the reader furthest
    /// behind if it was inside the segment.
    pub from: Position,
    /// Position just past the last dropped entry (where readers resume).
    pub to: Position,
    /// Number of entries dropped (`to.seq - from.seq`).
    pub records: u64,
    /// Receive time of the first dropped entry, when known.
    pub first_received_at_ms: Option<i64>,
    /// Receive time of the last dropped entry, when known.
    pub last_received_at_ms: Option<i64>,
}

/// One reader's position and how far behind it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderStats {
    /// Reader name.
    pub name: String,
    /// Last committed cursor.
    pub cursor: Position,
    /// Whether a [`SpoolReader`](crate::SpoolReader) of that name is open.
    pub open: bool,
    /// Durable entries after the cursor.
    pub lag_records: u64,
    /// Durable bytes after the cursor.
    pub lag_bytes: u64,
}

/// A snapshot of the spool for metrics and the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolStats {
    /// Whether the spool keeps entries in memory only.
    pub in_memory: bool,
    /// Bytes held: segment files on disk, or entries in memory.
    pub disk_bytes: u64,
    /// The configured limit.
    pub max_bytes: u64,
    /// Segments retained.
    pub segments: usize,
    /// Position of the oldest retained entry.
    pub oldest: Position,
    /// End of what the writer has handed to the OS (it writes in chunks of
    /// about 1 MiB, and at every sync).
    pub head: Position,
    /// End of what is durable and visible to readers.
    pub durable: Position,
    /// Every known reader, by name.
    pub readers: Vec<ReaderStats>,
    /// Segments deleted because every reader had passed them.
    pub segments_deleted_total: u64,
    /// Segments dropped by the drop-oldest policy.
    pub drops_total: u64,
    /// Entries dropped by the drop-oldest policy.
    pub dropped_records_total: u64,
    /// Times the writer paused on a full spool.
    pub pauses_total: u64,
    /// Since when the writer has been paused, if it is.
    pub paused_since: Option<SystemTime>,
    /// Times a reader's cursor was behind the oldest entry and jumped.
    pub cursor_jumps_total: u64,
    /// Whether a writer is open.
    pub writer_open: bool,
}
