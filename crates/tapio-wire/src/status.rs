//! Controller status: the fleet view served at `GET /v1/status`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::heartbeat::Counters;
use crate::observer::ObserverReport;

/// `GET /v1/status` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerStatus {
    /// Always [`crate::PROTOCOL`].
    pub protocol: String,
    /// Controller version.
    pub controller_version: String,
    /// Seconds since the controller started.
    pub uptime_secs: u64,
    /// The config being distributed.
    pub config: ConfigView,
    /// Convergence summary over known agents.
    pub convergence: ConvergenceView,
    /// Known agents, sorted by agent id.
    pub agents: Vec<AgentView>,
    /// Controller-wide totals since start.
    pub totals: Totals,
}

/// The config the controller distributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigView {
    /// Current generation.
    pub generation: u64,
    /// Current content hash.
    pub hash: String,
    /// Profile name (`metadata.name`).
    pub profile: String,
    /// Where it came from: a file path, or `built-in`.
    pub source: String,
    /// Successful reloads that changed the hash.
    pub reloads: u64,
    /// Reloads rejected (invalid or unreadable profile; the old config stays).
    pub reload_failures: u64,
    /// Last reload error, if the last reload failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reload_error: Option<String>,
}

/// How many agents run the current config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvergenceView {
    /// Known agents.
    pub agents: u64,
    /// Agents whose applied hash is the current hash.
    pub converged: u64,
    /// Agents with another or an empty applied hash.
    pub pending: u64,
    /// True when every known agent is converged (and there is at least one).
    pub converged_all: bool,
}

/// One agent as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    /// Agent id.
    pub agent_id: String,
    /// Current session.
    pub session: String,
    /// Node name.
    pub node: String,
    /// Agent version.
    pub agent_version: String,
    /// Hellos from this agent id (more than 1 = re-registrations).
    pub hellos: u64,
    /// Milliseconds since the last heartbeat; absent before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_age_ms: Option<u64>,
    /// Milliseconds since any request from this agent.
    pub last_seen_age_ms: u64,
    /// Applied hash from the last heartbeat (empty = unconfigured).
    pub applied_hash: String,
    /// Applied generation from the last heartbeat.
    pub applied_generation: u64,
    /// `applied_hash` equals the current hash.
    pub converged: bool,
    /// Observer states from the last heartbeat.
    pub observers: Vec<ObserverReport>,
    /// Counters from the last heartbeat.
    pub counters: Counters,
    /// Batches accepted this session.
    pub batches: u64,
    /// Occurrences accepted this session.
    pub events: u64,
    /// Highest batch sequence seen this session (0 = none).
    pub last_sequence: u64,
    /// Batches skipped: sum of `sequence - (last + 1)` over forward jumps.
    pub sequence_gaps: u64,
    /// Batches whose sequence was not above the last one (retries, replays).
    pub sequence_regressions: u64,
}

/// Controller-wide totals since start.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Totals {
    /// HTTP requests answered.
    pub requests: u64,
    /// Hellos accepted.
    pub hellos: u64,
    /// Heartbeats accepted.
    pub heartbeats: u64,
    /// Config responses with a body.
    pub config_fetches: u64,
    /// Config requests answered 304.
    pub config_not_modified: u64,
    /// Event batches accepted.
    pub batches: u64,
    /// Occurrences accepted.
    pub events: u64,
    /// Sum of per-agent sequence gaps.
    pub sequence_gaps: u64,
    /// Sum of per-agent sequence regressions.
    pub sequence_regressions: u64,
    /// Requests rejected for a missing or wrong token.
    pub auth_rejections: u64,
    /// Connections refused at the connection limit.
    pub connections_refused: u64,
    /// Agents dropped after their TTL without contact.
    pub agents_expired: u64,
    /// Error responses by error code.
    pub errors: BTreeMap<String, u64>,
}
