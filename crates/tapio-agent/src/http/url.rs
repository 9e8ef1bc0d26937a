//! `http://host[:port][/path]` endpoints: parsing and the `Host` header.
//!
//! ## Design constraints
//! - `http://` only; `https://`, user info, fragments, an empty host, a port
//!   outside 1-65535 (or not plain digits) are refused with the reason.
//! - IPv6 literals must be in brackets and must be IPv6 addresses
//!   (`http://[fe80::1]:8080`); a bare `fe80::1` is refused rather than
//!   read as host `fe80:` and port 1. Zone ids (`%25eth0`) are refused.
//! - Host names are letters, digits, `-`, `.` and `_`; the path may not hold
//!   spaces or control characters, so nothing in a URL can split the
//!   request line or add a header.

use std::net::Ipv6Addr;

use super::HttpError;

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
    /// Any scheme but `http`, user info, a fragment, an empty or malformed
    /// host, an unbracketed IPv6 address, a bad port, or a path with spaces
    /// or control characters.
    pub fn parse(url: &str) -> Result<Endpoint, HttpError> {
        let bad = |reason| HttpError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        if url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        {
            return Err(bad(
                "https is not supported; terminate TLS in a local proxy",
            ));
        }
        let rest = url
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &url[7..])
            .ok_or_else(|| bad("only http:// URLs are supported"))?;
        let (authority, path) = match rest.find(['/', '?', '#']) {
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
            let addr = &v6[..end];
            if addr.contains('%') {
                return Err(bad("IPv6 zone ids are not supported"));
            }
            if addr.parse::<Ipv6Addr>().is_err() {
                return Err(bad("`[...]` does not hold an IPv6 address"));
            }
            (addr, port)
        } else {
            let (h, p) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if p.is_some_and(|p| p.contains(':')) {
                return Err(bad("IPv6 addresses must be in brackets: http://[::1]:80"));
            }
            if !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
            {
                return Err(bad("host may hold only letters, digits, `-`, `.` and `_`"));
            }
            (h, p)
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = match port {
            None => 80,
            Some(p) => parse_port(p).ok_or_else(|| bad("port is not 1-65535"))?,
        };
        if path.starts_with('#') || path.contains('#') {
            return Err(bad("fragments (`#`) are not supported"));
        }
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("path holds a space or a control character"));
        }
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

    /// The `Host` header: IPv6 addresses in brackets, the port unless 80.
    #[must_use]
    pub fn host_header(&self) -> String {
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

/// `1*5DIGIT` in 1..=65535 (`u16::from_str` would also take `+80`).
fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&p| p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str) -> Endpoint {
        Endpoint::parse(url).unwrap()
    }

    fn reason(url: &str) -> &'static str {
        match Endpoint::parse(url) {
            Err(HttpError::InvalidUrl { reason, .. }) => reason,
            other => panic!("{url}: {other:?}"),
        }
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
        let e = ep("http://a?q=1");
        assert_eq!((e.host(), e.path()), ("a", "/?q=1"));
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

    /// `http://[fe80::1]:8080` must give host `fe80::1` and port 8080, and
    /// an unbracketed `fe80::1` must be refused (it parsed as host `fe80:`).
    #[test]
    fn ipv6_literals_parse_in_brackets_only() {
        let e = ep("http://[fe80::1]:8080");
        assert_eq!((e.host(), e.port(), e.path()), ("fe80::1", 8080, "/"));
        assert_eq!(e.host_header(), "[fe80::1]:8080");
        let e = ep("http://[2001:db8::a:b]/v1");
        assert_eq!((e.host(), e.port(), e.path()), ("2001:db8::a:b", 80, "/v1"));
        assert_eq!(e.host_header(), "[2001:db8::a:b]");
        let e = ep("http://[::ffff:10.0.0.1]:1");
        assert_eq!(e.host(), "::ffff:10.0.0.1");
        for (url, why) in [
            (
                "http://fe80::1",
                "IPv6 addresses must be in brackets: http://[::1]:80",
            ),
            (
                "http://fe80::1:8080",
                "IPv6 addresses must be in brackets: http://[::1]:80",
            ),
            (
                "http://[fe80::1%25eth0]:80",
                "IPv6 zone ids are not supported",
            ),
            (
                "http://[ctl.example]:80",
                "`[...]` does not hold an IPv6 address",
            ),
            ("http://[10.0.0.1]", "`[...]` does not hold an IPv6 address"),
            ("http://[]:80", "`[...]` does not hold an IPv6 address"),
            ("http://[::1]8080", "junk after `]`"),
            ("http://[::1", "unclosed `[` in host"),
        ] {
            assert_eq!(reason(url), why, "{url}");
        }
    }

    /// `+80` was accepted as port 80 (`u16::from_str` takes a sign).
    #[test]
    fn ports_are_plain_digits() {
        for url in [
            "http://a:+80",
            "http://a:",
            "http://a: 80",
            "http://a:080000",
            "http://a:-1",
        ] {
            assert_eq!(reason(url), "port is not 1-65535", "{url}");
        }
        assert_eq!(ep("http://a:00080").port(), 80);
        assert_eq!(ep("http://a:65535").port(), 65535);
    }

    #[test]
    fn nothing_in_a_url_can_split_the_request_line() {
        assert_eq!(
            reason("http://a/x\r\nX-Evil: 1"),
            "path holds a space or a control character"
        );
        assert_eq!(
            reason("http://a/x y"),
            "path holds a space or a control character"
        );
        assert_eq!(
            reason("http://a\r\nb/"),
            "host may hold only letters, digits, `-`, `.` and `_`"
        );
        assert_eq!(
            reason("http://a/x#frag"),
            "fragments (`#`) are not supported"
        );
    }
}
