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
//!   on helper threads, bounded per endpoint and in all ([`resolve`]), so a
//!   hung resolver can neither overrun the deadline nor pile up threads.
//! - Response headers are limited to [`MAX_HEADER_BYTES`]; bodies to the
//!   client's `max_body` (default [`DEFAULT_MAX_BODY`]); at most
//!   [`MAX_INTERIM`] interim `1xx` responses. Bodies framed by
//!   `Content-Length`, by `Transfer-Encoding: chunked`, or by the close of
//!   the connection are all read ([`conn`]).

pub mod conn;
pub mod resolve;
mod url;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use conn::{is_timeout, Conn, Stream};
pub use url::Endpoint;

/// Largest response header block accepted.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default largest response body accepted.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;
/// Most interim (`1xx`) responses skipped before the final one.
pub const MAX_INTERIM: usize = 16;

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
    /// Too many host-name lookups are still running (a hung resolver).
    #[error("cannot resolve `{host}`: {limit} lookups are still outstanding")]
    ResolverBusy {
        /// Host name.
        host: String,
        /// The limit on lookups in flight.
        limit: usize,
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

/// A request's start and deadline.
pub struct Clock {
    started: Instant,
    deadline: Instant,
}

impl Clock {
    /// A clock started now, ending at `deadline`.
    #[must_use]
    pub fn until(deadline: Instant) -> Self {
        Clock {
            started: Instant::now(),
            deadline,
        }
    }

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
        let clock = Clock::until(deadline);
        let addrs = resolve(ep, &clock)?;
        let mut stream = self.connect(&addrs, &clock)?;
        let mut conn = Conn::new(&mut stream, &clock, self.io_timeout);
        conn.write_all(request_head(ep, req).as_bytes())?;
        if let Some(b) = req.body {
            conn.write_all(b)?;
        }
        read_response(&mut conn, req.method, self.max_body)
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

/// Reads the final response (after at most [`MAX_INTERIM`] interim ones)
/// of a `method` request.
///
/// # Errors
/// I/O, timeout, malformed or oversized responses.
pub fn read_response<S: Stream>(
    conn: &mut Conn<'_, S>,
    method: &str,
    max_body: usize,
) -> Result<Response, HttpError> {
    for _ in 0..=MAX_INTERIM {
        let (status, headers) = conn.read_head()?;
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let body = if method == "HEAD" || status == 204 || status == 304 || status == 101 {
            Vec::new()
        } else {
            conn.read_body(&headers, max_body)?
        };
        return Ok(Response {
            status,
            headers,
            body,
        });
    }
    Err(HttpError::Malformed {
        reason: "more than 16 interim responses",
    })
}

fn resolve(ep: &Endpoint, clock: &Clock) -> Result<Vec<SocketAddr>, HttpError> {
    if let Ok(ip) = ep.host().parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, ep.port())]);
    }
    match resolve::system().resolve(ep.host(), ep.port(), clock.deadline)? {
        Some(addrs) => Ok(addrs),
        None => Err(clock.timeout("resolve")),
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
