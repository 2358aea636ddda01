//! The unit the spool stores, and the position of an entry in the log.

use bytes::Bytes;

/// A place in the log: the byte offset just past an entry, and the number
/// of entries written before that point. Both only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Logical byte offset in the whole log (not in one segment).
    pub offset: u64,
    /// Count of entries before this position.
    pub seq: u64,
}

/// An entry to append, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    /// Opaque one-byte kind (the connector stores `gnip_client::Kind`).
    pub kind: u8,
    /// Partition the record came from; 0 when the stream has none.
    pub partition: u16,
    /// Receive time, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// The record's bytes, stored verbatim.
    pub payload: &'a [u8],
}

/// An entry read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Opaque one-byte kind, as appended.
    pub kind: u8,
    /// Partition, as appended.
    pub partition: u16,
    /// Receive time, milliseconds since the Unix epoch, as appended.
    pub received_at_ms: i64,
    /// The payload bytes, as appended.
    pub payload: Bytes,
    /// The position just past this entry: committing it means this entry
    /// and every one before it have been taken.
    pub end: Position,
}
