//! The shared heart of the spool: the list of segments, the durable end,
//! the readers' committed cursors, and the recovery done on open.
//!
//! One mutex guards this state. The writer takes it once per group fsync
//! (disk mode) to publish the new durable end, readers take it once per
//! batch; file reads and writes happen outside it. Two condition variables
//! hang off it: `data` wakes readers when the durable end moves or the
//! writer closes, `space` wakes a paused writer when a reader frees space.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

use tracing::{info, warn};

use crate::error::SpoolError;
use crate::format::SEGMENT_HEADER_LEN;
use crate::reader::{SpoolReader, Take, read_disk_range};
use crate::report::{DropReport, ReaderStats, RecoveryReport, SpoolStats};
use crate::writer::SpoolWriter;
use crate::{Entry, Position, SpoolConfig, cursor, segment};

/// One segment as the state knows it.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Position of its first entry.
    pub first: Position,
    /// End of its durable entries (final once the next segment exists).
    pub end: Position,
    /// The file; `None` in memory mode.
    pub path: Option<PathBuf>,
    /// Receive time of its first entry, if it has one.
    pub first_received_at_ms: Option<i64>,
    /// Receive time of its last durable entry; `None` also when unknown
    /// (see `last_known`).
    pub last_received_at_ms: Option<i64>,
    /// Whether `last_received_at_ms` is known: false for segments found on
    /// open that were not scanned.
    pub last_known: bool,
    /// The entries, in memory mode.
    pub entries: Vec<Entry>,
}

impl Segment {
    pub(crate) fn new(first: Position, path: Option<PathBuf>) -> Self {
        Segment {
            first,
            end: first,
            path,
            first_received_at_ms: None,
            last_received_at_ms: None,
            last_known: true,
            entries: Vec::new(),
        }
    }
}

/// A reader known to the spool, open or not.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReaderSlot {
    pub committed: Position,
    pub open: bool,
}

/// Everything behind the mutex.
#[derive(Debug)]
pub(crate) struct State {
    /// Retained segments, oldest first; never empty.
    pub segments: VecDeque<Segment>,
    /// End of what the writer has handed to the OS.
    pub head: Position,
    /// End of what is durable; readers see entries before it.
    pub durable: Position,
    /// Receive time of the entry just before `durable`.
    pub last_durable_received_at_ms: Option<i64>,
    /// The writer closed and no new one opened: readers that caught up end.
    pub closed: bool,
    pub writer_open: bool,
    pub readers: BTreeMap<String, ReaderSlot>,
    pub drops: Vec<DropReport>,
    pub segments_deleted_total: u64,
    pub drops_total: u64,
    pub dropped_records_total: u64,
    pub pauses_total: u64,
    pub paused_since: Option<SystemTime>,
    pub cursor_jumps_total: u64,
}

impl State {
    /// Position of the oldest retained entry.
    pub(crate) fn oldest(&self) -> Position {
        self.segments
            .front()
            .expect("the state always holds at least one segment")
            .first
    }

    /// Index of the segment that holds the entry starting at `pos` (or, for
    /// the end of the log, the last segment).
    pub(crate) fn segment_index(&self, pos: Position) -> usize {
        self.segments
            .partition_point(|s| s.first.offset <= pos.offset)
            .saturating_sub(1)
    }

    /// Bytes held if the log ended at `head`.
    pub(crate) fn held_bytes(&self, head: Position, header_len: u64) -> u64 {
        head.offset - self.oldest().offset + self.segments.len() as u64 * header_len
    }

    /// Removes the segments every known reader has committed past (never
    /// the last one) and returns their files for deletion outside the lock.
    /// With no reader registered nothing is removed: a sink that has not
    /// opened its reader yet must still find everything.
    pub(crate) fn reclaim(&mut self) -> Vec<PathBuf> {
        let Some(min) = self.readers.values().map(|r| r.committed.offset).min() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while self.segments.len() > 1 && self.segments[0].end.offset <= min {
            let seg = self.segments.pop_front().expect("length checked above");
            self.segments_deleted_total += 1;
            out.extend(seg.path);
        }
        out
    }
}

/// The shared part behind every handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: SpoolConfig,
    pub cursor_dir: PathBuf,
    pub state: Mutex<State>,
    /// Readers wait here for the durable end to move or the writer to close.
    pub data: Condvar,
    /// A paused writer waits here for readers to free space.
    pub space: Condvar,
    /// Holds the directory's `flock` for as long as any handle lives.
    _lock: Option<File>,
}

impl Shared {
    /// Locks the state. A panic while holding the lock leaves the state
    /// consistent (every change is a single assignment or a push/pop made
    /// after the fallible work), so a poisoned lock is taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes a segment header counts against `max_bytes`.
    pub(crate) fn header_len(&self) -> u64 {
        if self.config.in_memory {
            0
        } else {
            SEGMENT_HEADER_LEN
        }
    }
}

/// Removes segment files that left the state. A file that cannot be removed
/// costs disk space, not data, so it is logged and the spool carries on.
pub(crate) fn remove_files(paths: Vec<PathBuf>) {
    for path in paths {
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            warn!(path = %path.display(), error = %e, "Could not delete a spool segment.");
        }
    }
}

/// A spool: one directory of segments (or memory), one writer, many readers.
///
/// Cheap to clone; every clone is the same spool. `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Spool {
    pub(crate) shared: Arc<Shared>,
}

impl Spool {
    /// Opens (creating if needed) the spool described by `config`, recovers
    /// the tail of the last segment and loads the readers' cursors.
    ///
    /// # Errors
    ///
    /// [`SpoolError::InvalidConfig`] for an unusable configuration,
    /// [`SpoolError::Locked`] when another process holds the directory,
    /// [`SpoolError::BadHeader`] naming a segment whose header does not
    /// hold, [`SpoolError::Corrupt`] for a damaged cursor file, and
    /// [`SpoolError::Io`] for file system failures.
    pub fn open(config: SpoolConfig) -> Result<(Spool, RecoveryReport), SpoolError> {
        config.validate()?;
        let (state, report, lock, cursor_dir) = if config.in_memory {
            let mut segments = VecDeque::new();
            segments.push_back(Segment::new(Position::default(), None));
            (
                new_state(segments, Position::default(), None, BTreeMap::new()),
                RecoveryReport {
                    segments: 1,
                    ..RecoveryReport::default()
                },
                None,
                PathBuf::new(),
            )
        } else {
            let (state, report, lock) = recover(&config)?;
            (state, report, Some(lock), config.dir.join("cursors"))
        };
        info!(
            dir = %config.dir.display(),
            in_memory = config.in_memory,
            segments = report.segments,
            head_offset = report.head.offset,
            head_seq = report.head.seq,
            readers = report.readers,
            truncated_bytes = report.truncated_bytes,
            "Spool opened."
        );
        let shared = Shared {
            config,
            cursor_dir,
            state: Mutex::new(state),
            data: Condvar::new(),
            space: Condvar::new(),
            _lock: lock,
        };
        Ok((
            Spool {
                shared: Arc::new(shared),
            },
            report,
        ))
    }

    /// The configuration the spool was opened with.
    pub fn config(&self) -> &SpoolConfig {
        &self.shared.config
    }

    /// Opens the writer. There is one at a time; once it is closed or
    /// dropped another may be opened.
    ///
    /// # Errors
    ///
    /// [`SpoolError::WriterBusy`] while another writer is open, or an I/O
    /// error opening the last segment.
    pub fn writer(&self) -> Result<SpoolWriter, SpoolError> {
        SpoolWriter::open(Arc::clone(&self.shared))
    }

    /// Opens the reader `name`, resuming from its saved cursor; a name seen
    /// for the first time starts at the oldest retained entry, and its
    /// cursor is saved at once so the spool keeps what it has not read.
    ///
    /// # Errors
    ///
    /// [`SpoolError::InvalidReaderName`], [`SpoolError::ReaderBusy`] while a
    /// reader of that name is open, or an I/O error saving the cursor.
    pub fn reader(&self, name: &str) -> Result<SpoolReader, SpoolError> {
        SpoolReader::open(Arc::clone(&self.shared), name)
    }

    /// Forgets the reader `name` (a sink removed from the configuration), so
    /// the segments it held back can be deleted.
    ///
    /// # Errors
    ///
    /// [`SpoolError::ReaderBusy`] while it is open, or an I/O error removing
    /// its cursor file.
    pub fn remove_reader(&self, name: &str) -> Result<(), SpoolError> {
        let mut st = self.shared.lock();
        match st.readers.get(name) {
            Some(slot) if slot.open => return Err(SpoolError::ReaderBusy(name.to_string())),
            Some(_) => {}
            None => return Ok(()),
        }
        if !self.shared.config.in_memory {
            cursor::remove(&self.shared.cursor_dir, name)?;
        }
        st.readers.remove(name);
        let paths = st.reclaim();
        drop(st);
        self.shared.space.notify_all();
        remove_files(paths);
        info!(reader = name, "Spool reader removed.");
        Ok(())
    }

    /// A snapshot of sizes, positions, reader lag and counters.
    pub fn stats(&self) -> SpoolStats {
        let st = self.shared.lock();
        let oldest = st.oldest();
        let readers = st
            .readers
            .iter()
            .map(|(name, slot)| {
                let from = slot.committed.max(oldest).min(st.durable);
                ReaderStats {
                    name: name.clone(),
                    cursor: slot.committed,
                    open: slot.open,
                    lag_records: st.durable.seq - from.seq,
                    lag_bytes: st.durable.offset - from.offset,
                }
            })
            .collect();
        SpoolStats {
            in_memory: self.shared.config.in_memory,
            disk_bytes: st.held_bytes(st.head, self.shared.header_len()),
            max_bytes: self.shared.config.max_bytes,
            segments: st.segments.len(),
            oldest,
            head: st.head,
            durable: st.durable,
            readers,
            segments_deleted_total: st.segments_deleted_total,
            drops_total: st.drops_total,
            dropped_records_total: st.dropped_records_total,
            pauses_total: st.pauses_total,
            paused_since: st.paused_since,
            cursor_jumps_total: st.cursor_jumps_total,
            writer_open: st.writer_open,
        }
    }

    /// Since when the writer has been paused on a full spool, if it is.
    pub fn paused_since(&self) -> Option<SystemTime> {
        self.shared.lock().paused_since
    }

    /// Takes the drop reports accumulated since the last call, oldest first,
    /// for the caller to write to its gap journal.
    pub fn take_drops(&self) -> Vec<DropReport> {
        std::mem::take(&mut self.shared.lock().drops)
    }

    /// Receive time of the last durable entry: where a restarted connector
    /// asks backfill to start. `None` for an empty spool.
    pub fn last_received_at_ms(&self) -> Option<i64> {
        self.shared.lock().last_durable_received_at_ms
    }

    /// Calls `f` for every durable entry received at or after `since_ms`,
    /// in log order. The work is bounded: the scan starts at the last
    /// segment whose first entry was received before `since_ms`. Receive
    /// times come from the wall clock and are nearly monotonic; an entry
    /// stamped `since_ms` or later that sits in an earlier segment (the
    /// clock stepped back by more than a segment's span) is not visited.
    ///
    /// # Errors
    ///
    /// [`SpoolError::Corrupt`] for durable data that no longer reads back,
    /// or [`SpoolError::Io`].
    pub fn scan_since(&self, since_ms: i64, mut f: impl FnMut(&Entry)) -> Result<(), SpoolError> {
        // Work out the segments to visit under the lock, read them outside.
        let plan: Vec<(Position, Position, Option<PathBuf>, Vec<Entry>)> = {
            let st = self.shared.lock();
            let start = st
                .segments
                .iter()
                .rposition(|s| s.first_received_at_ms.is_some_and(|t| t < since_ms))
                .unwrap_or(0);
            st.segments
                .iter()
                .skip(start)
                .filter(|s| s.end.offset > s.first.offset)
                .map(|s| {
                    let entries = if s.path.is_none() {
                        s.entries.clone()
                    } else {
                        Vec::new()
                    };
                    (s.first, s.end, s.path.clone(), entries)
                })
                .collect()
        };
        for (first, end, path, entries) in plan {
            match path {
                None => entries
                    .iter()
                    .filter(|e| e.received_at_ms >= since_ms)
                    .for_each(&mut f),
                Some(path) => {
                    let file = match File::open(&path) {
                        Ok(file) => file,
                        // Deleted since the plan was made: every reader had
                        // passed it, or it was dropped; nothing to visit.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(SpoolError::io("open segment", &path, e)),
                    };
                    let mut at = first;
                    while at.offset < end.offset {
                        let batch = read_disk_range(
                            &file,
                            &path,
                            first,
                            at,
                            end,
                            Take {
                                max_records: usize::MAX,
                                max_bytes: SCAN_CHUNK,
                                at_least_one: true,
                            },
                        )?;
                        let Some(last) = batch.last() else { break };
                        at = last.end;
                        batch
                            .iter()
                            .filter(|e| e.received_at_ms >= since_ms)
                            .for_each(&mut f);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Bytes read at a time by [`Spool::scan_since`].
const SCAN_CHUNK: usize = 1024 * 1024;

fn new_state(
    segments: VecDeque<Segment>,
    head: Position,
    last_received: Option<i64>,
    readers: BTreeMap<String, ReaderSlot>,
) -> State {
    State {
        segments,
        head,
        durable: head,
        last_durable_received_at_ms: last_received,
        closed: false,
        writer_open: false,
        readers,
        drops: Vec::new(),
        segments_deleted_total: 0,
        drops_total: 0,
        dropped_records_total: 0,
        pauses_total: 0,
        paused_since: None,
        cursor_jumps_total: 0,
    }
}

/// Takes an exclusive `flock` on `dir/LOCK`, so two processes never write
/// the same spool.
fn lock_dir(dir: &Path) -> Result<File, SpoolError> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SpoolError::io("open lock file", &path, e))?;
    // SAFETY: flock is given a descriptor that stays open for as long as
    // `file` lives, and reads or writes no memory of ours.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(SpoolError::Locked(dir.to_path_buf()));
        }
        return Err(SpoolError::io("lock spool directory", &path, err));
    }
    Ok(file)
}

/// Opens the directory: segments, tail recovery, cursors.
fn recover(config: &SpoolConfig) -> Result<(State, RecoveryReport, File), SpoolError> {
    let dir = &config.dir;
    let cursor_dir = dir.join("cursors");
    fs::create_dir_all(&cursor_dir)
        .map_err(|e| SpoolError::io("create spool directory", &cursor_dir, e))?;
    let lock = lock_dir(dir)?;
    let mut report = RecoveryReport::default();

    // Headers first: a bad one is an error naming the file.
    let mut found = Vec::new();
    for path in segment::list_segments(dir)? {
        let (header, len) = segment::read_header(&path)?;
        found.push((path, header, len));
    }
    if found.is_empty() {
        let first = crate::format::SegmentHeader {
            first_offset: 0,
            first_seq: 0,
        };
        let (_, path) = segment::create_segment(dir, first)?;
        found.push((path, first, SEGMENT_HEADER_LEN));
    }

    // Every segment but the last ends where the next begins. A segment
    // shorter than that is a hole (an interrupted deletion left an older
    // segment behind); what precedes the last hole is discarded.
    let mut segments: VecDeque<Segment> = VecDeque::new();
    let mut hole_before = 0;
    for i in 0..found.len() {
        let (path, header, len) = &found[i];
        let first = Position {
            offset: header.first_offset,
            seq: header.first_seq,
        };
        let mut seg = Segment::new(first, Some(path.clone()));
        if let Some((_, next, _)) = found.get(i + 1) {
            let end = Position {
                offset: next.first_offset,
                seq: next.first_seq,
            };
            if end.offset < first.offset || end.seq < first.seq {
                return Err(SpoolError::Corrupt {
                    path: path.clone(),
                    offset: 0,
                    reason: format!("segment starts at {first:?}, after the next one at {end:?}"),
                });
            }
            if SEGMENT_HEADER_LEN + (end.offset - first.offset) > *len {
                hole_before = i + 1;
            }
            seg.end = end;
            seg.last_known = false;
            seg.first_received_at_ms = segment::first_received_at(path)?;
        }
        segments.push_back(seg);
    }
    if hole_before > 0 {
        warn!(
            segments = hole_before,
            first_kept = %segments[hole_before].path.as_deref().unwrap_or(Path::new("")).display(),
            "Spool segments before a hole in the log were discarded."
        );
        let gone: Vec<PathBuf> = segments
            .drain(..hole_before)
            .filter_map(|s| s.path)
            .collect();
        report.discarded_segments = gone.len();
        remove_files(gone);
        segment::fsync_dir(dir)?;
    }

    // The tail: scan the whole last segment, cut at the first record whose
    // length or checksum does not hold.
    let last = segments
        .back_mut()
        .expect("at least one segment was found or created");
    let last_path = last.path.clone().expect("disk segments have a path");
    let scan = segment::scan(&last_path, None)?;
    let file_len = fs::metadata(&last_path)
        .map_err(|e| SpoolError::io("stat segment", &last_path, e))?
        .len();
    let valid_len = SEGMENT_HEADER_LEN + scan.valid_bytes;
    if file_len > valid_len {
        let cut = file_len - valid_len;
        warn!(
            path = %last_path.display(),
            truncated_bytes = cut,
            at = valid_len,
            reason = scan.stopped.as_deref().unwrap_or("trailing bytes"),
            "Spool tail was torn or corrupt; cut it."
        );
        let file = OpenOptions::new()
            .write(true)
            .open(&last_path)
            .map_err(|e| SpoolError::io("open segment", &last_path, e))?;
        file.set_len(valid_len)
            .map_err(|e| SpoolError::io("truncate segment", &last_path, e))?;
        file.sync_all()
            .map_err(|e| SpoolError::io("fsync segment", &last_path, e))?;
        report.truncated_bytes = cut;
        report.truncated_at = Some((last_path.clone(), valid_len));
        report.truncation_reason = scan.stopped.clone();
    }
    last.end = Position {
        offset: last.first.offset + scan.valid_bytes,
        seq: last.first.seq + scan.records,
    };
    last.first_received_at_ms = scan.first_received_at_ms;
    last.last_received_at_ms = scan.last_received_at_ms;
    last.last_known = true;
    let head = last.end;

    // The receive time of the last entry: in the last segment, or (right
    // after a roll) the last entry of the one before.
    let mut last_received = scan.last_received_at_ms;
    if last_received.is_none() && segments.len() > 1 {
        let idx = segments.len() - 2;
        let prev = &mut segments[idx];
        let path = prev.path.clone().expect("disk segments have a path");
        let s = segment::scan(&path, Some(prev.end.offset - prev.first.offset))?;
        prev.last_received_at_ms = s.last_received_at_ms;
        prev.last_known = true;
        last_received = s.last_received_at_ms;
    }

    // Cursors: clamp to what the log holds.
    let saved = cursor::load_all(&cursor_dir)?;
    let mut readers = BTreeMap::new();
    let mut drops = Vec::new();
    let oldest = segments.front().expect("at least one segment").first;
    for (name, mut pos) in saved {
        if pos.offset > head.offset {
            warn!(reader = %name, cursor = pos.offset, head = head.offset, "Spool cursor was past the end of the log; moved it back.");
            pos = head;
        } else if pos.offset < oldest.offset {
            warn!(reader = %name, cursor = pos.offset, oldest = oldest.offset, "Spool cursor was behind the oldest entry; entries in between are gone.");
            drops.push(DropReport {
                readers: vec![name.clone()],
                from: pos,
                to: oldest,
                records: oldest.seq.saturating_sub(pos.seq),
                first_received_at_ms: None,
                last_received_at_ms: None,
            });
            pos = oldest;
        }
        readers.insert(
            name,
            ReaderSlot {
                committed: pos,
                open: false,
            },
        );
    }
    report.readers = readers.len();

    let mut state = new_state(segments, head, last_received, readers);
    state.cursor_jumps_total = drops.len() as u64;
    state.drops = drops;
    let gone = state.reclaim();
    remove_files(gone);
    report.segments = state.segments.len();
    report.head = head;
    Ok((state, report, lock))
}
