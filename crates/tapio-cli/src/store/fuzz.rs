//! Fuzz targets of the data-directory reader: occurrence files and the
//! agent's status file, parsed as the CLI parses them and fed to what
//! `recent`, `status` and `health` do with them. Run by `scripts/fuzz.sh`
//! (`TAPIO_FUZZ_SECS`, `TAPIO_FUZZ_INPUTS`, `TAPIO_FUZZ_SEED`).
//!
//! Oracles: no panic (the fuzz profile has overflow checks on); a record
//! that parses re-encodes to JSON that parses to the same record; tallies
//! accumulate over many records (reset every 256 inputs, so memory stays
//! bounded) without overflowing.

use tapio_common::status::AgentStatus;
use tapio_common::Observer;
use tapio_fuzz::{Fuzzer, Verdict, JSON_TOKENS};

use super::{parse_occurrence, FileRef, Skip};
use crate::cmd::recent::write_occurrence;
use crate::health::{judge, status_age_ns};
use crate::query::{count, time_ns, Filter, Summary, Tally};
use crate::render::{facts, Style};

const NOW_NS: u64 = 1_795_609_700_000_000_000;

const OCCURRENCES: &[&str] = &[
    r#"{"id":"01M89ATT32SCX2F1EEETHR9Q96","timestamp":"2026-11-25T12:28:04.066Z","source":"tapio","type":"kernel.network.connection_refused","protocol_version":"1.0","severity":"warning","outcome":"failure","error":{"code":"CONNECTION_REFUSED","message":"connect to 127.0.0.1:35015 refused pid=27512 comm=python3"},"data":{"config_generation":1,"timestamp_ns":1795609684066512912,"dst_addr":"127.0.0.1","dst_port":35015,"pid":27512,"comm":"python3","cgroup_id":1,"tid":27512,"src_addr":"127.0.0.1","src_port":50936,"syn_retransmits":0,"syn_sent_ns":66094,"errno":111,"reset_received":true,"count":1}}"#,
    r#"{"id":"01M89ATT32SCX2F1EEETHR9Q97","timestamp":"2026-11-25T12:28:05Z","source":"tapio","type":"kernel.network.connection_refused","protocol_version":"1.0","severity":"warning","outcome":"failure","error":{"code":"CONNECTION_REFUSED","message":"folded"},"data":{"count":4000,"folded":true,"window_start_ns":1795609684066512912,"window_end_ns":1795609694066512912,"dst_port":80}}"#,
    r#"{"id":"01M89ATT32SCX2F1EEETHR9Q98","timestamp":"2026-11-25T12:28:06.5Z","source":"tapio","type":"kernel.container.oom_kill","protocol_version":"1.0","severity":"critical","outcome":"failure","error":{"code":"OOM_KILL","message":"pid 4242 (stress) killed by the OOM killer"},"data":{"pid":4242,"comm":"stress","cgroup_id":77,"pages":12345,"count":1}}"#,
    r#"{"id":"01M89ATT32SCX2F1EEETHR9Q99","timestamp":"2026-11-25T12:28:07Z","source":"tapio","type":"kernel.storage.io_error","protocol_version":"1.0","severity":"critical","outcome":"failure","error":{"code":"IO_ERROR","message":"I/O error on 7:0 sector 2048"},"data":{"dev":"7:0","sector":2048,"errno":-5,"op":"read","bytes":4096}}"#,
    r#"{"id":"01M89ATT32SCX2F1EEETHR9Q9A","timestamp":"2026-11-25T12:28:08Z","source":"tapio","type":"kernel.node.cpu_stall","protocol_version":"1.0","severity":"info","outcome":"unknown","error":{"code":"CPU_STALL","message":"stalled 61%"},"data":{"cpu":1,"stall_permille":610,"window_ms":10000,"note":"a b=\"c\""}}"#,
    r#"{"id":"x","timestamp":"not a time","source":"tapio","type":"kernel.future.thing","protocol_version":"9.9","severity":"info","outcome":"success","error":{"code":"","message":""},"data":{}}"#,
];

const OCCURRENCE_KEYS: &[&str] = &[
    "id",
    "timestamp",
    "source",
    "type",
    "protocol_version",
    "severity",
    "outcome",
    "error",
    "code",
    "message",
    "data",
    "count",
    "timestamp_ns",
    "folded",
    "window_start_ns",
    "window_end_ns",
    "config_generation",
    "kernel.network.retransmit_spike",
    "critical",
    "tapio",
];

#[test]
fn fuzz_occurrence_file() {
    let mut f = Fuzzer::new(
        "cli_occurrence_file",
        OCCURRENCES.iter().map(|s| s.as_bytes().to_vec()).collect(),
        1,
    );
    f.json_keys = Some(OCCURRENCE_KEYS.to_vec());
    // Real files are under 4 KiB; larger inputs only slow the run down.
    f.max_len = 8 * 1024;
    f.tokens = [JSON_TOKENS, &["é".as_bytes(), ".é".as_bytes(), b"Z"]].concat();
    let file = FileRef {
        name: "01M89ATT32SCX2F1EEETHR9Q96.json".into(),
        millis: 1_795_609_684_066,
    };
    let styles = [
        Style {
            tty: true,
            colour: true,
        },
        Style {
            tty: false,
            colour: false,
        },
    ];
    let mut summary = Summary {
        now_ns: NOW_NS,
        ..Summary::default()
    };
    let mut n = 0u64;
    let mut out = Vec::new();
    f.run(|input| {
        n += 1;
        if n % 256 == 0 {
            summary = Summary {
                now_ns: NOW_NS,
                ..Summary::default()
            };
        }
        let rec = match parse_occurrence(input) {
            Ok(rec) => rec,
            Err(Skip::HalfWritten) => return Verdict::drop("half_written"),
            Err(Skip::Corrupt) => return Verdict::drop("corrupt"),
            Err(Skip::Foreign) => return Verdict::drop("foreign"),
            Err(other) => panic!("parse gave {other:?}"),
        };
        let t = time_ns(&rec, &file);
        let _ = count(&rec);
        let _ = facts(&rec);
        if Filter::default().matches(&rec, t) {
            summary.add(&rec, t);
        }
        for style in &styles {
            for json in [false, true] {
                out.clear();
                write_occurrence(style, json, &rec, t, &mut out).unwrap();
            }
        }
        let mut back = parse_occurrence(&out).unwrap();
        assert!(
            same_json(&back.data.clone().into(), &rec.data.clone().into()),
            "{back:?} vs {rec:?}"
        );
        back.data = rec.data.clone();
        assert_eq!(back, rec);
        Verdict::keep("occurrence")
    });
}

/// Equal JSON, floats within a relative 1e-12 (serde_json without
/// `float_roundtrip` may move a huge literal by one ulp when it re-reads it).
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

const STATUS: &str = r#"{"agent_version":"0.1.0","pid":4242,"started_at":"2026-11-25T12:00:00Z","updated_at":"2026-11-25T12:28:00.123Z","config_generation":3,"config_hash":"sha256:48b6","observers":[{"name":"network","state":"running"},{"name":"container","state":"failed","reason":"cannot attach `tp/oom/mark_victim`"},{"name":"storage","state":"disabled"},{"name":"node","state":"unsupported","reason":"no PMU"}],"counters":{"tapio_events_total":12,"tapio_ringbuf_lost_total":0}}"#;

#[test]
fn fuzz_status_file() {
    let mut f = Fuzzer::new("cli_status_file", vec![STATUS.as_bytes().to_vec()], 1);
    f.json_keys = Some(vec![
        "agent_version",
        "pid",
        "started_at",
        "updated_at",
        "config_generation",
        "config_hash",
        "observers",
        "name",
        "state",
        "reason",
        "counters",
        "running",
        "failed",
        "network",
    ]);
    // Real files are under 4 KiB; larger inputs only slow the run down.
    f.max_len = 8 * 1024;
    f.tokens = [JSON_TOKENS, &["é".as_bytes(), ".é".as_bytes(), b"Z", b"."]].concat();
    let tally = Tally::default();
    f.run(|input| {
        let Ok(agent) = serde_json::from_slice::<AgentStatus>(input) else {
            return Verdict::drop("unusable");
        };
        let _ = status_age_ns(&agent, NOW_NS);
        for o in Observer::ALL {
            let j = judge(o, &tally, Some(&agent), NOW_NS);
            assert!(!j.detail.is_empty() && !j.rule.is_empty());
        }
        Verdict::keep("present")
    });
}
