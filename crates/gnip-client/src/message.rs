//! Classification: one framed line in, a typed, borrowed view of its
//! envelope out. Pure, no I/O; sits after the framer.
//!
//! Only the keys a connector needs are read (ids, times, language, verb,
//! matching rules, compliance targets, system texts); every other subtree is
//! skipped by the parser without building values. Strings borrow from the
//! line unless they contain escapes. Ids are read from their string forms
//! (`id_str`, the digits after the last `:` of an Activity Streams IRI, v2
//! string ids) or, where only a number exists, from the number's token as an
//! exact `u64`: serde_json hands integers that fit in 64 bits to the visitor
//! exactly and only falls back to `f64` for larger or fractional numbers,
//! which are rejected here. The format is detected per message from its
//! top-level keys (spec section 4), not per stream.
//!
//! Allocation: none per line, unless a string read here holds an escape
//! (it is copied). Strings borrow, rule lists of up to two rules live
//! inline, and the line is walked by the crate's `scan` module, not by
//! serde_json's own `Deserializer`, whose skipping of nested values keeps a
//! stack that it allocates afresh in every document. Measured by
//! `benches/frame_classify.rs` (it prints the count per record).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use smallvec::SmallVec;

use crate::record::Kind;
use crate::scan;
use crate::timestamp;

/// The data format of an activity or compliance event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Gnip Activity Streams (`objectType:"activity"`, `verb`, `actor`).
    ActivityStreams,
    /// Twitter original / native enriched (`id_str`, `created_at`, `user`).
    Original,
    /// X API v2 (`data`, `includes`, `matching_rules`).
    V2,
}

impl Format {
    /// A short lower-case name for logs and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::ActivityStreams => "activity_streams",
            Format::Original => "original",
            Format::V2 => "v2",
        }
    }
}

/// Whether an activity is an original post (or quote) or a share (retweet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// An original post, reply or quote.
    Post,
    /// A share (retweet) of another post.
    Share,
}

impl Verb {
    /// `"post"` or `"share"`, as in Activity Streams.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Post => "post",
            Verb::Share => "share",
        }
    }
}

/// One rule that matched an activity.
///
/// PowerTrack 1.0 rules carry `value` and `tag`; 2.0 rules carry a numeric
/// `id` (with an `id_str` twin) and `tag`; v2 rules carry a string `id`
/// (a number in early 2021 payloads) and `tag`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchingRule<'a> {
    /// The rule id, exact.
    pub id: Option<u64>,
    /// The rule tag; `None` for a null or missing tag.
    pub tag: Option<Cow<'a, str>>,
    /// The rule text, where the format carries it (PowerTrack 1.0).
    pub value: Option<Cow<'a, str>>,
}

/// The matching rules of one activity. Two rules are held inline, so the
/// common case costs no allocation.
pub type MatchingRules<'a> = SmallVec<[MatchingRule<'a>; 2]>;

/// A post or share, in any of the three formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity<'a> {
    /// The format it arrived in.
    pub format: Format,
    /// The post id.
    pub post_id: u64,
    /// The author's user id, where present.
    pub author_id: Option<u64>,
    /// Creation time in epoch milliseconds (`timestamp_ms` where present,
    /// else `postedTime` / `created_at`).
    pub posted_at_ms: Option<i64>,
    /// The language code (`twitter_lang` / `lang`).
    pub lang: Option<Cow<'a, str>>,
    /// Post or share.
    pub verb: Verb,
    /// For a share, the id of the post shared.
    pub retweeted_id: Option<u64>,
    /// For a quote, the id of the post quoted.
    pub quoted_id: Option<u64>,
    /// The rules that matched (empty for streams without rules).
    pub matching_rules: MatchingRules<'a>,
}

/// The kind of a compliance event (spec section 5), enterprise and v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComplianceKind {
    /// A post was deleted (also Activity Streams `verb:"delete"`).
    Delete,
    /// A post is withheld in some countries (`status_withheld`, v2 `withheld`).
    StatusWithheld,
    /// A post was removed from public view.
    Drop,
    /// A dropped post may be shown again.
    Undrop,
    /// A post was edited.
    TweetEdit,
    /// A user deleted their account.
    UserDelete,
    /// A deleted account was restored.
    UserUndelete,
    /// A user protected their posts.
    UserProtect,
    /// A user made their posts public again.
    UserUnprotect,
    /// A user was suspended.
    UserSuspend,
    /// A suspension was lifted.
    UserUnsuspend,
    /// A user is withheld in some countries.
    UserWithheld,
    /// Geo data must be removed from a user's posts up to a post id.
    ScrubGeo,
    /// A user changed their profile (v2 users compliance stream).
    UserProfileModification,
}

impl ComplianceKind {
    /// The wire key of the event, enterprise spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ComplianceKind::Delete => "delete",
            ComplianceKind::StatusWithheld => "status_withheld",
            ComplianceKind::Drop => "drop",
            ComplianceKind::Undrop => "undrop",
            ComplianceKind::TweetEdit => "tweet_edit",
            ComplianceKind::UserDelete => "user_delete",
            ComplianceKind::UserUndelete => "user_undelete",
            ComplianceKind::UserProtect => "user_protect",
            ComplianceKind::UserUnprotect => "user_unprotect",
            ComplianceKind::UserSuspend => "user_suspend",
            ComplianceKind::UserUnsuspend => "user_unsuspend",
            ComplianceKind::UserWithheld => "user_withheld",
            ComplianceKind::ScrubGeo => "scrub_geo",
            ComplianceKind::UserProfileModification => "user_profile_modification",
        }
    }

    /// The kind for a wire key (either spelling), or `None`.
    pub fn from_key(key: &str) -> Option<ComplianceKind> {
        Some(match key {
            "delete" => ComplianceKind::Delete,
            "status_withheld" | "withheld" => ComplianceKind::StatusWithheld,
            "drop" => ComplianceKind::Drop,
            "undrop" => ComplianceKind::Undrop,
            "tweet_edit" => ComplianceKind::TweetEdit,
            "user_delete" => ComplianceKind::UserDelete,
            "user_undelete" => ComplianceKind::UserUndelete,
            "user_protect" => ComplianceKind::UserProtect,
            "user_unprotect" => ComplianceKind::UserUnprotect,
            "user_suspend" => ComplianceKind::UserSuspend,
            "user_unsuspend" => ComplianceKind::UserUnsuspend,
            "user_withheld" => ComplianceKind::UserWithheld,
            "scrub_geo" => ComplianceKind::ScrubGeo,
            "user_profile_modification" => ComplianceKind::UserProfileModification,
            _ => return None,
        })
    }

    /// True for events about a whole user rather than one post.
    pub fn is_user_level(self) -> bool {
        matches!(
            self,
            ComplianceKind::UserDelete
                | ComplianceKind::UserUndelete
                | ComplianceKind::UserProtect
                | ComplianceKind::UserUnprotect
                | ComplianceKind::UserSuspend
                | ComplianceKind::UserUnsuspend
                | ComplianceKind::UserWithheld
                | ComplianceKind::ScrubGeo
                | ComplianceKind::UserProfileModification
        )
    }
}

/// A compliance event: something stored must be changed or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceEvent<'a> {
    /// What happened.
    pub kind: ComplianceKind,
    /// The format it arrived in.
    pub format: Format,
    /// The post concerned, for post-level events.
    pub post_id: Option<u64>,
    /// The user concerned (the author, for post-level events).
    pub user_id: Option<u64>,
    /// For `scrub_geo`: geo data goes from posts up to and including this id.
    pub up_to_post_id: Option<u64>,
    /// For `tweet_edit`: the first version of the edited post.
    pub initial_post_id: Option<u64>,
    /// For a v2 delete caused by a deleted quoted post: the quote's id.
    pub quote_post_id: Option<u64>,
    /// When the event happened, in epoch milliseconds.
    pub at_ms: Option<i64>,
    /// The countries of a withheld event (`xy` means everywhere).
    pub withheld_in_countries: SmallVec<[Cow<'a, str>; 2]>,
}

/// Severity of a system message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// Informational (`info`; replay completion).
    Info,
    /// A warning (`warn`, stall warnings, limit notices).
    Warn,
    /// An error (`error`, v2 `errors`, disconnect notices).
    Error,
}

impl Level {
    /// `"info"`, `"warn"` or `"error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Why the server says it is closing the connection (spec section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectKind {
    /// A forced disconnect of no more specific kind.
    Forced,
    /// Deploys and maintenance; reconnect at once with backfill.
    Operational,
    /// The connection allowance is exceeded.
    TooManyConnections,
    /// The client read too slowly; backfill will not cover the loss.
    BufferFull,
}

impl DisconnectKind {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectKind::Forced => "forced",
            DisconnectKind::Operational => "operational",
            DisconnectKind::TooManyConnections => "too_many_connections",
            DisconnectKind::BufferFull => "buffer_full",
        }
    }

    /// Detects a disconnect announcement in a message text. Texts vary, so
    /// this matches substrings, as the spec advises.
    pub fn from_text(text: &str) -> Option<DisconnectKind> {
        let has = |needle: &str| {
            text.as_bytes()
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
        };
        if has("too many connections") || has("maximum allowed connection") {
            Some(DisconnectKind::TooManyConnections)
        } else if has("maximum allowed backup") || has("unable to keep up") {
            Some(DisconnectKind::BufferFull)
        } else if has("operational reasons") {
            Some(DisconnectKind::Operational)
        } else if has("forced disconnect") || has("disconnected") || has("force closing") {
            Some(DisconnectKind::Forced)
        } else {
            None
        }
    }
}

/// An in-stream control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemMessage<'a> {
    /// Severity.
    pub level: Level,
    /// The human-readable text.
    pub message: Cow<'a, str>,
    /// Set when the message announces that the server closes the connection.
    pub disconnect: Option<DisconnectKind>,
    /// The `sent` time, where given.
    pub sent_at_ms: Option<i64>,
}

/// A classified line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// A post or share.
    Activity(Activity<'a>),
    /// A compliance event.
    Compliance(ComplianceEvent<'a>),
    /// A control message.
    System(SystemMessage<'a>),
    /// A well-formed JSON object of a shape not known here; passed on.
    Unknown,
}

impl Message<'_> {
    /// The record kind of this message.
    pub fn kind(&self) -> Kind {
        match self {
            Message::Activity(_) => Kind::Activity,
            Message::Compliance(_) => Kind::Compliance,
            Message::System(_) => Kind::System,
            Message::Unknown => Kind::Unknown,
        }
    }

    /// The post id of an activity, or the post a compliance event is about.
    pub fn post_id(&self) -> Option<u64> {
        match self {
            Message::Activity(a) => Some(a.post_id),
            Message::Compliance(c) => c.post_id,
            _ => None,
        }
    }

    /// When the post was created (activities) or the event happened
    /// (compliance), in epoch milliseconds.
    pub fn time_ms(&self) -> Option<i64> {
        match self {
            Message::Activity(a) => a.posted_at_ms,
            Message::Compliance(c) => c.at_ms,
            Message::System(s) => s.sent_at_ms,
            Message::Unknown => None,
        }
    }
}

/// Why a line could not be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassifyError {
    /// The line is not valid JSON (the text says where).
    #[error("malformed JSON: {0}")]
    Json(String),
    /// The line is valid JSON but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// An activity without a readable post id.
    #[error("{0} activity without a post id")]
    MissingPostId(&'static str),
}

/// Classifies one framed line (already trimmed; no delimiter).
///
/// # Errors
///
/// [`ClassifyError`] when the line is not a JSON object, or when it looks like
/// an activity but its post id cannot be read. Unknown shapes are not errors.
pub fn classify(line: &[u8]) -> Result<Message<'_>, ClassifyError> {
    if line.first() != Some(&b'{') {
        return match serde_json::from_slice::<IgnoredAny>(line) {
            Ok(_) => Err(ClassifyError::NotAnObject),
            Err(e) => Err(ClassifyError::Json(e.to_string())),
        };
    }
    let env: Envelope<'_> = match scan::from_slice(line) {
        Ok(env) => env,
        // The walk refuses no more than serde_json does, bar nesting deeper
        // than it tracks; serde_json settles every such line and words the
        // error as it always has.
        Err(_) => serde_json::from_slice(line).map_err(|e| ClassifyError::Json(e.to_string()))?,
    };
    env.into_message()
}

// ---------------------------------------------------------------------------
// Wire shapes. Each struct names only the keys read; serde skips the rest.

/// An id read from a string (`"123"`, `"tag:search.twitter.com,2005:123"`)
/// or from an integer token, exactly. Anything else reads as absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Id(Option<u64>);

impl Id {
    fn get(self) -> Option<u64> {
        self.0
    }
}

/// Parses the digits after the last `:` (or the whole string).
fn id_from_str(s: &str) -> Option<u64> {
    let tail = match memchr::memrchr(b':', s.as_bytes()) {
        Some(i) => &s[i + 1..],
        None => s,
    };
    if tail.is_empty() || tail.len() > 20 || !tail.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    tail.parse().ok()
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id as a string or an integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                Ok(Id(u64::try_from(v).ok()))
            }
            // An f64 here means the token had a fraction or exceeded u64:
            // never a usable id, and rounding it would corrupt it.
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id(id_from_str(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Id, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Id(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Id, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Id(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A time in any wire spelling, or an integer of epoch milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Time(Option<i64>);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Time;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Time, E> {
                Ok(Time(i64::try_from(v).ok()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Time, E> {
                Ok(Time(Some(v)))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Time, E> {
                Ok(Time(None))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Time, E> {
                Ok(Time(timestamp::parse_any(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Time, E> {
                Ok(Time(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Time, E> {
                Ok(Time(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Time, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Time(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Time, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Time(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string that may be null; a non-string value reads as absent rather
/// than failing the whole line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A nested object read through `T`, or anything else read as absent (a
/// `null`, a string where an object was expected). Keeps odd shapes from
/// failing a whole line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Obj<T>(Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|v| Obj(Some(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Obj<T>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Obj(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A list read element by element into a small vector; any non-list reads
/// as empty.
#[derive(Debug, Clone, PartialEq, Eq)]
struct List<T, const N: usize>(SmallVec<[T; N]>);

impl<T, const N: usize> Default for List<T, N> {
    fn default() -> Self {
        List(SmallVec::new())
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for List<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = List<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T, N>, A::Error> {
                let mut out = SmallVec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<List<T, N>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(List(SmallVec::new()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<List<T, N>, E> {
                Ok(List(SmallVec::new()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<List<T, N>, E> {
                Ok(List(SmallVec::new()))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<List<T, N>, E> {
                Ok(List(SmallVec::new()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<List<T, N>, E> {
                Ok(List(SmallVec::new()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<List<T, N>, E> {
                Ok(List(SmallVec::new()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<List<T, N>, E> {
                Ok(List(SmallVec::new()))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize, Default)]
struct RuleWire<'a> {
    #[serde(default)]
    id: Id,
    #[serde(default)]
    id_str: Id,
    #[serde(default, borrow)]
    tag: Text<'a>,
    #[serde(default, borrow)]
    value: Text<'a>,
}

impl<'a> From<RuleWire<'a>> for MatchingRule<'a> {
    fn from(r: RuleWire<'a>) -> Self {
        MatchingRule {
            id: r.id_str.get().or(r.id.get()),
            tag: r.tag.0,
            value: r.value.0,
        }
    }
}

type Rules<'a> = List<RuleWire<'a>, 2>;

fn rules(list: Rules<'_>) -> MatchingRules<'_> {
    list.0.into_iter().map(MatchingRule::from).collect()
}

/// An object of which only the id matters (`actor`, `user`, `object`,
/// `retweeted_status`, `quoted_status`, `twitter_quoted_status`).
#[derive(Default)]
struct IdOnly {
    id: Id,
    id_str: Id,
}

/// A key of an [`IdOnly`] object. Keys are read as raw bytes, which spares
/// serde_json a UTF-8 check per key: these objects are large (a user has
/// some forty keys, a nested post thirty) and only two ASCII names matter.
enum IdKey {
    Id,
    IdStr,
    Other,
}

impl<'de> Deserialize<'de> for IdKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IdKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<IdKey, E> {
                Ok(match v {
                    b"id" => IdKey::Id,
                    b"id_str" => IdKey::IdStr,
                    _ => IdKey::Other,
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IdKey, E> {
                self.visit_bytes(v.as_bytes())
            }
        }
        d.deserialize_bytes(V)
    }
}

impl<'de> Deserialize<'de> for IdOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IdOnly;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with an id")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IdOnly, A::Error> {
                let mut out = IdOnly::default();
                while let Some(key) = map.next_key::<IdKey>()? {
                    match key {
                        IdKey::Id => out.id = map.next_value()?,
                        IdKey::IdStr => out.id_str = map.next_value()?,
                        IdKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

impl IdOnly {
    fn best(&self) -> Option<u64> {
        self.id_str.get().or(self.id.get())
    }
}

fn best(o: &Obj<IdOnly>) -> Option<u64> {
    o.0.as_ref().and_then(IdOnly::best)
}

#[derive(Deserialize, Default)]
struct GnipLanguage<'a> {
    #[serde(default, borrow)]
    value: Text<'a>,
}

#[derive(Deserialize, Default)]
struct Gnip<'a> {
    #[serde(default, borrow)]
    matching_rules: Rules<'a>,
    #[serde(default, borrow)]
    language: Obj<GnipLanguage<'a>>,
}

#[derive(Deserialize, Default)]
struct SystemWire<'a> {
    #[serde(default, borrow)]
    message: Text<'a>,
    #[serde(default)]
    sent: Time,
}

/// A v2 `errors` entry, or the top level of a v2 problem body.
#[derive(Deserialize, Default)]
struct ProblemWire<'a> {
    #[serde(default, borrow)]
    title: Text<'a>,
    #[serde(default, borrow)]
    detail: Text<'a>,
    #[serde(default, borrow)]
    disconnect_type: Text<'a>,
    #[serde(default, borrow)]
    connection_issue: Text<'a>,
}

#[derive(Deserialize, Default)]
struct ReferencedTweet<'a> {
    #[serde(default, rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(default)]
    id: Id,
}

/// A status reference inside an enterprise compliance event.
#[derive(Deserialize, Default)]
struct StatusRef {
    #[serde(default)]
    id: Id,
    #[serde(default)]
    id_str: Id,
    #[serde(default)]
    user_id: Id,
    #[serde(default)]
    user_id_str: Id,
}

/// A v2 compliance `tweet` reference.
#[derive(Deserialize, Default)]
struct TweetRef {
    #[serde(default)]
    id: Id,
    #[serde(default)]
    author_id: Id,
}

/// The body of a compliance event under its key, any format: every field a
/// known event carries, all optional.
#[derive(Deserialize, Default)]
struct ComplianceWire<'a> {
    #[serde(default)]
    status: Obj<StatusRef>,
    #[serde(default)]
    tweet: Obj<TweetRef>,
    #[serde(default)]
    user: Obj<IdOnly>,
    #[serde(default)]
    id: Id,
    #[serde(default)]
    id_str: Id,
    #[serde(default)]
    user_id: Id,
    #[serde(default)]
    user_id_str: Id,
    #[serde(default)]
    up_to_status_id: Id,
    #[serde(default)]
    up_to_status_id_str: Id,
    #[serde(default)]
    initial_tweet_id: Id,
    #[serde(default)]
    quote_tweet_id: Id,
    #[serde(default)]
    timestamp_ms: Time,
    #[serde(default, rename = "timestampMs")]
    timestamp_ms_camel: Time,
    #[serde(default)]
    event_at: Time,
    #[serde(default, borrow)]
    withheld_in_countries: List<Text<'a>, 2>,
}

impl<'a> ComplianceWire<'a> {
    fn into_event(self, kind: ComplianceKind, format: Format) -> ComplianceEvent<'a> {
        let status = self.status.0.unwrap_or_default();
        let tweet = self.tweet.0.unwrap_or_default();
        let user = self.user.0.unwrap_or_default();
        let own_id = self.id_str.get().or(self.id.get());
        let user_level = kind.is_user_level();

        let post_id = status
            .id_str
            .get()
            .or(status.id.get())
            .or(tweet.id.get())
            .or(if user_level { None } else { own_id });
        let user_id = status
            .user_id_str
            .get()
            .or(status.user_id.get())
            .or(tweet.author_id.get())
            .or(user.best())
            .or(self.user_id_str.get())
            .or(self.user_id.get())
            .or(if user_level { own_id } else { None });
        ComplianceEvent {
            kind,
            format,
            post_id,
            user_id,
            up_to_post_id: self
                .up_to_status_id_str
                .get()
                .or(self.up_to_status_id.get()),
            initial_post_id: self.initial_tweet_id.get(),
            quote_post_id: self.quote_tweet_id.get(),
            at_ms: self
                .timestamp_ms
                .0
                .or(self.timestamp_ms_camel.0)
                .or(self.event_at.0),
            withheld_in_countries: self
                .withheld_in_countries
                .0
                .into_iter()
                .filter_map(|t| t.0)
                .collect(),
        }
    }
}

/// A value kept as its JSON text, borrowed from the line. Read through
/// [`scan`] it costs a skip and a UTF-8 check; through serde_json it is a
/// `RawValue`, which checks the same.
#[derive(Debug, Clone, Copy)]
struct Raw<'a>(&'a str);

impl Raw<'_> {
    fn get(&self) -> &str {
        self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Raw<'de>, E> {
                std::str::from_utf8(v).map(Raw).map_err(E::custom)
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Raw<'de>, D::Error> {
                <&'de RawValue>::deserialize(d).map(|r| Raw(r.get()))
            }
        }
        d.deserialize_newtype_struct(scan::RAW, V)
    }
}

/// The keys under which compliance events arrive (top level for
/// enterprise, under `data` for v2).
#[derive(Default)]
struct ComplianceSlots<'a> {
    delete: Option<Raw<'a>>,
    status_withheld: Option<Raw<'a>>,
    withheld: Option<Raw<'a>>,
    drop: Option<Raw<'a>>,
    undrop: Option<Raw<'a>>,
    tweet_edit: Option<Raw<'a>>,
    user_delete: Option<Raw<'a>>,
    user_undelete: Option<Raw<'a>>,
    user_protect: Option<Raw<'a>>,
    user_unprotect: Option<Raw<'a>>,
    user_suspend: Option<Raw<'a>>,
    user_unsuspend: Option<Raw<'a>>,
    user_withheld: Option<Raw<'a>>,
    scrub_geo: Option<Raw<'a>>,
    user_profile_modification: Option<Raw<'a>>,
}

impl<'a> ComplianceSlots<'a> {
    fn first(&self) -> Option<(ComplianceKind, Raw<'a>)> {
        use ComplianceKind as K;
        let slots = [
            (K::Delete, self.delete),
            (K::StatusWithheld, self.status_withheld),
            (K::StatusWithheld, self.withheld),
            (K::Drop, self.drop),
            (K::Undrop, self.undrop),
            (K::TweetEdit, self.tweet_edit),
            (K::UserDelete, self.user_delete),
            (K::UserUndelete, self.user_undelete),
            (K::UserProtect, self.user_protect),
            (K::UserUnprotect, self.user_unprotect),
            (K::UserSuspend, self.user_suspend),
            (K::UserUnsuspend, self.user_unsuspend),
            (K::UserWithheld, self.user_withheld),
            (K::ScrubGeo, self.scrub_geo),
            (K::UserProfileModification, self.user_profile_modification),
        ];
        slots.into_iter().find_map(|(k, v)| v.map(|v| (k, v)))
    }

    fn event(&self, format: Format) -> Option<ComplianceEvent<'a>> {
        let (kind, raw) = self.first()?;
        let wire: ComplianceWire<'a> = scan::from_slice(raw.0.as_bytes())
            .or_else(|_| serde_json::from_str(raw.0))
            .unwrap_or_default();
        Some(wire.into_event(kind, format))
    }
}

/// The v2 `data` object: a post, or a compliance event wrapper.
#[derive(Deserialize, Default)]
struct V2Data<'a> {
    #[serde(default)]
    id: Id,
    #[serde(default)]
    author_id: Id,
    #[serde(default)]
    created_at: Time,
    #[serde(default, borrow)]
    lang: Text<'a>,
    #[serde(default, borrow)]
    referenced_tweets: List<ReferencedTweet<'a>, 2>,
    // Compliance events under their keys.
    #[serde(default, borrow)]
    delete: Option<Raw<'a>>,
    #[serde(default, borrow)]
    status_withheld: Option<Raw<'a>>,
    #[serde(default, borrow)]
    withheld: Option<Raw<'a>>,
    #[serde(default, borrow)]
    drop: Option<Raw<'a>>,
    #[serde(default, borrow)]
    undrop: Option<Raw<'a>>,
    #[serde(default, borrow)]
    tweet_edit: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_delete: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_undelete: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_protect: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_unprotect: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_suspend: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_unsuspend: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_withheld: Option<Raw<'a>>,
    #[serde(default, borrow)]
    scrub_geo: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_profile_modification: Option<Raw<'a>>,
}

impl<'a> V2Data<'a> {
    fn slots(&self) -> ComplianceSlots<'a> {
        ComplianceSlots {
            delete: self.delete,
            status_withheld: self.status_withheld,
            withheld: self.withheld,
            drop: self.drop,
            undrop: self.undrop,
            tweet_edit: self.tweet_edit,
            user_delete: self.user_delete,
            user_undelete: self.user_undelete,
            user_protect: self.user_protect,
            user_unprotect: self.user_unprotect,
            user_suspend: self.user_suspend,
            user_unsuspend: self.user_unsuspend,
            user_withheld: self.user_withheld,
            scrub_geo: self.scrub_geo,
            user_profile_modification: self.user_profile_modification,
        }
    }
}

/// The top level of any line, every format at once.
#[derive(Deserialize, Default)]
struct Envelope<'a> {
    // Activity Streams.
    #[serde(default, rename = "objectType", borrow)]
    object_type: Text<'a>,
    #[serde(default, borrow)]
    verb: Text<'a>,
    #[serde(default, rename = "postedTime")]
    posted_time: Time,
    #[serde(default)]
    actor: Obj<IdOnly>,
    #[serde(default)]
    object: Obj<IdOnly>,
    #[serde(default, borrow)]
    twitter_lang: Text<'a>,
    #[serde(default)]
    twitter_quoted_status: Obj<IdOnly>,
    #[serde(default, borrow)]
    gnip: Obj<Gnip<'a>>,

    // Original format (and the shared `id`).
    #[serde(default)]
    id: Id,
    #[serde(default)]
    id_str: Id,
    #[serde(default)]
    created_at: Time,
    #[serde(default)]
    timestamp_ms: Time,
    #[serde(default)]
    user: Obj<IdOnly>,
    #[serde(default, borrow)]
    lang: Text<'a>,
    #[serde(default)]
    retweeted_status: Obj<IdOnly>,
    #[serde(default)]
    quoted_status_id_str: Id,
    #[serde(default)]
    quoted_status: Obj<IdOnly>,
    #[serde(default, borrow)]
    matching_rules: Rules<'a>,

    // X API v2.
    #[serde(default, borrow)]
    data: Obj<V2Data<'a>>,
    #[serde(default, borrow)]
    errors: List<ProblemWire<'a>, 1>,
    #[serde(default, borrow)]
    title: Text<'a>,
    #[serde(default, borrow)]
    detail: Text<'a>,
    #[serde(default, borrow)]
    connection_issue: Text<'a>,

    // System messages.
    #[serde(default, borrow)]
    info: Obj<SystemWire<'a>>,
    #[serde(default, borrow)]
    warn: Obj<SystemWire<'a>>,
    #[serde(default, borrow)]
    error: Obj<SystemWire<'a>>,
    #[serde(default, borrow)]
    limit: Option<Raw<'a>>,
    #[serde(default, borrow)]
    warning: Obj<WarningWire<'a>>,
    #[serde(default, borrow)]
    disconnect: Obj<DisconnectWire<'a>>,

    // Enterprise compliance events.
    // Compliance events under their keys.
    #[serde(default, borrow)]
    delete: Option<Raw<'a>>,
    #[serde(default, borrow)]
    status_withheld: Option<Raw<'a>>,
    #[serde(default, borrow)]
    withheld: Option<Raw<'a>>,
    #[serde(default, borrow)]
    drop: Option<Raw<'a>>,
    #[serde(default, borrow)]
    undrop: Option<Raw<'a>>,
    #[serde(default, borrow)]
    tweet_edit: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_delete: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_undelete: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_protect: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_unprotect: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_suspend: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_unsuspend: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_withheld: Option<Raw<'a>>,
    #[serde(default, borrow)]
    scrub_geo: Option<Raw<'a>>,
    #[serde(default, borrow)]
    user_profile_modification: Option<Raw<'a>>,
}

/// A v1.1 stall warning (`{"warning":{"code":"FALLING_BEHIND",...}}`).
#[derive(Deserialize, Default)]
struct WarningWire<'a> {
    #[serde(default, borrow)]
    message: Text<'a>,
    #[serde(default, borrow)]
    code: Text<'a>,
}

/// A v1.1 disconnect notice (`{"disconnect":{"code":N,"reason":...}}`).
#[derive(Deserialize, Default)]
struct DisconnectWire<'a> {
    #[serde(default)]
    code: Id,
    #[serde(default, borrow)]
    reason: Text<'a>,
}

fn system(level: Level, message: Cow<'_, str>, sent_at_ms: Option<i64>) -> Message<'_> {
    let disconnect = DisconnectKind::from_text(&message);
    Message::System(SystemMessage {
        level,
        message,
        disconnect,
        sent_at_ms,
    })
}

impl<'a> Envelope<'a> {
    fn slots(&self) -> ComplianceSlots<'a> {
        ComplianceSlots {
            delete: self.delete,
            status_withheld: self.status_withheld,
            withheld: self.withheld,
            drop: self.drop,
            undrop: self.undrop,
            tweet_edit: self.tweet_edit,
            user_delete: self.user_delete,
            user_undelete: self.user_undelete,
            user_protect: self.user_protect,
            user_unprotect: self.user_unprotect,
            user_suspend: self.user_suspend,
            user_unsuspend: self.user_unsuspend,
            user_withheld: self.user_withheld,
            scrub_geo: self.scrub_geo,
            user_profile_modification: self.user_profile_modification,
        }
    }

    fn into_message(self) -> Result<Message<'a>, ClassifyError> {
        // X API v2: `data` holds a post or a compliance event.
        if let Some(data) = self.data.0 {
            if let Some(event) = data.slots().event(Format::V2) {
                return Ok(Message::Compliance(event));
            }
            let post_id = data.id.get().ok_or(ClassifyError::MissingPostId("v2"))?;
            let mut retweeted_id = None;
            let mut quoted_id = None;
            for r in &data.referenced_tweets.0 {
                match r.kind.0.as_deref() {
                    Some("retweeted") => retweeted_id = r.id.get(),
                    Some("quoted") => quoted_id = r.id.get(),
                    _ => {}
                }
            }
            return Ok(Message::Activity(Activity {
                format: Format::V2,
                post_id,
                author_id: data.author_id.get(),
                posted_at_ms: data.created_at.0,
                lang: data.lang.0,
                verb: if retweeted_id.is_some() {
                    Verb::Share
                } else {
                    Verb::Post
                },
                retweeted_id,
                quoted_id,
                matching_rules: rules(self.matching_rules),
            }));
        }

        // Activity Streams: `objectType:"activity"` with a verb.
        if (self.object_type.0.as_deref() == Some("activity") || self.actor.0.is_some())
            && let Some(verb) = self.verb.0.as_deref()
        {
            let post_id = self.id.get();
            let author_id = best(&self.actor);
            match verb {
                "post" | "share" => {
                    let post_id = post_id.ok_or(ClassifyError::MissingPostId("activity"))?;
                    let verb = if verb == "share" {
                        Verb::Share
                    } else {
                        Verb::Post
                    };
                    let gnip = self.gnip.0.unwrap_or_default();
                    let lang = self
                        .twitter_lang
                        .0
                        .or(gnip.language.0.and_then(|l| l.value.0));
                    return Ok(Message::Activity(Activity {
                        format: Format::ActivityStreams,
                        post_id,
                        author_id,
                        posted_at_ms: self.posted_time.0,
                        lang,
                        verb,
                        retweeted_id: if verb == Verb::Share {
                            best(&self.object)
                        } else {
                            None
                        },
                        quoted_id: best(&self.twitter_quoted_status),
                        matching_rules: rules(gnip.matching_rules),
                    }));
                }
                "delete" => {
                    // A delete names the deleted post by the activity id
                    // or by its object.
                    return Ok(Message::Compliance(ComplianceEvent {
                        kind: ComplianceKind::Delete,
                        format: Format::ActivityStreams,
                        post_id: post_id.or(best(&self.object)),
                        user_id: author_id,
                        up_to_post_id: None,
                        initial_post_id: None,
                        quote_post_id: None,
                        at_ms: self.posted_time.0,
                        withheld_in_countries: SmallVec::new(),
                    }));
                }
                _ => return Ok(Message::Unknown),
            }
        }

        // Original format: a post has `id_str` and `created_at` or `user`;
        // compliance shapes and v2 batch-compliance lines (`id` without
        // `id_str`) have neither.
        if self.id_str.get().is_some() && (self.created_at.0.is_some() || self.user.0.is_some()) {
            let post_id = self
                .id_str
                .get()
                .or(self.id.get())
                .ok_or(ClassifyError::MissingPostId("original"))?;
            let retweeted_id = best(&self.retweeted_status);
            return Ok(Message::Activity(Activity {
                format: Format::Original,
                post_id,
                author_id: best(&self.user),
                posted_at_ms: self.timestamp_ms.0.or(self.created_at.0),
                lang: self.lang.0,
                verb: if retweeted_id.is_some() {
                    Verb::Share
                } else {
                    Verb::Post
                },
                retweeted_id,
                quoted_id: self
                    .quoted_status_id_str
                    .get()
                    .or(best(&self.quoted_status)),
                matching_rules: rules(self.matching_rules),
            }));
        }

        if let Some(event) = self.slots().event(Format::Original) {
            return Ok(Message::Compliance(event));
        }

        // Enterprise system messages: the severity is the key.
        for (level, body) in [
            (Level::Error, self.error.0),
            (Level::Warn, self.warn.0),
            (Level::Info, self.info.0),
        ] {
            if let Some(body) = body {
                let message = body.message.0.unwrap_or(Cow::Borrowed(""));
                return Ok(system(level, message, body.sent.0));
            }
        }

        // v2 errors: every such object announces a close.
        if let Some(problem) = self.errors.0.into_iter().next() {
            let too_many = problem.connection_issue.0.as_deref() == Some("TooManyConnections");
            let disconnect = match problem.disconnect_type.0.as_deref() {
                _ if too_many => Some(DisconnectKind::TooManyConnections),
                Some(t) if t.contains("Operational") => Some(DisconnectKind::Operational),
                Some(t) if t.contains("TooManyConnections") => {
                    Some(DisconnectKind::TooManyConnections)
                }
                Some(_) => Some(DisconnectKind::Forced),
                None => None,
            };
            let message = problem
                .detail
                .0
                .or(problem.title.0)
                .unwrap_or(Cow::Borrowed("v2 error"));
            let disconnect = disconnect.or(DisconnectKind::from_text(&message));
            return Ok(Message::System(SystemMessage {
                level: Level::Error,
                message,
                disconnect,
                sent_at_ms: None,
            }));
        }

        // A v2 problem body (a connection refusal written into the stream).
        if let (Some(detail), Some(_)) = (self.detail.0, self.title.0) {
            let disconnect = match self.connection_issue.0.as_deref() {
                Some("TooManyConnections") => Some(DisconnectKind::TooManyConnections),
                _ => DisconnectKind::from_text(&detail),
            };
            return Ok(Message::System(SystemMessage {
                level: Level::Error,
                message: detail,
                disconnect,
                sent_at_ms: None,
            }));
        }

        // v1.1-era notices that enterprise original-format streams inherit.
        if let Some(w) = self.warning.0 {
            let message = w
                .message
                .0
                .or(w.code.0)
                .unwrap_or(Cow::Borrowed("stall warning"));
            return Ok(Message::System(SystemMessage {
                level: Level::Warn,
                message,
                disconnect: None,
                sent_at_ms: None,
            }));
        }
        if let Some(limit) = self.limit {
            return Ok(Message::System(SystemMessage {
                level: Level::Warn,
                message: Cow::Owned(format!("Limit notice: {}", limit.get())),
                disconnect: None,
                sent_at_ms: None,
            }));
        }
        if let Some(d) = self.disconnect.0 {
            // Public-API disconnect codes: 2 duplicate stream, 4 stall (the
            // client fell behind), 1/5/11/12 server-side operations.
            let disconnect = match d.code.get() {
                Some(2) => DisconnectKind::TooManyConnections,
                Some(4) => DisconnectKind::BufferFull,
                Some(1 | 5 | 11 | 12) => DisconnectKind::Operational,
                _ => DisconnectKind::Forced,
            };
            return Ok(Message::System(SystemMessage {
                level: Level::Error,
                message: d.reason.0.unwrap_or(Cow::Borrowed("disconnect")),
                disconnect: Some(disconnect),
                sent_at_ms: None,
            }));
        }

        Ok(Message::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(line: &str) -> Activity<'_> {
        match classify(line.as_bytes()) {
            Ok(Message::Activity(a)) => a,
            other => panic!("not an activity: {other:?}"),
        }
    }

    fn compliance(line: &str) -> ComplianceEvent<'_> {
        match classify(line.as_bytes()) {
            Ok(Message::Compliance(c)) => c,
            other => panic!("not compliance: {other:?}"),
        }
    }

    fn sys(line: &str) -> SystemMessage<'_> {
        match classify(line.as_bytes()) {
            Ok(Message::System(s)) => s,
            other => panic!("not a system message: {other:?}"),
        }
    }

    #[test]
    fn ids_from_strings_and_tokens() {
        assert_eq!(
            id_from_str("tag:search.twitter.com,2005:1307025659294674945"),
            Some(1307025659294674945)
        );
        assert_eq!(id_from_str("id:twitter.com:2244994945"), Some(2244994945));
        assert_eq!(id_from_str("18446744073709551615"), Some(u64::MAX));
        assert_eq!(id_from_str("18446744073709551616"), None);
        assert_eq!(id_from_str("12a"), None);
        assert_eq!(id_from_str(""), None);
    }

    #[test]
    fn original_post_with_numeric_rule_ids_beyond_f64() {
        let line = r#"{"created_at": "Wed Oct 10 20:19:24 +0000 2018", "id": 1050118621198921728, "id_str": "1050118621198921728", "text": "x", "truncated": true, "user": {"id": 6253282, "id_str": "6253282", "screen_name": "example"}, "lang": "en", "timestamp_ms": "1539202764211", "matching_rules": [{"tag": null, "id": 1128017341835464707, "id_str": "1128017341835464707"}, {"tag":"b","id":9007199254740993}]}"#;
        let a = activity(line);
        assert_eq!(a.format, Format::Original);
        assert_eq!(a.post_id, 1050118621198921728);
        assert_eq!(a.author_id, Some(6253282));
        assert_eq!(a.posted_at_ms, Some(1539202764211));
        assert_eq!(a.lang.as_deref(), Some("en"));
        assert_eq!(a.verb, Verb::Post);
        assert_eq!(a.matching_rules.len(), 2);
        assert_eq!(a.matching_rules[0].id, Some(1128017341835464707));
        assert_eq!(a.matching_rules[0].tag, None);
        // 2^53 + 1: a double would round it to 2^53.
        assert_eq!(a.matching_rules[1].id, Some(9007199254740993));
        assert_eq!(a.matching_rules[1].tag.as_deref(), Some("b"));
    }

    #[test]
    fn activity_streams_share_and_rules() {
        let line = r#"{"id": "tag:search.twitter.com,2005:1307025659294674945", "objectType": "activity", "verb": "share", "postedTime": "2020-09-18T18:36:15.000Z", "body": "RT", "actor": {"objectType": "person", "id": "id:twitter.com:2244994945"}, "object": {"objectType": "activity", "verb": "post", "body": "t", "id": "tag:search.twitter.com,2005:1307000000000000000"}, "twitter_lang": "en", "gnip": {"matching_rules": [{"tag": "brand-a", "id": 1026514022567358464, "id_str": "1026514022567358464"}]}}"#;
        let a = activity(line);
        assert_eq!(a.format, Format::ActivityStreams);
        assert_eq!(a.verb, Verb::Share);
        assert_eq!(a.post_id, 1307025659294674945);
        assert_eq!(a.author_id, Some(2244994945));
        assert_eq!(a.retweeted_id, Some(1307000000000000000));
        assert_eq!(a.posted_at_ms, Some(1_600_454_175_000));
        assert_eq!(a.matching_rules[0].id, Some(1026514022567358464));
        assert_eq!(a.matching_rules[0].tag.as_deref(), Some("brand-a"));
    }

    #[test]
    fn powertrack_1_rule_values_and_gnip_language() {
        let line = r#"{"id": "tag:search.twitter.com,2005:66216303899328514", "objectType": "activity", "verb": "post", "postedTime": "2011-05-05T19:02:51.000Z", "body": "cold drinks all day", "actor": {"objectType": "person", "id": "id:twitter.com:130153085"}, "object": {"objectType": "note", "id": "object:search.twitter.com,2005:66216303899328514"}, "gnip": {"matching_rules": [{"value": "drinks", "tag": null}], "language": {"value": "en"}}}"#;
        let a = activity(line);
        assert_eq!(a.retweeted_id, None);
        assert_eq!(a.lang.as_deref(), Some("en"));
        assert_eq!(a.matching_rules[0].value.as_deref(), Some("drinks"));
        assert_eq!(a.matching_rules[0].id, None);
    }

    #[test]
    fn v2_post_with_string_rule_ids_and_references() {
        let line = r#"{"data": {"id": "1790000000000000001", "text": "n", "author_id": "2244994945", "created_at": "2024-05-13T09:12:44.000Z", "referenced_tweets":[{"type":"quoted","id":"1789999999999999999"}], "edit_history_tweet_ids": ["1790000000000000001"]}, "includes": {"users": [{"id": "2244994945"}]}, "matching_rules": [{"id": "1780000000000000042", "tag": "product-news"}]}"#;
        let a = activity(line);
        assert_eq!(a.format, Format::V2);
        assert_eq!(a.post_id, 1790000000000000001);
        assert_eq!(a.author_id, Some(2244994945));
        assert_eq!(a.quoted_id, Some(1789999999999999999));
        assert_eq!(a.verb, Verb::Post);
        assert_eq!(a.matching_rules[0].id, Some(1780000000000000042));
    }

    #[test]
    fn enterprise_compliance_events() {
        let c = compliance(
            r#"{"delete":{"status":{"id":601430178305220600,"id_str":"601430178305220608","user_id":3198576760,"user_id_str":"3198576760"},"timestamp_ms":"1432228155593"}}"#,
        );
        assert_eq!(c.kind, ComplianceKind::Delete);
        assert_eq!(c.post_id, Some(601430178305220608));
        assert_eq!(c.user_id, Some(3198576760));
        assert_eq!(c.at_ms, Some(1432228155593));

        let c = compliance(r#"{"user_protect":{"id":3182003550,"timestamp_ms":"1432228177137"}}"#);
        assert_eq!(c.kind, ComplianceKind::UserProtect);
        assert_eq!((c.post_id, c.user_id), (None, Some(3182003550)));

        let c = compliance(
            r#"{"scrub_geo": {"user_id": 519761961, "user_id_str": "519761961", "up_to_status_id": 411552403083628544, "up_to_status_id_str": "411552403083628544", "timestamp_ms": "1432228180345"}}"#,
        );
        assert_eq!(c.kind, ComplianceKind::ScrubGeo);
        assert_eq!(c.user_id, Some(519761961));
        assert_eq!(c.up_to_post_id, Some(411552403083628544));

        let c = compliance(
            r#"{"user_withheld": {"user": {"id": 1375036644, "id_str": "1375036644"}, "withheld_in_countries": ["DE"], "timestampMs": "2014-08-27T23:49:41.839+00:00"}}"#,
        );
        assert_eq!(c.kind, ComplianceKind::UserWithheld);
        assert_eq!(c.user_id, Some(1375036644));
        assert_eq!(c.at_ms, Some(1_409_183_381_839));
        assert_eq!(c.withheld_in_countries.as_slice(), ["DE"]);

        let c = compliance(
            r#"{"tweet_edit": {"id": "1557445923210514432", "initial_tweet_id": "1557433858676740098", "edit_tweet_ids": ["1557433858676740098", "1557445923210514432"], "timestamp_ms": "1660155761384"}}"#,
        );
        assert_eq!(c.kind, ComplianceKind::TweetEdit);
        assert_eq!(c.post_id, Some(1557445923210514432));
        assert_eq!(c.initial_post_id, Some(1557433858676740098));

        for key in ["drop", "undrop", "status_withheld"] {
            let line = format!(
                r#"{{"{key}":{{"status":{{"id_str":"601430178305220608","user_id_str":"3198576760"}},"timestamp_ms":"1432228155593"}}}}"#
            );
            let c = compliance(&line);
            assert_eq!(c.kind.as_str(), key);
            assert_eq!(c.post_id, Some(601430178305220608));
        }
        for key in [
            "user_delete",
            "user_undelete",
            "user_unprotect",
            "user_suspend",
            "user_unsuspend",
        ] {
            let line = format!(r#"{{"{key}":{{"id":771136850,"timestamp_ms":"1432228153548"}}}}"#);
            let c = compliance(&line);
            assert_eq!(c.kind.as_str(), key);
            assert_eq!(c.user_id, Some(771136850));
        }
    }

    #[test]
    fn v2_compliance_events() {
        let c = compliance(
            r#"{"data": {"delete": {"tweet": {"id": "601430178305220608", "author_id": "3198576760"}, "event_at": "2022-12-23T12:34:56.789Z"}}}"#,
        );
        assert_eq!((c.kind, c.format), (ComplianceKind::Delete, Format::V2));
        assert_eq!(c.post_id, Some(601430178305220608));
        assert_eq!(c.user_id, Some(3198576760));
        assert_eq!(c.at_ms, Some(1_671_798_896_789));

        let c = compliance(
            r#"{"data": {"withheld": {"tweet": {"id": "601430178305220608", "author_id": "3198576760"}, "withheld_in_countries": ["DE"], "event_at": "2022-12-23T12:34:56.789Z"}}}"#,
        );
        assert_eq!(c.kind, ComplianceKind::StatusWithheld);

        let c = compliance(
            r#"{"data": {"user_suspend": {"user": {"id": "3120539094"}, "event_at": "2022-12-23T12:34:56.789Z"}}}"#,
        );
        assert_eq!(
            (c.kind, c.user_id),
            (ComplianceKind::UserSuspend, Some(3120539094))
        );
        let c = compliance(
            r#"{"data": {"user_profile_modification": {"user": {"id": "3120539094"}, "event_at": "2022-12-23T12:34:56.789Z"}}}"#,
        );
        assert_eq!(c.kind, ComplianceKind::UserProfileModification);
    }

    #[test]
    fn activity_streams_delete_is_compliance() {
        let c = compliance(
            r#"{"objectType": "activity", "verb": "delete", "id": "tag:search.twitter.com,2005:601430178305220608", "actor": {"objectType": "person", "id": "id:twitter.com:3198576760"}, "postedTime": "2015-05-21T17:09:15.593Z"}"#,
        );
        assert_eq!(
            (c.kind, c.format),
            (ComplianceKind::Delete, Format::ActivityStreams)
        );
        assert_eq!(c.post_id, Some(601430178305220608));
        assert_eq!(c.user_id, Some(3198576760));
    }

    #[test]
    fn system_messages_and_disconnects() {
        let s = sys(
            r#"{"error":{"message":"Forced Disconnect: Too many connections. (Allowed Connections = 2)","sent":"2024-03-04T10:00:07+00:00"}}"#,
        );
        assert_eq!(s.level, Level::Error);
        assert_eq!(s.disconnect, Some(DisconnectKind::TooManyConnections));
        assert_eq!(s.sent_at_ms, Some(1_709_546_407_000));

        let s = sys(
            r#"{"error":{"message":"This stream has been disconnected for operational reasons.","sent":"2024-03-04T10:00:07+00:00"}}"#,
        );
        assert_eq!(s.disconnect, Some(DisconnectKind::Operational));
        let s = sys(
            r#"{"error":{"message":"Force closing connection to x because it reached the maximum allowed backup (buffer size is 1)."}}"#,
        );
        assert_eq!(s.disconnect, Some(DisconnectKind::BufferFull));
        let s = sys(
            r#"{"info":{"message":"Replay Request Completed","sent":"2016-05-27T22:15:50+00:00","activity_count":8874}}"#,
        );
        assert_eq!((s.level, s.disconnect), (Level::Info, None));
        let s = sys(r#"{"warn":{"message":"Rules changing"}}"#);
        assert_eq!(s.level, Level::Warn);

        let s = sys(
            r#"{"errors": [{"title": "operational-disconnect", "disconnect_type": "OperationalDisconnect", "detail": "This stream has been disconnected for operational reasons.", "type": "https://api.x.com/2/problems/operational-disconnect"}]}"#,
        );
        assert_eq!(s.level, Level::Error);
        assert_eq!(s.disconnect, Some(DisconnectKind::Operational));
        assert!(s.message.starts_with("This stream"));

        let s = sys(
            r#"{"title": "ConnectionException", "detail": "This stream is currently at the maximum allowed connection limit.", "connection_issue": "TooManyConnections", "type": "https://api.twitter.com/2/problems/streaming-connection"}"#,
        );
        assert_eq!(s.disconnect, Some(DisconnectKind::TooManyConnections));
    }

    #[test]
    fn unknown_shapes_and_errors() {
        assert_eq!(classify(br#"{"something":"new"}"#), Ok(Message::Unknown));
        assert_eq!(
            classify(br#"{"data":[{"id":"1"}],"meta":{}}"#),
            Ok(Message::Unknown)
        );
        assert_eq!(classify(b"[1,2]"), Err(ClassifyError::NotAnObject));
        assert!(matches!(
            classify(br#"{"id_str":"1","#),
            Err(ClassifyError::Json(_))
        ));
        assert!(matches!(
            classify(br#"{"a":1}{"b":2}"#),
            Err(ClassifyError::Json(_))
        ));
        assert!(matches!(classify(b"\xff\xfe"), Err(ClassifyError::Json(_))));
        assert_eq!(
            classify(br#"{"objectType":"activity","verb":"post","actor":{}}"#),
            Err(ClassifyError::MissingPostId("activity"))
        );
    }

    /// What `classify` gave when serde_json read the whole envelope.
    fn reference(line: &[u8]) -> Result<Message<'_>, ClassifyError> {
        if line.first() != Some(&b'{') {
            return classify(line);
        }
        let env: Envelope<'_> =
            serde_json::from_slice(line).map_err(|e| ClassifyError::Json(e.to_string()))?;
        env.into_message()
    }

    #[test]
    fn every_fixture_and_every_cut_of_one_classifies_as_serde_json_reads_it() {
        let lines = crate::scan::tests::fixture_lines();
        for line in &lines {
            assert_eq!(classify(line), reference(line));
            assert!(classify(line).is_ok());
        }
        let line = lines
            .iter()
            .find(|l| l.len() > 2000 && l.first() == Some(&b'{') && l.last() == Some(&b'}'));
        let line = line.expect("a long record");
        for end in 0..line.len() {
            let cut = &line[..end];
            assert_eq!(classify(cut), reference(cut), "cut at {end}");
            assert!(classify(cut).is_err());
        }
    }

    #[test]
    fn strings_holding_brackets_and_quotes_do_not_confuse_the_walk() {
        let line = br#"{"text":"}]} \"id_str\":\"9\" {[","id_str":"5","entities":{"x":["}","\\",{"y":"]\""}]},"created_at":"Wed Oct 10 20:19:24 +0000 2018","user":{"name":"{\"id\":1}","id_str":"6"}}"#;
        let Ok(Message::Activity(a)) = classify(line) else {
            panic!("not an activity")
        };
        assert_eq!((a.post_id, a.author_id), (5, Some(6)));
        assert_eq!(classify(line), reference(line));
    }

    #[test]
    fn deep_nesting_in_a_skipped_value_reads_as_before() {
        let deep = |open: &str, close: &str| {
            format!(
                r#"{{"id_str":"5","created_at":"Wed Oct 10 20:19:24 +0000 2018","x":{}1{}}}"#,
                open.repeat(5000),
                close.repeat(5000)
            )
        };
        let line = deep("[", "]");
        assert_eq!(classify(line.as_bytes()).map(|m| m.post_id()), Ok(Some(5)));
        let line = deep(r#"{"a":["#, "]}");
        assert_eq!(classify(line.as_bytes()).map(|m| m.post_id()), Ok(Some(5)));
        let bad = deep("[", "]").replacen("]]", "}]", 1);
        let err = classify(bad.as_bytes());
        assert!(matches!(err, Err(ClassifyError::Json(_))));
        assert_eq!(err, reference(bad.as_bytes()));
    }

    #[test]
    fn keys_that_are_not_ascii_read_as_before() {
        for line in [
            &b"{\"\xc3\xa9\":1,\"id_str\":\"1\",\"created_at\":\"x\",\"user\":{\"\xc3\xa9\":2,\"id\":3}}"[..],
            b"{\"\xff\":1,\"id_str\":\"1\",\"created_at\":\"x\"}",
            b"{\"user\":{\"\xff\":2,\"id\":3},\"id_str\":\"1\",\"created_at\":\"x\"}",
            b"{\"x\":{\"\xff\":2},\"id_str\":\"1\",\"created_at\":\"x\"}",
            br#"{"\u0069d_str":"1","created_at":"x"}"#,
        ] {
            assert_eq!(classify(line), reference(line));
        }
        assert!(matches!(
            classify(b"{\"\xff\":1}"),
            Err(ClassifyError::Json(_))
        ));
    }

    #[test]
    fn duplicate_keys_read_as_before() {
        let known = br#"{"id_str":"1","id_str":"2","created_at":"Wed Oct 10 20:19:24 +0000 2018"}"#;
        assert!(matches!(classify(known), Err(ClassifyError::Json(_))));
        assert_eq!(classify(known), reference(known));
        let unknown =
            br#"{"x":{"a":1},"x":[2],"id_str":"1","created_at":"Wed Oct 10 20:19:24 +0000 2018"}"#;
        assert_eq!(classify(unknown).map(|m| m.post_id()), Ok(Some(1)));
        let nested = br#"{"user":{"id_str":"3","id_str":"4"},"id_str":"1","created_at":"x"}"#;
        assert_eq!(classify(nested), reference(nested));
    }

    #[test]
    fn compliance_bodies_and_limits_read_as_before() {
        for line in [
            &br#"{"delete":{"status":{"id_str":"1","user_id_str":"2","x":{"y":[{}]}},"timestamp_ms":"1432228155593"}}"#[..],
            br#"{"delete":5}"#,
            br#"{"delete":null,"limit":{"track":{"n":[1]}}}"#,
            br#"{"data":{"delete":{"tweet":{"id":"1","author_id":"2"},"event_at":"2022-12-23T12:34:56.789Z"}}}"#,
            b"{\"delete\":{\"s\":\"\xff\"}}",
            b"{\"limit\":\"\xff\"}",
        ] {
            assert_eq!(classify(line), reference(line));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn damaged_fixtures_classify_as_serde_json_reads_them(
            pick in proptest::prelude::any::<proptest::sample::Index>(),
            edits in proptest::collection::vec(
                (
                    proptest::prelude::any::<proptest::sample::Index>(),
                    proptest::sample::select(&b"{}[]\",:\\ 0-.eEtnu\x01\xff"[..]),
                ),
                1..4,
            ),
        ) {
            let lines = crate::scan::tests::fixture_lines();
            let mut line = lines[pick.index(lines.len())].clone();
            for (at, byte) in edits {
                let i = at.index(line.len());
                line[i] = byte;
            }
            proptest::prop_assert_eq!(classify(&line), reference(&line));
        }
    }

    #[test]
    fn strings_borrow_from_the_line() {
        let line = br#"{"data":{"id":"5","lang":"en"},"matching_rules":[{"id":"7","tag":"t"}]}"#;
        let Ok(Message::Activity(a)) = classify(line) else {
            panic!("not an activity")
        };
        assert!(matches!(a.lang, Some(Cow::Borrowed(_))));
        assert!(matches!(a.matching_rules[0].tag, Some(Cow::Borrowed(_))));
        assert!(!a.matching_rules.spilled());
    }
}
