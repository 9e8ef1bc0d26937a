//! Occurrence facts: the values of an occurrence's `data`, kept raw where
//! the kernel hands them over raw and rendered when the occurrence is
//! written, and the ordered, optionally shared, list they form.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// One value in `data`.
///
/// Text facts the kernel hands over as raw fields (addresses, `comm`) are
/// kept raw ([`Fact::Addr`], [`Fact::Comm`]) and rendered only when the
/// occurrence is written: classification builds no strings. Equality is
/// equality of the JSON value: `Addr(10.0.0.9) == Str("10.0.0.9")`.
#[derive(Debug, Clone)]
pub enum Fact {
    /// Unsigned integer.
    U64(u64),
    /// Signed integer.
    I64(i64),
    /// Floating point (ratios only; counters are integers).
    F64(f64),
    /// Boolean.
    Bool(bool),
    /// Text (device names, paths, names).
    Str(String),
    /// An IP address, written as text (`10.0.0.9`, `fd00::2`).
    Addr(IpAddr),
    /// A kernel task name, written as text.
    Comm(Comm),
}

/// A kernel task name (`comm`) as the kernel keeps it: 16 bytes,
/// NUL-terminated unless full; written as lossy UTF-8. Equal and hashed by
/// the name alone: the bytes after the NUL are not part of it, and not every
/// kernel's `bpf_get_current_comm` zeroes them (6.1 leaves stale bytes).
#[derive(Debug, Clone, Copy, Default)]
pub struct Comm(pub [u8; 16]);

impl Comm {
    /// The name's bytes, up to its NUL.
    #[must_use]
    pub fn name(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        &self.0[..end]
    }

    /// The name as text (borrowed unless it is not UTF-8).
    #[must_use]
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.name())
    }
}

impl PartialEq for Comm {
    fn eq(&self, other: &Comm) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Comm {}

impl std::hash::Hash for Comm {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.name().hash(h);
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl Fact {
    /// The value as message text: numbers in decimal, text as is.
    #[must_use]
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Fact::U64(v) => Cow::Owned(v.to_string()),
            Fact::I64(v) => Cow::Owned(v.to_string()),
            Fact::F64(v) => Cow::Owned(v.to_string()),
            Fact::Bool(v) => Cow::Borrowed(if *v { "true" } else { "false" }),
            Fact::Str(v) => Cow::Borrowed(v),
            Fact::Addr(a) => Cow::Owned(a.to_string()),
            Fact::Comm(c) => c.text(),
        }
    }

    /// True for the variants written as JSON strings.
    #[must_use]
    pub fn is_text(&self) -> bool {
        matches!(self, Fact::Str(_) | Fact::Addr(_) | Fact::Comm(_))
    }
}

impl PartialEq for Fact {
    fn eq(&self, other: &Fact) -> bool {
        match (self, other) {
            (Fact::U64(a), Fact::U64(b)) => a == b,
            (Fact::I64(a), Fact::I64(b)) => a == b,
            (Fact::F64(a), Fact::F64(b)) => a == b,
            (Fact::Bool(a), Fact::Bool(b)) => a == b,
            (Fact::Str(a), Fact::Str(b)) => a == b,
            (Fact::Addr(a), Fact::Addr(b)) => a == b,
            (Fact::Comm(a), Fact::Comm(b)) => a == b,
            (a, b) if a.is_text() && b.is_text() => a.text() == b.text(),
            _ => false,
        }
    }
}

impl Serialize for Fact {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Fact::U64(v) => s.serialize_u64(*v),
            Fact::I64(v) => s.serialize_i64(*v),
            Fact::F64(v) => s.serialize_f64(*v),
            Fact::Bool(v) => s.serialize_bool(*v),
            Fact::Str(v) => s.serialize_str(v),
            Fact::Addr(_) | Fact::Comm(_) => s.serialize_str(&self.text()),
        }
    }
}

/// One piece of a message [`Template`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Lit(&'static str),
    /// The text of the occurrence's fact of this name ([`Fact::text`]).
    Fact(&'static str),
}

/// An `error.message` rendered from the occurrence's own facts when it is
/// written, instead of a string built per record.
pub type Template = &'static [Piece];

/// Number of pieces in `parts` together (the length [`joined`] makes).
#[must_use]
pub const fn pieces_in(parts: &[Template]) -> usize {
    let (mut n, mut i) = (0, 0);
    while i < parts.len() {
        n += parts[i].len();
        i += 1;
    }
    n
}

/// The pieces of `parts`, one part after another: a template made of
/// parts several messages share, joined at compile time so that writing it
/// walks one flat list ([`template!`](crate::template)).
///
/// # Panics
/// At compile time, when `N` is not [`pieces_in`]`(parts)`.
#[must_use]
pub const fn joined<const N: usize>(parts: &[Template]) -> [Piece; N] {
    let mut out = [Piece::Lit(""); N];
    let (mut k, mut i) = (0, 0);
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[k] = parts[i][j];
            k += 1;
            j += 1;
        }
        i += 1;
    }
    assert!(k == N, "joined: N is not the parts' length");
    out
}

/// A [`Template`] of parts (each a `Template`), joined into one flat list
/// of pieces at compile time: `template!(TO, &[Lit(" refused")], OWNER[1])`.
#[macro_export]
macro_rules! template {
    ($($part:expr),+ $(,)?) => {{
        const PARTS: &[$crate::Template] = &[$($part),+];
        const JOINED: [$crate::Piece; $crate::facts::pieces_in(PARTS)] =
            $crate::facts::joined(PARTS);
        &JOINED
    }};
}

/// Renders `t` over `facts` (a missing fact renders as `?`).
#[must_use]
pub fn render(t: Template, facts: &Facts) -> String {
    let mut s = String::new();
    for p in t {
        match p {
            Piece::Lit(l) => s.push_str(l),
            Piece::Fact(k) => match facts.get(k) {
                Some(v) => s.push_str(&v.text()),
                None => s.push('?'),
            },
        }
    }
    s
}

/// The ordered facts of an occurrence's `data`; keys are unique.
///
/// Besides its own facts it may carry one [`SharedFacts`] set after them
/// (a cgroup owner's facts, rendered once for all its occurrences): reads
/// see both, in order; any write first copies the shared facts in, so a
/// `Facts` always behaves as one ordered list.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    own: Vec<(&'static str, Fact)>,
    /// [`key_bit`] of every key in `own`: a key whose bit is clear is not
    /// set yet, so `set` and `attach` skip the comparisons.
    keys: u64,
    shared: Option<Arc<SharedFacts>>,
}

/// Facts shared by many occurrences, with their JSON members rendered once
/// (`"k":v,"k":v`), which serialization copies in as they are.
#[derive(Debug, PartialEq)]
pub struct SharedFacts {
    facts: Vec<(&'static str, Fact)>,
    json: Box<[u8]>,
    /// [`key_bit`] of every key: a key whose bit is clear is none of them.
    keys: u64,
    /// [`key_bit`] of each key, index for index with `facts`.
    bits: Box<[u64]>,
}

/// One of 64 bits for a key (a multiplicative hash of its length and its
/// first and last bytes): a cheap "certainly not among these keys" test
/// before comparing keys.
#[inline]
fn key_bit(k: &str) -> u64 {
    let b = k.as_bytes();
    let (first, last) = (b.first().copied(), b.last().copied());
    let h = (b.len() as u32)
        ^ (u32::from(first.unwrap_or(0)) << 8)
        ^ (u32::from(last.unwrap_or(0)) << 16);
    1 << (h.wrapping_mul(0x9E37_79B1) >> 26)
}

impl SharedFacts {
    /// Renders `facts` (keys unique; a later duplicate replaces an earlier).
    #[must_use]
    pub fn new(facts: impl IntoIterator<Item = (&'static str, Fact)>) -> SharedFacts {
        let mut f = Facts::default();
        for (k, v) in facts {
            f.set(k, v);
        }
        let mut json = Vec::new();
        crate::json::write_members(&mut json, f.iter(), true);
        SharedFacts {
            keys: f.keys,
            bits: f.own.iter().map(|(k, _)| key_bit(k)).collect(),
            facts: f.own,
            json: json.into_boxed_slice(),
        }
    }

    /// The facts, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Fact)> {
        self.facts.iter().map(|(k, v)| (*k, v))
    }

    /// The rendered JSON members.
    #[must_use]
    pub fn json(&self) -> &[u8] {
        &self.json
    }
}

/// Key equality with a cheap filter first (length, first and last byte),
/// then the same literal (keys are `&'static str`s the compiler merges),
/// then the bytes.
#[inline]
fn same_key(a: &str, b: &str) -> bool {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    x.len() == y.len()
        && x.first() == y.first()
        && x.last() == y.last()
        && (std::ptr::eq(x.as_ptr(), y.as_ptr()) || x == y)
}

impl PartialEq for Facts {
    fn eq(&self, other: &Facts) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Facts {
    /// Empty facts with room for `n`.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Facts {
            own: Vec::with_capacity(n),
            keys: 0,
            shared: None,
        }
    }

    /// Copies attached shared facts into the own list (before a write).
    #[inline]
    fn unshare(&mut self) {
        if self.shared.is_some() {
            self.unshare_slow();
        }
    }

    #[cold]
    fn unshare_slow(&mut self) {
        if let Some(s) = self.shared.take() {
            self.own.extend(s.facts.iter().cloned());
            self.keys |= s.keys;
        }
    }

    /// Sets `key` to `value`, replacing an earlier value of the same key.
    pub fn set(&mut self, key: &'static str, value: Fact) -> &mut Self {
        self.unshare();
        let bit = key_bit(key);
        if self.keys & bit != 0 {
            if let Some(slot) = self.own.iter_mut().find(|(k, _)| same_key(k, key)) {
                slot.1 = value;
                return self;
            }
        }
        self.own.push((key, value));
        self.keys |= bit;
        self
    }

    /// Sets every fact of `other`, in its order ([`Facts::set`] each,
    /// values moved, not cloned).
    pub fn append(&mut self, mut other: Facts) -> &mut Self {
        other.unshare();
        self.unshare();
        if self.own.is_empty() {
            self.own = other.own;
            self.keys = other.keys;
            return self;
        }
        // `other`'s keys are unique among themselves: each needs checking
        // only against the facts set before this call.
        let before = self.own.len();
        self.own.reserve(other.own.len());
        let set_before = self.keys;
        for (k, v) in other.own {
            let bit = key_bit(k);
            let slot = if set_before & bit == 0 {
                None
            } else {
                self.own[..before].iter_mut().find(|(o, _)| same_key(o, k))
            };
            match slot {
                Some(slot) => slot.1 = v,
                None => self.own.push((k, v)),
            }
        }
        self.keys |= other.keys;
        self
    }

    /// Adds `shared` after the facts already set. When a key of `shared`
    /// is already set, or shared facts are already attached, its facts are
    /// set one by one instead ([`Facts::set`] semantics either way).
    pub fn attach(&mut self, shared: &Arc<SharedFacts>) -> &mut Self {
        // Only a shared key whose filter bit is among the own keys' bits
        // can clash; each such key is then looked for (by length first).
        let clash = self.shared.is_some()
            || (self.keys & shared.keys != 0
                && shared
                    .facts
                    .iter()
                    .zip(shared.bits.iter())
                    .any(|((k, _), bit)| {
                        self.keys & bit != 0 && self.own.iter().any(|(o, _)| same_key(o, k))
                    }));
        if clash {
            for (k, v) in shared.iter() {
                self.set(k, v.clone());
            }
        } else {
            self.shared = Some(Arc::clone(shared));
        }
        self
    }

    /// Sets an unsigned fact.
    pub fn u64(&mut self, key: &'static str, v: u64) -> &mut Self {
        self.set(key, Fact::U64(v))
    }

    /// Sets a signed fact.
    pub fn i64(&mut self, key: &'static str, v: i64) -> &mut Self {
        self.set(key, Fact::I64(v))
    }

    /// Sets a text fact.
    pub fn str(&mut self, key: &'static str, v: impl Into<String>) -> &mut Self {
        self.set(key, Fact::Str(v.into()))
    }

    /// Sets a boolean fact.
    pub fn bool(&mut self, key: &'static str, v: bool) -> &mut Self {
        self.set(key, Fact::Bool(v))
    }

    /// The value of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Fact> {
        self.iter().find(|(k, _)| same_key(k, key)).map(|(_, v)| v)
    }

    /// Iterates in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Fact)> {
        let shared = self.shared.as_deref().map(|s| s.facts.as_slice());
        self.own
            .iter()
            .chain(shared.unwrap_or_default())
            .map(|(k, v)| (*k, v))
    }

    /// Number of facts.
    #[must_use]
    pub fn len(&self) -> usize {
        self.own.len() + self.shared.as_ref().map_or(0, |s| s.facts.len())
    }

    /// True when there are no facts.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the facts as JSON object members (no braces), shared facts
    /// copied from their rendering.
    pub fn write_members(&self, out: &mut Vec<u8>) {
        let own = self.own.iter().map(|(k, v)| (*k, v));
        let first = crate::json::write_members(out, own, true);
        if let Some(s) = &self.shared {
            if !s.json.is_empty() {
                if !first {
                    out.push(b',');
                }
                out.extend_from_slice(&s.json);
            }
        }
    }
}

impl Serialize for Facts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}
