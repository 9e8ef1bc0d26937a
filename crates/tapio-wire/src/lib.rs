//! tapio-wire/v1: the JSON structs that cross the agent/controller boundary.
//!
//! Plain serde structs, no I/O, no HTTP. Readers tolerate unknown fields (a
//! newer peer may add some) and default missing optional ones; writers always
//! write every field. One module per exchange:
//!
//! | exchange | request | response |
//! |---|---|---|
//! | `POST /v1/agents/hello` | [`Hello`] | [`HelloResponse`] |
//! | `GET /v1/agents/config` | — | [`ConfigResponse`] (or 304) |
//! | `POST /v1/agents/heartbeat` | [`Heartbeat`] | [`HeartbeatResponse`] |
//! | `POST /v1/events` | [`EventBatch`] | [`EventBatchResponse`] |
//! | `GET /v1/status` | — | [`ControllerStatus`] |
//! | any failure | — | [`ErrorEnvelope`] |
#![deny(missing_docs)]

pub mod config;
pub mod config_response;
pub mod error;
pub mod events;
pub mod heartbeat;
pub mod hello;
pub mod observer;
pub mod status;

pub use config::{
    CompiledConfig, ContainerSettings, NetworkSettings, NodeSettings, StorageSettings,
};
pub use config_response::ConfigResponse;
pub use error::{ErrorBody, ErrorCode, ErrorEnvelope};
pub use events::{EventBatch, EventBatchResponse};
pub use heartbeat::{Counters, Heartbeat, HeartbeatResponse};
pub use hello::{Hello, HelloResponse};
pub use observer::{ObserverReport, ObserverState};
pub use status::{AgentView, ConfigView, ControllerStatus, ConvergenceView, Totals};

/// Protocol name and version carried in every exchange.
pub const PROTOCOL: &str = "tapio-wire/v1";

/// Request paths of the controller, relative to its base URL.
pub mod paths {
    /// `POST`: register an agent session.
    pub const HELLO: &str = "/v1/agents/hello";
    /// `GET`: current CompiledConfig; `If-None-Match` with the hash gives 304.
    pub const CONFIG: &str = "/v1/agents/config";
    /// `POST`: agent liveness, applied config and counters.
    pub const HEARTBEAT: &str = "/v1/agents/heartbeat";
    /// `POST`: a batch of occurrences.
    pub const EVENTS: &str = "/v1/events";
    /// `GET`: fleet view for operators.
    pub const STATUS: &str = "/v1/status";
    /// `GET`: liveness of the controller itself; never authenticated.
    pub const HEALTHZ: &str = "/healthz";
}

/// `agent_id` query parameter of `GET /v1/agents/config`, so the controller
/// can record which agent fetched which hash.
pub const AGENT_ID_QUERY: &str = "agent_id";
