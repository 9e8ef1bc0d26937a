//! RFC 3339 UTC timestamps (`2026-04-03T14:23:01.042Z`) from and to Unix
//! nanoseconds.
//!
//! Hand-written because the agent's binary budget (H1) has no room for a
//! date crate; only UTC with a `Z` suffix is produced, and the parser accepts
//! exactly what [`format_rfc3339_millis`] writes plus any fraction length.

/// Days since 1970-01-01 to a civil (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Civil date to days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats Unix nanoseconds as RFC 3339 UTC with milliseconds and `Z`.
#[must_use]
pub fn format_rfc3339_millis(unix_ns: u64) -> String {
    let mut out = Vec::with_capacity(24);
    write_rfc3339_millis(&mut out, unix_ns);
    // Digits and ASCII punctuation only.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends [`format_rfc3339_millis`]'s text to `out`, without allocating
/// (the drain path's serializer).
pub fn write_rfc3339_millis(out: &mut Vec<u8>, unix_ns: u64) {
    let secs = i64::try_from(unix_ns / 1_000_000_000).unwrap_or(i64::MAX);
    let millis = (unix_ns % 1_000_000_000) / 1_000_000;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    // u64 nanoseconds end in 2554: the year has four digits.
    let year = u64::try_from(y).unwrap_or(0);
    let digits = |out: &mut Vec<u8>, v: u64, n: u32| {
        for p in (0..n).rev() {
            // One decimal digit: the cast cannot truncate.
            #[allow(clippy::cast_possible_truncation)]
            out.push(b'0' + ((v / 10u64.pow(p)) % 10) as u8);
        }
    };
    let sod = u64::try_from(sod).unwrap_or(0);
    digits(out, year, 4);
    out.push(b'-');
    digits(out, u64::from(mo), 2);
    out.push(b'-');
    digits(out, u64::from(d), 2);
    out.push(b'T');
    digits(out, sod / 3600, 2);
    out.push(b':');
    digits(out, (sod % 3600) / 60, 2);
    out.push(b':');
    digits(out, sod % 60, 2);
    out.push(b'.');
    digits(out, millis, 3);
    out.push(b'Z');
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` into Unix nanoseconds.
#[must_use]
pub fn parse_rfc3339_utc(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let rest = &s[19..];
    let (frac, z) = match rest.strip_prefix('.') {
        Some(f) => (f.strip_suffix('Z')?, "Z"),
        None => ("", rest),
    };
    if z != "Z" || frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut nanos: u64 = 0;
    for (i, c) in frac.bytes().enumerate() {
        nanos += u64::from(c - b'0') * 10u64.pow(8 - u32::try_from(i).ok()?);
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec);
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        // Values cross-checked with `date -u -d @<secs> +%FT%T`.
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_millis(1_743_690_181_042_000_000),
            "2025-04-03T14:23:01.042Z"
        );
        assert_eq!(
            format_rfc3339_millis(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339_millis(4_102_444_799_999_000_000),
            "2099-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn parse_inverts_format() {
        for ns in [
            0u64,
            1_743_690_181_042_000_000,
            951_782_400_000_000_000,
            1_800_000_000_123_000_000,
        ] {
            assert_eq!(parse_rfc3339_utc(&format_rfc3339_millis(ns)), Some(ns));
        }
        assert_eq!(
            parse_rfc3339_utc("2025-04-03T14:23:01Z"),
            Some(1_743_690_181_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_utc("2025-04-03T14:23:01.000000001Z"),
            Some(1_743_690_181_000_000_001)
        );
    }

    /// A multi-byte character right after the `.` panicked `split_at` (not
    /// a char boundary): `tapio status` died on such a timestamp.
    #[test]
    fn parse_survives_multibyte_fractions() {
        for bad in [
            "2025-04-03T14:23:01.é",
            "2025-04-03T14:23:01.1é",
            "2025-04-03T14:23:01.\u{10ffff}",
            "2025-04-03T14:23:01é",
        ] {
            assert_eq!(parse_rfc3339_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn parse_rejects_offsets_and_garbage() {
        for bad in [
            "",
            "2025-04-03",
            "2025-04-03T14:23:01+02:00",
            "2025-13-03T14:23:01Z",
            "2025-04-03T14:23:0xZ",
            "2025-04-03T14:23:01.Z1",
        ] {
            assert_eq!(parse_rfc3339_utc(bad), None, "{bad}");
        }
    }
}
