//! Minimal HTTP/1.1 client: one request per connection over a blocking
//! `std::net::TcpStream`, for the controller exchanges and the network sinks.
//!
//! Hand-written on purpose: the agent's release budget is 1.25 MB (hard
//! 1.5 MB, H1) and the smallest maintained clients cost more than the
//! headroom (hyper's `client::conn::http1` ~197 KB, ureq ~253 KB). The
//! agent needs exactly this: a POST or GET with a JSON body and a few
//! headers, a status, headers and a body back.
//!
//! ## Design constraints
//! - `http://` only. `https://` and anything else is rejected when the URL
//!   is parsed, before any connection is made (TLS belongs to a local
//!   proxy, collector or mesh).
//! - One request per connection (`Connection: close`): no pooling, no
//!   pipelining, no redirects, no proxies. Interim `1xx` responses are
//!   skipped.
//! - Every request has a deadline. Name resolution, connect, each write and
//!   each read are bounded by the time left (and by the client's connect
//!   and I/O timeouts); past it the request fails with
//!   [`HttpError::Timeout`]. Host names are resolved by the system resolver
//!   on a short-lived helper thread so that a hung resolver cannot overrun
//!   the deadline (the helper is abandoned, not killed).
//! - Response headers are limited to [`MAX_HEADER_BYTES`]; bodies to the
//!   client's `max_body` (default [`DEFAULT_MAX_BODY`]). Bodies framed by
//!   `Content-Length`, by `Transfer-Encoding: chunked`, or by the close of
//!   the connection are all read.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest response header block accepted.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default largest response body accepted.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not a usable `http://` URL.
    #[error("invalid endpoint `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Name resolution failed.
    #[error("cannot resolve `{host}`")]
    Resolve {
        /// Host name.
        host: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Every address of the host refused or failed the connect.
    #[error("`connect` to {addr} failed")]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A read or write on the connection failed.
    #[error("`{op}` failed")]
    Io {
        /// `read` or `write`.
        op: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The deadline or an I/O timeout passed.
    #[error("{phase} timed out after {elapsed_ms} ms")]
    Timeout {
        /// What was going on: `resolve`, `connect`, `write`, `read`.
        phase: &'static str,
        /// Time spent on the request.
        elapsed_ms: u64,
    },
    /// The peer did not speak HTTP/1.x as expected.
    #[error("malformed response: {reason}")]
    Malformed {
        /// What was wrong.
        reason: &'static str,
    },
    /// The response exceeded a limit.
    #[error("response {what} exceeds the {limit}-byte limit")]
    TooLarge {
        /// `headers` or `body`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
}

/// A parsed `http://host[:port][/path]` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
    path: String,
}

impl Endpoint {
    /// Parses an `http://` URL. IPv6 literals go in brackets.
    ///
    /// # Errors
    /// Any scheme but `http`, user info, an empty host or a bad port.
    pub fn parse(url: &str) -> Result<Endpoint, HttpError> {
        let bad = |reason| HttpError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(bad(
                "https is not supported; terminate TLS in a local proxy",
            ));
        }
        let rest = url
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &url[7..])
            .ok_or_else(|| bad("only http:// URLs are supported"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], &rest[i..]),
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad("user info in the URL is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(|| bad("unclosed `[` in host"))?;
            let port = match &v6[end + 1..] {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after `]`"))?),
            };
            (&v6[..end], port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad("port is not 1-65535"))?,
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// Host name or address, without brackets.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL's path (and query); `/` when it has none.
    #[must_use]
    pub fn path(&self) -> &str {
        if self.path.is_empty() {
            "/"
        } else {
            &self.path
        }
    }

    /// `suffix` appended to the URL's path (`http://c:8080/base` +
    /// `/v1/events` = `/base/v1/events`).
    #[must_use]
    pub fn join(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.path.trim_end_matches('/'))
    }

    fn host_header(&self) -> String {
        let h = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            h
        } else {
            format!("{h}:{}", self.port)
        }
    }
}

/// One request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// Path and query, starting with `/`.
    pub path: &'a str,
    /// Extra headers (`Host`, `Content-Length` and `Connection` are set
    /// by the client).
    pub headers: &'a [(&'a str, &'a str)],
    /// Body; `None` sends no `Content-Length`.
    pub body: Option<&'a [u8]>,
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True for 2xx.
    #[must_use]
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Client settings.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// Longest connect attempt per address.
    pub connect_timeout: Duration,
    /// Longest wait for one read or write.
    pub io_timeout: Duration,
    /// Largest response body.
    pub max_body: usize,
}

impl Default for Client {
    fn default() -> Self {
        Client {
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(5),
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

struct Clock {
    started: Instant,
    deadline: Instant,
}

impl Clock {
    fn left(&self, phase: &'static str, cap: Duration) -> Result<Duration, HttpError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.timeout(phase));
        }
        Ok(left.min(cap))
    }

    fn timeout(&self, phase: &'static str) -> HttpError {
        HttpError::Timeout {
            phase,
            elapsed_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

impl Client {
    /// Sends `req` to `ep` and reads the whole response, giving up at
    /// `deadline`.
    ///
    /// # Errors
    /// Resolution, connect, I/O, timeout, malformed or oversized responses.
    pub fn send(
        &self,
        ep: &Endpoint,
        req: &Request<'_>,
        deadline: Instant,
    ) -> Result<Response, HttpError> {
        let clock = Clock {
            started: Instant::now(),
            deadline,
        };
        let addrs = resolve(ep, &clock)?;
        let mut stream = self.connect(&addrs, &clock)?;
        let head = request_head(ep, req);
        let mut conn = Conn {
            stream: &mut stream,
            clock: &clock,
            io_timeout: self.io_timeout,
            buf: Vec::with_capacity(4096),
            pos: 0,
        };
        conn.write_all(head.as_bytes())?;
        if let Some(b) = req.body {
            conn.write_all(b)?;
        }
        loop {
            let (status, headers) = conn.read_head()?;
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let body = if req.method == "HEAD" || status == 204 || status == 304 {
                Vec::new()
            } else {
                conn.read_body(&headers, self.max_body)?
            };
            return Ok(Response {
                status,
                headers,
                body,
            });
        }
    }

    fn connect(&self, addrs: &[SocketAddr], clock: &Clock) -> Result<TcpStream, HttpError> {
        let mut last = None;
        for a in addrs {
            let t = clock.left("connect", self.connect_timeout)?;
            match TcpStream::connect_timeout(a, t) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = Some((*a, e)),
            }
        }
        match last {
            Some((_, e)) if is_timeout(&e) => Err(clock.timeout("connect")),
            Some((addr, source)) => Err(HttpError::Connect { addr, source }),
            None => Err(HttpError::Malformed {
                reason: "no address to connect to",
            }),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn resolve(ep: &Endpoint, clock: &Clock) -> Result<Vec<SocketAddr>, HttpError> {
    if let Ok(ip) = ep.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, ep.port)]);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let target = (ep.host.clone(), ep.port);
    std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let _ = tx.send(target.to_socket_addrs().map(Iterator::collect::<Vec<_>>));
        })
        .map_err(|source| HttpError::Resolve {
            host: ep.host.clone(),
            source,
        })?;
    let t = clock.left("resolve", Duration::MAX)?;
    match rx.recv_timeout(t) {
        Ok(Ok(v)) if !v.is_empty() => Ok(v),
        Ok(Ok(_)) => Err(HttpError::Resolve {
            host: ep.host.clone(),
            source: std::io::Error::other("no address"),
        }),
        Ok(Err(source)) => Err(HttpError::Resolve {
            host: ep.host.clone(),
            source,
        }),
        Err(_) => Err(clock.timeout("resolve")),
    }
}

fn request_head(ep: &Endpoint, req: &Request<'_>) -> String {
    let mut h = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: tapio-agent/{}\r\n",
        req.method,
        req.path,
        ep.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    for (n, v) in req.headers {
        // Header injection guard: values never carry line breaks.
        if !v.contains(['\r', '\n']) && !n.contains(['\r', '\n', ':']) {
            h.push_str(n);
            h.push_str(": ");
            h.push_str(v);
            h.push_str("\r\n");
        }
    }
    if let Some(b) = req.body {
        h.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    h.push_str("\r\n");
    h
}

struct Conn<'a> {
    stream: &'a mut TcpStream,
    clock: &'a Clock,
    io_timeout: Duration,
    buf: Vec<u8>,
    pos: usize,
}

impl Conn<'_> {
    fn write_all(&mut self, mut data: &[u8]) -> Result<(), HttpError> {
        while !data.is_empty() {
            let t = self.clock.left("write", self.io_timeout)?;
            let _ = self.stream.set_write_timeout(Some(t));
            match self.stream.write(data) {
                Ok(0) => {
                    return Err(HttpError::Io {
                        op: "write",
                        source: std::io::ErrorKind::WriteZero.into(),
                    })
                }
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Err(self.clock.timeout("write")),
                Err(source) => {
                    return Err(HttpError::Io {
                        op: "write",
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Reads more bytes into the buffer; Ok(false) at end of stream.
    fn fill(&mut self) -> Result<bool, HttpError> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut chunk = [0u8; 8192];
        loop {
            let t = self.clock.left("read", self.io_timeout)?;
            let _ = self.stream.set_read_timeout(Some(t));
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Err(self.clock.timeout("read")),
                Err(source) => return Err(HttpError::Io { op: "read", source }),
            }
        }
    }

    fn eof(reason: &'static str) -> HttpError {
        HttpError::Malformed { reason }
    }

    /// One CRLF- (or LF-) terminated line, without the terminator.
    fn read_line(&mut self, limit: usize, what: &'static str) -> Result<String, HttpError> {
        loop {
            if let Some(i) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                let raw = &self.buf[self.pos..self.pos + i];
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                let line = String::from_utf8_lossy(raw).into_owned();
                self.pos += i + 1;
                return Ok(line);
            }
            if self.buf.len() - self.pos > limit {
                return Err(HttpError::TooLarge { what, limit });
            }
            if !self.fill()? {
                return Err(Self::eof("connection closed inside the response head"));
            }
        }
    }

    fn read_head(&mut self) -> Result<(u16, Vec<(String, String)>), HttpError> {
        let status_line = self.read_line(MAX_HEADER_BYTES, "headers")?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(Self::eof("status line is not HTTP/1.x"));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..600).contains(s))
            .ok_or(Self::eof("status code is not a number in 100..600"))?;
        let mut headers = Vec::new();
        let mut total = status_line.len();
        loop {
            let line = self.read_line(MAX_HEADER_BYTES, "headers")?;
            total += line.len() + 2;
            if total > MAX_HEADER_BYTES {
                return Err(HttpError::TooLarge {
                    what: "headers",
                    limit: MAX_HEADER_BYTES,
                });
            }
            if line.is_empty() {
                return Ok((status, headers));
            }
            let (n, v) = line
                .split_once(':')
                .ok_or(Self::eof("header line without `:`"))?;
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, HttpError> {
        while self.buf.len() - self.pos < n {
            if !self.fill()? {
                return Err(Self::eof("connection closed inside the body"));
            }
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(out)
    }

    fn read_body(
        &mut self,
        headers: &[(String, String)],
        max: usize,
    ) -> Result<Vec<u8>, HttpError> {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let too_large = || HttpError::TooLarge {
            what: "body",
            limit: max,
        };
        if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let line = self.read_line(1024, "chunk size")?;
                let hex = line.split(';').next().unwrap_or("").trim();
                let n = usize::from_str_radix(hex, 16)
                    .map_err(|_| Self::eof("chunk size is not hexadecimal"))?;
                if n == 0 {
                    // Trailers, up to the empty line.
                    while !self.read_line(MAX_HEADER_BYTES, "trailers")?.is_empty() {}
                    return Ok(body);
                }
                if body.len().saturating_add(n) > max {
                    return Err(too_large());
                }
                body.extend_from_slice(&self.take(n)?);
                if !self.read_line(2, "chunk terminator")?.is_empty() {
                    return Err(Self::eof("chunk not followed by CRLF"));
                }
            }
        }
        if let Some(cl) = get("content-length") {
            let n: usize = cl
                .parse()
                .map_err(|_| Self::eof("content-length is not a number"))?;
            if n > max {
                return Err(too_large());
            }
            return self.take(n);
        }
        // Close-delimited.
        loop {
            if self.buf.len() - self.pos > max {
                return Err(too_large());
            }
            if !self.fill()? {
                let out = self.buf[self.pos..].to_vec();
                self.pos = self.buf.len();
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn ep(url: &str) -> Endpoint {
        Endpoint::parse(url).unwrap()
    }

    #[test]
    fn parses_http_urls_and_rejects_the_rest() {
        let e = ep("http://ctl.example:8080/base/");
        assert_eq!(
            (e.host(), e.port(), e.path()),
            ("ctl.example", 8080, "/base/")
        );
        assert_eq!(e.join("/v1/events"), "/base/v1/events");
        let e = ep("http://[::1]:9/x?y=1");
        assert_eq!((e.host(), e.port(), e.path()), ("::1", 9, "/x?y=1"));
        assert_eq!(e.host_header(), "[::1]:9");
        let e = ep("HTTP://10.0.0.1");
        assert_eq!(
            (e.port(), e.path(), e.join("/v1").as_str()),
            (80, "/", "/v1")
        );
        for bad in [
            "https://a:1",
            "ftp://a",
            "a:80",
            "http://",
            "http://u@a:1",
            "http://a:0",
            "http://a:99999",
            "http://[::1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        let e = Endpoint::parse("https://a").unwrap_err().to_string();
        assert!(e.contains("https is not supported"), "{e}");
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
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}".to_vec(),
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
}
