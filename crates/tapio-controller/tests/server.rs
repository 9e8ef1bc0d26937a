//! The real controller binary on loopback: happy paths, hostile input,
//! authentication, limits and profile reload.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tapio_wire::CompiledConfig;
use util::{hello, hello_body, request, Controller};

const DEFAULT_HASH: &str =
    "sha256:a403e48b2ca79b4b5806ecdad5a5157f329186d71123cc825400480281a94b37";

fn batch(agent: &str, session: &str, seq: u64, port: u16) -> String {
    format!(
        r#"{{"agent_id":"{agent}","session":"{session}","sequence":{seq},"occurrences":[{{"id":"01JA1B2C3D4E5F6G7H8J9K0L1M","type":"kernel.network.connection_refused","data":{{"dst_port":{port},"config_generation":1}}}}]}}"#
    )
}

#[test]
fn hello_config_heartbeat_events_and_status() {
    let c = Controller::start(&["--log-level", "trace"]);
    let session = hello(&c, "agent-1");

    let cfg = c.get("/v1/agents/config?agent_id=agent-1");
    assert_eq!(cfg.status, 200);
    let etag = cfg.header("etag").unwrap().to_owned();
    assert_eq!(etag, format!("\"{DEFAULT_HASH}\""));
    let body: tapio_wire::ConfigResponse = serde_json::from_str(&cfg.body).unwrap();
    assert_eq!(body.generation, 1);
    assert_eq!(body.config, CompiledConfig::production_default());
    assert!(body.hash_matches());
    let again = request(
        c.addr,
        "GET",
        "/v1/agents/config",
        &[("if-none-match", &etag)],
        None,
    );
    assert_eq!(again.status, 304);
    assert_eq!(again.body, "");

    // Unconfigured heartbeat, then converged.
    let hb = |hash: &str| {
        format!(
            r#"{{"agent_id":"agent-1","session":"{session}","applied_hash":"{hash}","applied_generation":1,"observers":[{{"name":"node","state":"unavailable","reason":"no PMU"}}],"counters":{{"events":7,"lost":2}}}}"#
        )
    };
    let r = c.post("/v1/agents/heartbeat", &hb(""));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["converged"], false);
    assert_eq!(c.status()["convergence"]["pending"], 1);
    let r = c.post("/v1/agents/heartbeat", &hb(DEFAULT_HASH));
    assert_eq!(r.json()["converged"], true);

    for (seq, port) in [(1, 9), (2, 10), (4, 11)] {
        let r = c.post("/v1/events", &batch("agent-1", &session, seq, port));
        assert_eq!(r.json()["accepted"], 1, "{r:?}");
    }
    let dup = c
        .post("/v1/events", &batch("agent-1", &session, 4, 11))
        .json();
    assert_eq!(
        (dup["accepted"].as_u64(), dup["duplicate"].as_bool()),
        (Some(0), Some(true))
    );

    let s = c.status();
    let a = &s["agents"][0];
    assert_eq!(a["agent_id"], "agent-1");
    assert_eq!(a["node"], "node-a");
    assert_eq!(a["converged"], true);
    assert_eq!(a["applied_hash"], DEFAULT_HASH);
    assert_eq!(a["counters"]["events"], 7);
    assert_eq!(a["counters"]["lost"], 2);
    assert_eq!(a["observers"][0]["reason"], "no PMU");
    assert!(a["last_heartbeat_age_ms"].as_u64().unwrap() < 10_000);
    assert_eq!(
        (a["batches"].as_u64(), a["events"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        (a["last_sequence"].as_u64(), a["sequence_gaps"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(a["sequence_regressions"], 1);
    assert_eq!(s["convergence"]["converged_all"], true);
    assert_eq!(s["totals"]["events"], 3);
    assert_eq!(s["totals"]["sequence_gaps"], 1);
    assert_eq!(s["totals"]["sequence_regressions"], 1);
    assert_eq!(s["totals"]["config_not_modified"], 1);
    assert_eq!(s["config"]["generation"], 1);

    // Every accepted occurrence is in the trace log with its facts.
    c.wait_for("trace log of dst_port 11", || {
        c.log().contains(r#""dst_port":11"#)
    });
    assert!(c.log().contains(r#""dst_port":9"#));

    // A re-hello starts a new session; the old one is refused.
    let s2 = hello(&c, "agent-1");
    assert_ne!(s2, session);
    c.post("/v1/events", &batch("agent-1", &session, 5, 12))
        .assert_error(409, "unknown_agent");
    assert_eq!(
        c.post("/v1/events", &batch("agent-1", &s2, 1, 12)).status,
        200
    );
    assert_eq!(c.status()["agents"][0]["hellos"], 2);
}

#[test]
fn hostile_inputs_get_their_envelope_and_the_server_keeps_serving() {
    let c = Controller::start(&["--max-body-bytes", "4096", "--max-batch-events", "3"]);
    let session = hello(&c, "a");
    let cases: Vec<(util::Resp, u16, &str)> = vec![
        (c.post("/v1/agents/hello", "{not json"), 400, "malformed_request"),
        (c.post("/v1/agents/hello", r#"{"agent_id":5,"node":"n","agent_version":"v","protocol":"tapio-wire/v1"}"#), 400, "malformed_request"),
        (c.post("/v1/agents/heartbeat", r#"{"agent_id":"a","counters":{"events":-1}}"#), 400, "malformed_request"),
        (c.post("/v1/events", r#"{"agent_id":"a","sequence":"1","occurrences":[]}"#), 400, "malformed_request"),
        (c.post("/v1/events", r#"{"agent_id":"a","sequence":1,"occurrences":[1,2]}"#), 400, "malformed_request"),
        (c.post("/v1/events", r#"[]"#), 400, "malformed_request"),
        (c.post("/v1/events", ""), 400, "malformed_request"),
        (c.post("/v1/events", r#"{"agent_id":"a","sequence":0,"occurrences":[]}"#), 400, "invalid_field"),
        (c.post("/v1/agents/hello", &hello_body("bad id with spaces")), 400, "invalid_field"),
        (c.post("/v1/agents/hello", r#"{"agent_id":"x","node":"n","agent_version":"v","protocol":"tapio-wire/v9"}"#), 400, "invalid_field"),
        (c.post("/v1/agents/heartbeat", r#"{"agent_id":"ghost"}"#), 409, "unknown_agent"),
        (c.post("/v1/events", &format!(r#"{{"agent_id":"a","session":"{session}","sequence":1,"occurrences":[{{}},{{}},{{}},{{}}]}}"#)), 413, "payload_too_large"),
        (c.post("/v1/agents/hello", &format!(r#"{{"pad":"{}"}}"#, "x".repeat(5000))), 413, "payload_too_large"),
        (request(c.addr, "POST", "/v1/agents/hello", &[("content-type", "text/plain")], Some(b"{}")), 415, "unsupported_media_type"),
        (request(c.addr, "POST", "/v1/agents/hello", &[], Some(b"{}")), 415, "unsupported_media_type"),
        (c.get("/v1/nope"), 404, "not_found"),
        (c.get("/"), 404, "not_found"),
        (c.get("/v1/agents/hello"), 405, "method_not_allowed"),
        (c.post("/v1/status", "{}"), 405, "method_not_allowed"),
    ];
    for (r, status, code) in &cases {
        r.assert_error(*status, code);
    }
    assert_eq!(c.get("/v1/agents/hello").header("allow"), Some("POST"));

    // Declared oversize body: refused before it is sent.
    let mut s = TcpStream::connect(c.addr).unwrap();
    s.write_all(b"POST /v1/events HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 100000000\r\n\r\n").unwrap();
    util::read_response(&mut s).assert_error(413, "payload_too_large");

    // Chunked oversize body without a length.
    let mut s = TcpStream::connect(c.addr).unwrap();
    s.write_all(b"POST /v1/events HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n").unwrap();
    let chunk = format!("1000\r\n{}\r\n", "x".repeat(4096));
    for _ in 0..3 {
        if s.write_all(chunk.as_bytes()).is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    util::read_response(&mut s).assert_error(413, "payload_too_large");

    // Garbage that is not HTTP at all: the connection is dropped, nothing else.
    let mut s = TcpStream::connect(c.addr).unwrap();
    s.write_all(b"\x00\x01\x02 NOT HTTP\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);

    assert_eq!(c.get("/healthz").status, 200);
    assert_eq!(
        c.post("/v1/events", &batch("a", &session, 1, 9)).status,
        200
    );
    let totals = &c.status()["totals"];
    assert_eq!(totals["errors"]["malformed_request"], 7);
    assert_eq!(totals["errors"]["payload_too_large"], 4);
    assert_eq!(totals["events"], 1);
}

#[test]
fn slow_clients_are_cut_off_while_others_are_served() {
    let c = Controller::start(&["--header-timeout-ms", "500", "--body-timeout-ms", "500"]);
    let started = Instant::now();
    eprintln!("slowloris start");
    // Slowloris: headers trickle in one byte at a time, never finishing.
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(c.addr).unwrap())
        .collect();
    let mut idle = TcpStream::connect(c.addr).unwrap();
    for s in &mut slow {
        s.write_all(b"POST /v1/events HTTP/1.1\r\nx-slow: ")
            .unwrap();
    }
    // A slow body: headers complete, body never arrives -> 408.
    let mut slow_body = TcpStream::connect(c.addr).unwrap();
    slow_body
        .write_all(b"POST /v1/agents/hello HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n{")
        .unwrap();
    // Meanwhile a normal client is served promptly.
    for _ in 0..5 {
        for s in &mut slow {
            let _ = s.write_all(b"a");
        }
        let t = Instant::now();
        assert_eq!(c.get("/healthz").status, 200);
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "healthz took {:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The slow ones are closed by the header timeout: not before it, and
    // well before the 5 s read timeout here.
    for s in slow.iter_mut().chain(std::iter::once(&mut idle)) {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        let r = loop {
            match s.read(&mut buf) {
                Ok(n) if n > 0 => continue,
                other => break other,
            }
        };
        assert!(
            !matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "connection still open after {:?}",
            started.elapsed()
        );
        assert!(
            started.elapsed() >= Duration::from_millis(450),
            "closed early: {:?}",
            started.elapsed()
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    slow_body
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    util::read_response(&mut slow_body).assert_error(408, "request_timeout");
    assert_eq!(c.get("/healthz").status, 200);
}

#[test]
fn connections_past_the_limit_get_503() {
    let c = Controller::start(&["--max-connections", "2", "--header-timeout-ms", "3000"]);
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(c.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let r = request(c.addr, "GET", "/healthz", &[], None);
    r.assert_error(503, "overloaded");
    drop(held);
    c.wait_for("a free connection slot", || {
        request(c.addr, "GET", "/healthz", &[], None).status == 200
    });
    assert!(
        c.status()["totals"]["connections_refused"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

fn auth_checks(c: &Controller, token: &str) {
    let bearer = format!("Bearer {token}");
    let json = ("content-type", "application/json");
    let body = hello_body("a");
    request(
        c.addr,
        "POST",
        "/v1/agents/hello",
        &[json],
        Some(body.as_bytes()),
    )
    .assert_error(401, "unauthorized");
    let wrong = request(
        c.addr,
        "POST",
        "/v1/agents/hello",
        &[json, ("authorization", "Bearer nope")],
        Some(body.as_bytes()),
    );
    wrong.assert_error(401, "unauthorized");
    assert_eq!(wrong.header("www-authenticate"), Some("Bearer"));
    request(
        c.addr,
        "GET",
        "/v1/agents/config",
        &[("authorization", "Basic x")],
        None,
    )
    .assert_error(401, "unauthorized");
    request(c.addr, "GET", "/v1/status", &[], None).assert_error(401, "unauthorized");
    let ok = request(
        c.addr,
        "POST",
        "/v1/agents/hello",
        &[json, ("authorization", &bearer)],
        Some(body.as_bytes()),
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(request(c.addr, "GET", "/healthz", &[], None).status, 200);
    let s = request(
        c.addr,
        "GET",
        "/v1/status",
        &[("authorization", &bearer)],
        None,
    )
    .json();
    assert_eq!(s["totals"]["auth_rejections"], 4);
    assert_eq!(s["totals"]["errors"]["unauthorized"], 4);
    assert!(c.log().contains("missing_token") && c.log().contains("wrong_token"));
}

#[test]
fn token_from_file_is_required_on_agent_endpoints() {
    let dir = util::temp_dir("token");
    let path = dir.join("token");
    std::fs::write(&path, "s3cret-token\n").unwrap();
    let c = Controller::start(&["--token-file", path.to_str().unwrap()]);
    auth_checks(&c, "s3cret-token");
}

#[test]
fn token_from_env_is_required_on_agent_endpoints() {
    let c = Controller::start_env(&[], &[("TAPIO_CONTROLLER_TOKEN", "env-token")]);
    auth_checks(&c, "env-token");
}

const PROFILE: &str = "apiVersion: tapio.dev/v1\nkind: EvidenceProfile\nmetadata:\n  name: fleet\nspec:\n  base: production-default\n  storage:\n    latencyWarningUs: WARN\n    latencyCriticalUs: 2000000\n";

#[test]
fn profile_reload_on_change_and_sighup_bumps_the_generation() {
    let dir = util::temp_dir("reload");
    let path = dir.join("profile.yaml");
    let write = |warn: &str| {
        // Atomic replace, as editors and ConfigMap updates do.
        let tmp = dir.join("profile.yaml.tmp");
        std::fs::write(&tmp, PROFILE.replace("WARN", warn)).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    write("100000");
    let c = Controller::start(&[
        "--profile",
        path.to_str().unwrap(),
        "--reload-interval-ms",
        "100",
    ]);
    let gen = || c.status()["config"]["generation"].as_u64().unwrap();
    let first = c.get("/v1/agents/config").json();
    assert_eq!(first["generation"], 1);
    assert_eq!(first["config"]["profile"], "fleet");
    assert_eq!(first["config"]["storage"]["latency_warning_us"], 100000);

    write("150000");
    c.wait_for("generation 2 after a file change", || gen() == 2);
    let cfg = c.get("/v1/agents/config").json();
    assert_eq!(cfg["config"]["storage"]["latency_warning_us"], 150000);
    assert_ne!(cfg["hash"], first["hash"]);

    // An invalid edit is rejected; generation 2 keeps being served.
    write("0");
    c.wait_for("a rejected reload", || {
        c.status()["config"]["reload_failures"] == 1
    });
    let s = c.status();
    assert_eq!(s["config"]["generation"], 2);
    assert!(s["config"]["last_reload_error"]
        .as_str()
        .unwrap()
        .contains("latencyWarningUs"));

    // SIGHUP picks up an edit even when the mtime check has not run yet.
    write("175000");
    unsafe_kill(c.pid(), 1);
    c.wait_for("generation 3", || gen() == 3);
    // SIGHUP with unchanged content keeps the generation.
    unsafe_kill(c.pid(), 1);
    c.wait_for("unchanged reload log", || {
        c.log().contains("content unchanged")
    });
    assert_eq!(gen(), 3);
    assert_eq!(c.status()["config"]["reloads"], 2);
}

fn unsafe_kill(pid: i32, sig: i32) {
    let ok = std::process::Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn sigterm_stops_with_exit_zero() {
    let c = Controller::start(&[]);
    unsafe_kill(c.pid(), 15);
    let mut c = c;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(st) = c_try_wait(&mut c) {
            assert_eq!(st, Some(0));
            break;
        }
        assert!(Instant::now() < deadline, "controller did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn c_try_wait(c: &mut Controller) -> Option<Option<i32>> {
    c.try_wait()
}
