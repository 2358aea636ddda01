//! The v2 streams: bearer auth, optional gzip, partitions, string rule ids,
//! the 20-second heartbeat setting.

use std::time::Duration;

use gnip_sim::SimConfig;
use serde_json::Value;

use crate::support::{Wire, basic, post_id, sim};

#[tokio::test]
async fn v2_filtered_stream_serves_plain_or_gzip_records_with_string_rule_ids() {
    let h = sim(SimConfig {
        rate: None,
        max_records: Some(20),
        ..SimConfig::default()
    })
    .await;
    let mut plain = Wire::v2(&h, &h.v2_filtered_url(), false).await;
    assert_eq!(plain.status, 200);
    assert!(
        plain.header("content-encoding").is_none(),
        "gzip is optional on v2"
    );
    assert!(plain.header("x-rate-limit-limit").is_some());
    for r in plain.records(20).await {
        let v: Value = serde_json::from_str(&r).expect("JSON");
        assert!(v["data"]["id"].is_string() && v["data"]["author_id"].is_string());
        assert!(v["includes"]["users"].is_array());
        assert!(v["matching_rules"][0]["id"].is_string());
    }
    let mut gz = Wire::v2(
        &h,
        &format!("{}?backfill_minutes=1", h.v2_filtered_url()),
        true,
    )
    .await;
    assert_eq!(gz.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(gz.records(20).await.len(), 20);
}

#[tokio::test]
async fn v2_streams_check_bearer_auth_and_partitions() {
    let h = sim(SimConfig {
        rate: None,
        max_records: Some(5),
        ..SimConfig::default()
    })
    .await;
    let target = h
        .v2_sample_url()
        .trim_start_matches(&h.base_url())
        .to_string();
    let w = Wire::get(&h, &target, &[("Authorization", basic(h.config()))]).await;
    assert_eq!(w.status, 401);
    let mut w = Wire::v2(&h, &h.v2_sample10_url(3), true).await;
    assert_eq!(w.status, 400);
    let problem: Value = serde_json::from_str(&w.fixed_body().await).expect("JSON");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("partition")
    );
    let mut ok = Wire::v2(&h, &h.v2_firehose_url(20), true).await;
    let recs = ok.records(5).await;
    assert!(recs.iter().all(|r| !r.contains("matching_rules")));
    assert_eq!(
        recs.iter()
            .map(|r| post_id(r))
            .collect::<std::collections::HashSet<_>>()
            .len(),
        5
    );
    let lang = format!(
        "{}/2/tweets/firehose/stream/lang/ja?partition=1",
        h.base_url()
    );
    assert_eq!(Wire::v2(&h, &lang, true).await.status, 200);
    let unknown = format!(
        "{}/2/tweets/firehose/stream/lang/xx?partition=1",
        h.base_url()
    );
    assert_eq!(Wire::v2(&h, &unknown, true).await.status, 404);
}

#[tokio::test]
async fn v2_heartbeats_follow_their_own_interval() {
    let h = sim(SimConfig {
        rate: None,
        max_records: Some(0),
        heartbeat_interval: Duration::from_secs(3600),
        v2_heartbeat_interval: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await;
    let mut w = Wire::v2(&h, &h.v2_sample_url(), false).await;
    assert!(w.next_chunk().await.is_some());
    assert_eq!(w.take_lines(), [""]);
}
