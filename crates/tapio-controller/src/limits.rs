//! Controller limits: every bound the server enforces, in one place.

use std::time::Duration;

/// Bounds on what one client can make the controller hold or wait for.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, bytes; larger is refused with 413 (before
    /// reading when `Content-Length` says so).
    pub max_body_bytes: u64,
    /// Most occurrences in one event batch; more is refused with 413.
    pub max_batch_events: u32,
    /// Open connections; past it a connection gets a 503 envelope and is
    /// closed.
    pub max_connections: usize,
    /// Known agents; a hello from a new agent past it gets 503.
    pub max_agents: usize,
    /// Time to receive a request's headers (slowloris bound); on expiry the
    /// connection is closed.
    pub header_read_timeout: Duration,
    /// Time to receive a request's body once its headers are in; 408 on
    /// expiry.
    pub body_read_timeout: Duration,
    /// Agents silent for longer are forgotten (they re-register by hello).
    pub agent_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_batch_events: 1_000,
            max_connections: 4_096,
            max_agents: 50_000,
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
            agent_ttl: Duration::from_secs(600),
        }
    }
}
