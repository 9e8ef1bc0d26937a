//! Outside tools the tests read evidence with: bpftool, python3, and the
//! kernel's BTF as the agent reads it.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::cannot_run;

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

/// Whether the agent's default RTT hook on this kernel is the iterator over
/// owned sockets: where tracing programs may use socket storage (5.11+),
/// read from this kernel's BTF as the agent reads it; else `sock_ops`.
pub fn rtt_iter_is_default() -> bool {
    let btf = aya::Btf::from_sys_fs().expect("kernel BTF");
    tapio_agent::kernel_features::KernelFeatures::of_kernel(&btf).sk_storage_in_tracing
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
