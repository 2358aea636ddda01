//! SIGTERM mid-stream: the connector stops reading, drains, and exits 0
//! with every record it received written and every gzip file complete.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{
    Sim, Workdir, count, file_ids, free_port, http_get, sqlite_ids, summary, wait_until,
    wait_with_deadline,
};

#[test]
fn sigterm_mid_stream_writes_everything_received_and_closes_valid_gzip() {
    let sim = Sim::start("", 1_000_000, Some(3_000.0));
    let work = Workdir::new();
    work.write_fast_config("", "", "");
    let port = free_port();
    let mut cmd = work.command(&sim);
    cmd.arg("--metrics-listen").arg(format!("127.0.0.1:{port}"));
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");

    // Let records flow, then stop it while they still do.
    wait_until(
        Duration::from_secs(30),
        "records to reach the simulator's log",
        || sim.accounting().records_sent >= 2_000,
    );
    // The metrics endpoint shows the run while it happens.
    let (status, body) = http_get(port, "/metrics").expect("metrics served");
    assert_eq!(status, 200);
    let appended: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("gnip_spool_activities_appended_total "))
        .and_then(|v| v.parse().ok())
        .expect("appended counter");
    assert!(appended > 0, "{body}");
    assert!(
        body.contains("gnip_sink_lag_records{sink=\"sqlite\"}"),
        "{body}"
    );
    assert!(body.contains("gnip_sink_up{sink=\"files\"} 1"), "{body}");
    assert_eq!(http_get(port, "/health").map(|r| r.0), Some(200));

    // SAFETY: kill(2) with a valid pid of our own child and a valid signal.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0, "SIGTERM sent");
    let out = wait_with_deadline(child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);

    let s = summary(&out.stderr);
    let received = count(&s, "activities");
    assert!(received >= 1_000, "it was mid-stream: {s:?}");
    let stored = sqlite_ids(&work.db());
    assert_eq!(
        stored.len() as u64,
        received,
        "every received activity is in SQLite"
    );
    let in_files = file_ids(&work.files());
    assert_eq!(
        in_files.len() as u64,
        received,
        "every received activity is in the files"
    );
    let stored: BTreeSet<u64> = stored.keys().copied().collect();
    assert_eq!(stored, in_files);
}
