//! Every real payload under `tests/data/real` classifies to the right kind
//! with the right ids. Ids are cross-checked against a second, independent
//! parse (serde_json's tree, which keeps integers exact) and a hand-checked
//! sample is pinned.

use std::path::{Path, PathBuf};

use gnip_client::{ComplianceKind, Format, Kind, Level, Message, Verb, classify};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real")
}

/// Every object in the fixture set: (relative path, line number, bytes).
fn objects() -> Vec<(String, usize, Vec<u8>)> {
    let root = data_dir();
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("fixture dir readable") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(&root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).expect("fixture readable");
            match path.extension().and_then(|e| e.to_str()) {
                Some("json") => out.push((rel, 0, bytes)),
                Some("jsonl") => {
                    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                        if !line.is_empty() {
                            out.push((rel.clone(), i, line.to_vec()));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out.sort();
    out
}

fn expected_kind(rel: &str) -> Kind {
    match rel {
        r if r.starts_with("activity-streams/") => Kind::Activity,
        r if r.starts_with("original/compliance/") => Kind::Compliance,
        "original/system/hbc_scrub_geo.json" | "original/system/hbc_status_deletion.json" => {
            Kind::Compliance
        }
        r if r.starts_with("original/system/") => Kind::System,
        r if r.starts_with("original/") => Kind::Activity,
        r if r.starts_with("v2/filtered-stream/") => Kind::Activity,
        // Response pages (`data` is a list) and batch-compliance result
        // lines are not stream messages.
        r if r.starts_with("v2/") => Kind::Unknown,
        other => panic!("fixture not covered by the expectations: {other}"),
    }
}

/// The post id by an independent route: a full JSON tree.
fn tree_post_id(v: &serde_json::Value) -> Option<u64> {
    let suffix = |s: &str| s.rsplit(':').next().and_then(|d| d.parse().ok());
    if let Some(d) = v.get("data") {
        return d.get("id")?.as_str()?.parse().ok();
    }
    if v.get("objectType").is_some() {
        return suffix(v.get("id")?.as_str()?);
    }
    v.get("id_str")?.as_str()?.parse().ok()
}

#[test]
fn every_fixture_classifies_to_its_kind_with_the_right_post_id() {
    let all = objects();
    assert!(all.len() >= 180, "fixtures missing: {}", all.len());
    let mut activities = 0;
    for (rel, line, bytes) in &all {
        let msg = classify(bytes).unwrap_or_else(|e| panic!("{rel}:{line}: {e}"));
        assert_eq!(msg.kind(), expected_kind(rel), "{rel}:{line}");
        if let Message::Activity(a) = &msg {
            activities += 1;
            let tree: serde_json::Value = serde_json::from_slice(bytes).expect("valid JSON");
            assert_eq!(Some(a.post_id), tree_post_id(&tree), "{rel}:{line}");
            assert!(a.posted_at_ms.is_some(), "{rel}:{line}: no time");
            let rules_in_tree = tree
                .get("gnip")
                .and_then(|g| g.get("matching_rules"))
                .or(tree.get("matching_rules"))
                .and_then(|r| r.as_array())
                .map_or(0, Vec::len);
            assert_eq!(a.matching_rules.len(), rules_in_tree, "{rel}:{line}");
        }
    }
    // 117 Activity Streams + 46 original + 4 v2 (PROVENANCE.md totals).
    assert_eq!(activities, 167);
}

/// One fixture object, leaked so that borrowed messages can outlive the
/// statement that classified them.
fn one(rel: &str, line: usize) -> &'static [u8] {
    let bytes = objects()
        .into_iter()
        .find(|(r, l, _)| r == rel && *l == line)
        .unwrap_or_else(|| panic!("no fixture {rel}:{line}"))
        .2;
    Box::leak(bytes.into_boxed_slice())
}

#[test]
fn hand_checked_activity_streams_retweet() {
    let bytes = one("activity-streams/tweet-updates/classic__retweet.json", 0);
    let Ok(Message::Activity(a)) = classify(bytes) else {
        panic!("not an activity")
    };
    assert_eq!(a.format, Format::ActivityStreams);
    assert_eq!(a.verb, Verb::Share);
    assert_eq!(a.post_id, 758013561356419072);
    assert_eq!(a.author_id, Some(16453479));
    assert_eq!(a.retweeted_id, Some(757659435292504064));
    assert_eq!(a.posted_at_ms, Some(1_469_559_490_000));
    assert_eq!(a.lang.as_deref(), Some("en"));
}

#[test]
fn hand_checked_original_retweet_and_quote() {
    let bytes = one("original/tweet-updates/classic__retweet.json", 0);
    let Ok(Message::Activity(a)) = classify(bytes) else {
        panic!("not an activity")
    };
    assert_eq!((a.format, a.verb), (Format::Original, Verb::Share));
    assert_eq!(a.post_id, 758013561356419072);
    assert_eq!(a.author_id, Some(16453479));
    assert_eq!(a.retweeted_id, Some(757659435292504064));
    assert_eq!(a.posted_at_ms, Some(1_469_559_490_000));

    let bytes = one("original/tweet_parser_original_format.jsonl", 1);
    let Ok(Message::Activity(a)) = classify(bytes) else {
        panic!("not an activity")
    };
    assert_eq!(a.post_id, 872836479608733696);
    assert_eq!(a.author_id, Some(815279070241955840));
    assert_eq!(a.quoted_id, Some(872836379595620353));
    assert_eq!(a.posted_at_ms, Some(1_496_935_407_000));
    assert_eq!(a.matching_rules.len(), 1);
    assert_eq!(
        (a.matching_rules[0].id, a.matching_rules[0].tag.as_deref()),
        (None, None)
    );
}

#[test]
fn hand_checked_v2_line_with_numeric_rule_id() {
    let bytes = one(
        "v2/filtered-stream/twarc_csv_filtered_stream_2021-04-01.jsonl",
        0,
    );
    let Ok(Message::Activity(a)) = classify(bytes) else {
        panic!("not an activity")
    };
    assert_eq!(a.format, Format::V2);
    assert_eq!(a.post_id, 1377650090978992134);
    assert_eq!(a.author_id, Some(4602771083));
    assert_eq!(a.quoted_id, Some(1377640162566496258));
    assert_eq!(a.posted_at_ms, Some(1_617_292_351_000));
    // Beyond 2^53: exact only if never read through f64.
    assert_eq!(a.matching_rules[0].id, Some(1377649934414049282));
}

#[test]
fn hand_checked_powertrack_1_rule_value() {
    let bytes = one(
        "activity-streams/gnip4j/powertrack_v1_66216303899328514.json",
        0,
    );
    let Ok(Message::Activity(a)) = classify(bytes) else {
        panic!("not an activity")
    };
    assert_eq!(a.post_id, 66216303899328514);
    assert_eq!(a.author_id, Some(130153085));
    assert_eq!(a.posted_at_ms, Some(1_304_622_171_000));
    assert_eq!(a.lang.as_deref(), Some("en"));
    assert_eq!(a.matching_rules[0].value.as_deref(), Some("coke"));
}

#[test]
fn hand_checked_compliance_and_system_messages() {
    let file = "original/compliance/gnip4j_compliance_firehose_messages.jsonl";
    let expect = [
        (
            ComplianceKind::Delete,
            Some(601430178305220600),
            Some(3198576760),
            1432228155593,
        ),
        (
            ComplianceKind::UserDelete,
            None,
            Some(771136850),
            1432228153548,
        ),
        (
            ComplianceKind::UserUndelete,
            None,
            Some(796250066),
            1432228149062,
        ),
        (
            ComplianceKind::UserProtect,
            None,
            Some(3182003550),
            1432228177137,
        ),
        (
            ComplianceKind::UserUnprotect,
            None,
            Some(2911076065),
            1432228180113,
        ),
        (
            ComplianceKind::StatusWithheld,
            Some(787218718879342592),
            Some(2308560145),
            1476731813446,
        ),
    ];
    for (i, (kind, post, user, at)) in expect.into_iter().enumerate() {
        let bytes = one(file, i);
        let Ok(Message::Compliance(c)) = classify(bytes) else {
            panic!("line {i} not compliance")
        };
        assert_eq!(
            (c.kind, c.post_id, c.user_id, c.at_ms),
            (kind, post, user, Some(at)),
            "line {i}"
        );
    }
    let withheld = one(file, 5);
    let Ok(Message::Compliance(c)) = classify(withheld) else {
        panic!("not compliance")
    };
    assert_eq!(c.withheld_in_countries.as_slice(), ["xy"]);

    let Ok(Message::Compliance(c)) = classify(one("original/system/hbc_scrub_geo.json", 0)) else {
        panic!("not compliance")
    };
    assert_eq!(
        (c.kind, c.user_id, c.up_to_post_id),
        (ComplianceKind::ScrubGeo, Some(14090452), Some(23260136625))
    );

    let Ok(Message::Compliance(c)) = classify(one("original/system/hbc_status_deletion.json", 0))
    else {
        panic!("not compliance")
    };
    assert_eq!(
        (c.kind, c.post_id, c.user_id),
        (ComplianceKind::Delete, Some(1234), Some(3))
    );

    let Ok(Message::System(s)) = classify(one("original/system/twitter4j_stall_warning.json", 0))
    else {
        panic!("not system")
    };
    assert_eq!(s.level, Level::Warn);
    assert!(s.message.contains("falling behind"));

    let Ok(Message::System(s)) = classify(one("original/system/hbc_limit.json", 0)) else {
        panic!("not system")
    };
    assert!(s.message.contains("1234"));

    let Ok(Message::System(s)) = classify(one("original/system/hbc_disconnect_message.json", 0))
    else {
        panic!("not system")
    };
    assert_eq!(s.level, Level::Error);
    assert!(s.disconnect.is_some());
}
