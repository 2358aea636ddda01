//! The in-memory mode: the same API and semantics, nothing on disk.

use std::thread;
use std::time::Duration;

use gnip_spool::{FullPolicy, Position, Spool, SpoolConfig};

use crate::util::{append_range, check_entry, drain, received};

fn memory(dir: &std::path::Path) -> SpoolConfig {
    let mut c = SpoolConfig::new(dir.join("never-created"));
    c.in_memory = true;
    c.segment_bytes = 4096;
    c.max_bytes = 1 << 20;
    c
}

#[test]
fn memory_mode_reads_commits_rewinds_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (spool, report) = Spool::open(memory(dir.path())).expect("open");
    assert_eq!(report.segments, 1);
    let mut a = spool.reader("a").expect("reader");
    let mut w = spool.writer().expect("writer");
    append_range(&mut w, 0, 300);
    // Visible at once: there is no fsync to wait for.
    assert_eq!(spool.stats().durable.seq, 300);
    assert_eq!(spool.last_received_at_ms(), Some(received(299)));
    let mut seen = Vec::new();
    spool
        .scan_since(received(290), |e| seen.push(e.end.seq - 1))
        .expect("scan");
    assert_eq!(seen, (290..300).collect::<Vec<_>>());

    let first = a
        .read_batch(50, 1 << 20, Duration::ZERO)
        .expect("read")
        .expect("open");
    assert_eq!(first.len(), 50);
    a.commit(first[49].end).expect("commit");
    let second = a
        .read_batch(50, 1 << 20, Duration::ZERO)
        .expect("read")
        .expect("open");
    a.rewind();
    assert_eq!(
        a.read_batch(50, 1 << 20, Duration::ZERO)
            .expect("read")
            .expect("open"),
        second
    );
    let rest = drain(&mut a);
    assert_eq!(rest.len(), 200);
    check_entry(&rest[199], 299);
    a.commit(rest[199].end).expect("commit");

    let stats = spool.stats();
    assert!(stats.in_memory);
    assert!(
        stats.segments_deleted_total > 0,
        "segments a reader passed are freed"
    );
    let mut b = spool.reader("b").expect("reader");
    assert_eq!(
        drain(&mut b)[0].end.seq,
        stats.oldest.seq + 1,
        "a new reader starts at the oldest"
    );

    w.close().expect("close");
    assert_eq!(
        a.read_batch(1, 1, Duration::ZERO).expect("read"),
        None,
        "closed and drained"
    );
    assert!(!dir.path().join("never-created").exists());
}

#[test]
fn memory_mode_drop_oldest_reports_like_the_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = memory(dir.path());
    c.max_bytes = 3 * 4096;
    c.full_policy = FullPolicy::DropOldest;
    let (spool, _) = Spool::open(c).expect("open");
    let mut r = spool.reader("behind").expect("reader");
    let mut w = spool.writer().expect("writer");
    append_range(&mut w, 0, 300);
    let drops = spool.take_drops();
    assert!(!drops.is_empty());
    assert_eq!(drops[0].from, Position::default());
    assert_eq!(drops[0].readers, vec!["behind".to_string()]);
    assert_eq!(drops[0].first_received_at_ms, Some(received(0)));
    assert_eq!(
        drops[0].last_received_at_ms,
        Some(received(drops[0].to.seq - 1))
    );
    let stats = spool.stats();
    assert!(stats.disk_bytes <= 3 * 4096);
    let rest = drain(&mut r);
    assert_eq!(rest[0].end.seq, stats.oldest.seq + 1);
    assert_eq!(rest.last().expect("entries").end.seq, 300);
}

#[test]
fn memory_mode_pause_waits_for_the_reader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = memory(dir.path());
    c.max_bytes = 3 * 4096;
    c.full_policy = FullPolicy::Pause;
    let (spool, _) = Spool::open(c).expect("open");
    let mut r = spool.reader("r").expect("reader");
    let ws = spool.clone();
    let writer = thread::spawn(move || {
        let mut w = ws.writer().expect("writer");
        append_range(&mut w, 0, 400);
        w.close().expect("close")
    });
    // Read nothing until the writer has had to wait: the spool holds far
    // less than 400 entries, so it must pause, whatever the scheduling.
    let start = std::time::Instant::now();
    while spool.stats().pauses_total == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the writer never paused"
        );
        thread::sleep(Duration::from_millis(1));
    }
    let mut next = 0;
    while let Some(batch) = r
        .read_batch(9, 1 << 20, Duration::from_secs(30))
        .expect("read")
    {
        for e in &batch {
            check_entry(e, next);
            next += 1;
        }
        if let Some(last) = batch.last() {
            r.commit(last.end).expect("commit");
        }
    }
    assert_eq!(writer.join().expect("writer").seq, 400);
    assert_eq!(next, 400);
    assert!(spool.stats().pauses_total >= 1);
}
