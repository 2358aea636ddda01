//! Replaying real records from a corpus file.

use std::collections::HashSet;
use std::path::PathBuf;

use gnip_sim::{Format, SimConfig, SimError};
use serde_json::Value;

use crate::support::{Wire, post_id, sim};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn texts(path: &str) -> HashSet<String> {
    std::fs::read_to_string(data(path))
        .expect("fixture")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn corpus_records_are_replayed_with_fresh_ids_and_current_rules() {
    let h = sim(SimConfig {
        corpus: Some(data("original.jsonl")),
        rate: None,
        max_records: Some(60),
        ..SimConfig::default()
    })
    .await;
    let known = texts("original.jsonl");
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    let recs = w.records(60).await;
    let ids: HashSet<u64> = recs.iter().map(|r| post_id(r)).collect();
    assert_eq!(
        ids.len(),
        60,
        "each replayed copy has its own id (15 records, 60 copies)"
    );
    for r in &recs {
        let v: Value = serde_json::from_str(r).expect("JSON");
        assert!(
            known.contains(v["text"].as_str().expect("text")),
            "a corpus record"
        );
        assert_eq!(
            v["id"].as_u64(),
            v["id_str"].as_str().and_then(|s| s.parse().ok())
        );
        let rule_id = v["matching_rules"][0]["id"]
            .as_u64()
            .expect("a current rule id");
        assert!(rule_id > 1_000_000_000_000_000_000);
    }
}

#[tokio::test]
async fn gzip_corpora_and_v2_corpora_work() {
    let h = sim(SimConfig {
        corpus: Some(data("activity-streams.jsonl.gz")),
        format: Format::ActivityStreams,
        rate: None,
        max_records: Some(20),
        ..SimConfig::default()
    })
    .await;
    let mut w = Wire::enterprise(&h, &h.firehose_url(3)).await;
    for r in w.records(20).await {
        let v: Value = serde_json::from_str(&r).expect("JSON");
        assert_eq!(v["objectType"], "activity");
        assert!(
            v["gnip"].get("matching_rules").is_none(),
            "firehose records match no rules"
        );
    }
    let v2 = sim(SimConfig {
        corpus: Some(data("v2-filtered.jsonl")),
        rate: None,
        max_records: Some(8),
        ..SimConfig::default()
    })
    .await;
    let mut w = Wire::v2(&v2, &v2.v2_filtered_url(), true).await;
    let recs = w.records(8).await;
    assert_eq!(
        recs.iter()
            .map(|r| post_id(r))
            .collect::<HashSet<_>>()
            .len(),
        8
    );
    assert!(recs.iter().all(|r| r.contains("\"includes\"")));
}

#[tokio::test]
async fn unusable_corpora_are_reported() {
    let err = gnip_sim::start(SimConfig {
        corpus: Some(data("compliance.jsonl")),
        ..SimConfig::default()
    })
    .await
    .err()
    .expect("no posts in a compliance file");
    assert!(
        matches!(err, SimError::EmptyCorpus { skipped: 6, .. }),
        "{err}"
    );
    let err = gnip_sim::start(SimConfig {
        corpus: Some(data("missing.jsonl")),
        ..SimConfig::default()
    })
    .await
    .err()
    .expect("missing file");
    assert!(matches!(err, SimError::Corpus { .. }), "{err}");
}
