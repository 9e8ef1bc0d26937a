//! Anomaly names: stable product concepts, not metric labels.

use std::fmt;

/// The observers Tapio runs; each owns one eBPF object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Observer {
    /// TCP connect failures, retransmits, RTT.
    Network,
    /// OOM kills and abnormal exits.
    Container,
    /// Block I/O errors and latency.
    Storage,
    /// Hardware performance counters.
    Node,
}

impl Observer {
    /// Every observer, in display order.
    pub const ALL: [Observer; 4] = [
        Observer::Network,
        Observer::Container,
        Observer::Storage,
        Observer::Node,
    ];

    /// Lowercase name, as used in labels, flags and file names.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Observer::Network => "network",
            Observer::Container => "container",
            Observer::Storage => "storage",
            Observer::Node => "node",
        }
    }

    /// Name of the eBPF object file (`<name>.o` in `--ebpf-dir`).
    #[must_use]
    pub const fn object_name(self) -> &'static str {
        match self {
            Observer::Network => "network_monitor",
            Observer::Container => "container_monitor",
            Observer::Storage => "storage_monitor",
            Observer::Node => "node_pmc_monitor",
        }
    }

    /// Parses a lowercase observer name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Observer> {
        Observer::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

impl fmt::Display for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The named `kernel.*` anomalies Tapio emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Anomaly {
    /// An RST (or ICMP port unreachable) answered our SYN.
    ConnectionRefused,
    /// A socket left SYN_SENT for CLOSE without a refusal.
    ConnectionTimeout,
    /// Retransmissions to one destination crossed a threshold in a window.
    RetransmitSpike,
    /// Smoothed RTT of a destination rose above its baseline.
    RttDegradation,
    /// The OOM killer chose a victim.
    OomKill,
    /// A thread-group leader died by a fatal signal or a configured exit code.
    AbnormalExit,
    /// A block request completed with an error.
    IoError,
    /// A block request's latency crossed a threshold.
    LatencySpike,
    /// Stall cycles over a window crossed a threshold.
    CpuStall,
    /// Backend (memory) stall cycles over a window crossed a threshold.
    MemoryPressure,
    /// Instructions per cycle over a window fell below a threshold.
    IpcDegradation,
}

impl Anomaly {
    /// Every anomaly.
    pub const ALL: [Anomaly; 11] = [
        Anomaly::ConnectionRefused,
        Anomaly::ConnectionTimeout,
        Anomaly::RetransmitSpike,
        Anomaly::RttDegradation,
        Anomaly::OomKill,
        Anomaly::AbnormalExit,
        Anomaly::IoError,
        Anomaly::LatencySpike,
        Anomaly::CpuStall,
        Anomaly::MemoryPressure,
        Anomaly::IpcDegradation,
    ];

    /// The stable `kernel.*` type name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Anomaly::ConnectionRefused => "kernel.network.connection_refused",
            Anomaly::ConnectionTimeout => "kernel.network.connection_timeout",
            Anomaly::RetransmitSpike => "kernel.network.retransmit_spike",
            Anomaly::RttDegradation => "kernel.network.rtt_degradation",
            Anomaly::OomKill => "kernel.container.oom_kill",
            Anomaly::AbnormalExit => "kernel.container.abnormal_exit",
            Anomaly::IoError => "kernel.storage.io_error",
            Anomaly::LatencySpike => "kernel.storage.latency_spike",
            Anomaly::CpuStall => "kernel.node.cpu_stall",
            Anomaly::MemoryPressure => "kernel.node.memory_pressure",
            Anomaly::IpcDegradation => "kernel.node.ipc_degradation",
        }
    }

    /// The `error.code` of occurrences of this type.
    #[must_use]
    pub const fn error_code(self) -> &'static str {
        match self {
            Anomaly::ConnectionRefused => "CONNECTION_REFUSED",
            Anomaly::ConnectionTimeout => "CONNECTION_TIMEOUT",
            Anomaly::RetransmitSpike => "RETRANSMIT_SPIKE",
            Anomaly::RttDegradation => "RTT_DEGRADATION",
            Anomaly::OomKill => "OOM_KILL",
            Anomaly::AbnormalExit => "ABNORMAL_EXIT",
            Anomaly::IoError => "IO_ERROR",
            Anomaly::LatencySpike => "LATENCY_SPIKE",
            Anomaly::CpuStall => "CPU_STALL",
            Anomaly::MemoryPressure => "MEMORY_PRESSURE",
            Anomaly::IpcDegradation => "IPC_DEGRADATION",
        }
    }

    /// The observer that emits this anomaly.
    #[must_use]
    pub const fn observer(self) -> Observer {
        match self {
            Anomaly::ConnectionRefused
            | Anomaly::ConnectionTimeout
            | Anomaly::RetransmitSpike
            | Anomaly::RttDegradation => Observer::Network,
            Anomaly::OomKill | Anomaly::AbnormalExit => Observer::Container,
            Anomaly::IoError | Anomaly::LatencySpike => Observer::Storage,
            Anomaly::CpuStall | Anomaly::MemoryPressure | Anomaly::IpcDegradation => Observer::Node,
        }
    }

    /// Parses a `kernel.*` type name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Anomaly> {
        Anomaly::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_their_observer() {
        for a in Anomaly::ALL {
            assert_eq!(Anomaly::parse(a.as_str()), Some(a));
            let prefix = format!("kernel.{}.", a.observer());
            assert!(a.as_str().starts_with(&prefix), "{a} under {prefix}");
        }
        for o in Observer::ALL {
            assert_eq!(Observer::parse(o.as_str()), Some(o));
        }
    }
}
