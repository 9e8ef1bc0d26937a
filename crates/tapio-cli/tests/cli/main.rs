//! Drives the real `tapio` binary on fixture directories.
//!
//! The shared fixture lives here; the tests are grouped by command
//! (`status`, `recent`, `health`, `watch`), by what the data directory
//! holds, by exit code and usage behaviour, and the ignored timing run.

#[path = "../util/mod.rs"]
mod util;

mod data_dir;
mod exit_codes;
mod health;
mod recent;
mod scale;
mod status;
mod watch;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use util::*;

const MIN: u64 = 60_000;

/// The shared fixture: three good occurrences in the last hour (one folded,
/// count 5), one older, plus one file of every unusable kind.
fn fixture(name: &str) -> PathBuf {
    let d = tempdir(name);
    put(
        &d,
        NOW_MS - 2 * MIN,
        1,
        "kernel.network.connection_refused",
        "warning",
        "CONNECTION_REFUSED",
        r#","pid":1234,"comm":"curl","dst_port":8080"#,
    );
    put(
        &d,
        NOW_MS - 10 * MIN,
        2,
        "kernel.network.retransmit_spike",
        "warning",
        "RETRANSMIT_SPIKE",
        r#","daddr":"10.0.0.9","count":5,"window_start_ns":1,"window_end_ns":2"#,
    );
    put(
        &d,
        NOW_MS - 3 * MIN,
        3,
        "kernel.container.oom_kill",
        "critical",
        "OOM_KILL",
        r#","pid":4321,"comm":"stress ng""#,
    );
    put(
        &d,
        NOW_MS - 120 * MIN,
        4,
        "kernel.storage.io_error",
        "critical",
        "IO_ERROR",
        r#","dev":"8:16","errno":-5"#,
    );
    // Not JSON.
    std::fs::write(
        d.join(format!("{}.json", ulid(NOW_MS - MIN, 10))),
        "{not json at all",
    )
    .unwrap();
    // Cut off mid-document (a non-atomic writer or a crash).
    let full = occurrence(
        &ulid(NOW_MS - MIN, 11),
        NOW_MS - MIN,
        "kernel.network.connection_refused",
        "warning",
        "CONNECTION_REFUSED",
        "",
    );
    std::fs::write(
        d.join(format!("{}.json", ulid(NOW_MS - MIN, 11))),
        &full[..full.len() / 2],
    )
    .unwrap();
    // Valid JSON, not an occurrence.
    std::fs::write(
        d.join(format!("{}.json", ulid(NOW_MS - MIN, 12))),
        r#"{"hello":"world"}"#,
    )
    .unwrap();
    // An occurrence with a reasoning field: rejected by the closed schema.
    std::fs::write(
        d.join(format!("{}.json", ulid(NOW_MS - MIN, 13))),
        full.replacen('{', r#"{"explanation":"the app leaked","#, 1),
    )
    .unwrap();
    // A `.json` name that is not a ULID.
    std::fs::write(d.join("notes.json"), "{}").unwrap();
    // 2 MiB of whitespace-padded JSON: over the read cap.
    let mut huge = occurrence(
        &ulid(NOW_MS - MIN, 14),
        NOW_MS - MIN,
        "kernel.storage.io_error",
        "critical",
        "IO_ERROR",
        "",
    );
    huge.push_str(&" ".repeat(2 << 20));
    std::fs::write(d.join(format!("{}.json", ulid(NOW_MS - MIN, 14))), huge).unwrap();
    // A symlink out of the directory: never followed.
    symlink(
        "/etc/hostname",
        d.join(format!("{}.json", ulid(NOW_MS - MIN, 15))),
    )
    .unwrap();
    // Ignored: the agent's temp file and anything not `.json`.
    std::fs::write(d.join(format!(".{}.json.tmp", ulid(NOW_MS, 16))), "{").unwrap();
    std::fs::write(d.join("README.txt"), "hi").unwrap();
    d
}

fn write_status(d: &Path, updated_ago_ms: u64) {
    let status = format!(
        r#"{{"agent_version":"0.1.0","pid":4242,"started_at":"{}","updated_at":"{}","config_generation":3,"config_hash":"abc123","observers":[{{"name":"network","state":"running"}},{{"name":"container","state":"running"}},{{"name":"storage","state":"running"}},{{"name":"node","state":"unavailable","reason":"perf_event_open cycles: ENOENT (no hardware PMU)"}}],"counters":{{"tapio_lost_events_total":0}}}}"#,
        rfc3339(NOW_MS - 3_600_000),
        rfc3339(NOW_MS - updated_ago_ms)
    );
    std::fs::write(d.join(".tapio-status.json"), status).unwrap();
}
