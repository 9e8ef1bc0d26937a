//! Real-kernel tests of the network observer: each provokes the real TCP
//! fault and asserts the exact evidence the agent printed.

mod support;

use std::io::Write;
use std::net::{SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

const REFUSED: &str = "kernel.network.connection_refused";
const TIMEOUT: &str = "kernel.network.connection_timeout";
const SPIKE: &str = "kernel.network.retransmit_spike";
const RTT: &str = "kernel.network.rtt_degradation";

fn closed_loopback_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn refused_loopback_connects_are_counted_exactly_once_each() {
    let Some(_k) = kernel_test(&[]) else { return };
    let cfg = config_with(|c| c["fold_window_ms"] = json!(1500));
    let agent = Agent::start("refused", &cfg, &[]);
    let port = closed_loopback_port();
    const N: u64 = 40;
    let tid = std::thread::Builder::new()
        .name("tapio-refuse".into())
        .spawn(move || {
            for _ in 0..N {
                let e = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
            }
            gettid()
        })
        .unwrap()
        .join()
        .unwrap();
    let pid = u64::from(std::process::id());
    let mine = |d: &serde_json::Value| d["dst_port"] == port && d["dst_addr"] == "127.0.0.1";
    let all = agent.wait_for(Duration::from_secs(10), |all| {
        count_sum(&of_type(all, REFUSED, mine)) >= N
    });
    let refused = of_type(&all, REFUSED, mine);
    assert_eq!(
        count_sum(&refused),
        N,
        "refused evidence for exactly N connects: {refused:#?}"
    );
    for o in &refused {
        assert_eq!(o["data"]["pid"], pid);
        assert_eq!(o["data"]["comm"], "tapio-refuse");
        assert_eq!(o["error"]["code"], "CONNECTION_REFUSED");
        assert_eq!(o["data"]["config_generation"], 1);
    }
    // The first leaves at once with the per-connect details...
    let first = refused
        .iter()
        .find(|o| o["data"]["folded"].is_null())
        .expect("unfolded first");
    assert_eq!(first["data"]["tid"], tid);
    assert_eq!(first["data"]["reset_received"], true);
    assert_eq!(first["data"]["errno"], 111);
    assert_ne!(first["data"]["src_port"], 0);
    // ...and the repeats as folded follow-ups, not N occurrences.
    assert!(
        refused.len() < 5,
        "storm was not folded: {} occurrences",
        refused.len()
    );
    let (code, all) = agent.stop();
    assert_eq!(code, 0);
    assert!(
        of_type(&all, TIMEOUT, mine).is_empty(),
        "a refused connect is never also a timeout"
    );
}

#[test]
fn syn_timeouts_name_the_side_that_gave_up() {
    let Some(_k) = kernel_test(&["ip", "nft"]) else {
        return;
    };
    let net = NetnsPair::new("to", 11);
    sh(&format!(
        "ip netns exec {} nft add table inet tapiotest",
        net.b
    ));
    sh(&format!("ip netns exec {} nft 'add chain inet tapiotest in {{ type filter hook input priority 0; }}'", net.b));
    // Counters at the receiver: SYNs that arrived = 1 + SYN retransmits.
    sh(&format!(
        "ip netns exec {} nft 'add rule inet tapiotest in tcp dport 7001 counter drop'",
        net.b
    ));
    sh(&format!(
        "ip netns exec {} nft 'add rule inet tapiotest in tcp dport 7002 counter drop'",
        net.b
    ));
    let agent = Agent::start("timeout", &config_with(|_| {}), &[]);
    let dst = |p| SocketAddrV4::new(net.addr_b.parse().unwrap(), p);
    // Kernel gives up: one SYN retry (TCP_SYNCNT=1), then ETIMEDOUT.
    let (d1, d2) = (dst(7001), dst(7002));
    let started = Instant::now();
    let (e1, _) = NetnsPair::run_in(&net.a, "tapio-syncnt", move || {
        connect_v4(d1, Some(1), None)
    });
    assert_eq!(e1, libc::ETIMEDOUT);
    let kernel_wait = started.elapsed();
    // The application gives up after 700 ms and closes.
    let (e2, _) = NetnsPair::run_in(&net.a, "tapio-appgive", move || {
        connect_v4(d2, None, Some(Duration::from_millis(700)))
    });
    let syns = |port: u16| nft_rule_packets(&net.b, "tapiotest", port);
    let (r1, r2) = (syns(7001) - 1, syns(7002) - 1);
    assert_eq!(e2, libc::ETIMEDOUT);
    let on =
        |p: u16| move |d: &serde_json::Value| d["dst_port"] == p && d["dst_addr"] == net_b_addr();
    fn net_b_addr() -> &'static str {
        "10.77.11.2"
    }
    let all = agent.wait_for(Duration::from_secs(5), |all| {
        !of_type(all, TIMEOUT, on(7001)).is_empty() && !of_type(all, TIMEOUT, on(7002)).is_empty()
    });
    let k = of_type(&all, TIMEOUT, on(7001));
    let a = of_type(&all, TIMEOUT, on(7002));
    assert_eq!(count_sum(&k), 1, "{k:#?}");
    assert_eq!(count_sum(&a), 1, "{a:#?}");
    let (k, a) = (&k[0]["data"], &a[0]["data"]);
    assert_eq!(k["gave_up"], "kernel");
    assert_eq!(k["errno"], 110);
    assert!(r1 >= 1);
    assert_eq!(
        k["syn_retransmits"], r1,
        "SYN retransmits as counted at the receiver"
    );
    assert_eq!(k["comm"], "tapio-syncnt");
    assert_eq!(k["pid"], u64::from(std::process::id()));
    let k_ns = k["syn_sent_ns"].as_u64().unwrap();
    assert!(
        k_ns >= 2_500_000_000 && u128::from(k_ns) <= kernel_wait.as_nanos(),
        "syn_sent_ns {k_ns} vs {kernel_wait:?}"
    );
    assert_eq!(a["gave_up"], "application");
    assert_eq!(a["errno"], 0);
    assert_eq!(a["comm"], "tapio-appgive");
    assert_eq!(a["syn_retransmits"], r2);
    let a_ns = a["syn_sent_ns"].as_u64().unwrap();
    assert!(
        (700_000_000..2_000_000_000).contains(&a_ns),
        "syn_sent_ns {a_ns}"
    );
    let (code, all) = agent.stop();
    assert_eq!(code, 0);
    assert!(of_type(&all, REFUSED, |d| d["dst_addr"] == net_b_addr()).is_empty());
}

/// Sends `bytes` to `dst` from namespace `ns`, paced; returns the socket's
/// own retransmit total (TCP_INFO).
fn paced_send(
    ns: &str,
    dst: SocketAddrV4,
    bytes: usize,
    pacing: i32,
    cubic: bool,
    during: impl FnOnce() + Send + 'static,
) -> u64 {
    NetnsPair::run_in(ns, "tapio-bulk", move || {
        let mut s = TcpStream::connect(dst).unwrap();
        set_pacing(s.as_raw_fd(), pacing);
        if cubic {
            set_cubic(s.as_raw_fd());
        }
        let chunk = vec![7u8; 16 * 1024];
        let mut sent = 0;
        let mut during = Some(during);
        let mut fault: Option<std::thread::JoinHandle<()>> = None;
        // Traffic keeps flowing until the fault is over, however long its
        // commands take to act (a slow emulated host), within a bound.
        let give_up = Instant::now() + Duration::from_secs(60);
        while sent < bytes
            || (fault.as_ref().is_some_and(|t| !t.is_finished()) && Instant::now() < give_up)
        {
            s.write_all(&chunk).unwrap();
            sent += chunk.len();
            if sent >= bytes / 4 {
                // The fault runs beside the writer, so data keeps flowing
                // through it however long its commands take (slow VMs).
                if let Some(f) = during.take() {
                    fault = Some(std::thread::spawn(f));
                }
            }
        }
        s.flush().unwrap();
        if let Some(t) = fault {
            t.join().unwrap();
        }
        // Let the tail drain before reading the totals: until every byte
        // is acknowledged (no retransmit can follow), within a bound.
        let drained_by = Instant::now() + Duration::from_secs(20);
        while unacked_bytes(s.as_raw_fd()) > 0 && Instant::now() < drained_by {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        total_retrans(s.as_raw_fd())
    })
}

#[test]
fn a_drop_burst_makes_one_retransmit_spike_with_its_count() {
    let Some(_k) = kernel_test(&["ip", "nft"]) else {
        return;
    };
    let net = NetnsPair::new("rt", 12);
    discard_server(&net.b, &net.addr_b, 7101);
    discard_server(&net.b, &net.addr_b, 7102);
    let cfg = config_with(|c| {
        c["network"]["retransmit_threshold"] = json!(5);
        // Longer than both transfers together, however slow a loaded host
        // makes them: every retransmit of the burst falls in one window,
        // which the stop below closes (no wait on the window's end).
        c["network"]["retransmit_window_ms"] = json!(60_000);
    });
    let agent = Agent::start("retrans", &cfg, &[]);
    let dst = |p| SocketAddrV4::new(net.addr_b.parse().unwrap(), p);
    // Clean paced transfer: no spike.
    let clean = paced_send(&net.a, dst(7102), 4 << 20, 4 << 20, false, || {});
    // Same transfer with a 400 ms drop burst at the receiver.
    let b = net.b.clone();
    sh(&format!("ip netns exec {b} nft add table inet tapioburst"));
    sh(&format!("ip netns exec {b} nft 'add chain inet tapioburst in {{ type filter hook input priority 0; }}'"));
    let burst = paced_send(&net.a, dst(7101), 4 << 20, 4 << 20, false, move || {
        sh(&format!(
            "ip netns exec {b} nft add rule inet tapioburst in tcp dport 7101 drop"
        ));
        std::thread::sleep(Duration::from_millis(400));
        sh(&format!(
            "ip netns exec {b} nft delete table inet tapioburst"
        ));
    });
    assert!(burst > 0, "the drop burst caused no retransmit");
    let on =
        |p: u16| move |d: &serde_json::Value| d["dst_port"] == p && d["dst_addr"] == "10.77.12.2";
    // Both sockets are closed: their retransmits are all in the ring; the
    // stop drains it and closes the open windows.
    let (code, all) = agent.stop();
    assert_eq!(code, 0);
    let spikes = of_type(&all, SPIKE, on(7101));
    assert_eq!(
        spikes.len(),
        1,
        "one spike per destination per window: {spikes:#?}"
    );
    let d = &spikes[0]["data"];
    assert_eq!(
        d["count"].as_u64().unwrap(),
        burst,
        "spike count equals the socket's own retransmits"
    );
    assert_eq!(d["window_ms"], 60_000);
    assert_eq!(d["comm"], "tapio-bulk");
    assert!(
        of_type(&all, SPIKE, on(7102)).is_empty(),
        "clean transfer (own retransmits: {clean}) made a spike"
    );
}

/// A fault for [`paced_send`]: after `wait`, a 4 Mbit/s tbf with a
/// `latency_ms` queue on the sender's side of `net`; the wall-clock time it
/// was added goes to `added_at`.
fn tbf_after(
    net: &NetnsPair,
    wait: Duration,
    latency_ms: u32,
    added_at: &std::sync::Arc<std::sync::Mutex<u64>>,
) -> impl FnOnce() + Send + 'static {
    let (a, dev, at) = (
        net.a.clone(),
        net.veth_a.clone(),
        std::sync::Arc::clone(added_at),
    );
    move || {
        std::thread::sleep(wait);
        *at.lock().unwrap() = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos(),
        )
        .unwrap();
        sh(&format!(
            "ip netns exec {a} tc qdisc add dev {dev} root tbf rate 4mbit burst 16kb latency {latency_ms}ms"
        ));
    }
}

/// The log line of the agent's RTT hook choice: the iterator over owned
/// sockets, sock_ops on the cgroup v2 root (every kernel of the matrix and
/// the host mount one), or tcp_probe.
const ITER_CHOSEN: &str = "rtt samples from an iterator over the owned sockets";
const SOCKOPS_CHOSEN: &str = "rtt samples from sock_ops on the cgroup v2 root";
const TCP_PROBE_CHOSEN: &str = "rtt samples from tcp_probe";

/// The default hook: the iterator where tracing programs may use socket
/// storage, else sock_ops ([`rtt_iter_is_default`]).
#[test]
fn a_tbf_queue_makes_rtt_degradation_for_that_destination_only_after_it_is_added() {
    let expected = if rtt_iter_is_default() {
        ITER_CHOSEN
    } else {
        SOCKOPS_CHOSEN
    };
    tbf_queue_rtt_degradation("rtt", 13, "", expected);
}

/// The same fault and evidence on sock_ops, named in the agent's settings
/// (the default where owners live in a table: 5.10).
#[test]
fn rtt_degradation_on_sock_ops() {
    tbf_queue_rtt_degradation(
        "rso",
        16,
        "[network]\nrtt_hook = \"sock_ops\"\n",
        SOCKOPS_CHOSEN,
    );
}

/// The same fault and evidence on the fallback hook, named in the agent's
/// settings where a cgroup v2 root exists.
#[test]
fn rtt_degradation_on_the_tcp_probe_fallback() {
    tbf_queue_rtt_degradation(
        "rtp",
        15,
        "[network]\nrtt_hook = \"tcp_probe\"\n",
        TCP_PROBE_CHOSEN,
    );
}

/// A paced transfer over a veth pair, then a tbf queue on the sender's side:
/// rtt_degradation for that destination only, only after the queue, from
/// the hook `hook_log` names (`toml`: extra agent settings).
fn tbf_queue_rtt_degradation(tag: &str, idx: u8, toml: &str, hook_log: &str) {
    let Some(_k) = kernel_test(&["ip", "tc"]) else {
        return;
    };
    let net = NetnsPair::new(tag, idx);
    let port = 7200 + u16::from(idx);
    discard_server(&net.b, &net.addr_b, port);
    let cfg = config_with(|c| {
        c["network"]["rtt_sample_interval_ms"] = json!(100);
        c["network"]["rtt_report_interval_ms"] = json!(1000);
    });
    let agent = Agent::start_toml(tag, &cfg, toml, &[]);
    agent.wait_log(hook_log, Duration::from_secs(10));
    let dst = SocketAddrV4::new(net.addr_b.parse().unwrap(), port);
    let added_at = std::sync::Arc::new(std::sync::Mutex::new(0u64));
    // 4 MiB paced at 2 MB/s over a clean link, then a 4 Mbit/s tbf with a
    // 250 ms queue on the sender's side: the queue fills and srtt grows.
    let queue = tbf_after(&net, Duration::from_secs(2), 250, &added_at);
    paced_send(&net.a, dst, 12 << 20, 2 << 20, true, queue);
    let addr_b = net.addr_b.clone();
    let on = |d: &serde_json::Value| d["dst_port"] == port && d["dst_addr"] == addr_b.as_str();
    agent.wait_for(Duration::from_secs(5), |all| {
        !of_type(all, RTT, on).is_empty()
    });
    let (code, all) = agent.stop();
    assert_eq!(code, 0);
    let degraded = of_type(&all, RTT, on);
    assert!(
        !degraded.is_empty(),
        "no rtt_degradation after the queue was added"
    );
    let added = *added_at.lock().unwrap();
    for o in &degraded {
        let d = &o["data"];
        assert!(
            d["timestamp_ns"].as_u64().unwrap() > added,
            "rtt_degradation before the queue existed: {o:#}"
        );
        let (srtt, reference, thr) = (
            d["srtt_us"].as_u64().unwrap(),
            d["reference_us"].as_u64().unwrap(),
            d["threshold_us"].as_u64().unwrap(),
        );
        assert!(srtt > thr && thr >= 10_000, "{o:#}");
        assert!(
            reference < 5_000,
            "reference {reference} us is not the clean link's"
        );
        // Only samples judged normal teach the baseline; with a tiny
        // reference, normal means under the absolute floor.
        if let Some(base) = d["baseline_us"].as_u64() {
            assert!(
                base <= d["floor_us"].as_u64().unwrap(),
                "baseline {base} us learnt a degraded sample: {o:#}"
            );
        }
        assert_eq!(d["comm"], "tapio-bulk");
    }
}

/// A fresh connection to a destination the agent never saw, clean for 1.5 s
/// then queued behind a tbf: judged from its first sample against the
/// socket's own minimum RTT, so the degradation is reported within 3 s of
/// the queue (a warm-up baseline used to need 5 samples and learnt the bad
/// ones).
#[test]
fn a_fresh_destination_degrading_after_connect_is_reported_within_3s() {
    let Some(_k) = kernel_test(&["ip", "tc"]) else {
        return;
    };
    let net = NetnsPair::new("rtf", 14);
    discard_server(&net.b, &net.addr_b, 7401);
    let agent = Agent::start("rttfresh", &config_with(|_| {}), &[]);
    let dst = SocketAddrV4::new(net.addr_b.parse().unwrap(), 7401);
    let added_at = std::sync::Arc::new(std::sync::Mutex::new(0u64));
    let queue = tbf_after(&net, Duration::from_millis(1500), 400, &added_at);
    paced_send(&net.a, dst, 8 << 20, 2 << 20, true, move || {
        queue();
        std::thread::sleep(Duration::from_secs(4));
    });
    let on = |d: &serde_json::Value| d["dst_port"] == 7401 && d["dst_addr"] == "10.77.14.2";
    agent.wait_for(Duration::from_secs(5), |all| {
        !of_type(all, RTT, on).is_empty()
    });
    let (code, all) = agent.stop();
    assert_eq!(code, 0);
    let got = of_type(&all, RTT, on);
    assert!(
        !got.is_empty(),
        "no rtt_degradation for the fresh destination"
    );
    let added = *added_at.lock().unwrap();
    let first = got
        .iter()
        .map(|o| o["data"]["timestamp_ns"].as_u64().unwrap())
        .min()
        .unwrap();
    assert!(
        first > added,
        "before the queue existed ({} ns before): {:#}",
        added.saturating_sub(first),
        got[0]
    );
    // 3 s on a real CPU; stretched by TAPIO_TEST_TIME_SCALE under emulation
    // (the kernel-matrix VMs: 3.5 s once with the host loaded).
    let within = u64::try_from(scaled(Duration::from_secs(3)).as_nanos()).unwrap();
    assert!(
        first - added <= within,
        "reported {} ms after the queue (limit {} ms)",
        (first - added) / 1_000_000,
        within / 1_000_000
    );
    let d = &got[0]["data"];
    assert_eq!(d["reference"], "min_rtt", "{d:#}");
    assert!(d["min_rtt_us"].as_u64().unwrap() < 5_000, "{d:#}");
    assert!(d["baseline_us"].is_null(), "no baseline yet: {d:#}");
    assert_eq!(d["comm"], "tapio-bulk");
}
