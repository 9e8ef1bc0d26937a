//! `stdout` sink: one JSON line per occurrence.

use std::io::{BufWriter, Write};
use std::time::Instant;

use tapio_common::{Occurrence, Sink, SinkError};

/// JSON lines on standard output.
pub struct StdoutSink {
    out: BufWriter<std::io::Stdout>,
    /// One serialized line, reused.
    line: Vec<u8>,
}

impl StdoutSink {
    /// A sink on this process's stdout.
    #[must_use]
    pub fn new() -> Self {
        StdoutSink {
            out: BufWriter::with_capacity(64 * 1024, std::io::stdout()),
            line: Vec::with_capacity(1024),
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
            self.line.clear();
            o.write_json(&mut self.line);
            self.line.push(b'\n');
            self.out
                .write_all(&self.line)
                .map_err(|source| SinkError::Io {
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
