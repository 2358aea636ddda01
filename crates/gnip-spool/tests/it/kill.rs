//! Kills a real writer process with SIGKILL at several points and checks
//! that every entry it reported durable survives, intact and in order.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use gnip_spool::{Spool, SpoolConfig};

/// The payload of entry `seq`; the same function as in
/// `examples/spool_writer.rs`, which writes what this test checks.
fn payload(seq: u64) -> Vec<u8> {
    let len = 200 + (seq.wrapping_mul(2_654_435_761) % 3_800) as usize;
    let mut p = format!("{{\"seq\":{seq},\"fill\":\"").into_bytes();
    p.extend((0..len).map(|i| b'A' + ((seq as usize * 31 + i) % 26) as u8));
    p.extend_from_slice(b"\"}");
    p
}

/// The example binary, built by `cargo test` next to the test binaries;
/// built on demand when a runner did not build examples.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = profile_dir.join("examples").join("spool_writer");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "gnip-spool", "--example", "spool_writer"])
            .status()
            .expect("run cargo build for the example");
        assert!(status.success(), "building the spool_writer example failed");
    }
    assert!(bin.exists(), "{} not found", bin.display());
    bin
}

fn config(dir: &Path) -> SpoolConfig {
    let mut c = SpoolConfig::new(dir);
    c.segment_bytes = 256 * 1024;
    c
}

/// Runs the writer until it has reported `reports` durable positions, kills
/// it, and returns the last durable sequence number it reported.
fn run_and_kill(bin: &Path, dir: &Path, reports: usize) -> u64 {
    let mut child = Command::new(bin)
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut last = 0;
    let mut seen = 0;
    while seen < reports {
        let line = lines
            .next()
            .expect("the writer stopped early")
            .expect("read line");
        let mut parts = line.split(' ');
        let word = parts.next();
        let seq: u64 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .expect("a sequence number");
        match word {
            Some("start") => last = seq,
            Some("durable") => {
                assert!(seq > last, "durable positions only grow");
                last = seq;
                seen += 1;
            }
            other => panic!("unexpected line {other:?}"),
        }
    }
    // Child::kill sends SIGKILL on Unix: no destructor, no final sync.
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap the writer");
    last
}

#[test]
fn every_entry_reported_durable_survives_sigkill() {
    let bin = example_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut truncations = 0;
    let mut durable_before = 0;
    for (round, reports) in [1usize, 2, 7, 25, 60, 3, 120].into_iter().enumerate() {
        let reported = run_and_kill(&bin, dir.path(), reports);
        assert!(
            reported >= durable_before,
            "round {round}: the log never shrinks below what was durable"
        );

        let (spool, report) = Spool::open(config(dir.path())).expect("reopen after SIGKILL");
        if report.truncated_bytes > 0 {
            truncations += 1;
        }
        let mut r = spool.reader(&format!("check{round}")).expect("reader");
        let mut next = 0u64;
        while let Some(batch) = r
            .read_batch(4096, 8 << 20, Duration::ZERO)
            .expect("read back")
        {
            if batch.is_empty() {
                break;
            }
            for e in &batch {
                assert_eq!(e.end.seq, next + 1);
                assert_eq!(
                    e.payload.as_ref(),
                    payload(next).as_slice(),
                    "round {round}: entry {next} damaged"
                );
                next += 1;
            }
        }
        assert!(
            next >= reported,
            "round {round}: {reported} entries were reported durable, only {next} read back"
        );
        assert_eq!(spool.stats().durable.seq, next);
        durable_before = next;
        drop(r);
        spool
            .remove_reader(&format!("check{round}"))
            .expect("remove reader");
    }
    // Informational: how often the kill landed between a write and its
    // fsync (the cut is then reported on open).
    eprintln!("{truncations} of 7 reopenings cut a torn tail");
}

#[test]
fn failed_writes_are_undone_and_retried_without_damage() {
    let bin = example_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    // 3,000 entries of ~2.3 KB (7 MB) against a 1 MB file size limit.
    let out = Command::new(&bin)
        .arg(dir.path())
        .arg("3000")
        .arg("1000000")
        .stderr(Stdio::inherit())
        .output()
        .expect("run the writer");
    assert!(out.status.success(), "writer failed: {out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let failed: u32 = text
        .lines()
        .find_map(|l| l.strip_prefix("failed "))
        .and_then(|n| n.parse().ok())
        .expect("a failed line");
    assert_eq!(failed, 3, "appends failed at the limit until it was lifted");
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with("closed 3000 ")),
        "{text}"
    );

    let mut c = config(dir.path());
    c.segment_bytes = 64 * 1024 * 1024;
    let (spool, report) = Spool::open(c).expect("reopen");
    assert_eq!(
        report.truncated_bytes, 0,
        "the failed writes left nothing behind"
    );
    let mut r = spool.reader("check").expect("reader");
    let mut next = 0u64;
    while let Some(batch) = r
        .read_batch(4096, 8 << 20, Duration::ZERO)
        .expect("read back")
    {
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            assert_eq!(e.payload.as_ref(), payload(next).as_slice(), "entry {next}");
            next += 1;
        }
    }
    assert_eq!(next, 3000);
}
