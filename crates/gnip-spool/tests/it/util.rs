//! Helpers shared by the integration tests.

use std::path::Path;
use std::time::Duration;

use gnip_spool::{Entry, EntryRef, Position, Spool, SpoolConfig, SpoolReader, SpoolWriter};

/// A configuration with small segments, so a few hundred entries roll.
pub fn small_config(dir: &Path) -> SpoolConfig {
    let mut c = SpoolConfig::new(dir);
    c.segment_bytes = 4096;
    c.max_bytes = 1 << 30;
    c
}

/// The payload of entry `seq`: its number, then filler whose length and
/// bytes depend on it, so any misplaced or damaged byte shows.
pub fn payload(seq: u64) -> Vec<u8> {
    let mut p = format!("{{\"id\":\"{seq}\",\"text\":\"").into_bytes();
    let fill = 20 + (seq * 7919 % 200) as usize;
    p.extend((0..fill).map(|i| b'a' + ((seq as usize + i) % 26) as u8));
    p.extend_from_slice(b"\"}");
    p
}

/// Receive time of entry `seq`.
pub fn received(seq: u64) -> i64 {
    1_700_000_000_000 + seq as i64 * 10
}

/// Appends entries `from..to` with the deterministic payloads.
pub fn append_range(w: &mut SpoolWriter, from: u64, to: u64) -> Position {
    let mut last = Position::default();
    for seq in from..to {
        let p = payload(seq);
        last = w
            .append(EntryRef {
                kind: (seq % 5) as u8,
                partition: (seq % 3) as u16,
                received_at_ms: received(seq),
                payload: &p,
            })
            .expect("append");
    }
    last
}

/// Checks that `e` is entry `seq` as appended by `append_range`.
pub fn check_entry(e: &Entry, seq: u64) {
    assert_eq!(e.end.seq, seq + 1, "entry order");
    assert_eq!(
        e.payload.as_ref(),
        payload(seq).as_slice(),
        "payload of entry {seq}"
    );
    assert_eq!(
        (e.kind, e.partition, e.received_at_ms),
        ((seq % 5) as u8, (seq % 3) as u16, received(seq))
    );
}

/// Reads everything durable (until a read finds nothing within a short wait).
pub fn drain(r: &mut SpoolReader) -> Vec<Entry> {
    let mut out = Vec::new();
    while let Some(batch) = r
        .read_batch(100, 64 * 1024, Duration::from_millis(20))
        .expect("read")
    {
        if batch.is_empty() {
            break;
        }
        out.extend(batch);
    }
    out
}

/// Opens a spool, panicking with the error on failure.
pub fn open(config: SpoolConfig) -> Spool {
    Spool::open(config).expect("open spool").0
}
