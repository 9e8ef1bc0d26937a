//! `tapio status` / `health` tell a stopped agent from a running one: the
//! status file names the agent's pid and its start time, and a process that
//! is gone (or a pid now used by another process) is reported as such.
//! Regression: after the agent stopped, `status` still said `agent=present`.

mod util;

use std::path::Path;

use util::*;

fn start_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    tapio_common::status::stat_start_ticks(&text).unwrap()
}

fn write_status(d: &Path, pid: u32, ticks: u64) {
    let status = format!(
        r#"{{"agent_version":"0.1.0","pid":{pid},"pid_start_ticks":{ticks},"started_at":"{}","updated_at":"{}","config_generation":1,"config_hash":"h","observers":[{{"name":"network","state":"running"}}],"counters":{{}}}}"#,
        rfc3339(NOW_MS - 60_000),
        rfc3339(NOW_MS - 2_000)
    );
    std::fs::write(d.join(".tapio-status.json"), status).unwrap();
}

/// A pid that existed and has ended, with its start time.
fn dead_pid() -> (u32, u64) {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id();
    let ticks = start_ticks(pid);
    child.kill().unwrap();
    child.wait().unwrap();
    (pid, ticks)
}

#[test]
fn a_stopped_agent_is_gone_and_a_running_one_present() {
    let d = tempdir("agent-gone");
    let (pid, ticks) = dead_pid();
    write_status(&d, pid, ticks);
    let o = tapio(&d, &["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(&format!("agent=gone pid={pid} ")), "{out}");
    assert!(
        out.contains("observer=network state=unknown"),
        "no running observer claimed for a gone agent: {out}"
    );
    let h = tapio(&d, &["health", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&h)).unwrap();
    assert_eq!(v["agent"]["status_file"], "gone");
    assert_eq!(v["observers"][0]["rule"], "agent_gone");
    assert_eq!(v["observers"][0]["verdict"], "unknown");

    // The same pid reused by another process is still gone: this test's own
    // pid with another start time.
    let me = std::process::id();
    write_status(&d, me, start_ticks(me) + 1);
    assert!(stdout(&tapio(&d, &["status"])).contains("agent=gone"));

    // A live process with its own start time: present.
    write_status(&d, me, start_ticks(me));
    let out = stdout(&tapio(&d, &["status"]));
    assert!(out.contains(&format!("agent=present pid={me} ")), "{out}");
    assert!(out.contains("observer=network state=running"), "{out}");
}
