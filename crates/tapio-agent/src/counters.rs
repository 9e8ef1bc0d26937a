//! Agent counters: every counted occurrence of the pipeline, metrics-ready.
//!
//! Fixed arrays of atomics indexed by small closed label sets (observer,
//! anomaly, sink, reason), so counting on the hot path is one relaxed add.
//! [`Counters::snapshot`] renders them with Prometheus-style names and
//! labels; the metrics endpoint and the status file read that.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use tapio_common::{Anomaly, Observer};

mod cgroup;
pub use cgroup::{CgroupLookup, CgroupResolution};

/// Sinks, as counter labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SinkKind {
    /// JSON lines on stdout.
    Stdout,
    /// One file per occurrence.
    File,
    /// Batched JSON POST.
    Http,
    /// tapio-wire/v1 event batches.
    Controller,
    /// OTLP/HTTP logs.
    Otlp,
}

impl SinkKind {
    /// Every sink.
    pub const ALL: [SinkKind; 5] = [
        SinkKind::Stdout,
        SinkKind::File,
        SinkKind::Http,
        SinkKind::Controller,
        SinkKind::Otlp,
    ];

    /// Label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            SinkKind::Stdout => "stdout",
            SinkKind::File => "file",
            SinkKind::Http => "http",
            SinkKind::Controller => "controller",
            SinkKind::Otlp => "otlp",
        }
    }

    /// Parses a `--sink` value.
    #[must_use]
    pub fn parse(s: &str) -> Option<SinkKind> {
        SinkKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Why a sink dropped occurrences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkDrop {
    /// The sink's bounded queue was full.
    QueueFull,
    /// The write failed (after any retries the sink does).
    WriteFailed,
    /// The filesystem was out of space or quota (`ENOSPC`, `EDQUOT`).
    DiskFull,
    /// Still queued when the shutdown deadline passed.
    ShutdownDeadline,
    /// In a write that had not returned at the shutdown deadline: it may or
    /// may not have reached the sink.
    ShutdownInFlight,
}

impl SinkDrop {
    const ALL: [SinkDrop; 5] = [
        SinkDrop::QueueFull,
        SinkDrop::WriteFailed,
        SinkDrop::DiskFull,
        SinkDrop::ShutdownDeadline,
        SinkDrop::ShutdownInFlight,
    ];

    /// Label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            SinkDrop::QueueFull => "queue_full",
            SinkDrop::WriteFailed => "write_failed",
            SinkDrop::DiskFull => "disk_full",
            SinkDrop::ShutdownDeadline => "shutdown_deadline",
            SinkDrop::ShutdownInFlight => "shutdown_in_flight",
        }
    }

    /// The reason a failed write is counted under: `disk_full` for
    /// `ENOSPC`/`EDQUOT`, else `write_failed`.
    #[must_use]
    pub fn of(e: &tapio_common::SinkError) -> SinkDrop {
        match e {
            tapio_common::SinkError::Io { source, .. }
                if matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) =>
            {
                SinkDrop::DiskFull
            }
            tapio_common::SinkError::Partial { source, .. } => SinkDrop::of(source),
            _ => SinkDrop::WriteFailed,
        }
    }
}

/// Why a kernel fact produced no occurrence although it crossed into
/// userspace (missing evidence is counted, wrong evidence is not emitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactDrop {
    /// A connect left SYN_SENT with an errno that is neither a refusal nor
    /// a timeout (e.g. an ICMP unreachable).
    ConnectOtherErrno,
    /// A connect left SYN_SENT without its SYN ever sent (ephemeral port
    /// exhaustion, no buffer): a local failure, not a timeout.
    ConnectNotSent,
    /// The application closed a connecting socket before the give-up
    /// floor (e.g. the loser of a Happy Eyeballs race).
    ConnectAbandonedEarly,
    /// A per-destination table was full.
    TableFull,
    /// Storage completion could not be uniquely correlated (in-kernel
    /// count, mirrored here): ambiguous in-flight key.
    AmbiguousInflightIo,
    /// Storage completion without a matching issue.
    MissingIssue,
    /// Storage request requeued while in flight.
    Requeued,
    /// In-flight table full at issue time.
    InflightTableFull,
    /// An OOM kill whose victim task could not be identified (a kernel
    /// whose `mark_victim` gives only a pid, without the SIGKILL seen).
    OomVictimUnknown,
    /// An iterator pass (the network observer's RTT samples) failed: that
    /// interval's samples are missing.
    IterPassFailed,
}

impl FactDrop {
    const ALL: [FactDrop; 10] = [
        FactDrop::ConnectOtherErrno,
        FactDrop::ConnectNotSent,
        FactDrop::ConnectAbandonedEarly,
        FactDrop::TableFull,
        FactDrop::AmbiguousInflightIo,
        FactDrop::MissingIssue,
        FactDrop::Requeued,
        FactDrop::InflightTableFull,
        FactDrop::OomVictimUnknown,
        FactDrop::IterPassFailed,
    ];

    /// Label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            FactDrop::ConnectOtherErrno => "connect_other_errno",
            FactDrop::ConnectNotSent => "connect_not_sent",
            FactDrop::ConnectAbandonedEarly => "connect_abandoned_early",
            FactDrop::TableFull => "table_full",
            FactDrop::AmbiguousInflightIo => "ambiguous_inflight_io",
            FactDrop::MissingIssue => "missing_issue",
            FactDrop::Requeued => "requeued",
            FactDrop::InflightTableFull => "inflight_table_full",
            FactDrop::OomVictimUnknown => "oom_victim_unknown",
            FactDrop::IterPassFailed => "iter_pass_failed",
        }
    }

    /// True for the storage correlation reasons of B9
    /// (`tapio_correlation_drops_total`).
    #[must_use]
    pub const fn is_correlation(self) -> bool {
        matches!(
            self,
            FactDrop::AmbiguousInflightIo
                | FactDrop::MissingIssue
                | FactDrop::Requeued
                | FactDrop::InflightTableFull
                | FactDrop::OomVictimUnknown
        )
    }
}

const OBS: usize = Observer::ALL.len();
const ANOM: usize = Anomaly::ALL.len();
const SINKS: usize = SinkKind::ALL.len();

fn obs_idx(o: Observer) -> usize {
    o as usize
}

fn anom_idx(a: Anomaly) -> usize {
    a as usize
}

type Row<const N: usize> = [AtomicU64; N];

/// All agent counters.
#[derive(Debug, Default)]
pub struct Counters {
    events: Row<OBS>,
    malformed: Row<OBS>,
    lost: Row<OBS>,
    abi_mismatch: Row<OBS>,
    drain_cap: Row<OBS>,
    anomalies: Row<ANOM>,
    facts: Row<ANOM>,
    fact_drops: [Row<{ FactDrop::ALL.len() }>; OBS],
    sink_ok: Row<SINKS>,
    sink_err: Row<SINKS>,
    sink_delivered: Row<SINKS>,
    sink_drops: [Row<{ SinkDrop::ALL.len() }>; SINKS],
    controller_send_failures: Row<3>,
    config_fetch: Row<4>,
    config_errors: Row<OBS>,
    cgroup_lookups: Row<{ CgroupLookup::ALL.len() }>,
    cgroup_resolutions: Row<{ CgroupResolution::ALL.len() }>,
}

/// Controller exchanges, as labels of `tapio_controller_send_failures_total`.
#[derive(Debug, Clone, Copy)]
pub enum ControllerCall {
    /// POST /v1/agents/hello.
    Hello = 0,
    /// POST /v1/agents/heartbeat.
    Heartbeat = 1,
    /// POST /v1/events.
    Events = 2,
}

/// Outcomes of a config poll.
#[derive(Debug, Clone, Copy)]
pub enum ConfigFetch {
    /// New config received.
    Updated = 0,
    /// 304 Not Modified.
    Unchanged = 1,
    /// Transport or status failure.
    Failed = 2,
    /// Body did not parse.
    Invalid = 3,
}

fn inc(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl Counters {
    /// A record drained from an observer's ring.
    pub fn event(&self, o: Observer) {
        inc(&self.events[obs_idx(o)], 1);
    }

    /// A malformed record dropped.
    pub fn malformed(&self, o: Observer) {
        inc(&self.malformed[obs_idx(o)], 1);
    }

    /// Kernel-side totals (read from the per-CPU stats map): stored, not added.
    pub fn set_kernel_totals(&self, o: Observer, lost: u64, abi_mismatch: u64) {
        self.lost[obs_idx(o)].store(lost, Ordering::Relaxed);
        self.abi_mismatch[obs_idx(o)].store(abi_mismatch, Ordering::Relaxed);
    }

    /// A drain pass stopped at the per-tick cap.
    pub fn drain_cap(&self, o: Observer) {
        inc(&self.drain_cap[obs_idx(o)], 1);
    }

    /// An occurrence emitted, standing for `facts` kernel facts.
    pub fn anomaly(&self, a: Anomaly, facts: u64) {
        inc(&self.anomalies[anom_idx(a)], 1);
        inc(&self.facts[anom_idx(a)], facts);
    }

    /// A fact dropped in userspace.
    pub fn fact_drop(&self, o: Observer, r: FactDrop) {
        self.fact_drops_add(o, r, 1);
    }

    /// `n` facts dropped (or a kernel total delta) for `r`.
    pub fn fact_drops_add(&self, o: Observer, r: FactDrop, n: u64) {
        let i = FactDrop::ALL.iter().position(|x| *x == r).unwrap_or(0);
        inc(&self.fact_drops[obs_idx(o)][i], n);
    }

    /// A sink write attempt (one batch).
    pub fn sink_write(&self, s: SinkKind, ok: bool) {
        let row = if ok { &self.sink_ok } else { &self.sink_err };
        inc(&row[s as usize], 1);
    }

    /// Occurrences a sink wrote.
    pub fn sink_delivered(&self, s: SinkKind, n: u64) {
        inc(&self.sink_delivered[s as usize], n);
    }

    /// Occurrences a sink dropped.
    pub fn sink_drop(&self, s: SinkKind, r: SinkDrop, n: u64) {
        let i = SinkDrop::ALL.iter().position(|x| *x == r).unwrap_or(0);
        inc(&self.sink_drops[s as usize][i], n);
    }

    /// A failed exchange with the controller.
    pub fn controller_send_failure(&self, c: ControllerCall) {
        inc(&self.controller_send_failures[c as usize], 1);
    }

    /// A config poll outcome.
    pub fn config_fetch(&self, r: ConfigFetch) {
        inc(&self.config_fetch[r as usize], 1);
    }

    /// A carrier that failed to take a config.
    pub fn config_error(&self, o: Observer) {
        inc(&self.config_errors[obs_idx(o)], 1);
    }

    /// An attribution cache lookup.
    pub fn cgroup_lookup(&self, r: CgroupLookup) {
        inc(&self.cgroup_lookups[r as usize], 1);
    }

    /// `n` cgroup lookups with one result (a drain task's batch).
    pub fn cgroup_lookups(&self, r: CgroupLookup, n: u64) {
        inc(&self.cgroup_lookups[r as usize], n);
    }

    /// A resolution outcome for one cgroup id.
    pub fn cgroup_resolution(&self, r: CgroupResolution) {
        inc(&self.cgroup_resolutions[r as usize], 1);
    }

    /// Total records drained (all observers).
    #[must_use]
    pub fn events_total(&self) -> u64 {
        self.events.iter().map(get).sum()
    }

    /// Total occurrences emitted for `a`.
    #[must_use]
    pub fn anomalies_of(&self, a: Anomaly) -> u64 {
        get(&self.anomalies[anom_idx(a)])
    }

    /// Total facts folded into occurrences of `a`.
    #[must_use]
    pub fn facts_of(&self, a: Anomaly) -> u64 {
        get(&self.facts[anom_idx(a)])
    }

    /// Every counter, `name{labels}` to value, zero values included.
    #[must_use]
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for o in Observer::ALL {
            let i = obs_idx(o);
            let l = format!("{{observer=\"{o}\"}}");
            m.insert(format!("tapio_events_total{l}"), get(&self.events[i]));
            m.insert(
                format!("tapio_malformed_events_total{l}"),
                get(&self.malformed[i]),
            );
            m.insert(format!("tapio_lost_events_total{l}"), get(&self.lost[i]));
            m.insert(
                format!("tapio_abi_mismatch_total{l}"),
                get(&self.abi_mismatch[i]),
            );
            m.insert(format!("tapio_drain_cap_total{l}"), get(&self.drain_cap[i]));
            m.insert(
                format!("tapio_config_errors_total{l}"),
                get(&self.config_errors[i]),
            );
            for (j, r) in FactDrop::ALL.iter().enumerate() {
                let v = get(&self.fact_drops[i][j]);
                let name = if r.is_correlation() {
                    "tapio_correlation_drops_total"
                } else {
                    "tapio_fact_drops_total"
                };
                if r.is_correlation() && o != Observer::Storage {
                    continue;
                }
                m.insert(
                    format!("{name}{{observer=\"{o}\",reason=\"{}\"}}", r.as_str()),
                    v,
                );
            }
        }
        for a in Anomaly::ALL {
            let i = anom_idx(a);
            let l = format!("{{observer=\"{}\",type=\"{a}\"}}", a.observer());
            m.insert(format!("tapio_anomalies_total{l}"), get(&self.anomalies[i]));
            m.insert(format!("tapio_facts_total{l}"), get(&self.facts[i]));
        }
        for s in SinkKind::ALL {
            let i = s as usize;
            m.insert(
                format!(
                    "tapio_sink_writes_total{{sink=\"{}\",result=\"ok\"}}",
                    s.as_str()
                ),
                get(&self.sink_ok[i]),
            );
            m.insert(
                format!(
                    "tapio_sink_writes_total{{sink=\"{}\",result=\"error\"}}",
                    s.as_str()
                ),
                get(&self.sink_err[i]),
            );
            m.insert(
                format!("tapio_sink_delivered_total{{sink=\"{}\"}}", s.as_str()),
                get(&self.sink_delivered[i]),
            );
            for (j, r) in SinkDrop::ALL.iter().enumerate() {
                m.insert(
                    format!(
                        "tapio_sink_drops_total{{sink=\"{}\",reason=\"{}\"}}",
                        s.as_str(),
                        r.as_str()
                    ),
                    get(&self.sink_drops[i][j]),
                );
            }
        }
        for (c, name) in [
            (ControllerCall::Hello, "hello"),
            (ControllerCall::Heartbeat, "heartbeat"),
            (ControllerCall::Events, "events"),
        ] {
            m.insert(
                format!("tapio_controller_send_failures_total{{call=\"{name}\"}}"),
                get(&self.controller_send_failures[c as usize]),
            );
        }
        for (r, name) in [
            (ConfigFetch::Updated, "updated"),
            (ConfigFetch::Unchanged, "unchanged"),
            (ConfigFetch::Failed, "failed"),
            (ConfigFetch::Invalid, "invalid"),
        ] {
            m.insert(
                format!("tapio_config_fetch_total{{result=\"{name}\"}}"),
                get(&self.config_fetch[r as usize]),
            );
        }
        for r in CgroupLookup::ALL {
            m.insert(
                format!("tapio_cgroup_lookups_total{{result=\"{}\"}}", r.as_str()),
                get(&self.cgroup_lookups[r as usize]),
            );
        }
        for r in CgroupResolution::ALL {
            m.insert(
                format!(
                    "tapio_cgroup_resolutions_total{{result=\"{}\"}}",
                    r.as_str()
                ),
                get(&self.cgroup_resolutions[r as usize]),
            );
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_carry_labels() {
        let c = Counters::default();
        c.event(Observer::Network);
        c.anomaly(Anomaly::ConnectionRefused, 5);
        c.fact_drop(Observer::Storage, FactDrop::AmbiguousInflightIo);
        c.sink_drop(SinkKind::File, SinkDrop::QueueFull, 3);
        let s = c.snapshot();
        assert_eq!(s["tapio_events_total{observer=\"network\"}"], 1);
        assert_eq!(s["tapio_anomalies_total{observer=\"network\",type=\"kernel.network.connection_refused\"}"], 1);
        assert_eq!(
            s["tapio_facts_total{observer=\"network\",type=\"kernel.network.connection_refused\"}"],
            5
        );
        assert_eq!(s["tapio_correlation_drops_total{observer=\"storage\",reason=\"ambiguous_inflight_io\"}"], 1);
        assert_eq!(
            s["tapio_sink_drops_total{sink=\"file\",reason=\"queue_full\"}"],
            3
        );
        assert!(!s.contains_key(
            "tapio_correlation_drops_total{observer=\"network\",reason=\"ambiguous_inflight_io\"}"
        ));
    }
}
