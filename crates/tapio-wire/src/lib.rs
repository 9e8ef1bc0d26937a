//! tapio-wire/v1: the JSON structs that cross the agent/controller boundary.
//!
//! Plain serde structs, no I/O. Readers tolerate unknown fields (a newer
//! peer may add some) and default missing optional ones.
#![deny(missing_docs)]

pub mod config;

pub use config::{
    CompiledConfig, ContainerSettings, NetworkSettings, NodeSettings, StorageSettings,
};

/// Protocol name and version carried in every exchange.
pub const PROTOCOL: &str = "tapio-wire/v1";
