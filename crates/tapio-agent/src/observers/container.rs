//! Container observer: OOM kills (B5) and abnormal exits (B6) from
//! `container_monitor.o` records.
//!
//! ## Design constraints
//! - The kernel filters exits against the configured signal mask and
//!   exit-code bitmap; every record that arrives is one fact, emitted as
//!   one candidate (folded only with exact repeats of its key).
//! - The memcg limit is reported in bytes only when the kernel has one: a
//!   `PAGE_COUNTER_MAX` limit ("max") is `memory_limit_bytes = 0` plus
//!   `memory_limit_unlimited = true`, never the sentinel as a number.

use std::sync::Arc;

use tapio_common::ebpf::container::{
    ContainerConfig, ContainerRecord, CFG_ABNORMAL_EXIT, CFG_OOM_KILL, REC_ABNORMAL_EXIT,
    REC_F_MEMCG_KNOWN, REC_F_MEMCG_V1, REC_OOM_KILL, STAT_OOM_EXIT_SKIPPED, STAT_OOM_MARK_FAILED,
    STAT_OOM_VICTIM_UNKNOWN,
};
use tapio_common::ebpf::{as_bytes, ConfigHeader};
use tapio_common::{Anomaly, Facts, Observer, Outcome, Severity};
use tapio_wire::{CompiledConfig, ContainerSettings};

use super::{comm_str, parse_record, Classifier, Malformed};
use crate::clock::Clock;
use crate::counters::{Counters, FactDrop};
use crate::fold::Candidate;

const SIGKILL: u64 = 9;

/// The classifier of this observer.
#[must_use]
pub fn classifier() -> Option<Box<dyn Classifier>> {
    Some(Box::new(ContainerClassifier::new(page_size())))
}

/// The kernel filter for `s`: (signal mask, exit-code bitmap). Signal `n`
/// (1..=64) is bit `n - 1`; exit code `n` (1..=255) is bit `n`; exit code 0
/// and out-of-range signals are never set.
#[must_use]
pub fn exit_filter(s: &ContainerSettings) -> (u64, [u64; 4]) {
    let mut sigs = 0u64;
    for &n in &s.fatal_signals {
        if (1..=64).contains(&n) {
            sigs |= 1 << (n - 1);
        }
    }
    let mut codes = [0u64; 4];
    for &n in &s.exit_codes {
        if n != 0 {
            codes[usize::from(n >> 6)] |= 1 << (n & 63);
        }
    }
    (sigs, codes)
}

/// The `tapio_config` carrier of `container_monitor.o` for `cfg`.
#[must_use]
pub fn carrier(cfg: &CompiledConfig, generation: u64) -> Option<Vec<u8>> {
    let s = &cfg.container;
    let wanted = [
        (s.oom_kill, CFG_OOM_KILL),
        (s.abnormal_exit, CFG_ABNORMAL_EXIT),
    ];
    let (fatal_signals, exit_codes) = exit_filter(s);
    let c = ContainerConfig {
        hdr: ConfigHeader::configured(s.enabled, &wanted, generation),
        fatal_signals,
        exit_codes,
    };
    Some(as_bytes(&c).to_vec())
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Signal names of the classic Linux signals (x86/arm numbering).
#[must_use]
pub fn signal_name(sig: u64) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    let i = usize::try_from(sig).ok()?.checked_sub(1)?;
    NAMES.get(i).copied()
}

/// Classifies container records.
pub struct ContainerClassifier {
    page_size: u64,
    counters: Option<Arc<Counters>>,
    mark_failed_seen: u64,
    victim_unknown_seen: u64,
}

impl ContainerClassifier {
    /// A classifier converting memcg pages with `page_size` bytes per page.
    #[must_use]
    pub fn new(page_size: u64) -> Self {
        ContainerClassifier {
            page_size,
            counters: None,
            mark_failed_seen: 0,
            victim_unknown_seen: 0,
        }
    }

    /// `PAGE_COUNTER_MAX`: `LONG_MAX / PAGE_SIZE` on 64-bit kernels.
    fn page_counter_max(&self) -> u64 {
        i64::MAX.unsigned_abs() / self.page_size
    }

    /// Task and cgroup facts shared by both kinds; key facts are the
    /// process identity.
    fn identity(r: &ContainerRecord, key: &mut Facts, detail: &mut Facts) {
        key.u64("pid", u64::from(r.tgid))
            .str("comm", comm_str(&r.comm));
        detail.u64("tid", u64::from(r.pid));
        if r.flags & REC_F_MEMCG_KNOWN != 0 {
            key.u64("cgroup_id", r.memcg_id);
            detail.str(
                "memcg_hierarchy",
                if r.flags & REC_F_MEMCG_V1 != 0 {
                    "v1"
                } else {
                    "v2"
                },
            );
        }
        if r.cgroup2_id != 0 {
            detail.u64("cgroup2_id", r.cgroup2_id);
        }
    }

    fn oom_kill(&self, r: &ContainerRecord, unix_ns: u64) -> Candidate {
        let mut key = Facts::with_capacity(4);
        let mut detail = Facts::with_capacity(8);
        Self::identity(r, &mut key, &mut detail);
        detail.u64("signal", SIGKILL);
        let known = r.flags & REC_F_MEMCG_KNOWN != 0;
        let usage = r.mem_usage_pages.saturating_mul(self.page_size);
        let unlimited = known && r.mem_limit_pages >= self.page_counter_max();
        let limit = if known && !unlimited {
            r.mem_limit_pages.saturating_mul(self.page_size)
        } else {
            0
        };
        let mem_text = if known {
            detail
                .u64("memory_usage_bytes", usage)
                .u64("memory_limit_bytes", limit)
                .bool("memory_limit_unlimited", unlimited);
            let lim = if unlimited {
                "no limit".to_owned()
            } else {
                format!("limit={}", mib(limit))
            };
            format!(" memcg={} (usage={}, {lim})", r.memcg_id, mib(usage))
        } else {
            " memcg=unknown".to_owned()
        };
        Candidate {
            anomaly: Anomaly::OomKill,
            severity: Severity::Critical,
            outcome: Outcome::Failure,
            unix_ns,
            generation: r.hdr.generation,
            summary: format!(
                "OOM kill pid={} comm={}{mem_text}",
                r.tgid,
                comm_str(&r.comm)
            ),
            template: None,
            key,
            detail,
            fold: true,
        }
    }

    fn abnormal_exit(r: &ContainerRecord, unix_ns: u64) -> Candidate {
        let mut key = Facts::with_capacity(6);
        let mut detail = Facts::with_capacity(8);
        Self::identity(r, &mut key, &mut detail);
        let sig = u64::from(r.exit_code & 0x7f);
        let how = if sig != 0 {
            key.u64("signal", sig).u64("exit_code", 128 + sig);
            let name = signal_name(sig);
            if let Some(n) = name {
                detail.str("signal_name", n);
            }
            detail.bool("core_dumped", r.exit_code & 0x80 != 0);
            format!(
                "killed by {}",
                name.map_or_else(|| format!("signal {sig}"), str::to_owned)
            )
        } else {
            let code = u64::from((r.exit_code >> 8) & 0xff);
            key.u64("exit_code", code);
            format!("exited with code {code}")
        };
        detail.u64("wait_status", u64::from(r.exit_code));
        Candidate {
            anomaly: Anomaly::AbnormalExit,
            severity: Severity::Warning,
            outcome: Outcome::Failure,
            unix_ns,
            generation: r.hdr.generation,
            summary: format!("pid={} comm={} {how}", r.tgid, comm_str(&r.comm)),
            template: None,
            key,
            detail,
            fold: true,
        }
    }
}

fn mib(bytes: u64) -> String {
    // Display only: the exact byte count is in the facts.
    #[allow(clippy::cast_precision_loss)]
    let m = bytes as f64 / (1024.0 * 1024.0);
    format!("{m:.1}MiB")
}

impl Classifier for ContainerClassifier {
    fn observer(&self) -> Observer {
        Observer::Container
    }

    fn record(
        &mut self,
        bytes: &[u8],
        clock: &Clock,
        out: &mut Vec<Candidate>,
    ) -> Result<(), Malformed> {
        let (hdr, r): (_, ContainerRecord) =
            parse_record(bytes, &[REC_OOM_KILL, REC_ABNORMAL_EXIT])?;
        let unix_ns = clock.unix_ns(hdr.ts_boot_ns);
        out.push(if hdr.kind == REC_OOM_KILL {
            self.oom_kill(&r, unix_ns)
        } else {
            Self::abnormal_exit(&r, unix_ns)
        });
        Ok(())
    }

    fn configure(&mut self, _cfg: &CompiledConfig, _generation: u64) {}

    fn set_counters(&mut self, counters: Arc<Counters>) {
        self.counters = Some(counters);
    }

    fn kernel_stats(&mut self, stats: &[u64]) {
        let get = |slot: u32| stats.get(slot as usize).copied().unwrap_or(0);
        let unknown = get(STAT_OOM_VICTIM_UNKNOWN);
        // Totals only grow while the object lives; a smaller one is a new object.
        let delta = unknown
            .checked_sub(self.victim_unknown_seen)
            .unwrap_or(unknown);
        self.victim_unknown_seen = unknown;
        if let (Some(c), true) = (&self.counters, delta > 0) {
            c.fact_drops_add(Observer::Container, FactDrop::OomVictimUnknown, delta);
        }
        let failed = get(STAT_OOM_MARK_FAILED);
        if failed > self.mark_failed_seen {
            tracing::warn!(
                observer = "container",
                total = failed,
                skipped = get(STAT_OOM_EXIT_SKIPPED),
                "OOM victims not remembered: their exits may also be reported as abnormal_exit"
            );
            self.mark_failed_seen = failed;
        }
    }
}

#[cfg(test)]
mod tests;
