//! Attribution facts through the CLI: `recent` shows the pod and the short
//! container id, `status --by pod` counts per pod, the MCP tool filters by
//! pod UID and container id.

mod util;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use util::*;

const MIN: u64 = 60_000;
const POD_A: &str = "0c8a2d4e-57b1-4f3e-9a6d-1b2c3d4e5f60";
const POD_B: &str = "8a6c1c3e1f1e0c3b0a3e4b5c6d7e8f90";

fn cid(c: &str) -> String {
    c.repeat(64)
}

fn owned(pod: &str, container: &str) -> String {
    format!(
        r#","pid":7,"cgroup_id":42,"cgroup_path":"/kubepods/pod{pod}/{container}","pod_uid":"{pod}","qos_class":"Guaranteed","container_id":"{container}""#
    )
}

fn fixture(name: &str) -> PathBuf {
    let d = tempdir(name);
    let refused = "kernel.network.connection_refused";
    put(
        &d,
        NOW_MS - 5 * MIN,
        1,
        refused,
        "warning",
        "CONNECTION_REFUSED",
        &owned(POD_A, &cid("a")),
    );
    put(
        &d,
        NOW_MS - 4 * MIN,
        2,
        refused,
        "warning",
        "CONNECTION_REFUSED",
        &format!("{},\"count\":3,\"folded\":true", owned(POD_A, &cid("a"))),
    );
    put(
        &d,
        NOW_MS - 3 * MIN,
        3,
        "kernel.container.abnormal_exit",
        "warning",
        "ABNORMAL_EXIT",
        &owned(POD_B, &cid("b")),
    );
    put(
        &d,
        NOW_MS - 2 * MIN,
        4,
        refused,
        "warning",
        "CONNECTION_REFUSED",
        r#","pid":8,"cgroup_id":1,"cgroup_path":"/""#,
    );
    d
}

#[test]
fn recent_shows_the_pod_and_the_short_container_id() {
    let d = fixture("pods-recent");
    let out = stdout(&tapio(&d, &["recent", "--since", "1h"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].ends_with(&format!(
            "count=1 pod={POD_A} container=aaaaaaaaaaaa cgroup_id=42 pid=7"
        )),
        "{out}"
    );
    assert!(
        lines[2].contains(&format!("pod={POD_B} container=bbbbbbbbbbbb")),
        "{out}"
    );
    assert!(
        lines[3].ends_with("cgroup_id=1 cgroup_path=/ pid=8"),
        "{out}"
    );
}

#[test]
fn status_by_pod_counts_facts_per_pod_and_the_rest_apart() {
    let d = fixture("pods-status");
    let out = stdout(&tapio(&d, &["status", "--by", "pod"]));
    let pods: Vec<&str> = out.lines().filter(|l| l.starts_with("pod=")).collect();
    assert_eq!(
        pods,
        vec![
            format!(
                "pod={POD_A} facts=4 occurrences=2 last_hour=4 last_seen={}",
                rfc3339(NOW_MS - 4 * MIN)
            ),
            format!(
                "pod={POD_B} facts=1 occurrences=1 last_hour=1 last_seen={}",
                rfc3339(NOW_MS - 3 * MIN)
            ),
            format!(
                "pod=- facts=1 occurrences=1 last_hour=1 last_seen={}",
                rfc3339(NOW_MS - 2 * MIN)
            ),
        ],
        "{out}"
    );
    let plain = stdout(&tapio(&d, &["status"]));
    assert!(!plain.contains("pod="), "only when asked: {plain}");
    let json: Value =
        serde_json::from_str(&stdout(&tapio(&d, &["status", "--json", "--by", "pod"]))).unwrap();
    assert_eq!(json["pods"][0]["pod_uid"], POD_A);
    assert_eq!(json["pods"][2]["pod_uid"], Value::Null);
    let bad = tapio(&d, &["status", "--by", "node"]);
    assert_eq!(bad.status.code(), Some(2));
}

fn mcp_call(d: &PathBuf, arguments: &str) -> Value {
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(d)
        .arg("mcp")
        .env("TAPIO_NOW", NOW)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!(
        "{}\n{}\n{}\n",
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        format_args!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"recent_anomalies","arguments":{arguments}}}}}"#
        )
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let reply = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["id"] == 2)
        .unwrap_or_else(|| panic!("no reply: {text}"));
    reply
}

fn pids_of(reply: &Value) -> Vec<u64> {
    reply["result"]["structuredContent"]["occurrences"]
        .as_array()
        .unwrap_or_else(|| panic!("{reply:#}"))
        .iter()
        .map(|o| o["data"]["pid"].as_u64().unwrap())
        .collect()
}

#[test]
fn mcp_recent_anomalies_filters_by_pod_uid_and_container_id_prefix() {
    let d = fixture("pods-mcp");
    let by_pod = mcp_call(&d, &format!(r#"{{"since":"1h","pod_uid":"{POD_B}"}}"#));
    assert_eq!(pids_of(&by_pod), vec![7]);
    let occ = &by_pod["result"]["structuredContent"]["occurrences"][0];
    assert_eq!(occ["data"]["container_id"], cid("b"));
    let by_short = mcp_call(&d, r#"{"since":"1h","container_id":"aaaaaaaaaaaa"}"#);
    assert_eq!(pids_of(&by_short), vec![7, 7]);
    assert_eq!(by_short["result"]["structuredContent"]["matched_facts"], 4);
    let none = mcp_call(&d, r#"{"since":"1h","container_id":"cccc"}"#);
    assert_eq!(pids_of(&none), Vec::<u64>::new());
    let bad = mcp_call(&d, r#"{"pod_uid":"Not-A-Uid"}"#);
    assert_eq!(bad["error"]["code"], -32602, "{bad:#}");
}

#[test]
fn mcp_count_by_type_takes_the_same_pod_filter() {
    let d = fixture("pods-counts");
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(&d)
        .arg("mcp")
        .env("TAPIO_NOW", NOW)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!(
        "{}\n{}\n",
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
        format_args!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"count_by_type","arguments":{{"since":"1h","pod_uid":"{POD_A}"}}}}}}"#
        )
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    let reply: Value = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["id"] == 2)
        .unwrap();
    let text = reply["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("4 facts in 2 occurrences"), "{text}");
}
