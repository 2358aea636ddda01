//! The sink runner: one thread per sink that reads batches from the spool,
//! hands them to the sink, and moves the sink's cursor only after the sink
//! has written the batch durably.
//!
//! A sink whose service fails is retried with exponential backoff on the
//! same batch; meanwhile it simply falls behind in the spool, and the stream
//! reader and the other sinks carry on. A fatal error stops this sink only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use gnip_client::Kind;
use gnip_spool::SpoolReader;
use tracing::{debug, error, info, warn};

use super::counters::{SinkCounters, add};
use crate::config::PipelineConfig;
use crate::sinks::{Sink, SinkContext, SinkError, SinkSpec};

/// How a runner ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerEnd {
    /// The spool closed and the sink took everything in it.
    Drained,
    /// Shutdown gave up waiting; what was not written stays in the spool.
    Abandoned,
    /// The sink failed for good.
    Failed(String),
}

/// A sink, or what it takes to open it when its service was not there yet.
pub enum SinkStart {
    /// Opened at startup.
    Opened(Box<dyn Sink>),
    /// Opening failed for a reason that may pass (a locked database); the
    /// runner keeps trying with backoff while the spool holds its records.
    Retry(SinkSpec, SinkContext),
}

/// Drives one sink until the spool is closed and drained, the sink fails
/// for good, or `abandon` is set.
pub fn run_sink(
    start: SinkStart,
    mut reader: SpoolReader,
    config: PipelineConfig,
    counters: Arc<SinkCounters>,
    abandon: Arc<AtomicBool>,
) -> RunnerEnd {
    let span = tracing::info_span!("sink", sink = %counters.name);
    let _entered = span.enter();
    let mut sink = match start {
        SinkStart::Opened(sink) => sink,
        SinkStart::Retry(spec, ctx) => {
            match open_with_retry(&spec, &ctx, &config, &counters, &abandon) {
                Ok(sink) => sink,
                Err(end) => {
                    if let RunnerEnd::Failed(reason) = &end {
                        counters.dead.store(true, Ordering::Relaxed);
                        error!(error = %reason, "Sink could not be opened; its records stay in the spool.");
                    }
                    return end;
                }
            }
        }
    };
    let end = drive(&mut *sink, &mut reader, &config, &counters, &abandon);
    if let RunnerEnd::Failed(reason) = &end {
        counters.dead.store(true, Ordering::Relaxed);
        error!(error = %reason, "Sink stopped; its records stay in the spool for the next start.");
    }
    // Close even after a failure: the sink may hold finished work (a file
    // to rename) that a close still completes.
    match sink.close() {
        Ok(()) => info!(
            written = counters.written.load(Ordering::Relaxed),
            "Sink closed."
        ),
        Err(e) => {
            add(&counters.failures, 1);
            error!(error = %e, "Sink failed to close cleanly.");
        }
    }
    end
}

/// Opens a sink whose service refused at startup, retrying transient
/// failures with the same backoff as writes.
fn open_with_retry(
    spec: &SinkSpec,
    ctx: &SinkContext,
    config: &PipelineConfig,
    counters: &SinkCounters,
    abandon: &AtomicBool,
) -> Result<Box<dyn Sink>, RunnerEnd> {
    let mut delay = config.retry_initial;
    loop {
        if sleep_unless(abandon, delay) {
            return Err(RunnerEnd::Abandoned);
        }
        match spec.open(ctx) {
            Ok(sink) => {
                counters.failing.store(false, Ordering::Relaxed);
                counters.set_error(None);
                info!("Sink opened; catching up.");
                return Ok(sink);
            }
            Err(SinkError::Fatal(reason)) => return Err(RunnerEnd::Failed(reason)),
            Err(SinkError::Transient(reason)) => {
                add(&counters.failures, 1);
                warn!(error = %reason, delay_ms = delay.as_millis() as u64,
                    "Sink still cannot be opened; retrying.");
                delay = (delay * 2).min(config.retry_max);
            }
        }
    }
}

fn drive(
    sink: &mut dyn Sink,
    reader: &mut SpoolReader,
    config: &PipelineConfig,
    counters: &SinkCounters,
    abandon: &AtomicBool,
) -> RunnerEnd {
    loop {
        if abandon.load(Ordering::Relaxed) {
            return RunnerEnd::Abandoned;
        }
        let batch =
            match reader.read_batch(config.batch_records, config.batch_bytes, config.idle_wait) {
                Ok(Some(batch)) => batch,
                Ok(None) => return RunnerEnd::Drained,
                Err(e) => return RunnerEnd::Failed(format!("reading the spool: {e}")),
            };
        let Some(last) = batch.last() else {
            if let Err(e) = sink.idle(SystemTime::now()) {
                match e {
                    SinkError::Fatal(reason) => return RunnerEnd::Failed(reason),
                    SinkError::Transient(reason) => {
                        add(&counters.failures, 1);
                        warn!(error = %reason, "Sink idle work failed; will try again.");
                    }
                }
            }
            continue;
        };
        let end = last.end;

        // Write, retrying the same batch until it is durable.
        let mut delay = config.retry_initial;
        let mut attempt = 0u32;
        loop {
            match sink.write_batch(&batch) {
                Ok(()) => break,
                Err(SinkError::Fatal(reason)) => return RunnerEnd::Failed(reason),
                Err(SinkError::Transient(reason)) => {
                    attempt += 1;
                    add(&counters.failures, 1);
                    counters.failing.store(true, Ordering::Relaxed);
                    counters.set_error(Some(reason.clone()));
                    warn!(error = %reason, attempt, delay_ms = delay.as_millis() as u64,
                        "Sink write failed; retrying the batch.");
                    if sleep_unless(abandon, delay) {
                        return RunnerEnd::Abandoned;
                    }
                    delay = (delay * 2).min(config.retry_max);
                }
            }
        }
        if attempt > 0 {
            counters.failing.store(false, Ordering::Relaxed);
            counters.set_error(None);
            info!(attempts = attempt + 1, "Sink recovered; catching up.");
        }

        // Only now is it safe to move the cursor past the batch.
        if let Err(e) = reader.commit(end) {
            return RunnerEnd::Failed(format!("saving the spool cursor: {e}"));
        }
        let activities = batch
            .iter()
            .filter(|e| e.kind == Kind::Activity.as_u8())
            .count() as u64;
        add(&counters.written, batch.len() as u64);
        add(&counters.activities, activities);
        add(&counters.batches, 1);
        debug!(records = batch.len(), offset = end.offset, "Batch written.");
    }
}

/// Sleeps for `delay` in short steps; true if `abandon` was set meanwhile.
fn sleep_unless(abandon: &AtomicBool, delay: Duration) -> bool {
    let step = Duration::from_millis(50);
    let mut left = delay;
    while !left.is_zero() {
        if abandon.load(Ordering::Relaxed) {
            return true;
        }
        let now = left.min(step);
        std::thread::sleep(now);
        left -= now;
    }
    abandon.load(Ordering::Relaxed)
}
