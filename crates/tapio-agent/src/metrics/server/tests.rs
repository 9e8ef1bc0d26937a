use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tapio_common::Observer;

use super::*;
use crate::counters::Counters;
use crate::metrics::{start, Endpoint};
use crate::state::AgentState;

const TEST_LIMITS: Limits = Limits {
    max_connections: 4,
    read_deadline: Duration::from_millis(600),
    write_deadline: Duration::from_secs(2),
    max_head: 1024,
};

/// An endpoint on 127.0.0.1:0 on its own runtime thread.
struct Running {
    ep: Endpoint,
    state: Arc<AgentState>,
    stop: watch::Sender<bool>,
    _rt: std::thread::JoinHandle<()>,
}

fn running() -> Running {
    let state = Arc::new(AgentState::new(Arc::new(Counters::default())));
    let (stop, stop_rx) = watch::channel(false);
    let (tx, rx) = std::sync::mpsc::channel();
    let st = Arc::clone(&state);
    let mut done = stop.subscribe();
    let rt = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let ep = start("127.0.0.1:0", st, TEST_LIMITS, stop_rx).unwrap();
            tx.send(ep).unwrap();
            let _ = done.wait_for(|s| *s).await;
        });
    });
    let ep = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    Running {
        ep,
        state,
        stop,
        _rt: rt,
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Running {
    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.ep.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// Sends `req` and reads the whole response.
    fn exchange(&self, req: &[u8]) -> String {
        let mut s = self.connect();
        s.write_all(req).unwrap();
        read_all(&mut s)
    }

    fn scrape(&self) -> String {
        self.exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    }
}

fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status(resp: &str) -> &str {
    resp.lines().next().unwrap_or("")
}

#[test]
fn scrape_serves_prometheus_text_with_live_counters() {
    let r = running();
    r.state.counters.event(Observer::Network);
    r.state.counters.event(Observer::Network);
    let resp = r.scrape();
    assert_eq!(status(&resp), "HTTP/1.1 200 OK", "{resp}");
    assert!(resp.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    let body = resp.split("\r\n\r\n").nth(1).unwrap();
    let len: usize = resp
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(body.len(), len);
    assert!(body.contains("tapio_events_total{observer=\"network\"} 2\n"));
    assert_eq!(r.ep.requests.get(RequestResult::Ok), 1);
}

#[test]
fn prometheus_text_is_served_whatever_the_accept_header() {
    let r = running();
    let resp = r.exchange(
        b"GET /metrics?x=1 HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n",
    );
    assert!(resp.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert!(!resp.contains("# EOF"), "{resp}");
}

#[test]
fn head_gets_headers_only() {
    let r = running();
    let resp = r.exchange(b"HEAD /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(status(&resp), "HTTP/1.1 200 OK");
    assert!(resp.ends_with("\r\n\r\n"), "{resp}");
}

#[test]
fn garbage_requests_get_400_and_the_endpoint_keeps_serving() {
    let r = running();
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n"[..],
        b"hello\r\n\r\n",
        b"GET /metrics HTTP/2.0\r\n\r\n",
        b"GET  /metrics HTTP/1.1\r\n\r\n",
        b"GET metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
    ] {
        let resp = r.exchange(garbage);
        assert_eq!(
            status(&resp),
            "HTTP/1.1 400 Bad Request",
            "{:?}",
            String::from_utf8_lossy(garbage)
        );
    }
    assert_eq!(r.ep.requests.get(RequestResult::BadRequest), 6);
    assert_eq!(status(&r.scrape()), "HTTP/1.1 200 OK");
}

#[test]
fn a_bad_first_line_is_refused_before_the_head_ends() {
    // A client that sends a garbage line and then nothing must not hold
    // the connection until the read deadline.
    let r = running();
    let mut s = r.connect();
    let t = Instant::now();
    s.write_all(b"\x00\x01garbage\r\n").unwrap();
    let resp = read_all(&mut s);
    assert_eq!(status(&resp), "HTTP/1.1 400 Bad Request");
    assert!(t.elapsed() < TEST_LIMITS.read_deadline, "{:?}", t.elapsed());
}

#[test]
fn wrong_path_and_method_are_404_and_405() {
    let r = running();
    assert_eq!(
        status(&r.exchange(b"GET /admin HTTP/1.1\r\n\r\n")),
        "HTTP/1.1 404 Not Found"
    );
    let resp = r.exchange(b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(status(&resp), "HTTP/1.1 405 Method Not Allowed");
    assert!(resp.contains("Allow: GET, HEAD\r\n"));
}

#[test]
fn oversized_heads_get_431() {
    let r = running();
    let mut req = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 4 * TEST_LIMITS.max_head));
    let mut s = r.connect();
    // The server may close before everything is written: ignore the error.
    let _ = s.write_all(&req);
    let resp = read_all(&mut s);
    assert_eq!(
        status(&resp),
        "HTTP/1.1 431 Request Header Fields Too Large",
        "{resp}"
    );
    assert_eq!(r.ep.requests.get(RequestResult::TooLarge), 1);
}

#[test]
fn idle_connections_are_closed_at_the_read_deadline_and_scrapes_go_on() {
    let r = running();
    let mut idle: Vec<TcpStream> = (0..TEST_LIMITS.max_connections - 1)
        .map(|_| r.connect())
        .collect();
    // The idle ones hold slots but a scrape still has one.
    assert_eq!(status(&r.scrape()), "HTTP/1.1 200 OK");
    let t = Instant::now();
    for s in &mut idle {
        let resp = read_all(s);
        assert_eq!(status(&resp), "HTTP/1.1 408 Request Timeout");
    }
    let waited = t.elapsed();
    assert!(
        waited < TEST_LIMITS.read_deadline + Duration::from_secs(1),
        "{waited:?}"
    );
    assert_eq!(
        r.ep.requests.get(RequestResult::Timeout),
        (TEST_LIMITS.max_connections - 1) as u64
    );
}

#[test]
fn slowloris_trickle_is_cut_at_the_deadline_not_kept_alive_by_each_byte() {
    let r = running();
    let mut s = r.connect();
    let t = Instant::now();
    let req =
        b"GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut = false;
    for b in req {
        if s.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if t.elapsed() > TEST_LIMITS.read_deadline + Duration::from_millis(500) {
            break;
        }
    }
    let resp = read_all(&mut s);
    assert!(
        cut || status(&resp) == "HTTP/1.1 408 Request Timeout",
        "trickling client was served or kept: {resp:?}"
    );
    assert_eq!(r.ep.requests.get(RequestResult::Timeout), 1);
    assert_eq!(r.ep.requests.get(RequestResult::Ok), 0);
}

#[test]
fn connections_past_the_limit_get_503_and_the_endpoint_recovers() {
    let r = running();
    let held: Vec<TcpStream> = (0..TEST_LIMITS.max_connections)
        .map(|_| r.connect())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let resp = r.scrape();
    assert_eq!(status(&resp), "HTTP/1.1 503 Service Unavailable", "{resp}");
    assert_eq!(r.ep.requests.get(RequestResult::Busy), 1);
    drop(held);
    // Slots free up when the held connections close (peer EOF).
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        let resp = r.scrape();
        if status(&resp) == "HTTP/1.1 200 OK" {
            break;
        }
        assert!(Instant::now() < end, "never recovered: {resp}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn request_line_parsing() {
    assert_eq!(parse_request_line(b"GET /metrics HTTP/1.1"), Ok(false));
    assert_eq!(parse_request_line(b"HEAD /metrics?a=b HTTP/1.0"), Ok(true));
    assert_eq!(
        parse_request_line(b"DELETE /metrics HTTP/1.1"),
        Err(Refusal::MethodNotAllowed)
    );
    assert_eq!(
        parse_request_line(b"GET /metricsx HTTP/1.1"),
        Err(Refusal::NotFound)
    );
    assert_eq!(
        parse_request_line(b"GET /metrics HTTP/1.1 extra"),
        Err(Refusal::BadRequest)
    );
    assert_eq!(
        parse_request_line(b"G\x7fT /metrics HTTP/1.1"),
        Err(Refusal::BadRequest)
    );
    assert_eq!(parse_request_line(b""), Err(Refusal::BadRequest));
    assert_eq!(
        parse_head(b"HEAD /metrics HTTP/1.1\r\nAccept: text/plain\r\nHost: a"),
        Ok(true)
    );
    assert_eq!(
        parse_head(b"GET /metrics HTTP/1.1\r\nbad header"),
        Err(Refusal::BadRequest)
    );
}
