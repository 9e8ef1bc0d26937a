//! BTF read in place, as the kernel lays it out (`include/uapi/linux/btf.h`):
//! a header, a type section of variable-length records and a string
//! section. Nothing is expanded: a type is its byte offset, and the fields
//! that name other types or strings are found by their place in the record.

use std::fmt;

/// Why raw BTF could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawError {
    /// Not little-endian BTF (magic 0xeB9F read little-endian).
    Magic,
    /// A header field or a record points past the data.
    Truncated(&'static str),
    /// A type kind this reader does not know (newer than BTF_KIND_ENUM64).
    Kind {
        /// The type's id.
        id: u32,
        /// Its kind number.
        kind: u32,
    },
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawError::Magic => f.write_str("not little-endian BTF"),
            RawError::Truncated(what) => write!(f, "BTF truncated in its {what}"),
            RawError::Kind { id, kind } => write!(f, "BTF type {id} has unknown kind {kind}"),
        }
    }
}

impl std::error::Error for RawError {}

/// `BTF_KIND_*` numbers this reader handles.
pub mod kind {
    /// Integer.
    pub const INT: u32 = 1;
    /// Pointer.
    pub const PTR: u32 = 2;
    /// Array.
    pub const ARRAY: u32 = 3;
    /// Struct.
    pub const STRUCT: u32 = 4;
    /// Union.
    pub const UNION: u32 = 5;
    /// Enum (32-bit values).
    pub const ENUM: u32 = 6;
    /// Forward declaration.
    pub const FWD: u32 = 7;
    /// Typedef.
    pub const TYPEDEF: u32 = 8;
    /// Volatile.
    pub const VOLATILE: u32 = 9;
    /// Const.
    pub const CONST: u32 = 10;
    /// Restrict.
    pub const RESTRICT: u32 = 11;
    /// Function.
    pub const FUNC: u32 = 12;
    /// Function prototype.
    pub const FUNC_PROTO: u32 = 13;
    /// Variable.
    pub const VAR: u32 = 14;
    /// Data section.
    pub const DATASEC: u32 = 15;
    /// Floating point.
    pub const FLOAT: u32 = 16;
    /// Declaration tag.
    pub const DECL_TAG: u32 = 17;
    /// Type tag.
    pub const TYPE_TAG: u32 = 18;
    /// Enum (64-bit values).
    pub const ENUM64: u32 = 19;
}

/// Bytes of `struct btf_type` (name_off, info, size or type).
pub const TYPE_HEAD: usize = 12;

const MAGIC: u16 = 0xeb9f;

/// Little-endian u32 at `at`; the caller has checked the bounds.
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A BTF blob, indexed by type id.
pub struct RawBtf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// `starts[id - 1]`: where type `id`'s record begins in `types`.
    starts: Vec<u32>,
}

impl<'a> RawBtf<'a> {
    /// Indexes `data`.
    ///
    /// # Errors
    /// [`RawError`]: wrong magic, bounds past the data, an unknown kind.
    pub fn parse(data: &'a [u8]) -> Result<Self, RawError> {
        if data.len() < 24 {
            return Err(RawError::Truncated("header"));
        }
        if u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(RawError::Magic);
        }
        let field = |i: usize| u32_at(data, 4 + 4 * i) as usize;
        let (hdr_len, type_off, type_len, str_off, str_len) =
            (field(0), field(1), field(2), field(3), field(4));
        let section = |off: usize, len: usize, what| {
            hdr_len
                .checked_add(off)
                .and_then(|s| Some((s, s.checked_add(len)?)))
                .and_then(|(s, e)| data.get(s..e))
                .ok_or(RawError::Truncated(what))
        };
        let types = section(type_off, type_len, "type section")?;
        let strings = section(str_off, str_len, "string section")?;
        let mut starts = Vec::new();
        let mut at = 0usize;
        while at < types.len() {
            let id = starts.len() as u32 + 1;
            let len = record_len(types, at, id)?;
            starts.push(at as u32);
            at += len;
        }
        Ok(RawBtf {
            types,
            strings,
            starts,
        })
    }

    /// How many types (ids `1..=count`; id 0 is `void`).
    #[must_use]
    pub fn count(&self) -> u32 {
        self.starts.len() as u32
    }

    /// Type `id`'s whole record (`id` in `1..=count`).
    #[must_use]
    pub fn record(&self, id: u32) -> &'a [u8] {
        let i = id as usize - 1;
        let start = self.starts[i] as usize;
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.types.len(), |&s| s as usize);
        &self.types[start..end]
    }

    /// Type `id`'s name (empty when anonymous or out of bounds).
    #[must_use]
    pub fn name(&self, id: u32) -> &'a [u8] {
        self.string(u32_at(self.record(id), 0))
    }

    /// The NUL-terminated string at `offset` (empty when out of bounds).
    #[must_use]
    pub fn string(&self, offset: u32) -> &'a [u8] {
        let rest = self.strings.get(offset as usize..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// Type `id`'s kind number.
    #[must_use]
    pub fn kind(&self, id: u32) -> u32 {
        kind_of(self.record(id))
    }
}

/// The kind number of a record.
#[must_use]
pub fn kind_of(record: &[u8]) -> u32 {
    (u32_at(record, 4) >> 24) & 0x1f
}

fn vlen_of(record: &[u8]) -> usize {
    (u32_at(record, 4) & 0xffff) as usize
}

/// Bytes of the record at `at`, head and trailing data.
fn record_len(types: &[u8], at: usize, id: u32) -> Result<usize, RawError> {
    let head = types
        .get(at..at + TYPE_HEAD)
        .ok_or(RawError::Truncated("type section"))?;
    let vlen = vlen_of(head);
    let tail = match kind_of(head) {
        kind::INT | kind::VAR | kind::DECL_TAG => 4,
        kind::ARRAY => 12,
        kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * vlen,
        kind::ENUM | kind::FUNC_PROTO => 8 * vlen,
        kind::PTR
        | kind::FWD
        | kind::TYPEDEF
        | kind::VOLATILE
        | kind::CONST
        | kind::RESTRICT
        | kind::FUNC
        | kind::FLOAT
        | kind::TYPE_TAG => 0,
        k => return Err(RawError::Kind { id, kind: k }),
    };
    let len = TYPE_HEAD + tail;
    if at + len > types.len() {
        return Err(RawError::Truncated("type section"));
    }
    Ok(len)
}

/// Where in a record of its kind the type ids are (byte offsets of u32
/// fields), in record order.
pub fn type_fields(record: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let vlen = vlen_of(record);
    let (head, step, at, n): (&[usize], usize, usize, usize) = match kind_of(record) {
        kind::PTR
        | kind::TYPEDEF
        | kind::VOLATILE
        | kind::CONST
        | kind::RESTRICT
        | kind::FUNC
        | kind::TYPE_TAG
        | kind::VAR
        | kind::DECL_TAG => (&[8], 0, 0, 0),
        kind::ARRAY => (&[12, 16], 0, 0, 0),
        // struct btf_member { name_off, type, offset }
        kind::STRUCT | kind::UNION => (&[], 12, TYPE_HEAD + 4, vlen),
        // return type, then struct btf_param { name_off, type }
        kind::FUNC_PROTO => (&[8], 8, TYPE_HEAD + 4, vlen),
        // struct btf_var_secinfo { type, offset, size }
        kind::DATASEC => (&[], 12, TYPE_HEAD, vlen),
        _ => (&[], 0, 0, 0),
    };
    head.iter()
        .copied()
        .chain((0..n).map(move |i| at + i * step))
}

/// Where in a record of its kind the string offsets are: the type's name,
/// then its members', enumerators' or parameters' names.
pub fn string_fields(record: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let vlen = vlen_of(record);
    let step = match kind_of(record) {
        kind::STRUCT | kind::UNION | kind::ENUM64 => 12,
        kind::ENUM | kind::FUNC_PROTO => 8,
        _ => 0,
    };
    let n = if step == 0 { 0 } else { vlen };
    std::iter::once(0).chain((0..n).map(move |i| TYPE_HEAD + i * step))
}

/// A blob of `types` (records) and `strings` behind a version 1 header
/// with no flags.
#[must_use]
pub fn assemble(types: &[u8], strings: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(24 + types.len() + strings.len());
    b.extend_from_slice(&MAGIC.to_le_bytes());
    b.extend_from_slice(&[1, 0]);
    let (tl, sl) = (types.len() as u32, strings.len() as u32);
    for v in [24u32, 0, tl, tl, sl] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(types);
    b.extend_from_slice(strings);
    b
}

/// The u32 field at `at` of a record.
#[must_use]
pub fn field(record: &[u8], at: usize) -> u32 {
    u32_at(record, at)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One type record: head fields, then `tail` (u32s).
    pub(crate) fn rec(name: u32, kind: u32, vlen: u32, st: u32, tail: &[u32]) -> Vec<u8> {
        let mut r = Vec::new();
        for v in [name, (kind << 24) | vlen, st].iter().chain(tail) {
            r.extend_from_slice(&v.to_le_bytes());
        }
        r
    }

    #[test]
    fn records_are_indexed_by_id_with_their_fields() {
        // 1: int "u32"; 2: struct "s" { u32 a; u32 *p; }; 3: ptr -> 1
        let strings = b"\0u32\0s\0a\0p\0";
        let mut types = rec(1, kind::INT, 0, 4, &[32]);
        types.extend(rec(5, kind::STRUCT, 2, 8, &[7, 1, 0, 9, 3, 64]));
        types.extend(rec(0, kind::PTR, 0, 1, &[]));
        let data = assemble(&types, strings);
        let raw = RawBtf::parse(&data).unwrap();
        assert_eq!(raw.count(), 3);
        assert_eq!(raw.name(2), b"s");
        assert_eq!(raw.kind(3), kind::PTR);
        let s = raw.record(2);
        let refs: Vec<u32> = type_fields(s).map(|at| field(s, at)).collect();
        assert_eq!(refs, [1, 3]);
        let names: Vec<&[u8]> = string_fields(s)
            .map(|at| raw.string(field(s, at)))
            .collect();
        assert_eq!(names, [&b"s"[..], b"a", b"p"]);
        let p = raw.record(3);
        assert_eq!(
            type_fields(p).map(|at| field(p, at)).collect::<Vec<_>>(),
            [1]
        );
    }

    #[test]
    fn bad_blobs_are_errors_not_panics() {
        assert_eq!(
            RawBtf::parse(&[0; 8]).err(),
            Some(RawError::Truncated("header"))
        );
        let mut data = assemble(&rec(0, kind::PTR, 0, 0, &[]), b"\0");
        data.swap(0, 1); // big-endian magic
        assert_eq!(RawBtf::parse(&data).err(), Some(RawError::Magic));
        let data = assemble(&rec(0, 25, 0, 0, &[]), b"\0");
        assert_eq!(
            RawBtf::parse(&data).err(),
            Some(RawError::Kind { id: 1, kind: 25 })
        );
        // A struct claiming two members but carrying one.
        let data = assemble(&rec(0, kind::STRUCT, 2, 4, &[0, 0, 0]), b"\0");
        assert_eq!(
            RawBtf::parse(&data).err(),
            Some(RawError::Truncated("type section"))
        );
        let mut data = assemble(&rec(0, kind::PTR, 0, 0, &[]), b"\0");
        data[20] = 0xff; // string length past the end
        assert_eq!(
            RawBtf::parse(&data).err(),
            Some(RawError::Truncated("string section"))
        );
    }
}
