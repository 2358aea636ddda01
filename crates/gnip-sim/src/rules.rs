//! Rules: the stateful rule sets of the PowerTrack stream (and its Replay
//! twin) and of the v2 filtered stream, the matcher that decides which rules
//! a generated record matches, and the two rules APIs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::config::Format;
use crate::template::{Template, rule_json};

/// Longest rule value the APIs accept, in characters.
pub(crate) const MAX_VALUE_CHARS: usize = 2048;
/// Longest tag, in characters.
pub(crate) const MAX_TAG_CHARS: usize = 255;

/// One rule as stored.
#[derive(Debug)]
pub(crate) struct Rule {
    pub id: u64,
    pub value: String,
    pub tag: Option<String>,
    terms: Vec<String>,
}

/// An immutable snapshot of a rule set; replaced whole on every change.
#[derive(Debug, Default)]
pub(crate) struct RuleSet {
    pub version: u64,
    pub rules: Vec<Arc<Rule>>,
}

impl RuleSet {
    /// The `[...]` matching-rules array for a record made from `tmpl`:
    /// every rule with a plain term found in the record's text, or, when
    /// none is, one rule picked by the template's position. Empty when the
    /// set is empty.
    pub(crate) fn matching(&self, tmpl: &Template, format: Format) -> Bytes {
        if self.rules.is_empty() {
            return Bytes::new();
        }
        let mut hits: Vec<&Arc<Rule>> = self
            .rules
            .iter()
            .filter(|r| r.terms.iter().any(|t| tmpl.match_text.contains(t.as_str())))
            .collect();
        if hits.is_empty() {
            hits.push(&self.rules[tmpl.index % self.rules.len()]);
        }
        let items: Vec<String> = hits
            .iter()
            .map(|r| rule_json(format, r.id, r.tag.as_deref()))
            .collect();
        Bytes::from(format!("[{}]", items.join(",")))
    }
}

/// The plain words of a rule value, lower-cased: what the matcher looks for.
/// Operators (`lang:en`), negations and the `OR` keyword are not words.
fn terms(value: &str) -> Vec<String> {
    value
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|t| !t.is_empty() && *t != "OR" && !t.starts_with('-') && !t.contains(':'))
        .map(|t| t.trim_matches('"').to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Why a rule is invalid, in the API's words; `None` when it is valid.
pub(crate) fn invalid_reason(value: &str, tag: Option<&str>) -> Option<String> {
    let v = value.trim();
    if v.is_empty() {
        return Some("Rule value must not be empty.".into());
    }
    if value.chars().count() > MAX_VALUE_CHARS {
        return Some(format!(
            "Rule value exceeds the maximum length of {MAX_VALUE_CHARS} characters."
        ));
    }
    if tag.is_some_and(|t| t.chars().count() > MAX_TAG_CHARS) {
        return Some(format!(
            "Rule tag exceeds the maximum length of {MAX_TAG_CHARS} characters."
        ));
    }
    let mut depth = 0i32;
    let mut quoted = false;
    for c in v.chars() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth < 0 {
                    return Some("Unmatched closing parenthesis.".into());
                }
            }
            _ => {}
        }
    }
    if quoted {
        return Some("Unterminated quoted phrase.".into());
    }
    if depth != 0 {
        return Some("Unmatched opening parenthesis.".into());
    }
    let words: Vec<&str> = v.split_whitespace().collect();
    if words.first() == Some(&"OR") || words.last() == Some(&"OR") {
        return Some("OR must join two clauses.".into());
    }
    if words
        .iter()
        .all(|w| w.trim_start_matches('(').starts_with('-'))
    {
        return Some("Rules must contain at least one positive, non-stopword clause.".into());
    }
    for w in &words {
        let w = w.trim_start_matches(['(', '-']);
        if let Some((op, _)) = w.split_once(':')
            && !w.starts_with('"')
            && !KNOWN_OPERATORS.contains(&op)
        {
            return Some(format!("Reference to invalid operator '{op}'."));
        }
    }
    None
}

const KNOWN_OPERATORS: [&str; 24] = [
    "lang",
    "from",
    "to",
    "retweets_of",
    "url",
    "url_title",
    "url_description",
    "place",
    "place_country",
    "bio",
    "bio_name",
    "bio_location",
    "has",
    "is",
    "point_radius",
    "bounding_box",
    "sample",
    "followers_count",
    "statuses_count",
    "friends_count",
    "listed_count",
    "source",
    "profile_country",
    "in_reply_to_status_id",
];

/// One stream's rules, changed through its API and read by its timelines.
#[derive(Debug)]
pub(crate) struct RuleStore {
    set: Mutex<Arc<RuleSet>>,
    /// Held for the duration of one rules request; a second request that
    /// finds it taken is refused, as the real API refuses concurrent ones.
    pub(crate) busy: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
    pub(crate) limit: usize,
}

/// A rule to add: value and optional tag.
pub(crate) type NewRule = (String, Option<String>);

impl RuleStore {
    pub(crate) fn new(initial: &[NewRule], seed: u64, limit: usize) -> Self {
        // Rule ids look like real ones: 19 digits, below 2^63.
        let base = 1_700_000_000_000_000_000 + (seed % 1_000_000) * 1_000_000_000;
        let store = RuleStore {
            set: Mutex::new(Arc::new(RuleSet::default())),
            busy: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(base),
            limit,
        };
        store.add(initial);
        store
    }

    pub(crate) fn snapshot(&self) -> Arc<RuleSet> {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds rules whose value is new; returns, per input, the rule created
    /// or the existing one with the same value. Limits are checked by the
    /// caller.
    pub(crate) fn add(&self, rules: &[NewRule]) -> Vec<(Arc<Rule>, bool)> {
        let mut guard = self.set.lock().unwrap_or_else(|p| p.into_inner());
        let mut list = guard.rules.clone();
        let mut out = Vec::with_capacity(rules.len());
        for (value, tag) in rules {
            if let Some(existing) = list.iter().find(|r| &r.value == value) {
                out.push((existing.clone(), false));
                continue;
            }
            let rule = Arc::new(Rule {
                id: self.next_id.fetch_add(7919, Ordering::Relaxed),
                value: value.clone(),
                tag: tag.clone(),
                terms: terms(value),
            });
            list.push(rule.clone());
            out.push((rule, true));
        }
        *guard = Arc::new(RuleSet {
            version: guard.version + 1,
            rules: list,
        });
        out
    }

    /// Removes the rules `pred` selects; returns them.
    pub(crate) fn remove(&self, pred: impl Fn(&Rule) -> bool) -> Vec<Arc<Rule>> {
        let mut guard = self.set.lock().unwrap_or_else(|p| p.into_inner());
        let (gone, kept): (Vec<_>, Vec<_>) = guard.rules.iter().cloned().partition(|r| pred(r));
        if !gone.is_empty() {
            *guard = Arc::new(RuleSet {
                version: guard.version + 1,
                rules: kept,
            });
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::TemplateBuilder;
    use crate::wire::segment_compressor;

    fn tmpl(index: usize, text: &str) -> Template {
        let mut b = TemplateBuilder::default();
        b.text("{}");
        b.build(index, 1, text.into(), &mut segment_compressor())
    }

    #[test]
    fn terms_skip_operators_and_negations() {
        assert_eq!(
            terms("(rain OR snow) lang:en -sun \"Hot Tea\""),
            ["rain", "snow", "hot", "tea"]
        );
    }

    #[test]
    fn records_match_rules_by_text_or_by_a_deterministic_pick() {
        let store = RuleStore::new(
            &[
                ("coffee".into(), Some("drinks".into())),
                ("rain".into(), None),
            ],
            1,
            10,
        );
        let set = store.snapshot();
        let ids: Vec<u64> = set.rules.iter().map(|r| r.id).collect();
        let m = set.matching(&tmpl(0, "Coffee in the rain"), Format::V2);
        assert_eq!(
            m,
            format!(
                "[{{\"id\":\"{}\",\"tag\":\"drinks\"}},{{\"id\":\"{}\",\"tag\":null}}]",
                ids[0], ids[1]
            )
        );
        let picked = set.matching(&tmpl(3, "nothing relevant"), Format::Original);
        assert!(String::from_utf8_lossy(&picked).contains(&ids[1].to_string()));
        assert!(
            RuleStore::new(&[], 1, 10)
                .snapshot()
                .matching(&tmpl(0, "coffee"), Format::V2)
                .is_empty()
        );
    }

    #[test]
    fn duplicates_are_not_created_and_removal_bumps_the_version() {
        let store = RuleStore::new(&[("a".into(), None)], 1, 10);
        let out = store.add(&[("a".into(), None), ("b".into(), Some("t".into()))]);
        assert_eq!(
            out.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
            [false, true]
        );
        let v = store.snapshot().version;
        assert_eq!(store.remove(|r| r.value == "a").len(), 1);
        assert_eq!(store.snapshot().version, v + 1);
        assert!(store.remove(|r| r.value == "zzz").is_empty());
    }

    #[test]
    fn invalid_rules_are_explained() {
        assert!(invalid_reason("coffee OR tea", None).is_none());
        assert!(invalid_reason("(rain OR snow) lang:en", Some("w")).is_none());
        for bad in [
            "",
            "(unbalanced",
            "closing)",
            "\"open phrase",
            "OR tea",
            "-only -negative",
            "bogus:op",
        ] {
            assert!(invalid_reason(bad, None).is_some(), "{bad:?}");
        }
        assert!(invalid_reason(&"x".repeat(2049), None).is_some());
        assert!(invalid_reason("ok", Some(&"t".repeat(256))).is_some());
    }
}

// ---- the APIs ----

mod api {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::{NewRule, Rule, RuleStore, invalid_reason};
    use crate::http::{self, Request};
    use crate::route::RulesOp;
    use crate::server::{Shared, authorized, enterprise_error, unauthorized, v2_problem};
    use crate::time::{iso_millis, now_ms};

    fn sent() -> String {
        iso_millis(now_ms())
    }

    fn pt_rule(r: &Rule) -> Value {
        json!({"value": r.value, "tag": r.tag, "id": r.id, "id_str": r.id.to_string()})
    }

    fn v2_rule(r: &Rule) -> Value {
        let mut v = json!({"id": r.id.to_string(), "value": r.value});
        if let Some(t) = &r.tag {
            v["tag"] = json!(t);
        }
        v
    }

    /// Reads `{"rules":[{"value":..,"tag":..}]}` entries.
    fn new_rules(list: &Value) -> Option<Vec<NewRule>> {
        list.as_array()?
            .iter()
            .map(|r| {
                let value = r.get("value")?.as_str()?.to_string();
                let tag = match r.get("tag") {
                    None | Some(Value::Null) => None,
                    Some(t) => Some(t.as_str()?.to_string()),
                };
                Some((value, tag))
            })
            .collect()
    }

    fn ids(list: &Value) -> Option<Vec<u64>> {
        list.as_array()?
            .iter()
            .map(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .collect()
    }

    async fn serialised<'a>(
        shared: &Shared,
        store: &'a RuleStore,
    ) -> Option<tokio::sync::MutexGuard<'a, ()>> {
        let guard = store.busy.try_lock().ok()?;
        if !shared.config.rules_latency.is_zero() {
            tokio::time::sleep(shared.config.rules_latency).await;
        }
        Some(guard)
    }

    /// The PowerTrack 2.0 rules API.
    pub(crate) async fn powertrack_api(
        shared: &Shared,
        req: &Request,
        replay: bool,
        op: RulesOp,
    ) -> Vec<u8> {
        let ka = req.keep_alive;
        if !authorized(&shared.config, req, false) {
            return unauthorized(false, ka);
        }
        let store: &Arc<RuleStore> = if replay {
            &shared.pt_replay_rules
        } else {
            &shared.pt_rules
        };
        let Some(_busy) = serialised(shared, store).await else {
            return enterprise_error(
                429,
                "Rules requests for a stream are processed one at a time; another request is in progress.",
                ka,
            );
        };
        let body = || -> Result<Value, Vec<u8>> {
            serde_json::from_slice(&req.body).map_err(|e| {
                enterprise_error(
                    400,
                    &format!("Invalid JSON. The request body could not be parsed: {e}."),
                    ka,
                )
            })
        };
        let method = req.param("_method").unwrap_or("").to_ascii_lowercase();
        match (req.method.as_str(), &op, method.as_str()) {
            ("GET", RulesOp::Base, _) => {
                let set = store.snapshot();
                let rules: Vec<Value> = set.rules.iter().map(|r| pt_rule(r)).collect();
                http::json(200, &json!({"rules": rules, "sent": sent()}), ka)
            }
            ("GET", RulesOp::One(id), _) => {
                let set = store.snapshot();
                match set.rules.iter().find(|r| r.id.to_string() == *id) {
                    Some(r) => http::json(200, &json!({"rules": [pt_rule(r)], "sent": sent()}), ka),
                    None => enterprise_error(404, "Rule does not exist.", ka),
                }
            }
            ("POST", RulesOp::Base, "get") => {
                let v = match body() {
                    Ok(v) => v,
                    Err(r) => return r,
                };
                let Some(wanted) = v.get("rule_ids").and_then(ids) else {
                    return enterprise_error(400, "Expected a 'rule_ids' array.", ka);
                };
                let set = store.snapshot();
                let rules: Vec<Value> = set
                    .rules
                    .iter()
                    .filter(|r| wanted.contains(&r.id))
                    .map(|r| pt_rule(r))
                    .collect();
                http::json(200, &json!({"rules": rules, "sent": sent()}), ka)
            }
            ("POST", RulesOp::Base, "delete") | ("DELETE", RulesOp::Base, _) => {
                let v = match body() {
                    Ok(v) => v,
                    Err(r) => return r,
                };
                pt_delete(store, &v, ka)
            }
            ("POST", RulesOp::Base, "") => {
                let v = match body() {
                    Ok(v) => v,
                    Err(r) => return r,
                };
                let Some(rules) = v.get("rules").and_then(new_rules) else {
                    return enterprise_error(
                        400,
                        "Expected a 'rules' array of objects with a string 'value'.",
                        ka,
                    );
                };
                pt_add(store, &rules, ka)
            }
            ("POST", RulesOp::Validate, _) => {
                let v = match body() {
                    Ok(v) => v,
                    Err(r) => return r,
                };
                let Some(rules) = v.get("rules").and_then(new_rules) else {
                    return enterprise_error(
                        400,
                        "Expected a 'rules' array of objects with a string 'value'.",
                        ka,
                    );
                };
                let detail: Vec<Value> = rules
                    .iter()
                    .map(|(value, tag)| match invalid_reason(value, tag.as_deref()) {
                        None => json!({"rule": {"value": value, "tag": tag}, "valid": true}),
                        Some(m) => json!({"rule": {"value": value, "tag": tag}, "valid": false, "message": m}),
                    })
                    .collect();
                let valid = detail.iter().filter(|d| d["valid"] == true).count();
                let summary = json!({"valid": valid, "not_valid": detail.len() - valid});
                http::json(
                    200,
                    &json!({"summary": summary, "detail": detail, "sent": sent()}),
                    ka,
                )
            }
            _ => enterprise_error(405, "Method not allowed on this rules endpoint.", ka),
        }
    }

    fn pt_add(store: &RuleStore, rules: &[NewRule], ka: bool) -> Vec<u8> {
        let reasons: Vec<Option<String>> = rules
            .iter()
            .map(|(v, t)| invalid_reason(v, t.as_deref()))
            .collect();
        if reasons.iter().any(Option::is_some) {
            // One invalid rule rejects the whole batch.
            let detail: Vec<Value> = rules
                .iter()
                .zip(&reasons)
                .map(|((value, tag), reason)| {
                    let message = reason.clone().unwrap_or_else(|| "Rule not created: another rule in the request is invalid.".into());
                    json!({"rule": {"value": value, "tag": tag}, "created": false, "message": message})
                })
                .collect();
            let body = json!({"summary": {"created": 0, "not_created": rules.len()}, "detail": detail, "sent": sent()});
            return http::json(422, &body, ka);
        }
        let set = store.snapshot();
        let mut fresh: Vec<&str> = rules
            .iter()
            .map(|(v, _)| v.as_str())
            .filter(|v| !set.rules.iter().any(|r| r.value == *v))
            .collect();
        fresh.sort_unstable();
        fresh.dedup();
        if set.rules.len() + fresh.len() > store.limit {
            let m = format!(
                "Request exceeds account's Rule Limit of {}; the stream has {} rules.",
                store.limit,
                set.rules.len()
            );
            return enterprise_error(422, &m, ka);
        }
        let out = store.add(rules);
        let mut seen = std::collections::HashSet::new();
        let detail: Vec<Value> = out
            .iter()
            .map(|(rule, created)| {
                let created = *created && seen.insert(rule.id);
                if created {
                    json!({"rule": pt_rule(rule), "created": true})
                } else {
                    json!({"rule": {"value": rule.value, "tag": rule.tag}, "created": false, "message": "A rule with this value already exists"})
                }
            })
            .collect();
        let created = detail.iter().filter(|d| d["created"] == true).count();
        if created > 0 {
            tracing::info!(created, "PowerTrack rules added.");
        }
        let body = json!({"summary": {"created": created, "not_created": detail.len() - created}, "detail": detail, "sent": sent()});
        http::json(201, &body, ka)
    }

    fn pt_delete(store: &RuleStore, v: &Value, ka: bool) -> Vec<u8> {
        let (deleted, failures): (usize, Vec<Value>) = if let Some(wanted) =
            v.get("rule_ids").and_then(ids)
        {
            let gone = store.remove(|r| wanted.contains(&r.id));
            let failures = wanted
                .iter()
                .filter(|id| !gone.iter().any(|r| r.id == **id))
                .map(|id| json!({"rule": {"id": id, "id_str": id.to_string()}, "deleted": false, "message": "Rule does not exist"}))
                .collect();
            (gone.len(), failures)
        } else if let Some(rules) = v.get("rules").and_then(new_rules) {
            let values: Vec<&str> = rules.iter().map(|(v, _)| v.as_str()).collect();
            let gone = store.remove(|r| values.contains(&r.value.as_str()));
            let failures = rules
                .iter()
                .filter(|(v, _)| !gone.iter().any(|r| r.value == *v))
                .map(|(v, t)| json!({"rule": {"value": v, "tag": t}, "deleted": false, "message": "Rule does not exist"}))
                .collect();
            (gone.len(), failures)
        } else {
            return enterprise_error(400, "Expected a 'rules' array or a 'rule_ids' array.", ka);
        };
        if deleted > 0 {
            tracing::info!(deleted, "PowerTrack rules deleted.");
        }
        let body = json!({"summary": {"deleted": deleted, "not_deleted": failures.len()}, "detail": failures, "sent": sent()});
        http::json(200, &body, ka)
    }

    /// The v2 filtered stream rules API.
    pub(crate) async fn v2_api(shared: &Shared, req: &Request) -> Vec<u8> {
        let ka = req.keep_alive;
        if !authorized(&shared.config, req, true) {
            return unauthorized(true, ka);
        }
        let store = &shared.v2_rules;
        let Some(_busy) = serialised(shared, store).await else {
            return v2_problem(
                429,
                "Too Many Requests",
                "Another rules request for this app is in progress.",
                ka,
            );
        };
        match req.method.as_str() {
            "GET" => {
                let set = store.snapshot();
                let wanted: Option<Vec<&str>> = req.param("ids").map(|s| s.split(',').collect());
                let data: Vec<Value> = set
                    .rules
                    .iter()
                    .filter(|r| {
                        wanted
                            .as_ref()
                            .is_none_or(|w| w.contains(&r.id.to_string().as_str()))
                    })
                    .map(|r| v2_rule(r))
                    .collect();
                let meta = json!({"sent": sent(), "result_count": data.len()});
                let body = if data.is_empty() {
                    json!({"meta": meta})
                } else {
                    json!({"data": data, "meta": meta})
                };
                http::json(200, &body, ka)
            }
            "POST" => {
                let dry = req.param("dry_run") == Some("true");
                if req.param("delete_all") == Some("true") {
                    let gone = if dry {
                        store.snapshot().rules.len()
                    } else {
                        store.remove(|_| true).len()
                    };
                    let meta =
                        json!({"sent": sent(), "summary": {"deleted": gone, "not_deleted": 0}});
                    return http::json(200, &json!({"meta": meta}), ka);
                }
                let v: Value = match serde_json::from_slice(&req.body) {
                    Ok(v) => v,
                    Err(e) => {
                        return v2_problem(
                            400,
                            "Invalid Request",
                            &format!("The request body is not valid JSON: {e}."),
                            ka,
                        );
                    }
                };
                if let Some(add) = v.get("add") {
                    match new_rules(add) {
                        Some(rules) => v2_add(store, &rules, dry, ka),
                        None => v2_problem(
                            400,
                            "Invalid Request",
                            "'add' must be an array of objects with a string 'value'.",
                            ka,
                        ),
                    }
                } else if let Some(del) = v.get("delete") {
                    v2_delete(store, del, dry, ka)
                } else {
                    v2_problem(
                        400,
                        "Invalid Request",
                        "The body needs 'add' or 'delete'.",
                        ka,
                    )
                }
            }
            _ => v2_problem(405, "Method Not Allowed", "Use GET or POST.", ka),
        }
    }

    fn v2_add(store: &RuleStore, rules: &[NewRule], dry: bool, ka: bool) -> Vec<u8> {
        let invalid: Vec<Value> = rules
            .iter()
            .filter_map(|(v, t)| {
                invalid_reason(v, t.as_deref()).map(|m| {
                    json!({"value": v, "details": [m], "title": "UnprocessableEntity", "type": "https://api.twitter.com/2/problems/invalid-rules"})
                })
            })
            .collect();
        if !invalid.is_empty() {
            let summary = json!({"created": 0, "not_created": rules.len(), "valid": rules.len() - invalid.len(), "invalid": invalid.len()});
            return http::json(
                400,
                &json!({"errors": invalid, "meta": {"sent": sent(), "summary": summary}}),
                ka,
            );
        }
        let set = store.snapshot();
        let mut errors = Vec::new();
        let mut fresh: Vec<&NewRule> = Vec::new();
        for r in rules {
            if let Some(existing) = set.rules.iter().find(|x| x.value == r.0) {
                errors.push(json!({"value": r.0, "id": existing.id.to_string(), "title": "DuplicateRule", "type": "https://api.twitter.com/2/problems/duplicate-rules"}));
            } else if fresh.iter().any(|f| f.0 == r.0) {
                errors.push(json!({"value": r.0, "title": "DuplicateRule", "type": "https://api.twitter.com/2/problems/duplicate-rules"}));
            } else {
                fresh.push(r);
            }
        }
        if set.rules.len() + fresh.len() > store.limit {
            let detail = format!(
                "Rule cap of {} would be exceeded; the app has {} rules.",
                store.limit,
                set.rules.len()
            );
            return http::json(
                400,
                &json!({"title": "RulesCapExceeded", "detail": detail, "type": "https://api.twitter.com/2/problems/rule-cap"}),
                ka,
            );
        }
        let data: Vec<Value> = if dry {
            fresh
                .iter()
                .map(|(v, t)| json!({"value": v, "tag": t}))
                .collect()
        } else {
            let owned: Vec<NewRule> = fresh.iter().map(|r| (*r).clone()).collect();
            store.add(&owned).iter().map(|(r, _)| v2_rule(r)).collect()
        };
        let summary = json!({"created": data.len(), "not_created": errors.len(), "valid": rules.len(), "invalid": 0});
        let mut body = json!({"meta": {"sent": sent(), "summary": summary}});
        if !data.is_empty() {
            body["data"] = json!(data);
        }
        if !errors.is_empty() {
            body["errors"] = json!(errors);
        }
        http::json(if data.is_empty() { 200 } else { 201 }, &body, ka)
    }

    fn v2_delete(store: &RuleStore, del: &Value, dry: bool, ka: bool) -> Vec<u8> {
        let by_id = del.get("ids").and_then(ids);
        let by_value: Option<Vec<String>> = del.get("values").and_then(|v| v.as_array()).map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        });
        let set = store.snapshot();
        let (hit, missing): (Vec<u64>, Vec<Value>) = match (by_id, by_value) {
            (Some(ids), _) => {
                let hit: Vec<u64> = ids
                    .iter()
                    .copied()
                    .filter(|id| set.rules.iter().any(|r| r.id == *id))
                    .collect();
                let missing = ids
                    .iter()
                    .filter(|id| !hit.contains(id))
                    .map(|id| json!({"id": id.to_string(), "title": "Not Found", "type": "https://api.twitter.com/2/problems/resource-not-found"}))
                    .collect();
                (hit, missing)
            }
            (None, Some(values)) => {
                let hit: Vec<u64> = set
                    .rules
                    .iter()
                    .filter(|r| values.contains(&r.value))
                    .map(|r| r.id)
                    .collect();
                let missing = values
                    .iter()
                    .filter(|v| !set.rules.iter().any(|r| &r.value == *v))
                    .map(|v| json!({"value": v, "title": "Not Found", "type": "https://api.twitter.com/2/problems/resource-not-found"}))
                    .collect();
                (hit, missing)
            }
            (None, None) => {
                return v2_problem(
                    400,
                    "Invalid Request",
                    "'delete' needs 'ids' or 'values'.",
                    ka,
                );
            }
        };
        let deleted = if dry {
            hit.len()
        } else {
            store.remove(|r| hit.contains(&r.id)).len()
        };
        let mut body = json!({"meta": {"sent": sent(), "summary": {"deleted": deleted, "not_deleted": missing.len()}}});
        if !missing.is_empty() {
            body["errors"] = json!(missing);
        }
        http::json(200, &body, ka)
    }

    /// `GET /2/tweets/search/stream/rules/counts`.
    pub(crate) fn v2_counts(shared: &Shared, req: &Request) -> Vec<u8> {
        if !authorized(&shared.config, req, true) {
            return unauthorized(true, req.keep_alive);
        }
        let n = shared.v2_rules.snapshot().rules.len();
        let limit = shared.v2_rules.limit;
        let body = json!({"data": {"cap_per_client_app": limit, "cap_per_project": limit,
            "client_app_rules_count": {"client_app_id": "1", "rule_count": n}, "project_rules_count": n}});
        http::json(200, &body, req.keep_alive)
    }
}

pub(crate) use api::{powertrack_api, v2_api, v2_counts};
