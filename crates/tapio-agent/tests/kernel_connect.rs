//! Real-kernel tests of connect-failure semantics (B1, B2) beyond the plain
//! refusal and SYN timeout: ICMP unreachables, sockets closed while
//! connecting, connects whose SYN never left, and IPv6 (native and
//! v4-mapped). Each provokes the real fault and asserts the exact evidence,
//! or its exact absence.

mod support;

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const REFUSED: &str = "kernel.network.connection_refused";
const TIMEOUT: &str = "kernel.network.connection_timeout";

fn nft(ns: &str, rule: &str) {
    sh(&format!("ip netns exec {ns} nft '{rule}'"));
}

/// An nftables input chain in `ns` for the test's rules.
fn input_chain(ns: &str) {
    nft(ns, "add table inet tapioconn");
    nft(
        ns,
        "add chain inet tapioconn in { type filter hook input priority 0; }",
    );
}

fn to(addr: &str, port: u16) -> impl Fn(&Value) -> bool + '_ {
    move |d: &Value| d["dst_port"] == port && d["dst_addr"] == addr
}

/// An ICMP host-unreachable answering the SYN ends the connect at once with
/// EHOSTUNREACH: reported as a kernel-side timeout naming the errno and the
/// ICMP cause (it used to be only counted).
#[test]
fn icmp_host_unreachable_is_a_timeout_with_its_errno_and_cause() {
    let Some(_k) = kernel_test(&["ip", "nft"]) else {
        return;
    };
    let net = NetnsPair::new("un", 21);
    input_chain(&net.b);
    nft(
        &net.b,
        "add rule inet tapioconn in tcp dport 7301 reject with icmpx type host-unreachable",
    );
    let agent = Agent::start("unreach", &config_with(|_| {}), &[]);
    let dst: SocketAddr = format!("{}:7301", net.addr_b).parse().unwrap();
    let (err, tid) = NetnsPair::run_in(&net.a, "tapio-unreach", move || {
        (connect_addr(dst, None, None).0, gettid())
    });
    assert_eq!(err, libc::EHOSTUNREACH);
    let all = agent.wait_for(Duration::from_secs(5), |all| {
        !of_type(all, TIMEOUT, to(&net.addr_b, 7301)).is_empty()
    });
    let got = of_type(&all, TIMEOUT, to(&net.addr_b, 7301));
    assert_eq!(count_sum(&got), 1, "{got:#?}");
    let d = &got[0]["data"];
    assert_eq!(d["errno"], libc::EHOSTUNREACH);
    assert_eq!(d["icmp_unreachable"], "host");
    assert_eq!(d["gave_up"], "kernel");
    assert_eq!(d["comm"], "tapio-unreach");
    assert_eq!(d["tid"], tid);
    assert_eq!(d["pid"], u64::from(std::process::id()));
    let (code, all) = agent.stop();
    assert_eq!(code, 0);
    assert!(of_type(&all, REFUSED, to(&net.addr_b, 7301)).is_empty());
}

/// Three ways to leave SYN_SENT with no error that are no timeout: a socket
/// closed 50 ms into connecting (as a Happy Eyeballs loser is) and a
/// connect whose SYN never left (ephemeral ports exhausted). Neither is
/// reported; an application that waited 500 ms unanswered is.
#[test]
fn sockets_closed_early_or_never_sent_are_no_timeout_but_a_half_second_give_up_is() {
    let Some(_k) = kernel_test(&["ip", "nft"]) else {
        return;
    };
    let net = NetnsPair::new("ab", 22);
    input_chain(&net.b);
    nft(&net.b, "add rule inet tapioconn in tcp dport 7311 drop");
    nft(&net.b, "add rule inet tapioconn in tcp dport 7312 drop");
    discard_server(&net.b, &net.addr_b, 7313);
    // One ephemeral port in namespace a.
    sh(&format!(
        "ip netns exec {} sh -c 'echo 40000 40000 > /proc/sys/net/ipv4/ip_local_port_range'",
        net.a
    ));
    let agent = Agent::start("abandon", &config_with(|_| {}), &[]);
    let b = net.addr_b.clone();
    let (early, half, held, exhausted) = NetnsPair::run_in(&net.a, "tapio-abandon", move || {
        let at = |p: u16| -> SocketAddr { format!("{b}:{p}").parse().unwrap() };
        let early = connect_addr(at(7311), None, Some(Duration::from_millis(50))).0;
        let half = connect_addr(at(7312), None, Some(Duration::from_millis(500))).0;
        // The only port is taken by this connection to 7313...
        let held = TcpStream::connect(at(7313)).expect("first connect to 7313");
        // ...so a second one to the same destination has no port left.
        let exhausted = connect_addr(at(7313), None, None).0;
        (early, half, held, exhausted)
    });
    assert_eq!(early, libc::ETIMEDOUT, "the 50 ms poll gave up");
    assert_eq!(half, libc::ETIMEDOUT, "the 500 ms poll gave up");
    assert_eq!(exhausted, libc::EADDRNOTAVAIL);
    let all = agent.wait_for(Duration::from_secs(5), |all| {
        !of_type(all, TIMEOUT, to(&net.addr_b, 7312)).is_empty()
    });
    drop(held);
    // Records leave the ring in order: the early close and the exhausted
    // connect came before and after; give the last one time to show up.
    std::thread::sleep(Duration::from_millis(500));
    let (code, all2) = agent.stop();
    assert_eq!(code, 0);
    let half = of_type(&all, TIMEOUT, to(&net.addr_b, 7312));
    assert_eq!(count_sum(&half), 1, "{half:#?}");
    let d = &half[0]["data"];
    assert_eq!(d["gave_up"], "application");
    assert_eq!(d["errno"], 0);
    let waited = d["syn_sent_ns"].as_u64().unwrap();
    assert!(
        (500_000_000..1_500_000_000).contains(&waited),
        "waited {waited} ns"
    );
    for port in [7311, 7313] {
        assert!(
            of_type(&all2, TIMEOUT, to(&net.addr_b, port)).is_empty(),
            "port {port}: no timeout"
        );
        assert!(of_type(&all2, REFUSED, to(&net.addr_b, port)).is_empty());
    }
}

/// Refused over IPv6 loopback, and over a dual-stack socket to a
/// v4-mapped address, which is reported as the IPv4 peer.
#[test]
fn refused_over_ipv6_loopback_and_v4_mapped_names_the_exact_peer() {
    let Some(_k) = kernel_test(&[]) else { return };
    let cfg = config_with(|c| c["fold_window_ms"] = json!(0));
    let agent = Agent::start("refused6", &cfg, &[]);
    let port6 = {
        let l = std::net::TcpListener::bind("[::1]:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let port4 = closed_port();
    let (e6, e_mapped, tid) = std::thread::Builder::new()
        .name("tapio-refuse6".into())
        .spawn(move || {
            let v6 = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, port6, 0, 0));
            let mapped = SocketAddr::V6(SocketAddrV6::new(
                "::ffff:127.0.0.1".parse().unwrap(),
                port4,
                0,
                0,
            ));
            (
                connect_addr(v6, None, None).0,
                connect_addr(mapped, None, None).0,
                gettid(),
            )
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(e6, libc::ECONNREFUSED);
    assert_eq!(e_mapped, libc::ECONNREFUSED);
    let all = agent.wait_for(Duration::from_secs(5), |all| {
        !of_type(all, REFUSED, to("::1", port6)).is_empty()
            && !of_type(all, REFUSED, to("127.0.0.1", port4)).is_empty()
    });
    let (code, _) = agent.stop();
    assert_eq!(code, 0);
    for (addr, port, src) in [("::1", port6, "::1"), ("127.0.0.1", port4, "127.0.0.1")] {
        let got = of_type(&all, REFUSED, to(addr, port));
        assert_eq!(count_sum(&got), 1, "{addr}:{port}: {got:#?}");
        let d = &got[0]["data"];
        assert_eq!(d["tid"], tid);
        assert_eq!(d["comm"], "tapio-refuse6");
        assert_eq!(d["reset_received"], true);
        assert_eq!(d["src_addr"], src);
    }
}

/// A kernel SYN timeout between two namespaces over IPv6.
#[test]
fn syn_timeout_over_ipv6_between_namespaces_names_the_v6_peer() {
    let Some(_k) = kernel_test(&["ip", "nft"]) else {
        return;
    };
    let net = NetnsPair::new("t6", 23);
    input_chain(&net.b);
    // SYNs that arrived = 1 + SYN retransmits, counted at the receiver.
    nft(
        &net.b,
        "add rule inet tapioconn in tcp dport 7321 counter drop",
    );
    let agent = Agent::start("timeout6", &config_with(|_| {}), &[]);
    let dst: SocketAddr = format!("[{}]:7321", net.addr6_b).parse().unwrap();
    let err = NetnsPair::run_in(&net.a, "tapio-syn6", move || {
        connect_addr(dst, Some(1), None).0
    });
    assert_eq!(err, libc::ETIMEDOUT);
    let all = agent.wait_for(Duration::from_secs(5), |all| {
        !of_type(all, TIMEOUT, to(&net.addr6_b, 7321)).is_empty()
    });
    let (code, _) = agent.stop();
    assert_eq!(code, 0);
    let got = of_type(&all, TIMEOUT, to(&net.addr6_b, 7321));
    assert_eq!(count_sum(&got), 1, "{got:#?}");
    let d = &got[0]["data"];
    assert_eq!(d["gave_up"], "kernel");
    assert_eq!(d["errno"], libc::ETIMEDOUT);
    assert_eq!(
        d["syn_retransmits"],
        nft_rule_packets(&net.b, "tapioconn", 7321) - 1,
        "SYN retransmits as counted at the receiver"
    );
    assert_eq!(d["src_addr"], net.addr6_a.as_str());
    assert_eq!(d["comm"], "tapio-syn6");
}
