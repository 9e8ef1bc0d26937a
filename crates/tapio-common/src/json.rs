//! Compact JSON writer for occurrences: the bytes `serde_json::to_writer`
//! writes for an [`Occurrence`], written straight into a reused buffer.
//!
//! Hand-written instead of going through serde_json because the drain path
//! serializes every emitted occurrence (issue 15, ≥1 M occurrences/s per
//! core): serde's generic path allocates the id and timestamp strings and
//! goes through the formatter trait for every token. The output is pinned
//! to serde_json's byte for byte (same member order, same string escapes,
//! integers as `itoa` writes them, floats delegated to serde_json itself);
//! the tests compare both on many generated occurrences, and
//! [`Occurrence`]'s `Serialize` impl stays the reference.

use std::net::IpAddr;

use crate::occurrence::{Fact, Facts, Occurrence, Piece, Template, PROTOCOL_VERSION, SOURCE};

/// serde_json's escape of byte `b`, or `None` when it is written as is.
/// (`"` and `\` get a backslash; control bytes get their short form or
/// `\u00xx` with lowercase hex; everything else, `/` and non-ASCII
/// included, passes through.)
#[inline]
fn escape(b: u8) -> Option<&'static [u8]> {
    const U: &[u8] = b"\\u00";
    match b {
        b'"' => Some(b"\\\""),
        b'\\' => Some(b"\\\\"),
        0x08 => Some(b"\\b"),
        0x09 => Some(b"\\t"),
        0x0a => Some(b"\\n"),
        0x0c => Some(b"\\f"),
        0x0d => Some(b"\\r"),
        0x00..=0x1f => Some(U),
        _ => None,
    }
}

/// Which bytes serde_json escapes in a string: control bytes, `"`, `\\`.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Index of the first byte at or after `from` that needs an escape:
/// eight bytes at a time while none does (SWAR: a byte below 0x20, or
/// equal to `"` or `\\`, sets its high bit in the mask).
#[inline]
fn next_escape(bytes: &[u8], mut from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    while let Some(chunk) = bytes.get(from..from + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        let hit = (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
            | zero_in(w ^ (ONES * u64::from(b'"')))
            | zero_in(w ^ (ONES * u64::from(b'\\')));
        if hit != 0 {
            break;
        }
        from += 8;
    }
    bytes
        .get(from..)?
        .iter()
        .position(|&b| NEEDS_ESCAPE[usize::from(b)])
        .map(|p| from + p)
}

/// Appends `s` as a JSON string (quotes included).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_str_body(out, s);
    out.push(b'"');
}

/// Appends `s` escaped as inside a JSON string, without the quotes.
pub fn write_str_body(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut from = 0;
    while let Some(i) = next_escape(bytes, from) {
        let b = bytes[i];
        from = i + 1;
        out.extend_from_slice(&bytes[start..i]);
        if let Some(e) = escape(b) {
            out.extend_from_slice(e);
            if e.len() == 4 {
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `a` as text (what `Display` writes), IPv4 without `fmt`.
pub fn write_addr_body(out: &mut Vec<u8>, a: &IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                write_u64(out, u64::from(*o));
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            // `Display` never fails writing into a Vec.
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends the text of a fact ([`Fact::text`]) escaped as inside a JSON
/// string, without the quotes.
pub fn write_text_body(out: &mut Vec<u8>, v: &Fact) {
    match v {
        Fact::U64(x) => write_u64(out, *x),
        Fact::I64(x) => write_i64(out, *x),
        Fact::Addr(a) => write_addr_body(out, a),
        Fact::Str(s) => write_str_body(out, s),
        Fact::Comm(c) => write_str_body(out, &c.text()),
        Fact::F64(_) | Fact::Bool(_) => write_str_body(out, &v.text()),
    }
}

/// Appends `t` rendered over `facts` as a JSON string
/// ([`crate::occurrence::render`], without building the text first).
pub fn write_template(out: &mut Vec<u8>, t: Template, facts: &Facts) {
    out.push(b'"');
    for p in t {
        match p {
            Piece::Lit(l) => write_str_body(out, l),
            Piece::Fact(k) => match facts.get(k) {
                Some(v) => write_text_body(out, v),
                None => out.push(b'?'),
            },
        }
    }
    out.push(b'"');
}

/// Appends `v` in decimal (`itoa`, as serde_json writes integers).
#[inline]
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends `v` in decimal (`itoa`, as serde_json writes integers).
#[inline]
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends one fact's value.
pub fn write_fact(out: &mut Vec<u8>, v: &Fact) {
    match v {
        Fact::U64(x) => write_u64(out, *x),
        Fact::I64(x) => write_i64(out, *x),
        // Rare (ratios only): serde_json's own float format (ryu; `null`
        // for non-finite), so the two writers cannot drift apart.
        Fact::F64(x) => {
            if serde_json::to_writer(&mut *out, x).is_err() {
                out.extend_from_slice(b"null");
            }
        }
        Fact::Bool(true) => out.extend_from_slice(b"true"),
        Fact::Bool(false) => out.extend_from_slice(b"false"),
        Fact::Str(s) => write_str(out, s),
        Fact::Addr(_) | Fact::Comm(_) => {
            out.push(b'"');
            write_text_body(out, v);
            out.push(b'"');
        }
    }
}

/// Appends `"key":value` members for `facts`, each preceded by a comma
/// unless it is the first member of the object (`first`); returns whether
/// the next member is still the first.
pub fn write_members<'k, 'v>(
    out: &mut Vec<u8>,
    facts: impl Iterator<Item = (&'k str, &'v Fact)>,
    mut first: bool,
) -> bool {
    for (k, v) in facts {
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, k);
        out.push(b':');
        write_fact(out, v);
    }
    first
}

/// Appends `facts` as a JSON object.
pub fn write_facts(out: &mut Vec<u8>, facts: &Facts) {
    out.push(b'{');
    facts.write_members(out);
    out.push(b'}');
}

/// Appends `o` as compact JSON, exactly as `serde_json::to_writer` would.
pub fn write_occurrence(out: &mut Vec<u8>, o: &Occurrence) {
    let mut id = [0u8; ulid::ULID_LEN];
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(o.id.array_to_str(&mut id).as_bytes());
    out.extend_from_slice(b"\",\"timestamp\":\"");
    crate::time::write_rfc3339_millis(out, o.unix_ns);
    out.extend_from_slice(b"\",\"source\":");
    write_str(out, SOURCE);
    out.extend_from_slice(b",\"type\":");
    write_str(out, o.anomaly.as_str());
    out.extend_from_slice(b",\"protocol_version\":");
    write_str(out, PROTOCOL_VERSION);
    out.extend_from_slice(b",\"severity\":\"");
    out.extend_from_slice(o.severity.as_str().as_bytes());
    out.extend_from_slice(b"\",\"outcome\":\"");
    out.extend_from_slice(o.outcome.as_str().as_bytes());
    out.extend_from_slice(b"\",\"error\":{\"code\":");
    write_str(out, o.anomaly.error_code());
    out.extend_from_slice(b",\"message\":");
    match o.template {
        Some(t) => write_template(out, t, &o.data),
        None => write_str(out, &o.message),
    }
    out.extend_from_slice(b"},\"data\":");
    write_facts(out, &o.data);
    out.push(b'}');
}

/// Appends `batch` as a JSON array of occurrences (`serde_json::to_writer`
/// of a slice).
pub fn write_occurrences<'a>(out: &mut Vec<u8>, batch: impl IntoIterator<Item = &'a Occurrence>) {
    out.push(b'[');
    for (i, o) in batch.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_occurrence(out, o);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests;
