//! The record: the raw bytes of one message as received, plus the few keys
//! the rest of the pipeline needs without parsing it again.

use bytes::Bytes;

/// What a record is, decided by its top-level keys.
///
/// The numeric values are stable: they are written into the spool and must
/// not change between versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A post or a share (retweet), in any of the three formats.
    Activity = 1,
    /// A compliance event (delete, user_protect, scrub_geo, ...).
    Compliance = 2,
    /// An in-stream system message (`info`, `warn`, `error`, v2 `errors`).
    System = 3,
    /// A JSON object of a shape we do not know; passed on, never fatal.
    Unknown = 4,
}

impl Kind {
    /// The stable one-byte code of this kind.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The kind for a code written by [`Kind::as_u8`], or `None` for a code
    /// this version does not know.
    pub fn from_u8(code: u8) -> Option<Kind> {
        match code {
            1 => Some(Kind::Activity),
            2 => Some(Kind::Compliance),
            3 => Some(Kind::System),
            4 => Some(Kind::Unknown),
            _ => None,
        }
    }

    /// A short lower-case name, for logs, file names and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Activity => "activity",
            Kind::Compliance => "compliance",
            Kind::System => "system",
            Kind::Unknown => "unknown",
        }
    }
}

/// One message taken off a stream, owned, ready to be spooled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The message exactly as received, without its delimiter or surrounding
    /// whitespace.
    pub raw: Bytes,
    /// What the message is.
    pub kind: Kind,
    /// The post id of an activity, or the post id a compliance event is
    /// about; `None` for other messages.
    pub post_id: Option<u64>,
    /// When the post was created, in milliseconds since the Unix epoch. For
    /// a compliance event, when the event happened (`timestamp_ms`,
    /// `event_at`); for a system message, its `sent` time.
    pub posted_at_ms: Option<i64>,
    /// The partition the record came from; 0 for streams without partitions.
    pub partition: u16,
    /// When the record was taken off the socket, in milliseconds since the
    /// Unix epoch (wall clock).
    pub received_at_ms: i64,
}
