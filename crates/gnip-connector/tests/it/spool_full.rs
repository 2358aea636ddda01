//! A sink so far behind that the spool reaches its size limit: under
//! `pause` the stream waits and nothing is lost; under `drop-oldest` the
//! lagging sink loses the oldest records, and the gap journal says so.

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::{
    Sim, Workdir, file_ids, run_with_deadline, sqlite_ids, sqlite_rows, wait_until,
    wait_with_deadline,
};

const TOTAL: u64 = 4_000;

/// Starts the connector with a 3 MiB spool of 1 MiB segments and a SQLite
/// sink whose writes fail fast, and holds SQLite's write lock once the
/// database exists. Returns the child, the held lock and the log path.
fn start_with_locked_sqlite(
    sim: &Sim,
    work: &Workdir,
    policy: &str,
) -> (Child, rusqlite::Connection, std::path::PathBuf) {
    work.write_fast_config(
        &format!(
            "sinks = [{{ type = \"sqlite\", path = \"{}\", busy_timeout = \"20ms\" }}, \"files:{}\"]",
            work.db().display(),
            work.files().display()
        ),
        &format!("segment_bytes = 1048576\nmax_bytes = 3145728\nfull_policy = \"{policy}\""),
        "retry_max = \"200ms\"",
    );
    let log = work.dir.path().join("run.log");
    let mut cmd = work.command_without_sinks(sim);
    cmd.arg("--max-records").arg(TOTAL.to_string());
    let child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start");
    wait_until(Duration::from_secs(30), "first rows in SQLite", || {
        sqlite_rows(&work.db()) > 0
    });
    let lock = rusqlite::Connection::open(work.db()).expect("open");
    lock.execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");
    (child, lock, log)
}

fn log_contains(log: &std::path::Path, text: &str) -> bool {
    std::fs::read_to_string(log).is_ok_and(|t| t.contains(text))
}

#[test]
fn a_full_spool_pauses_the_stream_and_loses_nothing() {
    let sim = Sim::start("", TOTAL, Some(4_000.0));
    let work = Workdir::new();
    let (child, lock, log) = start_with_locked_sqlite(&sim, &work, "pause");
    wait_until(Duration::from_secs(30), "the spool to fill", || {
        log_contains(&log, "Spool full")
    });
    lock.execute_batch("COMMIT").expect("release the lock");
    drop(lock);

    let out = wait_with_deadline(child, Duration::from_secs(90));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(out.status.success(), "{text}");
    let sent: BTreeSet<u64> = sim.accounting().sent_post_ids.into_iter().collect();
    let stored: BTreeSet<u64> = sqlite_ids(&work.db()).into_keys().collect();
    assert_eq!(stored, sent, "the paused stream lost nothing");
    assert!(file_ids(&work.files()).is_superset(&sent));
}

#[test]
fn drop_oldest_loses_only_the_lagging_sinks_records_and_journals_the_gap() {
    let sim = Sim::start("", TOTAL, Some(4_000.0));
    let work = Workdir::new();
    let (child, lock, log) = start_with_locked_sqlite(&sim, &work, "drop-oldest");
    wait_until(Duration::from_secs(30), "a segment to be dropped", || {
        log_contains(&log, "dropped the oldest records")
    });
    lock.execute_batch("COMMIT").expect("release the lock");
    drop(lock);

    let out = wait_with_deadline(child, Duration::from_secs(90));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(out.status.success(), "{text}");
    let sent: BTreeSet<u64> = sim.accounting().sent_post_ids.into_iter().collect();
    let stored: BTreeSet<u64> = sqlite_ids(&work.db()).into_keys().collect();
    assert!(
        stored.len() < sent.len(),
        "SQLite missed the dropped records"
    );
    assert!(stored.is_subset(&sent));
    assert!(
        file_ids(&work.files()).is_superset(&sent),
        "the sink that kept up lost nothing"
    );

    // The drop is an uncovered gap naming the sink that missed it.
    let mut gaps = std::process::Command::new(env!("CARGO_BIN_EXE_gnip-connector"));
    gaps.arg("gaps")
        .arg("--data-dir")
        .arg(work.state())
        .arg("--json");
    let out = run_with_deadline(gaps, Duration::from_secs(30));
    let listed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("gaps --json is JSON");
    let drops: Vec<&serde_json::Value> = listed
        .as_array()
        .expect("an array")
        .iter()
        .filter(|g| g["source"] == "spool_drop")
        .collect();
    assert!(!drops.is_empty(), "{listed}");
    assert!(
        drops.iter().all(|g| g["readers"][0] == "sqlite"),
        "{listed}"
    );
    // Each drop counts what the sink furthest behind had not committed. A
    // batch the sink was already retrying when its segment went is still
    // written, so the journal may overstate the loss, never understate it.
    let lost: u64 = drops.iter().filter_map(|g| g["records"].as_u64()).sum();
    assert!(lost as usize + stored.len() >= sent.len(), "{listed}");
}
