//! A durable, segmented, checksummed log on disk with one cursor per reader.
//!
//! The stream reader appends every record it takes; each sink reads at its
//! own pace and saves its cursor only after it has durably written a batch.
//! The spool knows nothing of what a record means: it stores a one-byte
//! kind, a partition, a receive time and the payload bytes.

#![warn(missing_docs)]

pub mod entry;

pub use entry::{Entry, EntryRef, Position};
