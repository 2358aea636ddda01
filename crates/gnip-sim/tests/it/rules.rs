//! The PowerTrack 2.0 and v2 rules APIs: round trips, limits, error shapes,
//! serialisation, and the stream's `matching_rules` following the rules.

use std::time::Duration;

use gnip_sim::{SimConfig, SimHandle};
use serde_json::{Value, json};

use crate::support::{Wire, basic, bearer, client, json, sim};

async fn pt(h: &SimHandle, url: &str, body: Option<Value>) -> (u16, Value) {
    let c = client();
    let req = match body {
        Some(b) => c
            .post(url)
            .header("Content-Type", "application/json")
            .body(b.to_string()),
        None => c.get(url),
    };
    let resp = req
        .header("Authorization", basic(h.config()))
        .send()
        .await
        .expect("request");
    (resp.status().as_u16(), json(resp).await)
}

async fn v2(h: &SimHandle, query: &str, body: Option<Value>) -> (u16, Value) {
    let c = client();
    let url = format!("{}{query}", h.v2_rules_url());
    let req = match body {
        Some(b) => c
            .post(url)
            .header("Content-Type", "application/json")
            .body(b.to_string()),
        None => c.get(url),
    };
    let resp = req
        .header("Authorization", bearer(h.config()))
        .send()
        .await
        .expect("request");
    (resp.status().as_u16(), json(resp).await)
}

fn values(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|r| r["value"].as_str().expect("value").to_string())
        .collect()
}

#[tokio::test]
async fn powertrack_rules_round_trip() {
    let h = sim(SimConfig::default()).await;
    let url = h.rules_url();
    let (s, list) = pt(&h, &url, None).await;
    assert_eq!(s, 200);
    assert_eq!(
        values(&list["rules"]),
        ["coffee OR tea", "(rain OR snow) lang:en", "#rustlang"]
    );
    let first = &list["rules"][0];
    assert_eq!(
        first["id"].as_u64().expect("numeric id").to_string(),
        first["id_str"].as_str().expect("id_str")
    );
    assert!(list["sent"].is_string());

    let (s, added) = pt(&h, &url, Some(json!({"rules": [
        {"value": "kaffee", "tag": "de"}, {"value": "coffee OR tea", "tag": "again"}, {"value": "pluie"}
    ]}))).await;
    assert_eq!(s, 201);
    assert_eq!(added["summary"], json!({"created": 2, "not_created": 1}));
    assert_eq!(added["detail"][1]["created"], false);
    assert_eq!(
        added["detail"][1]["message"],
        "A rule with this value already exists"
    );
    let kaffee_id = added["detail"][0]["rule"]["id"].as_u64().expect("id");

    let (s, one) = pt(
        &h,
        &url.replace("prod.json", &format!("prod/rules/{kaffee_id}.json")),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(one["rules"][0]["tag"], "de");
    let (s, got) = pt(
        &h,
        &format!("{url}?_method=get"),
        Some(json!({"rule_ids": [kaffee_id]})),
    )
    .await;
    assert_eq!(
        (s, values(&got["rules"])),
        (200, vec!["kaffee".to_string()])
    );

    let (s, del) = pt(
        &h,
        &format!("{url}?_method=delete"),
        Some(json!({"rules": [{"value": "pluie"}, {"value": "nope"}]})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(del["summary"], json!({"deleted": 1, "not_deleted": 1}));
    assert_eq!(del["detail"][0]["message"], "Rule does not exist");
    let (s, del) = pt(
        &h,
        &format!("{url}?_method=delete"),
        Some(json!({"rule_ids": [kaffee_id]})),
    )
    .await;
    assert_eq!(
        (s, &del["summary"]),
        (200, &json!({"deleted": 1, "not_deleted": 0}))
    );
    let (_, list) = pt(&h, &url, None).await;
    assert_eq!(values(&list["rules"]).len(), 3);
}

#[tokio::test]
async fn one_invalid_rule_rejects_the_whole_batch() {
    let h = sim(SimConfig::default()).await;
    let url = h.rules_url();
    let long = "x".repeat(2049);
    let (s, body) = pt(
        &h,
        &url,
        Some(json!({"rules": [{"value": "fine"}, {"value": "(broken"}]})),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(body["summary"], json!({"created": 0, "not_created": 2}));
    assert!(
        body["detail"][1]["message"]
            .as_str()
            .expect("message")
            .contains("parenthesis")
    );
    let (s, _) = pt(&h, &url, Some(json!({"rules": [{"value": long}]}))).await;
    assert_eq!(s, 422);
    let (s, _) = pt(
        &h,
        &url,
        Some(json!({"rules": [{"value": "ok", "tag": "t".repeat(256)}]})),
    )
    .await;
    assert_eq!(s, 422);
    let (_, list) = pt(&h, &url, None).await;
    assert!(
        !values(&list["rules"]).contains(&"fine".to_string()),
        "nothing was created"
    );

    let (s, v) = pt(
        &h,
        &h.rules_validation_url(),
        Some(json!({"rules": [{"value": "ok"}, {"value": "bogus:op"}]})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["summary"], json!({"valid": 1, "not_valid": 1}));
    assert_eq!(v["detail"][1]["valid"], false);

    let resp = client()
        .post(&url)
        .header("Authorization", basic(h.config()))
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 400);
    assert!(
        json(resp).await["error"]["message"]
            .as_str()
            .expect("message")
            .starts_with("Invalid JSON")
    );
    let resp = client().get(&url).send().await.expect("request");
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn the_rule_limit_and_serialisation_are_enforced() {
    let h = sim(SimConfig {
        rule_limit: 4,
        rules_latency: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    let url = h.rules_url();
    let (s, body) = pt(
        &h,
        &url,
        Some(json!({"rules": [{"value": "a"}, {"value": "b"}]})),
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("Rule Limit")
    );
    // Two requests at once: the second is refused while the first is processed.
    let (a, b) = tokio::join!(pt(&h, &url, None), pt(&h, &url, None));
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429]);
}

#[tokio::test]
async fn stream_records_carry_the_current_rules() {
    let h = sim(SimConfig {
        rate: None,
        ..SimConfig::default()
    })
    .await;
    let url = h.rules_url();
    let (_, list) = pt(&h, &url, None).await;
    let old: Vec<u64> = list["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["id"].as_u64().expect("id"))
        .collect();
    let (_, added) = pt(
        &h,
        &url,
        Some(json!({"rules": [{"value": "zebra", "tag": "only"}]})),
    )
    .await;
    let id = added["detail"][0]["rule"]["id_str"]
        .as_str()
        .expect("id")
        .to_string();
    let (s, _) = pt(
        &h,
        &format!("{url}?_method=delete"),
        Some(json!({"rule_ids": old})),
    )
    .await;
    assert_eq!(s, 200);
    let mut w = Wire::enterprise(&h, &h.powertrack_url()).await;
    for r in w.records(50).await {
        let v: Value = serde_json::from_str(&r).expect("JSON");
        assert_eq!(
            v["matching_rules"],
            json!([{"tag": "only", "id": id.parse::<u64>().expect("id"), "id_str": id}])
        );
    }
}

#[tokio::test]
async fn v2_rules_round_trip() {
    let h = sim(SimConfig::default()).await;
    let (s, list) = v2(&h, "", None).await;
    assert_eq!(s, 200);
    assert_eq!(list["meta"]["result_count"], 3);
    assert!(list["data"][0]["id"].is_string());

    let (s, added) = v2(
        &h,
        "",
        Some(json!({"add": [{"value": "cat has:images", "tag": "cats"}, {"value": "#rustlang"}]})),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(added["meta"]["summary"]["created"], 1);
    assert_eq!(added["meta"]["summary"]["not_created"], 1);
    assert_eq!(added["errors"][0]["title"], "DuplicateRule");
    let cat_id = added["data"][0]["id"]
        .as_str()
        .expect("string id")
        .to_string();
    assert!(cat_id.len() <= 19);

    let (s, dry) = v2(
        &h,
        "?dry_run=true",
        Some(json!({"add": [{"value": "dog"}]})),
    )
    .await;
    assert_eq!((s, &dry["meta"]["summary"]["created"]), (201, &json!(1)));
    let (_, list) = v2(&h, "", None).await;
    assert_eq!(list["meta"]["result_count"], 4, "a dry run changes nothing");

    let (s, bad) = v2(
        &h,
        "",
        Some(json!({"add": [{"value": "ok"}, {"value": "(unbalanced"}]})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(bad["meta"]["summary"]["invalid"], 1);
    assert_eq!(bad["errors"][0]["value"], "(unbalanced");

    let (_, one) = v2(&h, &format!("?ids={cat_id}"), None).await;
    assert_eq!(values(&one["data"]), ["cat has:images"]);
    let (s, del) = v2(&h, "", Some(json!({"delete": {"ids": [cat_id, "1"]}}))).await;
    assert_eq!(s, 200);
    assert_eq!(
        del["meta"]["summary"],
        json!({"deleted": 1, "not_deleted": 1})
    );
    let (_, del) = v2(&h, "", Some(json!({"delete": {"values": ["#rustlang"]}}))).await;
    assert_eq!(del["meta"]["summary"]["deleted"], 1);

    let counts = json(
        client()
            .get(format!("{}/counts", h.v2_rules_url()))
            .header("Authorization", bearer(h.config()))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(counts["data"]["project_rules_count"], 2);

    let (s, all) = v2(&h, "?delete_all=true", Some(json!({}))).await;
    assert_eq!((s, &all["meta"]["summary"]["deleted"]), (200, &json!(2)));
    let (_, list) = v2(&h, "", None).await;
    assert_eq!(list["meta"]["result_count"], 0);
    assert!(list.get("data").is_none());

    let resp = client()
        .get(h.v2_rules_url())
        .header("Authorization", basic(h.config()))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 401, "v2 wants a bearer token");
}
