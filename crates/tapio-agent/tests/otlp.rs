//! OTLP sink (feature `otlp`): exports received on loopback and decoded by
//! the official `opentelemetry-proto` Python package, an independent
//! decoder; `https://` refused before any connection; retries and drops
//! counted. The last test drives the real agent (root, real eBPF objects).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;
use tapio_agent::counters::{Counters, SinkKind};
use tapio_agent::sinks::otlp::OtlpSink;
use tapio_agent::sinks::Fanout;
use tapio_common::{Anomaly, Fact, Occurrence, Outcome, Severity, Sink};

/// One request as the collector saw it.
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A fake OTLP/HTTP collector on 127.0.0.1: answers each request with the
/// next status of `statuses` (the last one repeats) and hands the requests
/// over.
fn collector(statuses: Vec<u16>) -> (u16, mpsc::Receiver<Received>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (i, s) in l.incoming().enumerate() {
            let Ok(mut s) = s else { return };
            let status = statuses[i.min(statuses.len() - 1)];
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut request_line = String::new();
            r.read_line(&mut request_line).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (n, v) = h.split_once(':').unwrap();
                headers.push((n.trim().to_owned(), v.trim().to_owned()));
            }
            let len: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).unwrap();
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = tx.send(Received {
                request_line: request_line.trim_end().to_owned(),
                headers,
                body,
            });
        }
    });
    (port, rx)
}

fn decode(body: &[u8]) -> Vec<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/otlp_decode.py");
    python(&script, &[], body)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn python_ready() -> bool {
    python_module(
        "opentelemetry.proto.collector.logs.v1.logs_service_pb2",
        "opentelemetry-proto",
    )
}

fn sample(anomaly: Anomaly, severity: Severity) -> Occurrence {
    let mut o = Occurrence::new(
        anomaly,
        severity,
        Outcome::Failure,
        1_743_690_181_042_000_000,
        7,
    );
    o.message = "facts in one line".into();
    o.data
        .u64("pid", 4242)
        .str("comm", "stress-ng")
        .i64("errno", -5)
        .bool("reset_received", true)
        .set("ipc_ratio", Fact::F64(0.25))
        .u64("cgroup_id", u64::MAX - 1);
    o
}

#[test]
fn export_decodes_with_the_official_python_package_and_keeps_every_fact() {
    if !python_ready() {
        return;
    }
    let (port, rx) = collector(vec![200]);
    let counters = Arc::new(Counters::default());
    // A host name, not an address: resolved by the system resolver.
    let mut sink = OtlpSink::new(
        &format!("http://localhost:{port}/"),
        "node-a".into(),
        Arc::clone(&counters),
    )
    .unwrap();
    let batch = vec![
        sample(Anomaly::OomKill, Severity::Critical),
        sample(Anomaly::ConnectionRefused, Severity::Warning),
        sample(Anomaly::ConnectionRefused, Severity::Info),
    ];
    sink.write_batch(&batch, Instant::now() + Duration::from_secs(5))
        .unwrap();
    let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(got.request_line, "POST /v1/logs HTTP/1.1");
    assert_eq!(got.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(got.header("host"), Some(&*format!("localhost:{port}")));

    let records = decode(&got.body);
    assert_eq!(records.len(), 3);
    for (r, o) in records.iter().zip(&batch) {
        assert_eq!(
            r["resource"]["service.name"],
            json!(["string_value", "tapio-agent"])
        );
        assert_eq!(
            r["resource"]["host.name"],
            json!(["string_value", "node-a"])
        );
        assert_eq!(r["scope"], json!(["tapio", "1.0"]));
        assert_eq!(r["time_unix_nano"], 1_743_690_181_042_000_000u64);
        assert_eq!(r["body"], json!(["string_value", "facts in one line"]));
        assert_eq!(r["event_name"], o.anomaly.as_str());
        let a = &r["attributes"];
        assert_eq!(a["event.name"], json!(["string_value", o.anomaly.as_str()]));
        assert_eq!(a["tapio.id"], json!(["string_value", o.id.to_string()]));
        assert_eq!(a["tapio.source"], json!(["string_value", "tapio"]));
        assert_eq!(a["tapio.protocol_version"], json!(["string_value", "1.0"]));
        assert_eq!(a["tapio.outcome"], json!(["string_value", "failure"]));
        assert_eq!(
            a["tapio.error.code"],
            json!(["string_value", o.anomaly.error_code()])
        );
        // Every data fact, each with its own type; nothing dropped.
        assert_eq!(a["tapio.data.pid"], json!(["int_value", 4242]));
        assert_eq!(a["tapio.data.comm"], json!(["string_value", "stress-ng"]));
        assert_eq!(a["tapio.data.errno"], json!(["int_value", -5]));
        assert_eq!(a["tapio.data.reset_received"], json!(["bool_value", true]));
        assert_eq!(a["tapio.data.ipc_ratio"], json!(["double_value", 0.25]));
        assert_eq!(
            a["tapio.data.cgroup_id"],
            json!(["string_value", (u64::MAX - 1).to_string()]),
            "u64 above i64::MAX goes as its decimal string, not wrapped"
        );
        assert_eq!(a["tapio.data.config_generation"], json!(["int_value", 7]));
        assert_eq!(
            a["tapio.data.timestamp_ns"],
            json!(["int_value", 1_743_690_181_042_000_000u64])
        );
        assert_eq!(r["attribute_count"], 7 + o.data.len());
    }
    let sev: Vec<(u64, &str)> = records
        .iter()
        .map(|r| {
            (
                r["severity_number"].as_u64().unwrap(),
                r["severity_text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(sev, [(17, "critical"), (13, "warning"), (9, "info")]);
}

#[test]
fn retryable_statuses_are_retried_and_a_failed_batch_is_counted() {
    let (port, rx) = collector(vec![503, 429, 200]);
    let counters = Arc::new(Counters::default());
    let sink = OtlpSink::new(
        &format!("http://127.0.0.1:{port}"),
        "n".into(),
        Arc::clone(&counters),
    )
    .unwrap();
    let fanout = Fanout::start(
        vec![(SinkKind::Otlp, Box::new(sink))],
        Arc::clone(&counters),
    )
    .unwrap();
    fanout.emit(sample(Anomaly::ConnectionRefused, Severity::Warning));
    let late = fanout.shutdown(Instant::now() + Duration::from_secs(10));
    assert!(late.is_empty());
    let attempts: Vec<Received> = rx.try_iter().collect();
    assert_eq!(attempts.len(), 3, "503 and 429 are retried, then 200");
    let s = counters.snapshot();
    assert_eq!(s["tapio_sink_writes_total{sink=\"otlp\",result=\"ok\"}"], 1);
    assert_eq!(
        s["tapio_sink_drops_total{sink=\"otlp\",reason=\"write_failed\"}"],
        0
    );

    // A 400 is not retried: the batch fails at once and is counted.
    let (port, rx) = collector(vec![400]);
    let counters = Arc::new(Counters::default());
    let sink = OtlpSink::new(
        &format!("http://127.0.0.1:{port}"),
        "n".into(),
        Arc::clone(&counters),
    )
    .unwrap();
    let fanout = Fanout::start(
        vec![(SinkKind::Otlp, Box::new(sink))],
        Arc::clone(&counters),
    )
    .unwrap();
    fanout.emit(sample(Anomaly::ConnectionRefused, Severity::Warning));
    fanout.emit(sample(Anomaly::ConnectionRefused, Severity::Warning));
    assert!(fanout
        .shutdown(Instant::now() + Duration::from_secs(10))
        .is_empty());
    assert_eq!(rx.try_iter().count(), 1, "a 400 is not retried");
    let s = counters.snapshot();
    assert_eq!(
        s["tapio_sink_writes_total{sink=\"otlp\",result=\"error\"}"],
        1
    );
    assert_eq!(
        s["tapio_sink_drops_total{sink=\"otlp\",reason=\"write_failed\"}"],
        2
    );
}

#[test]
fn https_endpoint_is_refused_at_startup_before_any_connection() {
    // A listener where the https endpoint points: it must never see a
    // connection (no TLS attempt, no header, no auth).
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapio-agent"))
        .args(["--config", "/dev/null", "--sink", "otlp", "--otlp-endpoint"])
        .arg(format!("https://127.0.0.1:{port}"))
        .env("TAPIO_CONTROLLER_TOKEN", "secret")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("https is not supported"), "{stderr}");
    std::thread::sleep(Duration::from_millis(200));
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the agent connected to the https endpoint: {other:?}"),
    }
}

#[test]
fn real_refused_connect_reaches_the_collector_with_its_facts() {
    let Some(_k) = kernel_test(&["python3"]) else {
        return;
    };
    if !python_ready() {
        return;
    }
    let (port, rx) = collector(vec![200]);
    let cfg = config_with(|_| {});
    let endpoint = format!("http://localhost:{port}");
    let agent = Agent::start(
        "otlp",
        &cfg,
        &["--sink", "otlp", "--otlp-endpoint", &endpoint],
    );
    let closed = free_port();
    let e = TcpStream::connect(("127.0.0.1", closed)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    let printed = agent.wait_for(Duration::from_secs(10), |all| {
        all.iter().any(|o| {
            o["data"]["dst_port"] == closed && o["type"] == "kernel.network.connection_refused"
        })
    });
    let json_occ = printed
        .iter()
        .find(|o| o["data"]["dst_port"] == closed)
        .expect("stdout occurrence")
        .clone();
    // Find the same occurrence in the OTLP exports.
    let end = Instant::now() + Duration::from_secs(10);
    let record = loop {
        let left = end.saturating_duration_since(Instant::now());
        let got = rx
            .recv_timeout(left)
            .expect("no OTLP export with the refused connect");
        assert_eq!(got.request_line, "POST /v1/logs HTTP/1.1");
        if let Some(r) = decode(&got.body)
            .into_iter()
            .find(|r| r["attributes"]["tapio.data.dst_port"] == json!(["int_value", closed]))
        {
            break r;
        }
    };
    let a = &record["attributes"];
    assert_eq!(a["tapio.id"], json!(["string_value", json_occ["id"]]));
    assert_eq!(
        a["tapio.error.code"],
        json!(["string_value", "CONNECTION_REFUSED"])
    );
    assert_eq!(record["severity_text"], json_occ["severity"]);
    assert_eq!(
        record["body"],
        json!(["string_value", json_occ["error"]["message"]])
    );
    // Every fact of the JSON occurrence is an attribute with the same value.
    let data = json_occ["data"].as_object().unwrap();
    for (k, v) in data {
        let attr = &a[format!("tapio.data.{k}")];
        assert!(!attr.is_null(), "fact {k} missing from the OTLP record");
        assert_eq!(&attr[1], v, "fact {k}");
    }
    assert_eq!(record["attribute_count"], 7 + data.len());
    assert_eq!(
        a["tapio.data.pid"],
        json!(["int_value", std::process::id()])
    );
    let (code, _) = agent.stop();
    assert_eq!(code, 0);
}
