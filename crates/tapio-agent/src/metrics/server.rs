//! Metrics responder: `GET /metrics` over HTTP/1.1 on a tokio
//! `TcpListener`, hand-written because the agent carries no HTTP server
//! framework (A10).
//!
//! ## Design constraints
//! - At most [`Limits::max_connections`] connections are served at once.
//!   One more is answered `503` with a single non-blocking write and closed
//!   without being read, so a connection flood costs no task and no memory.
//! - The whole request head must arrive within [`Limits::read_deadline`] of
//!   the accept, whatever its pace: an idle connection and a slowloris
//!   trickle are both cut at that deadline (`408`), not kept alive by each
//!   byte.
//! - The head is capped at [`Limits::max_head`] bytes (`431`). A first
//!   line that is not `METHOD SP /target SP HTTP/1.x` is `400` as soon as
//!   it is complete; a method other than GET or HEAD is `405`; a path other
//!   than `/metrics` is `404`. A request body is never read.
//! - One request per connection (`Connection: close`); the response write
//!   is bounded by [`Limits::write_deadline`].
//! - Every request is counted by result
//!   (`tapio_metrics_requests_total{result}`) and logged at debug level
//!   only: a garbage flood must not flood the log.
//! - Accept errors (e.g. `EMFILE`) are logged and retried after a pause;
//!   they never end the listener.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::io::AsyncWrite;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::{timeout_at, Instant};

use super::collector::{RequestResult, RequestStats};

/// Bounds of the responder.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time from accept until the request head must be complete.
    pub read_deadline: Duration,
    /// Time for writing the response.
    pub write_deadline: Duration,
    /// Largest request head, in bytes.
    pub max_head: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 8,
            read_deadline: Duration::from_secs(3),
            write_deadline: Duration::from_secs(5),
            max_head: 8 * 1024,
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    BadRequest,
    TooLarge,
    NotFound,
    MethodNotAllowed,
    Timeout,
}

impl Refusal {
    fn status(self) -> &'static str {
        match self {
            Refusal::BadRequest => "400 Bad Request",
            Refusal::TooLarge => "431 Request Header Fields Too Large",
            Refusal::NotFound => "404 Not Found",
            Refusal::MethodNotAllowed => "405 Method Not Allowed",
            Refusal::Timeout => "408 Request Timeout",
        }
    }

    fn result(self) -> RequestResult {
        match self {
            Refusal::BadRequest => RequestResult::BadRequest,
            Refusal::TooLarge => RequestResult::TooLarge,
            Refusal::NotFound => RequestResult::NotFound,
            Refusal::MethodNotAllowed => RequestResult::MethodNotAllowed,
            Refusal::Timeout => RequestResult::Timeout,
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Judges a complete first line (without its line end).
pub(crate) fn parse_request_line(line: &[u8]) -> Result<bool, Refusal> {
    let line = std::str::from_utf8(line).map_err(|_| Refusal::BadRequest)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::BadRequest);
    };
    if !is_token(method)
        || !target.starts_with('/')
        || target.bytes().any(|b| b.is_ascii_control())
        || !matches!(version, "HTTP/1.0" | "HTTP/1.1")
    {
        return Err(Refusal::BadRequest);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(Refusal::MethodNotAllowed),
    };
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path != "/metrics" {
        return Err(Refusal::NotFound);
    }
    Ok(head_only)
}

/// Judges a complete request head (up to, without, the empty line);
/// `Ok(true)` for a HEAD request. Header values are not used: the answer
/// is always the Prometheus text format 0.0.4, which every Prometheus
/// scraper accepts (serving OpenMetrics as well cost binary size, H1).
pub(crate) fn parse_head(head: &[u8]) -> Result<bool, Refusal> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let head_only = parse_request_line(lines.next().unwrap_or_default())?;
    for l in lines {
        let name = std::str::from_utf8(l)
            .ok()
            .and_then(|l| l.split_once(':'))
            .map(|(n, _)| n);
        if !name.is_some_and(is_token) {
            return Err(Refusal::BadRequest);
        }
    }
    Ok(head_only)
}

/// Where the head ends: the index of its terminating empty line, looking
/// from `from` on.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find(|&i| buf[i..].starts_with(b"\r\n\r\n") || buf[i..].starts_with(b"\n\n"))
}

/// One read, without tokio's `io-util` feature.
async fn read(s: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        s.readable().await?;
        match s.try_read(buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            r => return r,
        }
    }
}

/// Writes all of `bytes`.
async fn write(s: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        s.writable().await?;
        match s.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads the head until its end, the size cap, a bad first line or the
/// deadline. `Ok(None)`: the peer closed or the read failed.
async fn read_head(
    s: &mut TcpStream,
    limits: &Limits,
    deadline: Instant,
) -> Result<Option<Vec<u8>>, Refusal> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let mut line_checked = false;
    loop {
        let n = match timeout_at(deadline, read(s, &mut chunk)).await {
            Err(_) => return Err(Refusal::Timeout),
            Ok(Err(_) | Ok(0)) => return Ok(None),
            Ok(Ok(n)) => n,
        };
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if !line_checked {
            if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line = &buf[..nl];
                parse_request_line(line.strip_suffix(b"\r").unwrap_or(line))?;
                line_checked = true;
            }
        }
        if let Some(end) = head_end(&buf, from) {
            if end > limits.max_head {
                return Err(Refusal::TooLarge);
            }
            buf.truncate(end);
            return Ok(Some(buf));
        }
        if buf.len() > limits.max_head {
            return Err(Refusal::TooLarge);
        }
    }
}

fn response_head(status: &str, content_type: &str, len: usize, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n"
    )
}

/// Shared by the connection tasks.
struct Ctx {
    registry: Registry,
    stats: Arc<RequestStats>,
    limits: Limits,
}

impl Ctx {
    fn render(&self) -> Result<String, std::fmt::Error> {
        let mut body = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut body, &self.registry)?;
        Ok(body)
    }
}

/// Most request bytes discarded after the response, and for how long.
const LINGER_BYTES: usize = 64 * 1024;
const LINGER: Duration = Duration::from_millis(500);

/// Writes the response, half-closes, then discards what the client still
/// sends for a short, bounded while: closing with unread input would send
/// a reset that can destroy the response before the client reads it (a
/// refused oversized request, a POST body).
async fn write_all(s: &mut TcpStream, bytes: &[u8], deadline: Instant) {
    let sent = timeout_at(deadline, async {
        write(s, bytes).await?;
        std::future::poll_fn(|cx| Pin::new(&mut *s).poll_shutdown(cx)).await
    })
    .await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    let until = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut left = LINGER_BYTES;
    while left > 0 {
        match timeout_at(until, read(s, &mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => return,
        }
    }
}

async fn serve_conn(mut s: TcpStream, peer: SocketAddr, ctx: Arc<Ctx>) {
    let accepted = Instant::now();
    let head = read_head(&mut s, &ctx.limits, accepted + ctx.limits.read_deadline).await;
    let write_deadline = Instant::now() + ctx.limits.write_deadline;
    let wanted = match head {
        Ok(None) => return,
        Ok(Some(h)) => parse_head(&h),
        Err(r) => Err(r),
    };
    let refusal = match wanted {
        Ok(head_only) => match ctx.render() {
            Ok(body) => {
                let ct = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
                let mut out = response_head("200 OK", ct, body.len(), "").into_bytes();
                if !head_only {
                    out.extend_from_slice(body.as_bytes());
                }
                // Counted before the write: a client that has read the
                // response sees itself counted.
                ctx.stats.count(RequestResult::Ok);
                write_all(&mut s, &out, write_deadline).await;
                return;
            }
            Err(_) => {
                tracing::warn!("metrics encoding failed");
                let out = response_head("500 Internal Server Error", "text/plain", 0, "");
                write_all(&mut s, out.as_bytes(), write_deadline).await;
                return;
            }
        },
        Err(r) => r,
    };
    ctx.stats.count(refusal.result());
    tracing::debug!(peer = %peer, status = refusal.status(), "metrics request refused");
    let extra = if refusal == Refusal::MethodNotAllowed {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let body = refusal.status();
    let mut out = response_head(body, "text/plain; charset=utf-8", body.len() + 1, extra);
    out.push_str(body);
    out.push('\n');
    write_all(&mut s, out.as_bytes(), write_deadline).await;
}

/// Runs the accept loop until `shutdown` turns true.
pub(crate) async fn run(
    listener: TcpListener,
    registry: Registry,
    stats: Arc<RequestStats>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let ctx = Arc::new(Ctx {
        registry,
        stats,
        limits,
    });
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (s, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed; retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            ctx.stats.count(RequestResult::Busy);
            let body = "503 Service Unavailable\n";
            let out = response_head(
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                body.len(),
                "Retry-After: 1\r\n",
            ) + body;
            let _ = s.try_write(out.as_bytes());
            drop(s);
            continue;
        };
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            serve_conn(s, peer, ctx).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests;
