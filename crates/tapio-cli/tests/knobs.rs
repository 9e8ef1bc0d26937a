//! Defaults and test-only knobs of the real `tapio` binary.

mod util;

use std::process::{Command, Stdio};

use util::{bin, put, stderr, tempdir, NOW, NOW_MS};

/// `TAPIO_NOW` moves the clock in debug builds (what `cargo test` builds)
/// and does nothing in release builds, which do not contain it
/// (`scripts/verify-lean.sh` checks the release binary the same way).
#[test]
fn tapio_now_moves_the_clock_in_debug_builds_only() {
    let d = tempdir("knob-now");
    // One occurrence an hour before the fixed now: outside a 30 s window
    // either way, so the message names the window's start.
    put(
        &d,
        NOW_MS - 3_600_000,
        1,
        "kernel.network.connection_refused",
        "warning",
        "CONNECTION_REFUSED",
        "",
    );
    let o = Command::new(bin())
        .arg("--data-dir")
        .arg(&d)
        .args(["recent", "--since", "30s"])
        .env("TAPIO_NOW", NOW)
        .env_remove("TAPIO_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let fixed = format!(
        "tapio: no occurrences since 2026-04-03T14:29:30.000Z in `{}`\n",
        d.display()
    );
    if cfg!(debug_assertions) {
        assert!(stderr(&o).ends_with(&fixed), "{}", stderr(&o));
    } else {
        assert!(
            !stderr(&o).contains("2026-04-03T14:29:30"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn the_default_data_dir_is_the_agents() {
    let o = Command::new(bin())
        .arg("--help")
        .env_remove("TAPIO_DATA_DIR")
        .output()
        .unwrap();
    let help = String::from_utf8(o.stdout).unwrap();
    assert!(
        help.contains("[env: TAPIO_DATA_DIR=]") || help.contains("[env: TAPIO_DATA_DIR]"),
        "{help}"
    );
    assert!(
        help.contains("[default: /var/lib/tapio/occurrences]"),
        "{help}"
    );
}
