//! The single writer: buffers appends, makes them durable with a group
//! fsync, rolls segments, and applies the full-spool policy.
//!
//! Appends are encoded into a buffer that goes to the file in large writes;
//! `sync_data` then covers everything written so far, and only after it
//! returns does the durable end (what readers may see) move.
//!
//! The buffer keeps every encoded byte until the fsync that covers it has
//! returned. When a write or an fsync fails (a full disk, an I/O error) the
//! file is cut back to its last durable length and the whole buffer is
//! written again on the next attempt: after a failed fsync Linux may have
//! dropped the dirty pages and will not report it twice, so retrying the
//! fsync alone could claim durability for data that is gone. Only if the
//! cut itself fails does the writer refuse further work (reopening the
//! spool then recovers from what is on disk).

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use tracing::{debug, info, warn};

use crate::error::SpoolError;
use crate::format::{SEGMENT_HEADER_LEN, SegmentHeader, encode_record, record_len};
use crate::report::DropReport;
use crate::spool::{Segment, Shared, remove_files};
use crate::{Entry, EntryRef, FullPolicy, Position, cursor, segment};

/// Encoded bytes gathered before one `write` to the file. Large writes keep
/// the system-call count low (one per ~300 activities of 3.4 KB).
const WRITE_CHUNK: usize = 1024 * 1024;

/// Memory reserved at a time for payloads in memory mode; entries are
/// split off it so one allocation serves many entries.
const ARENA_CHUNK: usize = 4 * 1024 * 1024;

/// The one writer of a spool. Use it from one thread.
#[derive(Debug)]
pub struct SpoolWriter {
    shared: Arc<Shared>,
    /// The last segment, open for appending (disk mode).
    file: Option<File>,
    path: PathBuf,
    /// Encoded records not yet covered by an fsync.
    buf: Vec<u8>,
    /// How much of `buf` has been handed to the OS.
    written: usize,
    /// Length of the segment file at the last fsync.
    durable_len: u64,
    /// Position of the first entry of the last segment.
    seg_first: Position,
    /// End of everything appended.
    head: Position,
    /// End of what the last fsync covered.
    durable: Position,
    /// Receive time of the last entry appended.
    last_received: Option<i64>,
    /// Receive time of the first entry of the last segment, once known.
    seg_first_received: Option<i64>,
    last_sync: Instant,
    /// Bytes that may still be appended before the limit must be checked
    /// again under the lock (readers only ever free space).
    room: u64,
    arena: BytesMut,
    max_payload: usize,
    /// Set when a failed write could not be undone: the writer refuses
    /// further work.
    failed: Option<String>,
    finished: bool,
}

impl SpoolWriter {
    pub(crate) fn open(shared: Arc<Shared>) -> Result<SpoolWriter, SpoolError> {
        let (seg_first, head, path, seg_first_received, last_received) = {
            let mut st = shared.lock();
            if st.writer_open {
                return Err(SpoolError::WriterBusy);
            }
            st.writer_open = true;
            st.closed = false;
            st.head = st.durable;
            let last = st
                .segments
                .back()
                .expect("the state always holds at least one segment");
            // A previous writer may have left bytes past the durable end
            // (its last sync failed): the new one starts at the durable end.
            let durable = st.durable;
            (
                last.first,
                durable,
                last.path.clone(),
                last.first_received_at_ms,
                st.last_durable_received_at_ms,
            )
        };
        let (file, durable_len) = match &path {
            Some(p) => match segment::open_for_append(
                p,
                SEGMENT_HEADER_LEN + (head.offset - seg_first.offset),
            ) {
                Ok((f, len)) => (Some(f), len),
                Err(e) => {
                    shared.lock().writer_open = false;
                    return Err(e);
                }
            },
            None => (None, 0),
        };
        let max_payload = shared.config.max_payload_len();
        info!(
            head_offset = head.offset,
            head_seq = head.seq,
            "Spool writer opened."
        );
        Ok(SpoolWriter {
            shared,
            file,
            path: path.unwrap_or_default(),
            buf: Vec::with_capacity(WRITE_CHUNK + 64 * 1024),
            written: 0,
            durable_len,
            seg_first,
            head,
            durable: head,
            last_received,
            seg_first_received,
            last_sync: Instant::now(),
            room: 0,
            arena: BytesMut::new(),
            max_payload,
            failed: None,
            finished: false,
        })
    }

    /// Appends one entry and returns the position just past it. The entry
    /// is durable, and visible to readers, once a sync covers it: when
    /// `fsync_bytes` accumulate, when `fsync_interval` has passed (checked
    /// here and in [`sync_if_due`](Self::sync_if_due)), or on
    /// [`sync`](Self::sync). In memory mode it is visible at once.
    ///
    /// On a full spool this blocks ([`FullPolicy::Pause`]) until readers
    /// free space, or drops the oldest segment ([`FullPolicy::DropOldest`]).
    ///
    /// # Errors
    ///
    /// [`SpoolError::EntryTooLarge`] for a payload above
    /// [`SpoolConfig::max_payload_len`](crate::SpoolConfig::max_payload_len),
    /// or an I/O error of the write or group fsync this append triggered.
    /// On any error this entry was not appended (retry it); entries
    /// appended before stay buffered and the next successful sync makes
    /// them durable.
    pub fn append(&mut self, entry: EntryRef<'_>) -> Result<Position, SpoolError> {
        self.append_inner(entry, None)
    }

    /// Like [`append`](Self::append), but when the spool is full under
    /// [`FullPolicy::Pause`] gives up after `wait` with
    /// [`SpoolError::Full`] (the entry is not appended; the writer stays
    /// paused until an append succeeds).
    ///
    /// # Errors
    ///
    /// As [`append`](Self::append), plus [`SpoolError::Full`].
    pub fn append_timeout(
        &mut self,
        entry: EntryRef<'_>,
        wait: Duration,
    ) -> Result<Position, SpoolError> {
        self.append_inner(entry, Some(wait))
    }

    fn append_inner(
        &mut self,
        entry: EntryRef<'_>,
        wait: Option<Duration>,
    ) -> Result<Position, SpoolError> {
        self.check_failed()?;
        if entry.payload.len() > self.max_payload {
            return Err(SpoolError::EntryTooLarge {
                len: entry.payload.len(),
                max: self.max_payload,
            });
        }
        let len = record_len(entry.payload.len());
        let in_segment = self.head.offset - self.seg_first.offset;
        let roll = in_segment > 0
            && in_segment + len > self.shared.config.segment_bytes - self.shared.header_len();
        let needed = len + if roll { self.shared.header_len() } else { 0 };
        if needed > self.room {
            self.make_room(needed, wait)?;
        }
        if roll {
            self.roll()?;
        }
        self.room -= needed;

        let before = (
            self.head,
            self.last_received,
            self.seg_first_received,
            self.buf.len(),
        );
        self.head = Position {
            offset: self.head.offset + len,
            seq: self.head.seq + 1,
        };
        self.last_received = Some(entry.received_at_ms);
        self.seg_first_received.get_or_insert(entry.received_at_ms);
        if self.file.is_none() {
            self.publish_in_memory(&entry);
            return Ok(self.head);
        }

        encode_record(&entry, &mut self.buf);
        let result = if self.buf.len() as u64 >= self.shared.config.fsync_bytes
            || self.last_sync.elapsed() >= self.shared.config.fsync_interval
        {
            self.sync().map(|_| ())
        } else if self.buf.len() - self.written >= WRITE_CHUNK {
            self.write_out()
        } else {
            Ok(())
        };
        if let Err(e) = result {
            // The file was cut back to its durable length: nothing of the
            // buffer is in it, so this entry can be taken out again.
            (self.head, self.last_received, self.seg_first_received) =
                (before.0, before.1, before.2);
            self.buf.truncate(before.3);
            self.room += len;
            return Err(e);
        }
        Ok(self.head)
    }

    /// Syncs if `fsync_interval` has passed since the last sync and
    /// something is waiting. The owner calls this on a timer so that the
    /// last entries before a quiet spell become durable.
    ///
    /// # Errors
    ///
    /// An I/O error from the write or the fsync.
    pub fn sync_if_due(&mut self) -> Result<(), SpoolError> {
        if self.head != self.durable
            && self.last_sync.elapsed() >= self.shared.config.fsync_interval
        {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes everything appended durable now and returns the durable end.
    ///
    /// # Errors
    ///
    /// An I/O error from the write or the fsync. Everything appended stays
    /// buffered and the next call tries again from the last durable point.
    pub fn sync(&mut self) -> Result<Position, SpoolError> {
        self.check_failed()?;
        self.last_sync = Instant::now();
        if self.head == self.durable {
            return Ok(self.durable);
        }
        self.write_out()?;
        if let Some(file) = &self.file
            && let Err(e) = file.sync_data()
        {
            let err = SpoolError::io("fsync segment", &self.path, e);
            return Err(self.undo_writes(err));
        }
        self.durable_len += self.buf.len() as u64;
        self.buf.clear();
        self.written = 0;
        self.publish_durable();
        Ok(self.durable)
    }

    /// Syncs, and tells readers the log ends here: once they have read
    /// everything, [`SpoolReader::read_batch`](crate::SpoolReader::read_batch)
    /// returns `Ok(None)`. Returns the final durable position.
    ///
    /// # Errors
    ///
    /// An I/O error from the final fsync.
    pub fn close(mut self) -> Result<Position, SpoolError> {
        let result = self.sync();
        self.finished = true;
        {
            let mut st = self.shared.lock();
            st.writer_open = false;
            st.closed = true;
        }
        self.shared.data.notify_all();
        info!(
            head_offset = self.head.offset,
            head_seq = self.head.seq,
            "Spool writer closed."
        );
        result
    }

    /// End of everything appended (durable or not).
    pub fn head(&self) -> Position {
        self.head
    }

    /// End of what the last sync made durable.
    pub fn durable(&self) -> Position {
        self.durable
    }

    fn check_failed(&self) -> Result<(), SpoolError> {
        match &self.failed {
            None => Ok(()),
            Some(reason) => Err(SpoolError::io(
                "append after an earlier failure; reopen the spool",
                &self.path,
                std::io::Error::other(reason.clone()),
            )),
        }
    }

    /// Cuts the file back to its last durable length after a failed write
    /// or fsync, so the next attempt writes the whole buffer again, and
    /// returns `err`. If the cut fails the writer refuses further work.
    fn undo_writes(&mut self, err: SpoolError) -> SpoolError {
        self.written = 0;
        self.shared.lock().head = self.durable;
        let Some(file) = self.file.as_mut() else {
            return err;
        };
        let cut = file
            .set_len(self.durable_len)
            .and_then(|()| file.seek(SeekFrom::Start(self.durable_len)));
        match cut {
            Ok(_) => {
                warn!(error = %err, "Spool write failed; the buffered entries will be written again.")
            }
            Err(e) => {
                self.failed = Some(format!("{err}; cutting the segment back then failed: {e}"));
                warn!(error = %err, cut_error = %e, "Spool write failed and could not be undone; the writer stops.");
            }
        }
        err
    }

    /// Hands the unwritten part of the buffer to the OS (no fsync).
    fn write_out(&mut self) -> Result<(), SpoolError> {
        if self.written == self.buf.len() {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if let Err(e) = file.write_all(&self.buf[self.written..]) {
            let err = SpoolError::io("write segment", &self.path, e);
            return Err(self.undo_writes(err));
        }
        self.written = self.buf.len();
        self.shared.lock().head = self.head;
        Ok(())
    }

    /// Publishes the durable end after an fsync (or a roll, which fsyncs).
    fn publish_durable(&mut self) {
        self.durable = self.head;
        {
            let mut st = self.shared.lock();
            st.head = self.head;
            st.durable = self.head;
            st.last_durable_received_at_ms = self.last_received;
            let seg = st
                .segments
                .back_mut()
                .expect("the state always holds at least one segment");
            seg.end = self.head;
            seg.first_received_at_ms = self.seg_first_received;
            seg.last_received_at_ms = self.last_received;
            seg.last_known = true;
        }
        self.shared.data.notify_all();
    }

    fn publish_in_memory(&mut self, entry: &EntryRef<'_>) {
        if self.arena.capacity() - self.arena.len() < entry.payload.len() {
            self.arena.reserve(ARENA_CHUNK.max(entry.payload.len()));
        }
        self.arena.extend_from_slice(entry.payload);
        let payload = self.arena.split().freeze();
        let stored = Entry {
            kind: entry.kind,
            partition: entry.partition,
            received_at_ms: entry.received_at_ms,
            payload,
            end: self.head,
        };
        self.durable = self.head;
        {
            let mut st = self.shared.lock();
            st.head = self.head;
            st.durable = self.head;
            st.last_durable_received_at_ms = self.last_received;
            let seg = st
                .segments
                .back_mut()
                .expect("the state always holds at least one segment");
            seg.end = self.head;
            seg.first_received_at_ms = self.seg_first_received;
            seg.last_received_at_ms = self.last_received;
            seg.entries.push(stored);
        }
        self.shared.data.notify_all();
    }

    /// Closes the last segment (fsynced, so it is final) and starts a new one.
    fn roll(&mut self) -> Result<(), SpoolError> {
        if self.file.is_some() {
            self.sync()?;
            let header = SegmentHeader {
                first_offset: self.head.offset,
                first_seq: self.head.seq,
            };
            // On failure the last segment stays as it is, synced and
            // usable; the next append tries the roll again.
            let (file, path) = segment::create_segment(&self.shared.config.dir, header)?;
            debug!(path = %path.display(), "Spool segment started.");
            self.file = Some(file);
            self.durable_len = SEGMENT_HEADER_LEN;
            self.path = path.clone();
            self.shared
                .lock()
                .segments
                .push_back(Segment::new(self.head, Some(path)));
        } else {
            self.shared
                .lock()
                .segments
                .push_back(Segment::new(self.head, None));
        }
        self.seg_first = self.head;
        self.seg_first_received = None;
        Ok(())
    }

    /// Frees room for `needed` bytes according to the full policy, and
    /// refreshes `room`.
    fn make_room(&mut self, needed: u64, wait: Option<Duration>) -> Result<(), SpoolError> {
        let max = self.shared.config.max_bytes;
        let header_len = self.shared.header_len();
        let started = Instant::now();
        let deadline = wait.and_then(|w| started.checked_add(w));
        let mut synced = false;
        loop {
            let mut st = self.shared.lock();
            let gone = st.reclaim();
            let used = st.held_bytes(self.head, header_len);
            if used + needed <= max || st.segments.len() == 1 {
                // One segment always fits: max_bytes holds two of them.
                self.room = max.saturating_sub(used).max(needed);
                if let Some(since) = st.paused_since.take() {
                    let paused_ms = since.elapsed().map(|d| d.as_millis()).unwrap_or(0);
                    info!(paused_ms, "Spool has room again; writer resumed.");
                }
                drop(st);
                remove_files(gone);
                return Ok(());
            }
            match self.shared.config.full_policy {
                FullPolicy::DropOldest => {
                    let seg = st
                        .segments
                        .pop_front()
                        .expect("more than one segment, checked above");
                    let affected: Vec<String> = st
                        .readers
                        .iter()
                        .filter(|(_, r)| r.committed.offset < seg.end.offset)
                        .map(|(n, _)| n.clone())
                        .collect();
                    let offline: Vec<String> = affected
                        .iter()
                        .filter(|n| st.readers.get(*n).is_some_and(|r| !r.open))
                        .cloned()
                        .collect();
                    // The reader furthest behind may already have taken the
                    // start of the segment: what it misses starts at its
                    // cursor.
                    let missed_from = affected
                        .iter()
                        .filter_map(|n| st.readers.get(n))
                        .map(|r| r.committed)
                        .min()
                        .map_or(seg.first, |c| c.max(seg.first));
                    for name in &affected {
                        if let Some(r) = st.readers.get_mut(name) {
                            r.committed = seg.end;
                        }
                    }
                    let records = seg.end.seq - seg.first.seq;
                    st.drops_total += 1;
                    st.dropped_records_total += records;
                    st.cursor_jumps_total += affected.len() as u64;
                    drop(st);
                    remove_files(gone);
                    let report = self.drop_report(seg, missed_from, affected, offline);
                    self.shared.lock().drops.push(report);
                    self.shared.data.notify_all();
                }
                FullPolicy::Pause => {
                    if !synced {
                        // Readers can only free space by reading what is
                        // durable: make everything visible before waiting.
                        drop(st);
                        remove_files(gone);
                        self.sync()?;
                        synced = true;
                        continue;
                    }
                    if st.paused_since.is_none() {
                        st.paused_since = Some(SystemTime::now());
                        st.pauses_total += 1;
                        warn!(
                            max_bytes = max,
                            held_bytes = used,
                            "Spool is full; writer paused until readers free space."
                        );
                    }
                    let now = Instant::now();
                    let st = match deadline {
                        None => self
                            .shared
                            .space
                            .wait(st)
                            .unwrap_or_else(|p| p.into_inner()),
                        Some(d) if now >= d => {
                            return Err(SpoolError::Full {
                                max_bytes: max,
                                waited: now - started,
                            });
                        }
                        Some(d) => {
                            self.shared
                                .space
                                .wait_timeout(st, d - now)
                                .unwrap_or_else(|p| p.into_inner())
                                .0
                        }
                    };
                    drop(st);
                    remove_files(gone);
                }
            }
        }
    }

    /// Builds the report of a dropped segment, saves the cursors of readers
    /// that are not open (so they do not report the same drop on the next
    /// open), and deletes the file.
    fn drop_report(
        &self,
        seg: Segment,
        missed_from: Position,
        affected: Vec<String>,
        offline: Vec<String>,
    ) -> DropReport {
        let mut last = seg.last_received_at_ms;
        if !seg.last_known
            && let Some(path) = &seg.path
        {
            match segment::scan(path, Some(seg.end.offset - seg.first.offset)) {
                Ok(s) => last = s.last_received_at_ms,
                Err(e) => {
                    warn!(error = %e, "Could not read the receive time of a dropped segment.")
                }
            }
        }
        let report = DropReport {
            readers: affected,
            from: missed_from,
            to: seg.end,
            records: seg.end.seq - missed_from.seq,
            first_received_at_ms: seg.first_received_at_ms,
            last_received_at_ms: last,
        };
        warn!(
            readers = ?report.readers,
            records = report.records,
            from_offset = report.from.offset,
            to_offset = report.to.offset,
            "Spool is full; dropped the oldest segment."
        );
        if !self.shared.config.in_memory {
            for name in offline {
                if let Err(e) = cursor::save(&self.shared.cursor_dir, &name, seg.end) {
                    warn!(reader = %name, error = %e, "Could not move a cursor past a dropped segment.");
                }
            }
        }
        remove_files(seg.path.into_iter().collect());
        report
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if self.failed.is_none()
            && let Err(e) = self.sync()
        {
            warn!(error = %e, "Spool writer dropped without close and the final sync failed.");
        }
        self.shared.lock().writer_open = false;
        self.shared.data.notify_all();
    }
}
