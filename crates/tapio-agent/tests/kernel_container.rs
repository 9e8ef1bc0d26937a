//! Real-kernel tests of the container observer: a real OOM kill in a memory
//! cgroup (the v1 memory controller where the host has one, else cgroup v2
//! with `memory.max`) and real signal deaths inside such a group, with the
//! exact evidence the agent printed.

mod support;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const OOM: &str = "kernel.container.oom_kill";
const EXIT: &str = "kernel.container.abnormal_exit";
const MEMCG_V1: &str = "/sys/fs/cgroup/memory";
const CGROUP2: &str = "/sys/fs/cgroup";

/// Which hierarchy carries the memory controller here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hierarchy {
    V1,
    V2,
}

impl Hierarchy {
    /// The memory controller's hierarchy; fails under CI, skips elsewhere,
    /// when there is none.
    fn detect() -> Option<Hierarchy> {
        if Path::new(MEMCG_V1).join("memory.limit_in_bytes").exists() {
            return Some(Hierarchy::V1);
        }
        let controllers = std::fs::read_to_string(Path::new(CGROUP2).join("cgroup.controllers"))
            .unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "memory") {
            return Some(Hierarchy::V2);
        }
        let msg = format!(
            "no memory controller: neither {MEMCG_V1} (v1) nor `memory` in {CGROUP2}/cgroup.controllers (v2)"
        );
        cannot_run(&msg);
        None
    }

    fn label(self) -> &'static str {
        match self {
            Hierarchy::V1 => "v1",
            Hierarchy::V2 => "v2",
        }
    }
}

/// A memory cgroup limited to `limit` bytes; on drop its processes are
/// killed and the group removed.
struct Memcg {
    path: PathBuf,
}

impl Memcg {
    fn new(hierarchy: Hierarchy, tag: &str, limit: u64) -> Memcg {
        let parent = match hierarchy {
            Hierarchy::V1 => MEMCG_V1,
            Hierarchy::V2 => {
                // Children of the root get the memory controller.
                let ctl = Path::new(CGROUP2).join("cgroup.subtree_control");
                std::fs::write(&ctl, "+memory")
                    .unwrap_or_else(|e| panic!("enable memory in {}: {e}", ctl.display()));
                CGROUP2
            }
        };
        let path = Path::new(parent).join(format!("tapio-test-{tag}-{}", std::process::id()));
        let cg = Memcg { path };
        cg.cleanup();
        std::fs::create_dir(&cg.path).unwrap_or_else(|e| panic!("mkdir {:?}: {e}", cg.path));
        let (file, value) = match hierarchy {
            Hierarchy::V1 => ("memory.limit_in_bytes", limit.to_string()),
            Hierarchy::V2 => ("memory.max", limit.to_string()),
        };
        std::fs::write(cg.path.join(file), value).unwrap();
        if hierarchy == Hierarchy::V2 && cg.path.join("memory.swap.max").exists() {
            std::fs::write(cg.path.join("memory.swap.max"), "0").unwrap();
        }
        cg
    }

    /// The memcg id the kernel reports: the group directory's inode (v1:
    /// kernfs node of the memory hierarchy; v2: the cgroup id).
    fn inode(&self) -> u64 {
        std::fs::metadata(&self.path).unwrap().ino()
    }

    /// A shell line that moves the shell running it into this group.
    fn join(&self) -> String {
        format!("echo $$ > {}/cgroup.procs", self.path.display())
    }

    fn cleanup(&self) {
        if !self.path.exists() {
            return;
        }
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let procs = std::fs::read_to_string(self.path.join("cgroup.procs")).unwrap_or_default();
            for pid in procs
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                // SAFETY: SIGKILL to a process of the group this test made.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            if std::fs::remove_dir(&self.path).is_ok() || Instant::now() > end {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Memcg {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// A child process killed and reaped on drop if the test did not.
struct Proc(Child);

impl Proc {
    fn sh(script: &str) -> Proc {
        Proc(
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .spawn()
                .expect("spawn sh"),
        )
    }

    fn pid(&self) -> u64 {
        u64::from(self.0.id())
    }

    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < end,
                "pid {} still running after {timeout:?}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn of_pid<'a>(all: &'a [Value], kind: &str, pid: u64) -> Vec<&'a Value> {
    of_type(all, kind, move |d| d["pid"] == pid)
}

#[test]
fn oom_victim_in_a_64mib_memcg_is_one_oom_kill_and_never_an_abnormal_exit() {
    let Some(_k) = kernel_test(&["sh", "tail"]) else {
        return;
    };
    let Some(hierarchy) = Hierarchy::detect() else {
        return;
    };
    const LIMIT: u64 = 64 << 20;
    let cg = Memcg::new(hierarchy, "oom", LIMIT);
    let agent = Agent::start("oom", &config_with(|_| {}), &[]);
    // `tail` buffers /dev/zero looking for a newline: it grows until the
    // memcg's OOM killer picks it (the only task in the group).
    let mut hog = Proc::sh(&format!("{} && exec tail /dev/zero", cg.join()));
    let pid = hog.pid();
    let st = hog.wait(Duration::from_secs(60));
    assert_eq!(
        st.signal(),
        Some(libc::SIGKILL),
        "the OOM killer's SIGKILL: {st:?}"
    );
    agent.wait_for(Duration::from_secs(10), |all| {
        !of_pid(all, OOM, pid).is_empty()
    });
    // Room for a wrong duplicate or a wrong abnormal_exit to show up.
    std::thread::sleep(Duration::from_millis(500));
    let (code, all) = agent.stop();
    assert_eq!(code, 0);

    let oom = of_pid(&all, OOM, pid);
    assert_eq!(oom.len(), 1, "exactly one oom_kill: {oom:#?}");
    assert_eq!(count_sum(&oom), 1);
    let d = &oom[0]["data"];
    assert_eq!(d["tid"], pid);
    assert_eq!(d["comm"], "tail");
    assert_eq!(
        d["cgroup_id"],
        cg.inode(),
        "memcg id = the memcg directory's inode"
    );
    assert_eq!(d["memcg_hierarchy"], hierarchy.label());
    assert_eq!(d["memory_limit_bytes"], LIMIT);
    assert_eq!(d["memory_limit_unlimited"], false);
    let usage = d["memory_usage_bytes"].as_u64().unwrap();
    assert!(
        usage > LIMIT / 2 && usage <= LIMIT,
        "usage {usage} at the OOM"
    );
    assert_eq!(d["signal"], 9);
    assert_eq!(d["config_generation"], 1);
    assert_eq!(oom[0]["severity"], "critical");
    assert_eq!(oom[0]["error"]["code"], "OOM_KILL");
    assert!(
        of_pid(&all, EXIT, pid).is_empty(),
        "an OOM victim is never also an abnormal_exit"
    );
}

#[test]
fn fatal_signals_in_a_limited_memcg_are_one_abnormal_exit_each_and_clean_exits_nothing() {
    let Some(_k) = kernel_test(&["sh"]) else {
        return;
    };
    let Some(hierarchy) = Hierarchy::detect() else {
        return;
    };
    // Every death happens in a memory.max-limited group (a container).
    let cg = Memcg::new(hierarchy, "signals", 256 << 20);
    let agent = Agent::start("signals", &config_with(|_| {}), &[]);
    let mut killed = Vec::new();
    for (name, sig) in [("SEGV", 11), ("ABRT", 6), ("KILL", 9)] {
        let mut p = Proc::sh(&format!("{}; ulimit -c 0; kill -{name} $$", cg.join()));
        let st = p.wait(Duration::from_secs(10));
        assert_eq!(st.signal(), Some(sig), "sh died by SIG{name}: {st:?}");
        killed.push((p.pid(), sig, format!("SIG{name}")));
    }
    let mut clean = Vec::new();
    for code in [0, 1] {
        let mut p = Proc::sh(&format!("{}; exit {code}", cg.join()));
        assert_eq!(p.wait(Duration::from_secs(10)).code(), Some(code));
        clean.push(p.pid());
    }
    // A last death the test waits for: records leave the ring in order,
    // so anything the clean exits produced is printed before it.
    let mut last = Proc::sh(&format!("{}; ulimit -c 0; kill -SEGV $$", cg.join()));
    last.wait(Duration::from_secs(10));
    let last_pid = last.pid();
    agent.wait_for(Duration::from_secs(10), |all| {
        !of_pid(all, EXIT, last_pid).is_empty()
    });
    let (code, all) = agent.stop();
    assert_eq!(code, 0);

    let memcg = cg.inode();
    for (pid, sig, name) in &killed {
        let got = of_pid(&all, EXIT, *pid);
        assert_eq!(
            got.len(),
            1,
            "one abnormal_exit for pid {pid} ({name}): {got:#?}"
        );
        let d = &got[0]["data"];
        assert_eq!(d["signal"], *sig);
        assert_eq!(d["signal_name"], name.as_str());
        assert_eq!(d["exit_code"], 128 + sig);
        assert_eq!(d["core_dumped"], false);
        assert_eq!(d["tid"], *pid);
        assert_eq!(d["comm"], "sh");
        assert_eq!(
            d["cgroup_id"], memcg,
            "the memcg the process died in ({hierarchy:?})"
        );
        if hierarchy == Hierarchy::V2 {
            assert_eq!(d["cgroup2_id"], memcg, "on v2 the memcg is the cgroup");
        }
        assert_eq!(d["config_generation"], 1);
        assert!(of_pid(&all, OOM, *pid).is_empty());
    }
    for pid in clean {
        assert!(
            of_pid(&all, EXIT, pid).is_empty(),
            "exit 0 / exit 1 are not abnormal by default (pid {pid})"
        );
    }
}

#[test]
fn configured_exit_code_is_abnormal_and_others_are_not() {
    let Some(_k) = kernel_test(&["sh"]) else {
        return;
    };
    let cfg = config_with(|c| c["container"]["exit_codes"] = json!([3]));
    let agent = Agent::start("exitcodes", &cfg, &[]);
    let mut three = Proc::sh("exit 3");
    assert_eq!(three.wait(Duration::from_secs(10)).code(), Some(3));
    let mut one = Proc::sh("exit 1");
    assert_eq!(one.wait(Duration::from_secs(10)).code(), Some(1));
    let mut last = Proc::sh("exit 3");
    last.wait(Duration::from_secs(10));
    let last_pid = last.pid();
    agent.wait_for(Duration::from_secs(10), |all| {
        !of_pid(all, EXIT, last_pid).is_empty()
    });
    let (code, all) = agent.stop();
    assert_eq!(code, 0);
    let got = of_pid(&all, EXIT, three.pid());
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["data"]["exit_code"], 3);
    assert!(got[0]["data"]["signal"].is_null());
    assert!(of_pid(&all, EXIT, one.pid()).is_empty());
}

/// The `thread_group` example binary (built by `cargo test` beside the test
/// binaries; the kernel-matrix VMs carry it at the same path).
fn thread_group_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples/thread_group");
    if !bin.exists() {
        sh("cargo build -q -p tapio-agent --example thread_group");
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

/// Starts `thread_group threads mode` and waits until all its threads run.
fn thread_group(threads: usize, mode: &str) -> Proc {
    use std::io::BufRead as _;
    let mut child = Command::new(thread_group_bin())
        .arg(threads.to_string())
        .arg(mode)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn thread_group");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    Proc(child)
}

/// One process death was reported once per thread that saw the group's
/// live count at zero (threads of a group kill exit together).
#[test]
fn a_16_thread_process_is_one_abnormal_exit_killed_or_crashing_in_one_thread() {
    let Some(_k) = kernel_test(&[]) else {
        return;
    };
    let agent = Agent::start("threads", &config_with(|_| {}), &[]);
    let mut killed = thread_group(16, "wait");
    // SAFETY: SIGKILL to the child this test started.
    unsafe { libc::kill(i32::try_from(killed.pid()).unwrap(), libc::SIGKILL) };
    assert_eq!(
        killed.wait(Duration::from_secs(10)).signal(),
        Some(libc::SIGKILL)
    );
    let mut crashed = thread_group(16, "segv");
    assert_eq!(
        crashed.wait(Duration::from_secs(10)).signal(),
        Some(libc::SIGSEGV)
    );
    let pids = [(killed.pid(), 9), (crashed.pid(), 11)];
    agent.wait_for(Duration::from_secs(10), |all| {
        pids.iter().all(|(p, _)| !of_pid(all, EXIT, *p).is_empty())
    });
    // Room for a duplicate to show up.
    std::thread::sleep(Duration::from_millis(700));
    let (code, all) = agent.stop();
    assert_eq!(code, 0);
    for (pid, sig) in pids {
        let got = of_pid(&all, EXIT, pid);
        assert_eq!(got.len(), 1, "one abnormal_exit for pid {pid}: {got:#?}");
        assert_eq!(count_sum(&got), 1, "one death, count 1: {got:#?}");
        let d = &got[0]["data"];
        assert_eq!(d["signal"], sig);
        assert_eq!(d["comm"], "thread_group");
        assert!(of_pid(&all, OOM, pid).is_empty());
    }
}
