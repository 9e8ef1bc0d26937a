//! Container classifier tests on crafted records: no kernel needed.

use std::sync::Arc;

use tapio_common::ebpf::container::{
    ContainerRecord, REC_ABNORMAL_EXIT, REC_F_MEMCG_KNOWN, REC_F_MEMCG_V1, REC_OOM_KILL,
    STAT_OOM_MARK_FAILED,
};
use tapio_common::ebpf::{
    as_bytes, read_record, RecordHeader, TAPIO_ABI_VERSION, TAPIO_CFG_ENABLED,
};
use tapio_common::{Anomaly, Fact, Severity};
use tapio_wire::CompiledConfig;

use super::*;
use crate::clock::Clock;
use crate::counters::Counters;

const PAGE: u64 = 4096;

fn rec(kind: u16) -> ContainerRecord {
    let mut comm = [0u8; 16];
    comm[..4].copy_from_slice(b"tail");
    ContainerRecord {
        hdr: RecordHeader {
            kind,
            size: u16::try_from(size_of::<ContainerRecord>()).unwrap(),
            abi_version: TAPIO_ABI_VERSION,
            ts_boot_ns: 5_000_000,
            generation: 4,
        },
        tgid: 3100,
        pid: 3101,
        comm,
        memcg_id: 8429,
        cgroup2_id: 1,
        mem_usage_pages: 16384,
        mem_limit_pages: 16384,
        flags: REC_F_MEMCG_KNOWN | REC_F_MEMCG_V1,
        ..ContainerRecord::default()
    }
}

fn classify(r: &ContainerRecord) -> Candidate {
    let mut c = ContainerClassifier::new(PAGE);
    let mut out = Vec::new();
    c.record(as_bytes(r), &Clock::fixed(1_000), &mut out)
        .unwrap();
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

fn fact(c: &Candidate, k: &str) -> Option<Fact> {
    c.key.get(k).or_else(|| c.detail.get(k)).cloned()
}

#[test]
fn oom_kill_carries_victim_memcg_and_limit_in_bytes() {
    let c = classify(&rec(REC_OOM_KILL));
    assert_eq!(c.anomaly, Anomaly::OomKill);
    assert_eq!(c.severity, Severity::Critical);
    assert_eq!(c.generation, 4);
    assert_eq!(c.unix_ns, 5_001_000);
    assert_eq!(fact(&c, "pid"), Some(Fact::U64(3100)));
    assert_eq!(fact(&c, "tid"), Some(Fact::U64(3101)));
    assert_eq!(fact(&c, "comm"), Some(Fact::Str("tail".into())));
    assert_eq!(fact(&c, "cgroup_id"), Some(Fact::U64(8429)));
    assert_eq!(fact(&c, "memcg_hierarchy"), Some(Fact::Str("v1".into())));
    assert_eq!(fact(&c, "memory_limit_bytes"), Some(Fact::U64(64 << 20)));
    assert_eq!(fact(&c, "memory_usage_bytes"), Some(Fact::U64(64 << 20)));
    assert_eq!(fact(&c, "memory_limit_unlimited"), Some(Fact::Bool(false)));
    assert_eq!(fact(&c, "signal"), Some(Fact::U64(9)));
    assert!(c.fold);
}

#[test]
fn page_counter_max_is_unlimited_never_a_number() {
    // A memcg without a limit holds PAGE_COUNTER_MAX = LONG_MAX / PAGE_SIZE.
    let mut r = rec(REC_OOM_KILL);
    r.mem_limit_pages = i64::MAX.unsigned_abs() / PAGE;
    let c = classify(&r);
    assert_eq!(fact(&c, "memory_limit_bytes"), Some(Fact::U64(0)));
    assert_eq!(fact(&c, "memory_limit_unlimited"), Some(Fact::Bool(true)));
    assert!(c.summary.contains("no limit"), "{}", c.summary);
}

#[test]
fn unknown_memcg_claims_no_cgroup_or_memory_facts() {
    let mut r = rec(REC_OOM_KILL);
    r.flags = 0;
    let c = classify(&r);
    assert_eq!(fact(&c, "cgroup_id"), None);
    assert_eq!(fact(&c, "memory_limit_bytes"), None);
    assert_eq!(fact(&c, "memory_usage_bytes"), None);
    assert!(c.summary.contains("memcg=unknown"));
}

#[test]
fn signal_death_reports_signal_and_shell_exit_code() {
    let mut r = rec(REC_ABNORMAL_EXIT);
    r.exit_code = 11 | 0x80;
    let c = classify(&r);
    assert_eq!(c.anomaly, Anomaly::AbnormalExit);
    assert_eq!(fact(&c, "signal"), Some(Fact::U64(11)));
    assert_eq!(fact(&c, "signal_name"), Some(Fact::Str("SIGSEGV".into())));
    assert_eq!(fact(&c, "core_dumped"), Some(Fact::Bool(true)));
    assert_eq!(fact(&c, "exit_code"), Some(Fact::U64(139)));
    assert_eq!(fact(&c, "wait_status"), Some(Fact::U64(139)));
}

#[test]
fn exit_code_death_has_no_signal() {
    let mut r = rec(REC_ABNORMAL_EXIT);
    r.exit_code = 3 << 8;
    let c = classify(&r);
    assert_eq!(fact(&c, "exit_code"), Some(Fact::U64(3)));
    assert_eq!(fact(&c, "signal"), None);
    assert!(c.summary.contains("exited with code 3"), "{}", c.summary);
}

#[test]
fn truncated_and_foreign_records_are_malformed() {
    let mut c = ContainerClassifier::new(PAGE);
    let mut out = Vec::new();
    let r = rec(REC_OOM_KILL);
    let b = as_bytes(&r);
    assert!(c
        .record(&b[..b.len() - 1], &Clock::fixed(0), &mut out)
        .is_err());
    let mut bad = r;
    bad.hdr.kind = 9;
    assert!(c
        .record(as_bytes(&bad), &Clock::fixed(0), &mut out)
        .is_err());
    assert!(out.is_empty());
}

#[test]
fn filter_maps_signals_to_bit_n_minus_1_and_codes_to_bit_n() {
    let cfg = CompiledConfig::production_default();
    let (sigs, codes) = exit_filter(&cfg.container);
    for s in [4u32, 6, 7, 8, 9, 11, 31] {
        assert_ne!(sigs & (1 << (s - 1)), 0, "signal {s}");
    }
    assert_eq!(sigs.count_ones(), 7);
    assert_eq!(codes, [0; 4], "plain exit codes are off by default");
    let mut s = cfg.container.clone();
    s.exit_codes = vec![0, 1, 64, 255];
    s.fatal_signals = vec![0, 64, 65];
    let (sigs, codes) = exit_filter(&s);
    assert_eq!(sigs, 1 << 63, "0 and 65 are not signals");
    assert_eq!(codes, [1 << 1, 1, 0, 1 << 63], "exit 0 is never abnormal");
}

#[test]
fn carrier_is_silent_when_disabled() {
    let mut cfg = CompiledConfig::production_default();
    let on: ContainerConfig = read_record(&carrier(&cfg, 7).unwrap()).unwrap();
    assert_eq!(on.hdr.generation, 7);
    assert_eq!(on.hdr.abi_version, TAPIO_ABI_VERSION);
    assert_eq!(
        on.hdr.flags,
        TAPIO_CFG_ENABLED | CFG_OOM_KILL | CFG_ABNORMAL_EXIT
    );
    cfg.container.enabled = false;
    let off: ContainerConfig = read_record(&carrier(&cfg, 8).unwrap()).unwrap();
    assert_eq!(off.hdr.flags & TAPIO_CFG_ENABLED, 0);
}

#[test]
fn failed_marks_are_not_counted_twice() {
    let mut c = ContainerClassifier::new(PAGE);
    c.set_counters(Arc::new(Counters::default()));
    let mut stats = [0u64; 16];
    stats[STAT_OOM_MARK_FAILED as usize] = 2;
    c.kernel_stats(&stats);
    c.kernel_stats(&stats);
    assert_eq!(c.mark_failed_seen, 2);
}
