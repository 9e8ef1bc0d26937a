//! Controller counters: one atomic per counted occurrence, read by
//! `GET /v1/status`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tapio_wire::{ErrorCode, Totals};

/// Controller-wide counters since start.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests answered.
    pub requests: AtomicU64,
    /// Hellos accepted.
    pub hellos: AtomicU64,
    /// Heartbeats accepted.
    pub heartbeats: AtomicU64,
    /// Config bodies served.
    pub config_fetches: AtomicU64,
    /// Config requests answered 304.
    pub config_not_modified: AtomicU64,
    /// Event batches accepted.
    pub batches: AtomicU64,
    /// Occurrences accepted.
    pub events: AtomicU64,
    /// Requests without the right token.
    pub auth_rejections: AtomicU64,
    /// Connections refused at the connection limit.
    pub connections_refused: AtomicU64,
    /// Agents forgotten after their TTL.
    pub agents_expired: AtomicU64,
    errors: [AtomicU64; ErrorCode::ALL.len()],
}

impl Counters {
    /// Counts one error response.
    pub fn error(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.errors[i].fetch_add(1, Relaxed);
        }
    }

    /// Adds one to `c`.
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    /// Snapshot for the status view; `sequence_*` are filled by the registry.
    #[must_use]
    pub fn totals(&self) -> Totals {
        let g = |c: &AtomicU64| c.load(Relaxed);
        Totals {
            requests: g(&self.requests),
            hellos: g(&self.hellos),
            heartbeats: g(&self.heartbeats),
            config_fetches: g(&self.config_fetches),
            config_not_modified: g(&self.config_not_modified),
            batches: g(&self.batches),
            events: g(&self.events),
            sequence_gaps: 0,
            sequence_regressions: 0,
            auth_rejections: g(&self.auth_rejections),
            connections_refused: g(&self.connections_refused),
            agents_expired: g(&self.agents_expired),
            errors: ErrorCode::ALL
                .iter()
                .zip(&self.errors)
                .filter(|(_, n)| g(n) > 0)
                .map(|(c, n)| (c.as_str().to_owned(), g(n)))
                .collect(),
        }
    }
}
