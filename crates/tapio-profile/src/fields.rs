//! Field table: every EvidenceProfile setting, its YAML name, its range and
//! the CompiledConfig field it overrides.
//!
//! Ranges are what an operator may ask for; 0 ("inert") is never a valid
//! threshold in a profile — turning a judgement off is done with its enable
//! flag, so a typo cannot silently disable an anomaly.

use tapio_wire::CompiledConfig;

/// What kind of value a field takes and where it lands.
#[derive(Clone, Copy)]
pub(crate) enum Setting {
    /// `true` / `false`.
    Bool(fn(&mut CompiledConfig) -> &mut bool),
    /// A decimal integer in `min..=max`.
    U32 {
        min: u32,
        max: u32,
        at: fn(&mut CompiledConfig) -> &mut u32,
    },
    /// A set of signals, by name (`SIGSEGV`, `SEGV`) or number (1..=64).
    Signals,
    /// `{report: [codes] | all, ignore: [codes]}`, codes 1..=255.
    ExitCodes,
}

/// One field of a section.
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) setting: Setting,
}

/// An observer section of `spec`.
pub(crate) struct Section {
    pub(crate) name: &'static str,
    pub(crate) fields: &'static [Field],
}

const fn boolean(name: &'static str, at: fn(&mut CompiledConfig) -> &mut bool) -> Field {
    Field {
        name,
        setting: Setting::Bool(at),
    }
}

const fn int(
    name: &'static str,
    min: u32,
    max: u32,
    at: fn(&mut CompiledConfig) -> &mut u32,
) -> Field {
    Field {
        name,
        setting: Setting::U32 { min, max, at },
    }
}

/// One hour, the longest window or interval a profile may set.
const HOUR_MS: u32 = 3_600_000;
/// Ten minutes in microseconds, the longest latency threshold.
const TEN_MIN_US: u32 = 600_000_000;

/// `spec.foldWindowMs`: 0 (no folding) up to one hour.
pub(crate) const FOLD_WINDOW: Field = int("foldWindowMs", 0, HOUR_MS, |c| &mut c.fold_window_ms);

/// The observer sections, in CompiledConfig order.
pub(crate) const SECTIONS: &[Section] = &[
    Section {
        name: "network",
        fields: &[
            boolean("enabled", |c| &mut c.network.enabled),
            boolean("connectFailures", |c| &mut c.network.connect_failures),
            boolean("retransmits", |c| &mut c.network.retransmits),
            boolean("rtt", |c| &mut c.network.rtt),
            int("retransmitThreshold", 1, 1_000_000, |c| {
                &mut c.network.retransmit_threshold
            }),
            int("retransmitWindowMs", 100, HOUR_MS, |c| {
                &mut c.network.retransmit_window_ms
            }),
            int("rttSampleIntervalMs", 10, 60_000, |c| {
                &mut c.network.rtt_sample_interval_ms
            }),
            // Degraded means slower than the baseline: the ratio is above 1x.
            int("rttRatioPermille", 1_001, 100_000, |c| {
                &mut c.network.rtt_ratio_permille
            }),
            int("rttFloorUs", 1, 60_000_000, |c| &mut c.network.rtt_floor_us),
            int("rttMinSamples", 1, 10_000, |c| {
                &mut c.network.rtt_min_samples
            }),
            int("rttReportIntervalMs", 1_000, HOUR_MS, |c| {
                &mut c.network.rtt_report_interval_ms
            }),
            int("connectGiveUpFloorMs", 0, HOUR_MS, |c| {
                &mut c.network.connect_give_up_floor_ms
            }),
        ],
    },
    Section {
        name: "container",
        fields: &[
            boolean("enabled", |c| &mut c.container.enabled),
            boolean("oomKill", |c| &mut c.container.oom_kill),
            boolean("abnormalExit", |c| &mut c.container.abnormal_exit),
            Field {
                name: "fatalSignals",
                setting: Setting::Signals,
            },
            Field {
                name: "exitCodes",
                setting: Setting::ExitCodes,
            },
        ],
    },
    Section {
        name: "storage",
        fields: &[
            boolean("enabled", |c| &mut c.storage.enabled),
            boolean("ioErrors", |c| &mut c.storage.io_errors),
            boolean("latency", |c| &mut c.storage.latency),
            int("latencyWarningUs", 1, TEN_MIN_US, |c| {
                &mut c.storage.latency_warning_us
            }),
            int("latencyCriticalUs", 1, TEN_MIN_US, |c| {
                &mut c.storage.latency_critical_us
            }),
        ],
    },
    Section {
        name: "node",
        fields: &[
            boolean("enabled", |c| &mut c.node.enabled),
            int("windowMs", 100, 600_000, |c| &mut c.node.window_ms),
            int("cpuStallPermille", 1, 1_000, |c| {
                &mut c.node.cpu_stall_permille
            }),
            int("memoryPressurePermille", 1, 1_000, |c| {
                &mut c.node.memory_pressure_permille
            }),
            // Instructions per cycle can exceed 1: up to 10 IPC.
            int("ipcMinPermille", 1, 10_000, |c| {
                &mut c.node.ipc_min_permille
            }),
        ],
    },
];

/// x86_64/arm64 generic signal numbers by name, without the `SIG` prefix.
const SIGNALS: &[(&str, u8)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Signal number of `SIGSEGV` / `SEGV`.
pub(crate) fn signal_number(name: &str) -> Option<u8> {
    let bare = name.strip_prefix("SIG").unwrap_or(name);
    SIGNALS.iter().find(|(n, _)| *n == bare).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_default_lies_inside_every_range() {
        for s in SECTIONS {
            for f in s.fields {
                if let Setting::U32 { min, max, at } = f.setting {
                    let mut c = CompiledConfig::production_default();
                    let v = *at(&mut c);
                    assert!((min..=max).contains(&v), "{}.{} = {v}", s.name, f.name);
                }
            }
        }
    }

    #[test]
    fn signal_names_resolve_with_and_without_prefix() {
        assert_eq!(signal_number("SIGSEGV"), Some(11));
        assert_eq!(signal_number("SEGV"), Some(11));
        assert_eq!(signal_number("SIGSYS"), Some(31));
        assert_eq!(signal_number("segv"), None);
    }
}
