//! Boot-time to wall-clock conversion for kernel timestamps.
//!
//! Records carry `bpf_ktime_get_boot_ns()`; occurrences need Unix time. The
//! offset between CLOCK_REALTIME and CLOCK_BOOTTIME is re-read on every
//! drain tick, so NTP steps are followed within one tick.

fn clock_ns(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Converts boot-time nanoseconds to Unix nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    offset_ns: u64,
}

impl Clock {
    /// Reads the current offset.
    #[must_use]
    pub fn now() -> Self {
        let boot = clock_ns(libc::CLOCK_BOOTTIME);
        let real = clock_ns(libc::CLOCK_REALTIME);
        Clock {
            offset_ns: real.saturating_sub(boot),
        }
    }

    /// A fixed offset (tests, replay).
    #[must_use]
    pub const fn fixed(offset_ns: u64) -> Self {
        Clock { offset_ns }
    }

    /// Unix nanoseconds of a boot-time stamp.
    #[must_use]
    pub fn unix_ns(&self, boot_ns: u64) -> u64 {
        boot_ns.saturating_add(self.offset_ns)
    }

    /// Unix nanoseconds now.
    #[must_use]
    pub fn unix_now() -> u64 {
        clock_ns(libc::CLOCK_REALTIME)
    }

    /// Boot-time nanoseconds now.
    #[must_use]
    pub fn boot_now() -> u64 {
        clock_ns(libc::CLOCK_BOOTTIME)
    }
}
