//! Telemetry: log setup, the live status line on a terminal, and the
//! periodic status log for operators who read logs rather than terminals.
//!
//! Logs and the status line both go to stderr. A log line first clears the
//! status line (the next tick redraws it), and both take one lock, so they
//! never interleave mid-line. The status line is drawn only when stderr is
//! a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::{LogArgs, LogFormat};
use crate::pipeline::Live;
use crate::pipeline::counters::get;

/// Held while writing to stderr, so a log line and the status line never mix.
static STDERR: Mutex<()> = Mutex::new(());
/// True while a status line is drawn at the bottom of the terminal.
static STATUS_DRAWN: AtomicBool = AtomicBool::new(false);

/// Sets up `tracing`: level from -v / -q (or `RUST_LOG`), text or JSON.
pub fn init_logs(args: &LogArgs, format: LogFormat) {
    let level = match (args.verbose, args.quiet) {
        (_, q) if q >= 2 => "error",
        (_, 1) => "warn",
        (0, _) => "info",
        (1, _) => "debug",
        _ => "trace",
    };
    // Dependencies stay at warn unless asked for: their info lines are not
    // about our data.
    let default = format!(
        "warn,gnip_connector={level},gnip_client={level},gnip_spool={level},gnip_sim={level}"
    );
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(StderrWriter)
        .with_target(false);
    let result = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests calling main twice) keeps the first subscriber.
    drop(result);
}

/// Writes log lines to stderr, clearing the status line first.
#[derive(Clone, Copy)]
struct StderrWriter;

impl<'a> MakeWriter<'a> for StderrWriter {
    type Writer = StderrWriter;
    fn make_writer(&'a self) -> Self::Writer {
        StderrWriter
    }
}

impl Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _guard = STDERR.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        if STATUS_DRAWN.swap(false, Ordering::Relaxed) {
            err.write_all(b"\r\x1b[K")?;
        }
        err.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Runs the status display until `done` is set: a line redrawn every second
/// on a terminal, and an info log every `log_every` either way.
pub fn status_loop(live: Live, done: &AtomicBool, log_every: Duration) {
    let tty = std::io::stderr().is_terminal();
    let mut last = Snapshot::take(&live);
    let mut last_log = Instant::now();
    let start = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let now = Snapshot::take(&live);
        let dt = now.at.duration_since(last.at).as_secs_f64();
        if dt < 1.0 {
            continue;
        }
        let rate = (now.records - last.records) as f64 / dt;
        let mbps = (now.bytes - last.bytes) as f64 / dt / 1e6;
        let lag = live
            .spool
            .stats()
            .readers
            .iter()
            .map(|r| format!("{}:{}", r.name, r.lag_records))
            .collect::<Vec<_>>()
            .join(" ");
        let failing: Vec<&str> = live
            .sinks
            .iter()
            .filter(|s| s.failing.load(Ordering::Relaxed) || s.dead.load(Ordering::Relaxed))
            .map(|s| s.name.as_str())
            .collect();
        let line = format!(
            "{:>7.0} rec/s {:>6.1} MB/s | {} activities | reconnects {} | dups {} | malformed {} | lag {}{}",
            rate,
            mbps,
            now.activities,
            now.reconnects,
            now.duplicates,
            now.malformed,
            if lag.is_empty() { "-".into() } else { lag },
            if failing.is_empty() {
                String::new()
            } else {
                format!(" | FAILING {}", failing.join(","))
            }
        );
        if tty {
            let _guard = STDERR.lock().unwrap_or_else(|e| e.into_inner());
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K{line}");
            let _ = err.flush();
            STATUS_DRAWN.store(true, Ordering::Relaxed);
        }
        if last_log.elapsed() >= log_every {
            last_log = Instant::now();
            tracing::info!(
                uptime_s = start.elapsed().as_secs(),
                records_per_s = rate as u64,
                activities = now.activities,
                reconnects = now.reconnects,
                spool_bytes = live.spool.stats().disk_bytes,
                "Status."
            );
        }
        last = now;
    }
    if tty && STATUS_DRAWN.swap(false, Ordering::Relaxed) {
        let _guard = STDERR.lock().unwrap_or_else(|e| e.into_inner());
        let _ = write!(std::io::stderr(), "\r\x1b[K");
    }
}

struct Snapshot {
    at: Instant,
    records: u64,
    bytes: u64,
    activities: u64,
    reconnects: u64,
    duplicates: u64,
    malformed: u64,
}

impl Snapshot {
    fn take(live: &Live) -> Snapshot {
        let s = live.stream.stats();
        Snapshot {
            at: Instant::now(),
            records: get(&live.ingest.records),
            bytes: get(&live.ingest.bytes),
            activities: get(&live.ingest.activities),
            reconnects: get(&live.ingest.reconnects),
            duplicates: s.duplicates,
            malformed: s.malformed,
        }
    }
}
