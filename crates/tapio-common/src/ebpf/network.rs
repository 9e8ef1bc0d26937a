//! Network observer ABI (`ebpf/network_monitor.h`).

use super::{ConfigHeader, RecordHeader, TASK_COMM_LEN};

/// Refused / timed-out connects.
pub const CFG_CONNECT: u32 = 1 << 1;
/// Data retransmits.
pub const CFG_RETRANSMIT: u32 = 1 << 2;
/// Smoothed-RTT samples.
pub const CFG_RTT: u32 = 1 << 3;

/// Sockets in SYN_SENT at once whose owner `owner_table` holds as built
/// (`NET_CONNECTING_MAX`); beyond it a connect's owner is unknown (counted).
pub const CONNECTING_MAX: u32 = 1024;
/// Sockets whose owner `owner_table` holds for their whole life where
/// tracing programs have no socket-local storage (`NET_OWNER_TABLE_MAX`).
pub const OWNER_TABLE_MAX: u32 = 16384;

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
    /// The socket's windowed minimum RTT in microseconds; 0 = none yet.
    pub min_rtt_us: u32,
    /// Segments the socket sent (connect: 0 = the SYN never left).
    pub segs_out: u32,
}

// SAFETY: integers and integer arrays only, no implicit padding (the
// layout tests prove it).
unsafe impl super::Plain for NetworkConfig {}
// SAFETY: as above.
unsafe impl super::Plain for NetworkRecord {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn network_layout_matches_network_monitor_h() {
        assert_eq!(size_of::<NetworkConfig>(), 24);
        assert_eq!(offset_of!(NetworkConfig, hdr), 0);
        assert_eq!(offset_of!(NetworkConfig, rtt_sample_interval_ms), 16);
        assert_eq!(offset_of!(NetworkConfig, _pad0), 20);

        assert_eq!(size_of::<NetworkRecord>(), 128);
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
        assert_eq!(offset_of!(NetworkRecord, min_rtt_us), 120);
        assert_eq!(offset_of!(NetworkRecord, segs_out), 124);
        assert_eq!(offset_of!(NetworkRecord, duration_ns), 112);
    }
}
