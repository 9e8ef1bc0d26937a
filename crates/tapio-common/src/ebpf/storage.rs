//! Storage observer ABI (`ebpf/storage_monitor.h`).

use super::{ConfigHeader, RecordHeader};

/// Requests tracked between issue and final completion (only those the
/// kernel did not stamp: the fallback path).
pub const INFLIGHT_MAX: u32 = 8192;

/// Report completions with an error.
pub const CFG_IO_ERRORS: u32 = 1 << 1;
/// Report latency threshold crossings.
pub const CFG_LATENCY: u32 = 1 << 2;

/// Final completion with an error status.
pub const REC_IO_ERROR: u16 = 1;
/// Final completion at or past the warning threshold.
pub const REC_LATENCY: u16 = 2;

/// Latency at or past the critical threshold.
pub const REC_F_CRITICAL: u32 = 1 << 0;
/// `status` is a positive errno, not a `blk_status_t`: the kernel's
/// tracepoint passed an errno (Linux 5.10).
pub const REC_F_ERRNO: u32 = 1 << 1;
/// `latency_ns` came from `rq->io_start_time_ns` (dispatch to the driver).
/// Neither this nor [`REC_F_CLOCK_ALLOC`]: from the issue hook (fallback).
pub const REC_F_CLOCK_IO_START: u32 = 1 << 2;
/// `latency_ns` came from `rq->start_time_ns` (request allocation; includes
/// scheduler queueing).
pub const REC_F_CLOCK_ALLOC: u32 = 1 << 3;

/// Issue of a request already in flight (counted for the older issue, and
/// again when the ambiguous completion is dropped).
pub const STAT_AMBIGUOUS: u32 = 4;
/// Final completion without a tracked issue.
pub const STAT_MISSING_ISSUE: u32 = 5;
/// In-flight request requeued; its issue forgotten.
pub const STAT_REQUEUED: u32 = 6;
/// Issue not tracked: in-flight table full.
pub const STAT_INFLIGHT_FULL: u32 = 7;
/// Error in a partial completion (not reported).
pub const STAT_PARTIAL_ERROR: u32 = 8;
/// Final completion of a request the kernel did not stamp, judged on the
/// issue hook's clock (the fallback path).
pub const STAT_UNSTAMPED: u32 = 9;

/// `struct storage_config`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageConfig {
    /// Common header.
    pub hdr: ConfigHeader,
    /// Issue to completion; 0 = latency off.
    pub latency_warning_ns: u64,
    /// At or above warning; 0 = no critical level.
    pub latency_critical_ns: u64,
}

/// `struct storage_record`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageRecord {
    /// Common header.
    pub hdr: RecordHeader,
    /// Request position at completion, 512-byte sectors.
    pub sector: u64,
    /// Start (see `REC_F_CLOCK_*`) to final completion.
    pub latency_ns: u64,
    /// Kernel `dev_t`: `major << 20 | minor`.
    pub dev: u32,
    /// Bytes of the final completion.
    pub bytes: u32,
    /// `REQ_OP_*`.
    pub op: u32,
    /// `blk_status_t` (a positive errno with [`REC_F_ERRNO`]), 0 = ok.
    pub status: u32,
    /// `REC_F_*`.
    pub flags: u32,
    /// Padding.
    pub _pad0: u32,
}

// SAFETY: integers only, no implicit padding (the layout tests prove it).
unsafe impl super::Plain for StorageConfig {}
// SAFETY: as above.
unsafe impl super::Plain for StorageRecord {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn storage_layout_matches_storage_monitor_h() {
        assert_eq!(size_of::<StorageConfig>(), 32);
        assert_eq!(offset_of!(StorageConfig, hdr), 0);
        assert_eq!(offset_of!(StorageConfig, latency_warning_ns), 16);
        assert_eq!(offset_of!(StorageConfig, latency_critical_ns), 24);

        assert_eq!(size_of::<StorageRecord>(), 64);
        assert_eq!(offset_of!(StorageRecord, hdr), 0);
        assert_eq!(offset_of!(StorageRecord, sector), 24);
        assert_eq!(offset_of!(StorageRecord, latency_ns), 32);
        assert_eq!(offset_of!(StorageRecord, dev), 40);
        assert_eq!(offset_of!(StorageRecord, bytes), 44);
        assert_eq!(offset_of!(StorageRecord, op), 48);
        assert_eq!(offset_of!(StorageRecord, status), 52);
        assert_eq!(offset_of!(StorageRecord, flags), 56);
        assert_eq!(offset_of!(StorageRecord, _pad0), 60);
    }
}
