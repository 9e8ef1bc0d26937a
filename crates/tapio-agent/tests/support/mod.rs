//! Real-kernel test support: run the real agent binary as root against the
//! real eBPF objects, provoke faults in network namespaces the test owns,
//! and read back the occurrences it printed.
//!
//! Under `CI=true` a missing privilege or tool is a failure, never a skip.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Serialises the kernel tests of one binary: each runs its own agent.
static KERNEL: Mutex<()> = Mutex::new(());
static BUILD: Once = Once::new();

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

#[path = "../skip/mod.rs"]
mod skip;
pub use skip::cannot_run;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Takes the kernel-test lock, or returns None (skip, outside CI only)
/// when this host cannot run real-kernel tests.
pub fn kernel_test(needs: &[&str]) -> Option<MutexGuard<'static, ()>> {
    let mut missing: Vec<String> = Vec::new();
    if !is_root() {
        missing.push("root".into());
    }
    for tool in needs {
        if Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .stdout(Stdio::null())
            .status()
            .map_or(true, |s| !s.success())
        {
            missing.push(format!("tool `{tool}`"));
        }
    }
    if !missing.is_empty() {
        cannot_run(&format!("real-kernel test needs {}", missing.join(", ")));
        return None;
    }
    let guard = KERNEL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    BUILD.call_once(|| {
        // Objects built elsewhere (the kernel-matrix VMs carry them prebuilt).
        if std::env::var_os("TAPIO_EBPF_DIR").is_some() {
            return;
        }
        let st = Command::new(workspace().join("scripts/build-ebpf.sh"))
            .arg(ebpf_dir())
            .status()
            .expect("run build-ebpf.sh");
        assert!(st.success(), "scripts/build-ebpf.sh failed");
    });
    Some(guard)
}

/// `d` stretched by `TAPIO_TEST_TIME_SCALE` (default 1): deadlines for
/// things to happen, never latencies a test asserts. The kernel-matrix VMs
/// (emulated CPUs on a shared host) set it.
pub fn scaled(d: Duration) -> Duration {
    let k = std::env::var("TAPIO_TEST_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    d * k
}

pub fn ebpf_dir() -> PathBuf {
    std::env::var_os("TAPIO_EBPF_DIR").map_or_else(|| workspace().join("target/bpf"), PathBuf::from)
}

pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tapio-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The built-in default with edits, as the JSON the agent reads.
pub fn config_with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = serde_json::to_value(tapio_wire::CompiledConfig::production_default()).unwrap();
    edit(&mut v);
    v
}

/// A running agent printing JSON lines on stdout.
pub struct Agent {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    log: Arc<Mutex<Vec<String>>>,
    pub dir: PathBuf,
}

impl Agent {
    /// Starts the agent with `config` (a CompiledConfig JSON) and extra
    /// args; waits until it reports the config applied.
    pub fn start(tag: &str, config: &Value, extra: &[&str]) -> Agent {
        Agent::launch(tag, config, "", extra, &[])
    }

    /// As [`Agent::start`], with extra environment variables for the agent.
    pub fn start_with_env(
        tag: &str,
        config: &Value,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        Agent::launch(tag, config, "", extra, env)
    }

    fn launch(
        tag: &str,
        config: &Value,
        toml_extra: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        let dir = tempdir(tag);
        let cfg_path = dir.join("compiled.json");
        std::fs::write(&cfg_path, serde_json::to_vec(config).unwrap()).unwrap();
        let toml_path = dir.join("tapio.toml");
        std::fs::write(
            &toml_path,
            format!(
                "compiled_config = {:?}\n{toml_extra}\n[drain]\ntick_ms = 50\n",
                cfg_path.display().to_string()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapio-agent"));
        cmd.arg("--config")
            .arg(&toml_path)
            .arg("--ebpf-dir")
            .arg(ebpf_dir())
            .arg("--sink")
            .arg("stdout");
        cmd.args(extra).envs(env.iter().copied());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tapio-agent");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let l = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("agent printed non-JSON {line:?}: {e}"));
                l.lock().unwrap().push(v);
            }
        });
        let err = child.stderr.take().unwrap();
        let g = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("agent: {line}");
                g.lock().unwrap().push(line);
            }
        });
        let agent = Agent {
            child,
            lines,
            log,
            dir,
        };
        // Loading every observer takes 10-25 s in the kernel-matrix VMs (TCG)
        // when the host is busy: 20 s failed there (kernel_kubelet, 2026-11-30).
        agent.wait_log("config applied", Duration::from_secs(60));
        agent
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let timeout = scaled(timeout);
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "agent did not log {needle:?} within {timeout:?}; log: {:#?}",
            self.log.lock().unwrap()
        );
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Occurrences printed so far.
    pub fn occurrences(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until `pred` holds on the occurrences printed so far.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let end = Instant::now() + scaled(timeout);
        loop {
            let now = self.occurrences();
            if pred(&now) || Instant::now() > end {
                return now;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, wait for exit; returns the exit code and every occurrence.
    pub fn stop(mut self) -> (i32, Vec<Value>) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(i32::try_from(self.child.id()).unwrap(), libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(15);
        let code = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < end,
                "agent did not exit within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(&self.dir);
        (code, self.occurrences())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Occurrences of `kind` matching `pred`.
pub fn of_type<'a>(
    all: &'a [Value],
    kind: &str,
    pred: impl Fn(&Value) -> bool + 'a,
) -> Vec<&'a Value> {
    all.iter()
        .filter(|o| o["type"] == kind && pred(&o["data"]))
        .collect()
}

/// Sum of `data.count` (1 when absent).
pub fn count_sum(v: &[&Value]) -> u64 {
    v.iter()
        .map(|o| o["data"]["count"].as_u64().unwrap_or(1))
        .sum()
}

pub fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn sh_quiet(cmd: &str) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Two network namespaces joined by a veth pair, removed on drop:
/// `<tag>a` (10.77.N.1) and `<tag>b` (10.77.N.2). Traffic never leaves them.
pub struct NetnsPair {
    pub a: String,
    pub b: String,
    pub veth_a: String,
    pub veth_b: String,
    pub addr_a: String,
    pub addr_b: String,
    /// IPv6 addresses of the same ends (`fd77:<N>::1` / `::2`).
    pub addr6_a: String,
    pub addr6_b: String,
}

impl NetnsPair {
    pub fn new(tag: &str, subnet: u8) -> NetnsPair {
        let p = NetnsPair {
            a: format!("tp{tag}a"),
            b: format!("tp{tag}b"),
            veth_a: format!("v{tag}a"),
            veth_b: format!("v{tag}b"),
            addr_a: format!("10.77.{subnet}.1"),
            addr_b: format!("10.77.{subnet}.2"),
            addr6_a: format!("fd77:{subnet}::1"),
            addr6_b: format!("fd77:{subnet}::2"),
        };
        p.cleanup();
        sh(&format!("ip netns add {}", p.a));
        sh(&format!("ip netns add {}", p.b));
        sh(&format!(
            "ip link add {} netns {} type veth peer name {} netns {}",
            p.veth_a, p.a, p.veth_b, p.b
        ));
        sh(&format!(
            "ip -n {} addr add {}/24 dev {}",
            p.a, p.addr_a, p.veth_a
        ));
        sh(&format!(
            "ip -n {} addr add {}/24 dev {}",
            p.b, p.addr_b, p.veth_b
        ));
        for (ns, dev, a6) in [(&p.a, &p.veth_a, &p.addr6_a), (&p.b, &p.veth_b, &p.addr6_b)] {
            sh(&format!("ip -n {ns} addr add {a6}/64 dev {dev} nodad"));
            sh(&format!("ip -n {ns} link set {dev} up"));
            sh(&format!("ip -n {ns} link set lo up"));
        }
        p
    }

    fn cleanup(&self) {
        sh_quiet(&format!("ip netns del {}", self.a));
        sh_quiet(&format!("ip netns del {}", self.b));
    }

    /// Runs `f` on a thread named `name` inside namespace `ns` and waits
    /// for its result.
    pub fn run_in<T: Send + 'static>(
        ns: &str,
        name: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        spawn_in(ns, name, f).join().unwrap()
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Spawns `f` on a thread named `name` inside namespace `ns`.
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let fd = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            // SAFETY: setns on a valid netns fd affects only this thread.
            let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .unwrap()
}

/// Thread id of the calling thread.
pub fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions.
    u64::try_from(unsafe { libc::gettid() }).unwrap()
}

fn setsockopt_int(fd: i32, level: i32, opt: i32, v: i32) {
    // SAFETY: valid fd, pointer to a live i32 of the given size.
    let rc = unsafe { libc::setsockopt(fd, level, opt, std::ptr::from_ref(&v).cast(), 4) };
    assert_eq!(
        rc,
        0,
        "setsockopt {level}/{opt}: {}",
        std::io::Error::last_os_error()
    );
}

/// A TCP connect made by hand so the test controls SYN retries and gives up
/// by itself. Returns the connect's errno (0 on success) and the socket's
/// own retransmit total (TCP_INFO) just before it is closed.
pub fn connect_v4(
    dst: std::net::SocketAddrV4,
    syn_count: Option<i32>,
    give_up_after: Option<Duration>,
) -> (i32, u64) {
    connect_addr(std::net::SocketAddr::V4(dst), syn_count, give_up_after)
}

/// [`connect_v4`] for any address family (an IPv6 socket for a v6 or
/// v4-mapped address).
pub fn connect_addr(
    dst: std::net::SocketAddr,
    syn_count: Option<i32>,
    give_up_after: Option<Duration>,
) -> (i32, u64) {
    // SAFETY: plain socket syscalls on an fd this function owns and closes;
    // the sockaddr structs live across the connect call.
    unsafe {
        let family = if dst.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let fd = libc::socket(family, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        if let Some(n) = syn_count {
            setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_SYNCNT, n);
        }
        if give_up_after.is_some() {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        let rc = match dst {
            std::net::SocketAddr::V4(a) => {
                let sa = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                libc::connect(
                    fd,
                    std::ptr::from_ref(&sa).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                )
            }
            std::net::SocketAddr::V6(a) => {
                let sa = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: 0,
                };
                libc::connect(
                    fd,
                    std::ptr::from_ref(&sa).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as u32,
                )
            }
        };
        let mut err = if rc == 0 {
            0
        } else {
            *libc::__errno_location()
        };
        if let (Some(wait), libc::EINPROGRESS) = (give_up_after, err) {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            let n = libc::poll(&mut p, 1, i32::try_from(wait.as_millis()).unwrap());
            err = if n == 0 {
                libc::ETIMEDOUT
            } else {
                let mut so: i32 = 0;
                let mut len = 4u32;
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    std::ptr::from_mut(&mut so).cast(),
                    &mut len,
                );
                so
            };
        }
        let retrans = total_retrans(fd);
        libc::close(fd);
        (err, retrans)
    }
}

pub fn set_pacing(fd: i32, bytes_per_sec: i32) {
    setsockopt_int(
        fd,
        libc::SOL_SOCKET,
        libc::SO_MAX_PACING_RATE,
        bytes_per_sec,
    );
}

pub fn set_cubic(fd: i32) {
    let name = b"cubic";
    // SAFETY: valid fd and buffer.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            5,
        )
    };
    assert_eq!(
        rc,
        0,
        "TCP_CONGESTION cubic: {}",
        std::io::Error::last_os_error()
    );
}

/// Bytes in a TCP socket's send queue, unsent or not yet acknowledged
/// (`SIOCOUTQ`).
pub fn unacked_bytes(fd: i32) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int through the pointer.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    assert_eq!(rc, 0, "SIOCOUTQ: {}", std::io::Error::last_os_error());
    n
}

/// tcpi_total_retrans of a connected socket.
pub fn total_retrans(fd: i32) -> u64 {
    // SAFETY: tcp_info is plain data; getsockopt writes at most len bytes.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::from_mut(&mut info).cast(),
            &mut len,
        );
        assert_eq!(rc, 0);
        u64::from(info.tcpi_total_retrans)
    }
}

/// A TCP sink server in namespace `ns`: accepts connections and discards
/// what they send until the test ends (the namespace goes away).
pub fn discard_server(ns: &str, addr: &str, port: u16) {
    let bind = format!("{addr}:{port}");
    let (tx, rx) = std::sync::mpsc::channel();
    spawn_in(ns, "tapio-srv", move || {
        let l = std::net::TcpListener::bind(&bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        tx.send(()).unwrap();
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = std::io::Read::read(&mut s, &mut buf) {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("server bound");
}

// --- Runtime-config helpers (kernel_config.rs) ---------------------------

impl Agent {
    /// Starts the agent with `toml` as its config file and `extra` args,
    /// printing occurrences on stdout, without waiting for a config (for
    /// controller mode, where none may ever come).
    pub fn start_unconfigured(tag: &str, toml: &str, extra: &[&str]) -> Agent {
        let dir = tempdir(tag);
        let toml_path = dir.join("tapio.toml");
        std::fs::write(&toml_path, toml).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapio-agent"));
        cmd.arg("--config")
            .arg(&toml_path)
            .arg("--ebpf-dir")
            .arg(ebpf_dir())
            .arg("--sink")
            .arg("stdout")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tapio-agent");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let l = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    l.lock().unwrap().push(v);
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let g = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("agent: {line}");
                g.lock().unwrap().push(line);
            }
        });
        Agent {
            child,
            lines,
            log,
            dir,
        }
    }

    /// Waits (15 s at most, scaled) for the agent to exit after a signal
    /// the caller sent; its exit code (`None`: killed by a signal) and log.
    pub fn stop_after_signal(mut self) -> (Option<i32>, Vec<String>) {
        let end = Instant::now() + scaled(Duration::from_secs(15));
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < end, "agent did not exit after the signal");
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(&self.dir);
        (status.code(), self.log_lines())
    }

    /// The agent's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` to the agent.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill on our own child's pid.
        let rc = unsafe { libc::kill(i32::try_from(self.child.id()).unwrap(), sig) };
        assert_eq!(rc, 0, "kill({sig})");
    }

    /// Waits until `needle` appears in at least `n` log lines.
    pub fn wait_log_count(&self, needle: &str, n: usize, timeout: Duration) {
        let timeout = scaled(timeout);
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.log_count(needle) >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "agent did not log {needle:?} {n} times within {timeout:?}; log: {:#?}",
            self.log_lines()
        );
    }

    /// Log lines containing `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}

/// The BPF programs process `pid` holds, as `bpftool prog show` lists
/// them: `id name loaded_at`, sorted. The ids come from the process's fd
/// table (`/proc/<pid>/fdinfo`, `prog_id:`), since this bpftool has no
/// `pids` column; every one must be listed by bpftool.
pub fn bpf_prog_ids(pid: u32) -> Vec<String> {
    let mut ids = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).expect("fdinfo") {
        let Ok(text) = std::fs::read_to_string(e.unwrap().path()) else {
            continue;
        };
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("prog_id:") {
                ids.insert(v.trim().parse::<u64>().unwrap());
            }
        }
    }
    let out = Command::new("bpftool")
        .args(["prog", "show", "--json"])
        .output()
        .expect("run bpftool");
    assert!(out.status.success(), "bpftool prog show failed");
    let v: Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
    let listed: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["id"].as_u64().is_some_and(|id| ids.contains(&id)))
        .map(|p| format!("{} {} {}", p["id"], p["name"], p["loaded_at"]))
        .collect();
    assert_eq!(
        listed.len(),
        ids.len(),
        "bpftool lists every program of pid {pid}: {ids:?} vs {listed:?}"
    );
    listed
}

/// Packets the `counter` rule matching `dport <port>` in the nftables table
/// `inet <table>` of namespace `ns` has seen.
pub fn nft_rule_packets(ns: &str, table: &str, port: u16) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "list", "table", "inet", table])
        .output()
        .expect("run nft");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("dport {port}")))
        .unwrap_or_else(|| panic!("no rule for {port}: {text}"));
    let after = line.split("packets ").nth(1).unwrap();
    after.split_whitespace().next().unwrap().parse().unwrap()
}

/// Whether the agent's default RTT hook on this kernel is the iterator over
/// owned sockets: where tracing programs may use socket storage (5.11+),
/// read from this kernel's BTF as the agent reads it; else `sock_ops`.
pub fn rtt_iter_is_default() -> bool {
    let btf = aya::Btf::from_sys_fs().expect("kernel BTF");
    tapio_agent::kernel_features::KernelFeatures::of_kernel(&btf).sk_storage_in_tracing
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One refused connect to 127.0.0.1:`port`.
pub fn refuse(port: u16) {
    let e = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
}

// ---- metrics / OTLP test helpers -------------------------------------------

/// Makes `import <module>` work in `python3`, pip-installing `pip_spec` when
/// it is missing. `false` (skip, outside CI only) when that fails.
pub fn python_module(module: &str, pip_spec: &str) -> bool {
    let importable = || {
        Command::new("python3")
            .arg("-c")
            .arg(format!("import {module}"))
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if importable() {
        return true;
    }
    eprintln!("installing {pip_spec} for the python3 check");
    let _ = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(pip_spec)
        .status();
    if importable() {
        return true;
    }
    cannot_run(&format!(
        "python3 module `{module}` (pip `{pip_spec}`) is unavailable"
    ));
    false
}

/// Runs `python3 <script> <args>` with `stdin`, returns stdout; panics with
/// stderr on failure.
pub fn python(script: &Path, args: &[&str], stdin: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Agent {
    /// [`Agent::start`] with `toml_extra` appended to the agent's TOML
    /// (e.g. a `[metrics]` section).
    pub fn start_toml(tag: &str, config: &Value, toml_extra: &str, extra: &[&str]) -> Agent {
        Agent::launch(tag, config, toml_extra, extra, &[])
    }
}
