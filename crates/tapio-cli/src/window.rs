//! Time windows: `--since` values and the clock the CLI judges them against.
//!
//! A window start is either a duration back from now (`90s`, `5m`, `2h`,
//! `7d`) or an RFC 3339 UTC instant. Durations are capped at 366 days so the
//! arithmetic cannot overflow.

use tapio_common::time::parse_rfc3339_utc;

/// Nanoseconds per second.
pub const NS_PER_SEC: u64 = 1_000_000_000;
/// Longest accepted duration, in seconds.
const MAX_SECS: u64 = 366 * 86_400;

/// Error for a `--since` or `--interval` value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    /// Not `<number><s|m|h|d>` nor an RFC 3339 UTC instant.
    #[error("`{value}` is not a duration like `30s`, `5m`, `2h`, `7d` or an RFC 3339 UTC time like `2026-04-03T14:00:00Z`")]
    Malformed {
        /// The value given.
        value: String,
    },
    /// Longer than the cap.
    #[error("`{value}` is longer than the 366 day limit")]
    TooLong {
        /// The value given.
        value: String,
    },
}

/// Parses `<number><unit>` with unit `ms`, `s`, `m`, `h` or `d` into
/// nanoseconds.
///
/// # Errors
/// When the value is malformed or longer than 366 days.
pub fn parse_duration_ns(value: &str) -> Result<u64, WindowError> {
    let malformed = || WindowError::Malformed {
        value: value.to_owned(),
    };
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(malformed)?;
    let (num, unit) = value.split_at(split);
    if num.is_empty() || num.len() > 12 {
        return Err(malformed());
    }
    let n: u64 = num.parse().map_err(|_| malformed())?;
    let per_unit = match unit {
        "ms" => 1_000_000,
        "s" => NS_PER_SEC,
        "m" => 60 * NS_PER_SEC,
        "h" => 3600 * NS_PER_SEC,
        "d" => 86_400 * NS_PER_SEC,
        _ => return Err(malformed()),
    };
    // Checked: 12 digits of hours overflow u64 nanoseconds (a wrapped
    // product could even pass the cap as a wrong, shorter window).
    match n.checked_mul(per_unit) {
        Some(ns) if ns <= MAX_SECS * NS_PER_SEC => Ok(ns),
        _ => Err(WindowError::TooLong {
            value: value.to_owned(),
        }),
    }
}

/// The window start, in Unix nanoseconds, for a `--since` value at `now_ns`.
///
/// # Errors
/// When the value is neither a valid duration nor an RFC 3339 UTC time.
pub fn since_ns(value: &str, now_ns: u64) -> Result<u64, WindowError> {
    if value.contains('T') {
        return parse_rfc3339_utc(value).ok_or_else(|| WindowError::Malformed {
            value: value.to_owned(),
        });
    }
    Ok(now_ns.saturating_sub(parse_duration_ns(value)?))
}

/// Now, in Unix nanoseconds.
///
/// Debug builds only (what `cargo test` runs): `TAPIO_NOW` (RFC 3339 UTC)
/// overrides the clock so tests can assert exact relative output. Release
/// builds do not contain the knob at all (`scripts/verify-lean.sh` checks
/// the binary for the string and that setting it changes nothing), so an
/// inherited environment cannot move an operator's clock.
#[must_use]
pub fn now_ns() -> u64 {
    #[cfg(debug_assertions)]
    if let Some(ns) = std::env::var("TAPIO_NOW")
        .ok()
        .and_then(|v| parse_rfc3339_utc(&v))
    {
        return ns;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A short age such as `42s`, `5m`, `3h` or `2d` (rounded down).
#[must_use]
pub fn format_age(ns: u64) -> String {
    let s = ns / NS_PER_SEC;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration_ns("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration_ns("90s"), Ok(90 * NS_PER_SEC));
        assert_eq!(parse_duration_ns("5m"), Ok(300 * NS_PER_SEC));
        assert_eq!(parse_duration_ns("2h"), Ok(7200 * NS_PER_SEC));
        assert_eq!(parse_duration_ns("7d"), Ok(7 * 86_400 * NS_PER_SEC));
    }

    #[test]
    fn rejects_malformed_and_huge_durations() {
        for bad in ["", "5", "m", "5x", "-5m", "5 m", "1.5h", "99999999999999d"] {
            assert!(parse_duration_ns(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_duration_ns("367d"),
            Err(WindowError::TooLong { .. })
        ));
        // Products past u64 are too long, never wrapped into a short window
        // (found by the mcp_lines fuzz target: `since: "2147483648h"`).
        for huge in [
            "2147483648h",
            "999999999999h",
            "999999999999d",
            "999999999999m",
        ] {
            assert!(
                matches!(parse_duration_ns(huge), Err(WindowError::TooLong { .. })),
                "{huge}"
            );
        }
    }

    #[test]
    fn since_accepts_instants_and_durations() {
        let now = 1_775_226_181_042_000_000;
        assert_eq!(since_ns("1m", now), Ok(now - 60 * NS_PER_SEC));
        assert_eq!(
            since_ns("2026-04-03T14:00:00Z", now),
            Ok(1_775_224_800_000_000_000)
        );
        assert!(since_ns("2026-04-03T14:00:00+02:00", now).is_err());
    }

    #[test]
    fn ages_round_down() {
        assert_eq!(format_age(59 * NS_PER_SEC + 999), "59s");
        assert_eq!(format_age(61 * NS_PER_SEC), "1m");
        assert_eq!(format_age(7200 * NS_PER_SEC), "2h");
        assert_eq!(format_age(3 * 86_400 * NS_PER_SEC), "3d");
    }
}
