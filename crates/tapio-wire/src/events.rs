//! Event batch: occurrences an agent ships to the controller.
//!
//! The batch is generic over the occurrence type so that each side uses its
//! own: the agent sends `EventBatch<tapio_common::Occurrence>` (or
//! `EventBatch<&Occurrence>`) without copying, and a reader takes
//! `EventBatch` (= `EventBatch<serde_json::Value>`), which keeps every fact of
//! a newer agent's occurrences.

use serde::{Deserialize, Serialize};

/// `POST /v1/events` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBatch<T = serde_json::Value> {
    /// Agent id given in [`crate::Hello`].
    pub agent_id: String,
    /// Session from [`crate::HelloResponse`]; empty reads as "current session".
    #[serde(default)]
    pub session: String,
    /// Per-session batch number: 1 for the first batch after a hello, +1 for
    /// each new batch; a retried batch keeps its number. The controller counts
    /// gaps (lost batches) and regressions (replays, restarts without hello).
    pub sequence: u64,
    /// The occurrences, each with all its facts (D5 shape).
    pub occurrences: Vec<T>,
}

/// `POST /v1/events` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBatchResponse {
    /// Occurrences taken from this batch.
    pub accepted: u64,
    /// Echo of the batch sequence.
    pub sequence: u64,
    /// True when the controller had already seen this sequence (a retry); the
    /// batch is acknowledged but counted as a regression.
    #[serde(default)]
    pub duplicate: bool,
}
