//! The agent's hand-written HTTP/1.1 client against real peers: Python's
//! `http.server` (Content-Length, chunked and close-delimited bodies) and
//! the real `tapio-controller` (hyper): hello, config with ETag/304,
//! unknown-session heartbeat, event batch.
//!
//! Needs `python3` and a built `tapio-controller` next to this test's
//! binary (`cargo build -p tapio-controller`, or any workspace build).
//! Under `CI=true` a missing peer fails; elsewhere the test says why it
//! skips.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tapio_agent::http::{Client, Endpoint, Request};
use tapio_wire::{ConfigResponse, ErrorEnvelope, HelloResponse};

mod skip;

fn skip(why: &str) {
    skip::cannot_run(why);
}

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const PY_SERVER: &str = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.send_response(201)
        self.send_header("Content-Type", self.headers.get("Content-Type", ""))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"tapio ", b"chunked ", b"body"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the connection closes")
            self.close_connection = True
        else:
            self.send_error(404)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

fn first_line(child: &mut Child) -> String {
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    line.trim().to_owned()
}

fn send(
    ep: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> tapio_agent::http::Response {
    Client::default()
        .send(
            ep,
            &Request {
                method,
                path,
                headers,
                body,
            },
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

#[test]
fn python_http_server_bodies() {
    let Ok(mut child) = Command::new("python3")
        .args(["-c", PY_SERVER])
        .stdout(Stdio::piped())
        .spawn()
    else {
        return skip("python3 is not installed");
    };
    let port = first_line(&mut child);
    let _peer = Peer(child);
    let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();

    let body = br#"[{"type":"kernel.network.connection_refused"}]"#;
    let r = send(
        &ep,
        "POST",
        "/sink",
        &[("Content-Type", "application/json")],
        Some(body),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.body, body);
    assert_eq!(r.header("content-type"), Some("application/json"));

    let r = send(&ep, "GET", "/chunked", &[], None);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"tapio chunked body"[..])
    );

    let r = send(&ep, "GET", "/close", &[], None);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"until the connection closes"[..])
    );

    let r = send(&ep, "GET", "/missing", &[], None);
    assert_eq!(r.status, 404);

    // Host names are resolved.
    let named = Endpoint::parse(&format!("http://localhost:{port}/")).unwrap();
    assert_eq!(send(&named, "POST", "/x", &[], Some(b"1")).body, b"1");
}

fn controller_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TAPIO_CONTROLLER_BIN") {
        return Some(p.into());
    }
    // target/<profile>/deps/<this test> -> target/<profile>/tapio-controller
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("tapio-controller");
    p.exists().then_some(p)
}

#[test]
fn real_controller_exchanges() {
    let Some(bin) = controller_bin() else {
        return skip("tapio-controller is not built (cargo build -p tapio-controller)");
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&bin)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-level",
            "warn",
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("start tapio-controller");
    let _peer = Peer(child);
    let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "controller did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let json = [("Content-Type", "application/json")];

    let hello = serde_json::json!({
        "agent_id": "peer-test", "node": "n", "agent_version": "0",
        "protocol": tapio_wire::PROTOCOL
    });
    let r = send(
        &ep,
        "POST",
        "/v1/agents/hello",
        &json,
        Some(hello.to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let h: HelloResponse = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(h.agent_id, "peer-test");
    assert!(!h.session.is_empty());

    let r = send(
        &ep,
        "GET",
        "/v1/agents/config?agent_id=peer-test",
        &[],
        None,
    );
    assert_eq!(r.status, 200);
    let c: ConfigResponse = serde_json::from_slice(&r.body).unwrap();
    assert!(c.hash_matches());
    let etag = r.header("etag").expect("ETag").to_owned();
    let r = send(
        &ep,
        "GET",
        "/v1/agents/config",
        &[("If-None-Match", &etag)],
        None,
    );
    assert_eq!((r.status, r.body.len()), (304, 0));

    let hb = serde_json::json!({"agent_id": "peer-test", "session": "not-the-session"});
    let r = send(
        &ep,
        "POST",
        "/v1/agents/heartbeat",
        &json,
        Some(hb.to_string().as_bytes()),
    );
    assert_eq!(r.status, 409);
    let e: ErrorEnvelope = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(e.error.code, "unknown_agent");

    let batch = serde_json::json!({
        "agent_id": "peer-test", "session": h.session, "sequence": 1,
        "occurrences": [{"type": "kernel.network.connection_refused"}]
    });
    let r = send(
        &ep,
        "POST",
        "/v1/events",
        &json,
        Some(batch.to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (v["accepted"].as_u64(), v["sequence"].as_u64()),
        (Some(1), Some(1))
    );
}
