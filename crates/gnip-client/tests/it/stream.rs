//! The stream client against a real loopback HTTP server: gzip, heartbeats,
//! stalls, drops, HTTP errors, server disconnects, backfill, redundancy,
//! partitions, resume and shutdown. Every delay is shrunk through the
//! configuration; nothing sleeps to wait for an outcome.

use std::collections::HashSet;
use std::time::Duration;

use gnip_client::{
    BackoffConfig, Credentials, Endpoint, FailureClass, Kind, Resume, StreamConfig, StreamEvent,
    StreamItem, spawn,
};

use crate::support::{
    Reply, Server, Step, collect_until, collect_within, count, events, post, posts, record_ids,
};

const PASSWORD: &str = "s3cret-Pa55word";

fn fast_backoff() -> BackoffConfig {
    BackoffConfig {
        network_step: Duration::from_millis(5),
        network_max: Duration::from_millis(50),
        http_initial: Duration::from_millis(10),
        http_max: Duration::from_millis(100),
        rate_limit_initial: Duration::from_millis(40),
        rate_limit_max: Duration::from_millis(400),
        jitter: 0.0,
    }
}

fn config(url: &str) -> StreamConfig {
    let endpoint = Endpoint::parse(url).expect("valid endpoint");
    let mut c = StreamConfig::new(endpoint, Credentials::basic("me@acme.example", PASSWORD));
    c.backoff = fast_backoff();
    c.stall_timeout = Duration::from_secs(5);
    c.healthy_after = Duration::from_secs(60);
    c.connect_timeout = Duration::from_secs(5);
    c
}

fn n_records(n: usize) -> impl FnMut(&[StreamItem]) -> bool {
    move |items| record_ids(items).len() >= n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_body_with_heartbeats_and_real_fixtures() {
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/real/original/tweet_parser_original_format.jsonl"
    ))
    .expect("fixture");
    // The fixture is \n-separated; the wire uses \r\n. Interleave heartbeats.
    let mut body = Vec::new();
    for line in fixture.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        body.extend_from_slice(line);
        body.extend_from_slice(b"\r\n\r\n");
    }
    let half = body.len() / 2;
    let (a, b) = (body[..half].to_vec(), body[half..].to_vec());
    let server = Server::start(move |_, _| Reply::Stream {
        gzip: true,
        steps: vec![Step::Send(a.clone()), Step::Send(b.clone()), Step::Hang],
    })
    .await;
    let (mut rx, handle) = spawn(config(&server.powertrack_url())).expect("spawn");
    let items = collect_until(&mut rx, n_records(15)).await;
    let ids = record_ids(&items);
    assert_eq!(ids.len(), 15);
    assert_eq!(ids[1], 872836479608733696);
    for item in &items {
        if let StreamItem::Record(r) = item {
            assert_eq!(r.kind, Kind::Activity);
            assert_eq!(r.partition, 0);
            assert!(r.raw.starts_with(b"{") && r.raw.ends_with(b"}"));
            assert!(r.posted_at_ms.is_some());
        }
    }
    let stats = handle.stats();
    assert_eq!(stats.records, 15);
    assert_eq!(stats.activities, 15);
    assert!(stats.heartbeats >= 14, "heartbeats {}", stats.heartbeats);
    assert_eq!(stats.bytes, body.len() as u64);
    assert!(
        stats.wire_bytes > 0 && stats.wire_bytes < stats.bytes / 2,
        "{stats:?}"
    );

    let req = &server.requests()[0];
    assert_eq!(req.header("accept-encoding").as_deref(), Some("gzip"));
    assert!(
        req.header("user-agent")
            .expect("ua")
            .starts_with("gnip-connector/")
    );
    assert!(
        req.header("authorization")
            .expect("auth")
            .starts_with("Basic ")
    );
    assert_eq!(req.query("backfillMinutes"), None);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_body_split_inside_characters_and_between_cr_lf() {
    let body = posts([1, 2, 3]);
    // Cut inside the 3-byte character of the first post and between \r\n.
    let cut1 = body
        .windows(3)
        .position(|w| w == "\u{65e5}".as_bytes())
        .expect("char")
        + 1;
    let cut2 = body.iter().position(|&b| b == b'\r').expect("cr") + 1;
    let (cut1, cut2) = (cut1.min(cut2), cut1.max(cut2));
    let steps = vec![
        Step::Send(body[..cut1].to_vec()),
        Step::Send(body[cut1..cut2].to_vec()),
        Step::Send(body[cut2..].to_vec()),
        Step::Hang,
    ];
    let server = Server::start(move |_, _| Reply::Stream {
        gzip: false,
        steps: steps.clone(),
    })
    .await;
    let (mut rx, handle) = spawn(config(&server.powertrack_url())).expect("spawn");
    let items = collect_until(&mut rx, n_records(3)).await;
    assert_eq!(record_ids(&items), vec![1, 2, 3]);
    assert_eq!(handle.stats().wire_bytes, handle.stats().bytes);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_gzip_is_delivered_as_it_arrives() {
    // One record in seven flushed pieces, 20 ms apart, then silence: the
    // record must arrive although the gzip member never ends.
    let line = post(5);
    let steps: Vec<Step> = line
        .chunks(line.len() / 6)
        .flat_map(|c| {
            [
                Step::Send(c.to_vec()),
                Step::Sleep(Duration::from_millis(20)),
            ]
        })
        .chain([Step::Hang])
        .collect();
    let server = Server::start(move |_, _| Reply::Stream {
        gzip: true,
        steps: steps.clone(),
    })
    .await;
    let (mut rx, handle) = spawn(config(&server.powertrack_url())).expect("spawn");
    let items = collect_until(&mut rx, n_records(1)).await;
    assert_eq!(record_ids(&items), vec![5]);
    assert_eq!(
        count(&items, |e| matches!(e, StreamEvent::Disconnected { .. })),
        0
    );
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_is_detected_and_the_stream_reconnects() {
    let server = Server::start(|n, _| Reply::Stream {
        gzip: true,
        steps: vec![Step::Send(posts([n as u64 * 10 + 1])), Step::Hang],
    })
    .await;
    let mut c = config(&server.powertrack_url());
    c.stall_timeout = Duration::from_millis(300);
    let (mut rx, handle) = spawn(c).expect("spawn");
    let items = collect_until(&mut rx, n_records(2)).await;
    assert_eq!(record_ids(&items), vec![1, 11]);
    let reason = events(&items)
        .into_iter()
        .find_map(|e| match e {
            StreamEvent::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .expect("a disconnect");
    assert!(reason.contains("stalled"), "{reason}");
    assert_eq!(
        count(&items, |e| matches!(e, StreamEvent::Connected { .. })),
        2
    );
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_dropped_mid_record_reconnects_and_drops_the_partial() {
    let server = Server::start(|n, _| {
        if n == 0 {
            let mut first = posts([1, 2]);
            first.extend_from_slice(&post(3)[..20]);
            Reply::Stream {
                gzip: true,
                steps: vec![Step::Send(first), Step::Drop],
            }
        } else {
            Reply::Stream {
                gzip: true,
                steps: vec![Step::Send(posts([3, 4])), Step::Hang],
            }
        }
    })
    .await;
    let (mut rx, handle) = spawn(config(&server.powertrack_url())).expect("spawn");
    let items = collect_until(&mut rx, n_records(4)).await;
    assert_eq!(record_ids(&items), vec![1, 2, 3, 4]);
    assert_eq!(handle.stats().malformed, 0);
    // The first reconnect after an established connection is immediate.
    let delays: Vec<Duration> = events(&items)
        .into_iter()
        .filter_map(|e| match e {
            StreamEvent::BackingOff { delay, class, .. } => {
                assert_eq!(*class, FailureClass::Network);
                Some(*delay)
            }
            _ => None,
        })
        .collect();
    assert_eq!(delays, vec![Duration::ZERO]);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_gzip_is_a_connection_error_and_reconnects() {
    let server = Server::start(|n, _| Reply::Stream {
        gzip: true,
        steps: vec![
            Step::Send(posts([n as u64 + 1])),
            if n == 0 {
                Step::EndTruncated
            } else {
                Step::Hang
            },
        ],
    })
    .await;
    let (mut rx, handle) = spawn(config(&server.powertrack_url())).expect("spawn");
    let items = collect_until(&mut rx, n_records(2)).await;
    assert_eq!(record_ids(&items), vec![1, 2]);
    let reason = events(&items)
        .into_iter()
        .find_map(|e| match e {
            StreamEvent::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .expect("a disconnect");
    assert!(reason.contains("truncated"), "{reason}");
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_503_three_times_then_200() {
    let server = Server::start(|n, _| {
        if n < 3 {
            Reply::Status(503, "Service Unavailable")
        } else {
            Reply::Stream {
                gzip: true,
                steps: vec![Step::Send(posts([7])), Step::Hang],
            }
        }
    })
    .await;
    let (mut rx, handle) = spawn(config(&server.powertrack_url())).expect("spawn");
    let items = collect_until(&mut rx, n_records(1)).await;
    let backoffs: Vec<(Duration, FailureClass)> = events(&items)
        .into_iter()
        .filter_map(|e| match e {
            StreamEvent::BackingOff { delay, class, .. } => Some((*delay, *class)),
            _ => None,
        })
        .collect();
    let ms = Duration::from_millis;
    assert_eq!(
        backoffs,
        vec![
            (ms(10), FailureClass::Http),
            (ms(20), FailureClass::Http),
            (ms(40), FailureClass::Http)
        ]
    );
    assert_eq!(record_ids(&items), vec![7]);
    assert_eq!(server.requests().len(), 4);
    assert_eq!(handle.stats().reconnects, 3);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429_backs_off_from_the_rate_limit_delay() {
    let server = Server::start(|n, _| {
        if n < 2 {
            Reply::Status(429, "Too Many Requests")
        } else {
            Reply::Stream {
                gzip: true,
                steps: vec![Step::Send(posts([9])), Step::Hang],
            }
        }
    })
    .await;
    let (mut rx, handle) = spawn(config(&server.powertrack_url())).expect("spawn");
    let items = collect_until(&mut rx, n_records(1)).await;
    let backoffs: Vec<(Duration, FailureClass)> = events(&items)
        .into_iter()
        .filter_map(|e| match e {
            StreamEvent::BackingOff { delay, class, .. } => Some((*delay, *class)),
            _ => None,
        })
        .collect();
    let ms = Duration::from_millis;
    assert_eq!(
        backoffs,
        vec![
            (ms(40), FailureClass::RateLimited),
            (ms(80), FailureClass::RateLimited)
        ]
    );
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_401_stops_with_a_clear_message_without_the_password() {
    let server = Server::start(|_, _| Reply::Status(401, "Unauthorized")).await;
    let (mut rx, _handle) = spawn(config(&server.powertrack_url())).expect("spawn");
    let items = collect_until(&mut rx, |_| false).await; // until the channel closes
    let Some(StreamItem::Event(StreamEvent::Fatal(err))) = items.last() else {
        panic!("the last item must be Fatal: {items:?}")
    };
    assert!(err.is_fatal());
    let text = err.to_string();
    assert!(
        text.starts_with("HTTP 401 Unauthorized from http://127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("check the username and password"), "{text}");
    assert!(!text.contains(PASSWORD));
    assert!(!format!("{err:?} {items:?}").contains(PASSWORD));
    assert_eq!(server.requests().len(), 1, "a 401 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_disconnect_message_ends_the_connection_and_it_reconnects() {
    let server = Server::start(|n, _| {
        let mut body = posts([n as u64 * 10 + 1]);
        if n == 0 {
            body.extend_from_slice(
                b"{\"error\":{\"message\":\"Forced Disconnect: Too many connections. (Allowed Connections = 2)\",\"sent\":\"2024-03-04T10:00:07+00:00\"}}\r\n",
            );
        }
        // The server keeps the socket open: the client must act on the
        // message itself.
        Reply::Stream {
            gzip: true,
            steps: vec![Step::Send(body), Step::Hang],
        }
    })
    .await;
    let (mut rx, handle) = spawn(config(&server.powertrack_url())).expect("spawn");
    let items = collect_until(&mut rx, |items| record_ids(items).contains(&11)).await;
    assert_eq!(record_ids(&items), vec![1, 11]);
    assert_eq!(
        count(&items, |e| matches!(e, StreamEvent::SystemMessage { .. })),
        1
    );
    assert_eq!(
        count(&items, |e| matches!(e, StreamEvent::Connected { .. })),
        2
    );
    assert_eq!(handle.stats().system_messages, 1);
    // "Too many connections" waits like an HTTP error instead of evicting
    // the sibling connection at once.
    assert!(events(&items).iter().any(|e| matches!(
        e,
        StreamEvent::BackingOff {
            class: FailureClass::Http,
            ..
        }
    )));
    // The system message also travels as a record of its own kind.
    assert!(
        items
            .iter()
            .any(|i| matches!(i, StreamItem::Record(r) if r.kind == Kind::System))
    );
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_operational_disconnect_reconnects_at_once() {
    let server = Server::start(|n, _| {
        let mut body = posts([n as u64 + 1]);
        if n == 0 {
            body.extend_from_slice(
                br#"{"errors":[{"title":"operational-disconnect","disconnect_type":"OperationalDisconnect","detail":"This stream has been disconnected for operational reasons.","type":"https://api.x.com/2/problems/operational-disconnect"}]}"#,
            );
            body.extend_from_slice(b"\r\n");
        }
        Reply::Stream {
            gzip: false,
            steps: vec![Step::Send(body), Step::Hang],
        }
    })
    .await;
    let url = format!("{}/2/tweets/search/stream", server.base);
    let mut c = config(&url);
    c.credentials = Credentials::bearer("token");
    let (mut rx, handle) = spawn(c).expect("spawn");
    let items = collect_until(&mut rx, |items| {
        items
            .iter()
            .filter(|i| matches!(i, StreamItem::Record(_)))
            .count()
            >= 3
    })
    .await;
    // Two posts and the v2 error object, which is a system record.
    assert_eq!(record_ids(&items), vec![1, 2]);
    let backoffs: Vec<_> = events(&items)
        .into_iter()
        .filter_map(|e| match e {
            StreamEvent::BackingOff { delay, class, .. } => Some((*delay, *class)),
            _ => None,
        })
        .collect();
    assert_eq!(backoffs, vec![(Duration::ZERO, FailureClass::Network)]);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_are_reported_and_skipped() {
    let mut body = posts([1]);
    body.extend_from_slice(b"{\"data\":{\"id\":\"2\"\r\n");
    body.extend_from_slice(b"{\"brand_new\":{\"x\":1}}\r\n");
    body.extend_from_slice(&posts([3]));
    let server = Server::start(move |_, _| Reply::Stream {
        gzip: true,
        steps: vec![Step::Send(body.clone()), Step::Hang],
    })
    .await;
    let (mut rx, handle) = spawn(config(&server.powertrack_url())).expect("spawn");
    let items = collect_until(&mut rx, n_records(2)).await;
    assert_eq!(record_ids(&items), vec![1, 3]);
    let malformed = events(&items)
        .into_iter()
        .find_map(|e| match e {
            StreamEvent::Malformed { error, excerpt, .. } => Some((error.clone(), excerpt.clone())),
            _ => None,
        })
        .expect("malformed event");
    assert!(malformed.0.contains("malformed JSON"), "{}", malformed.0);
    assert_eq!(malformed.1, "{\"data\":{\"id\":\"2\"");
    assert_eq!(handle.stats().malformed, 1);
    // An unknown shape is not malformed: it travels on as a record.
    assert_eq!(handle.stats().unknown, 1);
    assert!(
        items
            .iter()
            .any(|i| matches!(i, StreamItem::Record(r) if r.kind == Kind::Unknown))
    );
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redundant_connections_yield_each_id_once() {
    let server = Server::start(|_, _| Reply::Stream {
        gzip: true,
        steps: vec![
            Step::Send(posts(1..=100)),
            Step::Send(posts(101..=200)),
            Step::Hang,
        ],
    })
    .await;
    let mut c = config(&server.powertrack_url());
    c.connections_per_partition = 2;
    let (mut rx, handle) = spawn(c).expect("spawn");
    let items = collect_until(&mut rx, |items| {
        count(items, |e| matches!(e, StreamEvent::DuplicateDropped { .. })) >= 200
    })
    .await;
    let ids = record_ids(&items);
    let unique: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 200);
    assert_eq!(unique, (1..=200).collect());
    assert_eq!(server.requests().len(), 2);
    let stats = handle.stats();
    assert_eq!((stats.records, stats.duplicates), (200, 200));
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_partitions_are_merged_into_one_stream() {
    let server = Server::start(|_, req| {
        let p: u64 = req
            .query("partition")
            .expect("partition")
            .parse()
            .expect("number");
        Reply::Stream {
            gzip: true,
            steps: vec![
                Step::Send(posts((1..=50).map(|i| p * 1000 + i))),
                Step::Hang,
            ],
        }
    })
    .await;
    let url = format!(
        "{}/stream/sample10/accounts/acme/publishers/twitter/prod.json",
        server.base
    );
    let (mut rx, handle) = spawn(config(&url)).expect("spawn");
    let items = collect_until(&mut rx, n_records(100)).await;
    let mut by_partition = [0usize; 3];
    for item in &items {
        if let StreamItem::Record(r) = item {
            let id = r.post_id.expect("post id");
            assert_eq!(
                u64::from(r.partition),
                id / 1000,
                "record from the wrong partition"
            );
            by_partition[usize::from(r.partition)] += 1;
        }
    }
    assert_eq!(by_partition, [0, 50, 50]);
    let mut parts: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.query("partition").expect("partition"))
        .collect();
    parts.sort();
    assert_eq!(parts, vec!["1", "2"]);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_asks_for_backfill_on_first_connect_and_drops_the_overlap() {
    let server = Server::start(|_, _| Reply::Stream {
        gzip: true,
        steps: vec![Step::Send(posts(1..=10)), Step::Hang],
    })
    .await;
    let mut c = config(&server.powertrack_url());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    c.resume = Some(Resume {
        last_record_at_ms: now_ms - 100_000,
        recent_post_ids: vec![1, 2, 3, 4],
    });
    let (mut rx, handle) = spawn(c).expect("spawn");
    let items = collect_until(&mut rx, n_records(6)).await;
    assert_eq!(record_ids(&items), vec![5, 6, 7, 8, 9, 10]);
    assert_eq!(
        server.requests()[0].query("backfillMinutes").as_deref(),
        Some("3")
    );
    assert!(events(&items).iter().any(|e| matches!(
        e,
        StreamEvent::Connected {
            backfill_minutes: Some(3),
            ..
        }
    )));
    assert_eq!(handle.stats().duplicates, 4);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_a_long_outage_reports_a_gap_instead_of_backfill() {
    let server = Server::start(|_, _| Reply::Stream {
        gzip: false,
        steps: vec![Step::Send(posts([1])), Step::Hang],
    })
    .await;
    let mut c = config(
        &Endpoint::v2(&server.base, gnip_client::Product::V2Filtered, None)
            .expect("v2")
            .to_string(),
    );
    c.credentials = Credentials::bearer("token");
    c.resume = Some(Resume {
        last_record_at_ms: 1_000,
        recent_post_ids: vec![],
    });
    let (mut rx, handle) = spawn(c).expect("spawn");
    let items = collect_until(&mut rx, n_records(1)).await;
    assert!(matches!(
        events(&items)[0],
        StreamEvent::GapNotBackfilled { from_ms: 1_000, .. }
    ));
    let req = &server.requests()[0];
    assert_eq!(req.query("backfill_minutes"), None);
    assert_eq!(req.header("authorization").as_deref(), Some("Bearer token"));
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_connections_and_ends_the_channel() {
    let server = Server::start(|_, _| Reply::Stream {
        gzip: true,
        steps: vec![Step::Send(posts([1, 2])), Step::Hang],
    })
    .await;
    let (mut rx, handle) = spawn(config(&server.powertrack_url())).expect("spawn");
    let items = collect_until(&mut rx, n_records(2)).await;
    assert_eq!(record_ids(&items), vec![1, 2]);
    handle.shutdown();
    let rest = collect_until(&mut rx, |_| false).await;
    assert!(
        rest.iter()
            .all(|i| !matches!(i, StreamItem::Event(StreamEvent::Fatal(_)))),
        "{rest:?}"
    );
    assert!(rx.recv().await.is_none());
}

/// A 70-second outage on Tokio's paused clock: the stream reconnects after
/// a 503 whose backoff is 70 s and asks for `backfillMinutes=3` (70 s
/// rounded up to 2 minutes, plus one).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn backfill_after_a_70_second_outage() {
    let server = Server::start(|n, _| match n {
        0 => Reply::Stream {
            gzip: true,
            steps: vec![Step::Send(posts([1, 2])), Step::End],
        },
        1 => Reply::Status(503, "Service Unavailable"),
        _ => Reply::Stream {
            gzip: true,
            steps: vec![Step::Send(posts([2, 3])), Step::Hang],
        },
    })
    .await;
    let mut c = config(&server.powertrack_url());
    c.clock = gnip_client::Clock::Runtime;
    c.backoff = BackoffConfig {
        http_initial: Duration::from_secs(70),
        jitter: 0.0,
        ..BackoffConfig::default()
    };
    // Auto-advancing time must not fire these while the loopback I/O is
    // in flight.
    c.stall_timeout = Duration::from_secs(3600);
    c.connect_timeout = Duration::from_secs(3600);
    c.healthy_after = Duration::from_secs(3600);
    let (mut rx, handle) = spawn(c).expect("spawn");
    let items = collect_within(&mut rx, Duration::from_secs(3600), n_records(3)).await;
    assert_eq!(record_ids(&items), vec![1, 2, 3]);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[0].query("backfillMinutes"), None);
    // The immediate retry after the drop got the 503; it asked for backfill
    // of the (near-zero) outage so far.
    assert_eq!(reqs[1].query("backfillMinutes").as_deref(), Some("1"));
    assert_eq!(reqs[2].query("backfillMinutes").as_deref(), Some("3"));
    assert_eq!(handle.stats().duplicates, 1);
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_backfill_every_outage_is_reported_as_a_gap() {
    let server = Server::start(|n, _| Reply::Stream {
        gzip: true,
        steps: vec![
            Step::Send(posts([n as u64 + 1])),
            if n == 0 { Step::End } else { Step::Hang },
        ],
    })
    .await;
    let mut c = config(&server.powertrack_url());
    c.backfill = false;
    let (mut rx, handle) = spawn(c).expect("spawn");
    let items = collect_until(&mut rx, n_records(2)).await;
    assert_eq!(record_ids(&items), vec![1, 2]);
    assert_eq!(
        count(&items, |e| matches!(
            e,
            StreamEvent::GapNotBackfilled { .. }
        )),
        1
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.query("backfillMinutes").is_none())
    );
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_receiver_closes_a_quiet_connection() {
    let server = Server::start(|_, _| Reply::Stream {
        gzip: true,
        steps: vec![Step::Send(posts([1])), Step::Hang],
    })
    .await;
    let (mut rx, handle) = spawn(config(&server.powertrack_url())).expect("spawn");
    collect_until(&mut rx, n_records(1)).await;
    drop(rx);
    // The server's `Hang` step ends when the client closes the socket; a
    // second request would mean the client reconnected instead.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.closed() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(server.closed(), 1, "the connection was not closed");
    assert_eq!(server.requests().len(), 1);
    assert_eq!(handle.stats().records, 1);
}

/// Backoff delays seen before the third record arrives, with connections
/// that live 150 ms each and then drop.
async fn delays_with_healthy_after(healthy_after: Duration) -> Vec<Duration> {
    let server = Server::start(|n, _| Reply::Stream {
        gzip: true,
        steps: vec![
            Step::Send(posts([n as u64 + 1])),
            Step::Sleep(Duration::from_millis(150)),
            Step::Drop,
        ],
    })
    .await;
    let mut c = config(&server.powertrack_url());
    c.healthy_after = healthy_after;
    let (mut rx, handle) = spawn(c).expect("spawn");
    let items = collect_until(&mut rx, n_records(3)).await;
    handle.shutdown();
    events(&items)
        .into_iter()
        .filter_map(|e| match e {
            StreamEvent::BackingOff { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_connections_reset_the_backoff() {
    // Each connection outlives `healthy_after`: every drop is retried at once.
    assert_eq!(
        delays_with_healthy_after(Duration::from_millis(30)).await,
        vec![Duration::ZERO, Duration::ZERO]
    );
    // Never healthy: the immediate retry is not granted twice in a row.
    assert_eq!(
        delays_with_healthy_after(Duration::from_secs(60)).await,
        vec![Duration::ZERO, Duration::from_millis(5)]
    );
}
