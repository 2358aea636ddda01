//! Recovery (`startTime` / `endTime` on the realtime URL, v2 `start_time`)
//! and Replay (`/replay/...?fromDate=&toDate=`): the window, then the
//! completion message, then a clean close.

use gnip_sim::{EndReason, SimConfig};
use serde_json::Value;

use crate::support::{End, Wire, eventually, post_id, sim};

fn iso(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn replay_date(ms: u64) -> String {
    iso(ms)[..16].replace(['-', 'T', ':'], "")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

async fn some_history(h: &gnip_sim::SimHandle, n: usize) -> Vec<u64> {
    let mut w = Wire::enterprise(h, &h.powertrack_url()).await;
    let ids = w.records(n).await.iter().map(|l| post_id(l)).collect();
    w.close().await;
    eventually("the connection to end", || {
        h.accounting().connections.iter().all(|c| c.ended.is_some())
    })
    .await;
    ids
}

#[tokio::test]
async fn recovery_serves_the_window_then_completes_and_closes() {
    let h = sim(SimConfig {
        rate: Some(500.0),
        ..SimConfig::default()
    })
    .await;
    let start = now_ms() - 1000;
    let seen = some_history(&h, 40).await;
    let url = format!(
        "{}?startTime={}&endTime={}",
        h.powertrack_url(),
        iso(start),
        iso(now_ms() + 2000)
    );
    let mut w = Wire::enterprise(&h, &url).await;
    assert_eq!(w.status, 200);
    let lines = w.all_lines().await;
    assert_eq!(w.end, Some(End::LastChunk));
    let (last, records) = lines.split_last().expect("lines");
    let info: Value = serde_json::from_str(last).expect("JSON");
    assert_eq!(info["info"]["message"], "Recovery Request Completed");
    let ids: Vec<u64> = records
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| post_id(l))
        .collect();
    assert_eq!(info["info"]["activity_count"], ids.len());
    assert!(
        seen.iter().all(|id| ids.contains(id)),
        "the window holds what was sent live"
    );
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ids, "oldest first");
    eventually("completion accounted", || {
        h.accounting().connections.last().and_then(|c| c.ended) == Some(EndReason::Completed)
    })
    .await;
}

#[tokio::test]
async fn a_window_before_the_history_completes_empty_and_bad_windows_are_refused() {
    let h = sim(SimConfig {
        rate: Some(200.0),
        ..SimConfig::default()
    })
    .await;
    some_history(&h, 5).await;
    let t = now_ms() - 3_600_000;
    let url = format!(
        "{}?startTime={}&endTime={}",
        h.powertrack_url(),
        iso(t),
        iso(t + 60_000)
    );
    let mut w = Wire::enterprise(&h, &url).await;
    let lines = w.all_lines().await;
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("Recovery Request Completed"));

    let reversed = format!(
        "{}?startTime={}&endTime={}",
        h.powertrack_url(),
        iso(t + 60_000),
        iso(t)
    );
    assert_eq!(Wire::enterprise(&h, &reversed).await.status, 400);
    let garbage = format!("{}?startTime=yesterday", h.powertrack_url());
    assert_eq!(Wire::enterprise(&h, &garbage).await.status, 400);
}

#[tokio::test]
async fn replay_merges_partitions_and_reports_the_activity_count() {
    let h = sim(SimConfig {
        rate: Some(300.0),
        ..SimConfig::default()
    })
    .await;
    let from = replay_date(now_ms() - 60_000);
    let mut a = Wire::enterprise(&h, &h.decahose_url(1)).await;
    let mut b = Wire::enterprise(&h, &h.decahose_url(2)).await;
    let mut seen: Vec<u64> = a.records(10).await.iter().map(|l| post_id(l)).collect();
    seen.extend(b.records(10).await.iter().map(|l| post_id(l)));
    let to = replay_date(now_ms() + 120_000);
    let url = format!("{}?fromDate={from}&toDate={to}", h.replay_url("sample10"));
    let mut w = Wire::enterprise(&h, &url).await;
    let lines = w.all_lines().await;
    let (last, records) = lines.split_last().expect("lines");
    let info: Value = serde_json::from_str(last).expect("JSON");
    assert_eq!(info["info"]["message"], "Replay Request Completed");
    let ids: Vec<u64> = records
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| post_id(l))
        .collect();
    assert_eq!(info["info"]["activity_count"], ids.len());
    assert!(
        seen.iter().all(|id| ids.contains(id)),
        "both partitions in one replay"
    );
    assert_eq!(w.end, Some(End::LastChunk));

    let bad = format!(
        "{}?fromDate=2024-01-01&toDate={to}",
        h.replay_url("sample10")
    );
    let mut w = Wire::enterprise(&h, &bad).await;
    assert_eq!(w.status, 406);
    assert!(w.fixed_body().await.contains("yyyyMMddHHmm"));
}

#[tokio::test]
async fn v2_recovery_uses_start_time() {
    let h = sim(SimConfig {
        rate: Some(300.0),
        ..SimConfig::default()
    })
    .await;
    let start = now_ms() - 1000;
    let mut live = Wire::v2(&h, &h.v2_filtered_url(), true).await;
    let seen: Vec<u64> = live.records(10).await.iter().map(|l| post_id(l)).collect();
    live.close().await;
    eventually("the live connection to end", || {
        h.accounting().connections[0].ended.is_some()
    })
    .await;
    let url = format!("{}?start_time={}", h.v2_filtered_url(), iso(start));
    let mut w = Wire::v2(&h, &url, true).await;
    let lines = w.all_lines().await;
    assert!(
        lines
            .last()
            .expect("lines")
            .contains("Recovery Request Completed")
    );
    let ids: Vec<u64> = lines[..lines.len() - 1]
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| post_id(l))
        .collect();
    assert!(seen.iter().all(|id| ids.contains(id)));
}
