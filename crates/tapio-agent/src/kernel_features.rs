//! Kernel facilities of the running kernel, read at load time.
//!
//! Never from version strings: a distribution kernel carries backports, so
//! only what the kernel itself says counts: its BTF, or its verifier for
//! what BTF does not show (instruction set). Tracepoint argument lists are
//! decided inside the objects by CO-RE (`ebpf/core_fixes.bpf.h`); what CO-RE
//! cannot see is decided here, before the object is loaded.

use aya::Btf;
use aya_obj::btf::BtfKind;

/// The function whose presence says tracing programs may use socket
/// storage.
const SK_STORAGE_TRACING: &str = "bpf_sk_storage_tracing_allowed";

/// What the running kernel offers Tapio's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelFeatures {
    /// Tracing programs may use socket-local storage (`bpf_sk_storage_get`):
    /// Linux 5.11 added it together with `bpf_sk_storage_tracing_allowed`,
    /// the function the kernel's BTF names when the helper is there.
    pub sk_storage_in_tracing: bool,
    /// The verifier takes BPF atomics with fetch (`cmpxchg`, `xchg`; Linux
    /// 5.12): asked by loading a probe program ([`atomics_probe`]).
    pub bpf_atomics: bool,
}

impl KernelFeatures {
    /// The kernel BTF names [`KernelFeatures::of_kernel`] looks up (kept in
    /// the loader's reduced BTF, `crate::kernel_btf`).
    pub const BTF_NAMES: &'static [&'static str] = &[SK_STORAGE_TRACING];

    /// Reads the facts from kernel BTF and the verifier.
    #[must_use]
    pub fn of_kernel(btf: &Btf) -> Self {
        let has_func = |name: &str| btf.id_by_type_name_kind(name, BtfKind::Func).is_ok();
        KernelFeatures {
            sk_storage_in_tracing: has_func(SK_STORAGE_TRACING),
            bpf_atomics: atomics_probe().is_ok(),
        }
    }
}

/// `struct bpf_insn`, little-endian (x86_64, aarch64): code, dst | src << 4,
/// offset, immediate.
const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    let o = off.to_le_bytes();
    let i = imm.to_le_bytes();
    u64::from_le_bytes([code, dst | (src << 4), o[0], o[1], i[0], i[1], i[2], i[3]])
}

/// A socket filter that does `cmpxchg` and `xchg` on a stack slot.
const ATOMICS_PROBE: [u64; 7] = [
    insn(0xb7, 0, 0, 0, 0),      // r0 = 0
    insn(0x7b, 10, 0, -8, 0),    // *(u64 *)(r10 - 8) = r0
    insn(0xb7, 2, 0, 0, 1),      // r2 = 1
    insn(0xdb, 10, 2, -8, 0xf1), // r0 = cmpxchg_64(r10 - 8, r0, r2)
    insn(0xb7, 3, 0, 0, 0),      // r3 = 0
    insn(0xdb, 10, 3, -8, 0xe1), // r3 = xchg_64(r10 - 8, r3)
    insn(0x95, 0, 0, 0, 0),      // exit
];

/// The head of `union bpf_attr` for `BPF_PROG_LOAD`, zero-padded.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    tail: [u64; 12],
}

const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;

/// Loads [`ATOMICS_PROBE`]; `Ok` when the verifier accepts it (the program
/// is closed at once). An old verifier answers `EINVAL`.
///
/// # Errors
/// The kernel's answer.
pub fn atomics_probe() -> std::io::Result<()> {
    let license = c"GPL";
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
        insn_cnt: ATOMICS_PROBE.len() as u32,
        insns: ATOMICS_PROBE.as_ptr() as u64,
        license: license.as_ptr() as u64,
        tail: [0; 12],
    };
    // SAFETY: attr points at live instructions and a NUL-terminated
    // license. The program fd is closed at once.
    unsafe { crate::bpf_sys::bpf_fd(crate::bpf_sys::cmd::PROG_LOAD, &attr) }.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_instructions_encode_as_clang_emits_them() {
        // From `llvm-objdump -d` of clang 14's BPF output.
        assert_eq!(
            ATOMICS_PROBE[3].to_le_bytes(),
            [0xdb, 0x2a, 0xf8, 0xff, 0xf1, 0, 0, 0],
            "r0 = cmpxchg_64(r10 - 8, r0, r2)"
        );
        assert_eq!(
            ATOMICS_PROBE[5].to_le_bytes(),
            [0xdb, 0x3a, 0xf8, 0xff, 0xe1, 0, 0, 0],
            "r3 = xchg_64(r10 - 8, r3)"
        );
        assert_eq!(ATOMICS_PROBE[6].to_le_bytes(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn sk_storage_is_read_from_the_function_the_kernel_btf_names() {
        let mut with = Btf::new();
        let proto = with.add_type(aya_obj::btf::BtfType::FuncProto(
            aya_obj::btf::FuncProto::new(vec![], 0),
        ));
        let name = with.add_string("bpf_sk_storage_tracing_allowed");
        with.add_type(aya_obj::btf::BtfType::Func(aya_obj::btf::Func::new(
            name,
            proto,
            aya_obj::btf::FuncLinkage::Static,
        )));
        assert!(KernelFeatures::of_kernel(&with).sk_storage_in_tracing);
        assert!(!KernelFeatures::of_kernel(&Btf::new()).sk_storage_in_tracing);
    }
}
