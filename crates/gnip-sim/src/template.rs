//! Records as the simulator keeps them: a template (the bytes of a record
//! with holes where the post id, the time and the matching rules go, each
//! fixed part pre-compressed once) and an entry (one served record: a
//! template plus the values for its holes). Rendering an entry into a
//! stream body is a copy of the compressed parts plus small stored blocks.

use std::sync::Arc;

use crate::fixed::FixedDeflate;
use bytes::Bytes;

use crate::config::Format;
use crate::time;
use crate::wire::{Encoder, compress_segment};

/// The templates one stream format draws its records from.
pub(crate) type Pool = Arc<Vec<Arc<Template>>>;

/// How a time hole is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeFormat {
    /// `Wed Oct 10 20:19:24 +0000 2018`.
    Twitter,
    /// `1539202764211`.
    EpochMillis,
    /// `2018-10-10T20:19:24.211Z`.
    IsoMillis,
}

/// A place in a template filled per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hole {
    /// The record's own post id, as digits.
    PostId,
    /// The record's time.
    Time(TimeFormat),
    /// `"matching_rules":[...]`, preceded by a comma when `comma`; nothing
    /// at all on streams without rules.
    Rules { comma: bool },
}

#[derive(Debug)]
pub(crate) enum Part {
    Fixed { plain: Bytes, z: Bytes },
    Hole(Hole),
}

/// A record with holes, pre-compressed.
#[derive(Debug)]
pub(crate) struct Template {
    /// Position in its pool; keys the per-template rule-match cache.
    pub index: usize,
    pub parts: Vec<Part>,
    /// The author's user id, for compliance events about them.
    pub author_id: u64,
    /// Lower-cased text the rule matcher looks at.
    pub match_text: String,
    /// Plain length of the fixed parts.
    pub fixed_len: usize,
}

/// Builds a [`Template`] from text and holes.
#[derive(Default)]
pub(crate) struct TemplateBuilder {
    parts: Vec<Result<String, Hole>>,
}

impl TemplateBuilder {
    pub(crate) fn text(&mut self, s: &str) -> &mut Self {
        match self.parts.last_mut() {
            Some(Ok(cur)) => cur.push_str(s),
            _ => self.parts.push(Ok(s.to_string())),
        }
        self
    }

    /// Appends `s` as a JSON string literal, quoted and escaped.
    pub(crate) fn string(&mut self, s: &str) -> &mut Self {
        let quoted = serde_json::to_string(s).expect("a str always serialises");
        self.text(&quoted)
    }

    pub(crate) fn hole(&mut self, h: Hole) -> &mut Self {
        self.parts.push(Err(h));
        self
    }

    /// Finishes the record with the `\r\n` delimiter and compresses it.
    pub(crate) fn build(
        mut self,
        index: usize,
        author_id: u64,
        match_text: String,
        c: &mut FixedDeflate,
    ) -> Template {
        self.text("\r\n");
        let mut fixed_len = 0;
        let parts = self
            .parts
            .into_iter()
            .filter(|p| !matches!(p, Ok(s) if s.is_empty()))
            .map(|p| match p {
                Ok(s) => {
                    fixed_len += s.len();
                    let z = compress_segment(c, s.as_bytes());
                    Part::Fixed {
                        plain: Bytes::from(s),
                        z: Bytes::from(z),
                    }
                }
                Err(h) => Part::Hole(h),
            })
            .collect();
        Template {
            index,
            parts,
            author_id,
            match_text: match_text.to_lowercase(),
            fixed_len,
        }
    }
}

/// What an entry's bytes are made of.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// A post from a template; `rules` is the rendered `[...]` array of
    /// matching rules, empty on streams without rules.
    Template { tmpl: Arc<Template>, rules: Bytes },
    /// A record rendered in full at generation (compliance events), with its
    /// compressed segment.
    Inline { plain: Bytes, z: Bytes },
}

/// One record of a stream's timeline.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// When it was generated, in Unix milliseconds; also its `created_at`.
    pub time_ms: u64,
    /// Its post id, for posts; compliance events carry none of their own.
    pub post_id: Option<u64>,
    pub body: Body,
}

impl Entry {
    /// Approximate plain length, for the history's byte bound.
    pub(crate) fn plain_len(&self) -> usize {
        match &self.body {
            Body::Template { tmpl, rules } => tmpl.fixed_len + rules.len() + 64,
            Body::Inline { plain, .. } => plain.len(),
        }
    }

    /// The author of a post entry.
    pub(crate) fn author_id(&self) -> Option<u64> {
        match &self.body {
            Body::Template { tmpl, .. } => Some(tmpl.author_id),
            Body::Inline { .. } => None,
        }
    }

    /// Appends the encoded record to `out`; `scratch` is reused for holes.
    pub(crate) fn render(&self, enc: &mut Encoder, out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
        match &self.body {
            Body::Inline { plain, z } => enc.segment(out, plain, z),
            Body::Template { tmpl, rules } => {
                for part in &tmpl.parts {
                    match part {
                        Part::Fixed { plain, z } => enc.segment(out, plain, z),
                        Part::Hole(h) => {
                            scratch.clear();
                            self.fill(*h, rules, scratch);
                            if !scratch.is_empty() {
                                enc.literal(out, scratch);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The plain text of the record, delimiter included.
    #[cfg(test)]
    pub(crate) fn plain(&self) -> Vec<u8> {
        let mut enc = Encoder::new(false);
        let mut out = Vec::new();
        self.render(&mut enc, &mut out, &mut Vec::new());
        out
    }

    fn fill(&self, h: Hole, rules: &Bytes, out: &mut Vec<u8>) {
        use std::io::Write;
        match h {
            Hole::PostId => {
                write!(out, "{}", self.post_id.unwrap_or(0)).expect("writing to a Vec cannot fail")
            }
            Hole::Time(TimeFormat::Twitter) => time::write_twitter(out, self.time_ms),
            Hole::Time(TimeFormat::IsoMillis) => time::write_iso_millis(out, self.time_ms),
            Hole::Time(TimeFormat::EpochMillis) => {
                write!(out, "{}", self.time_ms).expect("writing to a Vec cannot fail")
            }
            Hole::Rules { comma } => {
                if !rules.is_empty() {
                    if comma {
                        out.push(b',');
                    }
                    out.extend_from_slice(b"\"matching_rules\":");
                    out.extend_from_slice(rules);
                }
            }
        }
    }
}

/// The format-specific JSON of one matching-rules entry.
pub(crate) fn rule_json(format: Format, id: u64, tag: Option<&str>) -> String {
    let tag = serde_json::to_string(&tag).expect("an Option<&str> always serialises");
    match format {
        Format::V2 => format!("{{\"id\":\"{id}\",\"tag\":{tag}}}"),
        Format::ActivityStreams | Format::Original => {
            format!("{{\"tag\":{tag},\"id\":{id},\"id_str\":\"{id}\"}}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::segment_compressor;

    fn sample() -> Arc<Template> {
        let mut b = TemplateBuilder::default();
        b.text("{\"created_at\":\"")
            .hole(Hole::Time(TimeFormat::Twitter))
            .text("\",\"id\":")
            .hole(Hole::PostId)
            .text(",\"id_str\":\"")
            .hole(Hole::PostId)
            .text("\",\"text\":")
            .string("say \"hi\"")
            .hole(Hole::Rules { comma: true })
            .text("}");
        Arc::new(b.build(0, 42, "say hi".into(), &mut segment_compressor()))
    }

    #[test]
    fn holes_are_filled_per_entry() {
        let e = Entry {
            time_ms: 1_539_202_764_211,
            post_id: Some(1_050_118_621_198_921_728),
            body: Body::Template {
                tmpl: sample(),
                rules: Bytes::from_static(b"[{\"tag\":null}]"),
            },
        };
        let text = String::from_utf8(e.plain()).unwrap();
        assert_eq!(
            text,
            "{\"created_at\":\"Wed Oct 10 20:19:24 +0000 2018\",\"id\":1050118621198921728,\
             \"id_str\":\"1050118621198921728\",\"text\":\"say \\\"hi\\\"\",\
             \"matching_rules\":[{\"tag\":null}]}\r\n"
        );
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["id_str"], "1050118621198921728");
    }

    #[test]
    fn streams_without_rules_omit_the_key() {
        let e = Entry {
            time_ms: 0,
            post_id: Some(7),
            body: Body::Template {
                tmpl: sample(),
                rules: Bytes::new(),
            },
        };
        let text = String::from_utf8(e.plain()).unwrap();
        assert!(!text.contains("matching_rules"));
        serde_json::from_str::<serde_json::Value>(text.trim_end()).unwrap();
    }

    #[test]
    fn rule_entries_follow_each_format() {
        assert_eq!(
            rule_json(Format::V2, 5, Some("t")),
            r#"{"id":"5","tag":"t"}"#
        );
        assert_eq!(
            rule_json(Format::Original, 5, None),
            r#"{"tag":null,"id":5,"id_str":"5"}"#
        );
    }
}
