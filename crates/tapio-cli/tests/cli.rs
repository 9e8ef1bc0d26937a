//! Drives the real `tapio` binary on fixture directories.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

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

#[test]
fn recent_lists_the_window_oldest_first() {
    let d = fixture("recent");
    let o = tapio(&d, &["recent", "--since", "5m"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_text(
        &stdout(&o),
        "2026-04-03T14:27:00.000Z critical kernel.container.oom_kill count=1 comm=\"stress ng\" pid=4321\n\
         2026-04-03T14:28:00.000Z warning kernel.network.connection_refused count=1 comm=curl dst_port=8080 pid=1234\n",
    );
    let o = tapio(&d, &["recent"]);
    assert_text(
        &stdout(&o),
        "2026-04-03T14:20:00.000Z warning kernel.network.retransmit_spike count=5 daddr=10.0.0.9\n\
         2026-04-03T14:27:00.000Z critical kernel.container.oom_kill count=1 comm=\"stress ng\" pid=4321\n\
         2026-04-03T14:28:00.000Z warning kernel.network.connection_refused count=1 comm=curl dst_port=8080 pid=1234\n",
    );
}

#[test]
fn recent_json_emits_the_documents() {
    let d = fixture("recent-json");
    let o = tapio(&d, &["recent", "--since", "2026-04-03T14:27:30Z", "--json"]);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], ulid(NOW_MS - 2 * MIN, 1));
    assert_eq!(lines[0]["data"]["dst_port"], 8080);
    assert_eq!(lines[0]["error"]["code"], "CONNECTION_REFUSED");
}

#[test]
fn recent_limit_keeps_the_newest() {
    let d = fixture("recent-limit");
    let o = tapio(&d, &["recent", "--limit", "1"]);
    assert_text(
        &stdout(&o),
        "2026-04-03T14:28:00.000Z warning kernel.network.connection_refused count=1 comm=curl dst_port=8080 pid=1234\n",
    );
    assert!(
        stderr(&o).contains("tapio: showing the newest 1 of 3 matching occurrences\n"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn recent_with_nothing_in_the_window_says_so() {
    let d = fixture("recent-none");
    let o = tapio(&d, &["recent", "--since", "30s"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).ends_with(&format!(
            "tapio: no occurrences since 2026-04-03T14:29:30.000Z in `{}`\n",
            d.display()
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn health_gives_a_verdict_and_its_rule_per_observer() {
    let d = fixture("health");
    write_status(&d, 5_000);
    let o = tapio(&d, &["health"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Minutes oldest first: the folded retransmit spike 10 minutes ago (5 facts, the busiest
    // minute: `@`), the refused connect 2 minutes ago (1 of 5: `-`); the OOM kill 3 minutes ago.
    let net = format!("{}@{}-..", ".".repeat(49), ".".repeat(7));
    let con = format!("{}@...", ".".repeat(56));
    let quiet = ".".repeat(60);
    assert_text(
        &stdout(&o),
        &format!(
            "observer=network verdict=degraded rule=warning_15m last_hour=6 max_per_minute=5 minutes={net} detail=\"6 warning or critical in the last 15m (threshold 1)\"\n\
             observer=container verdict=critical rule=critical_5m last_hour=1 max_per_minute=1 minutes={con} detail=\"1 critical in the last 5m (threshold 1)\"\n\
             observer=storage verdict=healthy rule=quiet_15m last_hour=0 max_per_minute=0 minutes={quiet} detail=\"no warning or critical in the last 15m\"\n\
             observer=node verdict=unavailable rule=agent_unavailable last_hour=0 max_per_minute=0 minutes={quiet} detail=\"agent reports unavailable: perf_event_open cycles: ENOENT (no hardware PMU)\"\n\
             agent_status_file=present\n"
        ),
    );
}

#[test]
fn health_of_one_observer_and_a_stale_agent() {
    let d = fixture("health-one");
    write_status(&d, 10 * MIN);
    let o = tapio(&d, &["health", "network", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["observers"].as_array().unwrap().len(), 1);
    assert_eq!(v["observers"][0]["verdict"], "unknown");
    assert_eq!(v["observers"][0]["rule"], "agent_status_stale");
    assert_eq!(
        v["observers"][0]["detail"],
        "agent status last updated 10m ago (stale after 2m)"
    );
    assert_eq!(v["observers"][0]["last_hour"], 6);
    assert_eq!(v["observers"][0]["per_minute"][49], 5);
    assert_eq!(v["agent"]["status_file"], "stale");
    let o = tapio(&d, &["health", "dns"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn missing_directory_exits_3_with_a_hint() {
    let d = tempdir("missing").join("nope");
    for cmd in [&["status"][..], &["recent"], &["health"]] {
        let o = tapio(&d, cmd);
        assert_eq!(o.status.code(), Some(3), "{cmd:?}");
        assert_eq!(stdout(&o), "");
        assert_text(
            &stderr(&o),
            &format!(
                "tapio: no data directory at `{}`\n\
                 tapio: start the agent with `--sink=file` (it writes to /var/lib/tapio/occurrences by default), \
                 or point --data-dir / TAPIO_DATA_DIR at its data directory\n",
                d.display()
            ),
        );
    }
}

#[test]
fn empty_directory_gets_a_hint_not_an_error() {
    let d = tempdir("empty");
    let o = tapio(&d, &["status"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("total facts=0 occurrences=0\n"));
    assert_eq!(
        stderr(&o),
        format!(
            "tapio: no occurrences in `{0}` yet (the agent writes them there with `--sink=file --data-dir {0}`)\n",
            d.display()
        )
    );
    let o = tapio(&d, &["recent"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), ""));
    assert!(stderr(&o).starts_with("tapio: no occurrences in"));
}

#[test]
fn data_dir_comes_from_the_environment() {
    let d = fixture("env");
    let o = Command::new(bin())
        .args(["recent", "--since", "5m"])
        .env("TAPIO_DATA_DIR", &d)
        .env("TAPIO_NOW", NOW)
        .output()
        .unwrap();
    assert_eq!(stdout(&o).lines().count(), 2);
}

#[test]
fn data_dir_that_is_a_file_is_an_error() {
    let d = tempdir("file");
    let f = d.join("occurrences");
    std::fs::write(&f, "x").unwrap();
    let o = tapio(&f, &["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("tapio: `{}` is not a directory\n", f.display())
    );
}

#[test]
fn bad_since_is_a_usage_error() {
    let d = fixture("bad-since");
    let o = tapio(&d, &["recent", "--since", "5 minutes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("tapio: `5 minutes` is not a duration"),
        "{}",
        stderr(&o)
    );
}

// A closed stdout (`tapio recent | head -1`) used to be reported as an error.
#[test]
fn broken_pipe_is_success() {
    let d = tempdir("pipe");
    for i in 0..3000u64 {
        put(
            &d,
            NOW_MS - 30 * MIN + i,
            u128::from(i),
            "kernel.network.connection_refused",
            "warning",
            "CONNECTION_REFUSED",
            r#","dst_port":1"#,
        );
    }
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(&d)
        .arg("recent")
        .env("TAPIO_NOW", NOW)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

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

/// `cargo test -p tapio-cli --release -- --ignored --nocapture scale` prints
/// how long `status` and `recent` take on 100,000 occurrence files.
#[test]
#[ignore = "timing measurement; prints numbers, asserts none"]
fn scale_100k_files() {
    let d = tempdir("scale");
    let kinds = [
        (
            "kernel.network.connection_refused",
            "warning",
            "CONNECTION_REFUSED",
        ),
        ("kernel.container.oom_kill", "critical", "OOM_KILL"),
        ("kernel.storage.latency_spike", "warning", "LATENCY_SPIKE"),
        (
            "kernel.network.retransmit_spike",
            "warning",
            "RETRANSMIT_SPIKE",
        ),
    ];
    let n = 100_000u64;
    let t = Instant::now();
    // Spread over the last 24 hours, newest at NOW.
    for i in 0..n {
        let (kind, sev, code) = kinds[(i % 4) as usize];
        let ms = NOW_MS - (n - i) * 864;
        put(
            &d,
            ms,
            u128::from(i),
            kind,
            sev,
            code,
            r#","pid":1234,"comm":"curl","dst_port":8080,"daddr":"10.1.2.3""#,
        );
    }
    println!("wrote {n} files in {:?}", t.elapsed());
    for args in [
        &["status"][..],
        &["status"],
        &["recent", "--since", "5m"],
        &["recent", "--since", "1h"],
        &["recent", "--since", "24h"],
        &["health"],
    ] {
        let t = Instant::now();
        let o = tapio(&d, args);
        let el = t.elapsed();
        assert_eq!(o.status.code(), Some(0));
        println!(
            "tapio {:<22} {:>8.1} ms  ({} stdout lines)",
            args.join(" "),
            el.as_secs_f64() * 1000.0,
            stdout(&o).lines().count()
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

// A FIFO with an occurrence name used to be a way to hang a reader on open().
#[test]
fn fifo_in_the_data_dir_does_not_hang() {
    let d = tempdir("fifo");
    put(
        &d,
        NOW_MS - MIN,
        1,
        "kernel.node.cpu_stall",
        "warning",
        "CPU_STALL",
        r#","stall_ratio_pct":80"#,
    );
    let fifo = d.join(format!("{}.json", ulid(NOW_MS - MIN, 2)));
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let o = tapio(&d, &["recent", "--since", "5m"]);
    assert_eq!(o.status.code(), Some(0));
    assert_text(
        &stdout(&o),
        "2026-04-03T14:29:00.000Z warning kernel.node.cpu_stall count=1 stall_ratio_pct=80\n",
    );
    assert_eq!(
        stderr(&o),
        format!(
            "tapio: skipped 1 of 2 files in `{}`: 1 irregular (not a regular file)\n",
            d.display()
        )
    );
}

#[test]
fn help_documents_the_exit_codes() {
    let o = Command::new(bin()).arg("--help").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains(
        "Exit codes: 0 success (also when stdout closes early), 1 runtime error, 2 usage error, 3 data directory missing."
    ));
    let o = Command::new(bin()).arg("--bogus").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}
