//! The gnip-connector application: configuration, the pipeline from stream
//! to spool to sinks, the sinks themselves, and the command line.
//!
//! - [`cli`] and [`config`]: what the user typed and wrote, validated;
//! - [`pipeline`]: stream client, then spool, then one runner per sink;
//! - [`sinks`]: where records land (stdout, rolled gzip files, SQLite);
//! - [`gaps`]: the journal of outages not covered by backfill;
//! - [`telemetry`] and [`metrics`]: logs, the status line, Prometheus;
//! - [`app`]: the commands and their exit codes.

pub mod app;
pub mod cli;
pub mod config;
pub mod gaps;
pub mod metrics;
pub mod pipeline;
pub mod sinks;
pub mod telemetry;
