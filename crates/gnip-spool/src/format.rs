//! The bytes on disk: the segment header and the record frame.
//!
//! Pure encoding and decoding, no I/O. Every other module goes through these
//! functions, so the layout is written down once:
//!
//! ```text
//! segment header (32 bytes, little endian)
//!   0  magic      b"GNIPSPOL"
//!   8  version    u32  (FORMAT_VERSION)
//!  12  first      u64  logical offset of the segment's first record
//!  20  first_seq  u64  number of records before the segment
//!  28  crc        u32  CRC-32 of bytes 0..28
//!
//! record frame (19 bytes + payload)
//!   0  len        u32  payload length
//!   4  crc        u32  CRC-32 of bytes 0..4 and 8..19+len
//!   8  kind       u8
//!   9  partition  u16
//!  11  received   i64  milliseconds since the Unix epoch
//!  19  payload
//! ```
//!
//! The record checksum covers the length as well as the fields and the
//! payload, so a torn or flipped length is caught like any other damage.
//! Logical offsets count record bytes only (headers excluded), so a
//! [`Position`](crate::Position) is the same in the disk and in-memory modes.

use crate::entry::EntryRef;

/// Magic bytes opening every segment file.
pub(crate) const MAGIC: &[u8; 8] = b"GNIPSPOL";

/// Version of the layout above; a reader refuses any other.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Size of a segment header in bytes.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 32;

/// Size of a record frame before its payload.
pub(crate) const RECORD_HEADER_LEN: usize = 19;

/// Largest payload accepted. A Gnip activity is a few kilobytes; the bound
/// exists so a damaged length field is rejected without trying to read
/// gigabytes.
pub(crate) const MAX_PAYLOAD_LEN: usize = 16 * 1024 * 1024;

/// The fields of a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// Logical offset of the first record in the segment.
    pub first_offset: u64,
    /// Number of records in the log before this segment.
    pub first_seq: u64,
}

/// Why a segment header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Fewer bytes than a header.
    Short(usize),
    /// The magic bytes do not match.
    Magic,
    /// A version this build does not read.
    Version(u32),
    /// The header checksum does not match.
    Checksum,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Short(n) => {
                write!(f, "header is {n} bytes, expected {SEGMENT_HEADER_LEN}")
            }
            HeaderError::Magic => write!(f, "magic bytes do not match: not a spool segment"),
            HeaderError::Version(v) => {
                write!(
                    f,
                    "format version {v} is not supported (this build reads {FORMAT_VERSION})"
                )
            }
            HeaderError::Checksum => write!(f, "header checksum does not match"),
        }
    }
}

impl SegmentHeader {
    /// Encodes the header.
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN as usize] {
        let mut out = [0u8; SEGMENT_HEADER_LEN as usize];
        out[0..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..20].copy_from_slice(&self.first_offset.to_le_bytes());
        out[20..28].copy_from_slice(&self.first_seq.to_le_bytes());
        let crc = crc32fast::hash(&out[0..28]);
        out[28..32].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a header.
    pub(crate) fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
        if bytes.len() < SEGMENT_HEADER_LEN as usize {
            return Err(HeaderError::Short(bytes.len()));
        }
        if &bytes[0..8] != MAGIC {
            return Err(HeaderError::Magic);
        }
        let version = u32::from_le_bytes(le4(&bytes[8..12]));
        if version != FORMAT_VERSION {
            return Err(HeaderError::Version(version));
        }
        let crc = u32::from_le_bytes(le4(&bytes[28..32]));
        if crc32fast::hash(&bytes[0..28]) != crc {
            return Err(HeaderError::Checksum);
        }
        Ok(SegmentHeader {
            first_offset: u64::from_le_bytes(le8(&bytes[12..20])),
            first_seq: u64::from_le_bytes(le8(&bytes[20..28])),
        })
    }
}

/// Bytes a record takes in the log.
pub(crate) fn record_len(payload_len: usize) -> u64 {
    (RECORD_HEADER_LEN + payload_len) as u64
}

/// Appends the frame of `entry` to `out`.
pub(crate) fn encode_record(entry: &EntryRef<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    let len = u32::try_from(entry.payload.len())
        .expect("payload length was checked against MAX_PAYLOAD_LEN");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.push(entry.kind);
    out.extend_from_slice(&entry.partition.to_le_bytes());
    out.extend_from_slice(&entry.received_at_ms.to_le_bytes());
    out.extend_from_slice(entry.payload);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&out[start..start + 4]);
    hasher.update(&out[start + 8..]);
    let crc = hasher.finalize();
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The fixed fields of a record frame, read before its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    /// Payload length.
    pub len: usize,
    /// Stored checksum.
    pub crc: u32,
    /// Record kind.
    pub kind: u8,
    /// Partition.
    pub partition: u16,
    /// Receive time in milliseconds.
    pub received_at_ms: i64,
}

/// Why a record frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordError {
    /// The length field exceeds [`MAX_PAYLOAD_LEN`].
    Length(usize),
    /// The checksum does not match.
    Checksum,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Length(n) => {
                write!(
                    f,
                    "record length {n} exceeds the maximum of {MAX_PAYLOAD_LEN}"
                )
            }
            RecordError::Checksum => write!(f, "record checksum does not match"),
        }
    }
}

impl RecordHeader {
    /// Reads the fixed fields; `bytes` holds at least [`RECORD_HEADER_LEN`].
    pub(crate) fn decode(bytes: &[u8]) -> Result<RecordHeader, RecordError> {
        let len = u32::from_le_bytes(le4(&bytes[0..4])) as usize;
        if len > MAX_PAYLOAD_LEN {
            return Err(RecordError::Length(len));
        }
        Ok(RecordHeader {
            len,
            crc: u32::from_le_bytes(le4(&bytes[4..8])),
            kind: bytes[8],
            partition: u16::from_le_bytes([bytes[9], bytes[10]]),
            received_at_ms: i64::from_le_bytes(le8(&bytes[11..19])),
        })
    }

    /// Checks the checksum against the whole frame (header and payload).
    pub(crate) fn verify(&self, frame: &[u8]) -> Result<(), RecordError> {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&frame[0..4]);
        hasher.update(&frame[8..RECORD_HEADER_LEN + self.len]);
        if hasher.finalize() == self.crc {
            Ok(())
        } else {
            Err(RecordError::Checksum)
        }
    }
}

fn le4(b: &[u8]) -> [u8; 4] {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    a
}

fn le8(b: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        encode_record(
            &EntryRef {
                kind: 3,
                partition: 17,
                received_at_ms: 1_700_000_000_123,
                payload: b"{\"id\":1}",
            },
            &mut out,
        );
        out
    }

    #[test]
    fn header_round_trips() {
        let h = SegmentHeader {
            first_offset: 123_456,
            first_seq: 789,
        };
        assert_eq!(SegmentHeader::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn header_rejects_damage() {
        let h = SegmentHeader {
            first_offset: 1,
            first_seq: 2,
        }
        .encode();
        assert_eq!(SegmentHeader::decode(&h[..10]), Err(HeaderError::Short(10)));
        let mut bad = h;
        bad[0] = b'X';
        assert_eq!(SegmentHeader::decode(&bad), Err(HeaderError::Magic));
        let mut bad = h;
        bad[8] = 9;
        assert_eq!(SegmentHeader::decode(&bad), Err(HeaderError::Version(9)));
        let mut bad = h;
        bad[15] ^= 1;
        assert_eq!(SegmentHeader::decode(&bad), Err(HeaderError::Checksum));
    }

    #[test]
    fn record_round_trips() {
        let frame = sample();
        assert_eq!(frame.len() as u64, record_len(8));
        let h = RecordHeader::decode(&frame).expect("valid header");
        assert_eq!(
            (h.len, h.kind, h.partition, h.received_at_ms),
            (8, 3, 17, 1_700_000_000_123)
        );
        assert_eq!(h.verify(&frame), Ok(()));
        assert_eq!(&frame[RECORD_HEADER_LEN..], b"{\"id\":1}");
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let frame = sample();
        for byte in 0..frame.len() {
            for bit in 0..8 {
                let mut bad = frame.clone();
                bad[byte] ^= 1 << bit;
                let caught = match RecordHeader::decode(&bad) {
                    Err(_) => true,
                    Ok(h) => h.len != 8 || h.verify(&bad).is_err(),
                };
                assert!(caught, "flip of bit {bit} in byte {byte} went unnoticed");
            }
        }
    }

    #[test]
    fn oversized_length_is_refused() {
        let mut frame = sample();
        frame[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            RecordHeader::decode(&frame),
            Err(RecordError::Length(u32::MAX as usize))
        );
    }
}
