//! The one rule for a test that cannot run on this host (no root, a tool, a
//! kernel facility): it fails. It skips only when the person running the
//! tests says so with `TAPIO_SKIP_KERNEL_TESTS=1`, never under `CI=true`;
//! each skip is then appended to `target/skipped-tests.txt`, which
//! `scripts/test.sh` prints loudly in its closing summary.

use std::io::Write as _;
use std::path::Path;

/// True under CI (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Fails with `msg`, or (skips explicitly allowed) records and reports the
/// skip so the caller can return.
pub fn cannot_run(msg: &str) {
    let allowed = !in_ci() && std::env::var("TAPIO_SKIP_KERNEL_TESTS").is_ok_and(|v| v == "1");
    assert!(
        allowed,
        "{msg} (this test cannot run here; TAPIO_SKIP_KERNEL_TESTS=1 skips it outside CI)"
    );
    let test = std::thread::current()
        .name()
        .unwrap_or("unknown test")
        .to_owned();
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let bin = exe.rsplit_once('-').map_or(exe.as_str(), |(b, _)| b);
    eprintln!("SKIP {bin}::{test}: {msg}");
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/skipped-tests.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{bin}::{test}: {msg}");
    }
}
