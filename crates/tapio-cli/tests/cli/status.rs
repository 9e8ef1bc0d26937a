//! `tapio status`: facts per observer, the agent's status file, and the
//! files it skipped.

use super::util::*;
use super::{fixture, write_status};

const SKIP_LINE: &str = "skipped 7 of 11 files in";
const SKIP_REASONS: &str = ": 1 half-written, 1 corrupt, 3 foreign, 1 oversized (over 1 MiB), 1 irregular (not a regular file)\n";

#[test]
fn status_counts_facts_per_observer_and_skips_bad_files() {
    let d = fixture("status");
    write_status(&d, 5_000);
    let o = tapio(&d, &["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_text(
        &stdout(&o),
        &format!(
            "data_dir={}\n\
             agent=present pid=4242 version=0.1.0 config_generation=3 config_hash=abc123 updated_at=2026-04-03T14:29:55.000Z\n\
             observer=network state=running facts=6 occurrences=2 last_hour=6 last_seen=2026-04-03T14:28:00.000Z\n\
             observer=container state=running facts=1 occurrences=1 last_hour=1 last_seen=2026-04-03T14:27:00.000Z\n\
             observer=storage state=running facts=1 occurrences=1 last_hour=0 last_seen=2026-04-03T12:30:00.000Z\n\
             observer=node state=unavailable facts=0 occurrences=0 last_hour=0 last_seen=- reason=\"perf_event_open cycles: ENOENT (no hardware PMU)\"\n\
             total facts=8 occurrences=4\n",
            d.display()
        ),
    );
    assert_eq!(
        stderr(&o),
        format!("tapio: {SKIP_LINE} `{}`{SKIP_REASONS}", d.display())
    );
}

#[test]
fn status_json_carries_the_same_numbers() {
    let d = fixture("status-json");
    let o = tapio(&d, &["status", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["total_facts"], 8);
    assert_eq!(v["total_occurrences"], 4);
    assert_eq!(v["agent"]["status_file"], "absent");
    assert_eq!(v["observers"][0]["observer"], "network");
    assert_eq!(v["observers"][0]["state"], "unknown");
    assert_eq!(v["observers"][0]["facts"], 6);
    assert_eq!(
        v["files"],
        serde_json::json!({"files_considered": 11, "files_skipped": 7, "half_written": 1, "corrupt": 1,
            "foreign": 3, "oversized": 1, "irregular": 1, "unreadable": 0})
    );
}
