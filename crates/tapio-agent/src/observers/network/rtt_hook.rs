//! Where the network object's RTT samples come from (issue 15, item 3).
//!
//! First choice: `rtt_sockops`, a sock_ops program on the root of the
//! cgroup v2 hierarchy. It asks the kernel for RTT callbacks only on the
//! sockets whose connect Tapio saw, so the node's other sockets never run a
//! Tapio program per segment. Where it cannot run (no cgroup v2 mounted, the
//! mount is not the hierarchy's root — a container's own cgroup namespace —
//! or the kernel refuses the program), `tcp_probe` is attached instead: a
//! tracepoint on every received segment of every socket, which returns
//! early for sockets Tapio holds nothing for; also when the agent's settings
//! name it (`[network] rtt_hook = "tcp_probe"`). Never both: each sample
//! comes from one hook. The `tcp_probe` path is said in the observer's
//! status with why.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use aya::programs::{CgroupAttachMode, SockOps};
use aya::Btf;

use crate::attribution::mounts::Mounts;
use crate::loader::LoadedObject;
use crate::settings::RttHook;
use crate::sinks::error_chain;

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

/// Attaches one RTT hook as `choice` says; `Ok(Some(note))` names the
/// `tcp_probe` path and why it was taken, `Ok(None)` is the sock_ops path.
///
/// # Errors
/// Neither hook could be attached; the text says why for both.
pub fn attach(
    obj: &mut LoadedObject,
    btf: &Btf,
    choice: RttHook,
) -> Result<Option<String>, String> {
    let why = match choice {
        RttHook::TcpProbe => "chosen in the agent's settings (network.rtt_hook)".to_owned(),
        RttHook::Auto => match cgroup2_root(&Mounts::read()).and_then(|root| {
            attach_sockops(obj, &root)?;
            Ok(root)
        }) {
            Ok(root) => {
                tracing::info!(
                    cgroup = %root.display(),
                    "rtt samples from sock_ops on the cgroup v2 root: only sockets seen connecting"
                );
                return Ok(None);
            }
            Err(why) => why,
        },
    };
    tracing::info!(reason = %why, "rtt samples from tcp_probe (every received segment)");
    obj.attach_tracepoint(TCP_PROBE, btf)
        .map_err(|e| error_chain(&e))
        .map(|()| {
            Some(format!(
                "RTT samples from tcp_probe on every received segment: {why}"
            ))
        })
        .map_err(|e| format!("no RTT hook: sock_ops: {why}; tcp_probe: {e}"))
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
