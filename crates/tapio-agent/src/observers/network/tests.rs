//! Classifier tests on crafted records: no kernel needed.

use std::sync::Arc;

use proptest::prelude::*;
use tapio_common::ebpf::network::{
    NetworkRecord, REC_CONNECT_FAILED, REC_F_OWNER_KNOWN, REC_F_RST, REC_RETRANSMIT, REC_RTT_SAMPLE,
};
use tapio_common::ebpf::{as_bytes, Plain, RecordHeader, TAPIO_ABI_VERSION};
use tapio_common::{Anomaly, Fact};
use tapio_wire::CompiledConfig;

use super::*;
use crate::clock::Clock;
use crate::counters::Counters;

// SAFETY-free helper: records are Plain, so as_bytes is sound.
fn bytes<T: Plain>(r: &T) -> Vec<u8> {
    as_bytes(r).to_vec()
}

fn rec(kind: u16, t_ms: u64) -> NetworkRecord {
    let mut comm = [0u8; 16];
    comm[..4].copy_from_slice(b"curl");
    let mut daddr = [0u8; 16];
    daddr[..4].copy_from_slice(&[10, 0, 0, 9]);
    let mut saddr = [0u8; 16];
    saddr[..4].copy_from_slice(&[10, 0, 0, 1]);
    NetworkRecord {
        hdr: RecordHeader {
            kind,
            size: u16::try_from(std::mem::size_of::<NetworkRecord>()).unwrap(),
            abi_version: TAPIO_ABI_VERSION,
            ts_boot_ns: t_ms * 1_000_000,
            generation: 3,
        },
        tgid: 4242,
        pid: 4243,
        comm,
        cgroup_id: 77,
        saddr,
        daddr,
        family: 2,
        sport: 40000,
        dport: 8080,
        state: 2,
        flags: REC_F_OWNER_KNOWN,
        ..NetworkRecord::default()
    }
}

fn classify(c: &mut NetworkClassifier, r: &NetworkRecord) -> Vec<Candidate> {
    let mut out = Vec::new();
    c.record(&bytes(r), &Clock::fixed(0), &mut out).unwrap();
    out
}

fn fact<'a>(c: &'a Candidate, k: &str) -> &'a Fact {
    c.key
        .get(k)
        .or_else(|| c.detail.get(k))
        .unwrap_or_else(|| panic!("fact {k} missing"))
}

#[test]
fn econnrefused_with_rst_is_refused_and_names_the_owner() {
    let mut c = NetworkClassifier::default();
    let mut r = rec(REC_CONNECT_FAILED, 5);
    r.sk_err = 111;
    r.flags |= REC_F_RST;
    r.duration_ns = 80_000;
    let out = classify(&mut c, &r);
    assert_eq!(out.len(), 1);
    let o = &out[0];
    assert_eq!(o.anomaly, Anomaly::ConnectionRefused);
    assert_eq!(fact(o, "dst_addr"), &Fact::Str("10.0.0.9".into()));
    assert_eq!(fact(o, "dst_port"), &Fact::U64(8080));
    assert_eq!(fact(o, "pid"), &Fact::U64(4242));
    assert_eq!(fact(o, "tid"), &Fact::U64(4243));
    assert_eq!(fact(o, "comm"), &Fact::Str("curl".into()));
    assert_eq!(fact(o, "reset_received"), &Fact::Bool(true));
    assert_eq!(fact(o, "syn_sent_ns"), &Fact::U64(80_000));
    assert_eq!(o.generation, 3);
    assert!(o.fold);
}

#[test]
fn etimedout_is_a_kernel_timeout_and_zero_errno_an_application_one() {
    let mut c = NetworkClassifier::default();
    let mut r = rec(REC_CONNECT_FAILED, 5);
    r.sk_err = 110;
    r.retransmits = 6;
    r.segs_out = 7;
    let k = classify(&mut c, &r);
    assert_eq!(k[0].anomaly, Anomaly::ConnectionTimeout);
    assert_eq!(fact(&k[0], "gave_up"), &Fact::Str("kernel".into()));
    assert_eq!(fact(&k[0], "syn_retransmits"), &Fact::U64(6));
    // The application closed it after 500 ms unanswered (floor 400 ms).
    r.sk_err = 0;
    r.retransmits = 0;
    r.segs_out = 1;
    r.duration_ns = 500_000_000;
    let a = classify(&mut c, &r);
    assert_eq!(fact(&a[0], "gave_up"), &Fact::Str("application".into()));
    assert_eq!(fact(&a[0], "syn_sent_ns"), &Fact::U64(500_000_000));
}

fn drops(counters: &Counters, reason: &str) -> u64 {
    counters
        .snapshot()
        .get(&format!(
            "tapio_fact_drops_total{{observer=\"network\",reason=\"{reason}\"}}"
        ))
        .copied()
        .unwrap_or(0)
}

#[test]
fn icmp_unreachable_is_a_kernel_timeout_with_its_errno_and_cause() {
    let mut c = NetworkClassifier::default();
    let mut r = rec(REC_CONNECT_FAILED, 5);
    r.segs_out = 1;
    for (errno, what) in [(113, "host"), (101, "net")] {
        r.sk_err = errno;
        let out = classify(&mut c, &r);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].anomaly, Anomaly::ConnectionTimeout);
        assert_eq!(fact(&out[0], "gave_up"), &Fact::Str("kernel".into()));
        assert_eq!(fact(&out[0], "errno"), &Fact::I64(i64::from(errno)));
        assert_eq!(fact(&out[0], "icmp_unreachable"), &Fact::Str(what.into()));
    }
}

/// sk_err 0 at SYN_SENT -> CLOSE is not "the application gave up" when the
/// SYN never left (port exhaustion) or the socket was closed before the
/// floor (a Happy Eyeballs loser): counted by reason, never a timeout.
#[test]
fn zero_errno_closes_that_are_no_timeout_are_counted_by_reason() {
    let counters = Arc::new(Counters::default());
    let mut c = NetworkClassifier::default();
    c.set_counters(Arc::clone(&counters));
    let mut r = rec(REC_CONNECT_FAILED, 5);
    r.sk_err = 0;
    r.segs_out = 0;
    r.duration_ns = 2_000_000_000;
    assert!(classify(&mut c, &r).is_empty());
    assert_eq!(drops(&counters, "connect_not_sent"), 1);
    r.segs_out = 1;
    r.duration_ns = 50_000_000;
    assert!(classify(&mut c, &r).is_empty());
    assert_eq!(drops(&counters, "connect_abandoned_early"), 1);
    // The floor is configurable: 0 reports every abandoned connect.
    let mut cfg = CompiledConfig::production_default();
    cfg.network.connect_give_up_floor_ms = 0;
    c.configure(&cfg, 4);
    assert_eq!(classify(&mut c, &r).len(), 1);
}

#[test]
fn other_errnos_are_neither_refused_nor_timeout_and_are_counted() {
    let counters = Arc::new(Counters::default());
    let mut c = NetworkClassifier::default();
    c.set_counters(Arc::clone(&counters));
    let mut r = rec(REC_CONNECT_FAILED, 5);
    r.sk_err = 104; // ECONNRESET
    assert!(classify(&mut c, &r).is_empty());
    assert_eq!(drops(&counters, "connect_other_errno"), 1);
}

#[test]
fn v4_mapped_peers_are_the_ipv4_peer() {
    let mut c = NetworkClassifier::default();
    let mut r = rec(REC_CONNECT_FAILED, 5);
    r.sk_err = 111;
    r.family = 10;
    r.daddr = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 9];
    let out = classify(&mut c, &r);
    assert_eq!(fact(&out[0], "dst_addr"), &Fact::Str("10.0.0.9".into()));
    let mut v4 = rec(REC_CONNECT_FAILED, 5);
    v4.sk_err = 111;
    let raw = |r: &NetworkRecord| c.raw_fold_key(&bytes(r)).unwrap().0.bytes;
    assert_eq!(raw(&r), raw(&v4), "one fold key for one peer");
    // A real IPv6 peer stays IPv6.
    r.daddr = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let out = classify(&mut c, &r);
    assert_eq!(fact(&out[0], "dst_addr"), &Fact::Str("fd00::2".into()));
}

#[test]
fn unknown_owner_is_absent_never_a_wrong_pid() {
    let mut c = NetworkClassifier::default();
    let mut r = rec(REC_CONNECT_FAILED, 5);
    r.sk_err = 111;
    r.flags = 0;
    let out = classify(&mut c, &r);
    assert!(out[0].key.get("pid").is_none() && out[0].detail.get("tid").is_none());
    assert!(out[0].summary_text().contains("owner=unknown"));
}

fn cfg_retrans(threshold: u32, window_ms: u32) -> CompiledConfig {
    let mut cfg = CompiledConfig::production_default();
    cfg.network.retransmit_threshold = threshold;
    cfg.network.retransmit_window_ms = window_ms;
    cfg
}

#[test]
fn retransmits_make_one_spike_per_destination_per_window_with_the_count() {
    let mut c = NetworkClassifier::default();
    c.configure(&cfg_retrans(5, 1000), 3);
    let mut out = Vec::new();
    for i in 0..7 {
        let mut r = rec(REC_RETRANSMIT, 100 + i);
        r.retransmits = 2; // two segments per retransmitted skb
        c.record(&bytes(&r), &Clock::fixed(0), &mut out).unwrap();
    }
    assert!(out.is_empty(), "judged at window close, not per segment");
    c.tick(1_099_000_000, &mut out);
    assert!(out.is_empty());
    c.tick(1_100_000_000, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].anomaly, Anomaly::RetransmitSpike);
    assert_eq!(fact(&out[0], "count"), &Fact::U64(14));
    assert_eq!(fact(&out[0], "retransmit_events"), &Fact::U64(7));
    assert_eq!(fact(&out[0], "window_start_ns"), &Fact::U64(100_000_000));
    assert_eq!(fact(&out[0], "window_end_ns"), &Fact::U64(1_100_000_000));
    assert_eq!(fact(&out[0], "pid"), &Fact::U64(4242));
    assert!(!out[0].fold);
}

#[test]
fn below_threshold_and_mixed_owners() {
    let mut c = NetworkClassifier::default();
    c.configure(&cfg_retrans(5, 1000), 3);
    let mut out = Vec::new();
    for i in 0..4 {
        c.record(&bytes(&rec(REC_RETRANSMIT, i)), &Clock::fixed(0), &mut out)
            .unwrap();
    }
    c.finish(&mut out);
    assert!(out.is_empty(), "4 < threshold 5");
    for i in 0..6 {
        let mut r = rec(REC_RETRANSMIT, i);
        if i % 2 == 0 {
            r.tgid = 9;
        }
        c.record(&bytes(&r), &Clock::fixed(0), &mut out).unwrap();
    }
    c.finish(&mut out);
    assert_eq!(out.len(), 1);
    assert!(
        out[0].detail.get("pid").is_none(),
        "two owners: no pid claimed"
    );
}

#[test]
fn rtt_baseline_converges_and_degradation_is_rate_limited() {
    let mut c = NetworkClassifier::default();
    let mut cfg = CompiledConfig::production_default();
    cfg.network.rtt_ratio_permille = 3000;
    cfg.network.rtt_floor_us = 10_000;
    cfg.network.rtt_min_samples = 5;
    cfg.network.rtt_report_interval_ms = 1000;
    c.configure(&cfg, 3);
    let mut out = Vec::new();
    let sample = |c: &mut NetworkClassifier, t: u64, us: u32, out: &mut Vec<Candidate>| {
        let mut r = rec(REC_RTT_SAMPLE, t);
        r.srtt_us = us;
        r.min_rtt_us = 150;
        c.record(&bytes(&r), &Clock::fixed(0), out).unwrap();
    };
    for t in 0..50 {
        sample(
            &mut c,
            t * 10,
            200 + u32::try_from(t % 3).unwrap(),
            &mut out,
        );
    }
    assert!(out.is_empty());
    let d = Destination {
        addr: "10.0.0.9".parse().unwrap(),
        port: 8080,
    };
    let base = c.rtt.baseline_us(&d).unwrap();
    assert!((199.0..=203.0).contains(&base), "baseline {base}");
    // Above 3x the reference but under the 10 ms floor: not degraded.
    sample(&mut c, 600, 5_000, &mut out);
    assert!(out.is_empty());
    // Above the floor: degraded, once per report interval.
    sample(&mut c, 700, 50_000, &mut out);
    sample(&mut c, 800, 60_000, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(fact(&out[0], "srtt_us"), &Fact::U64(50_000));
    assert_eq!(fact(&out[0], "threshold_us"), &Fact::U64(10_000));
    assert_eq!(fact(&out[0], "reference"), &Fact::Str("min_rtt".into()));
    assert_eq!(fact(&out[0], "reference_us"), &Fact::U64(150));
    assert_eq!(fact(&out[0], "min_rtt_us"), &Fact::U64(150));
    sample(&mut c, 1800, 60_000, &mut out);
    assert_eq!(out.len(), 2);
    // Degraded samples never moved the baseline.
    assert!(c.rtt.baseline_us(&d).unwrap() < 1_000.0);
}

/// A fresh destination that degrades a second after connect: judged from
/// its first sample against the socket's own minimum RTT; the degraded
/// samples never become the baseline (they were its warm-up before).
#[test]
fn a_fresh_destination_degrading_during_warm_up_is_reported_and_never_learnt() {
    let mut c = NetworkClassifier::default();
    let mut out = Vec::new();
    let d = Destination {
        addr: "10.0.0.9".parse().unwrap(),
        port: 8080,
    };
    let mut r = rec(REC_RTT_SAMPLE, 0);
    r.min_rtt_us = 56;
    r.srtt_us = 60;
    c.record(&bytes(&r), &Clock::fixed(0), &mut out).unwrap();
    r.hdr.ts_boot_ns = 1_000_000_000;
    r.srtt_us = 126_000;
    c.record(&bytes(&r), &Clock::fixed(0), &mut out).unwrap();
    assert_eq!(out.len(), 1, "the second sample is already judged");
    assert_eq!(fact(&out[0], "reference_us"), &Fact::U64(56));
    for t in 2..10 {
        r.hdr.ts_boot_ns = t * 1_000_000_000;
        r.srtt_us = 272_000;
        c.record(&bytes(&r), &Clock::fixed(0), &mut out).unwrap();
    }
    assert!(
        c.rtt.baseline_us(&d).is_none(),
        "degraded samples taught nothing"
    );
}

/// A socket born into a slow period has a slow minimum RTT of its own; the
/// destination's baseline from earlier sockets still judges it.
#[test]
fn a_socket_born_slow_is_judged_by_the_destination_baseline() {
    let mut c = NetworkClassifier::default();
    let mut out = Vec::new();
    let mut r = rec(REC_RTT_SAMPLE, 0);
    r.min_rtt_us = 100;
    for t in 0..6 {
        r.hdr.ts_boot_ns = t * 1_000_000_000;
        r.srtt_us = 120;
        c.record(&bytes(&r), &Clock::fixed(0), &mut out).unwrap();
    }
    assert!(out.is_empty());
    r.sport = 40001;
    r.min_rtt_us = 90_000;
    r.srtt_us = 95_000;
    r.hdr.ts_boot_ns = 7_000_000_000;
    c.record(&bytes(&r), &Clock::fixed(0), &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(fact(&out[0], "reference"), &Fact::Str("baseline".into()));
    assert_eq!(fact(&out[0], "reference_us"), &Fact::U64(120));
}

#[test]
fn malformed_records_are_reported_not_classified() {
    let mut c = NetworkClassifier::default();
    let mut out = Vec::new();
    let good = bytes(&{
        let mut r = rec(REC_CONNECT_FAILED, 1);
        r.sk_err = 111;
        r
    });
    assert_eq!(
        c.record(&good[..50], &Clock::fixed(0), &mut out),
        Err(Malformed::Truncated { len: 50 })
    );
    let mut r = rec(REC_CONNECT_FAILED, 1);
    r.hdr.size = 64;
    assert!(matches!(
        c.record(&bytes(&r), &Clock::fixed(0), &mut out),
        Err(Malformed::SizeMismatch { .. })
    ));
    r = rec(99, 1);
    assert_eq!(
        c.record(&bytes(&r), &Clock::fixed(0), &mut out),
        Err(Malformed::UnknownKind { kind: 99 })
    );
    r = rec(REC_CONNECT_FAILED, 1);
    r.hdr.abi_version = 2;
    assert_eq!(
        c.record(&bytes(&r), &Clock::fixed(0), &mut out),
        Err(Malformed::AbiVersion { version: 2 })
    );
    assert!(out.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Garbage of any length never panics: it is either a record or an error.
    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut c = NetworkClassifier::default();
        let mut out = Vec::new();
        let _ = c.record(&data, &Clock::fixed(0), &mut out);
        c.tick(u64::MAX - 1, &mut out);
    }

    /// Any prefix of a valid record shorter than the record is truncated.
    #[test]
    fn truncated_valid_records_are_malformed(cut in 0usize..128, kind in 1u16..=3) {
        let mut c = NetworkClassifier::default();
        let mut r = rec(kind, 1);
        r.sk_err = 111;
        let b = bytes(&r);
        let mut out = Vec::new();
        prop_assert!(c.record(&b[..cut], &Clock::fixed(0), &mut out).is_err());
        prop_assert!(out.is_empty());
    }

    /// Oversized buffers (trailing bytes) with a valid header still parse
    /// the record, and arbitrary field values never panic.
    #[test]
    fn oversized_and_random_fields(extra in 0usize..64, err in any::<i32>(), flags in any::<u32>(), srtt in any::<u32>(), segs in any::<u32>(), ts in any::<u64>(), fam in any::<u16>()) {
        let mut c = NetworkClassifier::default();
        for kind in [REC_CONNECT_FAILED, REC_RETRANSMIT, REC_RTT_SAMPLE] {
            let mut r = rec(kind, 1);
            r.sk_err = err;
            r.flags = flags;
            r.srtt_us = srtt;
            r.retransmits = segs;
            r.hdr.ts_boot_ns = ts;
            r.family = fam;
            let mut b = bytes(&r);
            b.extend(std::iter::repeat_n(0xAAu8, extra));
            let mut out = Vec::new();
            prop_assert!(c.record(&b, &Clock::fixed(u64::MAX / 2), &mut out).is_ok());
        }
        let mut out = Vec::new();
        c.finish(&mut out);
    }
}

#[test]
fn connect_failure_messages_state_the_facts_with_or_without_an_owner() {
    let mut c = NetworkClassifier::default();
    let mut r = rec(REC_CONNECT_FAILED, 5);
    r.segs_out = 1;
    let mut text = Vec::new();
    for owner in [REC_F_OWNER_KNOWN, 0] {
        r.flags = owner;
        for errno in [111, 110, 113] {
            r.sk_err = errno;
            text.push(classify(&mut c, &r)[0].summary_text());
        }
    }
    assert_eq!(
        text,
        [
            "connect to 10.0.0.9:8080 refused pid=4242 comm=curl",
            "connect to 10.0.0.9:8080 timed out (kernel gave up) pid=4242 comm=curl",
            "connect to 10.0.0.9:8080 failed: ICMP host unreachable pid=4242 comm=curl",
            "connect to 10.0.0.9:8080 refused owner=unknown",
            "connect to 10.0.0.9:8080 timed out (kernel gave up) owner=unknown",
            "connect to 10.0.0.9:8080 failed: ICMP host unreachable owner=unknown",
        ]
    );
}
