//! The loader's reduced kernel BTF (`tapio_agent::kernel_btf`, issue 15)
//! against the kernel's whole BTF, on the running kernel: every object
//! relocates to the same instructions, every `tp_btf` hook and iterator
//! target has the same id, the kernel features read the same. The matrix runs this on each of
//! its kernels, so the reduction is proven wherever the agent loads.

mod support;

use std::time::Duration;

use aya::Btf;
use aya_obj::Object;
use support::*;
use tapio_agent::kernel_btf::{self, Shape};
use tapio_agent::kernel_features::KernelFeatures;
use tapio_agent::observers::ITERATORS;
use tapio_common::Observer;

/// One instruction: code, dst, src, off, imm.
type Insn = (u8, u8, u8, i16, i32);

/// Every instruction of every function, by function name.
fn relocated(data: &[u8], btf: &Btf) -> Result<Vec<(String, Vec<Insn>)>, String> {
    let mut obj = Object::parse(data).map_err(|e| e.to_string())?;
    obj.relocate_btf(btf).map_err(|e| format!("{e:?}"))?;
    Ok(obj
        .functions
        .values()
        .map(|f| {
            let insns = f
                .instructions
                .iter()
                .map(|i| (i.code, i.dst_reg(), i.src_reg(), i.off, i.imm))
                .collect();
            (f.name.clone(), insns)
        })
        .collect())
}

#[test]
fn reduced_kernel_btf_relocates_every_object_as_the_whole_one_does() {
    let Some(_k) = kernel_test(&[]) else {
        return;
    };
    let dir = ebpf_dir();
    let whole = Btf::from_sys_fs().expect("the kernel's BTF");
    let reduced = kernel_btf::load(&dir, ITERATORS).expect("reduced BTF");
    let Shape::Reduced { kernel, kept, ids } = reduced.shape else {
        panic!("kernel BTF was not reduced: {:?}", reduced.shape);
    };
    eprintln!("kernel BTF: {kept} of {kernel} types kept, {ids} ids");
    assert!(
        kept < kernel / 4,
        "reduced to a fraction: {kept} of {kernel}"
    );

    let mut insns = 0;
    for o in Observer::ALL {
        let path = dir.join(format!("{}.o", o.object_name()));
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let a = relocated(&data, &whole);
        let b = relocated(&data, &reduced.btf);
        let a = a.unwrap_or_else(|e| panic!("{o}: whole BTF: {e}"));
        let b = b.unwrap_or_else(|e| panic!("{o}: reduced BTF: {e}"));
        assert_eq!(a.len(), b.len(), "{o}: functions");
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            assert_eq!(x.len(), y.len(), "{o}/{name}: instruction count");
            for (k, (p, q)) in x.iter().zip(y).enumerate() {
                assert_eq!(p, q, "{o}/{name}: instruction {k} relocated differently");
            }
            insns += x.len();
        }
    }
    assert!(
        insns > 1000,
        "every object's instructions compared: {insns}"
    );

    let needs = kernel_btf::needs(&dir, ITERATORS);
    assert!(
        needs.pinned.contains(&b"btf_trace_inet_sock_set_state"[..]),
        "the network object's hook is among the pinned: {:?}",
        needs.pinned.len()
    );
    assert!(needs.pinned.contains(&b"bpf_iter_bpf_sk_storage_map"[..]));
    for name in &needs.pinned {
        let name = std::str::from_utf8(name).unwrap();
        let kind = if name.starts_with("bpf_iter_") {
            aya_obj::btf::BtfKind::Func
        } else {
            aya_obj::btf::BtfKind::Typedef
        };
        let w = whole.id_by_type_name_kind(name, kind).ok();
        let r = reduced.btf.id_by_type_name_kind(name, kind).ok();
        assert_eq!(w, r, "{name}: the kernel's id");
    }
    assert_eq!(
        KernelFeatures::of_kernel(&whole),
        KernelFeatures::of_kernel(&reduced.btf)
    );
}

#[test]
fn the_agent_loads_on_the_reduced_btf_and_aya_parses_none_of_its_own() {
    let Some(_k) = kernel_test(&[]) else {
        return;
    };
    let agent = Agent::start("btf-reduced", &config_with(|_| {}), &[]);
    agent.wait_log("start-up memory", Duration::from_secs(10));
    assert_eq!(
        agent.log_count("kernel BTF reduced to what the objects need"),
        1
    );
    assert_eq!(agent.log_count("kernel BTF parsed whole"), 0);
    assert_eq!(agent.log_count("parsed the kernel BTF themselves"), 0);
    for o in Observer::ALL {
        if o == Observer::Node {
            continue; // needs a hardware PMU, which these machines lack
        }
        assert!(
            agent
                .log_lines()
                .iter()
                .any(|l| l.contains("observer running") && l.contains(&format!("observer={o}"))),
            "{o} loaded on the reduced BTF"
        );
    }
    let (code, _) = agent.stop();
    assert_eq!(code, 0);
}
