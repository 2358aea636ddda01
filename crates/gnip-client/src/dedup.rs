//! Deduplication: a bounded set of recently seen keys, shared by every
//! connection of one logical stream. Pure.
//!
//! Duplicates are normal (spec 2.3, 2.4, 10.8): redundant connections carry
//! the same posts, and backfill re-delivers the overlap with what was
//! already received. The set remembers the last `capacity` keys: a hash set
//! for O(1) lookup plus a ring that evicts the oldest key once full, so the
//! memory is fixed when the set is created and never grows.
//!
//! Memory: each entry costs 8 bytes in the ring plus about 9 bytes per
//! bucket in the hash set, whose bucket count is the next power of two above
//! 8/7 of the capacity. The default, [`DEFAULT_CAPACITY`] = 262,144 keys,
//! takes about 6.5 MiB: enough for five minutes of backfill overlap at
//! 870 posts/s, more than a Decahose partition or a busy PowerTrack stream
//! delivers. Firehose users should raise it (about 25 bytes per key).
//!
//! Keys: an activity is keyed by its post id; a compliance event by a
//! 64-bit hash of its partition and raw bytes, with the top bit set. Post
//! ids are snowflake ids below 2^63, so the two kinds never collide. The
//! partition is part of a compliance key because partitions are disjoint:
//! the same bytes twice on one partition are a redundant or backfilled copy,
//! while identical events on two partitions are two deliveries the client
//! cannot prove to be one.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, DefaultHasher, Hasher};

/// The default number of keys remembered (about 6.5 MiB).
pub const DEFAULT_CAPACITY: usize = 1 << 18;

/// The key of a compliance record: a hash of its partition and bytes, top
/// bit set.
pub fn content_key(partition: u16, raw: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write_u16(partition);
    h.write(raw);
    h.finish() | (1 << 63)
}

/// A multiply-shift hasher for `u64` keys: post ids are already well spread
/// in their low bits (snowflake sequence and worker fields), and SipHash
/// would cost more than the rest of the per-record work.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        // Fibonacci hashing: one multiply spreads every input bit into the
        // high bits that hashbrown uses for its control bytes.
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A fixed-capacity set of recently seen keys.
#[derive(Debug)]
pub struct RecentSet {
    set: HashSet<u64, BuildHasherDefault<IdHasher>>,
    ring: VecDeque<u64>,
    capacity: usize,
}

impl std::fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdHasher")
    }
}

impl RecentSet {
    /// A set remembering the last `capacity` keys (at least 1). All memory
    /// is allocated here.
    pub fn new(capacity: usize) -> RecentSet {
        let capacity = capacity.max(1);
        RecentSet {
            set: HashSet::with_capacity_and_hasher(capacity, BuildHasherDefault::default()),
            ring: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Records `key`; returns `true` if it was new, `false` for a duplicate
    /// (which is not recorded again).
    pub fn insert(&mut self, key: u64) -> bool {
        if self.set.contains(&key) {
            return false;
        }
        if self.ring.len() == self.capacity
            && let Some(old) = self.ring.pop_front()
        {
            self.set.remove(&old);
        }
        self.ring.push_back(key);
        self.set.insert(key);
        true
    }

    /// True if `key` is remembered.
    pub fn contains(&self, key: u64) -> bool {
        self.set.contains(&key)
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The most keys remembered.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_duplicates_and_evicts_oldest() {
        let mut s = RecentSet::new(3);
        assert!(s.insert(1));
        assert!(s.insert(2));
        assert!(!s.insert(1));
        assert!(s.insert(3));
        assert!(s.insert(4)); // evicts 1
        assert_eq!(s.len(), 3);
        assert!(!s.contains(1));
        assert!(s.insert(1)); // new again, evicts 2
        assert!(!s.contains(2));
        assert!(s.contains(3) && s.contains(4));
    }

    #[test]
    fn memory_is_fixed_at_creation() {
        let mut s = RecentSet::new(1000);
        let ring_cap = s.ring.capacity();
        let set_cap = s.set.capacity();
        for k in 0..100_000u64 {
            s.insert(k.wrapping_mul(7_919));
        }
        assert_eq!(s.len(), 1000);
        assert_eq!(s.ring.capacity(), ring_cap);
        assert_eq!(s.set.capacity(), set_cap);
    }

    #[test]
    fn content_keys_never_look_like_post_ids() {
        assert!(content_key(1, b"{\"delete\":{}}") >= 1 << 63);
        assert_ne!(content_key(1, b"a"), content_key(1, b"b"));
        assert_ne!(content_key(1, b"a"), content_key(2, b"a"));
        assert_eq!(content_key(1, b"a"), content_key(1, b"a"));
    }
}
