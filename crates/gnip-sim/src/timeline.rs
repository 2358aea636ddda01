//! Timelines: one per stream and partition, the single sequence of records
//! that every connection to that stream reads with its own cursor (so
//! redundant connections receive the same records), kept as history for
//! backfill and recovery, bounded by age and by bytes.
//!
//! With a rate, a generator task appends records on a clock whether anyone
//! is connected or not, as the real service does (which is what makes
//! backfill meaningful). Without one, the fastest reader generates a batch
//! whenever it reaches the end, so the simulator never runs ahead of its
//! fastest client; a reader that falls behind the retained history is
//! disconnected as a slow client, which bounds memory.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::fixed::FixedDeflate;
use bytes::Bytes;
use fastrand::Rng;
use tokio::sync::watch;

use crate::compliance::{self, Flavor, Recent};
use crate::config::Format;
use crate::ids::{BLOCK, IdAlloc};
use crate::route::Product;
use crate::rules::RuleStore;
use crate::template::{Body, Entry, Template};
use crate::wire::{compress_segment, segment_compressor};

/// Records generated per step when a reader drives generation.
const DRIVE_BATCH: usize = 256;

/// Where a timeline's records come from.
pub(crate) enum Source {
    Posts {
        pool: Arc<Vec<Arc<Template>>>,
        format: Format,
        rules: Option<Arc<RuleStore>>,
    },
    Compliance {
        flavor: Flavor,
        recent: Arc<Recent>,
        authors: Arc<Vec<u64>>,
    },
}

/// Limits of one timeline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_records: Option<u64>,
    pub history_ms: u64,
    pub history_bytes: u64,
}

struct State {
    entries: VecDeque<Entry>,
    first_seq: u64,
    bytes: u64,
    generated: u64,
    rng: Rng,
    id_next: u64,
    id_end: u64,
    cache_version: u64,
    cache: Vec<Option<Bytes>>,
    compress: FixedDeflate,
}

/// What a read found.
#[derive(Debug)]
pub(crate) enum Read {
    /// Records from the cursor on.
    Entries(Vec<Entry>),
    /// Nothing new yet.
    Idle,
    /// The cursor is older than the retained history.
    Behind,
}

pub(crate) struct Timeline {
    source: Source,
    limits: Limits,
    ids: Arc<IdAlloc>,
    state: Mutex<State>,
    next_seq: watch::Sender<u64>,
}

impl Timeline {
    pub(crate) fn new(
        product: Product,
        partition: u16,
        source: Source,
        limits: Limits,
        ids: Arc<IdAlloc>,
        seed: u64,
    ) -> Self {
        let pool_len = match &source {
            Source::Posts { pool, .. } => pool.len(),
            Source::Compliance { .. } => 0,
        };
        let seed = seed
            ^ (u64::from(partition) << 32)
            ^ product
                .name()
                .bytes()
                .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
        Timeline {
            source,
            limits,
            ids,
            state: Mutex::new(State {
                entries: VecDeque::new(),
                first_seq: 0,
                bytes: 0,
                generated: 0,
                rng: Rng::with_seed(seed),
                id_next: 0,
                id_end: 0,
                cache_version: u64::MAX,
                cache: vec![None; pool_len],
                compress: segment_compressor(),
            }),
            next_seq: watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sequence number the next generated record will get.
    pub(crate) fn next_seq(&self) -> u64 {
        *self.next_seq.borrow()
    }

    /// Notified whenever records are appended.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.next_seq.subscribe()
    }

    /// Whether `max_records` have been generated.
    pub(crate) fn exhausted(&self) -> bool {
        let st = self.lock();
        self.limits.max_records.is_some_and(|m| st.generated >= m)
    }

    /// The first sequence number whose record is at or after `ms`.
    pub(crate) fn seq_at(&self, ms: u64) -> u64 {
        let st = self.lock();
        st.first_seq + st.entries.partition_point(|e| e.time_ms < ms) as u64
    }

    /// Reads up to `max` records from `cursor`, not past `end` when given.
    /// When `drive` is set and the cursor is at the end, generates a batch
    /// first (as-fast-as-possible mode).
    pub(crate) fn read(
        &self,
        cursor: u64,
        max: usize,
        drive: bool,
        end: Option<u64>,
        now: u64,
    ) -> Read {
        let mut st = self.lock();
        if cursor < st.first_seq {
            return Read::Behind;
        }
        let mut next = st.first_seq + st.entries.len() as u64;
        if drive && cursor >= next && end.is_none() {
            self.generate_locked(&mut st, DRIVE_BATCH, now);
            next = st.first_seq + st.entries.len() as u64;
        }
        let stop = end
            .map_or(next, |e| e.min(next))
            .min(cursor.saturating_add(max as u64));
        if cursor >= stop {
            return Read::Idle;
        }
        let from = (cursor - st.first_seq) as usize;
        let to = (stop - st.first_seq) as usize;
        Read::Entries(st.entries.range(from..to).cloned().collect())
    }

    /// Appends up to `n` records stamped `now` (rate-driven mode); returns
    /// how many were appended.
    pub(crate) fn generate(&self, n: usize, now: u64) -> usize {
        let mut st = self.lock();
        self.generate_locked(&mut st, n, now)
    }

    fn generate_locked(&self, st: &mut State, n: usize, now: u64) -> usize {
        let mut made = 0;
        for _ in 0..n {
            if self.limits.max_records.is_some_and(|m| st.generated >= m) {
                break;
            }
            let Some(entry) = self.make(st, now) else {
                break;
            };
            st.bytes += entry.plain_len() as u64;
            st.entries.push_back(entry);
            st.generated += 1;
            made += 1;
        }
        // Trim by age, then by bytes; the newest record always stays.
        let oldest = now.saturating_sub(self.limits.history_ms);
        while st.entries.len() > 1
            && st
                .entries
                .front()
                .is_some_and(|e| e.time_ms < oldest || st.bytes > self.limits.history_bytes)
        {
            if let Some(e) = st.entries.pop_front() {
                st.bytes -= e.plain_len() as u64;
                st.first_seq += 1;
            }
        }
        if made > 0 {
            let next = st.first_seq + st.entries.len() as u64;
            self.next_seq.send_replace(next);
        }
        made
    }

    fn make(&self, st: &mut State, now: u64) -> Option<Entry> {
        match &self.source {
            Source::Posts {
                pool,
                format,
                rules,
            } => {
                let tmpl = pool[st.rng.usize(..pool.len())].clone();
                let rules = match rules {
                    None => Bytes::new(),
                    Some(store) => {
                        let set = store.snapshot();
                        // A filtered stream with no rules delivers nothing.
                        if set.rules.is_empty() {
                            return None;
                        }
                        if st.cache_version != set.version {
                            st.cache.iter_mut().for_each(|c| *c = None);
                            st.cache_version = set.version;
                        }
                        st.cache[tmpl.index]
                            .get_or_insert_with(|| set.matching(&tmpl, *format))
                            .clone()
                    }
                };
                if st.id_next == st.id_end {
                    st.id_next = self.ids.block();
                    st.id_end = st.id_next + BLOCK;
                }
                let id = st.id_next;
                st.id_next += 1;
                Some(Entry {
                    time_ms: now,
                    post_id: Some(id),
                    body: Body::Template { tmpl, rules },
                })
            }
            Source::Compliance {
                flavor,
                recent,
                authors,
            } => {
                let subject = recent.pick(&mut st.rng);
                let author = authors
                    .get(st.rng.usize(..authors.len().max(1)))
                    .copied()
                    .unwrap_or(1);
                let line = compliance::event(&mut st.rng, *flavor, subject, author, now)?;
                let mut plain = line.into_bytes();
                plain.extend_from_slice(b"\r\n");
                let z = compress_segment(&mut st.compress, &plain);
                Some(Entry {
                    time_ms: now,
                    post_id: None,
                    body: Body::Inline {
                        plain: plain.into(),
                        z: z.into(),
                    },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::pool;

    fn timeline(limits: Limits, rules: Option<Arc<RuleStore>>) -> Timeline {
        let pool = Arc::new(pool(Format::Original, 1, 16));
        Timeline::new(
            Product::PowerTrack,
            0,
            Source::Posts {
                pool,
                format: Format::Original,
                rules,
            },
            limits,
            Arc::new(IdAlloc::new(1_700_000_000_000)),
            1,
        )
    }

    const WIDE: Limits = Limits {
        max_records: None,
        history_ms: 60_000,
        history_bytes: 1 << 30,
    };

    fn ids(r: Read) -> Vec<u64> {
        match r {
            Read::Entries(e) => e.iter().filter_map(|e| e.post_id).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn readers_share_one_sequence_with_their_own_cursors() {
        let t = timeline(WIDE, None);
        let a = ids(t.read(0, 10, true, None, 1000));
        assert_eq!(a.len(), 10);
        let b = ids(t.read(0, 10, true, None, 1000));
        assert_eq!(a, b, "a second reader gets the same records");
        let mut all = ids(t.read(0, 1000, false, None, 1000));
        let n = all.len();
        all.dedup();
        assert_eq!(all.len(), n, "ids are unique");
    }

    #[test]
    fn history_is_bounded_by_age_and_bytes() {
        let t = timeline(
            Limits {
                history_ms: 10_000,
                ..WIDE
            },
            None,
        );
        t.generate(5, 1_000);
        t.generate(5, 20_000);
        assert!(matches!(t.read(0, 10, false, None, 20_000), Read::Behind));
        assert_eq!(t.seq_at(0), 5);
        let t = timeline(
            Limits {
                history_bytes: 20_000,
                ..WIDE
            },
            None,
        );
        t.generate(100, 1_000);
        let kept = ids(t.read(t.seq_at(0), 1000, false, None, 1_000));
        assert!(kept.len() < 12 && !kept.is_empty(), "{}", kept.len());
    }

    #[test]
    fn backfill_starts_at_the_first_record_in_the_window() {
        let t = timeline(WIDE, None);
        t.generate(3, 1_000);
        t.generate(4, 5_000);
        assert_eq!(t.seq_at(4_000), 3);
        assert_eq!(ids(t.read(3, 100, false, None, 5_000)).len(), 4);
        assert_eq!(
            ids(t.read(0, 100, false, Some(3), 5_000)).len(),
            3,
            "a window's end bounds the read"
        );
    }

    #[test]
    fn max_records_stops_generation_and_empty_rules_deliver_nothing() {
        let t = timeline(
            Limits {
                max_records: Some(5),
                ..WIDE
            },
            None,
        );
        assert_eq!(t.generate(10, 1), 5);
        assert!(t.exhausted());
        assert!(matches!(t.read(5, 10, true, None, 2), Read::Idle));
        let t = timeline(WIDE, Some(Arc::new(RuleStore::new(&[], 1, 10))));
        assert_eq!(t.generate(10, 1), 0);
    }
}
