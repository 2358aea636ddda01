//! Post ids: the allocator that gives every served copy a fresh, unique id,
//! and the compact set of ids sent, kept as ranges. Each timeline takes ids
//! in blocks, so what one connection sends is mostly runs of consecutive
//! ids, and a benchmark that sends hundreds of millions of records keeps a
//! few thousand ranges rather than a hash set of every id.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Ids per block handed to a timeline.
pub(crate) const BLOCK: u64 = 4096;

/// Hands out blocks of fresh post ids.
#[derive(Debug)]
pub(crate) struct IdAlloc {
    next: AtomicU64,
}

impl IdAlloc {
    /// Starts at a snowflake-like id for `now_ms`, so that ids look current.
    pub(crate) fn new(now_ms: u64) -> Self {
        const TWITTER_EPOCH_MS: u64 = 1_288_834_974_657;
        IdAlloc {
            next: AtomicU64::new(now_ms.saturating_sub(TWITTER_EPOCH_MS) << 22),
        }
    }

    /// The first id of a new block of [`BLOCK`] ids.
    pub(crate) fn block(&self) -> u64 {
        self.next.fetch_add(BLOCK, Ordering::Relaxed)
    }
}

/// A set of u64 kept as disjoint half-open ranges.
#[derive(Debug, Default, Clone)]
pub(crate) struct RangeSet {
    ranges: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// Inserts `[start, end)`; returns the parts that were already present.
    pub(crate) fn insert(&mut self, start: u64, end: u64) -> Vec<(u64, u64)> {
        if start >= end {
            return Vec::new();
        }
        // Every range that overlaps or touches [start, end) is merged into
        // it: the one starting at or before `start` (if it reaches it) and
        // all those starting inside.
        let from = match self.ranges.range(..=start).next_back() {
            Some((&s, &e)) if e >= start => s,
            _ => start,
        };
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(from..=end)
            .map(|(&s, &e)| (s, e))
            .collect();
        let mut overlaps = Vec::new();
        let (mut lo, mut hi) = (start, end);
        for (s, e) in touching {
            let (os, oe) = (s.max(start), e.min(end));
            if os < oe {
                overlaps.push((os, oe));
            }
            lo = lo.min(s);
            hi = hi.max(e);
            self.ranges.remove(&s);
        }
        self.ranges.insert(lo, hi);
        overlaps
    }

    /// Number of ids in the set.
    pub(crate) fn len(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    /// Every id, ascending.
    pub(crate) fn to_vec(&self) -> Vec<u64> {
        self.ranges.iter().flat_map(|(&s, &e)| s..e).collect()
    }

    #[cfg(test)]
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }
}

/// Accumulates runs of consecutive ids before they go into a [`RangeSet`].
#[derive(Debug, Default)]
pub(crate) struct Runs {
    pub runs: Vec<(u64, u64)>,
}

impl Runs {
    pub(crate) fn push(&mut self, id: u64) {
        if let Some(last) = self.runs.last_mut()
            && last.1 == id
        {
            last.1 += 1;
            return;
        }
        self.runs.push((id, id + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_merge_and_report_overlaps() {
        let mut s = RangeSet::default();
        assert!(s.insert(10, 20).is_empty());
        assert!(s.insert(30, 40).is_empty());
        assert!(s.insert(20, 25).is_empty(), "touching is not overlapping");
        assert_eq!(s.insert(15, 35), vec![(15, 25), (30, 35)]);
        assert_eq!(s.ranges().collect::<Vec<_>>(), vec![(10, 40)]);
        assert_eq!(s.len(), 30);
        assert_eq!(s.insert(5, 12), vec![(10, 12)]);
        assert_eq!(s.to_vec().first(), Some(&5));
        assert!(s.insert(7, 7).is_empty());
    }

    #[test]
    fn runs_collapse_consecutive_ids() {
        let mut r = Runs::default();
        for id in [1, 2, 3, 7, 8, 2] {
            r.push(id);
        }
        assert_eq!(r.runs, vec![(1, 4), (7, 9), (2, 3)]);
    }

    #[test]
    fn blocks_never_overlap() {
        let a = IdAlloc::new(1_700_000_000_000);
        let (x, y) = (a.block(), a.block());
        assert_eq!(y - x, BLOCK);
        assert!(x > 1 << 60, "snowflake-sized ids");
    }
}
