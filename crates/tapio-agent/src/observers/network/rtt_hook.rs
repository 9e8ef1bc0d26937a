//! Where the network object's RTT samples come from (issue 15, item 3).
//!
//! First choice: `rtt_iter`, an iterator over the `sockets` storage map
//! (the owners of the connections Tapio saw connect), which the drain runs
//! once per sample interval. No segment of any socket runs a Tapio program,
//! and an idle connection costs one visit per interval. It needs owners in
//! socket storage, i.e. a kernel whose tracing programs may use it (5.11+).
//!
//! Second: `rtt_sockops`, a sock_ops program on the root of the cgroup v2
//! hierarchy. It asks the kernel for RTT callbacks only on the sockets whose
//! connect Tapio saw, so the node's other sockets never run a Tapio program
//! per segment (but every TCP socket runs it at its lifecycle callbacks).
//!
//! Last: where neither can run (no cgroup v2 mounted, the mount is not the
//! hierarchy's root — a container's own cgroup namespace — or the kernel
//! refuses the program), `tcp_probe` is attached instead: a tracepoint on
//! every received segment of every socket, which returns early for sockets
//! Tapio holds nothing for.
//!
//! The agent's settings can start the order lower (`[network] rtt_hook =
//! "sock_ops"` or `"tcp_probe"`). Never two: each sample comes from one
//! hook. The path taken is logged, and a fallback is said in the observer's
//! status with why.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use aya::programs::{CgroupAttachMode, Iter, SockOps};
use aya::Btf;

use crate::attribution::mounts::Mounts;
use crate::kernel_features::KernelFeatures;
use crate::loader::{IterPass, LoadedObject};
use crate::settings::RttHook;
use crate::sinks::error_chain;

/// The iterator program of `network_monitor.o`.
pub const ITER: &str = "rtt_iter";
/// What [`ITER`] iterates (`iter/<target>`; the kernel's BTF names its
/// attach point `bpf_iter_<target>`).
pub const ITER_TARGET: &str = "bpf_sk_storage_map";
/// The map [`ITER`] iterates over.
const OWNERS: &str = "sockets";
/// The sock_ops program of `network_monitor.o`.
pub const SOCKOPS: &str = "rtt_sockops";
/// The per-segment tracepoint program of `network_monitor.o`.
pub const TCP_PROBE: &str = "tcp_probe";

/// The cgroup v2 root (kernfs inode 1, the root cgroup's id) this mount
/// namespace shows, or why there is none.
fn cgroup2_root(mounts: &Mounts) -> Result<PathBuf, String> {
    let Some(m) = &mounts.v2 else {
        return Err("no cgroup v2 hierarchy is mounted".to_owned());
    };
    let ino = std::fs::metadata(&m.dir)
        .map_err(|e| format!("{}: {e}", m.dir.display()))?
        .ino();
    if ino != 1 {
        return Err(format!(
            "{} is not the cgroup v2 root (cgroup id {ino}: a cgroup namespace or a bind of a \
             subtree)",
            m.dir.display()
        ));
    }
    Ok(m.dir.clone())
}

/// Loads `rtt_sockops` and attaches it to `root` by a BPF link, which the
/// kernel always runs alongside other programs there (a link is multi-attach
/// by nature, and the kernel wants no attach flags for it: aya's `Single`
/// mode passes none). The link dies with the agent.
fn attach_sockops(obj: &mut LoadedObject, root: &std::path::Path) -> Result<(), String> {
    let cgroup = std::fs::File::open(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let prog: &mut SockOps = obj
        .ebpf_mut()
        .program_mut(SOCKOPS)
        .ok_or_else(|| format!("`{SOCKOPS}` missing from the object"))?
        .try_into()
        .map_err(|e| error_chain(&e))?;
    prog.load()
        .map_err(|e| format!("`{SOCKOPS}` load: {}", error_chain(&e)))?;
    if let Err(e) = prog.attach(cgroup.as_fd(), CgroupAttachMode::Single) {
        let why = format!(
            "`{SOCKOPS}` link to {}: {}",
            root.display(),
            error_chain(&e)
        );
        let _ = prog.unload();
        return Err(why);
    }
    obj.log_attached(SOCKOPS);
    Ok(())
}

/// Loads `rtt_iter`, links it to the owners' storage map and runs one pass
/// (so a kernel that refuses to run it is known now, not at the first
/// interval); the pass goes to the object's drain.
fn attach_iter(obj: &mut LoadedObject, btf: &Btf, features: KernelFeatures) -> Result<(), String> {
    if !features.sk_storage_in_tracing {
        return Err(
            "owners are kept in a table on this kernel (tracing programs may not use socket \
             storage), which an iterator cannot read safely"
                .to_owned(),
        );
    }
    let prog: &mut Iter = obj
        .ebpf_mut()
        .program_mut(ITER)
        .ok_or_else(|| format!("`{ITER}` missing from the object"))?
        .try_into()
        .map_err(|e| error_chain(&e))?;
    prog.load(ITER_TARGET, btf)
        .map_err(|e| format!("`{ITER}` load: {}", error_chain(&e)))?;
    let prog_fd = prog
        .fd()
        .and_then(|fd| fd.try_clone().map_err(Into::into))
        .map_err(|e| format!("`{ITER}` fd: {}", error_chain(&e)))?;
    let link = match obj.ebpf_mut().map(OWNERS) {
        Some(aya::maps::Map::SkStorage(m)) => {
            crate::bpf_sys::link_map_iter(prog_fd.as_fd(), m.fd().as_fd())
                .map_err(|e| format!("`{ITER}` link to `{OWNERS}`: {e}"))
        }
        _ => Err(format!("`{OWNERS}` is not a socket storage map")),
    };
    let pass = link.map(IterPass::new).and_then(|p| {
        p.run().map_err(|e| format!("`{ITER}` pass: {e}"))?;
        Ok(p)
    });
    match pass {
        Ok(p) => {
            obj.set_pass(p);
            obj.log_attached(ITER);
            Ok(())
        }
        Err(why) => {
            if let Some(Ok(p)) = obj.ebpf_mut().program_mut(ITER).map(<&mut Iter>::try_from) {
                let _ = p.unload();
            }
            Err(why)
        }
    }
}

/// Attaches one RTT hook as `choice` says, first choice first;
/// `Ok(Some(note))` names a fallback and why it was taken, `Ok(None)` is
/// the first choice (or the one the settings named).
///
/// # Errors
/// No hook could be attached; the text says why for each.
pub fn attach(
    obj: &mut LoadedObject,
    btf: &Btf,
    features: KernelFeatures,
    choice: RttHook,
) -> Result<Option<String>, String> {
    let mut whys = Vec::new();
    if choice == RttHook::Auto {
        match attach_iter(obj, btf, features) {
            Ok(()) => {
                tracing::info!(
                    "rtt samples from an iterator over the owned sockets, once per sample \
                     interval: no per-segment program"
                );
                return Ok(None);
            }
            Err(why) => whys.push(format!("iterator: {why}")),
        }
    }
    if choice != RttHook::TcpProbe {
        match cgroup2_root(&Mounts::read()).and_then(|root| {
            attach_sockops(obj, &root)?;
            Ok(root)
        }) {
            Ok(root) => {
                tracing::info!(
                    cgroup = %root.display(),
                    "rtt samples from sock_ops on the cgroup v2 root: only sockets seen connecting"
                );
                return Ok((!whys.is_empty()).then(|| {
                    format!(
                        "RTT samples from sock_ops on the cgroup v2 root: {}",
                        whys.join("; ")
                    )
                }));
            }
            Err(why) => whys.push(format!("sock_ops: {why}")),
        }
    } else {
        whys.push("chosen in the agent's settings (network.rtt_hook)".to_owned());
    }
    let why = whys.join("; ");
    tracing::info!(reason = %why, "rtt samples from tcp_probe (every received segment)");
    obj.attach_tracepoint(TCP_PROBE, btf)
        .map_err(|e| error_chain(&e))
        .map(|()| {
            Some(format!(
                "RTT samples from tcp_probe on every received segment: {why}"
            ))
        })
        .map_err(|e| format!("no RTT hook: {why}; tcp_probe: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cgroup2_mount_is_named() {
        let e = cgroup2_root(&Mounts::default()).unwrap_err();
        assert_eq!(e, "no cgroup v2 hierarchy is mounted");
    }

    #[test]
    fn a_directory_that_is_not_the_root_cgroup_is_refused_with_its_id() {
        // A fresh directory: never inode 1 (a tmpfs root can be).
        let dir = std::env::temp_dir().join(format!("tapio-rtt-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ino = std::fs::metadata(&dir).unwrap().ino();
        let mounts = Mounts::parse(&format!(
            "41 31 0:38 / {} rw,relatime - cgroup2 cgroup2 rw\n",
            dir.display()
        ));
        let e = cgroup2_root(&mounts).unwrap_err();
        let _ = std::fs::remove_dir(&dir);
        assert!(
            e.contains("is not the cgroup v2 root") && e.contains(&format!("cgroup id {ino}")),
            "{e}"
        );
    }
}
