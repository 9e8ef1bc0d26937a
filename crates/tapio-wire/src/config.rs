//! CompiledConfig: what an Evidence Profile compiles to and what the agent
//! applies to its observers.
//!
//! Every threshold is an integer in fixed units (ms, us, permille) so that
//! the canonical encoding, and with it [`CompiledConfig::content_hash`], is
//! identical on every platform. A value of 0 for a threshold is inert: the
//! anomaly that needs it is not judged.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The whole runtime configuration of one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledConfig {
    /// Name of the profile it was compiled from.
    pub profile: String,
    /// Storm-folding window: repeats of a (type, key) inside it are folded
    /// into one follow-up occurrence. 0 = no folding.
    pub fold_window_ms: u32,
    /// Network observer.
    pub network: NetworkSettings,
    /// Container observer.
    pub container: ContainerSettings,
    /// Storage observer.
    pub storage: StorageSettings,
    /// Node PMC observer.
    pub node: NodeSettings,
}

/// Network observer settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSettings {
    /// Observer on/off.
    pub enabled: bool,
    /// Judge refused and timed-out connects.
    pub connect_failures: bool,
    /// Judge retransmit spikes.
    pub retransmits: bool,
    /// Judge RTT degradation.
    pub rtt: bool,
    /// Retransmits to one destination within the window that make a spike.
    pub retransmit_threshold: u32,
    /// Retransmit window.
    pub retransmit_window_ms: u32,
    /// Per-socket smoothed-RTT sampling period in the kernel.
    pub rtt_sample_interval_ms: u32,
    /// Degraded when srtt > ratio x baseline (permille: 3000 = 3x) ...
    pub rtt_ratio_permille: u32,
    /// ... and srtt > this absolute floor.
    pub rtt_floor_us: u32,
    /// Samples a destination needs before its baseline is judged against.
    pub rtt_min_samples: u32,
    /// At most one rtt_degradation per destination per this interval.
    pub rtt_report_interval_ms: u32,
    /// An application that closes a connecting socket is reported as a
    /// connect timeout only after waiting unanswered in SYN_SENT at least
    /// this long (a Happy Eyeballs loser closed sooner is not a timeout).
    #[serde(default = "default_connect_give_up_floor_ms")]
    pub connect_give_up_floor_ms: u32,
}

/// Default of [`NetworkSettings::connect_give_up_floor_ms`]: above the
/// 250 ms Happy Eyeballs connection attempt delay (RFC 8305), below a 0.5 s
/// application connect timeout.
#[must_use]
pub const fn default_connect_give_up_floor_ms() -> u32 {
    400
}

/// Container observer settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSettings {
    /// Observer on/off.
    pub enabled: bool,
    /// Report OOM kills.
    pub oom_kill: bool,
    /// Report abnormal exits.
    pub abnormal_exit: bool,
    /// Fatal signals that make an exit abnormal, sorted, 1..=64.
    pub fatal_signals: Vec<u8>,
    /// Non-zero exit codes that make an exit abnormal, sorted; empty = none.
    pub exit_codes: Vec<u8>,
}

/// Storage observer settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageSettings {
    /// Observer on/off.
    pub enabled: bool,
    /// Report completions with an error.
    pub io_errors: bool,
    /// Report latency crossings.
    pub latency: bool,
    /// Warning threshold, issue to complete; 0 = inert.
    pub latency_warning_us: u32,
    /// Critical threshold, >= warning; 0 = inert.
    pub latency_critical_us: u32,
}

/// Node PMC observer settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSettings {
    /// Observer on/off.
    pub enabled: bool,
    /// Counter window.
    pub window_ms: u32,
    /// cpu_stall when stalled cycles / cycles >= this (permille); 0 = inert.
    pub cpu_stall_permille: u32,
    /// memory_pressure when backend stall cycles / cycles >= this; 0 = inert.
    pub memory_pressure_permille: u32,
    /// ipc_degradation when instructions / cycles < this (permille); 0 = inert.
    pub ipc_min_permille: u32,
}

impl CompiledConfig {
    /// The built-in `production-default`, applied by a standalone agent that
    /// has no other config. tapio-profile's `production-default` base
    /// compiles to exactly this (tested there).
    #[must_use]
    pub fn production_default() -> Self {
        CompiledConfig {
            profile: "production-default".into(),
            fold_window_ms: 10_000,
            network: NetworkSettings {
                enabled: true,
                connect_failures: true,
                retransmits: true,
                rtt: true,
                retransmit_threshold: 20,
                retransmit_window_ms: 10_000,
                rtt_sample_interval_ms: 1_000,
                rtt_ratio_permille: 3_000,
                rtt_floor_us: 10_000,
                rtt_min_samples: 5,
                rtt_report_interval_ms: 30_000,
                connect_give_up_floor_ms: default_connect_give_up_floor_ms(),
            },
            container: ContainerSettings {
                enabled: true,
                oom_kill: true,
                abnormal_exit: true,
                // SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGKILL, SIGSEGV, SIGSYS
                fatal_signals: vec![4, 6, 7, 8, 9, 11, 31],
                exit_codes: Vec::new(),
            },
            storage: StorageSettings {
                enabled: true,
                io_errors: true,
                latency: true,
                latency_warning_us: 100_000,
                latency_critical_us: 1_000_000,
            },
            node: NodeSettings {
                enabled: true,
                window_ms: 10_000,
                cpu_stall_permille: 500,
                memory_pressure_permille: 400,
                ipc_min_permille: 300,
            },
        }
    }

    /// Canonical encoding: compact JSON in declaration order (struct fields
    /// serialize in a fixed order, integers only, no maps).
    #[must_use]
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Content hash, `sha256:<hex>`: the convergence signal.
    #[must_use]
    pub fn content_hash(&self) -> String {
        let digest = Sha256::digest(self.canonical_bytes());
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for b in digest {
            out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_content_sensitive() {
        let a = CompiledConfig::production_default();
        let mut b = a.clone();
        assert_eq!(a.content_hash(), b.content_hash());
        b.storage.latency_warning_us += 1;
        assert_ne!(a.content_hash(), b.content_hash());
        assert!(a.content_hash().starts_with("sha256:"));
        assert_eq!(a.content_hash().len(), 71);
    }

    #[test]
    fn round_trips_through_json() {
        let a = CompiledConfig::production_default();
        let back: CompiledConfig = serde_json::from_slice(&a.canonical_bytes()).unwrap();
        assert_eq!(a, back);
    }
}

#[cfg(test)]
mod golden {
    use super::CompiledConfig;

    /// Pins the canonical encoding: a change here changes the convergence
    /// signal of every deployed agent, so it must be deliberate (last: the
    /// network give-up floor, `connect_give_up_floor_ms`).
    #[test]
    fn production_default_hash_is_pinned() {
        assert_eq!(
            CompiledConfig::production_default().content_hash(),
            "sha256:a403e48b2ca79b4b5806ecdad5a5157f329186d71123cc825400480281a94b37"
        );
    }
}
