//! Compliance streams: events about posts and authors the simulator sent.

use std::collections::HashSet;

use gnip_sim::SimConfig;
use serde_json::Value;

use crate::support::{Wire, eventually, post_id, sim};

#[tokio::test]
async fn enterprise_compliance_events_refer_to_sent_posts() {
    let h = sim(SimConfig {
        rate: None,
        max_records: Some(2000),
        ..SimConfig::default()
    })
    .await;
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let sent: HashSet<u64> = w.records(2000).await.iter().map(|l| post_id(l)).collect();
    eventually("records accounted", || h.accounting().records_sent == 2000).await;

    let mut c = Wire::enterprise(&h, &h.compliance_url(8)).await;
    assert_eq!(c.status, 200);
    let events = c.records(200).await;
    let mut deletes = 0;
    for e in &events {
        let v: Value = serde_json::from_str(e).expect("JSON");
        let obj = v.as_object().expect("object");
        assert_eq!(obj.len(), 1, "one event key: {e}");
        let (kind, body) = obj.iter().next().expect("event");
        if let Some(id) = body["status"]["id_str"].as_str() {
            assert!(
                sent.contains(&id.parse().expect("id")),
                "{kind} of a post never sent"
            );
            deletes += 1;
        } else {
            assert!(kind.starts_with("user_") || kind == "scrub_geo", "{kind}");
        }
    }
    assert!(deletes > 20, "{deletes} post events in 200");
    assert_eq!(Wire::enterprise(&h, &h.compliance_url(9)).await.status, 400);
}

#[tokio::test]
async fn v2_tweet_compliance_wraps_events_in_data() {
    let h = sim(SimConfig {
        rate: None,
        max_records: Some(500),
        ..SimConfig::default()
    })
    .await;
    let mut w = Wire::v2(&h, &h.v2_sample_url(), true).await;
    let sent: HashSet<u64> = w.records(500).await.iter().map(|l| post_id(l)).collect();
    eventually("records accounted", || h.accounting().records_sent == 500).await;
    let mut c = Wire::v2(&h, &h.v2_compliance_url(1), true).await;
    for e in c.records(50).await {
        let v: Value = serde_json::from_str(&e).expect("JSON");
        let (_, body) = v["data"]
            .as_object()
            .expect("data")
            .iter()
            .next()
            .expect("event");
        let id: u64 = body["tweet"]["id"]
            .as_str()
            .expect("string id")
            .parse()
            .expect("id");
        assert!(sent.contains(&id));
        assert!(body["event_at"].is_string());
    }
    let mut u = Wire::v2(&h, &h.v2_user_compliance_url(4), false).await;
    let ev = u.records(5).await;
    assert!(ev.iter().all(|e| e.contains("\"user\":{\"id\":\"")));
}
