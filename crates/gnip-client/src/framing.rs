//! Framing: inflated body bytes in, one record per line out. Pure, no I/O;
//! sits between the inflater and the classifier.
//!
//! The wire delimiter is `\r\n` (spec section 1); a bare `\n` is accepted
//! too, because one enterprise error message has been seen ending in `\n`
//! only, and JSON escapes every line break inside strings, so splitting on
//! `\n` and trimming a trailing `\r` never cuts a well-formed record. Chunk
//! boundaries bear no relation to record boundaries: a record may arrive in
//! many pieces, split anywhere (inside a UTF-8 character, between `\r` and
//! `\n`). A line that fits inside one chunk is handed out as a slice of that
//! chunk without copying; only a line that spans chunks is copied, once,
//! into its own buffer. A line longer than the configured maximum is
//! reported once and skipped up to the next delimiter.

use bytes::{Bytes, BytesMut};

/// The default bound on one record: 1 MiB. Real posts are 2-30 KB; a line
/// a hundred times that size means a broken stream, and buffering it
/// without bound would let a bad server exhaust memory.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// One item cut from the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A non-blank line, trimmed of surrounding whitespace.
    Record(Bytes),
    /// A blank line: the server's keep-alive.
    Heartbeat,
    /// A line longer than the maximum; its bytes are dropped up to the
    /// next delimiter. `seen` is how many bytes had arrived when the limit
    /// was crossed.
    Oversized {
        /// Bytes of the line seen when it was rejected.
        seen: usize,
    },
}

/// Splits a byte stream into lines. Feed chunks with [`Framer::push`] and
/// drain complete frames with [`Framer::next_frame`].
#[derive(Debug)]
pub struct Framer {
    /// The unscanned rest of the latest chunk.
    current: Bytes,
    /// The start of a line whose delimiter has not arrived yet.
    pending: BytesMut,
    /// True while skipping an oversized line.
    discarding: bool,
    max: usize,
}

impl Framer {
    /// A framer that rejects lines longer than `max_record_bytes` (not
    /// counting the delimiter).
    pub fn new(max_record_bytes: usize) -> Framer {
        Framer {
            current: Bytes::new(),
            pending: BytesMut::new(),
            discarding: false,
            max: max_record_bytes.max(1),
        }
    }

    /// Adds the next chunk. Drain [`Framer::next_frame`] until it returns
    /// `None` before pushing again; pushing earlier is allowed but copies.
    pub fn push(&mut self, chunk: Bytes) {
        if self.current.is_empty() {
            self.current = chunk;
        } else {
            // The caller pushed without draining: keep order by moving the
            // unscanned rest into a fresh buffer.
            let mut joined = BytesMut::with_capacity(self.current.len() + chunk.len());
            joined.extend_from_slice(&self.current);
            joined.extend_from_slice(&chunk);
            self.current = joined.freeze();
        }
    }

    /// The next complete frame, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if self.current.is_empty() {
                return None;
            }
            let Some(nl) = memchr::memchr(b'\n', &self.current) else {
                return self.stash_partial();
            };
            let head = self.current.split_to(nl + 1);
            if self.discarding {
                self.discarding = false;
                continue;
            }
            let body = &head[..nl];
            let line = if self.pending.is_empty() {
                if content_len(body) > self.max {
                    return Some(Frame::Oversized { seen: nl });
                }
                head.slice(..nl)
            } else {
                let seen = self.pending.len() + nl;
                if seen > self.max + 1 || content_len_joined(&self.pending, body) > self.max {
                    self.pending.clear();
                    return Some(Frame::Oversized { seen });
                }
                self.pending.extend_from_slice(body);
                self.pending.split().freeze()
            };
            let trimmed = trim(&line);
            if trimmed.is_empty() {
                return Some(Frame::Heartbeat);
            }
            return Some(Frame::Record(line.slice(trimmed)));
        }
    }

    /// No delimiter in the rest of the chunk: keep it for the next push,
    /// unless that makes the line too long.
    fn stash_partial(&mut self) -> Option<Frame> {
        let rest = std::mem::take(&mut self.current);
        if self.discarding {
            return None;
        }
        // One extra byte may be the `\r` of a `\r\n` split across chunks.
        let seen = self.pending.len() + rest.len();
        if seen > self.max + 1 {
            self.pending.clear();
            self.discarding = true;
            return Some(Frame::Oversized { seen });
        }
        self.pending.extend_from_slice(&rest);
        None
    }

    /// Bytes of a line still waiting for its delimiter.
    pub fn pending_len(&self) -> usize {
        self.pending.len() + self.current.len()
    }

    /// Forgets any partial line (the connection ended mid-record) and
    /// returns how many bytes were dropped. The framer is then ready for a
    /// new connection.
    pub fn reset(&mut self) -> usize {
        let dropped = if self.discarding {
            0
        } else {
            self.pending_len()
        };
        self.current = Bytes::new();
        self.pending = BytesMut::new();
        self.discarding = false;
        dropped
    }
}

/// Length of a line without its trailing `\r`.
fn content_len(body: &[u8]) -> usize {
    if body.last() == Some(&b'\r') {
        body.len() - 1
    } else {
        body.len()
    }
}

fn content_len_joined(pending: &[u8], body: &[u8]) -> usize {
    let total = pending.len() + body.len();
    let last = body.last().or(pending.last());
    if last == Some(&b'\r') {
        total - 1
    } else {
        total
    }
}

/// The range of `line` without surrounding ASCII whitespace.
fn trim(line: &[u8]) -> std::ops::Range<usize> {
    let start = line
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(framer: &mut Framer, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut out = Vec::new();
        for c in chunks {
            framer.push(Bytes::copy_from_slice(c));
            while let Some(f) = framer.next_frame() {
                out.push(f);
            }
        }
        out
    }

    fn rec(s: &str) -> Frame {
        Frame::Record(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn splits_crlf_and_bare_lf_and_counts_heartbeats() {
        let mut f = Framer::new(1024);
        let got = run(
            &mut f,
            &[b"{\"a\":1}\r\n\r\n{\"b\":2}\n  {\"c\":3}  \r\n\n"],
        );
        assert_eq!(
            got,
            vec![
                rec("{\"a\":1}"),
                Frame::Heartbeat,
                rec("{\"b\":2}"),
                rec("{\"c\":3}"),
                Frame::Heartbeat
            ]
        );
        assert_eq!(f.pending_len(), 0);
    }

    #[test]
    fn joins_pieces_split_between_cr_and_lf() {
        let mut f = Framer::new(1024);
        let got = run(&mut f, &[b"{\"a\"", b":1}\r", b"\n{\"b\":2}\r", b"\n"]);
        assert_eq!(got, vec![rec("{\"a\":1}"), rec("{\"b\":2}")]);
    }

    #[test]
    fn lines_inside_one_chunk_are_not_copied() {
        let mut f = Framer::new(1024);
        let chunk = Bytes::from_static(b"{\"a\":1}\r\n");
        f.push(chunk.clone());
        let Some(Frame::Record(r)) = f.next_frame() else {
            panic!("no record")
        };
        assert_eq!(r.as_ptr(), chunk.as_ptr());
    }

    #[test]
    fn oversized_line_is_reported_once_then_resynchronises() {
        let mut f = Framer::new(8);
        let got = run(
            &mut f,
            &[
                b"{\"ok\":1}\r\n{\"too\":",
                b"\"long\"",
                b"}\r\n{\"b\":2}\r\n",
            ],
        );
        assert_eq!(got[0], rec("{\"ok\":1}"));
        assert!(matches!(got[1], Frame::Oversized { .. }));
        assert_eq!(got[2], rec("{\"b\":2}"));
        assert_eq!(got.len(), 3);

        // Oversized within a single chunk.
        let got = run(&mut f, &[b"0123456789abc\r\nxy\r\n"]);
        assert_eq!(got, vec![Frame::Oversized { seen: 14 }, rec("xy")]);

        // Exactly at the limit, with its \r arriving in a chunk of its own.
        let got = run(&mut f, &[b"12345678", b"\r", b"\n"]);
        assert_eq!(got, vec![rec("12345678")]);
    }

    #[test]
    fn reset_drops_partial_line() {
        let mut f = Framer::new(1024);
        let got = run(&mut f, &[b"{\"a\":1}\r\n{\"trunc"]);
        assert_eq!(got.len(), 1);
        assert_eq!(f.reset(), 7);
        let got = run(&mut f, &[b"{\"b\":2}\r\n"]);
        assert_eq!(got, vec![rec("{\"b\":2}")]);
    }

    fn sample_stream() -> Vec<u8> {
        // Real-shaped lines with multi-byte UTF-8 (2, 3 and 4 byte
        // characters), heartbeats, a bare \n and leading whitespace.
        let mut s = Vec::new();
        s.extend_from_slice(
            "{\"id_str\":\"1\",\"text\":\"caf\u{e9} \u{65e5}\u{672c} \u{1f600}\"}\r\n".as_bytes(),
        );
        s.extend_from_slice(b"\r\n");
        s.extend_from_slice("{\"data\":{\"id\":\"2\",\"text\":\"\u{0436}\u{0436}\"}}\n".as_bytes());
        s.extend_from_slice(b"  {\"info\":{\"message\":\"x\"}}\r\n\r\n\r\n");
        s
    }

    fn expected() -> Vec<Frame> {
        vec![
            rec("{\"id_str\":\"1\",\"text\":\"caf\u{e9} \u{65e5}\u{672c} \u{1f600}\"}"),
            Frame::Heartbeat,
            rec("{\"data\":{\"id\":\"2\",\"text\":\"\u{0436}\u{0436}\"}}"),
            rec("{\"info\":{\"message\":\"x\"}}"),
            Frame::Heartbeat,
            Frame::Heartbeat,
        ]
    }

    #[test]
    fn every_single_split_point_gives_the_same_frames() {
        let s = sample_stream();
        for i in 0..=s.len() {
            let mut f = Framer::new(1024);
            let got = run(&mut f, &[&s[..i], &s[i..]]);
            assert_eq!(got, expected(), "split at {i}");
        }
    }

    /// Real records with non-ASCII text (Gnacs sample: Arabic, Japanese,
    /// emoji...), joined as the wire does, with heartbeats between.
    fn real_stream() -> (Vec<u8>, Vec<Frame>) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/real/activity-streams/gnacs_twitter_sample.jsonl"
        );
        let text = std::fs::read(path).expect("fixture");
        let lines: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty() && l.iter().any(|&b| b >= 0x80))
            .take(4)
            .collect();
        assert_eq!(lines.len(), 4, "fixture has non-ASCII records");
        let mut stream = Vec::new();
        let mut frames = Vec::new();
        for l in lines {
            stream.extend_from_slice(l);
            stream.extend_from_slice(b"\r\n\r\n");
            frames.push(Frame::Record(Bytes::copy_from_slice(l)));
            frames.push(Frame::Heartbeat);
        }
        (stream, frames)
    }

    #[test]
    fn every_split_of_real_records_gives_the_same_frames() {
        let (s, expected) = real_stream();
        for i in 0..=s.len() {
            let mut f = Framer::new(DEFAULT_MAX_RECORD_BYTES);
            assert_eq!(run(&mut f, &[&s[..i], &s[i..]]), expected, "split at {i}");
        }
    }

    proptest! {
        #[test]
        fn any_chunking_of_real_records_gives_the_same_frames(
            cuts in proptest::collection::vec(0usize..100_000, 0..64)
        ) {
            let (s, expected) = real_stream();
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (s.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for p in points {
                chunks.push(&s[prev..p]);
                prev = p;
            }
            chunks.push(&s[prev..]);
            let mut f = Framer::new(DEFAULT_MAX_RECORD_BYTES);
            let got = run(&mut f, &chunks);
            for fr in &got {
                if let Frame::Record(r) = fr {
                    prop_assert!(crate::message::classify(r).is_ok());
                }
            }
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn any_chunking_gives_the_same_frames(cuts in proptest::collection::vec(0usize..200, 0..40)) {
            let s = sample_stream();
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (s.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for p in points {
                chunks.push(&s[prev..p]);
                prev = p;
            }
            chunks.push(&s[prev..]);
            let mut f = Framer::new(1024);
            prop_assert_eq!(run(&mut f, &chunks), expected());
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_records_are_trimmed(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            cut in 0usize..600,
        ) {
            let cut = cut.min(data.len());
            let mut f = Framer::new(64);
            for fr in run(&mut f, &[&data[..cut], &data[cut..]]) {
                if let Frame::Record(r) = fr {
                    prop_assert!(!r.is_empty() && r.len() <= 64);
                    prop_assert!(!r[0].is_ascii_whitespace());
                    prop_assert!(!r[r.len() - 1].is_ascii_whitespace());
                    prop_assert!(!r.contains(&b'\n'));
                }
            }
        }
    }
}
