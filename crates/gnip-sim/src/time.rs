//! Wall-clock time in the three spellings the streams use (Twitter's
//! `created_at`, ISO-8601 with milliseconds, ISO-8601 with an offset) and the
//! parsers for the time parameters clients send (recovery `startTime`, replay
//! `fromDate`). Pure code, no I/O besides reading the system clock.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

const DAY_MS: u64 = 86_400_000;
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

// Howard Hinnant's civil-from-days algorithm, restricted to dates after 1970.
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: u64, m: u32, d: u32) -> Option<u64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = u64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + u64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

struct Civil {
    year: u64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    millis: u64,
    weekday: usize,
}

fn civil(ms: u64) -> Civil {
    let days = ms / DAY_MS;
    let rem = ms % DAY_MS;
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: rem / 3_600_000,
        minute: rem / 60_000 % 60,
        second: rem / 1000 % 60,
        millis: rem % 1000,
        // 1970-01-01 was a Thursday.
        weekday: ((days + 4) % 7) as usize,
    }
}

/// Appends `2024-01-15T10:35:00.000Z` (Activity Streams `postedTime`, v2 `created_at`).
pub(crate) fn write_iso_millis(out: &mut Vec<u8>, ms: u64) {
    let c = civil(ms);
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
    .expect("writing to a Vec cannot fail");
}

/// Appends `Wed Oct 10 20:19:24 +0000 2018` (original format `created_at`).
pub(crate) fn write_twitter(out: &mut Vec<u8>, ms: u64) {
    let c = civil(ms);
    write!(
        out,
        "{} {} {:02} {:02}:{:02}:{:02} +0000 {:04}",
        WEEKDAYS[c.weekday],
        MONTHS[(c.month - 1) as usize],
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.year
    )
    .expect("writing to a Vec cannot fail");
}

/// `2024-01-15T10:35:00.000Z`.
pub(crate) fn iso_millis(ms: u64) -> String {
    let mut out = Vec::with_capacity(24);
    write_iso_millis(&mut out, ms);
    String::from_utf8(out).expect("the ISO formatter writes ASCII only")
}

/// `2024-03-04T10:00:07+00:00`, the `sent` field of system messages.
pub(crate) fn iso_offset(ms: u64) -> String {
    let c = civil(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

fn num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn compose(y: u64, mo: u64, d: u64, h: u64, mi: u64, s: u64) -> Option<u64> {
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, u32::try_from(mo).ok()?, u32::try_from(d).ok()?)?;
    Some(days * DAY_MS + (h * 3600 + mi * 60 + s) * 1000)
}

/// Parses the recovery and v2 time parameters: `YYYY-MM-DDTHH:mm:ssZ`, also
/// with fractional seconds, `+00:00` instead of `Z`, or without seconds.
pub(crate) fn parse_iso(s: &str) -> Option<u64> {
    let s = s.trim();
    let body = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .or_else(|| s.strip_suffix("+0000"))?;
    let (date, time) = body.split_once('T')?;
    let mut d = date.split('-');
    let (y, mo, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if d.next().is_some() {
        return None;
    }
    let (time, frac) = match time.split_once('.') {
        Some((t, f)) => (t, num(f).map(|_| f)?),
        None => (time, ""),
    };
    let mut t = time.split(':');
    let h = num(t.next()?)?;
    let mi = num(t.next()?)?;
    let sec = match t.next() {
        Some(x) => num(x)?,
        None => 0,
    };
    if t.next().is_some() {
        return None;
    }
    let millis = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    Some(compose(y, mo, day, h, mi, sec)? + millis)
}

/// Parses a Replay `fromDate` / `toDate`: `YYYYMMDDHHMM`, UTC.
pub(crate) fn parse_replay_date(s: &str) -> Option<u64> {
    if s.len() != 12 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| num(s.get(r)?);
    compose(n(0..4)?, n(4..6)?, n(6..8)?, n(8..10)?, n(10..12)?, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2018-10-10T20:19:24.211Z, the `timestamp_ms` of a documented sample.
    const SAMPLE: u64 = 1_539_202_764_211;

    #[test]
    fn formats_match_the_documented_spellings() {
        let mut out = Vec::new();
        write_twitter(&mut out, SAMPLE);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Wed Oct 10 20:19:24 +0000 2018"
        );
        assert_eq!(iso_millis(SAMPLE), "2018-10-10T20:19:24.211Z");
        assert_eq!(iso_offset(SAMPLE), "2018-10-10T20:19:24+00:00");
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn parses_what_it_formats() {
        assert_eq!(parse_iso("2018-10-10T20:19:24.211Z"), Some(SAMPLE));
        assert_eq!(parse_iso("2018-10-10T20:19:24Z"), Some(SAMPLE - 211));
        assert_eq!(parse_iso("2018-10-10T20:19:24+00:00"), Some(SAMPLE - 211));
        assert_eq!(parse_iso("2018-10-10T20:19Z"), Some(SAMPLE - 24_211));
        assert_eq!(parse_replay_date("201810102019"), Some(SAMPLE - 24_211));
    }

    #[test]
    fn rejects_malformed_times() {
        for bad in [
            "",
            "2018-10-10",
            "2018-13-10T00:00:00Z",
            "2018-10-10T25:00:00Z",
            "x",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
        for bad in [
            "20181010203",
            "2018101020399",
            "2018-0-10203",
            "201813102039",
        ] {
            assert_eq!(parse_replay_date(bad), None, "{bad}");
        }
    }
}
