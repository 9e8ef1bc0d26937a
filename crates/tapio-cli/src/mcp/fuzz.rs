//! Fuzz target of the MCP server's line handling: mutated JSON-RPC messages
//! and sessions, served over a data directory holding real occurrence
//! files. Run by `scripts/fuzz.sh` (`TAPIO_FUZZ_SECS`, `TAPIO_FUZZ_INPUTS`,
//! `TAPIO_FUZZ_SEED`).
//!
//! Oracles: no panic; at most one reply line per input line; every reply is
//! a JSON-RPC 2.0 response object (or a non-empty array of them) with
//! exactly one of `result` and `error`, and an `id` that is null, a string
//! or an integer.

use std::path::PathBuf;

use serde_json::Value;
use tapio_fuzz::{Fuzzer, Verdict, JSON_TOKENS};

use super::serve;

const MESSAGES: &[&str] = &[
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"fuzz","version":"0"}}}"#,
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    r#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#,
    r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
    r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"recent_anomalies","arguments":{"since":"2h","observer":"network","limit":5}}}"#,
    r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"node_health","arguments":{}}}"#,
    r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"count_by_type","arguments":{"since":"2026-11-25T12:00:00Z"}}}"#,
    r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"get_occurrence","arguments":{"id":"01M89ATT32SCX2F1EEETHR9Q96"}}}"#,
    r#"[{"jsonrpc":"2.0","id":7,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}]"#,
    "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\"}\n{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":\"recent_anomalies\"}}\n",
];

const KEYS: &[&str] = &[
    "jsonrpc",
    "id",
    "method",
    "params",
    "name",
    "arguments",
    "since",
    "observer",
    "limit",
    "severity",
    "type",
    "protocolVersion",
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "recent_anomalies",
    "node_health",
    "count_by_type",
    "get_occurrence",
    "result",
    "error",
    "container",
    "storage",
    "node",
    "network",
    "366d",
    "367d",
    "0s",
    "1h",
];

/// Crockford base32 ULID for `millis` (random part fixed by `salt`).
fn ulid(millis: u64, salt: u64) -> String {
    const A: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let v: u128 = (u128::from(millis) << 80) | u128::from(salt);
    (0..26)
        .rev()
        .map(|i| char::from(A[((v >> (5 * i)) & 31) as usize]))
        .collect()
}

/// A data directory with a few occurrence files of the last minutes and a
/// status file; removed on drop.
struct DataDir(PathBuf);

impl DataDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tapio-fuzz-mcp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let now_ms = crate::window::now_ns() / 1_000_000;
        for (i, kind) in [
            "kernel.network.connection_refused",
            "kernel.container.oom_kill",
            "kernel.storage.io_error",
            "kernel.node.cpu_stall",
        ]
        .iter()
        .enumerate()
        {
            let ms = now_ms - 60_000 * i as u64;
            let id = ulid(ms, i as u64);
            let body = format!(
                r#"{{"id":"{id}","timestamp":"2026-11-25T12:28:04.066Z","source":"tapio","type":"{kind}","protocol_version":"1.0","severity":"warning","outcome":"failure","error":{{"code":"X","message":"m"}},"data":{{"timestamp_ns":{},"pid":{i},"count":{}}}}}"#,
                ms * 1_000_000,
                i + 1
            );
            std::fs::write(dir.join(format!("{id}.json")), body).unwrap();
        }
        std::fs::write(dir.join("01M89ATT32SCX2F1EEETHR9Q96.json"), "{half").unwrap();
        DataDir(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check_reply(v: &Value) {
    let one = |r: &Value| {
        let o = r
            .as_object()
            .unwrap_or_else(|| panic!("reply is not an object: {r}"));
        assert_eq!(o.get("jsonrpc"), Some(&Value::from("2.0")), "{r}");
        assert!(o.contains_key("result") != o.contains_key("error"), "{r}");
        match o.get("id") {
            Some(Value::Null | Value::String(_)) => {}
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {}
            other => panic!("bad id {other:?} in {r}"),
        }
        if let Some(e) = o.get("error") {
            assert!(e["code"].is_i64() && e["message"].is_string(), "{r}");
        }
    };
    match v {
        Value::Array(a) => {
            assert!(!a.is_empty(), "empty batch reply");
            a.iter().for_each(one);
        }
        other => one(other),
    }
}

#[test]
fn fuzz_mcp_lines() {
    let dir = DataDir::new();
    let mut f = Fuzzer::new(
        "mcp_lines",
        MESSAGES.iter().map(|s| s.as_bytes().to_vec()).collect(),
        1,
    );
    f.json_keys = Some(KEYS.to_vec());
    f.max_len = 16 * 1024;
    f.tokens = [JSON_TOKENS, &[b"\n", b"\r\n"]].concat();
    let mut out = Vec::new();
    f.run(|input| {
        out.clear();
        serve(&dir.0, input, &mut out).unwrap();
        let lines = input
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        let replies: Vec<Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("reply is JSON"))
            .collect();
        assert!(
            replies.len() <= lines,
            "{} replies to {lines} lines",
            replies.len()
        );
        replies.iter().for_each(check_reply);
        if replies.iter().any(|r| r.get("result").is_some()) {
            Verdict::keep("result")
        } else if replies.is_empty() {
            Verdict::drop("no_reply")
        } else {
            Verdict::drop("error")
        }
    });
}
