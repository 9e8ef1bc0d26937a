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
}

/// A destination for occurrences.
pub trait Sink: Send {
    /// Stable name used in metrics labels (`stdout`, `file`, ...).
    fn name(&self) -> &'static str;

    /// Writes a batch, giving up at `deadline`. On error nothing of the
    /// batch is assumed delivered.
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
