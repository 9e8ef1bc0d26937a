//! Fuzz targets: wire JSON at every controller endpoint, through the real
//! router (`routes::handle`, the function hyper calls per request), driven
//! in-process with in-memory bodies. One target per POST endpoint (mutated
//! bodies, occasionally with wrong headers) and one for the GET endpoints,
//! methods and paths (mutated request heads). `scripts/fuzz.sh` runs them
//! with a budget (`TAPIO_FUZZ_SECS`, `TAPIO_FUZZ_INPUTS`, `TAPIO_FUZZ_SEED`).
//!
//! Oracles: no panic (overflow checks on in the fuzz profile), never a 500;
//! every answer is the endpoint's response type (2xx), empty (304) or an
//! error envelope whose code maps to the HTTP status; 401 carries
//! `WWW-Authenticate`, 405 carries `Allow`; an accepted batch never exceeds
//! the batch limit. The app is rebuilt every 4,096 inputs, so its registry
//! (at most 64 agents) and memory stay bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use tapio_controller::auth::Token;
use tapio_controller::config_state::ConfigState;
use tapio_controller::metrics::Counters;
use tapio_controller::registry::Registry;
use tapio_controller::routes::{handle, App};
use tapio_controller::Limits;
use tapio_fuzz::{Fuzzer, Rng, Verdict, JSON_TOKENS};
use tapio_wire::{
    paths, CompiledConfig, ConfigResponse, ControllerStatus, ErrorEnvelope, EventBatchResponse,
    HeartbeatResponse, HelloResponse,
};

const TOKEN: &str = "fuzz-token-0123456789";
const MAX_BATCH: u32 = 50;
const SESSION: &str = "@SESSION@";

const KEYS: &[&str] = &[
    "agent_id",
    "node",
    "agent_version",
    "protocol",
    "started_at",
    "observers",
    "applied_hash",
    "session",
    "applied_generation",
    "counters",
    "events",
    "anomalies",
    "lost",
    "malformed",
    "correlation_drops",
    "sink_drops",
    "send_failures",
    "sequence",
    "occurrences",
    "name",
    "state",
    "reason",
    "running",
    "failed",
    "tapio-wire/v1",
    "node-a",
    SESSION,
];

struct Harness {
    rt: tokio::runtime::Runtime,
    app: Arc<App>,
    session: String,
    used: u32,
}

fn new_app() -> Arc<App> {
    Arc::new(App {
        config: ConfigState::new(CompiledConfig::production_default(), None),
        registry: Registry::new(64),
        counters: Counters::default(),
        limits: Limits {
            max_body_bytes: 8 * 1024,
            max_batch_events: MAX_BATCH,
            max_agents: 64,
            body_read_timeout: Duration::from_secs(5),
            ..Limits::default()
        },
        token: Some(Token::new(TOKEN, "fuzz").unwrap()),
        config_poll_secs: 30,
        started: Instant::now(),
    })
}

fn hello_body(agent: &str) -> String {
    format!(
        r#"{{"agent_id":"{agent}","node":"n1","agent_version":"0.1.0","protocol":"tapio-wire/v1","started_at":"2026-11-30T12:00:00Z","observers":[{{"name":"network","state":"running"}},{{"name":"node","state":"unavailable","reason":"no PMU"}}],"applied_hash":""}}"#
    )
}

impl Harness {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut h = Harness {
            rt,
            app: new_app(),
            session: String::new(),
            used: 0,
        };
        h.reset();
        h
    }

    fn reset(&mut self) {
        self.app = new_app();
        self.used = 0;
        let req = post(paths::HELLO, hello_body("node-a").into_bytes(), &[]);
        let (status, _, body) = self.send(req);
        assert_eq!(status, StatusCode::OK);
        self.session = serde_json::from_slice::<HelloResponse>(&body)
            .unwrap()
            .session;
    }

    fn send(&mut self, req: Request<Full<Bytes>>) -> (StatusCode, Response<()>, Bytes) {
        self.used += 1;
        let app = Arc::clone(&self.app);
        self.rt.block_on(async move {
            let r = handle(app, req).await.unwrap();
            let (parts, body) = r.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            (parts.status, Response::from_parts(parts, ()), bytes)
        })
    }

    fn maybe_reset(&mut self) {
        if self.used >= 4096 {
            self.reset();
        }
    }
}

fn post(path: &str, body: Vec<u8>, drop_headers: &[&str]) -> Request<Full<Bytes>> {
    let mut b = Request::post(path);
    if !drop_headers.contains(&"content-type") {
        b = b.header("content-type", "application/json");
    }
    if !drop_headers.contains(&"authorization") {
        b = b.header("authorization", format!("Bearer {TOKEN}"));
    }
    b.body(Full::new(Bytes::from(body))).unwrap()
}

/// Checks the answer's shape; returns the label.
fn check(
    status: StatusCode,
    head: &Response<()>,
    body: &[u8],
    ok: fn(&[u8]) -> bool,
) -> &'static str {
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        String::from_utf8_lossy(body)
    );
    if status == StatusCode::NOT_MODIFIED {
        assert!(body.is_empty());
        return "304";
    }
    if status.is_success() {
        assert!(ok(body), "{status}: {}", String::from_utf8_lossy(body));
        return "200";
    }
    let env: ErrorEnvelope = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{status}: not an envelope ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    let code = env
        .code()
        .unwrap_or_else(|| panic!("unknown code {}", env.error.code));
    assert_eq!(code.http_status(), status.as_u16(), "{env:?}");
    if status == StatusCode::UNAUTHORIZED {
        assert!(head.headers().contains_key("www-authenticate"));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        assert!(head.headers().contains_key("allow"));
    }
    match status.as_u16() {
        400 => "400",
        401 => "401",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        413 => "413",
        415 => "415",
        503 => "503",
        _ => "other",
    }
}

/// Runs one POST target: bodies of `seeds`, mostly with the right headers.
fn post_target(name: &'static str, path: &'static str, seeds: Vec<String>, ok: fn(&[u8]) -> bool) {
    let mut h = Harness::new();
    let mut f = Fuzzer::new(name, seeds.into_iter().map(String::into_bytes).collect(), 1);
    f.json_keys = Some(KEYS.to_vec());
    f.max_len = 12 * 1024;
    f.tokens = [JSON_TOKENS, &[SESSION.as_bytes()]].concat();
    let mut rng = Rng::new(f.budget.seed ^ 0xc0ffee);
    f.run(|input| {
        h.maybe_reset();
        let body = String::from_utf8_lossy(input).replace(SESSION, &h.session.clone());
        let drop: &[&str] = match rng.below(32) {
            0 => &["content-type"],
            1 => &["authorization"],
            _ => &[],
        };
        let (status, head, out) = h.send(post(path, body.into_bytes(), drop));
        let l = check(status, &head, &out, ok);
        Verdict {
            label: l,
            keep: l == "200",
        }
    });
}

fn parses<T: serde::de::DeserializeOwned>(b: &[u8]) -> bool {
    serde_json::from_slice::<T>(b).is_ok()
}

#[test]
fn fuzz_route_hello() {
    let seeds = vec![
        hello_body("node-a"),
        hello_body("b.c_d:e-f"),
        r#"{"agent_id":"x","node":"","agent_version":"","protocol":"tapio-wire/v1","started_at":"","observers":[],"applied_hash":"sha256:00"}"#.into(),
    ];
    post_target("route_hello", paths::HELLO, seeds, parses::<HelloResponse>);
}

#[test]
fn fuzz_route_heartbeat() {
    let seeds = vec![
        format!(
            r#"{{"agent_id":"node-a","session":"{SESSION}","applied_hash":"{}","applied_generation":1,"observers":[{{"name":"network","state":"running"}}],"counters":{{"events":10,"anomalies":2,"lost":0,"malformed":0,"correlation_drops":0,"sink_drops":0,"send_failures":0}}}}"#,
            CompiledConfig::production_default().content_hash()
        ),
        format!(
            r#"{{"agent_id":"node-a","session":"{SESSION}","applied_hash":"","applied_generation":0,"observers":[],"counters":{{"events":18446744073709551615,"anomalies":18446744073709551615,"lost":1,"malformed":1,"correlation_drops":1,"sink_drops":1,"send_failures":1}}}}"#
        ),
    ];
    post_target(
        "route_heartbeat",
        paths::HEARTBEAT,
        seeds,
        parses::<HeartbeatResponse>,
    );
}

#[test]
fn fuzz_route_events() {
    let occ = r#"{"id":"01M89ATT32SCX2F1EEETHR9Q96","timestamp":"2026-11-25T12:28:04.066Z","source":"tapio","type":"kernel.network.connection_refused","protocol_version":"1.0","severity":"warning","outcome":"failure","error":{"code":"CONNECTION_REFUSED","message":"m"},"data":{"dst_port":35015,"count":1}}"#;
    let seeds = vec![
        format!(
            r#"{{"agent_id":"node-a","session":"{SESSION}","sequence":1,"occurrences":[{occ}]}}"#
        ),
        format!(
            r#"{{"agent_id":"node-a","session":"{SESSION}","sequence":7,"occurrences":[{occ},{occ},{{}}]}}"#
        ),
        format!(
            r#"{{"agent_id":"node-a","session":"{SESSION}","sequence":18446744073709551615,"occurrences":[]}}"#
        ),
    ];
    post_target("route_events", paths::EVENTS, seeds, |b| {
        serde_json::from_slice::<EventBatchResponse>(b)
            .is_ok_and(|r| r.accepted <= u64::from(MAX_BATCH))
    });
}

/// GET endpoints, wrong methods and paths: the input is a request head,
/// `METHOD TARGET` then `name: value` lines.
#[test]
fn fuzz_route_heads() {
    let hash = CompiledConfig::production_default().content_hash();
    let auth = format!("authorization: Bearer {TOKEN}");
    let seeds: Vec<Vec<u8>> = [
        format!("GET /v1/agents/config?agent_id=node-a\n{auth}\n"),
        format!("GET /v1/agents/config?x=1&agent_id=node-a&agent_id=b\n{auth}\nif-none-match: \"{hash}\"\n"),
        format!("GET /v1/status\n{auth}\n"),
        "GET /healthz\n".into(),
        format!("POST /v1/status\n{auth}\n"),
        format!("DELETE /v1/agents/hello\n{auth}\n"),
        "GET /v1/status\nauthorization: Bearer wrong\n".into(),
        "GET /v1/status\nauthorization: Basic Zm9vOmJhcg==\n".into(),
        format!("GET /nope/../v1/status\n{auth}\n"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    let mut h = Harness::new();
    let mut f = Fuzzer::new("route_heads", seeds, 1);
    f.max_len = 4 * 1024;
    f.tokens = vec![
        b"\n",
        b" ",
        b":",
        b"?",
        b"&",
        b"=",
        b"/",
        b"%00",
        b"%2F",
        b"..",
        b"GET",
        b"POST",
        b"HEAD",
        b"/v1/agents/config",
        b"/v1/status",
        b"/healthz",
        b"agent_id=",
        b"if-none-match: ",
        b"authorization: Bearer ",
        TOKEN.as_bytes(),
        b"\"",
        b"*",
        b"W/",
    ];
    f.run(|input| {
        h.maybe_reset();
        let text = String::from_utf8_lossy(input);
        let mut lines = text.split('\n');
        let (method, target) = lines
            .next()
            .unwrap_or("")
            .split_once(' ')
            .unwrap_or(("GET", "/"));
        let mut b = Request::builder().method(method).uri(target);
        for l in lines {
            if let Some((n, v)) = l.split_once(':') {
                b = b.header(n.trim(), v.trim());
            }
        }
        let Ok(req) = b.body(Full::new(Bytes::new())) else {
            // hyper's parser refuses what `http` cannot represent.
            return Verdict::drop("unbuildable");
        };
        let path = req.uri().path().to_owned();
        let (status, head, out) = h.send(req);
        let l = check(
            status,
            &head,
            &out,
            match path.as_str() {
                paths::CONFIG => parses::<ConfigResponse>,
                paths::STATUS => parses::<ControllerStatus>,
                _ => |b: &[u8]| {
                    serde_json::from_slice::<serde_json::Value>(b)
                        .is_ok_and(|v| v["status"] == "ok")
                },
            },
        );
        Verdict {
            label: l,
            keep: l == "200" || l == "304",
        }
    });
}
