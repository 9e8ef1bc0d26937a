//! Kernel facilities read from the running kernel's BTF at load time.
//!
//! Never from version strings: a distribution kernel carries backports, so
//! only what its own BTF says counts. Tracepoint argument lists are decided
//! inside the objects by CO-RE (`ebpf/core_fixes.bpf.h`); what CO-RE cannot
//! see (which helpers a program type may call) is decided here, before the
//! object is loaded.

use aya::Btf;
use aya_obj::btf::BtfKind;

/// What the running kernel offers Tapio's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelFeatures {
    /// Tracing programs may use socket-local storage (`bpf_sk_storage_get`):
    /// Linux 5.11 added it together with `bpf_sk_storage_tracing_allowed`,
    /// the function the kernel's BTF names when the helper is there.
    pub sk_storage_in_tracing: bool,
}

impl KernelFeatures {
    /// Reads the facts from kernel BTF.
    #[must_use]
    pub fn from_btf(btf: &Btf) -> Self {
        let has_func = |name: &str| btf.id_by_type_name_kind(name, BtfKind::Func).is_ok();
        KernelFeatures {
            sk_storage_in_tracing: has_func("bpf_sk_storage_tracing_allowed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(KernelFeatures::from_btf(&with).sk_storage_in_tracing);
        assert!(!KernelFeatures::from_btf(&Btf::new()).sk_storage_in_tracing);
    }
}
