//! Accounting: what the simulator sent, per connection and in total, so a
//! test can check a client end to end (every id the client stored was sent;
//! every id sent was stored; duplicates only where the simulator sent them
//! more than once by design: backfill, redundant connections, recovery).

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::ids::RangeSet;

/// How a stream connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Refused with an HTTP error status before any body.
    Refused,
    /// The client closed the connection.
    ClientClosed,
    /// Writing failed (reset by the peer, broken pipe).
    WriteFailed,
    /// A `drop-every` fault cut it with a FIN.
    DroppedFin,
    /// A `drop-every:rst` fault reset it.
    DroppedRst,
    /// A `stall-after` fault silenced it until the client left.
    Stalled,
    /// A Forced Disconnect message was sent, then the body was closed.
    ForcedDisconnect,
    /// Refused for exceeding the connection limit (message, then close).
    TooManyConnections,
    /// A `truncate-gzip-after` fault ended the body mid-member.
    TruncatedGzip,
    /// The client fell behind the history and was disconnected as too slow.
    FullBuffer,
    /// A recovery or replay request completed.
    Completed,
    /// The simulator shut down.
    Shutdown,
}

/// One stream connection attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionAccount {
    /// The attempt number (1-based, over all stream connects).
    pub id: u64,
    /// Path and query as requested.
    pub path: String,
    /// The stream (`powertrack`, `sample10`, `firehose`, `compliance`, `v2-filtered`, ...).
    pub stream: String,
    /// The partition, for partitioned streams.
    pub partition: Option<u16>,
    /// The HTTP status answered.
    pub status: u16,
    /// Records whose every byte was handed to the socket (malformed lines,
    /// heartbeats and system messages are not records).
    pub records_sent: u64,
    /// Bytes handed to the socket, head and chunk framing included.
    pub bytes_sent: u64,
    /// Bytes of the body as the client reads it after undoing gzip:
    /// records, delimiters, heartbeats and messages (a record cut by a fault
    /// counts whole).
    pub content_bytes_sent: u64,
    /// Heartbeats written.
    pub heartbeats_sent: u64,
    /// Malformed lines written by a `malformed-every` fault.
    pub malformed_sent: u64,
    /// How it ended; `None` while it is open.
    pub ended: Option<EndReason>,
}

/// What the simulator has sent so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accounting {
    /// Every stream connection attempt, in order.
    pub connections: Vec<ConnectionAccount>,
    /// Records sent over all connections (a record sent twice counts twice).
    pub records_sent: u64,
    /// Distinct post ids sent, ascending.
    pub sent_post_ids: Vec<u64>,
    /// Post ids sent more than once (backfill, redundant connections,
    /// recovery, replay), ascending.
    pub resent_post_ids: Vec<u64>,
    /// Stream connection attempts so far.
    pub connect_attempts: u64,
}

#[derive(Debug, Default)]
struct Inner {
    connections: Vec<ConnectionAccount>,
    records_sent: u64,
    sent: RangeSet,
    resent: RangeSet,
}

/// The live, shared ledger behind [`Accounting`].
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    inner: Mutex<Inner>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection attempt; returns its index.
    pub(crate) fn open(&self, account: ConnectionAccount) -> usize {
        let mut g = self.lock();
        g.connections.push(account);
        g.connections.len() - 1
    }

    /// Applies `f` to connection `idx`.
    pub(crate) fn update(&self, idx: usize, f: impl FnOnce(&mut ConnectionAccount)) {
        if let Some(c) = self.lock().connections.get_mut(idx) {
            f(c);
        }
    }

    /// Records that connection `idx` completed `records` records carrying
    /// the id runs `runs`, in `bytes` socket bytes holding `content` decoded
    /// bytes.
    pub(crate) fn sent(
        &self,
        idx: usize,
        records: u64,
        bytes: u64,
        content: u64,
        runs: &[(u64, u64)],
    ) {
        let mut g = self.lock();
        g.records_sent += records;
        for &(s, e) in runs {
            for (os, oe) in g.sent.insert(s, e) {
                g.resent.insert(os, oe);
            }
        }
        if let Some(c) = g.connections.get_mut(idx) {
            c.records_sent += records;
            c.bytes_sent += bytes;
            c.content_bytes_sent += content;
        }
    }

    pub(crate) fn snapshot(&self, with_ids: bool) -> Accounting {
        let g = self.lock();
        Accounting {
            connections: g.connections.clone(),
            records_sent: g.records_sent,
            sent_post_ids: if with_ids {
                g.sent.to_vec()
            } else {
                Vec::new()
            },
            resent_post_ids: if with_ids {
                g.resent.to_vec()
            } else {
                Vec::new()
            },
            connect_attempts: g.connections.len() as u64,
        }
    }

    /// Counts of distinct and resent ids, without expanding them.
    pub(crate) fn id_counts(&self) -> (u64, u64) {
        let g = self.lock();
        (g.sent.len(), g.resent.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: u64) -> ConnectionAccount {
        ConnectionAccount {
            id,
            path: "/p".into(),
            stream: "powertrack".into(),
            partition: None,
            status: 200,
            records_sent: 0,
            bytes_sent: 0,
            content_bytes_sent: 0,
            heartbeats_sent: 0,
            malformed_sent: 0,
            ended: None,
        }
    }

    #[test]
    fn ids_sent_twice_are_reported_as_resent() {
        let l = Ledger::default();
        let a = l.open(conn(1));
        let b = l.open(conn(2));
        l.sent(a, 3, 300, 900, &[(10, 13)]);
        l.sent(b, 2, 200, 600, &[(12, 14)]);
        let acc = l.snapshot(true);
        assert_eq!(acc.sent_post_ids, vec![10, 11, 12, 13]);
        assert_eq!(acc.resent_post_ids, vec![12]);
        assert_eq!(acc.records_sent, 5);
        assert_eq!(acc.connections[1].bytes_sent, 200);
        assert_eq!(l.id_counts(), (4, 1));
        let json = serde_json::to_string(&acc).unwrap();
        assert_eq!(serde_json::from_str::<Accounting>(&json).unwrap(), acc);
    }
}
