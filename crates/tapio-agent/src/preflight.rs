//! Startup checks (A1): kernel version, BTF and capabilities, each failure
//! one line naming what is missing.

use std::path::Path;

/// Capabilities the agent needs, with their bit numbers.
pub const REQUIRED_CAPS: [(&str, u32); 3] =
    [("CAP_BPF", 39), ("CAP_PERFMON", 38), ("CAP_NET_ADMIN", 12)];

/// Why this host cannot run the agent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PreflightError {
    /// Kernel older than 5.8.
    #[error("kernel {release} is older than 5.8, which the agent needs (ring buffers, CAP_BPF)")]
    Kernel {
        /// `uname -r`.
        release: String,
    },
    /// A kernel release that does not start with `major.minor`.
    #[error("kernel release `{release}` does not start with a version (major.minor)")]
    Release {
        /// `uname -r`.
        release: String,
    },
    /// A file of /proc the checks read is not there.
    #[error("cannot read {path}: {reason} (is /proc mounted?)")]
    Proc {
        /// The path looked at.
        path: &'static str,
        /// The error.
        reason: String,
    },
    /// No kernel BTF.
    #[error(
        "kernel BTF missing: {path} not readable (kernel built without CONFIG_DEBUG_INFO_BTF)"
    )]
    Btf {
        /// The path looked at.
        path: String,
    },
    /// A capability is not in the effective set.
    #[error("missing capability {cap} in the effective set (the agent needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN)")]
    Capability {
        /// The first missing capability.
        cap: &'static str,
    },
}

/// Parses `major.minor` from a kernel release string.
#[must_use]
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The effective capability mask from `/proc/self/status` text.
#[must_use]
pub fn cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

/// The first required capability missing from `mask`.
#[must_use]
pub fn missing_cap(mask: u64) -> Option<&'static str> {
    REQUIRED_CAPS
        .iter()
        .find(|(_, bit)| mask & (1u64 << bit) == 0)
        .map(|(n, _)| *n)
}

/// Runs every check against this host.
///
/// # Errors
/// The first check that fails.
pub fn check_host() -> Result<(), PreflightError> {
    check_release(&kernel_release())?;
    let btf = crate::kernel_btf::SYS_BTF;
    if std::fs::File::open(Path::new(btf)).is_err() {
        return Err(PreflightError::Btf { path: btf.into() });
    }
    let path = "/proc/self/status";
    let status = std::fs::read_to_string(path).map_err(|e| PreflightError::Proc {
        path,
        reason: e.to_string(),
    })?;
    if let Some(cap) = missing_cap(cap_eff(&status).unwrap_or(0)) {
        return Err(PreflightError::Capability { cap });
    }
    Ok(())
}

/// The running kernel's release, from uname(2): no /proc needed.
fn kernel_release() -> String {
    // SAFETY: utsname is plain old data; uname fills it or fails.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c.to_ne_bytes()[0])
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The version check on a release string.
///
/// # Errors
/// An unparsable release, or a kernel older than 5.8.
pub fn check_release(release: &str) -> Result<(), PreflightError> {
    match kernel_version(release) {
        Some(v) if v >= (5, 8) => Ok(()),
        Some(_) => Err(PreflightError::Kernel {
            release: release.to_owned(),
        }),
        None => Err(PreflightError::Release {
            release: release.to_owned(),
        }),
    }
}

/// Caps glibc malloc at two arenas: the agent's few threads (runtime,
/// sinks, controller) allocate little, and one arena per thread would keep
/// megabytes of freed memory resident (RSS budget). A no-op on musl (static
/// builds), whose allocator has no per-thread arenas.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only adjusts allocator tuning.
    #[cfg(target_env = "gnu")]
    let _ = unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
}

/// Returns freed heap memory to the OS (after start-up, when loading the
/// eBPF objects and parsing kernel BTF has allocated and freed megabytes).
/// A no-op on musl, whose allocator returns freed pages by itself.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only releases free memory of the allocator.
    #[cfg(target_env = "gnu")]
    let _ = unsafe { libc::malloc_trim(0) };
}

/// This process's resident memory now and at its peak (`VmRSS`, `VmHWM`
/// of /proc/self/status), in KiB; `None` where the file or a field is
/// missing.
#[must_use]
pub fn memory_kib() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    Some((status_number(&s, "VmRSS:")?, status_number(&s, "VmHWM:")?))
}

/// The number that starts the line `name` (e.g. `VmRSS:`, `Threads:`) of a
/// /proc/<pid>/status text; `None` when the line or the number is missing.
#[must_use]
pub fn status_number(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Lifts RLIMIT_MEMLOCK for kernels that still charge BPF maps to it
/// (before 5.11); harmless elsewhere.
pub fn raise_memlock() {
    let r = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: r is a valid rlimit; failure only matters on old kernels and
    // surfaces there as a map creation error with its errno.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &r) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_memory() {
        let (rss, peak) = memory_kib().expect("/proc/self/status has VmRSS and VmHWM");
        assert!(rss > 0 && peak >= rss, "rss {rss} KiB, peak {peak} KiB");
    }

    #[test]
    fn parses_kernel_releases() {
        assert_eq!(kernel_version("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(kernel_version("5.8.0"), Some((5, 8)));
        assert_eq!(kernel_version("garbage"), None);
    }

    #[test]
    fn release_errors_say_what_is_wrong() {
        assert_eq!(check_release("6.1.0-57-cloud-amd64"), Ok(()));
        assert_eq!(check_release("5.8.0"), Ok(()));
        assert_eq!(
            check_release("5.4.0").unwrap_err().to_string(),
            "kernel 5.4.0 is older than 5.8, which the agent needs (ring buffers, CAP_BPF)"
        );
        assert_eq!(
            check_release("").unwrap_err().to_string(),
            "kernel release `` does not start with a version (major.minor)"
        );
        assert!(kernel_version(&kernel_release()).is_some());
    }

    #[test]
    fn names_the_first_missing_capability() {
        let all = (1u64 << 39) | (1 << 38) | (1 << 12);
        assert_eq!(missing_cap(all), None);
        assert_eq!(missing_cap(all & !(1 << 39)), Some("CAP_BPF"));
        assert_eq!(missing_cap(all & !(1 << 12)), Some("CAP_NET_ADMIN"));
        assert_eq!(
            cap_eff("Name:\tx\nCapEff:\t000001ffffffffff\n"),
            Some(0x1ff_ffff_ffff)
        );
    }
}
