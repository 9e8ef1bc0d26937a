//! `tapio watch`: following new files (late and atomically renamed ones
//! too), observer filters, and its JSON form.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use super::util::*;

#[test]
fn watch_follows_new_files_and_filters_by_observer() {
    let d = tempdir("watch");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    put(
        &d,
        now_ms - 1000,
        1,
        "kernel.network.connection_refused",
        "warning",
        "CONNECTION_REFUSED",
        r#","dst_port":1"#,
    );
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(&d)
        .args(["watch", "--network", "--interval", "100ms", "-n", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    watchdog(child.id(), 30);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.ends_with(" warning kernel.network.connection_refused count=1 dst_port=1"),
        "{first}"
    );
    // A container occurrence is filtered out; a network one shows up.
    put(
        &d,
        now_ms + 100,
        2,
        "kernel.container.oom_kill",
        "critical",
        "OOM_KILL",
        r#","pid":9"#,
    );
    put(
        &d,
        now_ms + 200,
        3,
        "kernel.network.connection_timeout",
        "warning",
        "CONNECTION_TIMEOUT",
        r#","dst_port":2"#,
    );
    let second = lines.next().unwrap().unwrap();
    assert!(
        second.ends_with(" kernel.network.connection_timeout count=1 dst_port=2"),
        "{second}"
    );
    // Written late (its ULID time is before the previous file's), atomically as the agent
    // does it: a dot-prefixed temp file, then rename. Still shown, once.
    let id = ulid(now_ms + 50, 4);
    let tmp = d.join(format!(".{id}.json.tmp"));
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(
        occurrence(
            &id,
            now_ms + 50,
            "kernel.network.rtt_degradation",
            "warning",
            "RTT_DEGRADATION",
            r#","srtt_us":900"#,
        )
        .as_bytes(),
    )
    .unwrap();
    drop(f);
    std::fs::rename(&tmp, d.join(format!("{id}.json"))).unwrap();
    let third = lines.next().unwrap().unwrap();
    assert!(
        third.ends_with(" kernel.network.rtt_degradation count=1 srtt_us=900"),
        "{third}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn watch_json_prints_documents() {
    let d = tempdir("watch-json");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let id = put(
        &d,
        now_ms,
        7,
        "kernel.storage.latency_spike",
        "warning",
        "LATENCY_SPIKE",
        r#","latency_us":250000"#,
    );
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(&d)
        .args(["watch", "--json", "--storage", "--interval", "100ms"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    watchdog(child.id(), 30);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let v: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(v["id"], id);
    assert_eq!(v["data"]["latency_us"], 250_000);
    child.kill().unwrap();
    child.wait().unwrap();
}
