//! Counter arithmetic and naming: one slot's delta between two snapshots
//! (wrap, reset, multiplexing), and what each slot is called per source.

use tapio_common::ebpf::node::{NodeCounter, EVENTS, SRC_HARDWARE, SRC_SOFTWARE_TEST};

/// Largest plausible count rate of any slot (cycles, instructions, ns):
/// a larger delta, wrapped or not, is a reset.
pub const MAX_COUNTS_PER_NS: u64 = 64;

/// Name of a counter source in occurrences.
#[must_use]
pub fn source_name(source: u32) -> &'static str {
    match source {
        SRC_HARDWARE => "hardware",
        SRC_SOFTWARE_TEST => "software-test",
        _ => "unknown",
    }
}

/// What each slot counts, by source: software-test slots never carry
/// hardware names.
#[must_use]
pub fn slot_names(source: u32) -> [&'static str; EVENTS] {
    if source == SRC_HARDWARE {
        [
            "cycles",
            "instructions",
            "stalled_cycles_frontend",
            "stalled_cycles_backend",
        ]
    } else {
        [
            "cpu_clock_ns",
            "context_switches",
            "page_faults",
            "cpu_migrations",
        ]
    }
}

/// One slot's change between two snapshots of a CPU.
pub enum Delta {
    /// Counted over the interval.
    Counted {
        /// Count, scaled by enabled/running when multiplexed.
        scaled: u64,
        /// Share of the interval the event was counting, permille.
        running: u64,
    },
    /// The counter or its times went backwards implausibly: reset.
    Reset,
    /// Enabled but never scheduled on the PMU in the interval.
    NotScheduled,
}

/// The change of one slot over `elapsed_ns`.
pub fn delta(prev: &NodeCounter, cur: &NodeCounter, elapsed_ns: u64) -> Delta {
    let (Some(en), Some(run)) = (
        cur.enabled_ns.checked_sub(prev.enabled_ns),
        cur.running_ns.checked_sub(prev.running_ns),
    ) else {
        return Delta::Reset;
    };
    let d = cur.counter.wrapping_sub(prev.counter);
    if d > elapsed_ns.saturating_mul(MAX_COUNTS_PER_NS) {
        return Delta::Reset;
    }
    if run == 0 {
        return if en == 0 {
            // Neither enabled nor running advanced: nothing to scale, and
            // a zero count is the truth.
            Delta::Counted {
                scaled: d,
                running: 1000,
            }
        } else {
            Delta::NotScheduled
        };
    }
    if run >= en {
        return Delta::Counted {
            scaled: d,
            running: 1000,
        };
    }
    let scaled =
        u64::try_from(u128::from(d) * u128::from(en) / u128::from(run)).unwrap_or(u64::MAX);
    let running = u64::try_from(u128::from(run) * 1000 / u128::from(en)).unwrap_or(1000);
    Delta::Counted { scaled, running }
}
