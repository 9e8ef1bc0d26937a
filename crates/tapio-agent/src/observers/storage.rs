//! Storage observer: block I/O errors (B7) and latency spikes (B8) from
//! `storage_monitor.o` records, and the kernel's correlation drops (B9).
//!
//! ## Design constraints
//! - Latency is judged in the kernel against the thresholds of the config
//!   carrier; a record here is already a crossing or an error.
//! - Correlation drops are counted in the kernel (per-CPU `tapio_stats`
//!   slots) and mirrored into `tapio_correlation_drops_total` as deltas of
//!   the totals, about once a second.
//! - Device names come from `/sys/dev/block/<major>:<minor>`, read once per
//!   device on the first fact that names it; at most [`MAX_NAMED_DEVICES`]
//!   are cached, beyond that facts carry only major:minor.

use std::collections::HashMap;
use std::sync::Arc;

use tapio_common::ebpf::storage::{
    StorageConfig, StorageRecord, CFG_IO_ERRORS, CFG_LATENCY, REC_F_CLOCK_ALLOC,
    REC_F_CLOCK_IO_START, REC_F_CRITICAL, REC_F_ERRNO, REC_IO_ERROR, REC_LATENCY, STAT_AMBIGUOUS,
    STAT_INFLIGHT_FULL, STAT_MISSING_ISSUE, STAT_PARTIAL_ERROR, STAT_REQUEUED, STAT_UNSTAMPED,
};
use tapio_common::ebpf::{as_bytes, ConfigHeader};
use tapio_common::{Anomaly, Facts, Observer, Outcome, Severity};
use tapio_wire::{CompiledConfig, StorageSettings};

use super::{parse_record, Classifier, Malformed};
use crate::clock::Clock;
use crate::counters::{Counters, FactDrop};
use crate::fold::Candidate;

mod blk;
#[cfg(test)]
mod model;
pub use blk::{errno_of, op_name};

/// Device names cached at most.
pub const MAX_NAMED_DEVICES: usize = 1024;
const MINORBITS: u32 = 20;

/// The classifier of this observer.
#[must_use]
pub fn classifier() -> Option<Box<dyn Classifier>> {
    Some(Box::new(StorageClassifier::new(sysfs_device_name)))
}

/// The `tapio_config` carrier of `storage_monitor.o` for `cfg`.
#[must_use]
pub fn carrier(cfg: &CompiledConfig, generation: u64) -> Option<Vec<u8>> {
    let s = &cfg.storage;
    let wanted = [
        (s.io_errors, CFG_IO_ERRORS),
        (s.latency && s.latency_warning_us > 0, CFG_LATENCY),
    ];
    let c = StorageConfig {
        hdr: ConfigHeader::configured(s.enabled, &wanted, generation),
        latency_warning_ns: u64::from(s.latency_warning_us) * 1000,
        latency_critical_ns: u64::from(s.latency_critical_us) * 1000,
    };
    Some(as_bytes(&c).to_vec())
}

/// `(major, minor)` of a kernel-encoded `dev_t`.
#[must_use]
pub const fn split_dev(dev: u32) -> (u32, u32) {
    (dev >> MINORBITS, dev & ((1 << MINORBITS) - 1))
}

/// Which clock a record's latency came from: the request's dispatch stamp
/// (`io_start`), its allocation stamp (`alloc`), or the issue hook where the
/// kernel stamped neither (`issue_hook`).
#[must_use]
pub const fn latency_clock(flags: u32) -> &'static str {
    if flags & REC_F_CLOCK_IO_START != 0 {
        "io_start"
    } else if flags & REC_F_CLOCK_ALLOC != 0 {
        "alloc"
    } else {
        "issue_hook"
    }
}

fn sysfs_device_name(major: u32, minor: u32) -> Option<String> {
    let link = std::fs::read_link(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// The kernel's correlation-drop slots and the reason each is exported as.
const DROP_SLOTS: [(u32, FactDrop); 4] = [
    (STAT_AMBIGUOUS, FactDrop::AmbiguousInflightIo),
    (STAT_MISSING_ISSUE, FactDrop::MissingIssue),
    (STAT_REQUEUED, FactDrop::Requeued),
    (STAT_INFLIGHT_FULL, FactDrop::InflightTableFull),
];

/// Classifies storage records.
pub struct StorageClassifier {
    settings: StorageSettings,
    counters: Option<Arc<Counters>>,
    /// Kernel totals already mirrored, by `DROP_SLOTS` index.
    mirrored: [u64; DROP_SLOTS.len()],
    partial_errors_seen: u64,
    unstamped_seen: u64,
    name_of: fn(u32, u32) -> Option<String>,
    names: HashMap<u32, Option<String>>,
}

/// `error.message` of storage occurrences, as templates over the
/// candidate's own facts: rendered when written, never built per record.
/// Index 0: no device name known (`<major>:<minor>` only); 1: `<name>
/// (<major>:<minor>)`.
mod summary {
    use tapio_common::Piece::{Fact as F, Lit as L};
    use tapio_common::{template, Template};

    const REQUEST: Template = &[
        F("op"),
        L(" of "),
        F("bytes"),
        L(" bytes at sector "),
        F("sector"),
        L(" on "),
    ];
    const DEVICE: [Template; 2] = [
        &[F("device")],
        &[F("device_name"), L(" ("), F("device"), L(")")],
    ];
    const ERRNO: Template = &[L(" failed: errno "), F("errno")];
    const TOOK: Template = &[L(" took "), F("latency_us"), L(" us ("), F("level"), L(")")];

    pub(super) const FAILED: [Template; 2] = [
        template!(REQUEST, DEVICE[0], ERRNO),
        template!(REQUEST, DEVICE[1], ERRNO),
    ];
    pub(super) const SLOW: [Template; 2] = [
        template!(REQUEST, DEVICE[0], TOOK),
        template!(REQUEST, DEVICE[1], TOOK),
    ];
}

impl StorageClassifier {
    /// A classifier resolving device names with `name_of(major, minor)`.
    #[must_use]
    pub fn new(name_of: fn(u32, u32) -> Option<String>) -> Self {
        StorageClassifier {
            settings: CompiledConfig::production_default().storage,
            counters: None,
            mirrored: [0; DROP_SLOTS.len()],
            partial_errors_seen: 0,
            unstamped_seen: 0,
            name_of,
            names: HashMap::new(),
        }
    }

    /// The device's name, looked up once per device.
    fn device_name(&mut self, dev: u32) -> Option<String> {
        if let Some(n) = self.names.get(&dev) {
            return n.clone();
        }
        let (major, minor) = split_dev(dev);
        let name = (self.name_of)(major, minor);
        if self.names.len() < MAX_NAMED_DEVICES {
            self.names.insert(dev, name.clone());
        }
        name
    }

    fn candidate(&mut self, kind: u16, r: &StorageRecord, unix_ns: u64) -> Candidate {
        let (major, minor) = split_dev(r.dev);
        let device = format!("{major}:{minor}");
        let op = op_name(r.op);
        let latency_us = r.latency_ns / 1000;
        let mut key = Facts::with_capacity(6);
        let mut detail = Facts::with_capacity(8);
        key.str("device", device.clone())
            .u64("major", u64::from(major))
            .u64("minor", u64::from(minor))
            .str("op", op)
            .u64("op_code", u64::from(r.op));
        let name = self.device_name(r.dev);
        if let Some(n) = &name {
            detail.str("device_name", n.clone());
        }
        detail
            .u64("sector", r.sector)
            .u64("bytes", u64::from(r.bytes))
            .u64("latency_us", latency_us)
            .str("latency_clock", latency_clock(r.flags));
        let named = usize::from(name.is_some());
        let critical = r.flags & REC_F_CRITICAL != 0;
        if kind == REC_IO_ERROR {
            // Kernels that pass the errno itself have no blk_status_t to show.
            let errno = if r.flags & REC_F_ERRNO == 0 {
                detail.u64("blk_status", u64::from(r.status));
                errno_of(r.status)
            } else {
                i32::try_from(r.status).unwrap_or(i32::MAX)
            };
            key.i64("errno", i64::from(errno));
            Candidate {
                anomaly: Anomaly::IoError,
                severity: Severity::Critical,
                outcome: Outcome::Failure,
                unix_ns,
                generation: r.hdr.generation,
                summary: String::new(),
                template: Some(summary::FAILED[named]),
                key,
                detail,
                fold: true,
            }
        } else {
            let (level, severity, threshold_us) = if critical {
                (
                    "critical",
                    Severity::Critical,
                    self.settings.latency_critical_us,
                )
            } else {
                (
                    "warning",
                    Severity::Warning,
                    self.settings.latency_warning_us,
                )
            };
            key.str("level", level);
            detail.u64("threshold_us", u64::from(threshold_us));
            Candidate {
                anomaly: Anomaly::LatencySpike,
                severity,
                outcome: Outcome::Degraded,
                unix_ns,
                generation: r.hdr.generation,
                summary: String::new(),
                template: Some(summary::SLOW[named]),
                key,
                detail,
                fold: true,
            }
        }
    }
}

impl Classifier for StorageClassifier {
    fn observer(&self) -> Observer {
        Observer::Storage
    }

    fn record(
        &mut self,
        bytes: &[u8],
        clock: &Clock,
        out: &mut Vec<Candidate>,
    ) -> Result<(), Malformed> {
        let (hdr, r): (_, StorageRecord) = parse_record(bytes, &[REC_IO_ERROR, REC_LATENCY])?;
        out.push(self.candidate(hdr.kind, &r, clock.unix_ns(hdr.ts_boot_ns)));
        Ok(())
    }

    fn configure(&mut self, cfg: &CompiledConfig, _generation: u64) {
        self.settings = cfg.storage.clone();
    }

    fn set_counters(&mut self, counters: Arc<Counters>) {
        self.counters = Some(counters);
    }

    fn kernel_stats(&mut self, stats: &[u64]) {
        let get = |slot: u32| stats.get(slot as usize).copied().unwrap_or(0);
        for (i, (slot, reason)) in DROP_SLOTS.iter().enumerate() {
            let total = get(*slot);
            // Totals only grow while the object lives; a smaller one means
            // a new object: start over from it.
            let delta = total.checked_sub(self.mirrored[i]).unwrap_or(total);
            self.mirrored[i] = total;
            if delta > 0 {
                if let Some(c) = &self.counters {
                    c.fact_drops_add(Observer::Storage, *reason, delta);
                }
            }
        }
        let partial = get(STAT_PARTIAL_ERROR);
        if partial > self.partial_errors_seen {
            tracing::warn!(
                observer = "storage",
                total = partial,
                "errors in partial block completions (not reported; the final completion is)"
            );
            self.partial_errors_seen = partial;
        }
        // Logged once per object (the totals restart with a new one).
        let unstamped = get(STAT_UNSTAMPED);
        if unstamped > 0 && self.unstamped_seen == 0 {
            tracing::info!(
                observer = "storage",
                total = unstamped,
                "block requests without kernel timestamps (no iostats, scheduler or queue stats \
                 on their device): their latency comes from the issue hook"
            );
        }
        self.unstamped_seen = unstamped;
    }
}

#[cfg(test)]
mod tests;
