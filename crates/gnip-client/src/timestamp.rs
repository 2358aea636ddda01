//! Timestamps as they appear on the wire, turned into milliseconds since the
//! Unix epoch. Pure and allocation-free; used by the classifier.
//!
//! Three spellings occur: ISO-8601 (`postedTime`, v2 `created_at`,
//! `event_at`, system `sent`), epoch milliseconds as a decimal string
//! (`timestamp_ms`), and the v1.1 form `Wed Oct 10 20:19:24 +0000 2018`
//! (original-format `created_at`). The calendar arithmetic is the
//! days-from-civil algorithm for the proleptic Gregorian calendar.

/// Days since 1970-01-01 for a proleptic Gregorian date.
///
/// `month` is 1..=12 and `day` 1..=31; the caller checks ranges.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses any of the three wire spellings into epoch milliseconds.
///
/// Returns `None` for text in none of the known forms or with an
/// out-of-range field.
pub fn parse_any(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    if b.is_empty() {
        return None;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return parse_epoch_ms(b);
    }
    if b[0].is_ascii_digit() {
        parse_iso8601(b)
    } else {
        parse_twitter(b)
    }
}

/// Epoch milliseconds written as decimal digits (`timestamp_ms`).
fn parse_epoch_ms(b: &[u8]) -> Option<i64> {
    if b.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in b {
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Reads exactly `n` ASCII digits at `pos`.
fn digits(b: &[u8], pos: usize, n: usize) -> Option<u32> {
    let s = b.get(pos..pos + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn to_ms(year: i64, month: u32, day: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400) + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)) * 1000)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM|-HH:MM|+HHMM]`; a missing zone is UTC.
fn parse_iso8601(b: &[u8]) -> Option<i64> {
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let h = digits(b, 11, 2)?;
    if b.get(13) != Some(&b':') {
        return None;
    }
    let mi = digits(b, 14, 2)?;
    let (s, mut pos) = if b.get(16) == Some(&b':') {
        (digits(b, 17, 2)?, 19)
    } else {
        (0, 16)
    };
    let mut ms = to_ms(i64::from(year), month, day, h, mi, s)?;

    // Fractional seconds: keep milliseconds, ignore finer digits.
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        let mut frac = 0i64;
        while let Some(c) = b.get(pos).filter(|c| c.is_ascii_digit()) {
            if pos - start < 3 {
                frac = frac * 10 + i64::from(c - b'0');
            }
            pos += 1;
        }
        if pos == start {
            return None;
        }
        for _ in (pos - start)..3 {
            frac *= 10;
        }
        ms += frac;
    }

    match b.get(pos) {
        None | Some(b'Z' | b'z') if pos + 1 >= b.len() => Some(ms),
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, pos + 1, 2)?;
            let om = if b.get(pos + 3) == Some(&b':') {
                digits(b, pos + 4, 2)?
            } else {
                digits(b, pos + 3, 2).unwrap_or(0)
            };
            let offset = i64::from(oh * 60 + om) * 60_000;
            Some(if sign == b'+' {
                ms - offset
            } else {
                ms + offset
            })
        }
        _ => None,
    }
}

/// `Wed Oct 10 20:19:24 +0000 2018`: v1.1 `created_at`, always UTC in
/// practice, but the offset is honoured.
fn parse_twitter(b: &[u8]) -> Option<i64> {
    if b.len() != 30 || b[3] != b' ' || b[7] != b' ' || b[10] != b' ' || b[19] != b' ' {
        return None;
    }
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let month = MONTHS.iter().position(|m| m[..] == b[4..7])? as u32 + 1;
    let day = digits(b, 8, 2)?;
    let h = digits(b, 11, 2)?;
    let mi = digits(b, 14, 2)?;
    let s = digits(b, 17, 2)?;
    let sign = b[20];
    let oh = digits(b, 21, 2)?;
    let om = digits(b, 23, 2)?;
    if b[25] != b' ' || !(sign == b'+' || sign == b'-') {
        return None;
    }
    let year = digits(b, 26, 4)?;
    let ms = to_ms(i64::from(year), month, day, h, mi, s)?;
    let offset = i64::from(oh * 60 + om) * 60_000;
    Some(if sign == b'+' {
        ms - offset
    } else {
        ms + offset
    })
}

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.fffZ`, for messages
/// and logs.
pub fn format_iso8601(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_forms() {
        // 2018-10-10T20:19:24Z = 1539202764 s (checked with `date -u -d`).
        assert_eq!(
            parse_any("2018-10-10T20:19:24.000Z"),
            Some(1_539_202_764_000)
        );
        assert_eq!(parse_any("2018-10-10T20:19:24Z"), Some(1_539_202_764_000));
        assert_eq!(
            parse_any("2018-10-10T20:19:24.211Z"),
            Some(1_539_202_764_211)
        );
        assert_eq!(
            parse_any("2018-10-10T20:19:24.2119Z"),
            Some(1_539_202_764_211)
        );
        assert_eq!(
            parse_any("2018-10-10T22:19:24+02:00"),
            Some(1_539_202_764_000)
        );
        assert_eq!(
            parse_any("2018-10-10T20:19:24+00:00"),
            Some(1_539_202_764_000)
        );
        assert_eq!(
            parse_any("2014-08-27T23:49:41.839+00:00"),
            Some(1_409_183_381_839)
        );
        assert_eq!(parse_any("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_any("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
    }

    #[test]
    fn twitter_form() {
        assert_eq!(
            parse_any("Wed Oct 10 20:19:24 +0000 2018"),
            Some(1_539_202_764_000)
        );
        assert_eq!(
            parse_any("Mon Mar 04 10:00:00 +0000 2024"),
            Some(1_709_546_400_000)
        );
    }

    #[test]
    fn epoch_ms_strings() {
        assert_eq!(parse_any("1539202764211"), Some(1_539_202_764_211));
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "yesterday",
            "2018-13-10T20:19:24Z",
            "2018-10-10",
            "Wed Foo 10 20:19:24 +0000 2018",
            "2018-10-10T20:19:24.Z",
            "2018-10-10T20:19:24Q",
        ] {
            assert_eq!(parse_any(s), None, "{s}");
        }
    }

    #[test]
    fn format_round_trips() {
        for ms in [0, 1_539_202_764_211, 1_709_164_800_000, 951_782_400_123] {
            assert_eq!(parse_any(&format_iso8601(ms)), Some(ms));
        }
        assert_eq!(
            format_iso8601(1_539_202_764_211),
            "2018-10-10T20:19:24.211Z"
        );
    }
}
