//! The size limit and its two policies, and `scan_since`.

use std::fs;
use std::thread;
use std::time::Duration;

use gnip_spool::{EntryRef, FullPolicy, Position, Spool, SpoolConfig, SpoolError};

use crate::util::{append_range, check_entry, drain, open, payload, received, small_config};

fn limited(dir: &std::path::Path, policy: FullPolicy) -> SpoolConfig {
    let mut c = small_config(dir);
    c.segment_bytes = 4096;
    c.max_bytes = 3 * 4096;
    c.full_policy = policy;
    c
}

fn entry(seq: u64, p: &[u8]) -> EntryRef<'_> {
    EntryRef {
        kind: (seq % 5) as u8,
        partition: (seq % 3) as u16,
        received_at_ms: received(seq),
        payload: p,
    }
}

#[test]
fn pause_blocks_the_writer_until_a_reader_frees_space() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = open(limited(dir.path(), FullPolicy::Pause));
    let mut r = spool.reader("slow").expect("reader");
    let writer_spool = spool.clone();
    let writer = thread::spawn(move || {
        let mut w = writer_spool.writer().expect("writer");
        append_range(&mut w, 0, 600);
        w.close().expect("close")
    });

    let mut next = 0u64;
    while let Some(batch) = r
        .read_batch(7, 1 << 20, Duration::from_secs(30))
        .expect("read")
    {
        let stats = spool.stats();
        assert!(
            stats.disk_bytes <= stats.max_bytes,
            "{} > {}",
            stats.disk_bytes,
            stats.max_bytes
        );
        for e in &batch {
            check_entry(e, next);
            next += 1;
        }
        if let Some(last) = batch.last() {
            r.commit(last.end).expect("commit");
        }
    }
    assert_eq!(writer.join().expect("writer thread").seq, 600);
    assert_eq!(next, 600, "nothing lost under the pause policy");
    let stats = spool.stats();
    assert!(
        stats.pauses_total >= 1,
        "600 entries of ~180 bytes cannot fit in 12 KiB without pausing"
    );
    assert_eq!(stats.paused_since, None);
    assert_eq!(stats.drops_total, 0);
}

#[test]
fn a_paused_writer_reports_since_when_and_times_out_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = open(limited(dir.path(), FullPolicy::Pause));
    let mut r = spool.reader("stuck").expect("reader");
    let mut w = spool.writer().expect("writer");
    let mut seq = 0;
    let err = loop {
        let p = payload(seq);
        match w.append_timeout(entry(seq, &p), Duration::from_millis(30)) {
            Ok(_) => seq += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            err,
            SpoolError::Full {
                max_bytes: 12288,
                ..
            }
        ),
        "{err}"
    );
    let stats = spool.stats();
    assert!(stats.paused_since.is_some());
    assert_eq!(spool.paused_since(), stats.paused_since);
    assert_eq!(stats.pauses_total, 1);
    assert!(stats.disk_bytes <= 12288);
    assert_eq!(
        stats.durable.seq, seq,
        "a paused writer made everything visible"
    );

    // The reader takes everything; the next append goes through.
    let all = drain(&mut r);
    assert_eq!(all.len() as u64, seq);
    r.commit(all[all.len() - 1].end).expect("commit");
    let p = payload(seq);
    w.append_timeout(entry(seq, &p), Duration::from_millis(30))
        .expect("room again");
    assert_eq!(spool.stats().paused_since, None);
}

#[test]
fn drop_oldest_reports_what_each_behind_reader_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = open(limited(dir.path(), FullPolicy::DropOldest));
    let mut slow = spool.reader("slow").expect("reader");
    let mut fast = spool.reader("fast").expect("reader");
    let mut w = spool.writer().expect("writer");

    // `fast` keeps up for the first 30 entries, `slow` reads nothing.
    append_range(&mut w, 0, 30);
    w.sync().expect("sync");
    let got = drain(&mut fast);
    fast.commit(got[29].end).expect("commit");
    append_range(&mut w, 30, 300);
    w.sync().expect("sync");

    let drops = spool.take_drops();
    assert!(drops.len() >= 5, "{} drops", drops.len());
    assert!(spool.take_drops().is_empty(), "taken once");
    assert_eq!(drops[0].from, Position::default());
    let mut dropped = 0;
    for (i, d) in drops.iter().enumerate() {
        if i > 0 {
            assert_eq!(d.from, drops[i - 1].to, "drops are contiguous");
        }
        assert_eq!(d.records, d.to.seq - d.from.seq);
        assert_eq!(d.first_received_at_ms, Some(received(d.from.seq)));
        assert_eq!(d.last_received_at_ms, Some(received(d.to.seq - 1)));
        let expected: Vec<String> = if d.to.seq <= 30 {
            vec!["slow".into()]
        } else {
            vec!["fast".into(), "slow".into()]
        };
        assert_eq!(d.readers, expected, "drop {i}: {d:?}");
        dropped += d.records;
    }
    let stats = spool.stats();
    assert_eq!(stats.drops_total, drops.len() as u64);
    assert_eq!(stats.dropped_records_total, dropped);
    assert!(stats.disk_bytes <= stats.max_bytes);
    assert_eq!(stats.oldest, drops.last().expect("drops").to);

    // Readers behind jump to the oldest retained entry and read on from there.
    let rest = drain(&mut slow);
    assert_eq!(rest[0].end.seq, stats.oldest.seq + 1);
    for (i, e) in rest.iter().enumerate() {
        check_entry(e, stats.oldest.seq + i as u64);
    }
    assert_eq!(rest.last().expect("entries").end.seq, 300);
}

#[test]
fn drops_are_reported_once_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let spool = open(limited(dir.path(), FullPolicy::DropOldest));
        // `away` is registered but closed while the drops happen: its saved
        // cursor moves past them. `open` stays open and never commits.
        drop(spool.reader("away").expect("reader"));
        let _open = spool.reader("open").expect("reader");
        let mut w = spool.writer().expect("writer");
        append_range(&mut w, 0, 200);
        w.close().expect("close");
        assert!(!spool.take_drops().is_empty());
    }
    let spool = open(limited(dir.path(), FullPolicy::DropOldest));
    let oldest = spool.stats().oldest;
    let again = spool.take_drops();
    assert_eq!(
        again.len(),
        1,
        "only the reader whose cursor file stayed behind: {again:?}"
    );
    assert_eq!(again[0].readers, vec!["open".to_string()]);
    assert_eq!((again[0].from, again[0].to), (Position::default(), oldest));
    let mut away = spool.reader("away").expect("reader");
    assert_eq!(away.cursor(), oldest);
    assert_eq!(drain(&mut away).len() as u64, 200 - oldest.seq);
}

#[test]
fn scan_since_visits_exactly_the_recent_entries_and_skips_old_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let spool = open(small_config(dir.path()));
        let mut w = spool.writer().expect("writer");
        append_range(&mut w, 0, 500);
        w.close().expect("close");
    }
    // Damage the first segment: a scan that starts at the right segment
    // never reads it, a scan from the beginning does.
    let mut segs: Vec<_> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    let mut bytes = fs::read(&segs[0]).expect("read");
    bytes[200] ^= 0xff;
    fs::write(&segs[0], &bytes).expect("write");

    let spool = open(small_config(dir.path()));
    let mut seen = Vec::new();
    spool
        .scan_since(received(420), |e| seen.push(e.end.seq - 1))
        .expect("scan");
    assert_eq!(seen, (420..500).collect::<Vec<_>>());
    let err = spool
        .scan_since(0, |_| {})
        .expect_err("the damaged first segment is read");
    assert!(matches!(err, SpoolError::Corrupt { .. }), "{err}");
    let mut none = 0;
    spool
        .scan_since(received(10_000), |_| none += 1)
        .expect("scan");
    assert_eq!(none, 0);
}

#[test]
fn spool_open_refuses_a_limit_below_two_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = small_config(dir.path());
    c.max_bytes = c.segment_bytes;
    assert!(matches!(Spool::open(c), Err(SpoolError::InvalidConfig(_))));
}
