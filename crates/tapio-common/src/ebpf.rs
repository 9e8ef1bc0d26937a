//! BPF/Rust ABI mirror of `ebpf/tapio.h` and `ebpf/<observer>.h`.
//!
//! Every struct here is `#[repr(C)]` with the same fields, widths and
//! explicit padding as its C twin; the tests at the bottom assert sizes and
//! every field offset, so layout drift fails `cargo test` instead of
//! producing wrong evidence at run time.
//!
//! ## Design constraints
//! - Records are read from ring-buffer bytes with [`read_record`], which
//!   checks the length first: a short slice is malformed, never a panic.
//! - Only plain-old-data types (no references, no enums, no bools) implement
//!   [`Plain`], so any byte pattern is a valid value.

use std::mem::size_of;

/// ABI version of every struct in this module (`TAPIO_ABI_VERSION`).
pub const TAPIO_ABI_VERSION: u32 = 1;
/// `tapio_config_header.flags`: the observer is enabled.
pub const TAPIO_CFG_ENABLED: u32 = 1 << 0;
/// Length of `comm` fields (`TASK_COMM_LEN`).
pub const TASK_COMM_LEN: usize = 16;

/// Slots of every object's per-CPU `tapio_stats` array (`enum tapio_stat`).
pub mod stat {
    /// Ring-buffer reserve failures.
    pub const LOST: u32 = 0;
    /// Facts skipped because the carrier's ABI version differs.
    pub const ABI_MISMATCH: u32 = 1;
    /// Forced wakeups past the fill threshold.
    pub const WAKEUPS: u32 = 2;
    /// First observer-specific slot.
    pub const OBSERVER_BASE: u32 = 4;
    /// Number of slots.
    pub const SLOTS: u32 = 16;
}

/// Plain-old-data: every byte pattern of `size_of::<Self>()` bytes is a valid
/// value.
///
/// # Safety
/// Implement only for `#[repr(C)]` structs made of integers and arrays of
/// integers, without implicit padding.
pub unsafe trait Plain: Copy + Default {}

/// Reads a `T` from the start of `bytes`; `None` when `bytes` is shorter.
#[must_use]
pub fn read_record<T: Plain>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: the length is checked above, T is Plain (any bit pattern is
    // valid) and read_unaligned has no alignment requirement.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// The bytes of a `T`, for writing config carriers.
#[must_use]
pub fn as_bytes<T: Plain>(value: &T) -> &[u8] {
    // SAFETY: T is Plain: no padding, so every byte is initialised.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
}

/// `struct tapio_config_header`: head of every config carrier.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConfigHeader {
    /// [`TAPIO_ABI_VERSION`], or 0 while unconfigured.
    pub abi_version: u32,
    /// `TAPIO_CFG_*` and observer flags.
    pub flags: u32,
    /// Config generation stamped into every record it judged.
    pub generation: u64,
}

/// `struct tapio_record_header`: head of every ring-buffer record.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// Observer-specific record kind, never 0.
    pub kind: u16,
    /// Total record size, header included.
    pub size: u16,
    /// ABI version of the producer.
    pub abi_version: u32,
    /// `bpf_ktime_get_boot_ns()` at the fact.
    pub ts_boot_ns: u64,
    /// Config generation that judged the fact.
    pub generation: u64,
}

/// Network observer ABI (`ebpf/network_monitor.h`).
pub mod network {
    use super::{ConfigHeader, RecordHeader, TASK_COMM_LEN};

    /// Refused / timed-out connects.
    pub const CFG_CONNECT: u32 = 1 << 1;
    /// Data retransmits.
    pub const CFG_RETRANSMIT: u32 = 1 << 2;
    /// Smoothed-RTT samples.
    pub const CFG_RTT: u32 = 1 << 3;

    /// A socket left SYN_SENT for CLOSE.
    pub const REC_CONNECT_FAILED: u16 = 1;
    /// One retransmitted data segment.
    pub const REC_RETRANSMIT: u16 = 2;
    /// Smoothed RTT of an established connection.
    pub const REC_RTT_SAMPLE: u16 = 3;

    /// Owner (tgid/pid/comm) captured at connect.
    pub const REC_F_OWNER_KNOWN: u32 = 1 << 0;
    /// An RST was received while in SYN_SENT.
    pub const REC_F_RST: u32 = 1 << 1;

    /// Socket storage could not be created (owner unknown).
    pub const STAT_OWNER_STORE_FAILED: u32 = 4;
    /// Retransmit attempts that were not sent.
    pub const STAT_RETRANSMIT_FAILED: u32 = 5;

    /// `struct network_config`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct NetworkConfig {
        /// Common header.
        pub hdr: ConfigHeader,
        /// Per-socket RTT sampling period; 0 = RTT off.
        pub rtt_sample_interval_ms: u32,
        /// Padding.
        pub _pad0: u32,
    }

    /// `struct network_record`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct NetworkRecord {
        /// Common header.
        pub hdr: RecordHeader,
        /// Owner process captured at connect; 0 = unknown.
        pub tgid: u32,
        /// Owner thread; 0 = unknown.
        pub pid: u32,
        /// Owner comm, NUL-padded.
        pub comm: [u8; TASK_COMM_LEN],
        /// Owner cgroup v2 id at connect.
        pub cgroup_id: u64,
        /// Source address (IPv4 in the first 4 bytes).
        pub saddr: [u8; 16],
        /// Destination address (IPv4 in the first 4 bytes).
        pub daddr: [u8; 16],
        /// `AF_INET` or `AF_INET6`.
        pub family: u16,
        /// Source port, host order.
        pub sport: u16,
        /// Destination port, host order.
        pub dport: u16,
        /// TCP state at the fact.
        pub state: u8,
        /// Padding.
        pub _pad0: u8,
        /// `REC_F_*`.
        pub flags: u32,
        /// `sk->sk_err` at SYN_SENT -> CLOSE.
        pub sk_err: i32,
        /// SYN retransmits (connect), segments retransmitted (retransmit),
        /// `total_retrans` (RTT sample).
        pub retransmits: u32,
        /// Smoothed RTT in microseconds.
        pub srtt_us: u32,
        /// Time spent in SYN_SENT.
        pub duration_ns: u64,
    }

    // SAFETY: integers and integer arrays only, no implicit padding (the
    // layout tests prove it).
    unsafe impl super::Plain for NetworkConfig {}
    // SAFETY: as above.
    unsafe impl super::Plain for NetworkRecord {}
}

// SAFETY: integers only, no implicit padding.
unsafe impl Plain for ConfigHeader {}
// SAFETY: integers only, no implicit padding.
unsafe impl Plain for RecordHeader {}

#[cfg(test)]
mod tests {
    use super::network::{NetworkConfig, NetworkRecord};
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn config_header_layout_matches_tapio_h() {
        assert_eq!(size_of::<ConfigHeader>(), 16);
        assert_eq!(offset_of!(ConfigHeader, abi_version), 0);
        assert_eq!(offset_of!(ConfigHeader, flags), 4);
        assert_eq!(offset_of!(ConfigHeader, generation), 8);
    }

    #[test]
    fn record_header_layout_matches_tapio_h() {
        assert_eq!(size_of::<RecordHeader>(), 24);
        assert_eq!(offset_of!(RecordHeader, kind), 0);
        assert_eq!(offset_of!(RecordHeader, size), 2);
        assert_eq!(offset_of!(RecordHeader, abi_version), 4);
        assert_eq!(offset_of!(RecordHeader, ts_boot_ns), 8);
        assert_eq!(offset_of!(RecordHeader, generation), 16);
    }

    #[test]
    fn network_layout_matches_network_monitor_h() {
        assert_eq!(size_of::<NetworkConfig>(), 24);
        assert_eq!(offset_of!(NetworkConfig, hdr), 0);
        assert_eq!(offset_of!(NetworkConfig, rtt_sample_interval_ms), 16);
        assert_eq!(offset_of!(NetworkConfig, _pad0), 20);

        assert_eq!(size_of::<NetworkRecord>(), 120);
        assert_eq!(offset_of!(NetworkRecord, hdr), 0);
        assert_eq!(offset_of!(NetworkRecord, tgid), 24);
        assert_eq!(offset_of!(NetworkRecord, pid), 28);
        assert_eq!(offset_of!(NetworkRecord, comm), 32);
        assert_eq!(offset_of!(NetworkRecord, cgroup_id), 48);
        assert_eq!(offset_of!(NetworkRecord, saddr), 56);
        assert_eq!(offset_of!(NetworkRecord, daddr), 72);
        assert_eq!(offset_of!(NetworkRecord, family), 88);
        assert_eq!(offset_of!(NetworkRecord, sport), 90);
        assert_eq!(offset_of!(NetworkRecord, dport), 92);
        assert_eq!(offset_of!(NetworkRecord, state), 94);
        assert_eq!(offset_of!(NetworkRecord, _pad0), 95);
        assert_eq!(offset_of!(NetworkRecord, flags), 96);
        assert_eq!(offset_of!(NetworkRecord, sk_err), 100);
        assert_eq!(offset_of!(NetworkRecord, retransmits), 104);
        assert_eq!(offset_of!(NetworkRecord, srtt_us), 108);
        assert_eq!(offset_of!(NetworkRecord, duration_ns), 112);
    }

    #[test]
    fn read_record_rejects_short_input() {
        let bytes = [0u8; 23];
        assert!(read_record::<RecordHeader>(&bytes).is_none());
        assert!(read_record::<RecordHeader>(&[0u8; 24]).is_some());
    }

    #[test]
    fn as_bytes_round_trips_through_read_record() {
        let cfg = NetworkConfig {
            hdr: ConfigHeader {
                abi_version: TAPIO_ABI_VERSION,
                flags: 3,
                generation: 7,
            },
            rtt_sample_interval_ms: 1000,
            _pad0: 0,
        };
        assert_eq!(read_record::<NetworkConfig>(as_bytes(&cfg)), Some(cfg));
    }
}
