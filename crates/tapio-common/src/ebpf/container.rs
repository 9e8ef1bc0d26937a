//! Container observer ABI (`ebpf/container_monitor.h`).

use super::{ConfigHeader, RecordHeader, TASK_COMM_LEN};

/// Report OOM victims (`oom/mark_victim`).
pub const CFG_OOM_KILL: u32 = 1 << 1;
/// Report abnormal exits (`sched/sched_process_exit`).
pub const CFG_ABNORMAL_EXIT: u32 = 1 << 2;

/// The OOM killer marked a victim.
pub const REC_OOM_KILL: u16 = 1;
/// A process died with a configured status.
pub const REC_ABNORMAL_EXIT: u16 = 2;

/// `memcg_id` and, for OOM records, usage and limit were read.
pub const REC_F_MEMCG_KNOWN: u32 = 1 << 0;
/// The memory cgroup is on a cgroup v1 hierarchy.
pub const REC_F_MEMCG_V1: u32 = 1 << 1;

/// A victim could not be remembered: its exit may be reported as
/// abnormal_exit.
pub const STAT_OOM_MARK_FAILED: u32 = 4;
/// Exits of OOM victims not reported again.
pub const STAT_OOM_EXIT_SKIPPED: u32 = 5;
/// `mark_victim` gave only a pid whose task was not seen being sent the OOM
/// killer's SIGKILL: the OOM kill is not reported.
pub const STAT_OOM_VICTIM_UNKNOWN: u32 = 6;
/// Another thread of a process whose death was already reported.
pub const STAT_DEATH_REPEATED: u32 = 7;

/// `struct container_config`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerConfig {
    /// Common header.
    pub hdr: ConfigHeader,
    /// Bit `n - 1` set: death by signal `n` (1..=64) is abnormal.
    pub fatal_signals: u64,
    /// Bit `n` set: `exit(n)` is abnormal (bit 0 is never set).
    pub exit_codes: [u64; 4],
}

/// `struct container_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerRecord {
    /// Common header.
    pub hdr: RecordHeader,
    /// Process id.
    pub tgid: u32,
    /// Thread: the marked victim, or the last thread to exit.
    pub pid: u32,
    /// Thread-group leader's comm, NUL-padded.
    pub comm: [u8; TASK_COMM_LEN],
    /// Cgroup id of the memory cgroup (v1: the directory's inode).
    pub memcg_id: u64,
    /// Cgroup id on the default (v2) hierarchy.
    pub cgroup2_id: u64,
    /// Memcg usage in pages (OOM records).
    pub mem_usage_pages: u64,
    /// Memcg limit in pages, raw: `PAGE_COUNTER_MAX` or more means none.
    pub mem_limit_pages: u64,
    /// `task->exit_code` (exit records).
    pub exit_code: u32,
    /// `REC_F_*`.
    pub flags: u32,
}

// SAFETY: integers and integer arrays only, no implicit padding (the
// layout tests prove it).
unsafe impl super::Plain for ContainerConfig {}
// SAFETY: as above.
unsafe impl super::Plain for ContainerRecord {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn container_layout_matches_container_monitor_h() {
        assert_eq!(size_of::<ContainerConfig>(), 56);
        assert_eq!(offset_of!(ContainerConfig, hdr), 0);
        assert_eq!(offset_of!(ContainerConfig, fatal_signals), 16);
        assert_eq!(offset_of!(ContainerConfig, exit_codes), 24);

        assert_eq!(size_of::<ContainerRecord>(), 88);
        assert_eq!(offset_of!(ContainerRecord, hdr), 0);
        assert_eq!(offset_of!(ContainerRecord, tgid), 24);
        assert_eq!(offset_of!(ContainerRecord, pid), 28);
        assert_eq!(offset_of!(ContainerRecord, comm), 32);
        assert_eq!(offset_of!(ContainerRecord, memcg_id), 48);
        assert_eq!(offset_of!(ContainerRecord, cgroup2_id), 56);
        assert_eq!(offset_of!(ContainerRecord, mem_usage_pages), 64);
        assert_eq!(offset_of!(ContainerRecord, mem_limit_pages), 72);
        assert_eq!(offset_of!(ContainerRecord, exit_code), 80);
        assert_eq!(offset_of!(ContainerRecord, flags), 84);
    }
}
