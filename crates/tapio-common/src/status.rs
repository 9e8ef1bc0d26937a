//! Agent status file: the observer states and counters the agent leaves next
//! to its occurrence files (`<data-dir>/.tapio-status.json`), for the CLI.
//!
//! Written atomically (temp + rename) by the agent every few seconds and on
//! every state change; readers treat a missing or corrupt file as "no agent
//! status", never as an error.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// File name of the status file inside the data directory.
pub const STATUS_FILE: &str = ".tapio-status.json";

/// State of one observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObserverState {
    /// Loaded, attached, draining.
    Running,
    /// Turned off by config.
    Disabled,
    /// Cannot run on this host; `reason` says why.
    Unavailable,
    /// Was running and failed; `reason` says why.
    Failed,
}

/// One observer's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObserverStatus {
    /// Observer name (`network`, `container`, `storage`, `node`).
    pub name: String,
    /// State.
    pub state: ObserverState,
    /// Why it is not running (errno and what failed), or why it is degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The whole status file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// Agent version.
    pub agent_version: String,
    /// Agent process id.
    pub pid: u32,
    /// Start time of that process (field 22 of `/proc/<pid>/stat`, clock
    /// ticks since boot): with `pid` it names the process, so a reader can
    /// tell the agent is gone even when the pid was reused. Absent in files
    /// of older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start_ticks: Option<u64>,
    /// When the agent started, RFC 3339 UTC.
    pub started_at: String,
    /// When this file was written, RFC 3339 UTC.
    pub updated_at: String,
    /// Generation of the applied config.
    pub config_generation: u64,
    /// Content hash of the applied config; empty while unconfigured.
    pub config_hash: String,
    /// Observer states, in `Observer::ALL` order.
    pub observers: Vec<ObserverStatus>,
    /// Counter name (with labels, Prometheus style) to value.
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
}

/// The start time (clock ticks since boot) in the text of a
/// `/proc/<pid>/stat` file: field 22, counted after the parenthesised
/// command name, which may itself hold spaces and parentheses.
#[must_use]
pub fn stat_start_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields 3.. follow the name; field 22 is the 20th of them.
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod stat_tests {
    use super::stat_start_ticks;

    #[test]
    fn start_ticks_is_field_22_even_with_odd_command_names() {
        let plain = "4242 (tapio-agent) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 987654 123 45";
        assert_eq!(stat_start_ticks(plain), Some(987_654));
        let odd = "77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5555 1 1";
        assert_eq!(stat_start_ticks(odd), Some(5555));
        assert_eq!(stat_start_ticks("garbage"), None);
        assert_eq!(stat_start_ticks("1 (x) S 1"), None);
    }
}
