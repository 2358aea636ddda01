//! Named readers: each sink reads durable entries at its own pace and
//! commits its cursor once it has durably written what it read.
//!
//! A batch is one large `pread` into one buffer; every entry's payload is a
//! `Bytes` slice of that buffer, so handing out a batch copies nothing per
//! entry. Checksums are verified on every read: durable data that no longer
//! matches is reported as corruption, never passed on.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{info, warn};

use crate::error::SpoolError;
use crate::format::{RECORD_HEADER_LEN, RecordHeader, SEGMENT_HEADER_LEN, record_len};
use crate::spool::{ReaderSlot, Shared, remove_files};
use crate::{Entry, Position, cursor, segment};

/// One named reader of a spool. Use it from one thread; open one per sink.
#[derive(Debug)]
pub struct SpoolReader {
    shared: Arc<Shared>,
    name: String,
    /// Where the next batch starts.
    read: Position,
    /// The last cursor saved.
    committed: Position,
    /// The segment file last read: its first offset, handle and path.
    file: Option<(u64, File, PathBuf)>,
}

impl SpoolReader {
    pub(crate) fn open(shared: Arc<Shared>, name: &str) -> Result<SpoolReader, SpoolError> {
        if !cursor::valid_name(name) {
            return Err(SpoolError::InvalidReaderName(name.to_string()));
        }
        let (committed, is_new) = {
            let mut st = shared.lock();
            let oldest = st.oldest();
            match st.readers.get_mut(name) {
                Some(slot) if slot.open => return Err(SpoolError::ReaderBusy(name.to_string())),
                Some(slot) => {
                    slot.open = true;
                    (slot.committed, false)
                }
                None => {
                    st.readers.insert(
                        name.to_string(),
                        ReaderSlot {
                            committed: oldest,
                            open: true,
                        },
                    );
                    (oldest, true)
                }
            }
        };
        if is_new
            && !shared.config.in_memory
            && let Err(e) = cursor::save(&shared.cursor_dir, name, committed)
        {
            shared.lock().readers.remove(name);
            return Err(e);
        }
        info!(
            reader = name,
            cursor_offset = committed.offset,
            cursor_seq = committed.seq,
            new = is_new,
            "Spool reader opened."
        );
        Ok(SpoolReader {
            shared,
            name: name.to_string(),
            read: committed,
            committed,
            file: None,
        })
    }

    /// The reader's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns up to `max_records` durable entries after the read position,
    /// about `max_bytes` of them (at least one entry however large), waiting
    /// up to `wait` for the first one. Returns an empty batch on timeout,
    /// and `Ok(None)` once the writer closed and everything was read.
    ///
    /// If the drop-oldest policy deleted entries ahead of the read position
    /// the reader jumps to the oldest retained entry (the drop is reported
    /// by [`Spool::take_drops`](crate::Spool::take_drops)).
    ///
    /// # Errors
    ///
    /// [`SpoolError::Corrupt`] when durable data no longer reads back, or
    /// [`SpoolError::Io`].
    pub fn read_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
        wait: Duration,
    ) -> Result<Option<Vec<Entry>>, SpoolError> {
        let max_records = max_records.max(1);
        let deadline = Instant::now().checked_add(wait);
        let mut st = self.shared.lock();

        // Wait for durable data past the read position.
        loop {
            let oldest = st.oldest();
            if self.read.offset < oldest.offset {
                warn!(reader = %self.name, from = self.read.offset, to = oldest.offset, "Spool entries this reader had not read were dropped; jumping forward.");
                self.read = oldest;
            }
            if self.read.offset < st.durable.offset {
                break;
            }
            if st.closed {
                return Ok(None);
            }
            let now = Instant::now();
            st = match deadline {
                None => self.shared.data.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) if now >= d => return Ok(Some(Vec::new())),
                Some(d) => {
                    self.shared
                        .data
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }

        // Fill the batch, segment by segment, from what is durable now.
        let mut out: Vec<Entry> = Vec::new();
        let mut budget = max_bytes;
        loop {
            let idx = st.segment_index(self.read);
            let seg = &st.segments[idx];
            let (first, limit) = (seg.first, seg.end);
            let room = max_records - out.len();
            let before = out.len();

            if seg.path.is_none() {
                // Memory mode: clone the entries (a reference count each).
                let start = (self.read.seq - first.seq) as usize;
                for e in seg.entries[start..].iter().take(room) {
                    let len = record_len(e.payload.len()) as usize;
                    if !out.is_empty() && len > budget {
                        break;
                    }
                    budget = budget.saturating_sub(len);
                    out.push(e.clone());
                }
                drop(st);
            } else {
                // Disk: open the segment under the lock (it cannot be
                // deleted while we hold it, and an open handle survives a
                // later deletion), read outside it.
                if self
                    .file
                    .as_ref()
                    .is_none_or(|(f, _, _)| *f != first.offset)
                {
                    let path = seg.path.clone().expect("disk segments have a path");
                    let file =
                        File::open(&path).map_err(|e| SpoolError::io("open segment", &path, e))?;
                    self.file = Some((first.offset, file, path));
                }
                drop(st);
                let (_, file, path) = self.file.as_ref().expect("opened just above");
                let got = read_disk_range(
                    file,
                    path,
                    first,
                    self.read,
                    limit,
                    Take {
                        max_records: room,
                        max_bytes: budget,
                        at_least_one: out.is_empty(),
                    },
                )?;
                if let Some(last) = got.last() {
                    budget = budget.saturating_sub((last.end.offset - self.read.offset) as usize);
                }
                out.extend(got);
            }
            if let Some(last) = out.last() {
                self.read = last.end;
            }
            if out.len() == before || out.len() >= max_records || budget < RECORD_HEADER_LEN {
                break;
            }
            st = self.shared.lock();
            // Stop at the durable end, and if a drop overtook the read
            // position meanwhile (the next call jumps and says so).
            if self.read.offset >= st.durable.offset || self.read.offset < st.oldest().offset {
                break;
            }
        }
        Ok(Some(out))
    }

    /// Saves the cursor at `upto` (the `end` of an entry this reader
    /// returned) durably, after which the entries before it are never
    /// returned again to this reader, even after a crash; segments every
    /// reader has passed are deleted. Call it only once the sink has durably
    /// written those entries. Positions at or before the saved cursor are
    /// ignored.
    ///
    /// # Errors
    ///
    /// [`SpoolError::InvalidCommit`] for a position past what was read, or
    /// an I/O error saving the cursor (the saved cursor is then unchanged).
    pub fn commit(&mut self, upto: Position) -> Result<(), SpoolError> {
        if upto.offset <= self.committed.offset {
            return Ok(());
        }
        if upto.offset > self.read.offset {
            return Err(SpoolError::InvalidCommit {
                upto,
                read: self.read,
            });
        }
        if !self.shared.config.in_memory {
            cursor::save(&self.shared.cursor_dir, &self.name, upto)?;
        }
        self.committed = upto;
        let gone = {
            let mut st = self.shared.lock();
            if let Some(slot) = st.readers.get_mut(&self.name) {
                slot.committed = slot.committed.max(upto);
            }
            st.reclaim()
        };
        self.shared.space.notify_all();
        remove_files(gone);
        Ok(())
    }

    /// Moves the read position back to the last committed cursor, to read
    /// again what a failed sink write did not take.
    pub fn rewind(&mut self) {
        self.read = self.committed;
    }

    /// The last committed (saved) cursor.
    pub fn cursor(&self) -> Position {
        self.committed
    }

    /// Where the next [`read_batch`](Self::read_batch) starts.
    pub fn read_position(&self) -> Position {
        self.read
    }
}

impl Drop for SpoolReader {
    fn drop(&mut self) {
        if let Some(slot) = self.shared.lock().readers.get_mut(&self.name) {
            slot.open = false;
        }
    }
}

/// How much one read may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Take {
    /// Most entries.
    pub max_records: usize,
    /// About this many bytes.
    pub max_bytes: usize,
    /// Return a first entry larger than `max_bytes` rather than nothing.
    pub at_least_one: bool,
}

/// Reads entries of the segment starting at `seg_first` from `from` up to
/// `limit` (both entry boundaries within the segment): one read of about
/// `max_bytes`, entries sliced out of it. With `at_least_one`, a first entry
/// larger than `max_bytes` is read whole on its own; without, it is left.
pub(crate) fn read_disk_range(
    file: &File,
    path: &Path,
    seg_first: Position,
    from: Position,
    limit: Position,
    take: Take,
) -> Result<Vec<Entry>, SpoolError> {
    let Take {
        max_records,
        max_bytes,
        at_least_one,
    } = take;
    let avail = limit.offset.saturating_sub(from.offset);
    if avail == 0 {
        return Ok(Vec::new());
    }
    let file_pos = SEGMENT_HEADER_LEN + (from.offset - seg_first.offset);
    let want = avail.min(max_bytes.max(RECORD_HEADER_LEN) as u64) as usize;
    let mut buf = read_exact(file, path, file_pos, want)?;

    // A first entry larger than max_bytes is read whole on its own.
    if buf.len() < RECORD_HEADER_LEN {
        return Err(corrupt(
            path,
            file_pos,
            format!(
                "{} bytes before the durable end, fewer than a record",
                buf.len()
            ),
        ));
    }
    let head = RecordHeader::decode(&buf).map_err(|e| corrupt(path, file_pos, e.to_string()))?;
    let first_len = record_len(head.len);
    if first_len > avail {
        return Err(corrupt(
            path,
            file_pos,
            format!("record of {first_len} bytes runs past the durable end"),
        ));
    }
    if first_len as usize > buf.len() {
        if !at_least_one {
            return Ok(Vec::new());
        }
        buf = read_exact(file, path, file_pos, first_len as usize)?;
    }

    let buf = Bytes::from(buf);
    let mut out = Vec::new();
    let mut at = 0usize;
    let mut pos = from;
    while out.len() < max_records && buf.len() - at >= RECORD_HEADER_LEN {
        let frame_pos = file_pos + at as u64;
        let h = RecordHeader::decode(&buf[at..])
            .map_err(|e| corrupt(path, frame_pos, e.to_string()))?;
        let len = RECORD_HEADER_LEN + h.len;
        if buf.len() - at < len {
            if (pos.offset + len as u64) > limit.offset {
                return Err(corrupt(
                    path,
                    frame_pos,
                    format!("record of {len} bytes runs past the durable end"),
                ));
            }
            break;
        }
        h.verify(&buf[at..at + len])
            .map_err(|e| corrupt(path, frame_pos, e.to_string()))?;
        pos = Position {
            offset: pos.offset + len as u64,
            seq: pos.seq + 1,
        };
        out.push(Entry {
            kind: h.kind,
            partition: h.partition,
            received_at_ms: h.received_at_ms,
            payload: buf.slice(at + RECORD_HEADER_LEN..at + len),
            end: pos,
        });
        at += len;
    }
    Ok(out)
}

fn corrupt(path: &Path, offset: u64, reason: String) -> SpoolError {
    SpoolError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    }
}

fn read_exact(file: &File, path: &Path, pos: u64, len: usize) -> Result<Vec<u8>, SpoolError> {
    let mut buf = vec![0u8; len];
    let got = segment::read_full_at(file, &mut buf, pos)
        .map_err(|e| SpoolError::io("read segment", path, e))?;
    if got < len {
        return Err(corrupt(
            path,
            pos + got as u64,
            format!("file ends {} bytes before the durable end", len - got),
        ));
    }
    Ok(buf)
}
