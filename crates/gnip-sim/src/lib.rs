//! A simulator of the Gnip / X enterprise streaming APIs (PowerTrack 2.0,
//! Decahose, Firehose, Compliance Firehose, Replay and Recovery, the
//! PowerTrack rules API) and the X API v2 streams and rules API, with fault
//! injection and an accounting of everything it sent.
//!
//! It behaves like the real service on the wire (chunked HTTP/1.1, a gzip
//! member flushed per record, `\r\n` delimiters, heartbeats, system
//! messages, status codes), so that a client tested against it works
//! against the real thing. Start one with [`start`] and a [`SimConfig`];
//! the [`SimHandle`] gives the URLs, the [`Accounting`] and shutdown.
//!
//! Module map, in the order a request meets them: `http` parses requests,
//! `route` names the endpoint, `server` admits the connection (fault
//! statuses, authentication, compression, connection limits), `stream`
//! writes the body from a `timeline` (one per stream and partition) whose
//! records are `template`s built by `generate` or loaded by `corpus` and
//! encoded by `wire`; `rules` holds the rule sets and their APIs, `fault`
//! the fault plan, `compliance` the compliance events, `accounting` and
//! `ids` what was sent, `time` the date formats.

#![warn(missing_docs)]

mod accounting;
mod compliance;
mod config;
mod corpus;
mod error;
mod fault;
mod fixed;
mod generate;
mod http;
mod ids;
mod route;
mod rules;
mod server;
mod stream;
mod template;
mod time;
mod timeline;
mod wire;

pub use accounting::{Accounting, ConnectionAccount, EndReason};
pub use config::{Burst, Format, SimConfig};
pub use error::SimError;
pub use fault::{Applies, Fault, FaultParseError, FaultPlan, FaultRule};
pub use server::{SimHandle, start};
