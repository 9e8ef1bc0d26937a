//! Hello: an agent opens a session with the controller.
//!
//! An agent says hello at start, and again whenever the controller answers
//! `unknown_agent` (it restarted and forgot the session). Each hello starts a
//! new session: the event batch sequence restarts at 1.

use serde::{Deserialize, Serialize};

use crate::observer::ObserverReport;

/// `POST /v1/agents/hello` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Agent instance id, chosen by the agent (a ULID per process start);
    /// 1..=128 bytes of `[A-Za-z0-9._:-]`.
    pub agent_id: String,
    /// Node (host) name.
    pub node: String,
    /// Agent version.
    pub agent_version: String,
    /// Always [`crate::PROTOCOL`].
    pub protocol: String,
    /// Agent start time, RFC 3339 UTC.
    #[serde(default)]
    pub started_at: String,
    /// Observer states at hello time.
    #[serde(default)]
    pub observers: Vec<ObserverReport>,
    /// Content hash of the config the agent already runs (e.g. from a
    /// previous session); empty while unconfigured.
    #[serde(default)]
    pub applied_hash: String,
}

/// `POST /v1/agents/hello` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloResponse {
    /// Echo of the agent id.
    pub agent_id: String,
    /// Session id issued by the controller; heartbeats and batches carry it.
    pub session: String,
    /// Always [`crate::PROTOCOL`].
    #[serde(default)]
    pub protocol: String,
    /// How often the agent should poll `GET /v1/agents/config`, seconds.
    #[serde(default = "default_poll")]
    pub config_poll_interval_secs: u64,
    /// Generation of the controller's current config.
    #[serde(default)]
    pub config_generation: u64,
    /// Content hash of the controller's current config.
    #[serde(default)]
    pub config_hash: String,
    /// Largest request body the controller accepts, bytes.
    #[serde(default)]
    pub max_body_bytes: u64,
    /// Most occurrences the controller accepts in one batch.
    #[serde(default)]
    pub max_batch_events: u32,
}

fn default_poll() -> u64 {
    30
}
