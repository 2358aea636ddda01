//! The bytes of a stream body: a gzip member assembled from pre-compressed
//! deflate segments and stored blocks, or plain text, wrapped in HTTP/1.1
//! chunks.
//!
//! Every record template is compressed once, at start-up, into independent
//! deflate segments (fixed Huffman codes, matches only within the segment)
//! that each end byte-aligned, so such segments can be concatenated into
//! any deflate stream in any order. The parts that differ
//! per record (post id, time, matching rules) and the lines the simulator
//! injects (heartbeats, system messages, malformed lines) go in as stored
//! blocks. Serving a record is then a copy plus a CRC-32 update, which is
//! what lets one core feed a client at tens of thousands of records per
//! second, and every record is decodable as soon as its bytes arrive (the
//! same guarantee a per-record sync flush gives).

use flate2::Crc;

use crate::fixed::FixedDeflate;

/// A gzip header: deflate, no name, no mtime, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A stored block holds at most 65535 bytes (its LEN field is 16 bits).
const STORED_MAX: usize = 65_535;

/// Compresses `plain` into a self-contained raw deflate segment that ends
/// byte-aligned, so that it can be spliced into any deflate stream.
pub(crate) fn compress_segment(c: &mut FixedDeflate, plain: &[u8]) -> Vec<u8> {
    c.segment(plain)
}

/// A segment compressor for [`compress_segment`]. Fixed codes, not zlib's
/// dynamic ones: see [`crate::fixed`] for the measured reason.
pub(crate) fn segment_compressor() -> FixedDeflate {
    FixedDeflate::new()
}

/// Writes one stream body's content encoding: gzip or identity.
pub(crate) struct Encoder {
    gzip: bool,
    crc: Crc,
    finished: bool,
    plain: u64,
}

impl Encoder {
    /// A new body; `gzip` chooses the content encoding.
    pub(crate) fn new(gzip: bool) -> Self {
        Encoder {
            gzip,
            crc: Crc::new(),
            finished: false,
            plain: 0,
        }
    }

    /// Appends the gzip header (nothing for identity).
    pub(crate) fn start(&mut self, out: &mut Vec<u8>) {
        if self.gzip {
            out.extend_from_slice(&GZIP_HEADER);
        }
    }

    /// Plain (decoded) bytes encoded so far.
    pub(crate) fn plain_bytes(&self) -> u64 {
        self.plain
    }

    /// Appends a pre-compressed segment whose plain text is `plain`.
    pub(crate) fn segment(&mut self, out: &mut Vec<u8>, plain: &[u8], z: &[u8]) {
        self.plain += plain.len() as u64;
        if self.gzip {
            self.crc.update(plain);
            out.extend_from_slice(z);
        } else {
            out.extend_from_slice(plain);
        }
    }

    /// Appends bytes that were not pre-compressed, as stored blocks.
    pub(crate) fn literal(&mut self, out: &mut Vec<u8>, plain: &[u8]) {
        self.plain += plain.len() as u64;
        if !self.gzip {
            out.extend_from_slice(plain);
            return;
        }
        self.crc.update(plain);
        for piece in plain.chunks(STORED_MAX) {
            stored_block(out, piece, false);
        }
    }

    /// Appends the end of the gzip member: an empty final block, the CRC-32
    /// and the length. Does nothing for identity or when already finished.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.gzip || self.finished {
            return;
        }
        self.finished = true;
        stored_block(out, &[], true);
        out.extend_from_slice(&self.crc.sum().to_le_bytes());
        out.extend_from_slice(&self.crc.amount().to_le_bytes());
    }
}

// The stream is byte-aligned here (segments end with a full flush and stored
// blocks end aligned), so the 3 header bits plus padding fill one byte.
fn stored_block(out: &mut Vec<u8>, data: &[u8], last: bool) {
    let len = data.len() as u16;
    out.push(u8::from(last));
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
}

/// Appends `data` as one HTTP/1.1 chunk. Empty data is skipped: a
/// zero-length chunk would end the body.
pub(crate) fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    use std::io::Write;
    write!(out, "{:x}\r\n", data.len()).expect("writing to a Vec cannot fail");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The zero-length chunk that ends a chunked body.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(data)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    #[test]
    fn spliced_segments_and_stored_blocks_form_valid_gzip() {
        let mut c = segment_compressor();
        let a = b"{\"id_str\":\"".repeat(50);
        let b = b"\",\"text\":\"hello world\"}\r\n".repeat(20);
        let za = compress_segment(&mut c, &a);
        let zb = compress_segment(&mut c, &b);
        assert!(zb.len() < b.len() / 2, "segments are compressed");

        let mut enc = Encoder::new(true);
        let mut out = Vec::new();
        enc.start(&mut out);
        // Out of order and repeated on purpose: segments are independent.
        enc.segment(&mut out, &b, &zb);
        enc.literal(&mut out, b"12345");
        enc.segment(&mut out, &a, &za);
        enc.literal(&mut out, &vec![b'x'; 70_000]);
        enc.segment(&mut out, &b, &zb);
        enc.finish(&mut out);

        let mut want = b.clone();
        want.extend_from_slice(b"12345");
        want.extend_from_slice(&a);
        want.extend(std::iter::repeat_n(b'x', 70_000));
        want.extend_from_slice(&b);
        assert_eq!(gunzip(&out), want);
    }

    #[test]
    fn a_prefix_decodes_every_complete_segment() {
        let mut c = segment_compressor();
        let rec = b"{\"text\":\"a record that should come out promptly\"}\r\n";
        let z = compress_segment(&mut c, rec);
        let mut enc = Encoder::new(true);
        let mut out = Vec::new();
        enc.start(&mut out);
        enc.segment(&mut out, rec, &z);

        let mut inflate = flate2::Decompress::new(false);
        let mut plain = Vec::with_capacity(1024);
        inflate
            .decompress_vec(&out[10..], &mut plain, flate2::FlushDecompress::Sync)
            .expect("valid deflate");
        assert_eq!(
            plain, rec,
            "the record decodes without waiting for more input"
        );
    }

    #[test]
    fn identity_passes_plain_text_through() {
        let mut enc = Encoder::new(false);
        let mut out = Vec::new();
        enc.start(&mut out);
        enc.segment(&mut out, b"abc", b"zzz");
        enc.literal(&mut out, b"\r\n");
        enc.finish(&mut out);
        assert_eq!(out, b"abc\r\n");
    }

    #[test]
    fn chunks_are_framed_in_hex() {
        let mut out = Vec::new();
        chunk(&mut out, &[b'a'; 26]);
        chunk(&mut out, b"");
        assert_eq!(out, [b"1a\r\n".as_slice(), &[b'a'; 26], b"\r\n"].concat());
    }
}
