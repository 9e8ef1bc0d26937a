//! Network faults the tests own: namespaces joined by veth, servers in
//! them, nftables counters, refused loopback connects.

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use super::{sh, sh_quiet};

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

/// A loopback port nothing listens on: a connect to it is refused.
pub fn closed_port() -> u16 {
    free_port()
}

/// One refused connect to 127.0.0.1:`port`.
pub fn refuse(port: u16) {
    let e = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
