//! Storage tests without a kernel: the correlation rules (B9) on the model
//! of the kernel side, and the classifier on crafted records.

use std::sync::Arc;

use tapio_common::ebpf::storage::{
    StorageRecord, REC_F_CLOCK_ALLOC, REC_F_CLOCK_IO_START, REC_F_CRITICAL, REC_IO_ERROR,
    REC_LATENCY, STAT_AMBIGUOUS, STAT_INFLIGHT_FULL, STAT_MISSING_ISSUE, STAT_PARTIAL_ERROR,
    STAT_REQUEUED,
};
use tapio_common::ebpf::{
    as_bytes, read_record, RecordHeader, TAPIO_ABI_VERSION, TAPIO_CFG_ENABLED,
};
use tapio_common::{Anomaly, Fact, Severity};
use tapio_wire::CompiledConfig;

use super::model::{Model, Outcome};
use super::*;
use crate::clock::Clock;
use crate::counters::Counters;

const MS: u64 = 1_000_000;
const BLK_STS_IOERR: u32 = 10;

// ---- correlation rules (model of ebpf/storage_monitor.c) ----

#[test]
fn issue_then_final_completion_is_judged_once() {
    let mut m = Model::new(8, 100 * MS);
    assert_eq!(m.issue(0xa0, 0), Outcome::Quiet);
    assert_eq!(
        m.complete(0xa0, 300 * MS, 0, 4096, 4096),
        Outcome::Record(0, 300 * MS)
    );
    assert_eq!(m.len(), 0);
    // The same request pointer reused for the next I/O is a fresh issue.
    assert_eq!(m.issue(0xa0, 400 * MS), Outcome::Quiet);
    assert_eq!(m.complete(0xa0, 401 * MS, 0, 4096, 4096), Outcome::Quiet);
}

#[test]
fn error_crosses_even_when_fast() {
    let mut m = Model::new(8, 100 * MS);
    m.issue(1, 0);
    assert_eq!(
        m.complete(1, MS, BLK_STS_IOERR, 4096, 4096),
        Outcome::Record(BLK_STS_IOERR, MS)
    );
}

#[test]
fn duplicate_issue_drops_both_the_lost_issue_and_the_completion() {
    let mut m = Model::new(8, 100 * MS);
    m.issue(7, 0);
    assert_eq!(m.issue(7, 50 * MS), Outcome::Counted(STAT_AMBIGUOUS));
    // Whichever issue this completion belongs to, its latency is unknown:
    // 500 ms from the first, 450 ms from the second. Never emitted.
    assert_eq!(
        m.complete(7, 500 * MS, BLK_STS_IOERR, 512, 512),
        Outcome::Counted(STAT_AMBIGUOUS)
    );
    assert_eq!(m.len(), 0, "the ambiguous entry does not linger");
}

#[test]
fn completion_without_issue_is_dropped_and_counted() {
    let mut m = Model::new(8, 100 * MS);
    assert_eq!(
        m.complete(9, 500 * MS, BLK_STS_IOERR, 512, 512),
        Outcome::Counted(STAT_MISSING_ISSUE)
    );
}

#[test]
fn requeue_forgets_the_issue_and_the_reissue_starts_over() {
    let mut m = Model::new(8, 100 * MS);
    m.issue(3, 0);
    // A short read: partial completion, then the driver requeues the rest.
    assert_eq!(m.complete(3, 10 * MS, 0, 2048, 4096), Outcome::Quiet);
    assert_eq!(m.requeue(3), Outcome::Counted(STAT_REQUEUED));
    // Time in the requeue list is not device latency: counted from reissue.
    assert_eq!(m.issue(3, 900 * MS), Outcome::Quiet);
    assert_eq!(m.complete(3, 910 * MS, 0, 2048, 2048), Outcome::Quiet);
    // A requeue of a request never tracked counts nothing.
    assert_eq!(m.requeue(4), Outcome::Quiet);
}

#[test]
fn partial_completions_are_not_judged_and_partial_errors_counted() {
    let mut m = Model::new(8, 100 * MS);
    m.issue(5, 0);
    assert_eq!(m.complete(5, 200 * MS, 0, 4096, 8192), Outcome::Quiet);
    assert_eq!(
        m.complete(5, 250 * MS, BLK_STS_IOERR, 2048, 4096),
        Outcome::Counted(STAT_PARTIAL_ERROR)
    );
    assert_eq!(m.len(), 1, "still in flight after partials");
    assert_eq!(
        m.complete(5, 300 * MS, BLK_STS_IOERR, 2048, 2048),
        Outcome::Record(BLK_STS_IOERR, 300 * MS)
    );
}

#[test]
fn full_table_leaves_the_issue_untracked_and_its_completion_missing() {
    let mut m = Model::new(2, 100 * MS);
    m.issue(1, 0);
    m.issue(2, 0);
    assert_eq!(m.issue(3, 0), Outcome::Counted(STAT_INFLIGHT_FULL));
    assert_eq!(
        m.complete(3, 500 * MS, 0, 512, 512),
        Outcome::Counted(STAT_MISSING_ISSUE)
    );
    assert_eq!(
        m.complete(1, 500 * MS, 0, 512, 512),
        Outcome::Record(0, 500 * MS)
    );
}

// ---- classifier on crafted records ----

fn rec(kind: u16) -> StorageRecord {
    StorageRecord {
        hdr: RecordHeader {
            kind,
            size: u16::try_from(size_of::<StorageRecord>()).unwrap(),
            abi_version: TAPIO_ABI_VERSION,
            ts_boot_ns: 9 * MS,
            generation: 2,
        },
        sector: 16384,
        latency_ns: 310 * MS,
        dev: (7 << 20) | 3,
        bytes: 4096,
        op: 0,
        status: 0,
        flags: 0,
        _pad0: 0,
    }
}

fn no_names(_: u32, _: u32) -> Option<String> {
    None
}

fn loop3(major: u32, minor: u32) -> Option<String> {
    (major == 7 && minor == 3).then(|| "loop3".to_owned())
}

fn classify(r: &StorageRecord) -> Candidate {
    let mut c = StorageClassifier::new(loop3);
    let mut out = Vec::new();
    c.record(as_bytes(r), &Clock::fixed(0), &mut out).unwrap();
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

fn fact(c: &Candidate, k: &str) -> Option<Fact> {
    c.key.get(k).or_else(|| c.detail.get(k)).cloned()
}

/// Linux 5.10's block_rq_complete passes an errno, not a blk_status_t: the
/// errno is reported as is and no blk_status is made up.
#[test]
fn io_error_from_a_kernel_that_passes_the_errno_has_no_blk_status() {
    let mut r = rec(REC_IO_ERROR);
    r.status = 5;
    r.flags |= tapio_common::ebpf::storage::REC_F_ERRNO;
    let c = classify(&r);
    assert_eq!(fact(&c, "errno"), Some(Fact::I64(5)));
    assert_eq!(fact(&c, "blk_status"), None);
}

#[test]
fn io_error_names_device_sector_bytes_op_and_errno() {
    let mut r = rec(REC_IO_ERROR);
    r.status = BLK_STS_IOERR;
    let c = classify(&r);
    assert_eq!(c.anomaly, Anomaly::IoError);
    assert_eq!(c.generation, 2);
    assert_eq!(fact(&c, "device"), Some(Fact::Str("7:3".into())));
    assert_eq!(fact(&c, "major"), Some(Fact::U64(7)));
    assert_eq!(fact(&c, "minor"), Some(Fact::U64(3)));
    assert_eq!(fact(&c, "device_name"), Some(Fact::Str("loop3".into())));
    assert_eq!(fact(&c, "sector"), Some(Fact::U64(16384)));
    assert_eq!(fact(&c, "bytes"), Some(Fact::U64(4096)));
    assert_eq!(fact(&c, "op"), Some(Fact::Str("read".into())));
    assert_eq!(fact(&c, "errno"), Some(Fact::I64(5)));
    assert_eq!(fact(&c, "blk_status"), Some(Fact::U64(10)));
    // Storms fold per device, op and errno; the sector is this fact's own.
    assert!(c.key.get("sector").is_none());
}

#[test]
fn latency_spike_level_comes_from_the_kernel_judgement() {
    let c = classify(&rec(REC_LATENCY));
    assert_eq!(c.anomaly, Anomaly::LatencySpike);
    assert_eq!(c.severity, Severity::Warning);
    assert_eq!(fact(&c, "level"), Some(Fact::Str("warning".into())));
    assert_eq!(fact(&c, "latency_us"), Some(Fact::U64(310_000)));
    assert_eq!(fact(&c, "threshold_us"), Some(Fact::U64(100_000)));
    let mut r = rec(REC_LATENCY);
    r.flags = REC_F_CRITICAL;
    r.latency_ns = 1_500 * MS;
    let c = classify(&r);
    assert_eq!(c.severity, Severity::Critical);
    assert_eq!(fact(&c, "level"), Some(Fact::Str("critical".into())));
}

#[test]
fn latency_clock_names_the_stamp_the_kernel_measured_from() {
    let mut r = rec(REC_LATENCY);
    for (flags, clock) in [
        (REC_F_CLOCK_IO_START, "io_start"),
        (REC_F_CLOCK_ALLOC, "alloc"),
        (0, "issue_hook"),
        (REC_F_CLOCK_IO_START | REC_F_CRITICAL, "io_start"),
    ] {
        r.flags = flags;
        let c = classify(&r);
        assert_eq!(fact(&c, "latency_clock"), Some(Fact::Str(clock.into())));
    }
}

#[test]
fn unknown_device_name_is_absent_not_guessed() {
    let mut c = StorageClassifier::new(no_names);
    let mut out = Vec::new();
    c.record(as_bytes(&rec(REC_LATENCY)), &Clock::fixed(0), &mut out)
        .unwrap();
    assert_eq!(out[0].detail.get("device_name"), None);
    assert_eq!(
        out[0].summary_text(),
        "read of 4096 bytes at sector 16384 on 7:3 took 310000 us (warning)"
    );
}

#[test]
fn messages_name_the_device_and_state_the_facts() {
    let mut c = StorageClassifier::new(loop3);
    let mut out = Vec::new();
    let mut slow = rec(REC_LATENCY);
    slow.flags = REC_F_CRITICAL;
    let mut failed = rec(REC_IO_ERROR);
    failed.status = 10; // BLK_STS_IOERR
    failed.op = 1;
    for r in [slow, failed] {
        c.record(as_bytes(&r), &Clock::fixed(0), &mut out).unwrap();
    }
    let text: Vec<String> = out.iter().map(Candidate::summary_text).collect();
    assert_eq!(
        text,
        [
            "read of 4096 bytes at sector 16384 on loop3 (7:3) took 310000 us (critical)",
            "write of 4096 bytes at sector 16384 on loop3 (7:3) failed: errno 5",
        ]
    );
    // As the occurrence writes it: the template over the same facts.
    let o = out.remove(1).into_occurrence(None);
    assert_eq!(o.message_text(), text[1]);
}

#[test]
fn malformed_records_are_rejected() {
    let mut c = StorageClassifier::new(no_names);
    let mut out = Vec::new();
    let r = rec(REC_IO_ERROR);
    assert!(c
        .record(&as_bytes(&r)[..40], &Clock::fixed(0), &mut out)
        .is_err());
    let mut bad = r;
    bad.hdr.size = 63;
    assert!(c
        .record(as_bytes(&bad), &Clock::fixed(0), &mut out)
        .is_err());
    assert!(out.is_empty());
}

#[test]
fn kernel_drop_totals_are_mirrored_as_deltas_per_reason() {
    let counters = Arc::new(Counters::default());
    let mut c = StorageClassifier::new(no_names);
    c.set_counters(Arc::clone(&counters));
    let mut s = [0u64; 16];
    s[STAT_AMBIGUOUS as usize] = 3;
    s[STAT_MISSING_ISSUE as usize] = 1;
    c.kernel_stats(&s);
    s[STAT_AMBIGUOUS as usize] = 5;
    s[STAT_REQUEUED as usize] = 2;
    s[STAT_INFLIGHT_FULL as usize] = 4;
    c.kernel_stats(&s);
    c.kernel_stats(&s);
    let snap = counters.snapshot();
    let get = |r: &str| {
        snap[&format!("tapio_correlation_drops_total{{observer=\"storage\",reason=\"{r}\"}}")]
    };
    assert_eq!(get("ambiguous_inflight_io"), 5);
    assert_eq!(get("missing_issue"), 1);
    assert_eq!(get("requeued"), 2);
    assert_eq!(get("inflight_table_full"), 4);
}

#[test]
fn carrier_converts_thresholds_and_drops_latency_without_a_warning() {
    let mut cfg = CompiledConfig::production_default();
    let c: StorageConfig = read_record(&carrier(&cfg, 3).unwrap()).unwrap();
    assert_eq!(c.hdr.flags, TAPIO_CFG_ENABLED | CFG_IO_ERRORS | CFG_LATENCY);
    assert_eq!(c.latency_warning_ns, 100_000_000);
    assert_eq!(c.latency_critical_ns, 1_000_000_000);
    cfg.storage.latency_warning_us = 0;
    let c: StorageConfig = read_record(&carrier(&cfg, 3).unwrap()).unwrap();
    assert_eq!(c.hdr.flags & CFG_LATENCY, 0);
}
