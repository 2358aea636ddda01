//! Prometheus metrics and a health check over HTTP, for operators who watch
//! dashboards rather than logs. Served only when `metrics_listen` is set.
//!
//! The exposition is written by hand from the pipeline's own counters, and
//! served by a few lines over a tokio listener: neither a metrics registry
//! nor an HTTP framework earns its build time for two read-only pages, and
//! every number here already exists as an atomic counter.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info};

use crate::pipeline::Live;
use crate::pipeline::counters::{SinkCounters, get};

/// Longest request head accepted; scrapers send a few hundred bytes.
const MAX_REQUEST_BYTES: usize = 8192;

/// Starts the metrics server on `addr`; returns the bound address. It
/// answers `GET /metrics` and `GET /health`, one request per connection.
///
/// # Errors
///
/// When the address cannot be bound.
pub async fn serve(addr: SocketAddr, live: Live) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((conn, peer)) = listener.accept().await else {
                continue;
            };
            let live = live.clone();
            tokio::spawn(async move {
                if let Err(e) = answer(conn, &live).await {
                    debug!(peer = %peer, error = %e, "Metrics request failed.");
                }
            });
        }
    });
    info!(addr = %bound, "Serving metrics at /metrics and health at /health.");
    Ok(bound)
}

/// Reads one request head and writes one response.
async fn answer(mut conn: TcpStream, live: &Live) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "slow request"))??;
        if n == 0 || head.len() + n > MAX_REQUEST_BYTES {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (status, body) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", render(live)),
        (b"GET", b"/health") => health(live),
        (b"GET", _) => (
            "404 Not Found",
            "not found: try /metrics or /health\n".to_owned(),
        ),
        _ => ("405 Method Not Allowed", "only GET\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(response.as_bytes()).await?;
    conn.shutdown().await
}

fn health(live: &Live) -> (&'static str, String) {
    let dead: Vec<&str> = live
        .sinks
        .iter()
        .filter(|s| s.dead.load(Ordering::Relaxed))
        .map(|s| s.name.as_str())
        .collect();
    if dead.is_empty() {
        ("200 OK", "ok\n".into())
    } else {
        (
            "503 Service Unavailable",
            format!("sinks failed: {}\n", dead.join(", ")),
        )
    }
}

/// The Prometheus text exposition of every counter.
pub fn render(live: &Live) -> String {
    let mut out = String::with_capacity(4096);
    let s = live.stream.stats();
    let i = &live.ingest;
    let counters: [(&str, &str, u64); 15] = [
        (
            "gnip_stream_wire_bytes_total",
            "Bytes read off the socket (compressed).",
            s.wire_bytes,
        ),
        ("gnip_stream_bytes_total", "Bytes after inflate.", s.bytes),
        ("gnip_stream_records_total", "Records framed.", s.records),
        (
            "gnip_stream_heartbeats_total",
            "Heartbeats received.",
            s.heartbeats,
        ),
        (
            "gnip_stream_reconnects_total",
            "Reconnections.",
            s.reconnects,
        ),
        (
            "gnip_stream_duplicates_total",
            "Duplicates dropped.",
            s.duplicates,
        ),
        (
            "gnip_stream_malformed_lines_total",
            "Malformed lines skipped.",
            s.malformed,
        ),
        (
            "gnip_stream_system_messages_total",
            "System messages.",
            s.system_messages,
        ),
        (
            "gnip_spool_records_appended_total",
            "Records appended to the spool.",
            get(&i.records),
        ),
        (
            "gnip_spool_activities_appended_total",
            "Activities appended to the spool.",
            get(&i.activities),
        ),
        (
            "gnip_spool_bytes_appended_total",
            "Payload bytes appended to the spool.",
            get(&i.bytes),
        ),
        (
            "gnip_spool_errors_total",
            "Failed spool appends or fsyncs.",
            get(&i.spool_errors),
        ),
        (
            "gnip_spool_full_waits_total",
            "Times the stream waited for a full spool.",
            get(&i.spool_full_waits),
        ),
        (
            "gnip_spool_dropped_records_total",
            "Records dropped by the drop-oldest policy.",
            get(&i.spool_dropped),
        ),
        (
            "gnip_gap_journal_errors_total",
            "Failed gap journal writes.",
            get(&i.gap_journal_errors),
        ),
    ];
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help, [(None, value)]);
    }

    let stats = live.spool.stats();
    family(
        &mut out,
        "gnip_spool_disk_bytes",
        "gauge",
        "Size of the spool on disk.",
        [(None, stats.disk_bytes)],
    );
    let per_reader = |f: fn(&gnip_spool::ReaderStats) -> u64| {
        stats
            .readers
            .iter()
            .map(move |r| (Some(r.name.as_str()), f(r)))
    };
    family(
        &mut out,
        "gnip_sink_lag_records",
        "gauge",
        "Records in the spool not yet taken by the sink.",
        per_reader(|r| r.lag_records),
    );
    family(
        &mut out,
        "gnip_sink_lag_bytes",
        "gauge",
        "Bytes in the spool not yet taken by the sink.",
        per_reader(|r| r.lag_bytes),
    );
    let per_sink = |f: fn(&SinkCounters) -> u64| {
        live.sinks
            .iter()
            .map(move |s| (Some(s.name.as_str()), f(s)))
    };
    family(
        &mut out,
        "gnip_sink_records_written_total",
        "counter",
        "Records written and committed by the sink.",
        per_sink(|s| get(&s.written)),
    );
    family(
        &mut out,
        "gnip_sink_batches_total",
        "counter",
        "Batches written and committed by the sink.",
        per_sink(|s| get(&s.batches)),
    );
    family(
        &mut out,
        "gnip_sink_failures_total",
        "counter",
        "Failed write attempts of the sink.",
        per_sink(|s| get(&s.failures)),
    );
    family(
        &mut out,
        "gnip_sink_up",
        "gauge",
        "1 while the sink writes normally, 0 while failing or stopped.",
        per_sink(|s| {
            u64::from(!s.failing.load(Ordering::Relaxed) && !s.dead.load(Ordering::Relaxed))
        }),
    );
    out
}

/// Writes one metric family: its help and type lines, then one sample per
/// `(sink label, value)`.
fn family<'a>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Option<&'a str>, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (sink, value) in samples {
        match sink {
            Some(sink) => {
                let _ = writeln!(out, "{name}{{sink=\"{sink}\"}} {value}");
            }
            None => {
                let _ = writeln!(out, "{name} {value}");
            }
        }
    }
}
