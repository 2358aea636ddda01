//! Inflate: HTTP body chunks in, plaintext chunks out. Sits between the
//! connection and the framer. Pure apart from allocating output buffers.
//!
//! The enterprise streams send one gzip member spanning the whole response
//! (spec 1.1), so the decompressor is driven incrementally: every chunk that
//! arrives is inflated at once and whatever plaintext it yields is handed on,
//! never held back to fill a buffer (a quiet stream would otherwise stall).
//! A plain body (no `Content-Encoding`) passes through untouched. Wire bytes
//! and inflated bytes are counted by the caller from what goes in and out.

use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};

/// The smallest and largest output buffer per call. Output buffers become
/// the backing store of the records cut from them, so a small input gets a
/// small buffer: a trickling stream must not pin 64 KiB per record.
const MIN_OUT: usize = 4 * 1024;
const MAX_OUT: usize = 64 * 1024;

/// Why the body could not be inflated. Either way the connection is
/// unusable and is reconnected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The gzip data is corrupt (bad header, bad deflate data, bad CRC).
    #[error("corrupt gzip data: {0}")]
    Corrupt(String),
    /// The body ended inside a gzip member.
    #[error("gzip stream truncated: the body ended inside a member")]
    Truncated,
}

/// An incremental gzip (or pass-through) decoder.
pub struct Inflater {
    decoder: Option<Decompress>,
    /// True while inside a member (header seen, trailer not yet).
    in_member: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("gzip", &self.decoder.is_some())
            .field("in_member", &self.in_member)
            .finish()
    }
}

impl Inflater {
    /// A decoder for a gzip body (`gzip = true`) or a plain one.
    pub fn new(gzip: bool) -> Inflater {
        Inflater {
            decoder: gzip.then(|| Decompress::new_gzip(15)),
            in_member: false,
        }
    }

    /// Inflates one body chunk, calling `out` with each piece of plaintext
    /// as soon as it is available.
    ///
    /// # Errors
    ///
    /// [`InflateError::Corrupt`] for data that is not valid gzip.
    pub fn push(&mut self, chunk: Bytes, mut out: impl FnMut(Bytes)) -> Result<(), InflateError> {
        let Some(decoder) = self.decoder.as_mut() else {
            if !chunk.is_empty() {
                out(chunk);
            }
            return Ok(());
        };
        let mut input: &[u8] = &chunk;
        while !input.is_empty() {
            let cap = (input.len() * 4).clamp(MIN_OUT, MAX_OUT);
            let mut buf = Vec::with_capacity(cap);
            let before_in = decoder.total_in();
            let status = decoder
                .decompress_vec(input, &mut buf, FlushDecompress::None)
                .map_err(|e| InflateError::Corrupt(e.to_string()))?;
            let consumed = usize::try_from(decoder.total_in() - before_in)
                .expect("consumed bytes are bounded by the input slice length");
            input = &input[consumed..];
            self.in_member = true;
            let produced = buf.len();
            if produced > 0 {
                out(Bytes::from(buf));
            }
            match status {
                Status::StreamEnd => {
                    // A member ended; another may follow (concatenated gzip).
                    self.in_member = false;
                    *decoder = Decompress::new_gzip(15);
                }
                Status::Ok | Status::BufError => {
                    if consumed == 0 && produced == 0 {
                        // No progress with input left: zlib wants more
                        // input than we have, which cannot happen with
                        // bytes left unless the data is stuck.
                        return Err(InflateError::Corrupt("decoder made no progress".into()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks that the body did not end inside a gzip member.
    ///
    /// # Errors
    ///
    /// [`InflateError::Truncated`] when it did.
    pub fn finish(&self) -> Result<(), InflateError> {
        if self.decoder.is_some() && self.in_member {
            Err(InflateError::Truncated)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).expect("in memory");
        e.finish().expect("in memory")
    }

    fn inflate_in_pieces(gz: &[u8], piece: usize) -> Result<Vec<u8>, InflateError> {
        let mut inf = Inflater::new(true);
        let mut out = Vec::new();
        for c in gz.chunks(piece) {
            inf.push(Bytes::copy_from_slice(c), |b| out.extend_from_slice(&b))?;
        }
        inf.finish()?;
        Ok(out)
    }

    #[test]
    fn inflates_across_any_chunking() {
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{{\"id_str\":\"{i}\"}}\r\n").into_bytes())
            .collect();
        let gz = gzip(&text);
        for piece in [1, 7, 100, 4096, gz.len()] {
            assert_eq!(
                inflate_in_pieces(&gz, piece).expect("valid gzip"),
                text,
                "piece {piece}"
            );
        }
    }

    #[test]
    fn emits_what_has_arrived_without_waiting_for_more() {
        // A sync-flushed stream: after the first flush the first line must be
        // available although the member has not ended.
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(b"{\"a\":1}\r\n").expect("in memory");
        e.flush().expect("in memory");
        let first = e.get_ref().clone();
        let mut inf = Inflater::new(true);
        let mut out = Vec::new();
        inf.push(Bytes::from(first), |b| out.extend_from_slice(&b))
            .expect("valid");
        assert_eq!(out, b"{\"a\":1}\r\n");
        assert_eq!(inf.finish(), Err(InflateError::Truncated));
    }

    #[test]
    fn concatenated_members_and_plain_bodies() {
        let mut gz = gzip(b"one\r\n");
        gz.extend(gzip(b"two\r\n"));
        assert_eq!(inflate_in_pieces(&gz, 3).expect("valid"), b"one\r\ntwo\r\n");

        let mut plain = Inflater::new(false);
        let mut out = Vec::new();
        plain
            .push(Bytes::from_static(b"abc"), |b| out.extend_from_slice(&b))
            .expect("plain");
        assert_eq!(out, b"abc");
        assert_eq!(plain.finish(), Ok(()));
    }

    #[test]
    fn truncated_and_corrupt_data_are_errors_not_panics() {
        let gz = gzip(b"{\"a\":1}\r\n{\"b\":2}\r\n");
        assert_eq!(
            inflate_in_pieces(&gz[..gz.len() - 4], 5),
            Err(InflateError::Truncated)
        );
        let mut bad = gz.clone();
        bad[12] ^= 0xff;
        bad[13] ^= 0x55;
        assert!(inflate_in_pieces(&bad, 5).is_err());
        assert!(matches!(
            inflate_in_pieces(b"this is not gzip at all", 4),
            Err(InflateError::Corrupt(_))
        ));
        // A bad CRC in the trailer.
        let mut crc = gz;
        let n = crc.len();
        crc[n - 8] ^= 1;
        assert!(matches!(
            inflate_in_pieces(&crc, 64),
            Err(InflateError::Corrupt(_))
        ));
    }
}
