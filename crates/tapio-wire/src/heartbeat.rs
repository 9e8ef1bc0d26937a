//! Heartbeat: agent liveness, the config it has applied, and its counters.

use serde::{Deserialize, Serialize};

use crate::observer::ObserverReport;

/// `POST /v1/agents/heartbeat` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Agent id given in [`crate::Hello`].
    pub agent_id: String,
    /// Session from [`crate::HelloResponse`]; empty reads as "current session".
    #[serde(default)]
    pub session: String,
    /// Content hash of the config applied to every observer carrier; empty
    /// while unconfigured or when a carrier refused the config (C4).
    #[serde(default)]
    pub applied_hash: String,
    /// Generation of the applied config; 0 while unconfigured.
    #[serde(default)]
    pub applied_generation: u64,
    /// Observer states with reasons.
    #[serde(default)]
    pub observers: Vec<ObserverReport>,
    /// Cumulative counters since agent start.
    #[serde(default)]
    pub counters: Counters,
}

/// Cumulative agent counters since agent start (monotonic; a drop means the
/// agent restarted). Missing counters read as 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Ring-buffer records drained (`tapio_events_total`).
    pub events: u64,
    /// Occurrences emitted (`tapio_anomalies_total`).
    pub anomalies: u64,
    /// In-kernel reserve failures (`tapio_lost_events_total`).
    pub lost: u64,
    /// Malformed records dropped (`tapio_malformed_events_total`).
    pub malformed: u64,
    /// Ambiguous evidence dropped (`tapio_correlation_drops_total`).
    pub correlation_drops: u64,
    /// Occurrences dropped by any sink (`tapio_sink_drops_total`).
    pub sink_drops: u64,
    /// Failed controller sends (`tapio_controller_send_failures_total`).
    pub send_failures: u64,
}

/// `POST /v1/agents/heartbeat` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// Generation of the controller's current config.
    pub config_generation: u64,
    /// Hash of the controller's current config.
    pub config_hash: String,
    /// True when the agent's applied hash equals `config_hash`; when false
    /// the agent should fetch the config now instead of waiting for its poll.
    #[serde(default)]
    pub converged: bool,
}
