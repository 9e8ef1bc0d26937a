//! Fixture directories and a runner for the real `tapio` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The fixed "now" of the fixtures: 2026-04-03T14:30:00Z.
pub const NOW: &str = "2026-04-03T14:30:00Z";
pub const NOW_MS: u64 = 1_775_226_600_000;

/// A ULID with time `ms` and random part `rand`, canonical Crockford base32.
pub fn ulid(ms: u64, rand: u128) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let v: u128 = (u128::from(ms) << 80) | (rand & ((1 << 80) - 1));
    (0..26)
        .map(|i| ALPHABET[((v >> (5 * (25 - i))) & 31) as usize] as char)
        .collect()
}

/// RFC 3339 UTC with milliseconds, for fixture times (2026 only, enough here).
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    // Days from 1970-01-01 to 2026-01-01.
    let day_of_year = days - 20_454;
    let month_days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let (mut month, mut day) = (0, day_of_year);
    while day >= month_days[month] {
        day -= month_days[month];
        month += 1;
    }
    let sod = secs % 86_400;
    format!(
        "2026-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        month + 1,
        day + 1,
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60,
        ms % 1000
    )
}

/// A fresh empty directory under the target dir's tmp.
pub fn tempdir(name: &str) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    base
}

/// One occurrence document as the agent writes it.
pub fn occurrence(
    id: &str,
    ms: u64,
    kind: &str,
    severity: &str,
    code: &str,
    extra: &str,
) -> String {
    format!(
        r#"{{"id":"{id}","timestamp":"{}","source":"tapio","type":"{kind}","protocol_version":"1.0","severity":"{severity}","outcome":"failure","error":{{"code":"{code}","message":"fixture"}},"data":{{"config_generation":1,"timestamp_ns":{}{extra}}}}}"#,
        rfc3339(ms),
        ms * 1_000_000
    )
}

/// Writes an occurrence file named by its ULID; returns the id.
pub fn put(
    dir: &Path,
    ms: u64,
    rand: u128,
    kind: &str,
    severity: &str,
    code: &str,
    extra: &str,
) -> String {
    let id = ulid(ms, rand);
    std::fs::write(
        dir.join(format!("{id}.json")),
        occurrence(&id, ms, kind, severity, code, extra),
    )
    .unwrap();
    id
}

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tapio")
}

/// Runs `tapio --data-dir <dir> args...` with the clock fixed at [`NOW`].
pub fn tapio(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("TAPIO_NOW", NOW)
        .env_remove("TAPIO_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Asserts text equality with a line diff on failure.
#[track_caller]
pub fn assert_text(actual: &str, expected: &str) {
    if actual == expected {
        return;
    }
    let mut diff = String::new();
    let (a, e): (Vec<&str>, Vec<&str>) = (actual.lines().collect(), expected.lines().collect());
    for i in 0..a.len().max(e.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => diff.push_str(&format!("  {x}\n")),
            (x, y) => {
                if let Some(x) = x {
                    diff.push_str(&format!("- {x}\n"));
                }
                if let Some(y) = y {
                    diff.push_str(&format!("+ {y}\n"));
                }
            }
        }
    }
    panic!("output differs (- expected, + actual):\n{diff}");
}

/// Kills process `pid` after `secs` seconds so a test that waits on its output
/// fails instead of hanging.
pub fn watchdog(pid: u32, secs: u64) {
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(secs));
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    });
}
