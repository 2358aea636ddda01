//! Property tests: random appends, then the damage a crash can do to the
//! tail (a cut, or flipped bytes) at a random point; after reopening, every
//! entry before the damage is intact and in order, and nothing after it
//! that fails its checksum is returned.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use gnip_spool::{Entry, EntryRef, Spool, SpoolConfig};
use proptest::prelude::*;

fn config(dir: &Path, segment_bytes: u64) -> SpoolConfig {
    let mut c = SpoolConfig::new(dir);
    c.segment_bytes = segment_bytes;
    c.max_bytes = 1 << 30;
    c
}

fn last_segment(dir: &Path) -> PathBuf {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v.pop().expect("at least one segment")
}

fn read_all(spool: &Spool, name: &str) -> Vec<Entry> {
    let mut r = spool.reader(name).expect("reader");
    let mut out = Vec::new();
    while let Some(batch) = r.read_batch(1000, 1 << 20, Duration::ZERO).expect("read") {
        if batch.is_empty() {
            break;
        }
        out.extend(batch);
    }
    out
}

#[derive(Debug, Clone)]
enum Damage {
    /// Cut the last segment to this fraction (per mille) of its records.
    Cut(u32),
    /// XOR the byte at this fraction (per mille) of its records with a mask.
    Flip(u32, u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0u32..1000).prop_map(Damage::Cut),
        (0u32..1000, 1u8..=255).prop_map(|(p, m)| Damage::Flip(p, m))
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn entries_before_tail_damage_survive_reopen(
        sizes in prop::collection::vec(0usize..700, 1..120),
        segment_bytes in prop::sample::select(vec![1024u64, 4096, 1 << 20]),
        hit in damage(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let payloads: Vec<Vec<u8>> =
            sizes.iter().enumerate().map(|(i, n)| (0..*n).map(|j| (i * 31 + j) as u8).collect()).collect();
        {
            let (spool, _) = Spool::open(config(dir.path(), segment_bytes)).expect("open");
            let mut w = spool.writer().expect("writer");
            for (i, p) in payloads.iter().enumerate() {
                w.append(EntryRef { kind: i as u8, partition: i as u16, received_at_ms: i as i64, payload: p })
                    .expect("append");
            }
            w.close().expect("close");
        }

        // Damage a point among the records of the last segment, as a crash
        // mid-write would (the header is written durably before any record).
        let seg = last_segment(dir.path());
        let first: u64 = seg.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).expect("name");
        let len = fs::metadata(&seg).expect("stat").len();
        let body = len - 32;
        let (at, cut) = match hit {
            Damage::Cut(f) => (32 + body * u64::from(f) / 1000, true),
            Damage::Flip(f, _) => (32 + body * u64::from(f) / 1000, false),
        };
        if cut {
            OpenOptions::new().write(true).open(&seg).expect("open").set_len(at).expect("cut");
        } else if body > 0 {
            let Damage::Flip(_, mask) = hit else { unreachable!("flip branch") };
            let mut bytes = fs::read(&seg).expect("read");
            bytes[at as usize] ^= mask;
            fs::write(&seg, &bytes).expect("write");
        }
        // Entries that ended before the damaged byte (logical offsets).
        let damaged_logical = first + (at - 32);
        let mut end = 0u64;
        let mut expected = 0usize;
        for p in &payloads {
            end += 19 + p.len() as u64;
            let intact = if cut { end <= damaged_logical } else { end <= damaged_logical || body == 0 };
            if !intact {
                break;
            }
            expected += 1;
        }

        let (spool, report) = Spool::open(config(dir.path(), segment_bytes)).expect("reopen");
        let got = read_all(&spool, "check");
        prop_assert_eq!(got.len(), expected, "report: {:?}", report);
        for (i, e) in got.iter().enumerate() {
            prop_assert_eq!(e.payload.as_ref(), payloads[i].as_slice());
            prop_assert_eq!((e.kind, e.partition, e.received_at_ms), (i as u8, i as u16, i as i64));
            prop_assert_eq!(e.end.seq, i as u64 + 1);
        }
        prop_assert_eq!(fs::metadata(&seg).expect("stat").len(), 32 + (report.head.offset - first));

        // The log goes on from the cut.
        let mut w = spool.writer().expect("writer");
        w.append(EntryRef { kind: 9, partition: 9, received_at_ms: 9, payload: b"after" }).expect("append");
        w.close().expect("close");
        drop(spool);
        let (spool, report) = Spool::open(config(dir.path(), segment_bytes)).expect("reopen again");
        prop_assert_eq!(report.truncated_bytes, 0);
        let again = read_all(&spool, "again");
        prop_assert_eq!(again.len(), expected + 1);
        prop_assert_eq!(again[expected].payload.as_ref(), b"after");
    }
}
