//! Everything between a socket and a typed message for the Gnip / X
//! enterprise streams and the X API v2 streams.
//!
//! The modules follow the path of the bytes: a connection reads the HTTP
//! body ([`connection`]), the inflater undoes gzip ([`inflate`]), the framer
//! splits records on `\r\n` ([`framing`]), and the classifier sorts each
//! record into an activity, a compliance event, a system message or an
//! unknown shape without building a JSON tree ([`message`]). Around them,
//! [`stream`] runs one task per partition connection with the reconnect
//! policy of [`backoff`], asks for backfill after short outages, and drops
//! duplicates with the bounded set of [`dedup`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), gnip_client::StreamError> {
//! use gnip_client::{Credentials, Endpoint, StreamConfig, StreamItem, spawn};
//! let endpoint = Endpoint::powertrack("gnip-stream.x.com", "acme", "prod")?;
//! let config = StreamConfig::new(endpoint, Credentials::basic("me@acme.com", "secret"));
//! let (mut rx, handle) = spawn(config)?;
//! while let Some(item) = rx.recv().await {
//!     match item {
//!         StreamItem::Record(r) => println!("{} bytes of {}", r.raw.len(), r.kind.as_str()),
//!         StreamItem::Event(e) => eprintln!("{e:?}"),
//!     }
//! }
//! # drop(handle);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod auth;
pub mod backoff;
pub mod connection;
pub mod dedup;
pub mod endpoint;
pub mod error;
pub mod framing;
pub mod inflate;
pub mod message;
pub mod record;
mod scan;
pub mod stream;
pub mod timestamp;

pub use auth::Credentials;
pub use backoff::{BackoffConfig, FailureClass};
pub use endpoint::{Endpoint, EndpointError, Product};
pub use error::StreamError;
pub use framing::{Frame, Framer};
pub use message::{
    Activity, ClassifyError, ComplianceEvent, ComplianceKind, DisconnectKind, Format, Level,
    MatchingRule, MatchingRules, Message, SystemMessage, Verb, classify,
};
pub use record::{Kind, Record};
pub use stream::{
    Clock, Resume, StreamConfig, StreamEvent, StreamHandle, StreamItem, StreamStats, spawn,
};
