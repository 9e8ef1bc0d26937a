//! The kernel BTF the loader relocates and attaches against, parsed once,
//! and only the part of it Tapio's objects can see (issue 15: start-up
//! peak RSS).
//!
//! aya-obj expands every kernel type it parses (72 bytes each plus member
//! vectors, ~18 MB above the process for this host's 126,610 types). The
//! objects need a few thousand of them: [`needs`] reads what from the
//! objects themselves, [`reduce`] cuts the raw blob down before aya sees
//! it. Any surprise in the raw blob falls back to the whole parse, which
//! loads the same objects the same way at a higher peak; the kernel test
//! `kernel_btf` proves on every kernel of the matrix that both relocate
//! every object to the same instructions.

pub mod no_files;
pub mod raw;
pub mod reduce;

use std::path::Path;

use aya::Btf;
use aya::Endianness;
use aya_obj::ProgramSection;

use crate::kernel_features::KernelFeatures;
use raw::RawBtf;
use reduce::{flavorless, reduce, Needs};
use tapio_common::Observer;

/// Where the running kernel publishes its BTF.
pub const SYS_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The hook a `tp_btf` program attaches to: its name up to a `__variant`
/// suffix (`inet_sock_set_state__no_atomics` → `inet_sock_set_state`).
#[must_use]
pub fn tp_btf_hook(program: &str) -> &str {
    program.split_once("__").map_or(program, |(h, _)| h)
}

/// What the objects in `dir` need of kernel BTF: every type name their own
/// BTF mentions (CO-RE looks candidates up by name), the `btf_trace_*`
/// typedef of each `tp_btf` program, the `bpf_iter_*` function of each
/// iterator target in `iterators` (an object does not record its
/// iterators' targets where aya shows them), and the names
/// [`KernelFeatures`] reads. An object that is missing or does not parse adds nothing (its
/// load fails on its own, with its own error).
#[must_use]
pub fn needs(dir: &Path, iterators: &[&str]) -> Needs {
    let mut n = Needs::default();
    n.pinned.extend(
        iterators
            .iter()
            .map(|t| format!("bpf_iter_{t}").into_bytes()),
    );
    n.names.extend(
        KernelFeatures::BTF_NAMES
            .iter()
            .map(|s| s.as_bytes().to_vec()),
    );
    for o in Observer::ALL {
        let Ok(data) = std::fs::read(dir.join(format!("{}.o", o.object_name()))) else {
            continue;
        };
        let Ok(obj) = aya_obj::Object::parse(&data) else {
            continue;
        };
        if let Some(btf) = &obj.btf {
            let bytes = btf.to_bytes();
            if let Ok(own) = RawBtf::parse(&bytes) {
                n.names.extend(
                    (1..=own.count())
                        .map(|id| flavorless(own.name(id)))
                        .filter(|name| !name.is_empty())
                        .map(<[u8]>::to_vec),
                );
            }
        }
        n.pinned.extend(
            obj.programs
                .iter()
                .filter(|(_, p)| matches!(p.section, ProgramSection::BtfTracePoint))
                .map(|(name, _)| format!("btf_trace_{}", tp_btf_hook(name)).into_bytes()),
        );
    }
    n
}

/// How the loaded BTF relates to the kernel's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Reduced to what the objects need.
    Reduced {
        /// Types in the kernel's BTF.
        kernel: u32,
        /// Types kept.
        kept: u32,
        /// Ids in the reduced BTF (kept types and fillers).
        ids: u32,
    },
    /// Parsed whole, because the raw blob could not be reduced.
    Whole {
        /// Why.
        why: String,
    },
}

/// The loader's kernel BTF.
pub struct KernelBtf {
    /// What aya relocates and attaches against.
    pub btf: Btf,
    /// Reduced or whole.
    pub shape: Shape,
}

/// Reads [`SYS_BTF`] and keeps what the objects in `dir` need
/// ([`needs`]).
///
/// # Errors
/// The file is unreadable, or not BTF that aya can parse.
pub fn load(dir: &Path, iterators: &[&str]) -> Result<KernelBtf, aya::BtfError> {
    let data = std::fs::read(SYS_BTF).map_err(|error| aya::BtfError::FileError {
        path: SYS_BTF.into(),
        error,
    })?;
    let reduced = RawBtf::parse(&data)
        .map_err(|e| e.to_string())
        .and_then(|raw| {
            let r = reduce(&raw, &needs(dir, iterators)).map_err(|e| e.to_string())?;
            Ok((raw.count(), r))
        });
    match reduced {
        Ok((kernel, r)) => {
            drop(data);
            let btf = Btf::parse(&r.blob, Endianness::default())?;
            Ok(KernelBtf {
                btf,
                shape: Shape::Reduced {
                    kernel,
                    kept: r.kept,
                    ids: r.count,
                },
            })
        }
        Err(why) => Ok(KernelBtf {
            btf: Btf::parse(&data, Endianness::default())?,
            shape: Shape::Whole { why },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_are_program_names_up_to_a_variant() {
        assert_eq!(
            tp_btf_hook("inet_sock_set_state__no_atomics"),
            "inet_sock_set_state"
        );
        assert_eq!(tp_btf_hook("tcp_probe"), "tcp_probe");
    }

    #[test]
    fn a_directory_without_objects_needs_only_the_feature_names() {
        let n = needs(Path::new("/nonexistent-tapio-objects"), &["x"]);
        assert_eq!(n.pinned.iter().collect::<Vec<_>>(), [b"bpf_iter_x"]);
        assert_eq!(n.names.len(), KernelFeatures::BTF_NAMES.len());
    }
}
