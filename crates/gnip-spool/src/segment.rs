//! Segment files on disk: naming, creating one durably, reading its header,
//! and scanning its records to find where the valid data ends.
//!
//! A segment is named after the logical offset of its first record
//! (`00000000000000123456.seg`), so a directory listing sorted by name is
//! the log in order. A new segment is written as `NAME.seg.tmp`, fsynced,
//! renamed and the directory fsynced: a segment file therefore always has a
//! whole header, and a torn header can only mean damage, never a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::SpoolError;
use crate::format::{
    RECORD_HEADER_LEN, RecordHeader, SEGMENT_HEADER_LEN, SegmentHeader, record_len,
};

const SEGMENT_EXT: &str = "seg";
const TEMP_SUFFIX: &str = ".seg.tmp";

/// Reads of the recovery scan: large enough that a 64 MiB segment is read
/// in 64 system calls, small enough to be a trivial allocation.
const SCAN_BUFFER: usize = 1024 * 1024;

/// The path of the segment whose first record is at `first_offset`.
pub(crate) fn segment_path(dir: &Path, first_offset: u64) -> PathBuf {
    dir.join(format!("{first_offset:020}.{SEGMENT_EXT}"))
}

/// Makes the directory entries of `dir` (creations, renames, removals)
/// durable. A rename alone is not: without this a power cut can bring the
/// old name back.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), SpoolError> {
    let handle = File::open(dir).map_err(|e| SpoolError::io("open directory", dir, e))?;
    handle
        .sync_all()
        .map_err(|e| SpoolError::io("fsync directory", dir, e))
}

/// Creates a segment durably and returns it open for appending, positioned
/// after its header.
pub(crate) fn create_segment(
    dir: &Path,
    header: SegmentHeader,
) -> Result<(File, PathBuf), SpoolError> {
    let path = segment_path(dir, header.first_offset);
    let temp = dir.join(format!("{:020}{TEMP_SUFFIX}", header.first_offset));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&temp)
        .map_err(|e| SpoolError::io("create segment", &temp, e))?;
    file.write_all(&header.encode())
        .map_err(|e| SpoolError::io("write segment header", &temp, e))?;
    file.sync_all()
        .map_err(|e| SpoolError::io("fsync segment", &temp, e))?;
    fs::rename(&temp, &path).map_err(|e| SpoolError::io("rename segment", &path, e))?;
    fsync_dir(dir)?;
    Ok((file, path))
}

/// Opens an existing segment for appending at `len`, its durable length,
/// cutting off anything after it (left by a writer whose last sync failed).
pub(crate) fn open_for_append(path: &Path, len: u64) -> Result<(File, u64), SpoolError> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| SpoolError::io("open segment for append", path, e))?;
    let actual = file
        .metadata()
        .map_err(|e| SpoolError::io("stat segment", path, e))?
        .len();
    if actual < len {
        return Err(SpoolError::Corrupt {
            path: path.to_path_buf(),
            offset: actual,
            reason: format!("segment is {actual} bytes, shorter than its durable length {len}"),
        });
    }
    if actual > len {
        file.set_len(len)
            .map_err(|e| SpoolError::io("truncate segment", path, e))?;
        file.sync_all()
            .map_err(|e| SpoolError::io("fsync segment", path, e))?;
    }
    file.seek(SeekFrom::Start(len))
        .map_err(|e| SpoolError::io("seek segment", path, e))?;
    Ok((file, len))
}

/// Lists the segment files of `dir` in log order, and removes the temporary
/// files a crash during segment creation can leave (they hold no records).
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<PathBuf>, SpoolError> {
    let mut found = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| SpoolError::io("list directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SpoolError::io("list directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TEMP_SUFFIX) {
            let path = entry.path();
            fs::remove_file(&path)
                .map_err(|e| SpoolError::io("remove temporary segment", &path, e))?;
            continue;
        }
        if name
            .strip_suffix(".seg")
            .is_some_and(|stem| stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// Reads and checks the header of the segment at `path`, and its length.
///
/// # Errors
///
/// [`SpoolError::BadHeader`] naming the file when the header does not hold
/// or disagrees with the file name.
pub(crate) fn read_header(path: &Path) -> Result<(SegmentHeader, u64), SpoolError> {
    let file = File::open(path).map_err(|e| SpoolError::io("open segment", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| SpoolError::io("stat segment", path, e))?
        .len();
    let mut buf = [0u8; SEGMENT_HEADER_LEN as usize];
    let got = read_full_at(&file, &mut buf, 0)
        .map_err(|e| SpoolError::io("read segment header", path, e))?;
    let header = SegmentHeader::decode(&buf[..got]).map_err(|e| SpoolError::BadHeader {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if segment_path(Path::new(""), header.first_offset).file_name() != path.file_name() {
        return Err(SpoolError::BadHeader {
            path: path.to_path_buf(),
            reason: format!(
                "header says first offset {}, which disagrees with the file name",
                header.first_offset
            ),
        });
    }
    Ok((header, len))
}

/// Reads the receive time of the first record of a segment, if it has one
/// that holds.
pub(crate) fn first_received_at(path: &Path) -> Result<Option<i64>, SpoolError> {
    let file = File::open(path).map_err(|e| SpoolError::io("open segment", path, e))?;
    let mut buf = [0u8; RECORD_HEADER_LEN];
    let got = read_full_at(&file, &mut buf, SEGMENT_HEADER_LEN)
        .map_err(|e| SpoolError::io("read segment", path, e))?;
    if got < RECORD_HEADER_LEN {
        return Ok(None);
    }
    Ok(RecordHeader::decode(&buf).ok().map(|h| h.received_at_ms))
}

/// What a sequential scan of a segment found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Logical bytes of valid records from the start of the scan.
    pub valid_bytes: u64,
    /// Number of valid records.
    pub records: u64,
    /// Receive time of the first valid record.
    pub first_received_at_ms: Option<i64>,
    /// Receive time of the last valid record.
    pub last_received_at_ms: Option<i64>,
    /// Why the scan stopped before the end, if it did.
    pub stopped: Option<String>,
}

/// Scans the records of the segment at `path` from its first record, up to
/// `limit` logical bytes (or the end of the file), stopping at the first
/// record whose length or checksum does not hold.
pub(crate) fn scan(path: &Path, limit: Option<u64>) -> Result<Scan, SpoolError> {
    let file = File::open(path).map_err(|e| SpoolError::io("open segment", path, e))?;
    let file_len = file
        .metadata()
        .map_err(|e| SpoolError::io("stat segment", path, e))?
        .len();
    let mut avail = file_len.saturating_sub(SEGMENT_HEADER_LEN);
    if let Some(limit) = limit {
        avail = avail.min(limit);
    }
    let mut reader = BufReader::with_capacity(SCAN_BUFFER, file);
    reader
        .seek(SeekFrom::Start(SEGMENT_HEADER_LEN))
        .map_err(|e| SpoolError::io("seek segment", path, e))?;

    let mut out = Scan::default();
    let mut frame = vec![0u8; RECORD_HEADER_LEN];
    loop {
        let left = avail - out.valid_bytes;
        if left == 0 {
            break;
        }
        if left < RECORD_HEADER_LEN as u64 {
            out.stopped = Some(format!("{left} bytes remain, fewer than a record header"));
            break;
        }
        frame.resize(RECORD_HEADER_LEN, 0);
        reader
            .read_exact(&mut frame)
            .map_err(|e| SpoolError::io("read segment", path, e))?;
        let header = match RecordHeader::decode(&frame) {
            Ok(h) => h,
            Err(e) => {
                out.stopped = Some(e.to_string());
                break;
            }
        };
        let need = record_len(header.len);
        if need > left {
            out.stopped = Some(format!("record of {need} bytes but only {left} remain"));
            break;
        }
        frame.resize(RECORD_HEADER_LEN + header.len, 0);
        reader
            .read_exact(&mut frame[RECORD_HEADER_LEN..])
            .map_err(|e| SpoolError::io("read segment", path, e))?;
        if let Err(e) = header.verify(&frame) {
            out.stopped = Some(e.to_string());
            break;
        }
        out.valid_bytes += need;
        out.records += 1;
        out.first_received_at_ms
            .get_or_insert(header.received_at_ms);
        out.last_received_at_ms = Some(header.received_at_ms);
    }
    Ok(out)
}

/// Reads up to `buf.len()` bytes at `pos`, stopping early only at the end of
/// the file; returns how many were read.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryRef;
    use crate::format::encode_record;

    fn write_segment(dir: &Path, records: usize, tail: &[u8]) -> PathBuf {
        let (mut file, path) = create_segment(
            dir,
            SegmentHeader {
                first_offset: 0,
                first_seq: 0,
            },
        )
        .expect("create");
        let mut buf = Vec::new();
        for i in 0..records {
            let payload = vec![i as u8; 100];
            encode_record(
                &EntryRef {
                    kind: 1,
                    partition: 0,
                    received_at_ms: i as i64,
                    payload: &payload,
                },
                &mut buf,
            );
        }
        buf.extend_from_slice(tail);
        file.write_all(&buf).expect("write");
        path
    }

    #[test]
    fn scan_counts_valid_records_and_stops_at_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_segment(dir.path(), 5, &[7, 0, 0]);
        let scan = scan(&path, None).expect("scan");
        assert_eq!(scan.records, 5);
        assert_eq!(scan.valid_bytes, 5 * record_len(100));
        assert_eq!(
            (scan.first_received_at_ms, scan.last_received_at_ms),
            (Some(0), Some(4))
        );
        assert!(scan.stopped.is_some());
    }

    #[test]
    fn created_segment_has_a_checked_header_and_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_segment(dir.path(), 1, &[]);
        let (header, len) = read_header(&path).expect("header");
        assert_eq!(
            header,
            SegmentHeader {
                first_offset: 0,
                first_seq: 0
            }
        );
        assert_eq!(len, SEGMENT_HEADER_LEN + record_len(100));
        assert_eq!(list_segments(dir.path()).expect("list"), vec![path]);
    }

    #[test]
    fn header_that_disagrees_with_the_name_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_segment(dir.path(), 1, &[]);
        let moved = segment_path(dir.path(), 999);
        fs::rename(&path, &moved).expect("rename");
        let err = read_header(&moved).expect_err("must refuse");
        assert!(
            matches!(err, SpoolError::BadHeader { ref path, .. } if path == &moved),
            "{err}"
        );
    }
}
