//! The corpus: real records read from a JSON-lines file (optionally gzip
//! compressed) and turned into templates, so that replayed copies keep every
//! byte of the original except their own post id (fresh and unique for each
//! copy), their time (now) and their matching rules (the stream's current
//! rules). Lines that are not posts (compliance events, system messages,
//! blank lines) are skipped and counted.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::config::Format;
use crate::error::SimError;
use crate::template::{Hole, Pool, Template, TemplateBuilder, TimeFormat};
use crate::wire::segment_compressor;

type Fields<'a> = HashMap<String, &'a RawValue>;

/// An edit of the original line: bytes `start..end` are replaced by `with`.
struct Edit {
    start: usize,
    end: usize,
    with: Vec<Result<&'static str, Hole>>,
}

fn offset(line: &str, raw: &RawValue) -> (usize, usize) {
    let start = raw.get().as_ptr() as usize - line.as_ptr() as usize;
    (start, start + raw.get().len())
}

fn as_str(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(raw.get()).ok()
}

/// The string value's content span (inside the quotes) as a time hole.
fn time_edit(line: &str, raw: Option<&&RawValue>, f: TimeFormat) -> Option<Edit> {
    let raw = *raw?;
    as_str(raw)?;
    let (s, e) = offset(line, raw);
    Some(Edit {
        start: s + 1,
        end: e - 1,
        with: vec![Err(Hole::Time(f))],
    })
}

/// Removes `"matching_rules":[...]` from the object `obj` (a span of
/// `line`) and puts the rules hole before the object's closing brace.
fn rules_edits(line: &str, obj_span: (usize, usize), fields: &Fields<'_>) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut remaining = fields.len();
    if let Some(raw) = fields.get("matching_rules") {
        let (vs, ve) = offset(line, raw);
        if let Some(ks) = line[..vs].rfind("\"matching_rules\"") {
            let after = line[ve..].trim_start();
            let (mut s, mut e) = (ks, ve);
            if after.starts_with(',') {
                e = line.len() - after.len() + 1;
            } else if let Some(p) = line[..ks].trim_end().strip_suffix(',') {
                s = p.len();
            }
            edits.push(Edit {
                start: s,
                end: e,
                with: Vec::new(),
            });
            remaining -= 1;
        }
    }
    let close = obj_span.1 - 1;
    edits.push(Edit {
        start: close,
        end: close,
        with: vec![Err(Hole::Rules {
            comma: remaining > 0,
        })],
    });
    edits
}

/// The post-id occurrences: the digits, not inside a longer number.
fn id_edits(line: &str, id: &str, taken: &[Edit]) -> Vec<Edit> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = line[from..].find(id) {
        let s = from + p;
        let e = s + id.len();
        from = e;
        let digit = |i: Option<&u8>| i.is_some_and(u8::is_ascii_digit);
        if digit(s.checked_sub(1).and_then(|i| bytes.get(i))) || digit(bytes.get(e)) {
            continue;
        }
        if taken
            .iter()
            .any(|t| s < t.end.max(t.start + 1) && t.start < e)
        {
            continue;
        }
        out.push(Edit {
            start: s,
            end: e,
            with: vec![Err(Hole::PostId)],
        });
    }
    out
}

struct Parsed {
    format: Format,
    edits: Vec<Edit>,
    author: u64,
    text: String,
}

fn parse(line: &str) -> Option<Parsed> {
    let root: Fields<'_> = serde_json::from_str(line).ok()?;
    let root_span = (line.len() - line.trim_start().len(), line.trim_end().len());
    let get = |m: &Fields<'_>, k: &str| m.get(k).and_then(|r| as_str(r));

    if let Some(data) = root.get("data") {
        // X API v2.
        let d: Fields<'_> = serde_json::from_str(data.get()).ok()?;
        let id = get(&d, "id")?;
        let mut edits = rules_edits(line, root_span, &root);
        edits.extend(time_edit(line, d.get("created_at"), TimeFormat::IsoMillis));
        let ids = id_edits(line, &id, &edits);
        edits.extend(ids);
        let author = get(&d, "author_id")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        return Some(Parsed {
            format: Format::V2,
            edits,
            author,
            text: get(&d, "text").unwrap_or_default(),
        });
    }
    if get(&root, "objectType").as_deref() == Some("activity") {
        // Activity Streams; deletes and other verbs are not posts.
        if !matches!(get(&root, "verb").as_deref(), Some("post" | "share")) {
            return None;
        }
        let id = get(&root, "id")?.rsplit(':').next()?.to_string();
        id.parse::<u64>().ok()?;
        let mut edits = match root.get("gnip") {
            Some(g) => {
                let gf: Fields<'_> = serde_json::from_str(g.get()).ok()?;
                rules_edits(line, offset(line, g), &gf)
            }
            None => {
                let close = root_span.1 - 1;
                vec![Edit {
                    start: close,
                    end: close,
                    with: vec![
                        Ok(",\"gnip\":{"),
                        Err(Hole::Rules { comma: false }),
                        Ok("}"),
                    ],
                }]
            }
        };
        edits.extend(time_edit(
            line,
            root.get("postedTime"),
            TimeFormat::IsoMillis,
        ));
        let ids = id_edits(line, &id, &edits);
        edits.extend(ids);
        let author = root
            .get("actor")
            .and_then(|a| serde_json::from_str::<Fields<'_>>(a.get()).ok())
            .and_then(|a| get(&a, "id"))
            .and_then(|a| a.rsplit(':').next().and_then(|n| n.parse().ok()))
            .unwrap_or(0);
        let text = root
            .get("long_object")
            .and_then(|l| serde_json::from_str::<Fields<'_>>(l.get()).ok())
            .and_then(|l| get(&l, "body"))
            .or_else(|| get(&root, "body"))
            .unwrap_or_default();
        return Some(Parsed {
            format: Format::ActivityStreams,
            edits,
            author,
            text,
        });
    }
    let id = get(&root, "id_str")?;
    let user: Fields<'_> = serde_json::from_str(root.get("user")?.get()).ok()?;
    let mut edits = rules_edits(line, root_span, &root);
    edits.extend(time_edit(line, root.get("created_at"), TimeFormat::Twitter));
    edits.extend(time_edit(
        line,
        root.get("timestamp_ms"),
        TimeFormat::EpochMillis,
    ));
    let ids = id_edits(line, &id, &edits);
    edits.extend(ids);
    let author = get(&user, "id_str")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let text = root
        .get("extended_tweet")
        .and_then(|x| serde_json::from_str::<Fields<'_>>(x.get()).ok())
        .and_then(|x| get(&x, "full_text"))
        .or_else(|| get(&root, "text"))
        .unwrap_or_default();
    Some(Parsed {
        format: Format::Original,
        edits,
        author,
        text,
    })
}

fn template(
    line: &str,
    mut p: Parsed,
    index: usize,
    c: &mut crate::fixed::FixedDeflate,
) -> Template {
    p.edits.sort_by_key(|e| (e.start, e.end));
    let mut b = TemplateBuilder::default();
    let mut at = 0;
    for e in &p.edits {
        if e.start < at {
            continue;
        }
        b.text(&line[at..e.start]);
        for piece in &e.with {
            match piece {
                Ok(t) => b.text(t),
                Err(h) => b.hole(*h),
            };
        }
        at = e.end;
    }
    b.text(&line[at..]);
    b.build(index, p.author, p.text, c)
}

/// Reads `path` into per-format template pools.
///
/// # Errors
///
/// [`SimError::Corpus`] when the file cannot be read (or is corrupt gzip),
/// [`SimError::EmptyCorpus`] when no line is a usable post.
pub(crate) fn load(path: &Path) -> Result<HashMap<Format, Pool>, SimError> {
    let err = |source| SimError::Corpus {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(err)?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = String::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_string(&mut out)
            .map_err(err)?;
        out
    } else {
        String::from_utf8(raw)
            .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?
    };
    let mut pools: HashMap<Format, Vec<Arc<Template>>> = HashMap::new();
    let mut skipped = 0;
    let mut c = segment_compressor();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        // A record must stay one line on the wire.
        if line.trim().is_empty() || line.contains('\r') {
            skipped += usize::from(!line.trim().is_empty());
            continue;
        }
        match parse(line) {
            Some(p) => {
                let pool = pools.entry(p.format).or_default();
                let t = template(line, p, pool.len(), &mut c);
                pool.push(Arc::new(t));
            }
            None => skipped += 1,
        }
    }
    if pools.is_empty() {
        return Err(SimError::EmptyCorpus {
            path: path.to_path_buf(),
            skipped,
        });
    }
    tracing::info!(
        path = %path.display(),
        original = pools.get(&Format::Original).map_or(0, Vec::len),
        activity_streams = pools.get(&Format::ActivityStreams).map_or(0, Vec::len),
        v2 = pools.get(&Format::V2).map_or(0, Vec::len),
        skipped,
        "Corpus loaded."
    );
    Ok(pools.into_iter().map(|(f, v)| (f, Arc::new(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Body, Entry};
    use bytes::Bytes;

    fn render(line: &str, id: u64, rules: &'static [u8]) -> serde_json::Value {
        let p = parse(line).expect("a post");
        let t = Arc::new(template(line, p, 0, &mut segment_compressor()));
        let e = Entry {
            time_ms: 1_700_000_000_000,
            post_id: Some(id),
            body: Body::Template {
                tmpl: t,
                rules: Bytes::from_static(rules),
            },
        };
        serde_json::from_slice(&e.plain()).expect("valid JSON")
    }

    #[test]
    fn original_records_get_a_new_id_time_and_rules() {
        let line = r#"{"created_at":"Wed Oct 10 20:19:24 +0000 2018","id":1050118621198921728,"id_str":"1050118621198921728","text":"see https://twitter.com/x/status/1050118621198921728","user":{"id_str":"6253282"},"matching_rules":[{"tag":null,"id":1,"id_str":"1"}],"timestamp_ms":"1539202764211","quoted_status_id_str":"10501186211989217280"}"#;
        let v = render(line, 42, b"[{\"tag\":\"t\"}]");
        assert_eq!(v["id_str"], "42");
        assert_eq!(v["id"], 42);
        assert_eq!(v["text"], "see https://twitter.com/x/status/42");
        assert_eq!(
            v["quoted_status_id_str"], "10501186211989217280",
            "longer numbers are left alone"
        );
        assert_eq!(v["created_at"], "Tue Nov 14 22:13:20 +0000 2023");
        assert_eq!(v["timestamp_ms"], "1700000000000");
        assert_eq!(v["matching_rules"][0]["tag"], "t");
        let none = render(line, 42, b"");
        assert!(none.get("matching_rules").is_none());
    }

    #[test]
    fn activity_streams_and_v2_records_are_templated() {
        let a = r#"{"id":"tag:search.twitter.com,2005:66216303899328514","objectType":"activity","verb":"post","postedTime":"2011-05-05T19:02:51.000Z","body":"cold drinks","actor":{"id":"id:twitter.com:130153085"},"gnip":{"matching_rules":[{"value":"drinks","tag":null}],"language":{"value":"en"}}}"#;
        let v = render(a, 7, b"[{\"tag\":null,\"id\":1,\"id_str\":\"1\"}]");
        assert_eq!(v["id"], "tag:search.twitter.com,2005:7");
        assert_eq!(v["postedTime"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["gnip"]["language"]["value"], "en");
        assert_eq!(v["gnip"]["matching_rules"][0]["id_str"], "1");
        let bare = r#"{"id":"tag:search.twitter.com,2005:5","objectType":"activity","verb":"share","body":"x","actor":{"id":"id:twitter.com:1"}}"#;
        assert_eq!(
            render(bare, 9, b"[]")["gnip"]["matching_rules"],
            serde_json::json!([])
        );
        let v2 = r#"{"data":{"id":"1377650090978992134","text":"Fury","created_at":"2021-04-01T15:52:31.000Z","author_id":"4602771083","conversation_id":"1377650090978992134"},"matching_rules":[{"id":"1","tag":"x"}]}"#;
        let v = render(v2, 11, b"[{\"id\":\"2\",\"tag\":null}]");
        assert_eq!(v["data"]["id"], "11");
        assert_eq!(v["data"]["conversation_id"], "11");
        assert_eq!(v["matching_rules"][0]["id"], "2");
        assert!(parse(r#"{"delete":{"status":{"id_str":"1"}}}"#).is_none());
        assert!(parse(r#"{"objectType":"activity","verb":"delete","id":"tag:x:1"}"#).is_none());
    }
}
