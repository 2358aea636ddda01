//! Crash safety with the real process: SIGKILL at several points under load
//! and restarts, and a sink whose database is locked for a while. Checked
//! against the simulator's accounting and the spool's own contents.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use gnip_client::message::{Message, classify};

use crate::support::{
    Sim, Workdir, count, file_ids, run_with_deadline, sqlite_ids, sqlite_rows, summary, wait_until,
    wait_with_deadline,
};

/// Post ids of the activities the spool holds, read straight from disk.
fn spooled_ids(work: &Workdir) -> BTreeSet<u64> {
    let config = gnip_spool::SpoolConfig::new(work.state().join("spool"));
    let (spool, _report) = gnip_spool::Spool::open(config).expect("spool opens after a kill");
    let mut ids = BTreeSet::new();
    spool
        .scan_since(0, |entry| {
            if let Ok(Message::Activity(a)) = classify(&entry.payload) {
                ids.insert(a.post_id);
            }
        })
        .expect("spool scans");
    ids
}

#[test]
fn sigkill_at_several_points_then_restart_loses_nothing() {
    const TOTAL: u64 = 12_000;
    let sim = Sim::start("", TOTAL, Some(4_000.0));
    let work = Workdir::new();
    // Small segments and batches so kills land mid-segment, mid-batch and
    // around fsyncs rather than only between them.
    work.write_fast_config("", "segment_bytes = 1048576", "batch_records = 300");
    let mut taken = BTreeSet::new();
    for (run, kill_at) in [1_500u64, 4_000, 7_000, 9_500].into_iter().enumerate() {
        let log = work.dir.path().join(format!("run-{run}.log"));
        let child = work
            .command(&sim)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start");
        let start = std::time::Instant::now();
        while sim.accounting().records_sent < kill_at {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "run {run} did not move the stream on:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill(2) with our own child's pid and a valid signal.
        assert_eq!(
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) },
            0
        );
        let out = wait_with_deadline(child, Duration::from_secs(10));
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(libc::SIGKILL)
        );
        taken.extend(spooled_ids(&work));
    }
    assert!(!taken.is_empty(), "the spool held records at the kills");

    // A last run that is allowed to finish: it must end with everything.
    let log = work.dir.path().join("final.log");
    let mut cmd = work.command(&sim);
    cmd.arg("--duration").arg("120s");
    let child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start");
    let start = std::time::Instant::now();
    while sqlite_rows(&work.db()) < TOTAL {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "not every record reached SQLite ({} of {TOTAL}):\n{}",
            sqlite_rows(&work.db()),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above, SIGTERM for a clean stop.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let out = wait_with_deadline(child, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let sent: BTreeSet<u64> = sim.accounting().sent_post_ids.into_iter().collect();
    assert_eq!(sent.len() as u64, TOTAL);
    let stored = sqlite_ids(&work.db());
    assert!(stored.values().all(|&n| n == 1), "stored exactly once");
    let stored: BTreeSet<u64> = stored.into_keys().collect();
    assert!(
        taken.is_subset(&stored),
        "every id taken into the spool reached SQLite"
    );
    assert_eq!(stored, sent, "every id the simulator sent is in SQLite");
    let in_files = file_ids(&work.files());
    assert!(
        in_files.is_superset(&sent),
        "every id is in the files at least once"
    );
}

#[test]
fn a_locked_database_falls_behind_and_catches_up_while_files_go_on() {
    const TOTAL: u64 = 6_000;
    let sim = Sim::start("", TOTAL, Some(3_000.0));
    let work = Workdir::new();
    // A short busy timeout, so the held lock fails writes instead of only
    // slowing them.
    work.write_fast_config(
        &format!(
            "sinks = [{{ type = \"sqlite\", path = \"{}\", busy_timeout = \"50ms\" }}, \"files:{}\"]",
            work.db().display(),
            work.files().display()
        ),
        "",
        "",
    );
    let mut cmd = work.command_without_sinks(&sim);
    cmd.arg("--max-records").arg(TOTAL.to_string());
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");

    // Once SQLite has rows, hold its write lock while the stream goes on.
    wait_until(Duration::from_secs(30), "first rows in SQLite", || {
        sqlite_rows(&work.db()) > 0
    });
    let lock = rusqlite::Connection::open(work.db()).expect("open");
    lock.execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");
    let before = sim.accounting().records_sent;
    wait_until(
        Duration::from_secs(30),
        "the stream to go on while locked",
        || sim.accounting().records_sent >= before + 2_000,
    );
    // The files sink never stopped: its files hold records sent after the lock.
    lock.execute_batch("COMMIT").expect("release the lock");
    drop(lock);

    let out = wait_with_deadline(child, Duration::from_secs(90));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Sink write failed"),
        "the lock was felt: {stderr}"
    );
    let s = summary(&out.stderr);
    assert_eq!(count(&s, "activities"), TOTAL);
    let sent: BTreeSet<u64> = sim.accounting().sent_post_ids.into_iter().collect();
    let stored: BTreeSet<u64> = sqlite_ids(&work.db()).into_keys().collect();
    assert_eq!(stored, sent, "SQLite caught up with nothing lost");
    assert!(file_ids(&work.files()).is_superset(&sent));
}

#[test]
fn gaps_command_lists_an_outage_longer_than_backfill() {
    // A run that stops, then a journal entry for the stop; `gaps` shows the
    // open outage as uncovered until a restart covers it.
    let sim = Sim::start("", 200, Some(2_000.0));
    let work = Workdir::new();
    work.write_fast_config("", "", "");
    let mut cmd = work.command(&sim);
    cmd.arg("--max-records").arg("200");
    let out = run_with_deadline(cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut gaps = std::process::Command::new(env!("CARGO_BIN_EXE_gnip-connector"));
    gaps.arg("gaps")
        .arg("--data-dir")
        .arg(work.state())
        .arg("--json");
    let out = run_with_deadline(gaps, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let listed: serde_json::Value = serde_json::from_str(&text).expect("gaps --json is JSON");
    let gaps = listed.as_array().expect("a JSON array of gaps");
    assert_eq!(gaps.len(), 1, "the shutdown left one open outage: {text}");
}

#[test]
fn a_database_locked_at_startup_is_opened_later_and_catches_up() {
    const TOTAL: u64 = 3_000;
    let sim = Sim::start("", TOTAL, Some(3_000.0));
    let work = Workdir::new();
    work.write_fast_config(
        &format!(
            "sinks = [{{ type = \"sqlite\", path = \"{}\", busy_timeout = \"50ms\" }}, \"files:{}\"]",
            work.db().display(),
            work.files().display()
        ),
        "",
        "",
    );
    // Another program holds the database's write lock before we start.
    let lock = rusqlite::Connection::open(work.db()).expect("open");
    lock.execute_batch("BEGIN EXCLUSIVE; CREATE TABLE held (x);")
        .expect("take the write lock");

    let mut cmd = work.command_without_sinks(&sim);
    cmd.arg("--max-records").arg(TOTAL.to_string());
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    wait_until(
        Duration::from_secs(30),
        "the stream to flow while locked",
        || sim.accounting().records_sent >= 1_500,
    );
    lock.execute_batch("ROLLBACK").expect("release the lock");
    drop(lock);

    let out = wait_with_deadline(child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("cannot be opened yet"), "{stderr}");
    let sent: BTreeSet<u64> = sim.accounting().sent_post_ids.into_iter().collect();
    let stored: BTreeSet<u64> = sqlite_ids(&work.db()).into_keys().collect();
    assert_eq!(stored, sent, "SQLite caught up once it could open");
    assert!(file_ids(&work.files()).is_superset(&sent));
}
