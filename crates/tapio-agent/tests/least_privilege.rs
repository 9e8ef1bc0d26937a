//! The agent as the DaemonSet and the systemd unit run it: an unprivileged
//! uid holding exactly CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (docs/deploy.md).
//! It must load on the reduced kernel BTF without aya parsing its own (the
//! no-files guard needs no privilege), attach the RTT iterator where the
//! kernel has socket storage for tracing programs, and report a refused
//! connect with its exact evidence. Host only (the matrix VMs carry no
//! `setpriv`); root starts it.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const NOBODY: u32 = 65534;

#[test]
fn an_unprivileged_agent_with_its_three_capabilities_loads_and_reports_exact_evidence() {
    let Some(_k) = kernel_test(&["setpriv"]) else {
        return;
    };
    let dir = tempdir("least-priv");
    let data = dir.join("occ");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
    // SAFETY: chown of a path this test just made.
    let c = std::ffi::CString::new(data.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::chown(c.as_ptr(), NOBODY, NOBODY) }, 0);
    let toml = dir.join("tapio.toml");
    std::fs::write(&toml, "[drain]\ntick_ms = 50\n").unwrap();
    std::fs::set_permissions(&toml, std::fs::Permissions::from_mode(0o644)).unwrap();

    let caps = "+bpf,+perfmon,+net_admin";
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            &format!("--inh-caps={caps}"),
            &format!("--ambient-caps={caps}"),
            "--no-new-privs",
        ])
        .arg(env!("CARGO_BIN_EXE_tapio-agent"))
        .arg("--config")
        .arg(&toml)
        .arg("--ebpf-dir")
        .arg(ebpf_dir())
        .args(["--sink", "stdout", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn setpriv tapio-agent");
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let out = Arc::new(Mutex::new(Vec::<Value>::new()));
    let (l, err) = (Arc::clone(&log), child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("agent: {line}");
            l.lock().unwrap().push(line);
        }
    });
    let (o, stdout) = (Arc::clone(&out), child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            o.lock().unwrap().push(serde_json::from_str(&line).unwrap());
        }
    });
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let end = Instant::now() + scaled(Duration::from_secs(30));
        while !done() {
            assert!(
                Instant::now() < end,
                "{what}; log: {:#?}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let logged = |needle: &str| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    };
    wait("config applied", &|| logged("config applied") > 0);

    assert_eq!(logged("kernel BTF reduced to what the objects need"), 1);
    assert_eq!(logged("parsed the kernel BTF themselves"), 0);
    assert_eq!(logged("kernel BTF parsed whole"), 0);
    for o in ["network", "container", "storage"] {
        assert_eq!(
            logged(&format!("observer running observer={o}")),
            1,
            "{o} running"
        );
    }
    if rtt_iter_is_default() {
        // Logged only once the iterator's first pass ran.
        assert_eq!(
            logged("rtt samples from an iterator over the owned sockets"),
            1
        );
    }

    let port = closed_port();
    refuse(port);
    let mine = |v: &Value| {
        v["type"] == "kernel.network.connection_refused"
            && v["data"]["dst_port"] == port
            && v["data"]["dst_addr"] == "127.0.0.1"
    };
    wait("the refused connect's occurrence", &|| {
        out.lock().unwrap().iter().any(mine)
    });
    let got: Vec<Value> = out
        .lock()
        .unwrap()
        .iter()
        .filter(|v| mine(v))
        .cloned()
        .collect();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["data"]["pid"], u64::from(std::process::id()));
    assert_eq!(got[0]["data"]["errno"], 111);
    assert_eq!(got[0]["data"]["reset_received"], true);

    // SAFETY: kill of the agent this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0), "clean stop");
    let _ = std::fs::remove_dir_all(&dir);
}
