//! Metrics endpoint against the real agent (root, real eBPF objects): the
//! scrape is parsed by the official Prometheus Python parsers, and the
//! counters must move when a real refused connect happens.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const REFUSED: &str = "kernel.network.connection_refused";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/prom_parse.py")
}

fn get(port: u16, extra_headers: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\n{extra_headers}\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Every sample of a scrape, as the Python parser read it.
struct Samples(Vec<Value>);

impl Samples {
    fn scrape(port: u16, mode: &str) -> Samples {
        let accept = if mode == "openmetrics" {
            "Accept: application/openmetrics-text; version=1.0.0\r\n"
        } else {
            ""
        };
        let resp = get(port, accept);
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        let body = resp.split_once("\r\n\r\n").unwrap().1;
        let out = python(&script(), &[mode], body.as_bytes());
        Samples(
            out.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        )
    }

    /// The value of `name` with exactly these labels.
    fn value(&self, name: &str, labels: &Value) -> f64 {
        self.0
            .iter()
            .find(|s| s["name"] == name && &s["labels"] == labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels}"))["value"]
            .as_f64()
            .unwrap()
    }
}

#[test]
fn scrape_parses_and_counters_move_on_a_real_refused_connect() {
    let Some(_k) = kernel_test(&["python3"]) else {
        return;
    };
    if !python_module("prometheus_client", "prometheus_client") {
        return;
    }
    let port = free_port();
    let cfg = config_with(|c| c["fold_window_ms"] = json!(1000));
    let agent = Agent::start_toml(
        "metrics",
        &cfg,
        &format!("[metrics]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n"),
        &[],
    );
    agent.wait_log("metrics endpoint listening", Duration::from_secs(5));

    let anomalies = json!({"observer": "network", "type": REFUSED});
    let facts = json!({"observer": "network", "type": REFUSED});
    let events = json!({"observer": "network"});
    let before = Samples::scrape(port, "prometheus");
    assert_eq!(
        before.value(
            "tapio_observer_state",
            &json!({"observer": "network", "state": "running"})
        ),
        1.0
    );
    assert_eq!(
        before.value(
            "tapio_observer_state",
            &json!({"observer": "network", "state": "unavailable"})
        ),
        0.0
    );
    assert_eq!(
        before.value("tapio_config_generation", &json!({})),
        1.0,
        "the local compiled config is generation 1"
    );
    // Every E2 family is there (zero values included).
    for name in [
        "tapio_events_total",
        "tapio_anomalies_total",
        "tapio_lost_events_total",
        "tapio_malformed_events_total",
        "tapio_correlation_drops_total",
        "tapio_drain_cap_total",
        "tapio_sink_writes_total",
        "tapio_sink_drops_total",
        "tapio_controller_send_failures_total",
        "tapio_config_fetch_total",
        "tapio_config_errors_total",
    ] {
        assert!(
            before.0.iter().any(|s| s["name"] == name),
            "{name} missing from the scrape"
        );
    }

    let closed = free_port();
    const N: u64 = 3;
    for _ in 0..N {
        let e = TcpStream::connect(("127.0.0.1", closed)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    }
    let mine = |d: &Value| d["dst_port"] == closed;
    let seen = agent.wait_for(Duration::from_secs(10), |all| {
        count_sum(&of_type(all, REFUSED, mine)) >= N
    });
    assert_eq!(count_sum(&of_type(&seen, REFUSED, mine)), N);
    // The counters move with the occurrences (>=: other processes on this
    // host may be refused too while the test runs).
    let after = Samples::scrape(port, "prometheus");
    let d_anom = after.value("tapio_anomalies_total", &anomalies)
        - before.value("tapio_anomalies_total", &anomalies);
    let d_facts =
        after.value("tapio_facts_total", &facts) - before.value("tapio_facts_total", &facts);
    let d_events =
        after.value("tapio_events_total", &events) - before.value("tapio_events_total", &events);
    let printed = of_type(&seen, REFUSED, mine).len() as f64;
    assert!(d_anom >= printed, "anomalies +{d_anom}, printed {printed}");
    assert!(d_facts >= N as f64, "facts +{d_facts}");
    assert!(d_events >= N as f64, "events +{d_events}");
    assert!(
        after.value(
            "tapio_sink_writes_total",
            &json!({"sink": "stdout", "result": "ok"})
        ) >= 1.0
    );

    // Garbage and an idle connection do not take the endpoint down.
    let mut g = TcpStream::connect(("127.0.0.1", port)).unwrap();
    g.write_all(b"\x16\x03\x01garbage\r\n\r\n").unwrap();
    let mut resp = String::new();
    let _ = g.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    let _idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let last = Samples::scrape(port, "prometheus");
    assert_eq!(
        last.value(
            "tapio_metrics_requests_total",
            &json!({"result": "bad_request"})
        ),
        1.0
    );
    // The two scrapes before this one (a scrape is rendered before it is
    // counted).
    assert_eq!(
        last.value("tapio_metrics_requests_total", &json!({"result": "ok"})),
        2.0
    );

    let (code, _) = agent.stop();
    assert_eq!(code, 0);
}

#[test]
fn metrics_are_off_by_default() {
    let Some(_k) = kernel_test(&[]) else { return };
    let agent = Agent::start("metrics-off", &config_with(|_| {}), &[]);
    assert!(
        !agent
            .log_lines()
            .iter()
            .any(|l| l.contains("metrics endpoint listening")),
        "metrics endpoint started without [metrics] enabled = true"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", 9464)).is_err(),
        "something listens on the default metrics port"
    );
    let (code, _) = agent.stop();
    assert_eq!(code, 0);
}
