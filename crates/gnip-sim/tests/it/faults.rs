//! Fault injection, one fault at a time and combined, checked on the wire
//! and in the accounting.

use std::io::Read;
use std::time::Duration;

use gnip_sim::{EndReason, FaultPlan, SimConfig};

use crate::support::{End, WAIT, Wire, client, eventually, json, post_id, sim};

fn with(faults: &str, max: u64) -> SimConfig {
    SimConfig {
        rate: None,
        max_records: Some(max),
        heartbeat_interval: Duration::from_millis(25),
        faults: FaultPlan::parse(faults).expect("valid plan"),
        ..SimConfig::default()
    }
}

fn gunzip(body: &[u8]) -> std::io::Result<String> {
    let mut s = String::new();
    flate2::read::GzDecoder::new(body).read_to_string(&mut s)?;
    Ok(s)
}

#[tokio::test]
async fn counted_status_faults_refuse_the_next_connects_then_let_through() {
    let h = sim(with("status=503x2,status=429@3", 5)).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
        statuses.push(w.status);
        if w.status != 200 {
            assert!(w.fixed_body().await.contains("error"));
        }
    }
    assert_eq!(statuses, [503, 503, 429, 200]);
    let v2 = Wire::v2(&h, &h.v2_sample_url(), true).await;
    assert_eq!(v2.status, 200, "the counted faults are used up");
    let acc = h.accounting();
    assert_eq!(
        acc.connections.iter().map(|c| c.status).collect::<Vec<_>>(),
        [503, 503, 429, 200, 200]
    );
    assert_eq!(h.connect_attempts(), 5);
}

#[tokio::test]
async fn unsuffixed_status_applies_to_every_connect() {
    let h = sim(with("status=401", 5)).await;
    for _ in 0..3 {
        let w = Wire::enterprise(&h, &h.powertrack_url()).await;
        assert_eq!(w.status, 401);
        assert!(w.header("www-authenticate").is_some());
    }
}

#[tokio::test]
async fn drop_every_cuts_each_connection_mid_record_with_a_fin() {
    let h = sim(with("drop-every=3", 100)).await;
    // Plain v2 shows the cut inside a record byte for byte.
    let mut w = Wire::v2(&h, &h.v2_sample_url(), false).await;
    let lines = w.all_lines().await;
    assert_eq!(lines.len(), 3, "exactly three whole records");
    assert!(w.partial_len() > 0, "part of the fourth record was written");
    assert_eq!(
        w.end,
        Some(End::Eof),
        "no terminating chunk: the connection just closed"
    );
    // A second connection is cut the same way.
    let mut w2 = Wire::enterprise(&h, &h.powertrack_url()).await;
    assert_eq!(w2.all_lines().await.len(), 3);
    assert_eq!(w2.end, Some(End::Eof));
    assert!(gunzip(&w2.body).is_err(), "the gzip member is incomplete");
    eventually("both cuts accounted", || {
        h.accounting()
            .connections
            .iter()
            .all(|c| c.ended == Some(EndReason::DroppedFin))
    })
    .await;
    let acc = h.accounting();
    assert!(acc.connections.iter().all(|c| c.records_sent == 3));
    assert_eq!(acc.records_sent, 6);
}

#[tokio::test]
async fn drop_every_rst_resets_the_connection() {
    let h = sim(with("drop-every=2:rst", 100)).await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let lines = w.all_lines().await;
    assert!(
        lines.len() <= 2,
        "a reset may discard unread data, never add to it"
    );
    assert_eq!(w.end, Some(End::Reset));
    eventually("the reset accounted", || {
        h.accounting().connections[0].ended == Some(EndReason::DroppedRst)
    })
    .await;
    assert_eq!(h.accounting().connections[0].records_sent, 2);
}

#[tokio::test]
async fn stall_after_sends_nothing_at_all_not_even_heartbeats() {
    let h = sim(with("stall-after=4", 100)).await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    assert_eq!(w.records(4).await.len(), 4);
    eventually("the records accounted", || h.accounting().records_sent == 4).await;
    // Ten heartbeat intervals of silence.
    let silent = tokio::time::timeout(Duration::from_millis(250), w.next_chunk()).await;
    assert!(silent.is_err(), "a stalled stream writes nothing");
    w.close().await;
    eventually("the stall accounted", || {
        h.accounting().connections[0].ended == Some(EndReason::Stalled)
    })
    .await;
    assert_eq!(h.accounting().connections[0].heartbeats_sent, 0);
}

#[tokio::test]
async fn forced_disconnect_sends_the_system_message_and_ends_the_body_cleanly() {
    let h = sim(with("forced-disconnect-after=5", 100)).await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let lines = w.all_lines().await;
    assert_eq!(w.end, Some(End::LastChunk));
    assert_eq!(lines.len(), 6);
    let last: serde_json::Value = serde_json::from_str(&lines[5]).expect("JSON");
    assert!(
        last["error"]["message"]
            .as_str()
            .expect("message")
            .starts_with("Forced Disconnect")
    );
    assert!(last["error"]["sent"].is_string());
    assert_eq!(
        gunzip(&w.body)
            .expect("a complete gzip member")
            .lines()
            .count(),
        6
    );

    let mut v2 = Wire::v2(&h, &h.v2_sample_url(), true).await;
    let lines = v2.all_lines().await;
    let last: serde_json::Value = serde_json::from_str(lines.last().expect("lines")).expect("JSON");
    assert_eq!(
        last["errors"][0]["disconnect_type"],
        "OperationalDisconnect"
    );
}

#[tokio::test]
async fn malformed_lines_come_after_every_nth_record_and_are_not_counted() {
    let h = sim(with("malformed-every=3", 9)).await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let mut lines = Vec::new();
    while lines.iter().filter(|l: &&String| !l.is_empty()).count() < 12 {
        assert!(w.next_chunk().await.is_some());
        lines.extend(w.take_lines().into_iter().filter(|l| !l.is_empty()));
    }
    let bad: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| serde_json::from_str::<serde_json::Value>(l).is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(bad, [3, 7, 11]);
    eventually("accounting", || h.accounting().records_sent == 9).await;
    assert_eq!(h.accounting().connections[0].malformed_sent, 3);
    assert_eq!(h.accounting().sent_post_ids.len(), 9);
}

#[tokio::test]
async fn truncate_gzip_ends_the_body_inside_the_member() {
    let h = sim(with("truncate-gzip-after=4", 100)).await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let lines = w.all_lines().await;
    assert_eq!(lines.len(), 4);
    assert_eq!(w.end, Some(End::LastChunk), "HTTP framing is intact");
    let err = gunzip(&w.body).expect_err("the gzip member is cut short");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    eventually("accounted", || {
        h.accounting().connections[0].ended == Some(EndReason::TruncatedGzip)
    })
    .await;
}

#[tokio::test]
async fn split_chunks_splits_records_across_chunks() {
    let h = sim(with("split-chunks", 40)).await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let recs = w.records(40).await;
    assert_eq!(recs.len(), 40);
    assert!(
        recs.iter()
            .all(|r| serde_json::from_str::<serde_json::Value>(r).is_ok())
    );
    assert!(w.chunks > 40, "{} chunks for 40 records", w.chunks);
}

#[tokio::test]
async fn trickle_paces_the_bytes() {
    let h = sim(with("trickle=512/10", 5)).await;
    let started = tokio::time::Instant::now();
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let recs = w.records(5).await;
    assert_eq!(recs.len(), 5);
    // Five compressed records of more than 700 bytes each, at 512 bytes
    // per 10 ms, cannot arrive in less than 60 ms.
    assert!(w.body.len() > 3500, "{}", w.body.len());
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn suffixes_pick_attempts_and_faults_combine() {
    let h = sim(with(
        "status=503@1,drop-every=2@2,malformed-every=1@2-3",
        100,
    ))
    .await;
    let first = Wire::enterprise(&h, &h.firehose_url(1)).await;
    assert_eq!(first.status, 503, "attempt 1 is refused");
    let mut second = Wire::enterprise(&h, &h.firehose_url(1)).await;
    assert_eq!(second.status, 200);
    let lines = second.all_lines().await;
    assert_eq!(
        lines.len(),
        4,
        "record, malformed, record, malformed, then the cut"
    );
    assert!(serde_json::from_str::<serde_json::Value>(&lines[1]).is_err());
    assert_eq!(second.end, Some(End::Eof));
}

#[tokio::test]
async fn records_replayed_by_backfill_do_not_count_towards_a_drop() {
    let h = sim(with("drop-every=2", 1_000)).await;
    let mut first = Wire::enterprise(&h, &h.powertrack_url()).await;
    let live = first.all_lines().await;
    assert_eq!(live.len(), 2, "two live records, then the cut");
    assert_eq!(first.end, Some(End::Eof));

    // Backfill replays the timeline from its start (more than two records,
    // the cut one included), then two live records, then the cut.
    let url = format!("{}?backfillMinutes=1", h.powertrack_url());
    let mut second = Wire::enterprise(&h, &url).await;
    let lines: Vec<String> = second
        .all_lines()
        .await
        .into_iter()
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(second.end, Some(End::Eof));
    assert!(lines.len() >= 5, "replay of 3+ and 2 live: {}", lines.len());
    assert_eq!(
        post_id(&lines[0]),
        post_id(&live[0]),
        "the replay starts at the start"
    );
    assert_eq!(post_id(&lines[1]), post_id(&live[1]));
}

#[tokio::test]
async fn faults_can_be_replaced_at_runtime() {
    let h = sim(with("", 5)).await;
    let client = client();
    let resp = client
        .post(h.faults_url())
        .body("status=503x1")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    let shown = json(resp).await;
    assert_eq!(shown["faults"], "status=503x1");
    assert_eq!(Wire::enterprise(&h, &h.powertrack_url()).await.status, 503);
    assert_eq!(Wire::enterprise(&h, &h.powertrack_url()).await.status, 200);
    let bad = client
        .post(h.faults_url())
        .body("explode=1")
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 400);
    h.set_faults(FaultPlan::parse("status=500x1").expect("plan"));
    assert_eq!(Wire::enterprise(&h, &h.powertrack_url()).await.status, 500);
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused() {
    let h = sim(SimConfig {
        max_connections: 1,
        rate: Some(50.0),
        ..SimConfig::default()
    })
    .await;
    let mut first = Wire::enterprise(&h, &h.powertrack_url()).await;
    assert_eq!(first.status, 200);
    let mut extra = Wire::enterprise(&h, &h.powertrack_url()).await;
    assert_eq!(extra.status, 200, "enterprise accepts, then disconnects");
    let lines = extra.all_lines().await;
    let msg: serde_json::Value =
        serde_json::from_str(lines.last().expect("a message")).expect("JSON");
    assert_eq!(
        msg["error"]["message"],
        "Forced Disconnect: Too many connections. (Allowed Connections = 1)"
    );
    assert_eq!(extra.end, Some(End::LastChunk));
    assert!(
        !first.records(1).await.is_empty(),
        "the first connection is unaffected"
    );

    let _v2 = Wire::v2(&h, &h.v2_sample_url(), true).await;
    let mut v2_extra = Wire::v2(&h, &h.v2_sample_url(), true).await;
    assert_eq!(v2_extra.status, 429);
    let body: serde_json::Value = serde_json::from_str(&v2_extra.fixed_body().await).expect("JSON");
    assert_eq!(body["connection_issue"], "TooManyConnections");
    let ended: Vec<_> = h.accounting().connections.iter().map(|c| c.ended).collect();
    assert_eq!(
        ended
            .iter()
            .filter(|e| **e == Some(EndReason::TooManyConnections))
            .count(),
        2
    );
}

#[tokio::test]
async fn the_accounting_endpoint_serves_json() {
    let h = sim(with("", 10)).await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let ids: Vec<u64> = w.records(10).await.iter().map(|l| post_id(l)).collect();
    eventually("accounted", || h.accounting().records_sent == 10).await;
    let acc: gnip_sim::Accounting = tokio::time::timeout(WAIT, async {
        serde_json::from_value(
            json(client().get(h.accounting_url()).send().await.expect("get")).await,
        )
        .expect("accounting")
    })
    .await
    .expect("in time");
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(acc.sent_post_ids, sorted);
    assert_eq!(acc.connections[0].records_sent, 10);
    let slim = json(
        client()
            .get(format!("{}?ids=false", h.accounting_url()))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(slim["sent_post_ids"], serde_json::json!([]));
    assert_eq!(slim["records_sent"], 10);
}
