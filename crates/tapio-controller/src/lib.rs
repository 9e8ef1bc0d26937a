//! Tapio controller: distributes the compiled Evidence Profile to agents and
//! receives their hellos, heartbeats and event batches over tapio-wire/v1
//! (HTTP/1.1 + JSON, agent-initiated).
//!
//! The binary (`tapio-controller`) wires these modules together; tests and
//! the load benchmark drive the real binary.
#![deny(missing_docs)]

pub mod auth;
pub mod config_state;
pub mod limits;
pub mod metrics;
pub mod registry;
pub mod respond;
pub mod routes;
pub mod server;

pub use limits::Limits;
