//! Deflate with the fixed Huffman codes of RFC 1951 (section 3.2.6), for
//! the pre-compressed parts of record templates.
//!
//! A template is cut into parts around the values that change per record,
//! so a record is several small deflate segments. Compressed with zlib's
//! dynamic codes, each segment carries its own code table, which the reader
//! must rebuild before decoding it: measured on the connector, rebuilding
//! those tables was about a tenth of the whole pipeline's CPU, a cost the
//! real service's stream does not impose. With the fixed codes there is no
//! table to send or rebuild; the ratio is a little lower on small parts.
//!
//! Each segment is self-contained (matches never reach before its start)
//! and ends byte-aligned with an empty stored block, like a zlib full
//! flush, so segments can be spliced into any deflate stream in any order.

/// Longest match deflate can express.
const MAX_MATCH: usize = 258;
/// Shortest match worth a length/distance pair.
const MIN_MATCH: usize = 3;
/// Largest distance deflate can express.
const WINDOW: usize = 32_768;
/// Candidates tried per position: segments are compressed once at start-up,
/// so a deeper search costs nothing that matters.
const CHAIN: usize = 16;
/// Bits of the 3-byte hash.
const HASH_BITS: u32 = 15;

const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// Compresses segments with the fixed codes; keeps its hash tables between
/// segments to save allocations.
///
/// Positions in the tables are counted over every segment compressed so
/// far: entries below the current segment's `base` belong to earlier
/// segments and are ignored, so the 32K-entry head table need not be
/// cleared for each (often tiny) segment.
pub(crate) struct FixedDeflate {
    head: Vec<u32>,
    prev: Vec<u32>,
    base: u32,
}

impl FixedDeflate {
    /// A compressor with empty tables.
    pub(crate) fn new() -> Self {
        FixedDeflate {
            head: vec![0; 1 << HASH_BITS],
            prev: Vec::new(),
            base: 1,
        }
    }

    /// Compresses `plain` into one fixed-code block followed by an empty
    /// stored block: a raw deflate segment that ends byte-aligned and refers
    /// to nothing before its start.
    pub(crate) fn segment(&mut self, plain: &[u8]) -> Vec<u8> {
        let len = u32::try_from(plain.len()).unwrap_or(u32::MAX);
        if self.base.checked_add(len).is_none_or(|end| end == u32::MAX) {
            // Positions would wrap: start the count again from clean tables.
            self.head.fill(0);
            self.base = 1;
        }
        self.prev.clear();
        self.prev.resize(plain.len(), 0);
        let mut w = BitWriter::with_capacity(plain.len() / 2 + 16);

        // Block header: not final, type 01 (fixed codes).
        w.bits(0, 1);
        w.bits(1, 2);
        let mut i = 0;
        while i < plain.len() {
            match self.longest_match(plain, i) {
                Some((len, dist)) => {
                    length_symbol(&mut w, len);
                    distance_symbol(&mut w, dist);
                    for k in i..i + len {
                        self.insert(plain, k);
                    }
                    i += len;
                }
                None => {
                    literal(&mut w, plain[i]);
                    self.insert(plain, i);
                    i += 1;
                }
            }
        }
        self.base = self.base.saturating_add(len);
        // End of block, then an empty stored block to end byte-aligned.
        w.code(0, 7);
        w.bits(0, 1);
        w.bits(0, 2);
        let mut out = w.finish();
        out.extend_from_slice(&[0, 0, 0xff, 0xff]);
        out
    }

    fn hash(plain: &[u8], i: usize) -> Option<usize> {
        let b = plain.get(i..i + MIN_MATCH)?;
        let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        Some((v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize)
    }

    fn insert(&mut self, plain: &[u8], i: usize) {
        if let Some(h) = Self::hash(plain, i) {
            self.prev[i] = self.head[h];
            self.head[h] = self.base + i as u32;
        }
    }

    fn longest_match(&self, plain: &[u8], i: usize) -> Option<(usize, usize)> {
        let h = Self::hash(plain, i)?;
        let limit = (plain.len() - i).min(MAX_MATCH);
        let mut best: Option<(usize, usize)> = None;
        let mut cand = self.head[h];
        for _ in 0..CHAIN {
            // Zero and positions of earlier segments are no candidates.
            if cand < self.base {
                break;
            }
            let c = (cand - self.base) as usize;
            let dist = i - c;
            if dist > WINDOW {
                break;
            }
            let len = plain[c..]
                .iter()
                .zip(&plain[i..i + limit])
                .take_while(|(a, b)| a == b)
                .count();
            if len >= MIN_MATCH && best.is_none_or(|(l, _)| len > l) {
                best = Some((len, dist));
                if len == limit {
                    break;
                }
            }
            cand = self.prev[c];
        }
        best
    }
}

/// Writes a literal byte with its fixed code.
fn literal(w: &mut BitWriter, byte: u8) {
    let v = u32::from(byte);
    if v < 144 {
        w.code(0x30 + v, 8);
    } else {
        w.code(0x190 + (v - 144), 9);
    }
}

/// Writes the length half of a match: symbol 257..285 and its extra bits.
fn length_symbol(w: &mut BitWriter, len: usize) {
    let idx = LENGTH_BASE
        .iter()
        .rposition(|&b| usize::from(b) <= len)
        .expect("a match is at least 3 long, the smallest base");
    let symbol = 257 + idx as u32;
    if symbol < 280 {
        w.code(symbol - 256, 7);
    } else {
        w.code(0xC0 + (symbol - 280), 8);
    }
    let extra = LENGTH_EXTRA[idx];
    if extra > 0 {
        w.bits(
            (len - usize::from(LENGTH_BASE[idx])) as u32,
            u32::from(extra),
        );
    }
}

/// Writes the distance half of a match: a 5-bit code and its extra bits.
fn distance_symbol(w: &mut BitWriter, dist: usize) {
    let idx = DIST_BASE
        .iter()
        .rposition(|&b| usize::from(b) <= dist)
        .expect("a distance is at least 1, the smallest base");
    w.code(idx as u32, 5);
    let extra = DIST_EXTRA[idx];
    if extra > 0 {
        w.bits(
            (dist - usize::from(DIST_BASE[idx])) as u32,
            u32::from(extra),
        );
    }
}

/// Packs bits least significant first, as deflate does.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn with_capacity(cap: usize) -> Self {
        BitWriter {
            out: Vec::with_capacity(cap),
            acc: 0,
            n: 0,
        }
    }

    /// Appends the `len` low bits of `value`, least significant first.
    fn bits(&mut self, value: u32, len: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += len;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// Appends a Huffman code: deflate sends codes most significant bit
    /// first, so the bits are reversed into the LSB-first stream.
    fn code(&mut self, code: u32, len: u32) {
        self.bits(code.reverse_bits() >> (32 - len), len);
    }

    /// Pads the last byte with zero bits and returns the bytes.
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn inflate(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(raw)
            .read_to_end(&mut out)
            .expect("valid deflate");
        out
    }

    #[test]
    fn segments_round_trip_through_a_real_inflater() {
        let mut c = FixedDeflate::new();
        let json = std::fs::read("tests/data/original.jsonl").unwrap_or_else(|_| {
            br#"{"created_at":"Wed Oct 10 20:19:24 +0000 2018","id_str":"1050118621198921728","text":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","user":{"id_str":"6253282"}}"#.to_vec()
        });
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"a".to_vec(),
            b"ab".to_vec(),
            b"abcabcabcabcabcabc".to_vec(),
            vec![0u8; 100_000],
            (0..=255u8).cycle().take(70_000).collect(),
            json.clone(),
        ];
        let mut x = 0x1234_5678u32;
        cases.push(
            (0..50_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    b"{}\":,ab0123"[(x % 11) as usize]
                })
                .collect(),
        );
        for plain in &cases {
            let z = c.segment(plain);
            assert!(z.ends_with(&[0, 0, 0xff, 0xff]), "ends byte-aligned");
            // A segment alone is not a finished stream; close it with a
            // final empty stored block, as the encoder does at the end.
            let mut whole = z.clone();
            whole.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
            assert_eq!(&inflate(&whole), plain);
        }
        assert!(c.segment(&json).len() < json.len(), "JSON compresses");
    }

    #[test]
    fn segments_splice_in_any_order() {
        let mut c = FixedDeflate::new();
        let parts: [&[u8]; 3] = [
            b"{\"id\":\"",
            b"1234567890",
            b"\",\"text\":\"hello hello hello\"}",
        ];
        let mut whole = Vec::new();
        let mut plain = Vec::new();
        for p in parts.iter().rev().chain(parts.iter()) {
            whole.extend_from_slice(&c.segment(p));
            plain.extend_from_slice(p);
        }
        whole.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        assert_eq!(inflate(&whole), plain);
    }
}
