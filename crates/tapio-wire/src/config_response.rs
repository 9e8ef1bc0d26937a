//! Config response: the controller's current CompiledConfig.
//!
//! `GET /v1/agents/config` answers with the HTTP `ETag` set to the quoted
//! `hash`; a request whose `If-None-Match` carries that hash gets
//! `304 Not Modified` and no body.

use serde::{Deserialize, Serialize};

use crate::config::CompiledConfig;

/// `GET /v1/agents/config` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigResponse {
    /// Generation: starts at 1 when the controller starts, +1 each time a
    /// reload changes the content hash. Occurrences judged by this config
    /// carry it as `config_generation`.
    pub generation: u64,
    /// `config.content_hash()`; the agent reports it back once applied.
    pub hash: String,
    /// The config to apply.
    pub config: CompiledConfig,
}

impl ConfigResponse {
    /// A response for `config` at `generation`, hashing it.
    #[must_use]
    pub fn new(generation: u64, config: CompiledConfig) -> Self {
        ConfigResponse {
            generation,
            hash: config.content_hash(),
            config,
        }
    }

    /// True when `hash` is the hash of `config` (a receiver should check
    /// before applying).
    #[must_use]
    pub fn hash_matches(&self) -> bool {
        self.hash == self.config.content_hash()
    }
}
