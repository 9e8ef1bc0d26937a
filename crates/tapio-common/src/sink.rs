//! Sink trait: where occurrences go.
//!
//! A sink is driven by the agent on its own worker behind a bounded queue;
//! it may block (disk, network) because the drain loop never calls it
//! directly (A5). Every call has a deadline the sink must honour.

use std::time::Instant;

use crate::occurrence::Occurrence;

/// A sink failure; the caller counts it under the sink's name.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// An I/O call failed.
    #[error("`{op}` failed")]
    Io {
        /// The call that failed (`write`, `rename`, `connect`, ...).
        op: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The peer answered with a non-success status.
    #[error("peer rejected the batch with status {status}")]
    Rejected {
        /// HTTP status.
        status: u16,
    },
    /// The deadline passed before the write completed.
    #[error("deadline passed after {elapsed_ms} ms")]
    Deadline {
        /// Time spent.
        elapsed_ms: u64,
    },
    /// The write stopped part-way through the batch: its first `delivered`
    /// occurrences are out, the rest are not.
    #[error("stopped after {delivered} of {total} occurrences")]
    Partial {
        /// Occurrences delivered, from the start of the batch.
        delivered: usize,
        /// Occurrences in the batch.
        total: usize,
        /// What stopped it.
        #[source]
        source: Box<SinkError>,
    },
}

impl SinkError {
    /// The occurrences of a batch of `total` this error lost, and the error
    /// that lost them (the cause of a [`SinkError::Partial`]).
    #[must_use]
    pub fn lost(&self, total: usize) -> (usize, &SinkError) {
        match self {
            SinkError::Partial {
                delivered, source, ..
            } => (total.saturating_sub(*delivered), source),
            other => (total, other),
        }
    }
}

/// A destination for occurrences.
pub trait Sink: Send {
    /// Stable name used in metrics labels (`stdout`, `file`, ...).
    fn name(&self) -> &'static str;

    /// Writes a batch, giving up at `deadline`. On error nothing of the
    /// batch is assumed delivered, except what a [`SinkError::Partial`]
    /// says was.
    ///
    /// # Errors
    /// Returns the first failure; the caller counts the batch as failed.
    fn write_batch(&mut self, batch: &[Occurrence], deadline: Instant) -> Result<(), SinkError>;

    /// Flushes buffered output, giving up at `deadline`.
    ///
    /// # Errors
    /// Returns the failure; buffered occurrences are then lost and counted.
    fn flush(&mut self, deadline: Instant) -> Result<(), SinkError>;
}
