//! `stdout` sink: one JSON line per occurrence.

use std::io::{BufWriter, Write};
use std::time::Instant;

use tapio_common::{Occurrence, Sink, SinkError};

/// JSON lines on standard output.
pub struct StdoutSink {
    out: BufWriter<std::io::Stdout>,
}

impl StdoutSink {
    /// A sink on this process's stdout.
    #[must_use]
    pub fn new() -> Self {
        StdoutSink {
            out: BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        }
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> &'static str {
        "stdout"
    }

    fn write_batch(&mut self, batch: &[Occurrence], _deadline: Instant) -> Result<(), SinkError> {
        for o in batch {
            serde_json::to_writer(&mut self.out, o).map_err(|e| SinkError::Io {
                op: "write",
                source: e.into(),
            })?;
            self.out.write_all(b"\n").map_err(|source| SinkError::Io {
                op: "write",
                source,
            })?;
        }
        self.out.flush().map_err(|source| SinkError::Io {
            op: "flush",
            source,
        })
    }

    fn flush(&mut self, _deadline: Instant) -> Result<(), SinkError> {
        self.out.flush().map_err(|source| SinkError::Io {
            op: "flush",
            source,
        })
    }
}
