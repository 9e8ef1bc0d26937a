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

impl ConfigHeader {
    /// The header of a carrier at `generation`: [`TAPIO_CFG_ENABLED`] and
    /// every flag of `wanted` whose condition holds when the observer is
    /// `enabled`, no flag at all otherwise.
    #[must_use]
    pub fn configured(enabled: bool, wanted: &[(bool, u32)], generation: u64) -> ConfigHeader {
        let flags = if enabled {
            wanted
                .iter()
                .filter(|(on, _)| *on)
                .fold(TAPIO_CFG_ENABLED, |f, (_, flag)| f | flag)
        } else {
            0
        };
        ConfigHeader {
            abi_version: TAPIO_ABI_VERSION,
            flags,
            generation,
        }
    }
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

pub mod container;
pub mod network;
pub mod node;
pub mod storage;

// SAFETY: integers only, no implicit padding.
unsafe impl Plain for ConfigHeader {}
// SAFETY: integers only, no implicit padding.
unsafe impl Plain for RecordHeader {}

#[cfg(test)]
mod tests {
    use super::network::NetworkConfig;
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
    fn a_configured_header_sets_only_wanted_flags_of_an_enabled_observer() {
        let h = ConfigHeader::configured(true, &[(true, 1 << 3), (false, 1 << 4)], 9);
        assert_eq!(
            (h.abi_version, h.flags, h.generation),
            (TAPIO_ABI_VERSION, TAPIO_CFG_ENABLED | 1 << 3, 9)
        );
        assert_eq!(
            ConfigHeader::configured(false, &[(true, 1 << 3)], 9).flags,
            0
        );
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
