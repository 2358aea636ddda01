//! Prometheus metrics and a health check over HTTP, for operators who watch
//! dashboards rather than logs. Served only when `metrics_listen` is set.
//!
//! The exposition is written by hand from the pipeline's own counters: a
//! few dozen lines of text do not justify a metrics registry dependency,
//! and every number here already exists as an atomic counter.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get as route_get;
use tracing::{info, warn};

use crate::pipeline::Live;
use crate::pipeline::counters::{SinkCounters, get};

/// Starts the metrics server on `addr`; returns the bound address.
///
/// # Errors
///
/// When the address cannot be bound.
pub async fn serve(addr: SocketAddr, live: Live) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", route_get(metrics))
        .route("/health", route_get(health))
        .with_state(live);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            warn!(error = %e, "Metrics server stopped.");
        }
    });
    info!(addr = %bound, "Serving metrics at /metrics and health at /health.");
    Ok(bound)
}

async fn health(State(live): State<Live>) -> (StatusCode, String) {
    let dead: Vec<&str> = live
        .sinks
        .iter()
        .filter(|s| s.dead.load(Ordering::Relaxed))
        .map(|s| s.name.as_str())
        .collect();
    if dead.is_empty() {
        (StatusCode::OK, "ok\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("sinks failed: {}\n", dead.join(", ")),
        )
    }
}

async fn metrics(State(live): State<Live>) -> String {
    render(&live)
}

/// The Prometheus text exposition of every counter.
pub fn render(live: &Live) -> String {
    let mut out = String::with_capacity(4096);
    let s = live.stream.stats();
    let i = &live.ingest;
    let mut counter = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    };
    counter(
        "gnip_stream_wire_bytes_total",
        "Bytes read off the socket (compressed).",
        s.wire_bytes,
    );
    counter("gnip_stream_bytes_total", "Bytes after inflate.", s.bytes);
    counter("gnip_stream_records_total", "Records framed.", s.records);
    counter(
        "gnip_stream_heartbeats_total",
        "Heartbeats received.",
        s.heartbeats,
    );
    counter(
        "gnip_stream_reconnects_total",
        "Reconnections.",
        s.reconnects,
    );
    counter(
        "gnip_stream_duplicates_total",
        "Duplicates dropped.",
        s.duplicates,
    );
    counter(
        "gnip_stream_malformed_lines_total",
        "Malformed lines skipped.",
        s.malformed,
    );
    counter(
        "gnip_stream_system_messages_total",
        "System messages.",
        s.system_messages,
    );
    counter(
        "gnip_spool_records_appended_total",
        "Records appended to the spool.",
        get(&i.records),
    );
    counter(
        "gnip_spool_activities_appended_total",
        "Activities appended to the spool.",
        get(&i.activities),
    );
    counter(
        "gnip_spool_bytes_appended_total",
        "Payload bytes appended to the spool.",
        get(&i.bytes),
    );
    counter(
        "gnip_spool_errors_total",
        "Failed spool appends or fsyncs.",
        get(&i.spool_errors),
    );
    counter(
        "gnip_spool_dropped_records_total",
        "Records dropped by the drop-oldest policy.",
        get(&i.spool_dropped),
    );
    counter(
        "gnip_gap_journal_errors_total",
        "Failed gap journal writes.",
        get(&i.gap_journal_errors),
    );

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
