//! Streaming: framing, gzip, flushing, heartbeats, status codes,
//! redundancy, partitions, backfill and the accounting.

use std::collections::HashSet;
use std::io::Read;
use std::time::Duration;

use gnip_sim::{EndReason, Format, SimConfig};

use crate::support::{End, Wire, basic, eventually, post_id, sim};

fn fast(max: u64) -> SimConfig {
    SimConfig {
        rate: None,
        max_records: Some(max),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn powertrack_streams_chunked_gzip_records_delimited_by_crlf() {
    let h = sim(fast(300)).await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    assert_eq!(w.status, 200);
    assert_eq!(w.header("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(w.header("content-encoding").as_deref(), Some("gzip"));
    assert!(w.header("content-length").is_none());
    let records = w.records(300).await;
    assert_eq!(records.len(), 300);
    let mut ids = HashSet::new();
    for r in &records {
        let v: serde_json::Value = serde_json::from_str(r).expect("each record is one JSON object");
        assert!(v["user"]["id_str"].is_string() && v["created_at"].is_string());
        assert!(
            !v["matching_rules"]
                .as_array()
                .expect("matching_rules")
                .is_empty(),
            "PowerTrack records carry their rules"
        );
        assert!(ids.insert(post_id(r)), "ids never repeat");
    }
    assert_eq!(&w.body[..3], &[0x1f, 0x8b, 8], "a gzip member");
    eventually("the accounting to see all records", || {
        h.accounting().records_sent == 300
    })
    .await;
    let acc = h.accounting();
    assert_eq!(
        acc.sent_post_ids.iter().copied().collect::<HashSet<_>>(),
        ids
    );
    assert!(acc.resent_post_ids.is_empty());
    assert_eq!(acc.connections[0].status, 200);
    assert_eq!(acc.connections[0].stream, "powertrack");
}

#[tokio::test]
async fn each_record_decodes_as_soon_as_its_chunk_arrives() {
    let h = sim(SimConfig {
        rate: Some(20.0),
        ..SimConfig::default()
    })
    .await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let mut seen = 0;
    while seen < 3 {
        assert!(w.next_chunk().await.is_some());
        let lines = w.take_lines();
        // Whatever arrived decodes to whole records: nothing waits in the
        // compressor for the next record.
        assert_eq!(
            w.partial_len(),
            0,
            "a record was held back by the compressor"
        );
        seen += lines.iter().filter(|l| !l.is_empty()).count();
    }
    w.close().await;
    h.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_the_body_with_a_valid_gzip_trailer() {
    let h = sim(SimConfig {
        rate: Some(200.0),
        max_records: Some(5),
        ..SimConfig::default()
    })
    .await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    assert_eq!(w.records(5).await.len(), 5);
    eventually("the records accounted", || h.accounting().records_sent == 5).await;
    let acc = h.finish().await.expect("clean shutdown");
    assert_eq!(acc.connections[0].ended, Some(EndReason::Shutdown));
    let _ = w.all_lines().await;
    assert_eq!(
        w.end,
        Some(End::LastChunk),
        "a deliberate close ends the chunked body"
    );
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&w.body[..])
        .read_to_string(&mut plain)
        .expect("complete gzip member");
    assert_eq!(plain.lines().filter(|l| !l.is_empty()).count(), 5);
}

#[tokio::test]
async fn heartbeats_are_sent_when_idle() {
    let h = sim(SimConfig {
        max_records: Some(0),
        heartbeat_interval: Duration::from_millis(30),
        ..fast(0)
    })
    .await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let mut beats = 0;
    while beats < 3 {
        assert!(w.next_chunk().await.is_some());
        let lines = w.take_lines();
        assert!(
            lines.iter().all(String::is_empty),
            "only heartbeats: {lines:?}"
        );
        beats += lines.len();
    }
    eventually("heartbeats counted", || {
        h.accounting().connections[0].heartbeats_sent >= 3
    })
    .await;
}

#[tokio::test]
async fn refusals_carry_the_documented_status_and_explanation() {
    let h = sim(fast(10)).await;
    let target = h
        .powertrack_url()
        .trim_start_matches(&h.base_url())
        .to_string();
    let auth = basic(h.config());

    let mut w = Wire::get(&h, &target, &[("Accept-Encoding", "gzip".into())]).await;
    assert_eq!(w.status, 401);
    assert!(w.fixed_body().await.contains("error"));

    let wrong = format!("Basic {}", base64_of("sim@example.com:nope"));
    let w = Wire::get(
        &h,
        &target,
        &[("Authorization", wrong), ("Accept-Encoding", "gzip".into())],
    )
    .await;
    assert_eq!(w.status, 401);

    let mut w = Wire::get(&h, &target, &[("Authorization", auth.clone())]).await;
    assert_eq!(w.status, 406);
    assert!(w.fixed_body().await.contains("Accept-Encoding: gzip"));

    let unknown = target.replace("powertrack", "nothing");
    let w = Wire::get(
        &h,
        &unknown,
        &[
            ("Authorization", auth.clone()),
            ("Accept-Encoding", "gzip".into()),
        ],
    )
    .await;
    assert_eq!(w.status, 404);

    let decahose = h.decahose_url(1).replace("?partition=1", "");
    let mut w = Wire::enterprise(&h, &decahose).await;
    assert_eq!(w.status, 400);
    assert!(w.fixed_body().await.contains("partition"));

    let acc = h.accounting();
    let statuses: Vec<u16> = acc.connections.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [401, 401, 406, 400],
        "404 is not a stream connection"
    );
    assert!(
        acc.connections
            .iter()
            .all(|c| c.ended == Some(EndReason::Refused))
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn redundant_connections_receive_the_same_records() {
    let h = sim(SimConfig {
        rate: Some(400.0),
        ..SimConfig::default()
    })
    .await;
    let mut a = Wire::enterprise(&h, &h.decahose_url(1)).await;
    let mut ra: Vec<u64> = a.records(1).await.iter().map(|l| post_id(l)).collect();
    // The second connection starts where the timeline is when it connects,
    // then follows the same sequence as the first.
    let mut b = Wire::enterprise(&h, &h.decahose_url(1)).await;
    let rb: Vec<u64> = b.records(40).await.iter().map(|l| post_id(l)).collect();
    let last = *rb.last().expect("records");
    while !ra.contains(&last) {
        ra.extend(a.records(1).await.iter().map(|l| post_id(l)));
    }
    let start = ra
        .iter()
        .position(|id| *id == rb[0])
        .expect("the first connection saw it too");
    assert_eq!(
        ra[start..start + rb.len()],
        rb[..],
        "one timeline, two cursors"
    );

    // With backfill a new connection replays the whole timeline, in order.
    a.close().await;
    b.close().await;
    eventually("both closes noticed", || {
        h.accounting().connections.iter().all(|c| c.ended.is_some())
    })
    .await;
    let url = format!("{}&backfillMinutes=1", h.decahose_url(1));
    let mut c = Wire::enterprise(&h, &url).await;
    let rc: Vec<u64> = c
        .records(ra.len())
        .await
        .iter()
        .map(|l| post_id(l))
        .collect();
    assert_eq!(rc[..ra.len()], ra[..]);

    let mut d = Wire::enterprise(&h, &h.decahose_url(2)).await;
    let rd: HashSet<u64> = d.records(20).await.iter().map(|l| post_id(l)).collect();
    assert!(
        rd.iter().all(|id| !ra.contains(id)),
        "partitions carry different records"
    );
    eventually("copies accounted as resent", || {
        let acc = h.accounting();
        rb.iter()
            .all(|id| acc.resent_post_ids.binary_search(id).is_ok())
    })
    .await;
}

#[tokio::test]
async fn firehose_partitions_are_validated_and_decahose_records_have_no_rules() {
    let h = sim(fast(5)).await;
    let mut ok = Wire::enterprise(&h, &h.firehose_url(20)).await;
    assert_eq!(ok.status, 200);
    let recs = ok.records(5).await;
    assert!(recs.iter().all(|r| !r.contains("matching_rules")));
    let bad = Wire::enterprise(&h, &h.firehose_url(21)).await;
    assert_eq!(bad.status, 400);
    let zero = Wire::enterprise(&h, &h.decahose_url(0)).await;
    assert_eq!(zero.status, 400);
}

#[tokio::test]
async fn backfill_resends_the_recent_window_first_then_continues_live() {
    let h = sim(SimConfig {
        rate: Some(500.0),
        ..SimConfig::default()
    })
    .await;
    let mut first = Wire::enterprise(&h, &h.powertrack_url()).await;
    let before: Vec<u64> = first.records(30).await.iter().map(|l| post_id(l)).collect();
    first.close().await;

    let mut plain = Wire::enterprise(&h, &h.powertrack_url()).await;
    let live: Vec<u64> = plain.records(5).await.iter().map(|l| post_id(l)).collect();
    assert!(
        live.iter().all(|id| !before.contains(id)),
        "without backfill only new records"
    );
    plain.close().await;

    let url = format!("{}?backfillMinutes=1", h.powertrack_url());
    let mut back = Wire::enterprise(&h, &url).await;
    let again: Vec<u64> = back.records(200).await.iter().map(|l| post_id(l)).collect();
    // The timeline started with the first connection, so one minute covers
    // all of it: the backfill begins with the very first record.
    assert_eq!(again[0], before[0]);
    assert!(before.iter().all(|id| again.contains(id)));
    let mut sorted = again.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, again, "older records first");
    eventually("resent ids accounted", || {
        let acc = h.accounting();
        before
            .iter()
            .all(|id| acc.resent_post_ids.binary_search(id).is_ok())
    })
    .await;
}

#[tokio::test]
async fn max_records_then_only_heartbeats() {
    let h = sim(SimConfig {
        max_records: Some(7),
        heartbeat_interval: Duration::from_millis(20),
        ..fast(7)
    })
    .await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let mut records = 0;
    let mut beats = 0;
    while beats < 2 {
        assert!(w.next_chunk().await.is_some());
        for l in w.take_lines() {
            if l.is_empty() {
                beats += 1;
            } else {
                records += 1;
            }
        }
    }
    assert_eq!(records, 7);
}

#[tokio::test]
async fn every_format_streams_valid_records() {
    for format in [Format::ActivityStreams, Format::Original, Format::V2] {
        let h = sim(SimConfig { format, ..fast(20) }).await;
        let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
        let recs = w.records(20).await;
        assert_eq!(recs.len(), 20, "{format}");
        let ids: HashSet<u64> = recs.iter().map(|r| post_id(r)).collect();
        assert_eq!(ids.len(), 20);
    }
}

#[tokio::test]
async fn bursts_add_records_on_top_of_the_rate() {
    let h = sim(SimConfig {
        rate: Some(1.0),
        burst: Some(gnip_sim::Burst {
            size: 40,
            every: Duration::from_millis(100),
        }),
        ..SimConfig::default()
    })
    .await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let started = tokio::time::Instant::now();
    let got = w.records(40).await;
    assert!(got.len() >= 40);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a burst, not the 1/s rate"
    );
}

#[tokio::test]
async fn a_slow_reader_is_disconnected_when_it_falls_out_of_the_history() {
    let h = sim(SimConfig {
        rate: Some(3000.0),
        history_bytes: 150_000,
        faults: gnip_sim::FaultPlan::parse("trickle=2048/10").expect("plan"),
        ..SimConfig::default()
    })
    .await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let lines = w.all_lines().await;
    let last: serde_json::Value = serde_json::from_str(lines.last().expect("lines")).expect("JSON");
    let msg = last["error"]["message"].as_str().expect("an error message");
    assert!(msg.contains("maximum allowed backup"), "{msg}");
    assert_eq!(w.end, Some(End::LastChunk));
    eventually("accounted", || {
        h.accounting().connections[0].ended == Some(EndReason::FullBuffer)
    })
    .await;
}

#[tokio::test]
async fn the_accounting_file_is_written_at_shutdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("accounting.json");
    let h = sim(SimConfig {
        accounting_file: Some(path.clone()),
        ..fast(12)
    })
    .await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let ids: HashSet<u64> = w.records(12).await.iter().map(|l| post_id(l)).collect();
    eventually("accounted", || h.accounting().records_sent == 12).await;
    w.close().await;
    h.shutdown().await;
    let acc: gnip_sim::Accounting =
        serde_json::from_slice(&std::fs::read(&path).expect("file written")).expect("JSON");
    assert_eq!(acc.sent_post_ids.into_iter().collect::<HashSet<_>>(), ids);
    assert_eq!(acc.connections.len(), 1);

    let bad = sim(SimConfig {
        accounting_file: Some(dir.path().join("no/such/dir/a.json")),
        ..fast(1)
    })
    .await;
    assert!(matches!(
        bad.finish().await,
        Err(gnip_sim::SimError::AccountingFile { .. })
    ));
}

#[tokio::test]
async fn describe_lists_every_endpoint_and_the_credentials() {
    let h = sim(SimConfig::default()).await;
    let text = h.describe();
    for needle in [
        h.powertrack_url(),
        h.rules_url(),
        h.decahose_url(1),
        h.v2_filtered_url(),
        h.accounting_url(),
    ] {
        assert!(text.contains(&needle), "{needle} missing from:\n{text}");
    }
    assert!(text.contains(&h.config().password) && text.contains(&h.config().bearer_token));
}
