//! The pipeline: stream client, then spool, then one runner per sink.
//!
//! ```text
//!  stream client ──(bounded channel)──► ingest thread ──► spool (disk)
//!                                                           │ one cursor per sink
//!                                  ┌────────────────────────┼──────────────┐
//!                                  ▼                        ▼              ▼
//!                            runner: files           runner: sqlite   runner: stdout
//! ```
//!
//! The client's channel holds `StreamConfig::channel_capacity` items; when
//! it is full the client stops reading the socket (the server then buffers,
//! and past its own limit disconnects, which backfill or recovery repairs).
//! Sinks never hold back the reader: each reads the spool at its own pace.
//!
//! Shutdown runs in one order: stop the stream, let ingest append what the
//! channel still holds and close the spool (final fsync), let every runner
//! drain the spool and close its sink, then report. Nothing received is
//! dropped on a clean stop; a sink that cannot drain within the drain
//! timeout leaves its records in the spool for the next start.

pub mod counters;
pub mod ingest;
pub mod runner;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use gnip_client::message::{Message, classify};
use gnip_client::{Kind, Resume, StreamError};
use gnip_spool::Spool;
use tokio::sync::Notify;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::gaps::GapJournal;
use crate::sinks::{SinkContext, SinkError};
use counters::{IngestCounters, SinkCounters, get};
use ingest::Ingest;
use runner::{RunnerEnd, SinkStart, run_sink};

/// How far back a restart looks for its last record: backfill covers at
/// most five minutes (spec: `backfillMinutes` 1..5).
const BACKFILL_HORIZON: Duration = Duration::from_secs(5 * 60);

/// Why the pipeline stopped, and what it did.
#[derive(Debug)]
pub struct Summary {
    /// Records spooled (every kind).
    pub records: u64,
    /// Activities spooled.
    pub activities: u64,
    /// Compliance events spooled.
    pub compliance: u64,
    /// Payload bytes spooled.
    pub bytes: u64,
    /// Bytes read off the wire (compressed).
    pub wire_bytes: u64,
    /// Reconnections.
    pub reconnects: u64,
    /// Duplicates dropped by the client.
    pub duplicates: u64,
    /// Malformed lines skipped.
    pub malformed: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Per sink: name, entries written, how it ended.
    pub sinks: Vec<(String, u64, RunnerEnd)>,
    /// The stream's fatal error, if it stopped the run.
    pub fatal: Option<StreamError>,
    /// Records received but never spooled (spool failure until shutdown).
    pub lost: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "summary: activities={} records={} compliance={} bytes={} wire_bytes={} \
             reconnects={} duplicates={} malformed={} heartbeats={} lost={} elapsed={:.1}s",
            self.activities,
            self.records,
            self.compliance,
            self.bytes,
            self.wire_bytes,
            self.reconnects,
            self.duplicates,
            self.malformed,
            self.heartbeats,
            self.lost,
            self.elapsed.as_secs_f64()
        )?;
        for (name, written, end) in &self.sinks {
            let state = match end {
                RunnerEnd::Drained => "ok",
                RunnerEnd::Abandoned => "behind",
                RunnerEnd::Failed(_) => "failed",
            };
            write!(f, " sink.{name}={written}/{state}")?;
        }
        Ok(())
    }
}

/// What stops a run from outside: a signal, or a caller (the demo).
#[derive(Debug, Clone, Default)]
pub struct Stop {
    notify: Arc<Notify>,
    requested: Arc<AtomicBool>,
    hard: Arc<AtomicBool>,
}

impl Stop {
    /// Asks the pipeline to stop cleanly; a second request abandons the
    /// drain (records left stay in the spool).
    pub fn request(&self) {
        if self.requested.swap(true, Ordering::SeqCst) {
            self.hard.store(true, Ordering::SeqCst);
        }
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// True once a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        if self.is_requested() {
            return;
        }
        self.notify.notified().await;
    }
}

/// Live handles for the status display.
#[derive(Clone)]
pub struct Live {
    /// Ingest counters.
    pub ingest: Arc<IngestCounters>,
    /// Per-sink counters.
    pub sinks: Vec<Arc<SinkCounters>>,
    /// The client's counters.
    pub stream: gnip_client::StreamHandle,
    /// The spool, for its size and lag.
    pub spool: Spool,
}

/// Runs the pipeline until the stream fails for good, the run limits are
/// reached, or `stop` is requested. `on_start` gets live handles once
/// everything is running (the status line uses them).
///
/// # Errors
///
/// When the spool, the gap journal or a sink cannot be opened, or the spool
/// cannot be closed.
pub async fn run(
    mut config: Config,
    stop: Stop,
    on_start: impl FnOnce(Live),
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;

    // The spool, recovered to its last intact record.
    let (spool, report) = Spool::open(config.spool.clone())
        .with_context(|| format!("opening the spool in {}", config.spool.dir.display()))?;
    if report.truncated_bytes > 0 {
        warn!(
            bytes = report.truncated_bytes,
            "Spool had a torn tail from a crash; cut it off."
        );
    }
    let gaps = GapJournal::open(gap_journal_path(&config.data_dir))
        .with_context(|| format!("opening the gap journal in {}", config.data_dir.display()))?;

    // A restart soon after the last record asks for backfill and drops the
    // overlap using the post ids it already has.
    if config.stream.backfill {
        config.stream.resume = resume_point(&spool, &config.data_dir)?;
        if let Some(resume) = &config.stream.resume {
            info!(
                last_record_at_ms = resume.last_record_at_ms,
                recent_ids = resume.recent_post_ids.len(),
                "Resuming soon after the last record; asking for backfill."
            );
        }
    }

    // Sinks, each with its cursor and its thread.
    let ctx = SinkContext {
        stream_name: config.stream_name.clone(),
    };
    let abandon = Arc::new(AtomicBool::new(false));
    let mut runners = Vec::new();
    let mut sink_counters = Vec::new();
    for spec in &config.sinks {
        let name = spec.name().to_owned();
        let counters = SinkCounters::new(&name);
        let start = match spec.open(&ctx) {
            Ok(sink) => SinkStart::Opened(sink),
            Err(SinkError::Transient(reason)) => {
                // The other sinks need not wait for this one's service.
                warn!(sink = %name, error = %reason,
                    "Sink cannot be opened yet; it will catch up from the spool.");
                counters.failing.store(true, Ordering::Relaxed);
                counters.set_error(Some(reason));
                SinkStart::Retry(spec.clone(), ctx.clone())
            }
            Err(e @ SinkError::Fatal(_)) => {
                return Err(anyhow::Error::new(e).context(format!("opening sink {spec}")));
            }
        };
        let reader = spool
            .reader(&name)
            .with_context(|| format!("opening the spool cursor of sink {name}"))?;
        sink_counters.push(counters.clone());
        let (pipeline, abandon) = (config.pipeline.clone(), abandon.clone());
        let handle = std::thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || run_sink(start, reader, pipeline, counters, abandon))
            .context("starting a sink thread")?;
        runners.push((name, handle));
    }

    // The stream and the ingest thread.
    let (rx, stream) = gnip_client::spawn(config.stream).context("starting the stream client")?;
    let ingest_counters = Arc::new(IngestCounters::default());
    let limit_reached = Arc::new(Notify::new());
    let ingest = Ingest {
        rx,
        spool: spool.clone(),
        writer: spool.writer().context("opening the spool writer")?,
        gaps,
        counters: ingest_counters.clone(),
        max_records: config.max_records,
        stop: limit_reached.clone(),
        abandon: abandon.clone(),
        runtime: tokio::runtime::Handle::current(),
        data_dir: config.data_dir.clone(),
    };
    let ingest = std::thread::Builder::new()
        .name("ingest".into())
        .spawn(move || ingest.run())
        .context("starting the ingest thread")?;
    let live = Live {
        ingest: ingest_counters.clone(),
        sinks: sink_counters.clone(),
        stream: stream.clone(),
        spool: spool.clone(),
    };
    if let Some(addr) = config.metrics_listen {
        crate::metrics::serve(addr, live.clone())
            .await
            .with_context(|| format!("serving metrics on {addr}"))?;
    }
    on_start(live);
    info!(stream = %config.stream_name, sinks = runners.len(), "Connector running.");

    // Wait for a reason to stop.
    let deadline = async {
        match config.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = stop.wait() => info!("Stop requested; draining."),
        _ = deadline => info!("Run duration reached; draining."),
        _ = limit_reached.notified() => {},
    }

    // 1. Stop reading; ingest ends when the client's channel closes.
    stream.shutdown();
    let outcome = tokio::task::spawn_blocking(move || ingest.join())
        .await
        .context("waiting for the ingest thread")?
        .map_err(|_| anyhow::anyhow!("the ingest thread panicked"))?
        .context("closing the spool")?;

    // 2. Let the sinks drain the spool, then close.
    let drain_deadline = Instant::now() + config.pipeline.drain_timeout;
    let mut sinks = Vec::new();
    for (name, handle) in runners {
        while !handle.is_finished() {
            let give_up = Instant::now() >= drain_deadline || stop_is_hard(&stop);
            if give_up && !abandon.swap(true, Ordering::SeqCst) {
                warn!("Sinks did not drain in time; what is left stays in the spool.");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let end = handle
            .join()
            .unwrap_or_else(|_| RunnerEnd::Failed("sink thread panicked".into()));
        let written = sink_counters
            .iter()
            .find(|c| c.name == name)
            .map_or(0, |c| get(&c.written));
        sinks.push((name, written, end));
    }

    let s = stream.stats();
    let summary = Summary {
        records: get(&ingest_counters.records),
        activities: get(&ingest_counters.activities),
        compliance: get(&ingest_counters.compliance),
        bytes: get(&ingest_counters.bytes),
        wire_bytes: s.wire_bytes,
        reconnects: get(&ingest_counters.reconnects),
        duplicates: s.duplicates,
        malformed: s.malformed,
        heartbeats: s.heartbeats,
        sinks,
        fatal: outcome.fatal,
        lost: outcome.lost,
        elapsed: started.elapsed(),
    };
    if summary
        .sinks
        .iter()
        .any(|(_, _, end)| matches!(end, RunnerEnd::Failed(_)))
    {
        error!("At least one sink failed; its records remain in the spool.");
    }
    Ok(summary)
}

fn stop_is_hard(stop: &Stop) -> bool {
    stop.hard.load(Ordering::SeqCst)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The resume point of a restart: the last spooled record's time, if within
/// the backfill horizon, and the post ids spooled since the horizon began.
fn resume_point(spool: &Spool, data_dir: &Path) -> anyhow::Result<Option<Resume>> {
    // The spool may have deleted every segment its sinks passed; the mark
    // ingest keeps beside it still knows the newest durable record.
    let last = spool
        .last_received_at_ms()
        .into_iter()
        .chain(ingest::read_last_record(data_dir))
        .max();
    let Some(last) = last else {
        return Ok(None);
    };
    let now = now_ms();
    let horizon = BACKFILL_HORIZON.as_millis() as i64;
    if now - last > horizon {
        return Ok(None);
    }
    let mut ids = Vec::new();
    spool
        .scan_since(now - horizon, |entry| {
            if entry.kind != Kind::Activity.as_u8() {
                return;
            }
            if let Ok(Message::Activity(a)) = classify(&entry.payload) {
                ids.push(a.post_id);
            }
        })
        .context("scanning the spool for recent post ids")?;
    Ok(Some(Resume {
        last_record_at_ms: last,
        recent_post_ids: ids,
    }))
}

/// Where the gap journal of a data directory lives.
pub fn gap_journal_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("gaps.jsonl")
}
