//! The gap journal: every outage of the stream, and every stretch of records
//! the spool dropped, written to disk as it happens, so the operator (and
//! `gnip-connector gaps`) can see what is missing and recover it.
//!
//! An outage runs from the last record received on a partition to the next
//! one. When the connection comes back with `backfillMinutes=N` at time T,
//! the server re-delivers from T - N minutes, so the outage is covered if
//! T - N min <= its start (STREAM-PROTOCOLS 2.3: backfill covers up to five
//! minutes); anything longer needs the Recovery or Replay API. Entries the
//! spool dropped under its drop-oldest policy were received and then lost
//! locally: backfill cannot cover them.
//!
//! The file is JSON lines, append-only, one line per change holding the
//! whole gap as it now stands (the last line of an id wins), fsynced after
//! every line: a journal that loses its last entry on a power cut is no
//! journal. A crash can tear only the last line; opening cuts it off.
//! This module uses nothing but std, serde and the spool's drop report, so
//! the journal can be read without the stream client.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use gnip_spool::DropReport;
use serde::{Deserialize, Serialize};

/// Where a gap comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapSource {
    /// The stream connection was down.
    Stream,
    /// The spool was full and dropped entries no sink had taken.
    SpoolDrop,
}

/// One outage, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// Identifier, unique within the journal.
    pub id: u64,
    /// What caused it.
    pub source: GapSource,
    /// The partition that went down; `None` for spool drops (all partitions).
    pub partition: Option<u16>,
    /// Why, in words (an error, a system message, "shutdown").
    pub reason: String,
    /// Receive time of the last record before the gap (ms since the epoch);
    /// `None` when no record had been received. For a spool drop, the
    /// receive time of the first dropped entry, when known.
    pub last_record_at_ms: Option<i64>,
    /// When the outage was noticed (or the drop recorded).
    pub down_at_ms: i64,
    /// Receive time of the first record after it; `None` while it is open.
    pub end_ms: Option<i64>,
    /// When the stream connected again.
    pub reconnected_at_ms: Option<i64>,
    /// The `backfillMinutes` asked for on that connection.
    pub backfill_minutes: Option<u8>,
    /// Whether that backfill re-delivered the whole gap.
    pub covered: bool,
    /// Whether it was recovered since (Recovery or Replay API).
    pub recovered: bool,
    /// Entries lost, for spool drops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// Sinks (spool readers) that missed them, for spool drops.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readers: Vec<String>,
}

impl Gap {
    /// Where the missing data starts: the last record before the outage, or
    /// when it was noticed if no record had been seen.
    pub fn start_ms(&self) -> i64 {
        self.last_record_at_ms.unwrap_or(self.down_at_ms)
    }

    /// Whether the gap still needs recovering: neither covered by backfill
    /// nor recovered.
    pub fn is_uncovered(&self) -> bool {
        !self.covered && !self.recovered
    }
}

/// What can go wrong with the journal.
#[derive(Debug)]
pub enum GapError {
    /// Reading, writing or syncing the file failed.
    Io {
        /// The journal file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A line before the last does not parse: the file was damaged or
    /// edited (a crash can only tear the last line).
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// One-based line number.
        line: usize,
        /// The parser's complaint.
        reason: String,
    },
}

impl fmt::Display for GapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GapError::Io { path, source } => write!(f, "gap journal {}: {source}", path.display()),
            GapError::Corrupt { path, line, reason } => {
                write!(
                    f,
                    "gap journal {} is damaged at line {line}: {reason}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for GapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GapError::Io { source, .. } => Some(source),
            GapError::Corrupt { .. } => None,
        }
    }
}

/// The journal, open for appending.
#[derive(Debug)]
pub struct GapJournal {
    path: PathBuf,
    file: File,
    gaps: BTreeMap<u64, Gap>,
    /// Open gap per partition, indexed by partition number.
    open_by_partition: Vec<Option<u64>>,
    /// Number of open stream gaps: `record_received` checks only this
    /// while everything is flowing.
    open_count: usize,
    next_id: u64,
    torn_bytes: u64,
    line: Vec<u8>,
}

impl GapJournal {
    /// Opens (creating if needed) the journal at `path`, cutting off a torn
    /// last line (see [`torn_bytes`](Self::torn_bytes)). Gaps still open
    /// from a previous run stay open until the first record of their
    /// partition arrives.
    ///
    /// # Errors
    ///
    /// [`GapError::Io`] if the file cannot be read, created or repaired;
    /// [`GapError::Corrupt`] if a line other than the last does not parse.
    pub fn open(path: impl AsRef<Path>) -> Result<GapJournal, GapError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| GapError::Io {
            path: path.clone(),
            source,
        };
        let existed = path.exists();
        let bytes = if existed {
            fs::read(&path).map_err(io_err)?
        } else {
            Vec::new()
        };
        let (gaps, good_len) = parse(&path, &bytes)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err)?;
        let torn_bytes = (bytes.len() - good_len) as u64;
        if torn_bytes > 0 {
            file.set_len(good_len as u64).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        }
        if !existed {
            // The new file's name must survive a power cut too.
            file.sync_all().map_err(io_err)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir).and_then(|d| d.sync_all()).map_err(io_err)?;
            }
        }
        let next_id = gaps.keys().next_back().map_or(1, |id| id + 1);
        let mut journal = GapJournal {
            path,
            file,
            gaps,
            open_by_partition: Vec::new(),
            open_count: 0,
            next_id,
            torn_bytes,
            line: Vec::with_capacity(512),
        };
        let open: Vec<(u16, u64)> = journal
            .gaps
            .values()
            .filter(|g| g.source == GapSource::Stream && g.end_ms.is_none())
            .filter_map(|g| g.partition.map(|p| (p, g.id)))
            .collect();
        for (partition, id) in open {
            journal.set_open(partition, Some(id));
        }
        Ok(journal)
    }

    /// Reads the gaps of the journal at `path` without opening it for
    /// writing (for the `gaps` command while the connector runs). A torn
    /// last line is ignored, not cut.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn load(path: impl AsRef<Path>) -> Result<Vec<Gap>, GapError> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|source| GapError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(parse(path, &bytes)?.0.into_values().collect())
    }

    /// Bytes of a torn last line cut off when the journal was opened.
    pub fn torn_bytes(&self) -> u64 {
        self.torn_bytes
    }

    /// The journal's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that `partition` went down at `at_ms` (its last record was
    /// received at `last_record_at_ms`) and returns the gap's id. If the
    /// partition already has an open gap (a reconnect failed) that gap is
    /// kept and its id returned.
    ///
    /// # Errors
    ///
    /// [`GapError::Io`] if the line cannot be written and synced.
    pub fn stream_down(
        &mut self,
        partition: u16,
        last_record_at_ms: Option<i64>,
        at_ms: i64,
        reason: &str,
    ) -> Result<u64, GapError> {
        if let Some(id) = self.open_of(partition) {
            return Ok(id);
        }
        let id = self.next_id;
        self.next_id += 1;
        let gap = Gap {
            id,
            source: GapSource::Stream,
            partition: Some(partition),
            reason: reason.to_string(),
            last_record_at_ms,
            down_at_ms: at_ms,
            end_ms: None,
            reconnected_at_ms: None,
            backfill_minutes: None,
            covered: false,
            recovered: false,
            records: None,
            readers: Vec::new(),
        };
        self.write(&gap)?;
        self.gaps.insert(id, gap);
        self.set_open(partition, Some(id));
        Ok(id)
    }

    /// Records that `partition` connected at `at_ms` asking for
    /// `backfill_minutes`, and decides whether that covers its open gap:
    /// the server re-delivers from `at_ms - N min`, so the gap is covered
    /// when that is no later than its start. A later connection before the
    /// first record replaces the decision (its window is what delivered).
    ///
    /// # Errors
    ///
    /// [`GapError::Io`] if the line cannot be written and synced.
    pub fn stream_connected(
        &mut self,
        partition: u16,
        at_ms: i64,
        backfill_minutes: Option<u8>,
    ) -> Result<(), GapError> {
        let Some(id) = self.open_of(partition) else {
            return Ok(());
        };
        let mut gap = self
            .gaps
            .get(&id)
            .cloned()
            .expect("an open gap id is in the map");
        let window_start = backfill_minutes
            .filter(|m| *m > 0)
            .map(|m| at_ms - i64::from(m) * 60_000);
        gap.reconnected_at_ms = Some(at_ms);
        gap.backfill_minutes = backfill_minutes;
        gap.covered = window_start.is_some_and(|w| w <= gap.start_ms());
        self.write(&gap)?;
        self.gaps.insert(id, gap);
        Ok(())
    }

    /// Notes a record received on `partition` at `at_ms`, closing the open
    /// gap of that partition if there is one. Called for every record: with
    /// no gap open it is one comparison.
    ///
    /// # Errors
    ///
    /// [`GapError::Io`] if closing a gap cannot be written and synced.
    #[inline]
    pub fn record_received(&mut self, partition: u16, at_ms: i64) -> Result<(), GapError> {
        if self.open_count == 0 {
            return Ok(());
        }
        self.close_gap(partition, at_ms)
    }

    #[cold]
    fn close_gap(&mut self, partition: u16, at_ms: i64) -> Result<(), GapError> {
        let Some(id) = self.open_of(partition) else {
            return Ok(());
        };
        let mut gap = self
            .gaps
            .get(&id)
            .cloned()
            .expect("an open gap id is in the map");
        gap.end_ms = Some(at_ms);
        self.write(&gap)?;
        self.gaps.insert(id, gap);
        self.set_open(partition, None);
        Ok(())
    }

    /// Records entries the spool dropped before every sink took them: a gap
    /// backfill cannot cover. Returns its id.
    ///
    /// # Errors
    ///
    /// [`GapError::Io`] if the line cannot be written and synced.
    pub fn spool_dropped(&mut self, report: &DropReport) -> Result<u64, GapError> {
        let id = self.next_id;
        self.next_id += 1;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let gap = Gap {
            id,
            source: GapSource::SpoolDrop,
            partition: None,
            reason: format!(
                "spool full: dropped {} entries (offsets {}..{}) before every sink took them{}",
                report.records,
                report.from.offset,
                report.to.offset,
                if report.first_received_at_ms.is_none() {
                    "; receive times unknown"
                } else {
                    ""
                }
            ),
            last_record_at_ms: report.first_received_at_ms,
            down_at_ms: now_ms,
            end_ms: Some(report.last_received_at_ms.unwrap_or(now_ms)),
            reconnected_at_ms: None,
            backfill_minutes: None,
            covered: false,
            recovered: false,
            records: Some(report.records),
            readers: report.readers.clone(),
        };
        self.write(&gap)?;
        self.gaps.insert(id, gap);
        Ok(id)
    }

    /// Marks gap `id` recovered (by the Recovery or Replay API). Returns
    /// `false` for an unknown id.
    ///
    /// # Errors
    ///
    /// [`GapError::Io`] if the line cannot be written and synced.
    pub fn mark_recovered(&mut self, id: u64) -> Result<bool, GapError> {
        let Some(mut gap) = self.gaps.get(&id).cloned() else {
            return Ok(false);
        };
        if gap.recovered {
            return Ok(true);
        }
        gap.recovered = true;
        self.write(&gap)?;
        self.gaps.insert(id, gap);
        Ok(true)
    }

    /// The gaps neither covered by backfill nor recovered, oldest first
    /// (gaps still open included).
    pub fn uncovered(&self) -> Vec<Gap> {
        uncovered_of(self.gaps.values().cloned().collect())
    }

    /// Every gap recorded, by id.
    pub fn gaps(&self) -> impl Iterator<Item = &Gap> {
        self.gaps.values()
    }

    fn open_of(&self, partition: u16) -> Option<u64> {
        self.open_by_partition
            .get(usize::from(partition))
            .copied()
            .flatten()
    }

    fn set_open(&mut self, partition: u16, id: Option<u64>) {
        let idx = usize::from(partition);
        if self.open_by_partition.len() <= idx {
            self.open_by_partition.resize(idx + 1, None);
        }
        let was = self.open_by_partition[idx].is_some();
        self.open_by_partition[idx] = id;
        match (was, id.is_some()) {
            (false, true) => self.open_count += 1,
            (true, false) => self.open_count -= 1,
            _ => {}
        }
    }

    /// Appends one line and syncs it.
    fn write(&mut self, gap: &Gap) -> Result<(), GapError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, gap)
            .expect("a Gap always serialises: plain fields, string keys");
        self.line.push(b'\n');
        let io_err = |source| GapError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&self.line).map_err(io_err)?;
        self.file.sync_data().map_err(io_err)
    }
}

/// Parses the journal: the gaps (last line of each id wins) and the length
/// of the well-formed prefix (everything but a torn last line).
fn parse(path: &Path, bytes: &[u8]) -> Result<(BTreeMap<u64, Gap>, usize), GapError> {
    let mut gaps = BTreeMap::new();
    let mut at = 0;
    let mut line_no = 0;
    while at < bytes.len() {
        line_no += 1;
        let rest = &bytes[at..];
        let (line, next, complete) = match rest.iter().position(|b| *b == b'\n') {
            Some(n) => (&rest[..n], at + n + 1, true),
            None => (rest, bytes.len(), false),
        };
        let is_last = next >= bytes.len();
        if line.iter().all(u8::is_ascii_whitespace) {
            if !complete {
                return Ok((gaps, at));
            }
            at = next;
            continue;
        }
        match (complete, serde_json::from_slice::<Gap>(line)) {
            (true, Ok(gap)) => {
                gaps.insert(gap.id, gap);
            }
            (_, Err(e)) if !is_last => {
                return Err(GapError::Corrupt {
                    path: path.to_path_buf(),
                    line: line_no,
                    reason: e.to_string(),
                });
            }
            // A last line without its newline, or one that does not parse:
            // a write torn by a crash.
            _ => return Ok((gaps, at)),
        }
        at = next;
    }
    Ok((gaps, at))
}

fn uncovered_of(gaps: Vec<Gap>) -> Vec<Gap> {
    let mut out: Vec<Gap> = gaps.into_iter().filter(Gap::is_uncovered).collect();
    out.sort_by_key(|g| (g.start_ms(), g.id));
    out
}

/// Renders gaps for `gnip-connector gaps`: a table, or with `json` a JSON
/// array of the gap records.
pub fn render(gaps: &[Gap], json: bool) -> String {
    if json {
        let mut s = serde_json::to_string_pretty(gaps)
            .expect("a Gap always serialises: plain fields, string keys");
        s.push('\n');
        return s;
    }
    if gaps.is_empty() {
        return "No gaps to recover.\n".to_string();
    }
    let header = [
        "ID",
        "PARTITION",
        "SOURCE",
        "START (UTC)",
        "END (UTC)",
        "DURATION",
        "BACKFILL",
        "REASON",
    ];
    let rows: Vec<[String; 8]> = gaps
        .iter()
        .map(|g| {
            [
                g.id.to_string(),
                g.partition
                    .map_or_else(|| "all".to_string(), |p| p.to_string()),
                match g.source {
                    GapSource::Stream => "stream".to_string(),
                    GapSource::SpoolDrop => "spool-drop".to_string(),
                },
                format_utc(g.start_ms()),
                g.end_ms.map_or_else(|| "open".to_string(), format_utc),
                g.end_ms
                    .map_or_else(|| "-".to_string(), |e| format_duration(e - g.start_ms())),
                match (g.backfill_minutes, g.reconnected_at_ms) {
                    (Some(m), Some(_)) if m > 0 => format!("{m} min"),
                    _ => "none".to_string(),
                },
                g.reason.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: &[&str]| {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push('\n');
    };
    push_row(&header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        push_row(&cells);
    }
    out
}

/// What `gnip-connector gaps [--json]` prints: the uncovered gaps of the
/// journal at `path`, oldest first. A missing journal means no gaps.
///
/// # Errors
///
/// As [`GapJournal::load`], except that a missing file is not an error.
pub fn uncovered_report(path: &Path, json: bool) -> Result<String, GapError> {
    let gaps = match GapJournal::load(path) {
        Ok(gaps) => gaps,
        Err(GapError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(render(&uncovered_of(gaps), json))
}

/// `2026-12-03T17:05:09.123Z` for milliseconds since the Unix epoch.
fn format_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// `45s`, `10m05s`, `2h03m`.
fn format_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gnip_spool::Position;

    /// 2026-12-03T17:00:00Z.
    const T0: i64 = 1_796_317_200_000;

    fn journal() -> (tempfile::TempDir, PathBuf, GapJournal) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gaps.jsonl");
        let j = GapJournal::open(&path).expect("open");
        (dir, path, j)
    }

    /// An outage of `secs` on `partition` starting at `start`, reconnected
    /// with `backfill` minutes, ended by the first record.
    fn outage(
        j: &mut GapJournal,
        partition: u16,
        start: i64,
        secs: i64,
        backfill: Option<u8>,
    ) -> u64 {
        let id = j
            .stream_down(partition, Some(start), start + 500, "connection reset")
            .expect("down");
        j.stream_connected(partition, start + secs * 1000, backfill)
            .expect("connected");
        j.record_received(partition, start + secs * 1000 + 20)
            .expect("record");
        id
    }

    #[test]
    fn backfill_covers_short_outages_and_not_a_ten_minute_one() {
        let (_dir, _path, mut j) = journal();
        let ten_s = outage(&mut j, 0, T0, 10, Some(1));
        let seventy_s = outage(&mut j, 0, T0 + 3_600_000, 70, Some(3));
        let ten_min = outage(&mut j, 1, T0 + 7_200_000, 600, Some(5));
        let by_id: BTreeMap<u64, Gap> = j.gaps().map(|g| (g.id, g.clone())).collect();
        assert!(by_id[&ten_s].covered, "10 s with 1 min of backfill");
        assert!(by_id[&seventy_s].covered, "70 s with 3 min of backfill");
        assert!(
            !by_id[&ten_min].covered,
            "10 min exceeds the 5 min of backfill"
        );
        assert_eq!(by_id[&ten_min].end_ms, Some(T0 + 7_200_000 + 600_020));
        assert_eq!(
            by_id[&seventy_s].reconnected_at_ms,
            Some(T0 + 3_600_000 + 70_000)
        );
        let open: Vec<u64> = j.uncovered().iter().map(|g| g.id).collect();
        assert_eq!(open, vec![ten_min]);
    }

    #[test]
    fn seventy_seconds_with_one_minute_of_backfill_is_not_covered() {
        let (_dir, _path, mut j) = journal();
        let id = outage(&mut j, 3, T0, 70, Some(1));
        assert_eq!(
            j.uncovered().iter().map(|g| g.id).collect::<Vec<_>>(),
            vec![id]
        );
        let id2 = outage(&mut j, 3, T0 + 1_000_000, 10, None);
        assert!(
            j.uncovered().iter().any(|g| g.id == id2),
            "no backfill asked, nothing covered"
        );
    }

    #[test]
    fn journal_survives_reopen_and_an_open_gap_is_closed_by_the_next_record() {
        let (_dir, path, mut j) = journal();
        let done = outage(&mut j, 0, T0, 600, Some(2));
        let open = j
            .stream_down(4, Some(T0 + 50_000), T0 + 60_000, "shutdown")
            .expect("down");
        assert_eq!(
            j.stream_down(4, Some(T0 + 50_000), T0 + 61_000, "retry")
                .expect("down"),
            open
        );
        drop(j);

        let mut j = GapJournal::open(&path).expect("reopen");
        assert_eq!(j.torn_bytes(), 0);
        assert_eq!(j.gaps().count(), 2);
        j.record_received(0, T0 + 9_000_000)
            .expect("other partition");
        assert_eq!(j.gaps().find(|g| g.id == open).and_then(|g| g.end_ms), None);
        j.stream_connected(4, T0 + 100_000, Some(1))
            .expect("connected");
        j.record_received(4, T0 + 100_010).expect("record");
        let g = j.gaps().find(|g| g.id == open).cloned().expect("gap");
        assert_eq!(g.end_ms, Some(T0 + 100_010));
        assert!(g.covered, "50 s before a reconnect with 1 min of backfill");
        let next = j.stream_down(4, None, T0 + 200_000, "stall").expect("down");
        assert!(next > open, "ids keep growing across reopen");

        assert!(j.mark_recovered(done).expect("mark"));
        assert!(!j.mark_recovered(999).expect("unknown id"));
        drop(j);
        let j = GapJournal::open(&path).expect("reopen");
        assert!(j.gaps().find(|g| g.id == done).is_some_and(|g| g.recovered));
        assert_eq!(
            j.uncovered().iter().map(|g| g.id).collect::<Vec<_>>(),
            vec![next]
        );
    }

    #[test]
    fn a_torn_last_line_is_cut_and_the_journal_goes_on() {
        let (_dir, path, mut j) = journal();
        let id = outage(&mut j, 0, T0, 600, None);
        drop(j);
        let good = fs::read(&path).expect("read");
        let mut torn = good.clone();
        let tail = b"{\"id\":7,\"source\":\"str";
        torn.extend_from_slice(tail);
        fs::write(&path, &torn).expect("write");
        assert_eq!(
            GapJournal::load(&path).expect("load").len(),
            1,
            "load ignores the torn line"
        );

        let mut j = GapJournal::open(&path).expect("open");
        assert_eq!(j.torn_bytes(), tail.len() as u64);
        assert_eq!(fs::read(&path).expect("read"), good);
        let next = j.stream_down(1, Some(T0), T0 + 1, "reset").expect("down");
        assert_eq!(next, id + 1);
        drop(j);
        assert_eq!(GapJournal::open(&path).expect("open").gaps().count(), 2);
    }

    #[test]
    fn a_damaged_middle_line_is_an_error_with_its_line_number() {
        let (_dir, path, mut j) = journal();
        outage(&mut j, 0, T0, 600, None);
        drop(j);
        let mut text = fs::read_to_string(&path).expect("read");
        text.insert_str(0, "not json\n");
        fs::write(&path, text).expect("write");
        let err = GapJournal::open(&path).expect_err("damaged");
        assert!(matches!(err, GapError::Corrupt { line: 1, .. }), "{err}");
    }

    #[test]
    fn spool_drops_are_uncovered_gaps_with_their_times_and_sinks() {
        let (_dir, path, mut j) = journal();
        let report = DropReport {
            readers: vec!["sqlite".into()],
            from: Position { offset: 0, seq: 0 },
            to: Position {
                offset: 65_536,
                seq: 20,
            },
            records: 20,
            first_received_at_ms: Some(T0),
            last_received_at_ms: Some(T0 + 4_000),
        };
        let id = j.spool_dropped(&report).expect("drop");
        let gaps = j.uncovered();
        assert_eq!(gaps.len(), 1);
        let g = &gaps[0];
        assert_eq!(
            (g.id, g.source, g.partition),
            (id, GapSource::SpoolDrop, None)
        );
        assert_eq!(
            (g.start_ms(), g.end_ms, g.records),
            (T0, Some(T0 + 4_000), Some(20))
        );
        assert_eq!(g.readers, vec!["sqlite".to_string()]);

        let text = uncovered_report(&path, false).expect("report");
        assert!(text.starts_with("ID"), "{text}");
        assert!(text.contains("2026-12-03T17:00:00.000Z"), "{text}");
        assert!(text.contains("spool-drop") && text.contains("4s"), "{text}");
        let json: Vec<Gap> =
            serde_json::from_str(&uncovered_report(&path, true).expect("report")).expect("json");
        assert_eq!(json, gaps);
    }

    #[test]
    fn report_of_a_missing_journal_says_there_is_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("none.jsonl");
        assert_eq!(
            uncovered_report(&path, false).expect("report"),
            "No gaps to recover.\n"
        );
        assert_eq!(uncovered_report(&path, true).expect("report"), "[]\n");
    }

    #[test]
    fn table_lists_uncovered_gaps_oldest_first() {
        let (_dir, path, mut j) = journal();
        let later = outage(&mut j, 2, T0 + 86_400_000, 900, Some(5));
        let earlier = outage(&mut j, 7, T0, 3_720, None);
        j.stream_down(9, None, T0 + 90_000_000, "stall")
            .expect("down");
        drop(j);
        let text = uncovered_report(&path, false).expect("report");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[1].starts_with(&earlier.to_string()) && lines[1].contains("1h02m"),
            "{text}"
        );
        assert!(
            lines[2].starts_with(&later.to_string())
                && lines[2].contains("2026-12-04T17:00:00.000Z"),
            "{text}"
        );
        assert!(
            lines[2].contains("5 min") && lines[2].contains("15m00s"),
            "{text}"
        );
        assert!(
            lines[3].contains("open") && lines[3].ends_with("stall"),
            "{text}"
        );
    }

    #[test]
    fn utc_formatting_matches_known_dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_utc(T0 + 9_123), "2026-12-03T17:00:09.123Z");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59.999Z");
    }
}
