//! Recovery of `.part` files: a file the sink was writing when the process
//! died, or one it gave up on after a failed write. Every batch that was
//! acknowledged ended with a gzip sync flush and an fsync, so the longest
//! prefix that still inflates holds every acknowledged line; what follows
//! (a half-written block, an incomplete line) was never acknowledged and is
//! dropped. The whole lines are written out as a new, finished gzip file.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::{Compression, Crc, Decompress, FlushDecompress, Status};

use super::disk::sync_dir;

/// What recovering one `.part` file found and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Whole lines kept.
    pub(crate) lines: u64,
    /// Uncompressed bytes kept (the lines with their `\n`).
    pub(crate) bytes: u64,
    /// Uncompressed bytes of an incomplete last line, dropped.
    pub(crate) dropped_partial: u64,
    /// Bytes of the `.part` file past the part that inflated, dropped.
    pub(crate) dropped_compressed: u64,
    /// The gzip stream was complete (a finished file whose rename failed).
    pub(crate) complete: bool,
    /// The finished file written, if any line was kept.
    pub(crate) output: Option<PathBuf>,
}

/// The length of a gzip member header at the start of `buf`, or `None`
/// when `buf` does not start with a whole, well-formed header (RFC 1952,
/// section 2.3).
fn header_len(buf: &[u8]) -> Option<usize> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    if buf.len() < 10 || buf[0] != 0x1f || buf[1] != 0x8b || buf[2] != 8 {
        return None;
    }
    let flags = buf[3];
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let xlen = usize::from(u16::from_le_bytes([*buf.get(pos)?, *buf.get(pos + 1)?]));
        pos += 2 + xlen;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let nul = buf.get(pos..)?.iter().position(|&b| b == 0)?;
            pos += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        pos += 2;
    }
    (pos <= buf.len()).then_some(pos)
}

/// Rebuilds `part` as the finished file `output`: inflates the longest
/// valid prefix, keeps whole lines, writes them to `output` through a
/// temporary name (fsync, rename, directory fsync), then removes `part`.
/// Nothing is written when no whole line survives; `part` is removed
/// either way.
///
/// # Errors
///
/// An I/O error reading `part` or writing `output`; `part` is then left
/// in place, so recovery can run again.
pub(crate) fn recover_part(
    part: &Path,
    output: &Path,
    level: Compression,
) -> io::Result<Recovered> {
    let tmp = with_suffix(output, super::naming::RECOVERING_SUFFIX);
    let result = rebuild(part, output, &tmp, level);
    if result.is_err() {
        // Leave no half-written rebuild behind; the `.part` is still there.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn rebuild(part: &Path, output: &Path, tmp: &Path, level: Compression) -> io::Result<Recovered> {
    let mut input = File::open(part)?;
    let file_len = input.metadata()?.len();
    let dir = part.parent().unwrap_or(Path::new("."));

    // The header is at most a few hundred bytes; a first read of 64 KiB
    // holds it whole for every file this sink writes.
    let mut inbuf = vec![0u8; 64 * 1024];
    let mut in_len = read_full(&mut input, &mut inbuf)?;
    let mut report = Recovered::default();
    let Some(hlen) = header_len(&inbuf[..in_len]) else {
        report.dropped_compressed = file_len;
        fs::remove_file(part)?;
        sync_dir(dir)?;
        return Ok(report);
    };
    let mut in_pos = hlen;
    let mut consumed_total = hlen as u64;

    let mut enc: Option<GzEncoder<File>> = None;
    let mut inflate = Decompress::new(false);
    let mut out = vec![0u8; 256 * 1024];
    let mut partial: Vec<u8> = Vec::new();
    let mut crc = Crc::new();
    // A full output buffer may leave inflated bytes inside the inflater;
    // drain them before reading on (or before deciding the input ended).
    let mut out_full = false;

    loop {
        if in_pos == in_len && !out_full {
            in_len = read_full(&mut input, &mut inbuf)?;
            in_pos = 0;
            if in_len == 0 {
                break;
            }
        }
        let before_in = inflate.total_in();
        let before_out = inflate.total_out();
        let status = inflate.decompress(&inbuf[in_pos..in_len], &mut out, FlushDecompress::None);
        let used = (inflate.total_in() - before_in) as usize;
        let made = (inflate.total_out() - before_out) as usize;
        in_pos += used;
        out_full = made == out.len();
        consumed_total += used as u64;
        let produced = &out[..made];
        crc.update(produced);
        if let Some(last_nl) = produced.iter().rposition(|&b| b == b'\n') {
            let whole = &produced[..=last_nl];
            let lines = whole.iter().filter(|&&b| b == b'\n').count() as u64;
            let w = match &mut enc {
                Some(w) => w,
                None => enc.insert(GzEncoder::new(
                    File::options()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(tmp)?,
                    level,
                )),
            };
            w.write_all(&partial)?;
            w.write_all(whole)?;
            report.lines += lines;
            report.bytes += (partial.len() + whole.len()) as u64;
            partial.clear();
            partial.extend_from_slice(&produced[last_nl + 1..]);
        } else {
            partial.extend_from_slice(produced);
        }
        match status {
            Ok(Status::StreamEnd) => {
                report.complete = true;
                break;
            }
            // A corrupt or cut block ends the valid prefix.
            Err(_) => break,
            Ok(_) if used == 0 && made == 0 && in_pos < in_len => break,
            Ok(_) => {}
        }
    }
    if report.complete {
        // An intact trailer (CRC-32 and length) is not part of the dropped
        // tail; a mismatch means damage the inflater could not see.
        let rest = file_len - consumed_total;
        consumed_total += rest.min(8);
        let trailer_ok = trailer(&mut input, &inbuf[in_pos..in_len])
            .is_some_and(|(sum, len)| sum == crc.sum() && len == crc.amount());
        if !trailer_ok {
            tracing::warn!(file = %part.display(), "Gzip trailer does not match the inflated data; kept the whole lines anyway.");
        }
    }
    report.dropped_partial = partial.len() as u64;
    report.dropped_compressed = file_len.saturating_sub(consumed_total);

    if let Some(enc) = enc {
        let file = enc.finish()?;
        file.sync_all()?;
        drop(file);
        fs::rename(tmp, output)?;
        // The finished file must be durable before its source goes.
        sync_dir(dir)?;
        report.output = Some(output.to_path_buf());
    }
    fs::remove_file(part)?;
    sync_dir(dir)?;
    Ok(report)
}

/// The CRC-32 and length of a gzip trailer, from the bytes already read
/// and the file after them.
fn trailer(input: &mut File, buffered: &[u8]) -> Option<(u32, u32)> {
    let mut t = buffered.iter().copied().take(8).collect::<Vec<u8>>();
    if t.len() < 8 {
        let mut more = vec![0u8; 8 - t.len()];
        input.read_exact(&mut more).ok()?;
        t.extend_from_slice(&more);
    }
    Some((
        u32::from_le_bytes([t[0], t[1], t[2], t[3]]),
        u32::from_le_bytes([t[4], t[5], t[6], t[7]]),
    ))
}

/// Reads until `buf` is full or the file ends.
fn read_full(input: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    fn gunzip(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(File::open(path).unwrap())
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Writes `batches` as the sink does (sync flush after each) and
    /// returns the compressed length after each batch.
    fn write_part(path: &Path, batches: &[Vec<String>]) -> Vec<u64> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        let mut ends = Vec::new();
        for batch in batches {
            for line in batch {
                enc.write_all(line.as_bytes()).unwrap();
                enc.write_all(b"\n").unwrap();
            }
            enc.flush().unwrap();
            ends.push(enc.get_ref().len() as u64);
        }
        fs::write(path, enc.get_ref()).unwrap();
        ends
    }

    #[test]
    fn header_lengths() {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(b"x").unwrap();
        let bytes = enc.finish().unwrap();
        assert_eq!(header_len(&bytes), Some(10));
        let mut named = flate2::GzBuilder::new()
            .filename("a.json")
            .comment("c")
            .write(Vec::new(), Compression::fast());
        named.write_all(b"x").unwrap();
        let bytes = named.finish().unwrap();
        assert_eq!(header_len(&bytes), Some(10 + 7 + 2));
        assert_eq!(header_len(&bytes[..12]), None);
        assert_eq!(header_len(b"not gzip at all"), None);
    }

    #[test]
    fn recovers_whole_lines_from_a_cut_file() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("s-0001.jsonl.gz.part");
        let batches: Vec<Vec<String>> = (0..3)
            .map(|b| {
                (0..50)
                    .map(|i| format!("{{\"batch\":{b},\"i\":{i}}}"))
                    .collect()
            })
            .collect();
        let ends = write_part(&part, &batches);
        // Cut in the middle of the third batch's bytes.
        let cut = (ends[1] + ends[2]) / 2;
        File::options()
            .write(true)
            .open(&part)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let out = dir.path().join("s-0002.jsonl.gz");
        let r = recover_part(&part, &out, Compression::fast()).unwrap();
        assert!(!part.exists());
        assert!(!r.complete);
        assert!(r.lines >= 100, "{r:?}");
        let text = String::from_utf8(gunzip(&out)).unwrap();
        let expected: Vec<&String> = batches.iter().flatten().collect();
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(got.len() as u64, r.lines);
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g, e);
        }
    }

    #[test]
    fn a_complete_file_is_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("s-0001.jsonl.gz.part");
        let mut enc = GzEncoder::new(File::create(&part).unwrap(), Compression::fast());
        enc.write_all(b"{\"a\":1}\n{\"a\":2}\n").unwrap();
        enc.finish().unwrap();
        let out = dir.path().join("s-0002.jsonl.gz");
        let r = recover_part(&part, &out, Compression::fast()).unwrap();
        assert!(r.complete);
        assert_eq!(
            (r.lines, r.dropped_partial, r.dropped_compressed),
            (2, 0, 0)
        );
        assert_eq!(gunzip(&out), b"{\"a\":1}\n{\"a\":2}\n");
    }

    #[test]
    fn an_empty_or_garbage_part_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("a-0001.jsonl.gz.part", &b""[..]),
            ("b-0001.jsonl.gz.part", b"garbage!!!!!!"),
        ] {
            let part = dir.path().join(name);
            fs::write(&part, content).unwrap();
            let out = dir.path().join("out.jsonl.gz");
            let r = recover_part(&part, &out, Compression::fast()).unwrap();
            assert_eq!(r.lines, 0);
            assert_eq!(r.dropped_compressed, content.len() as u64);
            assert!(r.output.is_none());
            assert!(!part.exists() && !out.exists());
        }
    }
}
