//! Recovery on open: torn and corrupt tails, bad headers, damaged data.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gnip_spool::{Spool, SpoolError};

use crate::util::{append_range, check_entry, drain, open, received, small_config};

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

/// Writes `n` entries with 64 KiB segments (one segment for small n), closes.
fn write_closed(dir: &Path, n: u64) {
    let mut c = small_config(dir);
    c.segment_bytes = 64 * 1024;
    let spool = open(c);
    let mut w = spool.writer().expect("writer");
    append_range(&mut w, 0, n);
    w.close().expect("close");
}

fn reopen_and_read(dir: &Path) -> (gnip_spool::RecoveryReport, Vec<gnip_spool::Entry>) {
    let mut c = small_config(dir);
    c.segment_bytes = 64 * 1024;
    let (spool, report) = Spool::open(c).expect("reopen");
    let mut r = spool.reader("check").expect("reader");
    (report, drain(&mut r))
}

#[test]
fn a_cut_tail_is_truncated_and_everything_before_it_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_closed(dir.path(), 40);
    let seg = segments(dir.path()).pop().expect("a segment");
    let len = fs::metadata(&seg).expect("stat").len();
    // Cut 10 bytes into the last record: it is torn.
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open")
        .set_len(len - 10)
        .expect("cut");

    let (report, entries) = reopen_and_read(dir.path());
    assert_eq!(entries.len(), 39);
    for (i, e) in entries.iter().enumerate() {
        check_entry(e, i as u64);
    }
    let last_len = 19 + crate::util::payload(39).len() as u64;
    assert_eq!(report.truncated_bytes, last_len - 10);
    assert_eq!(
        report.truncated_at.as_ref().map(|(p, at)| (p.clone(), *at)),
        Some((seg.clone(), len - last_len))
    );
    assert_eq!(fs::metadata(&seg).expect("stat").len(), len - last_len);
}

#[test]
fn flipped_bytes_at_the_end_cut_from_the_damaged_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_closed(dir.path(), 40);
    let seg = segments(dir.path()).pop().expect("a segment");
    let mut bytes = fs::read(&seg).expect("read");
    let n = bytes.len();
    // Damage the payload of the second-to-last record and add junk after.
    let last_two = (19 + crate::util::payload(39).len()) + (19 + crate::util::payload(38).len());
    bytes[n - last_two + 25] ^= 0x40;
    bytes.extend_from_slice(&[0xAB; 7]);
    fs::write(&seg, &bytes).expect("write");

    let (report, entries) = reopen_and_read(dir.path());
    assert_eq!(entries.len(), 38);
    check_entry(&entries[37], 37);
    assert_eq!(report.truncated_bytes, last_two as u64 + 7);
    assert!(
        report
            .truncation_reason
            .as_deref()
            .is_some_and(|r| r.contains("checksum")),
        "{report:?}"
    );
}

#[test]
fn zeroed_preallocated_tail_is_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_closed(dir.path(), 5);
    let seg = segments(dir.path()).pop().expect("a segment");
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .expect("open")
        .write_all(&[0u8; 4096])
        .expect("write");
    let (report, entries) = reopen_and_read(dir.path());
    assert_eq!(entries.len(), 5);
    assert_eq!(report.truncated_bytes, 4096);
}

#[test]
fn appending_after_recovery_continues_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_closed(dir.path(), 20);
    let seg = segments(dir.path()).pop().expect("a segment");
    let len = fs::metadata(&seg).expect("stat").len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open")
        .set_len(len - 1)
        .expect("cut");
    let mut c = small_config(dir.path());
    c.segment_bytes = 64 * 1024;
    let (spool, report) = Spool::open(c).expect("reopen");
    assert_eq!(report.head.seq, 19);
    assert_eq!(spool.last_received_at_ms(), Some(received(18)));
    let mut w = spool.writer().expect("writer");
    append_range(&mut w, 19, 30);
    w.close().expect("close");
    let mut r = spool.reader("all").expect("reader");
    let entries = drain(&mut r);
    assert_eq!(entries.len(), 30);
    for (i, e) in entries.iter().enumerate() {
        check_entry(e, i as u64);
    }
}

#[test]
fn a_bad_header_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_closed(dir.path(), 5);
    let seg = segments(dir.path()).pop().expect("a segment");
    let mut bytes = fs::read(&seg).expect("read");
    bytes[0..8].copy_from_slice(b"NOTASPOL");
    fs::write(&seg, &bytes).expect("write");
    let err = Spool::open(small_config(dir.path())).expect_err("must refuse");
    assert!(
        matches!(&err, SpoolError::BadHeader { path, .. } if path == &seg),
        "{err}"
    );
    assert!(
        err.to_string().contains(&seg.display().to_string()),
        "{err}"
    );

    bytes[0..8].copy_from_slice(b"GNIPSPOL");
    bytes[8] = 2;
    fs::write(&seg, &bytes).expect("write");
    let err = Spool::open(small_config(dir.path())).expect_err("must refuse");
    assert!(err.to_string().contains("version 2"), "{err}");
}

#[test]
fn damage_inside_durable_data_is_reported_not_passed_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let spool = open(small_config(dir.path()));
        let mut w = spool.writer().expect("writer");
        append_range(&mut w, 0, 200);
        w.close().expect("close");
    }
    // The first segment is not the last: recovery does not scan it.
    let first = segments(dir.path()).remove(0);
    let mut bytes = fs::read(&first).expect("read");
    bytes[100] ^= 1;
    fs::write(&first, &bytes).expect("write");
    let spool = open(small_config(dir.path()));
    let mut r = spool.reader("r").expect("reader");
    let err = r
        .read_batch(1000, 1 << 20, Duration::ZERO)
        .expect_err("corrupt");
    assert!(
        matches!(&err, SpoolError::Corrupt { path, .. } if path == &first),
        "{err}"
    );
}

#[test]
fn last_received_time_survives_a_roll_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let spool = open(small_config(dir.path()));
        let mut w = spool.writer().expect("writer");
        append_range(&mut w, 0, 100);
        w.close().expect("close");
        assert_eq!(spool.last_received_at_ms(), Some(received(99)));
    }
    let spool = open(small_config(dir.path()));
    assert_eq!(spool.last_received_at_ms(), Some(received(99)));
    assert_eq!(spool.stats().durable.seq, 100);

    let empty = tempfile::tempdir().expect("tempdir");
    assert_eq!(open(small_config(empty.path())).last_received_at_ms(), None);
}
