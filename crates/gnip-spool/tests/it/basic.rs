//! Append, read, commit, resume: the everyday path.

use std::thread;
use std::time::Duration;

use gnip_spool::{EntryRef, Position, Spool, SpoolConfig, SpoolError};

use crate::util::{append_range, check_entry, drain, open, payload, small_config};

fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .expect("list")
        .filter(|e| {
            e.as_ref()
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .ends_with(".seg")
        })
        .count()
}

#[test]
fn appended_entries_read_back_in_order_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = open(small_config(dir.path()));
    let mut r = spool.reader("sqlite").expect("reader");
    let mut w = spool.writer().expect("writer");
    append_range(&mut w, 0, 500);
    let durable = w.sync().expect("sync");
    assert_eq!(durable.seq, 500);
    assert!(segment_files(dir.path()) > 10, "4 KiB segments roll");

    let all = drain(&mut r);
    assert_eq!(all.len(), 500);
    for (i, e) in all.iter().enumerate() {
        check_entry(e, i as u64);
    }
    assert_eq!(all.last().expect("entries").end, durable);
}

#[test]
fn readers_see_only_durable_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = small_config(dir.path());
    c.segment_bytes = 1 << 20;
    c.max_bytes = 1 << 24;
    c.fsync_interval = Duration::from_secs(3600);
    c.fsync_bytes = 1 << 30;
    let spool = open(c);
    let mut r = spool.reader("files").expect("reader");
    let mut w = spool.writer().expect("writer");
    append_range(&mut w, 0, 50);
    let batch = r
        .read_batch(100, 1 << 20, Duration::ZERO)
        .expect("read")
        .expect("not closed");
    assert!(batch.is_empty(), "nothing is durable before the sync");
    assert_eq!(spool.stats().durable, Position::default());

    w.sync().expect("sync");
    let batch = r
        .read_batch(100, 1 << 20, Duration::ZERO)
        .expect("read")
        .expect("not closed");
    assert_eq!(batch.len(), 50);
    assert_eq!(spool.last_received_at_ms(), Some(crate::util::received(49)));
}

#[test]
fn group_fsync_by_bytes_makes_entries_visible_without_an_explicit_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = small_config(dir.path());
    c.segment_bytes = 1 << 20;
    c.max_bytes = 1 << 24;
    c.fsync_interval = Duration::from_secs(3600);
    c.fsync_bytes = 1000;
    let spool = open(c);
    let mut w = spool.writer().expect("writer");
    append_range(&mut w, 0, 20);
    let durable = spool.stats().durable;
    assert!(durable.seq > 0, "the byte threshold triggered a sync");
    assert!(
        w.head().offset - durable.offset < 1000,
        "at most fsync_bytes wait: {durable:?} of {:?}",
        w.head()
    );
    assert_eq!(w.durable(), durable);
}

#[test]
fn reader_resumes_from_its_committed_cursor_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let spool = open(small_config(dir.path()));
        let mut r = spool.reader("sqlite").expect("reader");
        let mut w = spool.writer().expect("writer");
        append_range(&mut w, 0, 200);
        w.close().expect("close");
        let all = drain(&mut r);
        r.commit(all[119].end).expect("commit");
        assert_eq!(r.cursor(), all[119].end);
    }
    let spool = open(small_config(dir.path()));
    let mut r = spool.reader("sqlite").expect("reader");
    let rest = drain(&mut r);
    assert_eq!(rest.len(), 80);
    for (i, e) in rest.iter().enumerate() {
        check_entry(e, 120 + i as u64);
    }
}

#[test]
fn rewind_reads_again_from_the_committed_cursor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = open(small_config(dir.path()));
    let mut r = spool.reader("pg").expect("reader");
    let mut w = spool.writer().expect("writer");
    append_range(&mut w, 0, 30);
    w.sync().expect("sync");
    let first = r
        .read_batch(10, 1 << 20, Duration::ZERO)
        .expect("read")
        .expect("open");
    r.commit(first[9].end).expect("commit");
    let second = r
        .read_batch(10, 1 << 20, Duration::ZERO)
        .expect("read")
        .expect("open");
    check_entry(&second[0], 10);
    r.rewind();
    let again = r
        .read_batch(10, 1 << 20, Duration::ZERO)
        .expect("read")
        .expect("open");
    assert_eq!(again, second);
    assert_eq!(r.read_position(), again[9].end);
}

#[test]
fn segments_every_reader_passed_are_deleted_and_new_readers_start_at_the_oldest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = open(small_config(dir.path()));
    let mut a = spool.reader("a").expect("reader");
    let mut b = spool.reader("b").expect("reader");
    let mut w = spool.writer().expect("writer");
    append_range(&mut w, 0, 400);
    w.sync().expect("sync");
    let before = segment_files(dir.path());

    let all = drain(&mut a);
    a.commit(all[399].end).expect("commit");
    assert_eq!(
        segment_files(dir.path()),
        before,
        "b still holds every segment"
    );

    let bs = drain(&mut b);
    b.commit(bs[299].end).expect("commit");
    let after = segment_files(dir.path());
    assert!(after < before / 2, "{after} of {before} segments left");
    let stats = spool.stats();
    assert_eq!(stats.segments, after);
    assert_eq!(stats.segments_deleted_total as usize, before - after);
    assert!(
        stats.oldest.seq <= 300 && stats.oldest.seq > 200,
        "{:?}",
        stats.oldest
    );

    // A new reader starts at the oldest retained entry.
    let mut c = spool.reader("c").expect("reader");
    let cs = drain(&mut c);
    assert_eq!(cs.first().expect("entries").end.seq, stats.oldest.seq + 1);
    assert_eq!(cs.len() as u64, 400 - stats.oldest.seq);
    let lag: Vec<(String, u64)> = spool
        .stats()
        .readers
        .iter()
        .map(|r| (r.name.clone(), r.lag_records))
        .collect();
    assert_eq!(
        lag,
        vec![
            ("a".into(), 0),
            ("b".into(), 100),
            ("c".into(), 400 - stats.oldest.seq)
        ]
    );
}

#[test]
fn no_segment_is_deleted_while_no_reader_is_registered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = open(small_config(dir.path()));
    let mut w = spool.writer().expect("writer");
    append_range(&mut w, 0, 300);
    w.sync().expect("sync");
    let mut late = spool.reader("late").expect("reader");
    assert_eq!(drain(&mut late).len(), 300);
}

#[test]
fn waiting_reader_wakes_when_the_writer_syncs_and_ends_after_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = open(small_config(dir.path()));
    let mut r = spool.reader("nats").expect("reader");
    let reader = thread::spawn(move || {
        let mut seen = 0u64;
        // Long waits: the test ends by close, not by timeouts.
        while let Some(batch) = r
            .read_batch(64, 1 << 20, Duration::from_secs(30))
            .expect("read")
        {
            for e in &batch {
                check_entry(e, seen);
                seen += 1;
            }
            if let Some(last) = batch.last() {
                r.commit(last.end).expect("commit");
            }
        }
        seen
    });
    let mut w = spool.writer().expect("writer");
    for chunk in 0..10 {
        append_range(&mut w, chunk * 30, chunk * 30 + 30);
        w.sync().expect("sync");
    }
    let end = w.close().expect("close");
    assert_eq!(end.seq, 300);
    assert_eq!(reader.join().expect("reader thread"), 300);
}

#[test]
fn an_entry_larger_than_max_bytes_is_returned_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = open(small_config(dir.path()));
    let mut r = spool.reader("r").expect("reader");
    let mut w = spool.writer().expect("writer");
    let big = vec![b'x'; 3000];
    w.append(EntryRef {
        kind: 1,
        partition: 0,
        received_at_ms: 1,
        payload: &big,
    })
    .expect("append");
    w.append(EntryRef {
        kind: 1,
        partition: 0,
        received_at_ms: 2,
        payload: b"small",
    })
    .expect("append");
    w.sync().expect("sync");
    let batch = r
        .read_batch(10, 100, Duration::ZERO)
        .expect("read")
        .expect("open");
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].payload.len(), 3000);
    let batch = r
        .read_batch(10, 100, Duration::ZERO)
        .expect("read")
        .expect("open");
    assert_eq!(batch[0].payload.as_ref(), b"small");
}

#[test]
fn misuse_gets_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = open(small_config(dir.path()));
    let _w = spool.writer().expect("writer");
    assert!(matches!(spool.writer(), Err(SpoolError::WriterBusy)));
    let mut r = spool.reader("one").expect("reader");
    assert!(matches!(
        spool.reader("one"),
        Err(SpoolError::ReaderBusy(_))
    ));
    assert!(matches!(
        spool.reader("../etc"),
        Err(SpoolError::InvalidReaderName(_))
    ));
    let far = Position {
        offset: 1000,
        seq: 10,
    };
    assert!(matches!(
        r.commit(far),
        Err(SpoolError::InvalidCommit { .. })
    ));
    assert!(matches!(
        spool.remove_reader("one"),
        Err(SpoolError::ReaderBusy(_))
    ));

    let mut c = SpoolConfig::new(dir.path());
    c.segment_bytes = 4096;
    assert!(
        matches!(Spool::open(c), Err(SpoolError::Locked(_))),
        "a second open of the same directory"
    );

    let mut w2 = {
        drop(_w);
        spool.writer().expect("writer after the first was dropped")
    };
    let huge = vec![0u8; 5000];
    let err = w2
        .append(EntryRef {
            kind: 0,
            partition: 0,
            received_at_ms: 0,
            payload: &huge,
        })
        .expect_err("too large");
    assert!(
        matches!(err, SpoolError::EntryTooLarge { len: 5000, .. }),
        "{err}"
    );
    let _ = payload(0);
}

#[test]
fn removed_reader_no_longer_holds_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = open(small_config(dir.path()));
    let mut keep = spool.reader("keep").expect("reader");
    drop(spool.reader("gone").expect("reader"));
    let mut w = spool.writer().expect("writer");
    append_range(&mut w, 0, 300);
    w.sync().expect("sync");
    let all = drain(&mut keep);
    keep.commit(all[299].end).expect("commit");
    let held = spool.stats().segments;
    spool.remove_reader("gone").expect("remove");
    assert!(spool.stats().segments < held);
    assert_eq!(spool.stats().readers.len(), 1);
}

#[test]
fn a_dropped_writer_syncs_and_the_next_writer_continues_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = small_config(dir.path());
    c.fsync_interval = Duration::from_secs(3600);
    c.fsync_bytes = 1 << 30;
    let spool = open(c);
    {
        let mut w = spool.writer().expect("writer");
        append_range(&mut w, 0, 10);
        assert_eq!(spool.stats().durable.seq, 0);
    }
    assert_eq!(
        spool.stats().durable.seq,
        10,
        "drop made the buffered entries durable"
    );
    let mut w = spool.writer().expect("a second writer");
    append_range(&mut w, 10, 25);
    w.close().expect("close");
    let mut r = spool.reader("r").expect("reader");
    let all = drain(&mut r);
    assert_eq!(all.len(), 25);
    for (i, e) in all.iter().enumerate() {
        check_entry(e, i as u64);
    }
}
