//! The whole path under faults: every post id the simulator sent lands in
//! SQLite exactly once and in the files at least once, and the summary's
//! counts agree with the simulator's accounting.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::{Sim, Workdir, count, file_ids, run_with_deadline, sqlite_ids, summary};

const TOTAL: u64 = 5_000;

#[test]
fn every_record_lands_once_through_drops_stalls_503s_malformed_lines_and_bad_gzip() {
    // Connection 1 and every later one is cut after each 1,000 records;
    // connection 2 stalls; connects 3-5 are refused with 503; connection 6
    // ends in a truncated gzip member; malformed lines come throughout.
    let sim = Sim::start(
        "drop-every=1000,stall-after=300@2,status=503@3-5,truncate-gzip-after=200@6,malformed-every=700",
        TOTAL,
        Some(4_000.0),
    );
    let work = Workdir::new();
    work.write_fast_config("", "", "");
    let mut cmd = work.command(&sim);
    cmd.arg("--max-records").arg(TOTAL.to_string());
    let out = run_with_deadline(cmd, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);

    let acct = sim.accounting();
    let sent: BTreeSet<u64> = acct.sent_post_ids.iter().copied().collect();
    assert_eq!(
        sent.len() as u64,
        TOTAL,
        "the simulator sent its whole timeline"
    );

    // SQLite: each id exactly once, nothing extra.
    let stored = sqlite_ids(&work.db());
    assert!(stored.values().all(|&n| n == 1), "an id stored twice");
    let stored_ids: BTreeSet<u64> = stored.keys().copied().collect();
    let missing: Vec<_> = sent.difference(&stored_ids).take(5).collect();
    assert!(
        missing.is_empty(),
        "ids sent but not in SQLite, e.g. {missing:?}\n{stderr}"
    );
    assert_eq!(stored_ids, sent);

    // Files: each id at least once, and only ids that were sent.
    let in_files = file_ids(&work.files());
    assert!(in_files.is_superset(&sent), "ids missing from the files");
    assert!(
        in_files.is_subset(&sent),
        "ids in the files the simulator never sent"
    );

    // The summary agrees with the simulator.
    let s = summary(&out.stderr);
    assert_eq!(count(&s, "activities"), TOTAL, "{stderr}");
    let connected = acct.connections.iter().filter(|c| c.status == 200).count() as u64;
    assert_eq!(count(&s, "reconnects"), connected - 1, "{s:?}");

    // Every fault happened, and the connector came back from each.
    let ended = |reason: gnip_sim::EndReason| {
        acct.connections
            .iter()
            .filter(|c| c.ended == Some(reason))
            .count()
    };
    assert!(ended(gnip_sim::EndReason::DroppedFin) >= 1, "{acct:?}");
    assert_eq!(ended(gnip_sim::EndReason::Stalled), 1, "{acct:?}");
    assert_eq!(ended(gnip_sim::EndReason::TruncatedGzip), 1, "{acct:?}");
    let refused = acct.connections.iter().filter(|c| c.status == 503).count();
    assert_eq!(refused, 3, "three connects were refused");
    assert!(
        count(&s, "reconnects") >= 3,
        "a drop, a stall and bad gzip: {s:?}"
    );
    let malformed_sent: u64 = acct.connections.iter().map(|c| c.malformed_sent).sum();
    assert_eq!(
        count(&s, "malformed"),
        malformed_sent,
        "every malformed line was counted"
    );
}

#[test]
fn wrong_password_stops_with_a_clear_message_and_exit_code_3() {
    let sim = Sim::start("", 10, Some(100.0));
    let work = Workdir::new();
    work.write_fast_config("", "", "");
    let mut cmd = work.command(&sim);
    cmd.env("GNIP_PASSWORD", "not-the-password");
    let out = run_with_deadline(cmd, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(
        !stderr.contains("not-the-password"),
        "the password leaked: {stderr}"
    );
}

#[test]
fn missing_url_is_a_configuration_error_with_exit_code_2() {
    let work = Workdir::new();
    let out = run_with_deadline(
        {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gnip-connector"));
            cmd.arg("run")
                .arg("--data-dir")
                .arg(work.state())
                .env_remove("GNIP_URL")
                .env_remove("GNIP_CONFIG");
            cmd
        },
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url"));
}

#[test]
fn two_decahose_partitions_over_redundant_connections_land_each_post_once() {
    // max_records is per stream and partition: two partitions of 1,500.
    let sim = Sim::start("", 1_500, Some(3_000.0));
    let work = Workdir::new();
    work.write_fast_config("", "", "");
    let url = sim.handle().decahose_url(1);
    let base = url.split('?').next().expect("a URL").to_owned();
    let mut cmd = work.command_at(&base);
    cmd.args(["--partition", "1", "--partition", "2", "--connections", "2"])
        .arg("--max-records")
        .arg("3000");
    let out = run_with_deadline(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let acct = sim.accounting();
    let mut per_partition = std::collections::BTreeMap::new();
    for c in acct.connections.iter().filter(|c| c.status == 200) {
        *per_partition.entry(c.partition).or_insert(0) += 1;
    }
    assert_eq!(
        per_partition,
        [(Some(1), 2), (Some(2), 2)].into_iter().collect(),
        "two connections to each partition"
    );
    let sent: BTreeSet<u64> = acct.sent_post_ids.iter().copied().collect();
    assert_eq!(sent.len(), 3_000);
    let stored = sqlite_ids(&work.db());
    assert!(stored.values().all(|&n| n == 1));
    assert_eq!(stored.keys().copied().collect::<BTreeSet<_>>(), sent);
    let s = summary(&out.stderr);
    assert_eq!(count(&s, "activities"), 3_000);
    assert!(
        count(&s, "duplicates") > 0,
        "the redundant copies were dropped: {s:?}"
    );
}

#[test]
fn a_v2_filtered_stream_with_a_bearer_token_lands_in_sqlite() {
    let sim = Sim::start("", 500, Some(2_000.0));
    let work = Workdir::new();
    work.write_fast_config("", "", "");
    let mut cmd = work.command_at(&sim.handle().v2_filtered_url());
    cmd.env(
        "X_BEARER_TOKEN",
        gnip_sim::SimConfig::default().bearer_token,
    )
    .env_remove("GNIP_PASSWORD")
    .arg("--max-records")
    .arg("500");
    let out = run_with_deadline(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains(&gnip_sim::SimConfig::default().bearer_token),
        "token leaked"
    );

    let sent: BTreeSet<u64> = sim.accounting().sent_post_ids.into_iter().collect();
    let stored: BTreeSet<u64> = sqlite_ids(&work.db()).into_keys().collect();
    assert_eq!(stored.len(), 500);
    assert!(stored.is_subset(&sent));
    let conn = rusqlite::Connection::open(work.db()).expect("open");
    let formats: Vec<String> = conn
        .prepare("SELECT DISTINCT format FROM posts")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("query");
    assert_eq!(formats, ["v2"]);
}
