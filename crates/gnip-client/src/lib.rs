//! Everything between a socket and a typed message for the Gnip / X
//! enterprise streams and the X API v2 streams.
//!
//! The modules follow the path of the bytes: a connection reads the HTTP
//! body, the inflater undoes gzip, the framer splits records on `\r\n`, and
//! the classifier sorts each record into an activity, a compliance event, a
//! system message or an unknown shape without building a JSON tree.

#![warn(missing_docs)]

pub mod framing;
pub mod message;
pub mod record;
pub mod timestamp;

pub use framing::{Frame, Framer};
pub use message::{
    Activity, ClassifyError, ComplianceEvent, ComplianceKind, DisconnectKind, Format, Level,
    MatchingRule, MatchingRules, Message, SystemMessage, Verb, classify,
};
pub use record::{Kind, Record};
