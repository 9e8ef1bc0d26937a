//! The client against scripted TCP peers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::*;

fn ep(url: &str) -> Endpoint {
    Endpoint::parse(url).unwrap()
}

/// A scripted peer: reads the request head (and body by
/// Content-Length), answers `reply`, returns what it read.
fn peer(reply: Vec<u8>, delay: Duration) -> (Endpoint, std::thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        loop {
            let n = s.read(&mut b).unwrap();
            got.extend_from_slice(&b[..n]);
            if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..i]).to_ascii_lowercase();
                let cl = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |v| v.parse::<usize>().unwrap());
                if got.len() >= i + 4 + cl {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        std::thread::sleep(delay);
        let _ = s.write_all(&reply);
        got
    });
    (ep(&format!("http://127.0.0.1:{port}/p")), h)
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[test]
fn content_length_body_and_request_shape() {
    let (e, h) = peer(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
            .to_vec(),
        Duration::ZERO,
    );
    let r = Client::default()
        .send(
            &e,
            &Request {
                method: "POST",
                path: "/v1/x",
                headers: &[
                    ("Content-Type", "application/json"),
                    ("X-Bad", "a\r\nInjected: 1"),
                ],
                body: Some(b"[1,2]"),
            },
            soon(),
        )
        .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"{\"a\":1}"[..]));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let got = String::from_utf8(h.join().unwrap()).unwrap();
    assert!(got.starts_with("POST /v1/x HTTP/1.1\r\n"), "{got}");
    assert!(
        got.contains(&format!("Host: 127.0.0.1:{}\r\n", e.port())),
        "{got}"
    );
    assert!(got.contains("Content-Length: 5\r\n") && got.ends_with("\r\n\r\n[1,2]"));
    assert!(!got.contains("Injected"), "{got}");
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let (e, _h) = peer(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n3\r\nefg\r\n0\r\nX-T: 1\r\n\r\n".to_vec(),
        Duration::ZERO,
    );
    let req = Request {
        method: "GET",
        path: "/",
        headers: &[],
        body: None,
    };
    let r = Client::default().send(&e, &req, soon()).unwrap();
    assert_eq!(r.body, b"abcdefg");
}

#[test]
fn close_delimited_body_interim_100_and_304() {
    let (e, _h) = peer(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 500 Oops\r\n\r\nall of it".to_vec(),
        Duration::ZERO,
    );
    let req = Request {
        method: "GET",
        path: "/",
        headers: &[],
        body: None,
    };
    let r = Client::default().send(&e, &req, soon()).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (500, &b"all of it"[..]));
    let (e, _h) = peer(
        b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n".to_vec(),
        Duration::ZERO,
    );
    let r = Client::default().send(&e, &req, soon()).unwrap();
    assert_eq!((r.status, r.header("etag")), (304, Some("\"x\"")));
}

#[test]
fn a_silent_peer_fails_at_the_deadline() {
    let (e, _h) = peer(Vec::new(), Duration::from_secs(3));
    let req = Request {
        method: "GET",
        path: "/",
        headers: &[],
        body: None,
    };
    let t = Instant::now();
    let err = Client::default()
        .send(&e, &req, Instant::now() + Duration::from_millis(300))
        .unwrap_err();
    assert!(
        matches!(err, HttpError::Timeout { phase: "read", .. }),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn limits_and_garbage_are_errors() {
    let req = Request {
        method: "GET",
        path: "/",
        headers: &[],
        body: None,
    };
    let c = Client {
        max_body: 4,
        ..Client::default()
    };
    let (e, _h) = peer(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
        Duration::ZERO,
    );
    assert!(matches!(
        c.send(&e, &req, soon()),
        Err(HttpError::TooLarge { what: "body", .. })
    ));
    let (e, _h) = peer(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec(), Duration::ZERO);
    assert!(matches!(
        c.send(&e, &req, soon()),
        Err(HttpError::Malformed { .. })
    ));
    let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..2000 {
        big.extend_from_slice(format!("X-{i}: aaaaaaaaaa\r\n").as_bytes());
    }
    let (e, _h) = peer(big, Duration::ZERO);
    assert!(matches!(
        c.send(&e, &req, soon()),
        Err(HttpError::TooLarge {
            what: "headers",
            ..
        })
    ));
    let (e, _h) = peer(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
        Duration::ZERO,
    );
    let r = Client::default().send(&e, &req, soon());
    assert!(matches!(r, Err(HttpError::Malformed { .. })), "{r:?}");
}

#[test]
fn refused_connect_names_the_address() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = ep(&format!("http://127.0.0.1:{port}"));
    let req = Request {
        method: "GET",
        path: "/",
        headers: &[],
        body: None,
    };
    let err = Client::default().send(&e, &req, soon()).unwrap_err();
    assert!(matches!(err, HttpError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
}

#[test]
fn host_names_are_resolved() {
    let (e, _h) = peer(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(), Duration::ZERO);
    let named = ep(&format!("http://localhost:{}/", e.port()));
    let req = Request {
        method: "GET",
        path: "/",
        headers: &[],
        body: None,
    };
    // localhost may resolve to ::1 first: the client tries every address.
    let r = Client::default().send(&named, &req, soon()).unwrap();
    assert_eq!(r.status, 204);
}
