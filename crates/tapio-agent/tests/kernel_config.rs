//! Real-kernel tests of the runtime config (issue 5, C1/C4/B11): a running
//! agent takes new configs through its `tapio_config` carriers without
//! reloading or re-attaching programs, and an unconfigured agent is silent.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const REFUSED: &str = "kernel.network.connection_refused";

fn refused_at(all: &[Value], port: u16) -> Vec<&Value> {
    of_type(all, REFUSED, move |d| {
        d["dst_port"] == port && d["dst_addr"] == "127.0.0.1"
    })
}

/// Provokes a refused connect to a fresh port and waits up to `wait` for
/// its occurrence; returns the port and what arrived for it.
fn provoke(agent: &Agent, wait: Duration) -> (u16, Vec<Value>) {
    let port = closed_port();
    refuse(port);
    let all = agent.wait_for(wait, |all| !refused_at(all, port).is_empty());
    let mine = refused_at(&all, port).into_iter().cloned().collect();
    (port, mine)
}

fn write_config(agent: &Agent, cfg: &Value) {
    std::fs::write(
        agent.dir.join("compiled.json"),
        serde_json::to_vec(cfg).unwrap(),
    )
    .unwrap();
}

#[test]
fn network_observer_disabled_and_reenabled_at_runtime_keeps_its_programs() {
    let Some(_k) = kernel_test(&["bpftool"]) else {
        return;
    };
    let on = config_with(|c| c["fold_window_ms"] = json!(1000));
    let agent = Agent::start("cfg-toggle", &on, &[]);
    let ids = bpf_prog_ids(agent.pid());
    assert!(
        ids.len() >= 2,
        "bpftool shows the agent's programs: {ids:?}"
    );

    // Generation 1: enabled.
    let (port, got) = provoke(&agent, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "one refused connect to {port}: {got:#?}");
    assert_eq!(got[0]["data"]["config_generation"], 1);

    // Generation 2: network observer off -> a refused connect yields nothing.
    let mut off = on.clone();
    off["network"]["enabled"] = json!(false);
    write_config(&agent, &off);
    agent.signal(libc::SIGHUP);
    agent.wait_log_count("config applied", 2, Duration::from_secs(10));
    assert!(agent
        .log_lines()
        .iter()
        .any(|l| l.contains("compiled_config reloaded") && l.contains("generation=2")));
    let (port, got) = provoke(&agent, Duration::from_secs(3));
    assert!(
        got.is_empty(),
        "disabled observer reported port {port}: {got:#?}"
    );
    assert_eq!(
        bpf_prog_ids(agent.pid()),
        ids,
        "no reload or re-attach on disable"
    );

    // Same file again: no new generation.
    agent.signal(libc::SIGHUP);
    agent.wait_log("compiled_config unchanged", Duration::from_secs(5));

    // Generation 3: enabled again, stamped with the new generation.
    write_config(&agent, &on);
    agent.signal(libc::SIGHUP);
    agent.wait_log_count("config applied", 3, Duration::from_secs(10));
    let (port, got) = provoke(&agent, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "one refused connect to {port}: {got:#?}");
    assert_eq!(got[0]["data"]["config_generation"], 3);
    assert_eq!(got[0]["data"]["errno"], 111);
    assert_eq!(
        bpf_prog_ids(agent.pid()),
        ids,
        "no reload or re-attach on enable"
    );

    // A broken file keeps the current config (and its generation).
    std::fs::write(agent.dir.join("compiled.json"), b"{broken").unwrap();
    agent.signal(libc::SIGHUP);
    agent.wait_log("compiled_config not reloaded", Duration::from_secs(5));
    let (_, got) = provoke(&agent, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["data"]["config_generation"], 3);

    let (code, _) = agent.stop();
    assert_eq!(code, 0);
}

#[test]
fn controller_mode_before_any_config_is_silent_and_unconfigured() {
    let Some(_k) = kernel_test(&["bpftool"]) else {
        return;
    };
    // Nothing listens there: the agent never gets a config, its carriers
    // stay all-zeros (cold maps).
    let nowhere = format!("http://127.0.0.1:{}", closed_port());
    let data = tempdir("cfg-cold-data");
    let agent = Agent::start_unconfigured(
        "cfg-cold",
        "[drain]\ntick_ms = 50\n",
        &[
            "--controller-endpoint",
            &nowhere,
            "--sink",
            "file",
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    agent.wait_log("observer running", Duration::from_secs(20));
    agent.wait_log("controller hello failed", Duration::from_secs(10));
    assert!(!bpf_prog_ids(agent.pid()).is_empty(), "programs attached");
    let (port, got) = provoke(&agent, Duration::from_secs(3));
    assert!(
        got.is_empty(),
        "unconfigured agent reported port {port}: {got:#?}"
    );
    // The status file says unconfigured: generation 0, empty hash. It is
    // rewritten every 5 s; wait for one written after the failed hello was
    // counted (the first may predate it).
    let status_path = data.join(".tapio-status.json");
    let hello_failures = |st: &Value| {
        st["counters"]["tapio_controller_send_failures_total{call=\"hello\"}"]
            .as_u64()
            .unwrap_or(0)
    };
    let end = std::time::Instant::now() + Duration::from_secs(15);
    let st = loop {
        let st: Option<Value> = std::fs::read(&status_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        match st {
            Some(st) if hello_failures(&st) >= 1 => break st,
            other => assert!(
                std::time::Instant::now() < end,
                "no status file counting the failed hello: {other:#?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(st["config_hash"], "");
    assert_eq!(st["config_generation"], 0);
    assert_eq!(agent.log_count("config applied"), 0);
    let (code, _) = agent.stop();
    assert_eq!(code, 0);
    let _ = std::fs::remove_dir_all(data);
}

/// A SIGTERM that arrives while the observers are still loading (seconds on
/// a slow or emulated host, where systemd or the kubelet may stop the agent
/// at any time) is a clean stop once they are up: exit 0 with every
/// observer accounted for, not death by the signal's default action.
#[test]
fn sigterm_during_observer_loading_is_a_clean_stop() {
    let Some(_k) = kernel_test(&[]) else {
        return;
    };
    let agent = Agent::start_unconfigured("sigterm-load", "[drain]\ntick_ms = 50\n", &[]);
    // The first program is attached: the network observer is loading, the
    // container, storage and node observers are still to come.
    agent.wait_log("program attached", Duration::from_secs(20));
    agent.signal(libc::SIGTERM);
    let (code, log) = agent.stop_after_signal();
    assert_eq!(code, Some(0), "exit status after SIGTERM during loading");
    // Loading went on to the last observer (running, or unavailable on a
    // host without a PMU) before the stop.
    assert!(
        log.iter().any(|l| l.contains("observer=node")),
        "the node observer was never reached: {log:#?}"
    );
}
