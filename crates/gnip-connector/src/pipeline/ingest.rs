//! Ingest: the one thread that takes records off the stream client's
//! channel and appends them to the spool, and turns the client's events into
//! logs, counters and gap-journal entries.
//!
//! It is the only writer of the spool. It never waits on a sink: sinks read
//! the spool on their own threads. It waits only on the disk (an append,
//! the group fsync) or, under the spool's `pause` policy, for sinks to free
//! space; while it waits, the client's bounded channel fills and the client
//! stops reading the socket, which is the back-pressure we want.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gnip_client::{Kind, Record, StreamEvent, StreamItem};
use gnip_spool::{EntryRef, Spool, SpoolError, SpoolWriter};
use tokio::sync::{Notify, mpsc};
use tracing::{debug, error, info, trace, warn};

use super::counters::{IngestCounters, add};
use crate::gaps::GapJournal;

/// How often the ingest loop wakes up when nothing arrives, to run the
/// spool's interval fsync and collect drop reports.
const TICK: Duration = Duration::from_millis(50);

/// How long one append waits on a full spool before checking for shutdown.
const FULL_WAIT: Duration = Duration::from_secs(1);

/// Longest wait between retries of a failing spool append.
const APPEND_RETRY_MAX: Duration = Duration::from_secs(5);

/// Everything the ingest thread needs.
pub struct Ingest {
    /// The client's output.
    pub rx: mpsc::Receiver<StreamItem>,
    /// The spool, for drop reports.
    pub spool: Spool,
    /// The spool's only writer.
    pub writer: SpoolWriter,
    /// The gap journal.
    pub gaps: GapJournal,
    /// Shared counters.
    pub counters: Arc<IngestCounters>,
    /// Stop after this many activities.
    pub max_records: Option<u64>,
    /// Notified when `max_records` is reached or the stream failed for good.
    pub stop: Arc<Notify>,
    /// Set by shutdown when the spool cannot take records and waiting is
    /// pointless.
    pub abandon: Arc<AtomicBool>,
    /// Runtime handle to wait on the async channel from this thread.
    pub runtime: tokio::runtime::Handle,
    /// The connector's data directory, for the last-record mark.
    pub data_dir: std::path::PathBuf,
}

/// How often the last-record mark is brought up to date.
const MARK_EVERY: Duration = Duration::from_secs(1);

/// Where the receive time of the newest durable record is kept.
///
/// The spool deletes segments once every sink has passed them, so after a
/// crash it may hold no record at all; this small file still tells the
/// restart how far back its backfill must reach.
pub fn last_record_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("last-record")
}

/// Reads the last-record mark; `None` when there is none or it is unreadable.
pub fn read_last_record(data_dir: &std::path::Path) -> Option<i64> {
    std::fs::read_to_string(last_record_path(data_dir))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Keeps the last-record mark: after an fsync of the spool, the receive time
/// of the newest record appended, written to a temp file and renamed.
struct LastRecordMark {
    path: std::path::PathBuf,
    written: i64,
    at: std::time::Instant,
}

impl LastRecordMark {
    fn new(data_dir: &std::path::Path) -> Self {
        LastRecordMark {
            path: last_record_path(data_dir),
            written: 0,
            at: std::time::Instant::now(),
        }
    }

    /// Brings the mark to `last` if it is due (or `force`); syncs the spool
    /// first, so the mark never runs ahead of what is durable.
    fn update(&mut self, writer: &mut SpoolWriter, last: i64, force: bool) -> std::io::Result<()> {
        // The first record is marked at once: a process killed in its first
        // second must still leave a mark.
        let due = force || self.written == 0 || self.at.elapsed() >= MARK_EVERY;
        if last <= self.written || !due {
            return Ok(());
        }
        writer.sync().map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, last.to_string())?;
        std::fs::rename(&tmp, &self.path)?;
        self.written = last;
        self.at = std::time::Instant::now();
        Ok(())
    }
}

/// What ingest saw, for the exit summary and exit code.
#[derive(Debug, Default)]
pub struct IngestOutcome {
    /// The client gave up for good with this error.
    pub fatal: Option<gnip_client::StreamError>,
    /// Records received but not spooled because the spool kept failing
    /// until shutdown (recorded in the gap journal).
    pub lost: u64,
    /// Partitions seen connected, for the shutdown gap entries.
    pub partitions: Vec<u16>,
}

impl Ingest {
    /// Runs until the client's channel ends.
    ///
    /// # Errors
    ///
    /// When the spool cannot be closed (its final fsync failed).
    pub fn run(mut self) -> Result<IngestOutcome, gnip_spool::SpoolError> {
        let mut outcome = IngestOutcome::default();
        let mut buf: Vec<StreamItem> = Vec::with_capacity(1024);
        let mut connects = 0u64;
        let mut mark = LastRecordMark::new(&self.data_dir);
        loop {
            let got = self.runtime.block_on(async {
                tokio::time::timeout(TICK, self.rx.recv_many(&mut buf, 1024)).await
            });
            if let Ok(0) = got {
                break;
            }
            for item in buf.drain(..) {
                match item {
                    StreamItem::Record(record) => {
                        if !append_with_retry(
                            &mut self.writer,
                            &record,
                            &self.counters,
                            &self.abandon,
                        ) {
                            outcome.lost += 1;
                            continue;
                        }
                        self.took(&record);
                    }
                    StreamItem::Event(event) => self.event(event, &mut outcome, &mut connects),
                }
            }
            if let Err(e) = self.writer.sync_if_due() {
                add(&self.counters.spool_errors, 1);
                warn!(error = %e, "Spool fsync failed; will try again.");
            }
            let last = self.counters.last_received_at_ms.load(Ordering::Relaxed) as i64;
            if let Err(e) = mark.update(&mut self.writer, last, false) {
                add(&self.counters.spool_errors, 1);
                warn!(error = %e, "Could not note the last record's time.");
            }
            for drop in self.spool.take_drops() {
                add(&self.counters.spool_dropped, drop.records);
                error!(records = drop.records, readers = ?drop.readers,
                    "Spool full: dropped the oldest records before every sink took them.");
                if let Err(e) = self.gaps.spool_dropped(&drop) {
                    add(&self.counters.gap_journal_errors, 1);
                    warn!(error = %e, "Could not write the gap journal.");
                }
            }
        }
        // The stream is down from now until the next start: journal it, so
        // that a restart knows what its backfill must cover.
        let last = self.counters.last_received_at_ms.load(Ordering::Relaxed) as i64;
        let now = crate::pipeline::now_ms();
        for partition in outcome.partitions.clone() {
            let r = self
                .gaps
                .stream_down(partition, (last > 0).then_some(last), now, "shutdown");
            if let Err(e) = r {
                add(&self.counters.gap_journal_errors, 1);
                warn!(error = %e, "Could not write the gap journal.");
            }
        }
        if outcome.lost > 0 {
            error!(
                records = outcome.lost,
                "Records received but not spooled (the spool kept failing); see the gap journal."
            );
        }
        let position = self.writer.close()?;
        info!(
            offset = position.offset,
            records = position.seq,
            "Spool closed."
        );
        Ok(outcome)
    }

    /// Bookkeeping for a record now in the spool.
    fn took(&mut self, record: &Record) {
        let c = &self.counters;
        add(&c.records, 1);
        add(&c.bytes, record.raw.len() as u64);
        c.last_received_at_ms
            .store(record.received_at_ms.max(0) as u64, Ordering::Relaxed);
        match record.kind {
            Kind::Activity => {
                let n = c.activities.fetch_add(1, Ordering::Relaxed) + 1;
                if self.max_records == Some(n) {
                    info!(activities = n, "Reached the record limit; stopping.");
                    self.stop.notify_one();
                }
            }
            Kind::Compliance => add(&c.compliance, 1),
            Kind::System | Kind::Unknown => add(&c.system, 1),
        }
        if let Err(e) = self
            .gaps
            .record_received(record.partition, record.received_at_ms)
        {
            add(&c.gap_journal_errors, 1);
            warn!(error = %e, "Could not write the gap journal.");
        }
        trace!(
            partition = record.partition,
            bytes = record.raw.len(),
            "Record spooled."
        );
    }

    fn event(&mut self, event: StreamEvent, outcome: &mut IngestOutcome, connects: &mut u64) {
        fn journal<T>(r: Result<T, crate::gaps::GapError>, c: &IngestCounters) {
            if let Err(e) = r {
                add(&c.gap_journal_errors, 1);
                warn!(error = %e, "Could not write the gap journal.");
            }
        }
        // The client already logs connection lifecycle, backoff, system
        // messages and malformed lines (rate-limited); here they only feed
        // the gap journal and the counters, so the logs say each thing once.
        match event {
            StreamEvent::Connected {
                partition,
                connection,
                at_ms,
                backfill_minutes,
            } => {
                *connects += 1;
                if *connects > 1 {
                    add(&self.counters.reconnects, 1);
                }
                if !outcome.partitions.contains(&partition) {
                    outcome.partitions.push(partition);
                }
                debug!(partition, connection, backfill_minutes, "Stream connected.");
                let r = self
                    .gaps
                    .stream_connected(partition, at_ms, backfill_minutes);
                journal(r, &self.counters);
            }
            StreamEvent::Disconnected {
                partition,
                connection,
                at_ms,
                reason,
                last_record_at_ms,
            } => {
                debug!(partition, connection, reason = %reason, "Stream disconnected.");
                let r = self
                    .gaps
                    .stream_down(partition, last_record_at_ms, at_ms, &reason);
                journal(r, &self.counters);
            }
            StreamEvent::DuplicateDropped { partition, post_id } => {
                trace!(partition, post_id, "Duplicate dropped.");
            }
            StreamEvent::Fatal(e) => {
                outcome.fatal = Some(e);
                self.stop.notify_one();
            }
            other => debug!(event = ?other, "Stream event."),
        }
    }
}

/// Appends a record, retrying with backoff while the spool fails (a full
/// disk, say) and waiting while it is full under the `pause` policy.
/// Returns false if the record cannot be spooled: it is larger than a spool
/// entry can be, or shutdown gave up on it.
fn append_with_retry(
    writer: &mut SpoolWriter,
    record: &Record,
    counters: &IngestCounters,
    abandon: &AtomicBool,
) -> bool {
    let entry = EntryRef {
        kind: record.kind.as_u8(),
        partition: record.partition,
        received_at_ms: record.received_at_ms,
        payload: &record.raw,
    };
    let mut delay = Duration::from_millis(100);
    let mut paused = false;
    loop {
        match writer.append_timeout(entry, FULL_WAIT) {
            Ok(_) => {
                if paused {
                    info!("Spool has room again; the stream resumes.");
                }
                return true;
            }
            Err(SpoolError::Full { .. }) => {
                // The slowest sink holds the oldest segment: the stream
                // waits (its channel fills and the socket is not read),
                // which the server turns into a disconnect and the gap
                // journal records.
                if !paused {
                    paused = true;
                    add(&counters.spool_full_waits, 1);
                    warn!("Spool full; the stream waits until the slowest sink frees space.");
                }
                if abandon.load(Ordering::Relaxed) {
                    return false;
                }
            }
            Err(e @ SpoolError::EntryTooLarge { .. }) => {
                add(&counters.spool_errors, 1);
                error!(error = %e, partition = record.partition,
                    "Record too large for the spool; it is not stored.");
                return false;
            }
            Err(e) => {
                add(&counters.spool_errors, 1);
                error!(error = %e, delay_ms = delay.as_millis() as u64,
                    "Cannot append to the spool; the stream waits until it can.");
                if abandon.load(Ordering::Relaxed) {
                    return false;
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(APPEND_RETRY_MAX);
            }
        }
    }
}
