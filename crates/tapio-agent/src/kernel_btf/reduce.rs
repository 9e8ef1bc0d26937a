//! The part of the kernel BTF that Tapio's objects can see, as a BTF blob
//! of its own.
//!
//! What the loader asks of kernel BTF is narrow: CO-RE relocations look up
//! types by name (flavour suffix `___x` dropped) and walk what those types
//! reference; `tp_btf` attachment takes the kernel's id of a
//! `btf_trace_<hook>` typedef. So the blob keeps every type reachable from
//! a named root, each `btf_trace_*` typedef at its kernel id, and nothing
//! else. Kept types are renumbered into the free ids (in kernel order, so
//! candidates come in the same order); the ids no kept type fills hold a
//! nameless `void *`, which no lookup by name can find.

use std::collections::HashMap;

use super::raw::{assemble, field, kind, kind_of, string_fields, type_fields, RawBtf, TYPE_HEAD};

/// Why a reduced blob could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReduceError {
    /// A type references an id past the last type.
    Dangling {
        /// The referencing type.
        id: u32,
        /// The id it names.
        target: u32,
    },
}

impl std::fmt::Display for ReduceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReduceError::Dangling { id, target } => {
                write!(f, "BTF type {id} references type {target}, past the last")
            }
        }
    }
}

impl std::error::Error for ReduceError {}

/// What the objects need of kernel BTF.
#[derive(Debug, Default, Clone)]
pub struct Needs {
    /// Type names (flavourless) whose types, and all they reach, are kept.
    pub names: std::collections::HashSet<Vec<u8>>,
    /// Names of typedefs and functions kept at their kernel ids
    /// (`btf_trace_<hook>`, `bpf_iter_<target>`).
    pub pinned: std::collections::HashSet<Vec<u8>>,
}

/// A reduced blob and how much of the kernel's it kept.
#[derive(Debug)]
pub struct Reduced {
    /// The BTF blob (header, types, strings).
    pub blob: Vec<u8>,
    /// Types kept (pinned and reached).
    pub kept: u32,
    /// Types in the blob, placeholders included.
    pub count: u32,
}

/// `name` without a CO-RE flavour (`sock___old` → `sock`).
#[must_use]
pub fn flavorless(name: &[u8]) -> &[u8] {
    name.windows(3)
        .position(|w| w == b"___")
        .map_or(name, |i| &name[..i])
}

/// Reduces `raw` to what `needs` asks for.
///
/// # Errors
/// [`ReduceError`] when the input references types it does not have.
pub fn reduce(raw: &RawBtf<'_>, needs: &Needs) -> Result<Reduced, ReduceError> {
    let count = raw.count();
    let mut keep = vec![false; count as usize + 1];
    let mut pinned = Vec::new();
    let mut stack = Vec::new();
    for id in 1..=count {
        let name = raw.name(id);
        if name.is_empty() {
            continue;
        }
        if matches!(raw.kind(id), kind::TYPEDEF | kind::FUNC) && needs.pinned.contains(name) {
            pinned.push(id);
            stack.push(id);
        } else if needs.names.contains(flavorless(name)) {
            stack.push(id);
        }
    }
    while let Some(id) = stack.pop() {
        if id == 0 || keep[id as usize] {
            continue;
        }
        keep[id as usize] = true;
        let rec = raw.record(id);
        for at in type_fields(rec) {
            let target = field(rec, at);
            if target > count {
                return Err(ReduceError::Dangling { id, target });
            }
            stack.push(target);
        }
    }

    // Slots: pinned ids stay; the other kept types fill the rest in order.
    let kept = keep.iter().filter(|&&k| k).count() as u32;
    let last_pinned = pinned.iter().copied().max().unwrap_or(0);
    let total = last_pinned.max(kept);
    let mut slot_of = vec![0u32; count as usize + 1];
    let mut old_at = vec![0u32; total as usize + 1];
    for &p in &pinned {
        slot_of[p as usize] = p;
        old_at[p as usize] = p;
    }
    // `total` counts every kept type, so the cursor stays within it.
    let mut next = 1usize;
    for id in 1..=count {
        if keep[id as usize] && slot_of[id as usize] == 0 {
            while old_at[next] != 0 {
                next += 1;
            }
            slot_of[id as usize] = next as u32;
            old_at[next] = id;
        }
    }

    let mut types = Vec::with_capacity(kept as usize * 32 + (total - kept) as usize * TYPE_HEAD);
    let mut strings = vec![0u8];
    let mut string_slot: HashMap<u32, u32> = HashMap::new();
    for &old in &old_at[1..] {
        if old == 0 {
            // Nameless `void *`.
            types.extend_from_slice(&0u32.to_le_bytes());
            types.extend_from_slice(&(kind::PTR << 24).to_le_bytes());
            types.extend_from_slice(&0u32.to_le_bytes());
            continue;
        }
        let rec = raw.record(old);
        let start = types.len();
        types.extend_from_slice(rec);
        let out = &mut types[start..];
        for at in type_fields(rec) {
            let t = field(rec, at);
            put(out, at, if t == 0 { 0 } else { slot_of[t as usize] });
        }
        for at in string_fields(rec) {
            let off = field(rec, at);
            let new = if off == 0 {
                0
            } else {
                *string_slot.entry(off).or_insert_with(|| {
                    let s = strings.len() as u32;
                    strings.extend_from_slice(raw.string(off));
                    strings.push(0);
                    s
                })
            };
            put(out, at, new);
        }
        debug_assert_eq!(kind_of(out), kind_of(rec));
    }
    Ok(Reduced {
        blob: assemble(&types, &strings),
        kept,
        count: total,
    })
}

fn put(record: &mut [u8], at: usize, v: u32) {
    record[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::super::raw::tests::rec;
    use super::*;

    /// 1 int "int"; 2 struct "big" { int a }; 3 ptr -> 2; 4 typedef
    /// "btf_trace_x" -> 3; 5 struct "sock___v2" { struct big *b; int c };
    /// 6 typedef "btf_trace_y" -> 1; 7 struct "other" { int a }.
    fn kernel() -> Vec<u8> {
        let mut strings = vec![0u8];
        let mut s = |n: &str| {
            let o = strings.len() as u32;
            strings.extend_from_slice(n.as_bytes());
            strings.push(0);
            o
        };
        let (int, big, a) = (s("int"), s("big"), s("a"));
        let (x, sock, b, c) = (s("btf_trace_x"), s("sock___v2"), s("b"), s("c"));
        let (y, other) = (s("btf_trace_y"), s("other"));
        let mut t = rec(int, kind::INT, 0, 4, &[32]);
        t.extend(rec(big, kind::STRUCT, 1, 4, &[a, 1, 0]));
        t.extend(rec(0, kind::PTR, 0, 2, &[]));
        t.extend(rec(x, kind::TYPEDEF, 0, 3, &[]));
        t.extend(rec(sock, kind::STRUCT, 2, 12, &[b, 3, 0, c, 1, 64]));
        t.extend(rec(y, kind::TYPEDEF, 0, 1, &[]));
        t.extend(rec(other, kind::STRUCT, 1, 4, &[a, 1, 0]));
        assemble(&t, &strings)
    }

    fn needs(names: &[&str], pinned: &[&str]) -> Needs {
        Needs {
            names: names.iter().map(|n| n.as_bytes().to_vec()).collect(),
            pinned: pinned.iter().map(|n| n.as_bytes().to_vec()).collect(),
        }
    }

    #[test]
    fn pinned_typedefs_keep_their_ids_and_reached_types_fill_the_rest() {
        let data = kernel();
        let raw = RawBtf::parse(&data).unwrap();
        let r = reduce(&raw, &needs(&["sock"], &["btf_trace_y"])).unwrap();
        let out = RawBtf::parse(&r.blob).unwrap();
        // Kept: sock (5) reaches ptr (3) -> big (2) -> int (1); btf_trace_y
        // (6) -> int. Six slots: the pinned typedef at 6, the rest in order.
        assert_eq!((r.kept, r.count, out.count()), (5, 6, 6));
        assert_eq!(out.name(6), b"btf_trace_y");
        assert_eq!(out.kind(6), kind::TYPEDEF);
        let names: Vec<&[u8]> = (1..=5).map(|i| out.name(i)).collect();
        assert_eq!(names, [&b"int"[..], b"big", b"", b"sock___v2", b""]);
        assert_eq!(out.kind(5), kind::PTR, "slot 5 is the nameless filler");
        // References follow the new ids: sock's members are *big (3) and int (1).
        let s = out.record(4);
        let refs: Vec<u32> = type_fields(s).map(|at| field(s, at)).collect();
        assert_eq!(refs, [3, 1]);
        let member_names: Vec<&[u8]> = string_fields(s)
            .map(|at| out.string(field(s, at)))
            .collect();
        assert_eq!(member_names, [&b"sock___v2"[..], b"b", b"c"]);
        let typedef = out.record(6);
        assert_eq!(field(typedef, 8), 1);
        // What was not reached is gone, by name.
        assert!((1..=out.count()).all(|i| out.name(i) != b"other" && out.name(i) != b"btf_trace_x"));
    }

    #[test]
    fn aya_reads_the_reduced_blob_and_finds_the_pinned_id() {
        use aya_obj::btf::{Btf, BtfKind};
        let data = kernel();
        let raw = RawBtf::parse(&data).unwrap();
        let r = reduce(&raw, &needs(&["big"], &["btf_trace_x", "btf_trace_y"])).unwrap();
        let btf = Btf::parse(&r.blob, aya::Endianness::default()).unwrap();
        assert_eq!(
            btf.id_by_type_name_kind("btf_trace_x", BtfKind::Typedef)
                .unwrap(),
            4
        );
        assert_eq!(
            btf.id_by_type_name_kind("btf_trace_y", BtfKind::Typedef)
                .unwrap(),
            6
        );
        assert!(btf.id_by_type_name_kind("big", BtfKind::Struct).is_ok());
        assert!(btf.id_by_type_name_kind("other", BtfKind::Struct).is_err());
    }

    #[test]
    fn a_dangling_reference_is_an_error() {
        let mut data = kernel();
        // Type 3 (ptr) at 24 + 16 + 24: its target field -> 99.
        let at = 24 + 16 + 24 + 8;
        data[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
        let raw = RawBtf::parse(&data).unwrap();
        assert_eq!(
            reduce(&raw, &needs(&["sock"], &[])).unwrap_err(),
            ReduceError::Dangling { id: 3, target: 99 }
        );
    }

    #[test]
    fn flavours_are_dropped_from_names() {
        assert_eq!(flavorless(b"sock___old"), b"sock");
        assert_eq!(flavorless(b"sock"), b"sock");
        assert_eq!(flavorless(b"a__b"), b"a__b");
    }
}
