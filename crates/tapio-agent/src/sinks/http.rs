//! `http` sink: batched JSON POST of occurrences to `--http-endpoint` (D2).
//!
//! ## Design constraints
//! - Runs on its sink worker behind the bounded queue of [`super::Fanout`];
//!   one batch (at most [`super::MAX_BATCH`] occurrences) is one POST whose
//!   body is a JSON array of D5 occurrences.
//! - A transport failure, `408`, `429` or `5xx` is retried with backoff
//!   (100 ms doubling, capped at 1 s) until the batch's write deadline; any
//!   other `4xx` fails the batch at once (resending the same body cannot
//!   succeed). A failed batch is counted by the worker
//!   (`tapio_sink_drops_total{sink="http",reason="write_failed"}`).
//! - Plain `http://` only (see [`crate::http`]).

use std::time::{Duration, Instant};

use tapio_common::{Occurrence, Sink, SinkError};

use crate::backoff::Backoff;
use crate::http::{Client, Endpoint, HttpError, Request};

/// Outcome of one attempt, as the retry loop sees it.
pub(crate) enum Attempt<E> {
    /// Worth trying again until the deadline.
    Transient(E),
    /// Retrying cannot help.
    Permanent(E),
}

/// Runs `attempt` until it succeeds, fails permanently, or the next try
/// would start after `deadline`; returns the last error.
pub(crate) fn retry<E>(
    deadline: Instant,
    mut attempt: impl FnMut() -> Result<(), Attempt<E>>,
) -> Result<(), E> {
    let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    loop {
        match attempt() {
            Ok(()) => return Ok(()),
            Err(Attempt::Permanent(e)) => return Err(e),
            Err(Attempt::Transient(e)) => {
                let wait = b.next_delay();
                if Instant::now() + wait >= deadline {
                    return Err(e);
                }
                std::thread::sleep(wait);
            }
        }
    }
}

/// Maps a transport error onto the sink's error type.
pub(crate) fn sink_error(e: &HttpError, started: Instant) -> SinkError {
    match e {
        HttpError::Timeout { .. } => SinkError::Deadline {
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        },
        other => SinkError::Io {
            op: "http",
            source: std::io::Error::other(crate::sinks::error_chain(other)),
        },
    }
}

/// True for statuses worth retrying.
pub(crate) fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// Batched JSON POSTs.
pub struct HttpSink {
    endpoint: Endpoint,
    client: Client,
}

impl HttpSink {
    /// A sink posting to `url`.
    ///
    /// # Errors
    /// The URL is not a usable `http://` URL.
    pub fn new(url: &str) -> Result<Self, HttpError> {
        Ok(HttpSink {
            endpoint: Endpoint::parse(url)?,
            client: Client {
                max_body: 64 * 1024,
                ..Client::default()
            },
        })
    }
}

impl Sink for HttpSink {
    fn name(&self) -> &'static str {
        "http"
    }

    fn write_batch(&mut self, batch: &[Occurrence], deadline: Instant) -> Result<(), SinkError> {
        let started = Instant::now();
        let mut body = Vec::with_capacity(batch.len() * 1024 + 2);
        tapio_common::json::write_occurrences(&mut body, batch);
        let path = self.endpoint.path().to_owned();
        retry(deadline, || {
            let r = self
                .client
                .send(
                    &self.endpoint,
                    &Request {
                        method: "POST",
                        path: &path,
                        headers: &[("Content-Type", "application/json")],
                        body: Some(&body),
                    },
                    deadline,
                )
                .map_err(|e| {
                    tracing::debug!(sink = "http", error = %crate::sinks::error_chain(&e), "post failed");
                    Attempt::Transient(sink_error(&e, started))
                })?;
            if r.is_success() {
                Ok(())
            } else if retryable(r.status) {
                Err(Attempt::Transient(SinkError::Rejected { status: r.status }))
            } else {
                Err(Attempt::Permanent(SinkError::Rejected { status: r.status }))
            }
        })
    }

    fn flush(&mut self, _deadline: Instant) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn retries_transient_failures_until_the_deadline() {
        let n = Cell::new(0);
        let t = Instant::now();
        let r: Result<(), u32> = retry(t + Duration::from_millis(700), || {
            n.set(n.get() + 1);
            Err(Attempt::Transient(7))
        });
        assert_eq!(r, Err(7));
        assert!(n.get() >= 3, "{}", n.get());
        assert!(t.elapsed() < Duration::from_millis(800));
    }

    #[test]
    fn stops_at_a_permanent_failure_or_success() {
        let n = Cell::new(0);
        let r: Result<(), u32> = retry(Instant::now() + Duration::from_secs(5), || {
            n.set(n.get() + 1);
            Err(Attempt::Permanent(1))
        });
        assert_eq!((r, n.get()), (Err(1), 1));
        let r: Result<(), u32> = retry(Instant::now() + Duration::from_secs(5), || {
            n.set(n.get() + 1);
            if n.get() < 4 {
                Err(Attempt::Transient(2))
            } else {
                Ok(())
            }
        });
        assert_eq!((r, n.get()), (Ok(()), 4));
    }

    #[test]
    fn status_classes() {
        assert!(retryable(503) && retryable(429) && retryable(408) && retryable(500));
        assert!(!retryable(400) && !retryable(413) && !retryable(401));
    }
}
