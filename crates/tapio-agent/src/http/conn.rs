//! Response reading: status line, headers and a body framed by
//! `Content-Length`, `Transfer-Encoding: chunked` or the close of the
//! connection, over any [`Stream`].
//!
//! ## Design constraints
//! - The read buffer drops consumed bytes before it grows, so it holds at
//!   most one unread head or chunk line plus one read (8 KiB) beyond the
//!   body limit.
//! - Head and trailer blocks are limited to [`MAX_HEADER_BYTES`] each, a
//!   chunk-size line to [`MAX_CHUNK_LINE`], bodies to the caller's `max`.
//! - Numbers are parsed as the RFC writes them: the status code is 3DIGIT,
//!   `Content-Length` 1*DIGIT (the same value if repeated), a chunk size
//!   1*HEXDIG (`+a`, ` 4`, `0x4` are refused).
//! - Transfer codings other than `chunked` are refused, not passed through.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::{Clock, HttpError, MAX_HEADER_BYTES};

/// Longest chunk-size line (size and extensions).
pub const MAX_CHUNK_LINE: usize = 1024;

/// A connection the client can read and write with per-call timeouts.
pub trait Stream: Read + Write {
    /// Bounds the next read.
    fn set_read_limit(&mut self, t: Duration);
    /// Bounds the next write.
    fn set_write_limit(&mut self, t: Duration);
}

impl Stream for TcpStream {
    fn set_read_limit(&mut self, t: Duration) {
        let _ = self.set_read_timeout(Some(t));
    }

    fn set_write_limit(&mut self, t: Duration) {
        let _ = self.set_write_timeout(Some(t));
    }
}

/// One connection's reader and writer.
pub struct Conn<'a, S: Stream> {
    pub(super) stream: &'a mut S,
    pub(super) clock: &'a Clock,
    pub(super) io_timeout: Duration,
    buf: Vec<u8>,
    pos: usize,
}

pub(super) fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn malformed(reason: &'static str) -> HttpError {
    HttpError::Malformed { reason }
}

/// A status code: exactly three digits in 100..600.
fn parse_status(s: &str) -> Option<u16> {
    if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|s| (100..600).contains(s))
}

/// `chunk-size [ chunk-ext ]`: 1*HEXDIG, then nothing or `;`-extensions
/// (after optional whitespace).
pub(super) fn parse_chunk_size(line: &str) -> Result<usize, HttpError> {
    let digits = line.bytes().take_while(u8::is_ascii_hexdigit).count();
    if digits == 0 {
        return Err(malformed("chunk size is not hexadecimal"));
    }
    let rest = line[digits..].trim_start_matches([' ', '\t']);
    if !rest.is_empty() && !rest.starts_with(';') {
        return Err(malformed("chunk size is not hexadecimal"));
    }
    let hex = line[..digits].trim_start_matches('0');
    if hex.len() > 2 * std::mem::size_of::<usize>() {
        return Err(malformed("chunk size overflows"));
    }
    usize::from_str_radix(if hex.is_empty() { "0" } else { hex }, 16)
        .map_err(|_| malformed("chunk size overflows"))
}

/// `Content-Length`: 1*DIGIT; repeated headers must agree.
fn parse_content_length(values: &[&str]) -> Result<Option<u64>, HttpError> {
    let mut found = None;
    for v in values {
        for part in v.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed("content-length is not a number"));
            }
            let n = part
                .parse::<u64>()
                .map_err(|_| malformed("content-length overflows"))?;
            if found.is_some_and(|f| f != n) {
                return Err(malformed("content-length values disagree"));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

impl<'a, S: Stream> Conn<'a, S> {
    /// A connection over `stream`, bounded by `clock` and `io_timeout`.
    pub fn new(stream: &'a mut S, clock: &'a Clock, io_timeout: Duration) -> Self {
        Conn {
            stream,
            clock,
            io_timeout,
            buf: Vec::with_capacity(4096),
            pos: 0,
        }
    }

    /// Writes all of `data`.
    pub fn write_all(&mut self, mut data: &[u8]) -> Result<(), HttpError> {
        while !data.is_empty() {
            let t = self.clock.left("write", self.io_timeout)?;
            self.stream.set_write_limit(t);
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

    fn unread(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads more bytes into the buffer; Ok(false) at end of stream.
    fn fill(&mut self) -> Result<bool, HttpError> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = [0u8; 8192];
        loop {
            let t = self.clock.left("read", self.io_timeout)?;
            self.stream.set_read_limit(t);
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

    /// One CRLF- (or LF-) terminated line, without the terminator.
    fn read_line(&mut self, limit: usize, what: &'static str) -> Result<String, HttpError> {
        loop {
            if let Some(i) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                if i > limit {
                    return Err(HttpError::TooLarge { what, limit });
                }
                let raw = &self.buf[self.pos..self.pos + i];
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                let line = String::from_utf8_lossy(raw).into_owned();
                self.pos += i + 1;
                return Ok(line);
            }
            if self.unread() > limit {
                return Err(HttpError::TooLarge { what, limit });
            }
            if !self.fill()? {
                return Err(malformed("connection closed inside the response head"));
            }
        }
    }

    /// Header lines up to the empty line, at most [`MAX_HEADER_BYTES`] in
    /// all (`used` bytes already spent).
    fn read_fields(
        &mut self,
        mut used: usize,
        what: &'static str,
    ) -> Result<Vec<(String, String)>, HttpError> {
        let mut fields = Vec::new();
        loop {
            let line = self.read_line(MAX_HEADER_BYTES, what)?;
            used += line.len() + 2;
            if used > MAX_HEADER_BYTES {
                return Err(HttpError::TooLarge {
                    what,
                    limit: MAX_HEADER_BYTES,
                });
            }
            if line.is_empty() {
                return Ok(fields);
            }
            let (n, v) = line
                .split_once(':')
                .ok_or(malformed("header line without `:`"))?;
            if n.is_empty() || n.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(malformed("header name is empty or holds whitespace"));
            }
            fields.push((n.to_ascii_lowercase(), v.trim().to_owned()));
        }
    }

    /// Status code and headers (names lowercased).
    pub fn read_head(&mut self) -> Result<(u16, Vec<(String, String)>), HttpError> {
        let status_line = self.read_line(MAX_HEADER_BYTES, "headers")?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
            return Err(malformed("status line is not HTTP/1.x"));
        }
        let status = parts
            .next()
            .and_then(parse_status)
            .ok_or(malformed("status code is not a number in 100..600"))?;
        let headers = self.read_fields(status_line.len() + 2, "headers")?;
        Ok((status, headers))
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, HttpError> {
        while self.unread() < n {
            if !self.fill()? {
                return Err(malformed("connection closed inside the body"));
            }
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(out)
    }

    /// The body, at most `max` bytes, framed as `headers` say.
    pub fn read_body(
        &mut self,
        headers: &[(String, String)],
        max: usize,
    ) -> Result<Vec<u8>, HttpError> {
        let values = |name: &str| -> Vec<&str> {
            headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let too_large = || HttpError::TooLarge {
            what: "body",
            limit: max,
        };
        let te = values("transfer-encoding");
        if !te.is_empty() {
            let mut codings = te.iter().flat_map(|v| v.split(',')).map(str::trim);
            if !codings.all(|c| c.eq_ignore_ascii_case("chunked")) {
                return Err(malformed("transfer coding other than chunked"));
            }
            return self.read_chunked(max);
        }
        if let Some(n) = parse_content_length(&values("content-length"))? {
            if n > max as u64 {
                return Err(too_large());
            }
            return self.take(usize::try_from(n).map_err(|_| too_large())?);
        }
        // Close-delimited.
        loop {
            if self.unread() > max {
                return Err(too_large());
            }
            if !self.fill()? {
                let out = self.buf[self.pos..].to_vec();
                self.pos = self.buf.len();
                return Ok(out);
            }
        }
    }

    fn read_chunked(&mut self, max: usize) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        loop {
            let n = parse_chunk_size(&self.read_line(MAX_CHUNK_LINE, "chunk size")?)?;
            if n == 0 {
                self.read_fields(0, "trailers")?;
                return Ok(body);
            }
            if body.len().saturating_add(n) > max {
                return Err(HttpError::TooLarge {
                    what: "body",
                    limit: max,
                });
            }
            body.extend_from_slice(&self.take(n)?);
            if !self.read_line(2, "chunk terminator")?.is_empty() {
                return Err(malformed("chunk not followed by CRLF"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `+a` was read as chunk size 10 (`from_str_radix` takes a sign).
    #[test]
    fn chunk_sizes_are_hex_digits_only() {
        for ok in [
            ("a", 10),
            ("A;x=y", 10),
            ("0", 0),
            ("000", 0),
            ("1f ;ext", 31),
            ("10\t;e", 16),
        ] {
            assert_eq!(parse_chunk_size(ok.0).unwrap(), ok.1, "{}", ok.0);
        }
        for bad in ["+a", "-1", " 4", "0x4", "", ";x", "4 4", "g", "4g"] {
            assert!(
                matches!(
                    parse_chunk_size(bad),
                    Err(HttpError::Malformed {
                        reason: "chunk size is not hexadecimal"
                    })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_chunk_size("1ffffffffffffffff"),
            Err(HttpError::Malformed {
                reason: "chunk size overflows"
            })
        ));
        assert_eq!(parse_chunk_size("0000000000000000000000a").unwrap(), 10);
    }

    /// `Content-Length: +5` was read as 5 (`usize::from_str` takes a sign).
    #[test]
    fn content_length_is_digits_and_repeats_agree() {
        assert_eq!(parse_content_length(&["5"]).unwrap(), Some(5));
        assert_eq!(parse_content_length(&["5", "5, 5"]).unwrap(), Some(5));
        assert_eq!(parse_content_length(&["000"]).unwrap(), Some(0));
        assert_eq!(parse_content_length(&[]).unwrap(), None);
        for (bad, why) in [
            (&["+5"][..], "content-length is not a number"),
            (&["-1"][..], "content-length is not a number"),
            (&[""][..], "content-length is not a number"),
            (&["5", "6"][..], "content-length values disagree"),
            (&["99999999999999999999999"][..], "content-length overflows"),
        ] {
            match parse_content_length(bad) {
                Err(HttpError::Malformed { reason }) => assert_eq!(reason, why, "{bad:?}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn status_codes_are_three_digits() {
        assert_eq!(parse_status("200"), Some(200));
        for bad in ["+20", "2000", "099", "600", "20", " 200", "2e2"] {
            assert_eq!(parse_status(bad), None, "{bad}");
        }
    }
}
