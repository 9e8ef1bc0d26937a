//! Real-kernel test support: run the real agent binary as root against the
//! real eBPF objects, provoke faults in network namespaces the test owns,
//! and read back the occurrences it printed.
//!
//! Under `CI=true` a missing privilege or tool is a failure, never a skip.
#![allow(dead_code)]

mod agent;
mod net;
mod socket;
mod tools;

// Each test binary uses its own part of these.
#[allow(unused_imports)]
pub use {agent::Agent, net::*, socket::*, tools::*};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

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
