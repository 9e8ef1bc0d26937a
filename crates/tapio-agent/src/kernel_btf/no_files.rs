//! A moment in which this process opens no file, so that aya 0.14's
//! `EbpfLoader::new()` finds no kernel BTF to parse.
//!
//! That constructor reads and expands the whole of /sys/kernel/btf/vmlinux
//! unconditionally (a newer aya reads it lazily but needs a newer rustc
//! than this workspace's), and the agent replaces what it parsed at once
//! with its own reduced copy ([`super::load`]). Each parse peaks ~18 MB
//! above the process: most of the start-up peak (issue 15). With the soft
//! `RLIMIT_NOFILE` at 0 for the length of the constructors, the open fails
//! with `EMFILE` and aya's loader starts with no BTF, as it does on a
//! kernel without BTF; descriptors already open keep working.
//!
//! A resource limit is the process's, not the thread's: the guard only
//! lowers it while the process has a single thread, so nothing else can be
//! refused a file meanwhile; otherwise `f` runs unguarded (and parses).
//! Lowering a soft limit and raising it back up to the hard limit needs no
//! privilege, so this also holds for the unprivileged agent of the
//! DaemonSet and the systemd unit.

/// Threads of this process, from /proc/self/status (`None` if unreadable).
fn threads() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    crate::preflight::status_number(&s, "Threads:")
}

/// Puts the limit back when dropped, also on unwinding.
struct Restore(libc::rlimit);

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: setrlimit reads the struct it is given.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const self.0) };
    }
}

/// Runs `f` with file opens refused when this process is single-threaded;
/// says whether they were.
pub fn with_no_new_files<T>(f: impl FnOnce() -> T) -> (T, bool) {
    if threads() != Some(1) {
        return (f(), false);
    }
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut old) } != 0 {
        return (f(), false);
    }
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: old.rlim_max,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const none) } != 0 {
        return (f(), false);
    }
    let restore = Restore(old);
    let out = f();
    drop(restore);
    (out, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threaded_process_is_never_limited() {
        // The test harness runs this on a thread of its own.
        assert!(threads().is_some_and(|n| n > 1));
        let (opened, limited) =
            with_no_new_files(|| std::fs::File::open("/proc/self/status").is_ok());
        assert!(opened && !limited);
    }
}
