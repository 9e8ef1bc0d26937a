//! Real-kernel tests of attribution: nested cgroups named the way the
//! kubelet names them (systemd and cgroupfs drivers), a refused connect, a
//! SIGSEGV and a memcg OOM kill inside them, and the occurrences carry
//! exactly the pod UID and container ID the path encodes. The layout is
//! made in cgroup v2 and, where the host has one, in the v1 memory
//! hierarchy (as a v1 runtime does), under a `tapio-test-*` top directory.

mod support;

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const REFUSED: &str = "kernel.network.connection_refused";
const OOM: &str = "kernel.container.oom_kill";
const EXIT: &str = "kernel.container.abnormal_exit";

/// (cgroup2 mount, v1 memory mount) from this process's mount table.
fn hierarchies() -> Option<(PathBuf, Option<PathBuf>)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let (mut v2, mut v1) = (None, None);
    for line in text.lines() {
        let Some((l, r)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = l.split(' ').collect();
        let r: Vec<&str> = r.split(' ').collect();
        match r[0] {
            "cgroup2" if v2.is_none() => v2 = Some(PathBuf::from(f[4])),
            "cgroup" if v1.is_none() && r[2].split(',').any(|o| o == "memory") => {
                v1 = Some(PathBuf::from(f[4]));
            }
            _ => {}
        }
    }
    if v2.is_none() {
        let msg = "no cgroup2 mount in /proc/self/mountinfo";
        cannot_run(msg);
    }
    v2.map(|d| (d, v1))
}

/// Which driver's naming the layout follows.
#[derive(Clone, Copy)]
enum Driver {
    Systemd,
    Cgroupfs,
}

/// A kubelet-shaped cgroup made in every hierarchy the agent resolves in;
/// on drop its processes are killed and every level removed.
struct KubeCgroup {
    /// Relative path below each mount, from the `tapio-test-*` top.
    rel: String,
    /// The leaf in each hierarchy (v2 first); the memory one is last.
    leaves: Vec<PathBuf>,
    tops: Vec<PathBuf>,
    pod_uid: String,
    container_id: String,
}

impl KubeCgroup {
    /// `memory_limit`: bytes for the leaf's memcg (v1 if mounted, else v2
    /// with the memory controller enabled down to the leaf).
    fn new(tag: &str, driver: Driver, memory_limit: Option<u64>) -> Option<KubeCgroup> {
        let (v2, v1) = hierarchies()?;
        let pid = std::process::id();
        let seed: u32 = tag
            .bytes()
            .fold(7, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        let pod_uid = format!("{pid:08x}-57b1-4f3e-9a6d-{seed:012x}");
        let container_id = format!("{seed:08x}{pid:08x}").repeat(4);
        let top = format!("tapio-test-kube-{tag}-{pid}");
        let levels: Vec<String> = match driver {
            Driver::Systemd => vec![
                top.clone(),
                "kubepods.slice".into(),
                "kubepods-burstable.slice".into(),
                format!("kubepods-burstable-pod{}.slice", pod_uid.replace('-', "_")),
                format!("cri-containerd-{container_id}.scope"),
            ],
            Driver::Cgroupfs => vec![
                top.clone(),
                "kubepods".into(),
                "besteffort".into(),
                format!("pod{pod_uid}"),
                container_id.clone(),
            ],
        };
        let rel = format!("/{}", levels.join("/"));
        let mut cg = KubeCgroup {
            rel: rel.clone(),
            leaves: Vec::new(),
            tops: Vec::new(),
            pod_uid,
            container_id,
        };
        let mut mounts = vec![v2.clone()];
        mounts.extend(v1.clone());
        for (i, m) in mounts.iter().enumerate() {
            let limit_here = memory_limit.is_some() && (i == mounts.len() - 1);
            let v2_memory = limit_here && v1.is_none();
            let mut dir = m.clone();
            for l in &levels {
                if v2_memory {
                    let ctl = dir.join("cgroup.subtree_control");
                    std::fs::write(&ctl, "+memory")
                        .unwrap_or_else(|e| panic!("enable memory in {}: {e}", ctl.display()));
                }
                dir = dir.join(l);
                let _ = std::fs::create_dir(&dir);
                assert!(dir.is_dir(), "mkdir {}", dir.display());
            }
            cg.tops.push(m.join(&top));
            if let (true, Some(limit)) = (limit_here, memory_limit) {
                let file = if v2_memory {
                    "memory.max"
                } else {
                    "memory.limit_in_bytes"
                };
                std::fs::write(dir.join(file), limit.to_string()).unwrap();
                if v2_memory && dir.join("memory.swap.max").exists() {
                    std::fs::write(dir.join("memory.swap.max"), "0").unwrap();
                }
            }
            cg.leaves.push(dir);
        }
        Some(cg)
    }

    /// A shell line that moves the shell into the leaf of every hierarchy.
    fn join_sh(&self) -> String {
        self.leaves
            .iter()
            .map(|l| format!("echo $$ > {}/cgroup.procs", l.display()))
            .collect::<Vec<_>>()
            .join(" && ")
    }

    /// Forks a child that joins the leaves and connects to the closed
    /// loopback `port`; returns its pid once it saw ECONNREFUSED.
    fn refuse_from(&self, port: u16) -> u64 {
        let procs: Vec<CString> = self
            .leaves
            .iter()
            .map(|l| CString::new(format!("{}/cgroup.procs", l.display())).unwrap())
            .collect();
        // SAFETY: the child makes only raw syscalls (no allocation, no
        // locks) before `_exit`; the parent reaps it.
        unsafe {
            let pid = libc::fork();
            assert!(pid >= 0, "fork");
            if pid == 0 {
                for p in &procs {
                    let fd = libc::open(p.as_ptr(), libc::O_WRONLY);
                    if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        libc::_exit(2);
                    }
                    libc::close(fd);
                }
                let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                let sa = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: port.to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                let rc = libc::connect(
                    s,
                    std::ptr::from_ref(&sa).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                );
                let refused = rc != 0 && *libc::__errno_location() == libc::ECONNREFUSED;
                libc::_exit(if refused { 0 } else { 3 });
            }
            let mut st = 0;
            assert_eq!(libc::waitpid(pid, &mut st, 0), pid);
            assert!(
                libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
                "child status {st}"
            );
            u64::try_from(pid).unwrap()
        }
    }

    /// Removes every level of every hierarchy (processes killed first).
    fn remove(&self) {
        for top in &self.tops {
            remove_tree(top);
        }
    }
}

fn remove_tree(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // SAFETY: SIGKILL to a process of a group this test made.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if std::fs::remove_dir(dir).is_ok() || Instant::now() > end {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for KubeCgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Asserts the attribution facts of `d` are exactly those of `cg`.
fn assert_attributed(d: &Value, cg: &KubeCgroup, qos: &str, runtime: Option<&str>) {
    assert_eq!(d["cgroup_path"], cg.rel.as_str(), "{d:#}");
    assert_eq!(d["pod_uid"], cg.pod_uid.as_str(), "{d:#}");
    assert_eq!(d["container_id"], cg.container_id.as_str(), "{d:#}");
    assert_eq!(d["qos_class"], qos, "{d:#}");
    match runtime {
        Some(r) => assert_eq!(d["container_runtime"], r, "{d:#}"),
        None => assert!(d["container_runtime"].is_null(), "{d:#}"),
    }
}

/// An agent with the metrics endpoint on a free loopback port.
fn agent(tag: &str) -> (Agent, u16) {
    let port = free_port();
    let toml = format!("[metrics]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n");
    (
        Agent::start_toml(tag, &config_with(|_| {}), &toml, &[]),
        port,
    )
}

/// The value of one counter sample (`name{labels}`) from a scrape.
fn counter(port: u16, sample: &str) -> u64 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {sample} in {out}"))
}

fn refused_at(all: &[Value], pid: u64, port: u16) -> Vec<&Value> {
    of_type(all, REFUSED, move |d| {
        d["pid"] == pid && d["dst_port"] == port
    })
}

const HIT: &str = "tapio_cgroup_lookups_total{result=\"hit\"}";
const MISS: &str = "tapio_cgroup_lookups_total{result=\"miss\"}";
const DELETED: &str = "tapio_cgroup_resolutions_total{result=\"deleted\"}";
const RESOLVED: &str = "tapio_cgroup_resolutions_total{result=\"resolved\"}";

#[test]
fn kubelet_refused_connect_in_a_systemd_driver_pod_carries_its_pod_uid_and_container_id() {
    let Some(_k) = kernel_test(&["sh"]) else {
        return;
    };
    let Some(cg) = KubeCgroup::new("connect", Driver::Systemd, None) else {
        return;
    };
    // Made before the agent starts: its first walk knows the cgroup.
    let (agent, metrics) = agent("kube-connect");
    let port = closed_port();
    let pid = cg.refuse_from(port);
    let all = agent.wait_for(Duration::from_secs(10), |all| {
        !refused_at(all, pid, port).is_empty()
    });
    let got = refused_at(&all, pid, port);
    assert_eq!(got.len(), 1, "{got:#?}");
    println!("OCCURRENCE {}", serde_json::to_string(got[0]).unwrap());
    assert_attributed(&got[0]["data"], &cg, "Burstable", Some("containerd"));
    let (hit, miss) = (counter(metrics, HIT), counter(metrics, MISS));
    println!("COUNTERS hit={hit} miss={miss}");
    assert!(hit >= 1, "hit={hit}");
    assert_eq!(agent.stop().0, 0);
}

#[test]
fn kubelet_cgroup_made_after_start_misses_once_then_later_occurrences_carry_it() {
    let Some(_k) = kernel_test(&["sh"]) else {
        return;
    };
    let (agent, metrics) = agent("kube-late");
    let Some(cg) = KubeCgroup::new("late", Driver::Cgroupfs, None) else {
        return;
    };
    let (a, b) = (closed_port(), closed_port());
    let first = cg.refuse_from(a);
    let all = agent.wait_for(Duration::from_secs(10), |all| {
        !refused_at(all, first, a).is_empty()
    });
    let got = refused_at(&all, first, a);
    assert_eq!(got.len(), 1);
    assert!(
        got[0]["data"]["cgroup_path"].is_null(),
        "first: id only {:#}",
        got[0]
    );
    assert!(got[0]["data"]["cgroup_id"].as_u64().unwrap() > 1);
    // The resolver answers within a walk interval; later facts carry it.
    let end = Instant::now() + Duration::from_secs(5);
    while counter(metrics, RESOLVED) == 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = cg.refuse_from(b);
    let all = agent.wait_for(Duration::from_secs(10), |all| {
        !refused_at(all, second, b).is_empty()
    });
    let got = refused_at(&all, second, b);
    println!("OCCURRENCE {}", serde_json::to_string(got[0]).unwrap());
    assert_attributed(&got[0]["data"], &cg, "BestEffort", None);
    println!(
        "COUNTERS hit={} miss={} resolved={}",
        counter(metrics, HIT),
        counter(metrics, MISS),
        counter(metrics, RESOLVED)
    );
    assert!(counter(metrics, MISS) >= 1);
    assert!(counter(metrics, RESOLVED) >= 1);
    assert_eq!(agent.stop().0, 0);
}

#[test]
fn kubelet_cgroup_deleted_before_resolution_is_counted_and_keeps_the_id_only() {
    let Some(_k) = kernel_test(&["sh"]) else {
        return;
    };
    let (agent, metrics) = agent("kube-deleted");
    // The record waits in the ring for the next drain tick (50 ms) while the
    // cgroup is removed; a tick falling inside that window resolves it
    // instead, so up to 5 tries. Never a wrong path either way.
    let mut deleted = false;
    for i in 0..5 {
        let Some(cg) = KubeCgroup::new(&format!("gone{i}"), Driver::Systemd, None) else {
            return;
        };
        let port = closed_port();
        let pid = cg.refuse_from(port);
        cg.remove();
        let all = agent.wait_for(Duration::from_secs(10), |all| {
            !refused_at(all, pid, port).is_empty()
        });
        let d = &refused_at(&all, pid, port)[0]["data"];
        if d["cgroup_path"].is_null() {
            let end = Instant::now() + Duration::from_secs(5);
            while counter(metrics, DELETED) == 0 && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
            println!("OCCURRENCE {d}");
            deleted = counter(metrics, DELETED) >= 1;
            break;
        }
        assert_attributed(d, &cg, "Burstable", Some("containerd"));
    }
    println!("COUNTERS deleted={}", counter(metrics, DELETED));
    assert!(deleted, "a removed cgroup is counted as deleted");
    assert_eq!(agent.stop().0, 0);
}

fn sh(script: &str) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .spawn()
        .expect("spawn sh")
}

#[test]
fn kubelet_sigsegv_in_a_cgroupfs_driver_pod_carries_its_pod_uid_and_container_id() {
    let Some(_k) = kernel_test(&["sh"]) else {
        return;
    };
    let Some(cg) = KubeCgroup::new("segv", Driver::Cgroupfs, None) else {
        return;
    };
    let (agent, _) = agent("kube-segv");
    let mut p = sh(&format!("{}; ulimit -c 0; kill -SEGV $$", cg.join_sh()));
    let st = p.wait().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGSEGV), "{st:?}");
    let pid = u64::from(p.id());
    let all = agent.wait_for(Duration::from_secs(10), |all| {
        !of_type(all, EXIT, |d| d["pid"] == pid).is_empty()
    });
    let got = of_type(&all, EXIT, |d| d["pid"] == pid);
    assert_eq!(got.len(), 1, "{got:#?}");
    println!("OCCURRENCE {}", serde_json::to_string(got[0]).unwrap());
    assert_eq!(got[0]["data"]["signal"], 11);
    assert_attributed(&got[0]["data"], &cg, "BestEffort", None);
    assert_eq!(agent.stop().0, 0);
}

#[test]
fn kubelet_memcg_oom_in_a_systemd_driver_pod_carries_its_pod_uid_and_container_id() {
    let Some(_k) = kernel_test(&["sh", "tail"]) else {
        return;
    };
    let Some(cg) = KubeCgroup::new("oom", Driver::Systemd, Some(64 << 20)) else {
        return;
    };
    let (agent, _) = agent("kube-oom");
    let mut hog = sh(&format!("{} && exec tail /dev/zero", cg.join_sh()));
    let end = Instant::now() + Duration::from_secs(60);
    let st = loop {
        if let Some(st) = hog.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "hog still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}");
    let pid = u64::from(hog.id());
    let all = agent.wait_for(Duration::from_secs(10), |all| {
        !of_type(all, OOM, |d| d["pid"] == pid).is_empty()
    });
    let got = of_type(&all, OOM, |d| d["pid"] == pid);
    assert_eq!(got.len(), 1, "{got:#?}");
    println!("OCCURRENCE {}", serde_json::to_string(got[0]).unwrap());
    assert_eq!(got[0]["data"]["memory_limit_bytes"], 64u64 << 20);
    assert_attributed(&got[0]["data"], &cg, "Burstable", Some("containerd"));
    assert_eq!(agent.stop().0, 0);
}
