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
