//! Where a rolled file lives and what it is called: the hour directory of
//! its roll start, and a name made of the stream, the kind of record, the
//! roll start in UTC and a sequence number. Pure functions plus one
//! directory scan; no file is written here.

use std::io;
use std::path::{Path, PathBuf};

/// Suffix of a file being written; it is renamed away once the file is a
/// finished gzip file, so a reader never mistakes it for a complete one.
pub(crate) const PART_SUFFIX: &str = ".part";

/// Suffix of a file being rebuilt from a `.part` file after a crash.
pub(crate) const RECOVERING_SUFFIX: &str = ".recovering";

/// Extension of a finished file.
pub(crate) const FINAL_EXT: &str = ".jsonl.gz";

/// Which family of files a record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FileKind {
    Activities,
    Compliance,
    System,
    Unknown,
}

impl FileKind {
    /// The family for a spool entry's kind code (`gnip_client::Kind`).
    /// A code this version does not know is filed with unknown shapes
    /// rather than dropped.
    pub(crate) fn from_code(code: u8) -> FileKind {
        match gnip_client::Kind::from_u8(code) {
            Some(gnip_client::Kind::Activity) => FileKind::Activities,
            Some(gnip_client::Kind::Compliance) => FileKind::Compliance,
            Some(gnip_client::Kind::System) => FileKind::System,
            Some(gnip_client::Kind::Unknown) | None => FileKind::Unknown,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FileKind::Activities => "activities",
            FileKind::Compliance => "compliance",
            FileKind::System => "system",
            FileKind::Unknown => "unknown",
        }
    }
}

/// A UTC calendar time to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
}

/// The UTC calendar time of `ms` since the Unix epoch.
///
/// Days to a proleptic Gregorian date by eras of 400 years (146,097 days),
/// counting years from March so that the leap day falls last.
pub(crate) fn civil(ms: i64) -> Civil {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod / 60 % 60,
        second: sod % 60,
    }
}

/// The start of the roll period holding `ms`, for periods aligned on the
/// Unix epoch (which is aligned on UTC days).
pub(crate) fn period_start(ms: i64, period_ms: i64) -> i64 {
    ms.div_euclid(period_ms) * period_ms
}

/// `root/YYYY/MM/DD/HH` of the roll start.
pub(crate) fn hour_dir(root: &Path, start_ms: i64) -> PathBuf {
    let c = civil(start_ms);
    root.join(format!("{:04}", c.year))
        .join(format!("{:02}", c.month))
        .join(format!("{:02}", c.day))
        .join(format!("{:02}", c.hour))
}

/// `stream-kind-YYYYMMDDTHHMMSSZ`, the part of a name shared by every
/// file of one kind and one roll period.
pub(crate) fn stem(stream: &str, kind: FileKind, start_ms: i64) -> String {
    let c = civil(start_ms);
    format!(
        "{stream}-{}-{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        kind.as_str(),
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second
    )
}

/// The name of a finished file.
pub(crate) fn final_name(stem: &str, seq: u32) -> String {
    format!("{stem}-{seq:04}{FINAL_EXT}")
}

/// Splits `stem-NNNN.jsonl.gz` (with any suffix after it) into the stem
/// and the sequence number.
pub(crate) fn split_name(name: &str) -> Option<(&str, u32)> {
    let (base, _) = name.split_once(FINAL_EXT)?;
    let (stem, seq) = base.rsplit_once('-')?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem, seq.parse().ok()?))
}

/// The highest sequence number used by any file (finished, being written
/// or being recovered) of `stem` in `dir`; 0 when there is none.
pub(crate) fn max_seq(dir: &Path, stem: &str) -> io::Result<u32> {
    let mut max = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((s, seq)) = split_name(name)
            && s == stem
        {
            max = max.max(seq);
        }
    }
    Ok(max)
}

/// The stream name as it may appear in a file name: anything but ASCII
/// letters, digits, `-`, `_` and `.` becomes `_`, so a name can never
/// reach outside its directory.
pub(crate) fn sanitise_stream(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("stream{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_instants() {
        // 2026-12-03T17:00:00Z, checked with `date -u -d @1796317200`.
        let c = civil(1_796_317_200_000);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (2026, 12, 3, 17, 0, 0)
        );
        let c = civil(0);
        assert_eq!((c.year, c.month, c.day, c.hour), (1970, 1, 1, 0));
        // 2024-02-29T23:59:59Z, a leap day.
        let c = civil(1_709_251_199_000);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (2024, 2, 29, 23, 59, 59)
        );
        // 2000-03-01T00:00:00Z, after the 400-year leap day.
        let c = civil(951_868_800_000);
        assert_eq!((c.year, c.month, c.day), (2000, 3, 1));
        let c = civil(-1000);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (1969, 12, 31, 23, 59, 59)
        );
    }

    #[test]
    fn names_and_directories() {
        let start = period_start(1_796_317_200_000 + 1_234_567, 3_600_000);
        assert_eq!(start, 1_796_317_200_000);
        assert_eq!(
            hour_dir(Path::new("/d"), start),
            Path::new("/d/2026/12/03/17")
        );
        let stem = stem("prod", FileKind::Activities, start);
        assert_eq!(stem, "prod-activities-20261203T170000Z");
        assert_eq!(
            final_name(&stem, 1),
            "prod-activities-20261203T170000Z-0001.jsonl.gz"
        );
        assert_eq!(
            split_name("prod-activities-20261203T170000Z-0012.jsonl.gz.part"),
            Some(("prod-activities-20261203T170000Z", 12))
        );
        assert_eq!(split_name("prod-activities-x.jsonl.gz"), None);
        assert_eq!(split_name("notes.txt"), None);
    }

    #[test]
    fn stream_names_cannot_escape() {
        assert_eq!(sanitise_stream("prod"), "prod");
        assert_eq!(sanitise_stream("../etc/x y"), "stream.._etc_x_y");
        assert_eq!(sanitise_stream(""), "stream");
    }

    #[test]
    fn max_seq_scans_every_suffix() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(max_seq(&dir.path().join("missing"), "s").unwrap(), 0);
        for name in [
            "s-0001.jsonl.gz",
            "s-0003.jsonl.gz.part",
            "s-0002.jsonl.gz.recovering",
            "t-0009.jsonl.gz",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(max_seq(dir.path(), "s").unwrap(), 3);
        assert_eq!(max_seq(dir.path(), "t").unwrap(), 9);
    }
}
