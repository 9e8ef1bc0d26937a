//! Node observer ABI (`ebpf/node_pmc_monitor.h`).

use super::{ConfigHeader, RecordHeader};

/// Slot of `PERF_COUNT_HW_CPU_CYCLES` (required).
pub const EV_CYCLES: usize = 0;
/// Slot of `PERF_COUNT_HW_INSTRUCTIONS`.
pub const EV_INSTRUCTIONS: usize = 1;
/// Slot of `PERF_COUNT_HW_STALLED_CYCLES_FRONTEND`.
pub const EV_STALL_FRONTEND: usize = 2;
/// Slot of `PERF_COUNT_HW_STALLED_CYCLES_BACKEND`.
pub const EV_STALL_BACKEND: usize = 3;
/// Number of counter slots.
pub const EVENTS: usize = 4;

/// `node_setup.source`: not set up; the program stays silent.
pub const SRC_NONE: u32 = 0;
/// `node_setup.source`: hardware PMU counters.
pub const SRC_HARDWARE: u32 = 1;
/// `node_setup.source`: software events in the slots (test mode only).
pub const SRC_SOFTWARE_TEST: u32 = 2;

/// Period of the per-CPU cpu-clock event that takes the snapshots.
pub const SAMPLE_PERIOD_MS: u64 = 500;

/// One CPU's counter snapshot.
pub const REC_SAMPLE: u16 = 1;

/// `bpf_perf_event_read_value` of an opened event failed.
pub const STAT_READ_FAILED: u32 = 4;

/// `struct node_config`: the thresholds are judged in userspace.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeConfig {
    /// Common header.
    pub hdr: ConfigHeader,
}

/// `struct node_setup` (map `pmc_setup`, key 0).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeSetup {
    /// `SRC_*`.
    pub source: u32,
    /// Bit per slot opened on every online CPU.
    pub event_mask: u32,
}

/// `struct node_counter`: one `bpf_perf_event_read_value` result.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCounter {
    /// Raw 64-bit count.
    pub counter: u64,
    /// Time the event was enabled.
    pub enabled_ns: u64,
    /// Time it was counting; less than `enabled_ns` when multiplexed.
    pub running_ns: u64,
}

/// `struct node_sample`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeSample {
    /// Common header.
    pub hdr: RecordHeader,
    /// CPU of the snapshot.
    pub cpu: u32,
    /// `SRC_*` at the snapshot.
    pub source: u32,
    /// Slots opened.
    pub event_mask: u32,
    /// Slots read successfully in this snapshot.
    pub read_mask: u32,
    /// Counters by slot.
    pub ev: [NodeCounter; EVENTS],
}

// SAFETY: integers only, no implicit padding (the layout tests prove it).
unsafe impl super::Plain for NodeConfig {}
// SAFETY: as above.
unsafe impl super::Plain for NodeSetup {}
// SAFETY: as above.
unsafe impl super::Plain for NodeCounter {}
// SAFETY: as above.
unsafe impl super::Plain for NodeSample {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn node_layout_matches_node_pmc_monitor_h() {
        assert_eq!(size_of::<NodeConfig>(), 16);
        assert_eq!(offset_of!(NodeConfig, hdr), 0);

        assert_eq!(size_of::<NodeSetup>(), 8);
        assert_eq!(offset_of!(NodeSetup, source), 0);
        assert_eq!(offset_of!(NodeSetup, event_mask), 4);

        assert_eq!(size_of::<NodeCounter>(), 24);
        assert_eq!(offset_of!(NodeCounter, counter), 0);
        assert_eq!(offset_of!(NodeCounter, enabled_ns), 8);
        assert_eq!(offset_of!(NodeCounter, running_ns), 16);

        assert_eq!(size_of::<NodeSample>(), 136);
        assert_eq!(offset_of!(NodeSample, hdr), 0);
        assert_eq!(offset_of!(NodeSample, cpu), 24);
        assert_eq!(offset_of!(NodeSample, source), 28);
        assert_eq!(offset_of!(NodeSample, event_mask), 32);
        assert_eq!(offset_of!(NodeSample, read_mask), 36);
        assert_eq!(offset_of!(NodeSample, ev), 40);
    }
}
