//! Per-destination state of the network observer: retransmit windows (B3)
//! and smoothed-RTT baselines (B4).
//!
//! ## Design constraints
//! - A destination is (address, port) of the remote end; at most
//!   [`MAX_DESTINATIONS`] are tracked per table. A fact for a new destination
//!   that finds its table full is dropped and counted (`table_full`); RTT
//!   baselines evict the least recently sampled destination instead, since a
//!   baseline can be rebuilt.
//! - Only facts cross this module; nothing is guessed. A retransmit spike
//!   names an owner process only when every retransmit of the window came
//!   from sockets of that one known owner.

use std::collections::HashMap;
use std::net::IpAddr;

use tapio_common::ebpf::network::{NetworkRecord, REC_F_OWNER_KNOWN};
use tapio_common::{Anomaly, Facts, Outcome, Severity};
use tapio_wire::NetworkSettings;

use crate::fold::Candidate;
use crate::observers::comm_str;

/// Destinations tracked per table.
pub const MAX_DESTINATIONS: usize = 4096;

/// Remote (address, port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Destination {
    /// Remote address.
    pub addr: IpAddr,
    /// Remote port.
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq)]
enum Owner {
    None,
    One { pid: u32, comm: String },
    Mixed,
}

struct RetransmitWindow {
    start_ns: u64,
    count: u64,
    events: u64,
    generation: u64,
    owner: Owner,
    sockets: Vec<u16>,
}

/// Fixed windows of retransmits per destination.
pub struct RetransmitWindows {
    threshold: u64,
    window_ns: u64,
    open: HashMap<Destination, RetransmitWindow>,
}

const MAX_SOCKETS_LISTED: usize = 16;

impl RetransmitWindows {
    /// Windows for `s`.
    #[must_use]
    pub fn new(s: &NetworkSettings) -> Self {
        let mut w = RetransmitWindows {
            threshold: 0,
            window_ns: 0,
            open: HashMap::new(),
        };
        w.configure(s);
        w
    }

    /// Takes new thresholds; open windows keep their start.
    pub fn configure(&mut self, s: &NetworkSettings) {
        self.threshold = u64::from(s.retransmit_threshold);
        self.window_ns = u64::from(s.retransmit_window_ms) * 1_000_000;
    }

    /// Adds one retransmit; false when the table was full and it was dropped.
    pub fn add(
        &mut self,
        d: Destination,
        r: &NetworkRecord,
        unix_ns: u64,
        out: &mut Vec<Candidate>,
    ) -> bool {
        if self.threshold == 0 || self.window_ns == 0 {
            return true;
        }
        if let Some(w) = self.open.get(&d) {
            if unix_ns >= w.start_ns.saturating_add(self.window_ns) {
                let w = self.open.remove(&d);
                if let Some(w) = w {
                    self.close(d, w, out);
                }
            }
        }
        if !self.open.contains_key(&d) && self.open.len() >= MAX_DESTINATIONS {
            return false;
        }
        let w = self.open.entry(d).or_insert_with(|| RetransmitWindow {
            start_ns: unix_ns,
            count: 0,
            events: 0,
            generation: r.hdr.generation,
            owner: Owner::None,
            sockets: Vec::new(),
        });
        w.count += u64::from(r.retransmits.max(1));
        w.events += 1;
        let this = if r.flags & REC_F_OWNER_KNOWN != 0 {
            Owner::One {
                pid: r.tgid,
                comm: comm_str(&r.comm),
            }
        } else {
            Owner::Mixed
        };
        w.owner = match (&w.owner, this) {
            (Owner::None, o) => o,
            (a, b) if *a == b => b,
            _ => Owner::Mixed,
        };
        if w.sockets.len() < MAX_SOCKETS_LISTED && !w.sockets.contains(&r.sport) {
            w.sockets.push(r.sport);
        }
        true
    }

    /// Closes windows whose end is at or before `now_unix_ns`.
    pub fn close_before(&mut self, now_unix_ns: u64, out: &mut Vec<Candidate>) {
        let done: Vec<Destination> = self
            .open
            .iter()
            .filter(|(_, w)| {
                now_unix_ns == u64::MAX || w.start_ns.saturating_add(self.window_ns) <= now_unix_ns
            })
            .map(|(d, _)| *d)
            .collect();
        for d in done {
            if let Some(w) = self.open.remove(&d) {
                self.close(d, w, out);
            }
        }
    }

    fn close(&self, d: Destination, w: RetransmitWindow, out: &mut Vec<Candidate>) {
        if w.count < self.threshold {
            return;
        }
        let end = w.start_ns.saturating_add(self.window_ns);
        let mut key = Facts::with_capacity(4);
        key.str("dst_addr", d.addr.to_string())
            .u64("dst_port", u64::from(d.port));
        let mut detail = Facts::with_capacity(8);
        detail
            .u64("count", w.count)
            .u64("retransmit_events", w.events)
            .u64("threshold", self.threshold)
            .u64("window_start_ns", w.start_ns)
            .u64("window_end_ns", end)
            .u64("window_ms", self.window_ns / 1_000_000)
            .str(
                "src_ports",
                w.sockets
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        let mut owner = String::new();
        if let Owner::One { pid, comm } = &w.owner {
            detail.u64("pid", u64::from(*pid)).str("comm", comm.clone());
            owner = format!(" pid={pid} comm={comm}");
        }
        out.push(Candidate {
            anomaly: Anomaly::RetransmitSpike,
            severity: Severity::Warning,
            outcome: Outcome::Degraded,
            unix_ns: end,
            generation: w.generation,
            summary: format!(
                "{} retransmitted segments to {}:{} in {} ms (threshold {}){owner}",
                w.count,
                d.addr,
                d.port,
                self.window_ns / 1_000_000,
                self.threshold
            ),
            template: None,
            key,
            detail,
            fold: false,
        });
    }
}

struct Baseline {
    mean_us: f64,
    samples: u64,
    last_sample_ns: u64,
    last_report_ns: Option<u64>,
}

/// Smoothed-RTT baselines per destination.
pub struct RttBaselines {
    ratio: f64,
    floor_us: u64,
    min_samples: u64,
    report_ns: u64,
    table: HashMap<Destination, Baseline>,
}

/// Weight of a new normal sample once the baseline has `min_samples`.
const EWMA_ALPHA: f64 = 1.0 / 8.0;

impl RttBaselines {
    /// Baselines for `s`.
    #[must_use]
    pub fn new(s: &NetworkSettings) -> Self {
        let mut b = RttBaselines {
            ratio: 0.0,
            floor_us: 0,
            min_samples: 0,
            report_ns: 0,
            table: HashMap::new(),
        };
        b.configure(s);
        b
    }

    /// Takes new thresholds; baselines are kept.
    pub fn configure(&mut self, s: &NetworkSettings) {
        self.ratio = f64::from(s.rtt_ratio_permille) / 1000.0;
        self.floor_us = u64::from(s.rtt_floor_us);
        self.min_samples = u64::from(s.rtt_min_samples.max(1));
        self.report_ns = u64::from(s.rtt_report_interval_ms) * 1_000_000;
    }

    /// The baseline of `d` in microseconds, once it has enough samples.
    #[must_use]
    pub fn baseline_us(&self, d: &Destination) -> Option<f64> {
        self.table
            .get(d)
            .filter(|b| b.samples >= self.min_samples)
            .map(|b| b.mean_us)
    }

    /// Judges one sample. Always true: a full table evicts the stalest
    /// baseline (it can be rebuilt) instead of dropping the sample.
    pub fn sample(
        &mut self,
        d: Destination,
        r: &NetworkRecord,
        unix_ns: u64,
        out: &mut Vec<Candidate>,
    ) -> bool {
        if self.ratio <= 0.0 {
            return true;
        }
        if !self.table.contains_key(&d) && self.table.len() >= MAX_DESTINATIONS {
            if let Some(stale) = self
                .table
                .iter()
                .min_by_key(|(_, b)| b.last_sample_ns)
                .map(|(k, _)| *k)
            {
                self.table.remove(&stale);
            }
        }
        let srtt = f64::from(r.srtt_us);
        let min_samples = self.min_samples;
        let b = self.table.entry(d).or_insert(Baseline {
            mean_us: 0.0,
            samples: 0,
            last_sample_ns: unix_ns,
            last_report_ns: None,
        });
        b.last_sample_ns = unix_ns;
        // The reference: the kernel's own windowed minimum RTT of this
        // socket (known from its first measurement, so a fresh socket is
        // judged at once), or the destination's baseline where one exists
        // and is lower (a socket born into a slow period).
        let socket_min = (r.min_rtt_us > 0).then(|| f64::from(r.min_rtt_us));
        let baseline = (b.samples >= min_samples).then_some(b.mean_us);
        let reference = match (socket_min, baseline) {
            (Some(m), Some(bl)) if bl < m => Some((bl, "baseline")),
            (Some(m), _) => Some((m, "min_rtt")),
            (None, Some(bl)) => Some((bl, "baseline")),
            (None, None) => None,
        };
        let threshold_us = reference.map(|(v, _)| (self.ratio * v).max(self.floor_us as f64));
        if threshold_us.is_none_or(|t| srtt <= t) {
            // Only samples judged normal teach the baseline: a plain mean
            // until it has `min_samples`, then a moving average.
            b.samples += 1;
            if b.samples <= min_samples {
                #[allow(clippy::cast_precision_loss)] // sample counts stay tiny
                let n = b.samples as f64;
                b.mean_us += (srtt - b.mean_us) / n;
            } else {
                b.mean_us += (srtt - b.mean_us) * EWMA_ALPHA;
            }
            return true;
        }
        let (Some((reference_us, reference_kind)), Some(threshold_us)) = (reference, threshold_us)
        else {
            return true;
        };
        if b.last_report_ns
            .is_some_and(|t| unix_ns < t.saturating_add(self.report_ns))
        {
            return true;
        }
        b.last_report_ns = Some(unix_ns);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (reference_us, threshold) = (reference_us.round() as u64, threshold_us.round() as u64);
        let mut key = Facts::with_capacity(4);
        key.str("dst_addr", d.addr.to_string())
            .u64("dst_port", u64::from(d.port));
        let mut detail = Facts::with_capacity(12);
        detail
            .u64("srtt_us", u64::from(r.srtt_us))
            .u64("reference_us", reference_us)
            .str("reference", reference_kind)
            .u64("threshold_us", threshold);
        if r.min_rtt_us > 0 {
            detail.u64("min_rtt_us", u64::from(r.min_rtt_us));
        }
        if let Some(bl) = baseline {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            detail.u64("baseline_us", bl.round() as u64);
        }
        detail
            .u64("ratio_permille", (self.ratio * 1000.0).round() as u64)
            .u64("floor_us", self.floor_us)
            .u64("baseline_samples", b.samples)
            .u64("src_port", u64::from(r.sport));
        let mut owner = String::new();
        if r.flags & REC_F_OWNER_KNOWN != 0 {
            detail
                .u64("pid", u64::from(r.tgid))
                .str("comm", comm_str(&r.comm));
            owner = format!(" pid={} comm={}", r.tgid, comm_str(&r.comm));
        }
        out.push(Candidate {
            anomaly: Anomaly::RttDegradation,
            severity: Severity::Warning,
            outcome: Outcome::Degraded,
            unix_ns,
            generation: r.hdr.generation,
            summary: format!(
                "srtt to {}:{} is {} us, {reference_kind} {reference_us} us (threshold {threshold} us){owner}",
                d.addr, d.port, r.srtt_us
            ),
            template: None,
            key,
            detail,
            fold: false,
        });
        true
    }
}
