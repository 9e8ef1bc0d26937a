//! Fuzz targets of the client's parsers: responses read from an in-memory
//! peer in random pieces, and endpoint URLs. Run by `scripts/fuzz.sh`
//! (`TAPIO_FUZZ_SECS`, `TAPIO_FUZZ_INPUTS`, `TAPIO_FUZZ_SEED`).
//!
//! Oracles: a generated (unmutated) response parses to exactly the status
//! and body it was built from; any input gives the same result whether it
//! arrives in one piece or byte by byte; bodies and heads stay within their
//! limits; a parsed endpoint's `Host` header and path parse back to itself.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use tapio_fuzz::{Fuzzer, Rng, Verdict};

use super::conn::{Conn, Stream};
use super::{read_response, Clock, Endpoint, HttpError, Response, MAX_HEADER_BYTES};

/// A peer that answers `data` in pieces of at most `piece` bytes.
struct Script<'a> {
    data: &'a [u8],
    piece: usize,
}

impl Read for Script<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.len().min(buf.len()).min(self.piece);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl Write for Script<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Stream for Script<'_> {
    fn set_read_limit(&mut self, _: Duration) {}
    fn set_write_limit(&mut self, _: Duration) {}
}

fn parse(data: &[u8], piece: usize, method: &str, max_body: usize) -> Result<Response, HttpError> {
    let clock = Clock::until(Instant::now() + Duration::from_secs(3600));
    let mut s = Script { data, piece };
    let mut conn = Conn::new(&mut s, &clock, Duration::from_secs(3600));
    read_response(&mut conn, method, max_body)
}

const EXTRA_HEADERS: &[&[u8]] = &[
    b"Content-Type: application/json\r\n",
    b"ETag: \"sha256:1\"\r\n",
    b"Server: x\r\n",
    b"X-Empty:\r\n",
    b"Date:   Mon, 30 Nov 2026 12:00:00 GMT  \r\n",
];

/// A well-formed response and the body it carries.
fn generate(rng: &mut Rng) -> (Vec<u8>, u16, Vec<u8>) {
    let status = *rng.pick(&[200u16, 201, 202, 400, 404, 409, 413, 500, 503]);
    let body: Vec<u8> = match rng.below(3) {
        0 => Vec::new(),
        1 => br#"{"config_generation":3,"config_hash":"sha256:ab","converged":true}"#.to_vec(),
        _ => (0..rng.below(300)).map(|_| rng.next_u64() as u8).collect(),
    };
    let mut out = Vec::new();
    for _ in 0..rng.below(3) {
        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    out.extend_from_slice(
        format!(
            "{} {status} Whatever\r\n",
            rng.pick(&["HTTP/1.1", "HTTP/1.0"])
        )
        .as_bytes(),
    );
    for _ in 0..rng.below(4) {
        out.extend_from_slice(EXTRA_HEADERS[rng.below(EXTRA_HEADERS.len())]);
    }
    let eol: &[u8] = if rng.one_in(8) { b"\n" } else { b"\r\n" };
    match rng.below(3) {
        0 => {
            out.extend_from_slice(format!("Content-Length: {}", body.len()).as_bytes());
            out.extend_from_slice(eol);
            out.extend_from_slice(eol);
            out.extend_from_slice(&body);
        }
        1 => {
            out.extend_from_slice(b"Transfer-Encoding: chunked");
            out.extend_from_slice(eol);
            out.extend_from_slice(eol);
            let mut rest = &body[..];
            while !rest.is_empty() {
                let n = (1 + rng.below(64)).min(rest.len());
                let ext = if rng.one_in(4) { ";a=b" } else { "" };
                let size = if rng.one_in(2) {
                    format!("{n:x}")
                } else {
                    format!("{n:X}")
                };
                out.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                out.extend_from_slice(&rest[..n]);
                out.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            out.extend_from_slice(b"0\r\n");
            if rng.one_in(3) {
                out.extend_from_slice(b"X-Trailer: 1\r\n");
            }
            out.extend_from_slice(b"\r\n");
        }
        _ => {
            out.extend_from_slice(b"Connection: close");
            out.extend_from_slice(eol);
            out.extend_from_slice(eol);
            out.extend_from_slice(&body);
        }
    }
    (out, status, body)
}

fn label(r: &Result<Response, HttpError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(HttpError::Malformed { .. }) => "malformed",
        Err(HttpError::TooLarge { what: "body", .. }) => "too_large_body",
        Err(HttpError::TooLarge { .. }) => "too_large_head",
        Err(_) => "other_error",
    }
}

fn same(a: &Result<Response, HttpError>, b: &Result<Response, HttpError>) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => x == y,
        (Err(x), Err(y)) => x.to_string() == y.to_string(),
        _ => false,
    }
}

#[test]
fn fuzz_http_response() {
    let mut rng = Rng::new(0x7a91);
    let mut seeds = Vec::new();
    for _ in 0..64 {
        let (bytes, status, body) = generate(&mut rng);
        let r = parse(&bytes, 1 + rng.below(16), "GET", 1 << 20).unwrap();
        assert_eq!(
            (r.status, &r.body),
            (status, &body),
            "{:?}",
            String::from_utf8_lossy(&bytes)
        );
        seeds.push(bytes);
    }
    let mut f = Fuzzer::new("http_response", seeds, 1);
    f.max_len = 16 * 1024;
    f.tokens = vec![
        b"\r\n",
        b"\n",
        b"\r",
        b":",
        b" ",
        b";",
        b"0\r\n\r\n",
        b"+a",
        b"-1",
        b"0x",
        b"ffffffffffffffffff",
        b"HTTP/1.1 ",
        b"HTTP/1.0 100 Continue\r\n\r\n",
        b"HTTP/2 ",
        b"Content-Length: ",
        b"Transfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Transfer-Encoding: chunked, gzip\r\n",
        b"content-length: 3, 4\r\n",
        b"Content-Length: +5\r\n",
        b"\t",
        b"\0",
        b"\xff",
    ];
    let mut prng = Rng::new(f.budget.seed ^ 0x5555);
    f.run(|input| {
        let max = if prng.one_in(4) { 64 } else { 1 << 20 };
        let method = if prng.one_in(16) { "HEAD" } else { "GET" };
        let whole = parse(input, usize::MAX, method, max);
        if let Ok(r) = &whole {
            assert!(r.body.len() <= max);
            let head: usize = r.headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
            assert!(head <= MAX_HEADER_BYTES);
            assert!((100..600).contains(&r.status));
        }
        if prng.one_in(4) {
            let piece = 1 + prng.below(7);
            let split = parse(input, piece, method, max);
            assert!(
                same(&whole, &split),
                "{whole:?} vs {split:?} in pieces of {piece}"
            );
        }
        let l = label(&whole);
        Verdict {
            label: l,
            keep: l == "ok",
        }
    });
}

#[test]
fn fuzz_endpoint_parse() {
    let seeds: Vec<Vec<u8>> = [
        "http://ctl.example:8080/base/",
        "http://[::1]:9/x?y=1",
        "http://[fe80::1]:8080",
        "HTTP://10.0.0.1",
        "http://a?q=1",
        "http://tapio-controller.tapio-system.svc:8080",
        "http://127.0.0.1:4318",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut f = Fuzzer::new("endpoint_url", seeds, 1);
    f.max_len = 512;
    f.tokens = vec![
        b"[",
        b"]",
        b":",
        b"::",
        b"%25",
        b"@",
        b"/",
        b"?",
        b"#",
        b"http://",
        b"https://",
        b"+",
        b"65536",
        b" ",
        b"\r\n",
        b"::ffff:1.2.3.4",
        b".",
    ];
    f.run(|input| {
        let Ok(url) = std::str::from_utf8(input) else {
            return Verdict::drop("not_utf8");
        };
        match Endpoint::parse(url) {
            Ok(e) => {
                assert!(!e.host().is_empty() && e.port() != 0);
                assert!(
                    !e.host().contains(['[', ']', '@', '/', ' ', '\r', '\n']),
                    "{e:?}"
                );
                if e.host().contains(':') {
                    assert!(e.host().parse::<std::net::Ipv6Addr>().is_ok(), "{e:?}");
                }
                assert!(!e.path().contains(['\r', '\n', ' ']));
                let again = format!("http://{}{}", e.host_header(), e.path());
                let back = Endpoint::parse(&again).unwrap();
                assert_eq!(
                    (back.host(), back.port(), back.path()),
                    (e.host(), e.port(), e.path())
                );
                Verdict::keep("ok")
            }
            Err(HttpError::InvalidUrl { .. }) => Verdict::drop("invalid"),
            Err(e) => panic!("unexpected error {e}"),
        }
    });
}

/// `+a` was accepted as chunk size 10.
#[test]
fn a_signed_chunk_size_is_refused() {
    let r = parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+a\r\n0123456789\r\n0\r\n\r\n",
        usize::MAX,
        "GET",
        1 << 20,
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        "malformed response: chunk size is not hexadecimal"
    );
}

#[test]
fn interim_responses_and_trailers_are_bounded() {
    let mut many = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(17);
    many.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        parse(&many, usize::MAX, "GET", 64).unwrap_err().to_string(),
        "malformed response: more than 16 interim responses"
    );
    let sixteen = &many[many.len() - 16 * 25 - 38..];
    assert_eq!(parse(sixteen, 3, "GET", 64).unwrap().status, 200);
    let mut trailers =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n".to_vec();
    trailers.extend_from_slice(&b"X-T: aaaaaaaaaa\r\n".repeat(1000));
    trailers.extend_from_slice(b"\r\n");
    assert_eq!(
        parse(&trailers, 100, "GET", 64).unwrap_err().to_string(),
        "response trailers exceeds the 16384-byte limit"
    );
}

#[test]
fn transfer_codings_other_than_chunked_are_refused() {
    for te in ["gzip", "chunked, gzip", "gzip, chunked", "notchunked", ""] {
        let r = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\nabc");
        assert_eq!(
            parse(r.as_bytes(), usize::MAX, "GET", 64)
                .unwrap_err()
                .to_string(),
            "malformed response: transfer coding other than chunked",
            "{te}"
        );
    }
    let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    assert_eq!(parse(r, 2, "GET", 64).unwrap().body, b"abc");
}
