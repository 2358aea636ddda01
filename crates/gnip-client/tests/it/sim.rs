//! The stream client end to end against the simulator (crates/gnip-sim):
//! real HTTP, real gzip flushed per record, generated records, and the
//! simulator's own fault injection. Every test compares what arrived with
//! the simulator's accounting of what it sent.

use std::collections::HashSet;
use std::time::Duration;

use gnip_client::{
    BackoffConfig, Credentials, Endpoint, FailureClass, Kind, StreamConfig, StreamEvent,
    StreamItem, spawn,
};
use gnip_sim::{FaultPlan, SimConfig, SimHandle};

use crate::support::{collect_until, count, events};

fn sim_config(faults: &str, max_records: u64) -> SimConfig {
    SimConfig {
        rate: Some(2000.0),
        max_records: Some(max_records),
        heartbeat_interval: Duration::from_millis(100),
        v2_heartbeat_interval: Duration::from_millis(100),
        faults: FaultPlan::parse(faults).expect("fault syntax"),
        ..SimConfig::default()
    }
}

fn client(url: &str, sim: &SimHandle) -> StreamConfig {
    let endpoint = Endpoint::parse(url).expect("endpoint");
    let creds = if endpoint.is_v2() {
        Credentials::bearer(sim.config().bearer_token.clone())
    } else {
        Credentials::basic(sim.config().username.clone(), sim.config().password.clone())
    };
    let mut c = StreamConfig::new(endpoint, creds);
    c.backoff = BackoffConfig {
        jitter: 0.0,
        ..BackoffConfig::scaled_down(500)
    };
    c.stall_timeout = Duration::from_secs(5);
    c
}

/// Distinct activity ids among the records; panics on a duplicate record.
fn activity_ids(items: &[StreamItem]) -> HashSet<u64> {
    let mut ids = HashSet::new();
    for item in items {
        if let StreamItem::Record(r) = item
            && r.kind == Kind::Activity
        {
            let id = r.post_id.expect("activities have ids");
            assert!(ids.insert(id), "duplicate record {id} on the channel");
        }
    }
    ids
}

fn all_activities(n: usize) -> impl FnMut(&[StreamItem]) -> bool {
    move |items| {
        items
            .iter()
            .filter(|i| matches!(i, StreamItem::Record(r) if r.kind == Kind::Activity))
            .count()
            >= n
    }
}

fn sent(sim: &SimHandle) -> HashSet<u64> {
    sim.accounting().sent_post_ids.into_iter().collect()
}

/// Asserts that exactly the ids the simulator sent arrived, reporting only
/// the differences. The simulator books a record once its last byte is
/// written, which can be a moment after the client has read it, so the
/// ledger is polled until it holds as many ids as arrived (bounded).
async fn assert_all_sent_arrived(got: &HashSet<u64>, sim: &SimHandle) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut sent = sent(sim);
    while sent.len() < got.len() && tokio::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        sent = self::sent(sim);
    }
    let missing: Vec<_> = sent.difference(got).take(5).collect();
    let extra: Vec<_> = got.difference(&sent).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "got {} ids, sim sent {}; missing (first 5) {missing:?}, never sent {extra:?}",
        got.len(),
        sent.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powertrack_drop_mid_record_is_covered_by_backfill() {
    let sim = gnip_sim::start(sim_config("drop-every=300:rst@1", 1000))
        .await
        .expect("sim");
    let (mut rx, handle) = spawn(client(&sim.powertrack_url(), &sim)).expect("spawn");
    let items = collect_until(&mut rx, all_activities(1000)).await;
    let got = activity_ids(&items);
    assert_eq!(got.len(), 1000);
    assert_all_sent_arrived(&got, &sim).await;
    let acct = sim.accounting();
    assert!(acct.connections.len() >= 2);
    // A sub-second outage: rounded up to one minute, plus one.
    assert!(
        acct.connections[1].path.contains("backfillMinutes=2"),
        "{}",
        acct.connections[1].path
    );
    // The overlap came twice and was dropped.
    assert!(handle.stats().duplicates > 0);
    assert_eq!(handle.stats().records, 1000);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decahose_two_partitions_two_connections_each_deliver_each_id_once() {
    let sim = gnip_sim::start(sim_config("", 200)).await.expect("sim");
    let url = sim.decahose_url(1).replace("?partition=1", "");
    let mut c = client(&url, &sim);
    c.partitions = vec![1, 2];
    c.connections_per_partition = 2;
    let (mut rx, handle) = spawn(c).expect("spawn");
    let items = collect_until(&mut rx, all_activities(400)).await;
    let got = activity_ids(&items);
    assert_all_sent_arrived(&got, &sim).await;
    let mut partitions = HashSet::new();
    for item in &items {
        if let StreamItem::Record(r) = item {
            partitions.insert(r.partition);
        }
    }
    assert_eq!(partitions, HashSet::from([1, 2]));
    assert_eq!(sim.accounting().connections.len(), 4);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_filtered_survives_503s_split_chunks_malformed_lines_and_a_forced_disconnect() {
    let sim = gnip_sim::start(sim_config(
        "status=503x2,split-chunks,malformed-every=50,forced-disconnect-after=100@3",
        500,
    ))
    .await
    .expect("sim");
    let (mut rx, handle) = spawn(client(&sim.v2_filtered_url(), &sim)).expect("spawn");
    let items = collect_until(&mut rx, all_activities(500)).await;
    assert_all_sent_arrived(&activity_ids(&items), &sim).await;
    let http_backoffs = count(&items, |e| {
        matches!(
            e,
            StreamEvent::BackingOff {
                class: FailureClass::Http,
                ..
            }
        )
    });
    assert_eq!(http_backoffs, 2);
    assert!(count(&items, |e| matches!(e, StreamEvent::SystemMessage { .. })) >= 1);
    assert!(handle.stats().malformed >= 1);
    assert!(count(&items, |e| matches!(e, StreamEvent::Connected { .. })) >= 2);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_and_truncated_gzip_from_the_simulator_are_recovered() {
    let sim = gnip_sim::start(sim_config(
        "stall-after=100@1,truncate-gzip-after=100@2",
        400,
    ))
    .await
    .expect("sim");
    let mut c = client(&sim.powertrack_url(), &sim);
    c.stall_timeout = Duration::from_millis(300);
    let (mut rx, handle) = spawn(c).expect("spawn");
    let items = collect_until(&mut rx, all_activities(400)).await;
    assert_all_sent_arrived(&activity_ids(&items), &sim).await;
    let reasons: Vec<String> = events(&items)
        .into_iter()
        .filter_map(|e| match e {
            StreamEvent::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert!(reasons.iter().any(|r| r.contains("stalled")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("truncated")),
        "{reasons:?}"
    );
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_stops_with_a_clear_message() {
    let sim = gnip_sim::start(sim_config("", 10)).await.expect("sim");
    let mut c = client(&sim.powertrack_url(), &sim);
    c.credentials = Credentials::basic(sim.config().username.clone(), "wrong-Pa55");
    let (mut rx, _handle) = spawn(c).expect("spawn");
    let items = collect_until(&mut rx, |_| false).await;
    let Some(StreamItem::Event(StreamEvent::Fatal(e))) = items.last() else {
        panic!("no fatal: {items:?}")
    };
    let text = e.to_string();
    assert!(text.contains("HTTP 401") && text.contains("check the username and password"));
    assert!(!text.contains("wrong-Pa55"));
    assert_eq!(sim.accounting().connect_attempts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_firehose_defaults_to_all_eight_partitions() {
    let sim = gnip_sim::start(sim_config("", 25)).await.expect("sim");
    let url = sim.compliance_url(1).replace("?partition=1", "");
    let (mut rx, handle) = spawn(client(&url, &sim)).expect("spawn");
    // The simulator draws users from a small pool, so now and then it sends
    // the very same event twice on one partition; that copy is dropped.
    let items = collect_until(&mut rx, |items| {
        let records = items
            .iter()
            .filter(|i| matches!(i, StreamItem::Record(r) if r.kind == Kind::Compliance))
            .count();
        records + count(items, |e| matches!(e, StreamEvent::DuplicateDropped { .. })) >= 8 * 25
    })
    .await;
    let mut partitions = HashSet::new();
    for item in &items {
        if let StreamItem::Record(r) = item {
            assert_eq!(
                r.kind,
                Kind::Compliance,
                "{:?}",
                String::from_utf8_lossy(&r.raw)
            );
            partitions.insert(r.partition);
        }
    }
    assert_eq!(partitions, (1..=8).collect());
    // The ledger books a record after its last byte is written (bounded poll).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sim.accounting().records_sent < 8 * 25 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let acct = sim.accounting();
    assert_eq!(acct.records_sent, 8 * 25);
    assert_eq!(acct.connections.len(), 8);
    // The enterprise Compliance Firehose gets no backfill parameter.
    assert!(
        acct.connections
            .iter()
            .all(|c| !c.path.contains("backfill"))
    );
    assert_eq!(handle.stats().malformed, 0);
    handle.shutdown();
}
