//! Node counter windows: per-CPU snapshots turned into deltas, summed over
//! the node per window, judged against the thresholds, one occurrence per
//! episode.
//!
//! ## Design constraints
//! - A delta is taken between two consecutive snapshots of the same CPU and
//!   belongs to the window holding its end. Intervals longer than
//!   [`GAP_FACTOR`] sample periods (CPU offline, program not running) are
//!   not attributed to any window and are counted as `gaps`.
//! - Counters are 64-bit; a decrease is a wrap only when the wrapped delta
//!   is plausible ([`super::counters::MAX_COUNTS_PER_NS`]), else the
//!   counter was reset and the interval is dropped (`resets`).
//! - Multiplexed events (running < enabled) are scaled by enabled/running
//!   and the window says so (`multiplexed`, `min_running_permille`); an
//!   event that did not run at all in an interval drops the interval.
//! - An interval is summed only when every opened slot was read at both
//!   ends, so all counters of a window cover the same CPU time.
//! - At most [`MAX_CPUS`] CPUs are tracked; snapshots of further CPUs are
//!   dropped (`dropped_intervals`).
//! - Windows with fewer than [`MIN_CYCLES_PER_CPU_SECOND`] base counts per
//!   covered CPU-second (an idle node) are not judged: ratios there are
//!   noise, and the episode state stays as it was.

use std::collections::{BTreeSet, HashMap};

use tapio_common::ebpf::node::{
    NodeCounter, NodeSample, EVENTS, EV_CYCLES, EV_INSTRUCTIONS, EV_STALL_BACKEND,
    EV_STALL_FRONTEND, SAMPLE_PERIOD_MS, SRC_HARDWARE,
};
use tapio_common::{Anomaly, Facts, Outcome, Severity};
use tapio_wire::NodeSettings;

use super::counters::{delta, slot_names, source_name, Delta};
use crate::fold::Candidate;

/// CPUs tracked.
pub const MAX_CPUS: usize = 4096;
/// An interval longer than this many sample periods is a gap.
pub const GAP_FACTOR: u64 = 4;
/// Idle floor below which a window is not judged (10 M cycles per
/// CPU-second: about 0.5 % busy at 2 GHz).
pub const MIN_CYCLES_PER_CPU_SECOND: u64 = 10_000_000;

const PERIOD_NS: u64 = SAMPLE_PERIOD_MS * 1_000_000;
/// A window closes this long after its end, when every CPU has reported.
pub const CLOSE_GRACE_NS: u64 = PERIOD_NS + 250_000_000;

#[derive(Debug, Clone, Copy)]
struct Snapshot {
    unix_ns: u64,
    read_mask: u32,
    ev: [NodeCounter; EVENTS],
}

#[derive(Debug, Clone, Default)]
struct Sums {
    counts: [u64; EVENTS],
    covered_ns: u64,
    intervals: u64,
    cpus: BTreeSet<u32>,
    min_running_permille: u64,
}

impl Sums {
    fn is_empty(&self) -> bool {
        self.intervals == 0
    }
}

/// Evidence quality counters of the current window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quality {
    /// Intervals spanning a gap (CPU offline, program not running).
    pub gaps: u64,
    /// Intervals dropped because a counter went backwards (reset).
    pub resets: u64,
    /// Intervals dropped: a slot unread, not scheduled, late or CPU table full.
    pub dropped_intervals: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judged {
    Ipc,
    Stall,
    Memory,
}

const JUDGED: [Judged; 3] = [Judged::Stall, Judged::Memory, Judged::Ipc];

/// Node-wide counter windows and episodes.
pub struct NodeWindows {
    settings: NodeSettings,
    generation: u64,
    source: u32,
    event_mask: u32,
    last: HashMap<u32, Snapshot>,
    ever: BTreeSet<u32>,
    start_ns: Option<u64>,
    cur: Sums,
    next: Sums,
    quality: Quality,
    episodes: [bool; 3],
    latest_ns: u64,
    totals: Quality,
}

fn bit(slot: usize) -> u32 {
    1 << slot
}

impl NodeWindows {
    /// Windows judged by `settings` under config `generation`.
    #[must_use]
    pub fn new(settings: NodeSettings, generation: u64) -> Self {
        NodeWindows {
            settings,
            generation,
            source: 0,
            event_mask: 0,
            last: HashMap::new(),
            ever: BTreeSet::new(),
            start_ns: None,
            cur: Sums::default(),
            next: Sums::default(),
            quality: Quality::default(),
            episodes: [false; 3],
            latest_ns: 0,
            totals: Quality::default(),
        }
    }

    /// Takes a new config: the open window and the episodes start over, so
    /// everything emitted after is judged by this generation alone.
    pub fn configure(&mut self, settings: NodeSettings, generation: u64) {
        self.settings = settings;
        self.generation = generation;
        self.reset_windows();
        self.episodes = [false; 3];
    }

    fn reset_windows(&mut self) {
        self.start_ns = None;
        self.cur = Sums::default();
        self.next = Sums::default();
        self.quality = Quality::default();
    }

    fn window_ns(&self) -> u64 {
        u64::from(self.settings.window_ms)
            .max(SAMPLE_PERIOD_MS)
            .saturating_mul(1_000_000)
    }

    /// Evidence quality of the open window.
    #[must_use]
    pub fn quality(&self) -> Quality {
        self.quality
    }

    /// Evidence quality since start.
    #[must_use]
    pub fn totals(&self) -> Quality {
        self.totals
    }

    /// Adds one snapshot taken at `unix_ns`; closes windows it proves over.
    pub fn sample(&mut self, s: &NodeSample, unix_ns: u64, out: &mut Vec<Candidate>) {
        if s.source != self.source || s.event_mask != self.event_mask {
            // A new setup: nothing before it is comparable.
            self.source = s.source;
            self.event_mask = s.event_mask;
            self.last.clear();
            self.ever.clear();
            self.reset_windows();
            self.episodes = [false; 3];
        }
        self.latest_ns = self.latest_ns.max(unix_ns);
        let snap = Snapshot {
            unix_ns,
            read_mask: s.read_mask & s.event_mask,
            ev: s.ev,
        };
        if self.start_ns.is_none() {
            self.start_ns = Some(unix_ns);
        }
        if !self.last.contains_key(&s.cpu) && self.last.len() >= MAX_CPUS {
            self.quality.dropped_intervals += 1;
            self.totals.dropped_intervals += 1;
            return;
        }
        self.ever.insert(s.cpu);
        let Some(prev) = self.last.insert(s.cpu, snap) else {
            return;
        };
        self.interval(s.cpu, &prev, &snap);
        self.close_before(unix_ns.saturating_sub(CLOSE_GRACE_NS), out);
    }

    fn interval(&mut self, cpu: u32, prev: &Snapshot, cur: &Snapshot) {
        let Some(elapsed) = cur.unix_ns.checked_sub(prev.unix_ns).filter(|&e| e > 0) else {
            self.quality.dropped_intervals += 1;
            self.totals.dropped_intervals += 1;
            return;
        };
        if elapsed > GAP_FACTOR * PERIOD_NS {
            self.quality.gaps += 1;
            self.totals.gaps += 1;
            return;
        }
        let need = self.event_mask;
        if prev.read_mask & cur.read_mask & need != need || need & bit(EV_CYCLES) == 0 {
            self.quality.dropped_intervals += 1;
            self.totals.dropped_intervals += 1;
            return;
        }
        let mut counts = [0u64; EVENTS];
        let mut min_running = 1000;
        for slot in (0..EVENTS).filter(|&i| need & bit(i) != 0) {
            match delta(&prev.ev[slot], &cur.ev[slot], elapsed) {
                Delta::Counted { scaled, running } => {
                    counts[slot] = scaled;
                    min_running = min_running.min(running);
                }
                Delta::Reset => {
                    self.quality.resets += 1;
                    self.totals.resets += 1;
                    return;
                }
                Delta::NotScheduled => {
                    self.quality.dropped_intervals += 1;
                    self.totals.dropped_intervals += 1;
                    return;
                }
            }
        }
        let Some(start) = self.start_ns else { return };
        let end = start.saturating_add(self.window_ns());
        let sums = if cur.unix_ns <= start {
            self.quality.dropped_intervals += 1;
            self.totals.dropped_intervals += 1;
            return;
        } else if cur.unix_ns <= end {
            &mut self.cur
        } else {
            &mut self.next
        };
        if sums.is_empty() {
            sums.min_running_permille = 1000;
        }
        for (acc, c) in sums.counts.iter_mut().zip(counts) {
            *acc = acc.saturating_add(c);
        }
        sums.covered_ns = sums.covered_ns.saturating_add(elapsed);
        sums.intervals += 1;
        sums.cpus.insert(cpu);
        sums.min_running_permille = sums.min_running_permille.min(min_running);
    }

    /// Closes every window that ended before `now_unix_ns` minus the grace
    /// for late CPUs (drain tick).
    pub fn tick(&mut self, now_unix_ns: u64, out: &mut Vec<Candidate>) {
        self.close_before(now_unix_ns.saturating_sub(CLOSE_GRACE_NS), out);
    }

    /// Closes the windows the last snapshot proved over (shutdown); a
    /// partial window is not judged.
    pub fn finish(&mut self, out: &mut Vec<Candidate>) {
        self.close_before(self.latest_ns, out);
    }

    fn close_before(&mut self, limit_ns: u64, out: &mut Vec<Candidate>) {
        while let Some(start) = self.start_ns {
            let end = start.saturating_add(self.window_ns());
            if end > limit_ns {
                return;
            }
            let sums = std::mem::take(&mut self.cur);
            let quality = std::mem::take(&mut self.quality);
            self.judge(&sums, quality, start, end, out);
            self.cur = std::mem::take(&mut self.next);
            // Nothing pending: the next snapshot opens the next window.
            self.start_ns = (!self.cur.is_empty()).then_some(end);
        }
    }

    fn judge(
        &mut self,
        s: &Sums,
        quality: Quality,
        start: u64,
        end: u64,
        out: &mut Vec<Candidate>,
    ) {
        let cycles = s.counts[EV_CYCLES];
        let floor =
            u128::from(MIN_CYCLES_PER_CPU_SECOND) * u128::from(s.covered_ns) / 1_000_000_000;
        if s.is_empty() || u128::from(cycles) < floor.max(1) {
            return;
        }
        let names = slot_names(self.source);
        let has = |slot: usize| self.event_mask & bit(slot) != 0;
        for (i, kind) in JUDGED.into_iter().enumerate() {
            let (anomaly, numerator, ratio, threshold, above) = match kind {
                Judged::Ipc if has(EV_INSTRUCTIONS) => (
                    Anomaly::IpcDegradation,
                    s.counts[EV_INSTRUCTIONS],
                    format!("{}/{}", names[EV_INSTRUCTIONS], names[EV_CYCLES]),
                    self.settings.ipc_min_permille,
                    false,
                ),
                Judged::Memory if has(EV_STALL_BACKEND) => (
                    Anomaly::MemoryPressure,
                    s.counts[EV_STALL_BACKEND],
                    format!("{}/{}", names[EV_STALL_BACKEND], names[EV_CYCLES]),
                    self.settings.memory_pressure_permille,
                    true,
                ),
                Judged::Stall if has(EV_STALL_FRONTEND) || has(EV_STALL_BACKEND) => {
                    // Stalled cycles: the larger of the two ends, a lower
                    // bound of their (unknown) union.
                    let (n, name) = stall_numerator(s, has, &names);
                    (
                        Anomaly::CpuStall,
                        n,
                        format!("{name}/{}", names[EV_CYCLES]),
                        self.settings.cpu_stall_permille,
                        true,
                    )
                }
                _ => continue,
            };
            if threshold == 0 || !self.settings.enabled {
                self.episodes[i] = false;
                continue;
            }
            let value = u64::try_from(u128::from(numerator) * 1000 / u128::from(cycles))
                .unwrap_or(u64::MAX);
            let bad = if above {
                value >= u64::from(threshold)
            } else {
                value < u64::from(threshold)
            };
            if !bad {
                self.episodes[i] = false;
                continue;
            }
            if self.episodes[i] {
                continue;
            }
            self.episodes[i] = true;
            out.push(self.candidate(
                anomaly, s, quality, start, end, &ratio, value, threshold, above,
            ));
        }
    }

    #[allow(clippy::too_many_arguments)] // one call site; the facts of one window
    fn candidate(
        &self,
        anomaly: Anomaly,
        s: &Sums,
        quality: Quality,
        start: u64,
        end: u64,
        ratio: &str,
        value: u64,
        threshold: u32,
        above: bool,
    ) -> Candidate {
        let names = slot_names(self.source);
        let source = source_name(self.source);
        let mut key = Facts::with_capacity(1);
        key.str("counter_source", source);
        let mut d = Facts::with_capacity(20);
        d.str("ratio", ratio)
            .u64("value_permille", value)
            .u64("threshold_permille", u64::from(threshold))
            .u64("window_ms", self.window_ns() / 1_000_000)
            .u64("window_start_ns", start)
            .u64("window_end_ns", end)
            .u64("cpus", s.cpus.len() as u64)
            .u64("covered_ns", s.covered_ns);
        for (slot, name) in names.iter().enumerate() {
            if self.event_mask & bit(slot) != 0 {
                d.u64(name, s.counts[slot]);
            }
        }
        let missing = self.ever.len().saturating_sub(s.cpus.len()) as u64;
        d.bool("multiplexed", s.min_running_permille < 1000)
            .u64("min_running_permille", s.min_running_permille)
            .u64("cpus_missing", missing)
            .u64("gaps", quality.gaps)
            .u64("resets", quality.resets)
            .u64("dropped_intervals", quality.dropped_intervals);
        let prefix = if self.source == SRC_HARDWARE {
            String::new()
        } else {
            format!("[{source} counters, not hardware] ")
        };
        let cmp = if above { ">=" } else { "<" };
        let summary = format!(
            "{prefix}node {ratio} {}.{:03} {cmp} {}.{:03} over {} ms on {} CPUs{}",
            value / 1000,
            value % 1000,
            threshold / 1000,
            threshold % 1000,
            self.window_ns() / 1_000_000,
            s.cpus.len(),
            if s.min_running_permille < 1000 {
                " (multiplexed, scaled)"
            } else {
                ""
            }
        );
        Candidate {
            anomaly,
            severity: Severity::Warning,
            outcome: Outcome::Degraded,
            unix_ns: end,
            generation: self.generation,
            key,
            detail: d,
            summary,
            template: None,
            fold: false,
        }
    }
}

fn stall_numerator(
    s: &Sums,
    has: impl Fn(usize) -> bool,
    names: &[&'static str; EVENTS],
) -> (u64, &'static str) {
    let fe = has(EV_STALL_FRONTEND).then_some(s.counts[EV_STALL_FRONTEND]);
    let be = has(EV_STALL_BACKEND).then_some(s.counts[EV_STALL_BACKEND]);
    match (fe, be) {
        (Some(f), Some(b)) if f >= b => (f, names[EV_STALL_FRONTEND]),
        (_, Some(b)) => (b, names[EV_STALL_BACKEND]),
        (Some(f), None) => (f, names[EV_STALL_FRONTEND]),
        (None, None) => (0, names[EV_STALL_BACKEND]),
    }
}
