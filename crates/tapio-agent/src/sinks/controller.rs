//! `controller` sink: tapio-wire/v1 event batches to `POST /v1/events` (D3).
//!
//! ## Design constraints
//! - Runs on its sink worker behind the bounded queue of [`super::Fanout`]:
//!   overflow is dropped and counted there, the drain never waits (A5).
//! - Sequence numbers start at 1 in every controller session and grow by
//!   one per batch sent. A batch keeps its sequence across retries in the
//!   same session (the controller acknowledges a resend as a duplicate);
//!   a batch that finally fails leaves its number unused, which the
//!   controller reports as a sequence gap — the honest record of a loss.
//! - Before a session exists, and after the controller forgot this agent
//!   (`404`/`409`), the sink wakes the controller thread to say hello and
//!   retries until the write deadline.
//! - Batches larger than the controller's `max_batch_events` or
//!   `max_body_bytes` (from the hello answer) are split. A single
//!   occurrence above the body limit fails its batch.
//! - Every failed attempt counts in
//!   `tapio_controller_send_failures_total{call="events"}`; a batch that
//!   fails after its retries is counted by the worker
//!   (`tapio_sink_drops_total{sink="controller",reason="write_failed"}`).

use std::sync::Arc;
use std::time::Instant;

use tapio_common::{Occurrence, Sink, SinkError};
use tapio_wire::{paths, EventBatch};

use super::http::{retry, sink_error, Attempt};
use crate::controller::{ControllerError, ControllerLink, Session};
use crate::counters::{ControllerCall, Counters};

/// Event batches to the controller.
pub struct ControllerSink {
    link: Arc<ControllerLink>,
    counters: Arc<Counters>,
    /// (session epoch, last sequence used in it).
    sequence: (u64, u64),
}

impl ControllerSink {
    /// A sink sending through `link`.
    #[must_use]
    pub fn new(link: Arc<ControllerLink>, counters: Arc<Counters>) -> Self {
        ControllerSink {
            link,
            counters,
            sequence: (0, 0),
        }
    }

    fn next_sequence(&mut self, s: &Session) -> u64 {
        if self.sequence.0 != s.epoch {
            self.sequence = (s.epoch, 0);
        }
        self.sequence.1 += 1;
        self.sequence.1
    }

    fn send(&mut self, part: &[Occurrence], deadline: Instant) -> Result<(), SinkError> {
        let started = Instant::now();
        // (session epoch, body) of the batch as numbered for that session.
        let mut prepared: Option<(u64, Vec<u8>)> = None;
        retry(deadline, || {
            let Some(s) = self.link.session() else {
                self.counters
                    .controller_send_failure(ControllerCall::Events);
                self.link.nudge();
                return Err(Attempt::Transient(SinkError::Io {
                    op: "send",
                    source: std::io::Error::other("not registered with the controller"),
                }));
            };
            if prepared.as_ref().is_none_or(|(e, _)| *e != s.epoch) {
                let seq = self.next_sequence(&s);
                let batch = EventBatch {
                    agent_id: self.link.agent_id.clone(),
                    session: s.id.clone(),
                    sequence: seq,
                    occurrences: part.iter().collect::<Vec<_>>(),
                };
                let body = serde_json::to_vec(&batch).map_err(|e| {
                    Attempt::Permanent(SinkError::Io {
                        op: "serialize",
                        source: e.into(),
                    })
                })?;
                prepared = Some((s.epoch, body));
            }
            let body = prepared.as_ref().map_or(&[][..], |(_, b)| b.as_slice());
            match self.link.call("POST", paths::EVENTS, Some(body), &[]) {
                Ok(_) => Ok(()),
                Err(e) => {
                    self.counters
                        .controller_send_failure(ControllerCall::Events);
                    tracing::debug!(sink = "controller", error = %crate::sinks::error_chain(&e), "event batch not accepted");
                    Err(match e {
                        ControllerError::UnknownAgent { .. } => {
                            self.link.forget(s.epoch);
                            Attempt::Transient(SinkError::Rejected { status: 409 })
                        }
                        ControllerError::Http(h) => Attempt::Transient(sink_error(&h, started)),
                        ControllerError::Status { status, .. } if !e.is_permanent() => {
                            Attempt::Transient(SinkError::Rejected { status })
                        }
                        ControllerError::Status { status, .. } => {
                            Attempt::Permanent(SinkError::Rejected { status })
                        }
                        ControllerError::Decode { .. } => {
                            Attempt::Permanent(SinkError::Rejected { status: 200 })
                        }
                    })
                }
            }
        })
    }
}

/// Splits `batch` into parts within the controller's limits.
fn parts(batch: &[Occurrence], max_events: usize, max_body: usize) -> Vec<&[Occurrence]> {
    let mut out = Vec::new();
    let mut stack = vec![batch];
    while let Some(p) = stack.pop() {
        let too_many = max_events > 0 && p.len() > max_events;
        // Serialised size estimate: the occurrences plus the envelope.
        let too_big = max_body > 0
            && p.len() > 1
            && serde_json::to_vec(p).map_or(0, |v| v.len()) + 512 > max_body;
        if too_many || too_big {
            let (a, b) = p.split_at(p.len() / 2);
            stack.push(b);
            stack.push(a);
        } else {
            out.push(p);
        }
    }
    out
}

impl Sink for ControllerSink {
    fn name(&self) -> &'static str {
        "controller"
    }

    fn write_batch(&mut self, batch: &[Occurrence], deadline: Instant) -> Result<(), SinkError> {
        let (max_events, max_body) = self.link.session().map_or((0, 0), |s| {
            (
                s.max_batch_events as usize,
                usize::try_from(s.max_body_bytes).unwrap_or(usize::MAX),
            )
        });
        for p in parts(batch, max_events, max_body) {
            self.send(p, deadline)?;
        }
        Ok(())
    }

    fn flush(&mut self, _deadline: Instant) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapio_common::{Anomaly, Outcome, Severity};

    fn occ(i: u64) -> Occurrence {
        Occurrence::new(
            Anomaly::ConnectionRefused,
            Severity::Warning,
            Outcome::Failure,
            1_700_000_000_000_000_000 + i,
            1,
        )
    }

    #[test]
    fn batches_are_split_to_the_controller_limits() {
        let b: Vec<Occurrence> = (0..10).map(occ).collect();
        let p = parts(&b, 3, 0);
        assert!(p.iter().all(|p| p.len() <= 3));
        assert_eq!(p.iter().map(|p| p.len()).sum::<usize>(), 10);
        let one = serde_json::to_vec(&b[..1]).unwrap().len();
        let max = 512 + 3 * one;
        let p = parts(&b, 0, max);
        assert!(p.len() >= 4, "{}", p.len());
        for part in &p {
            assert!(serde_json::to_vec(part).unwrap().len() + 512 <= max);
        }
        assert_eq!(parts(&b, 0, 0).len(), 1);
        // Order is kept.
        let flat: Vec<_> = parts(&b, 3, 0).concat().iter().map(|o| o.id).collect();
        assert_eq!(flat, b.iter().map(|o| o.id).collect::<Vec<_>>());
    }

    #[test]
    fn sequence_restarts_at_one_per_session() {
        let link =
            Arc::new(ControllerLink::new("http://127.0.0.1:9", "a".into(), "n".into()).unwrap());
        let mut s = ControllerSink::new(link, Arc::new(Counters::default()));
        let sess = |epoch| Session {
            id: format!("s{epoch}"),
            epoch,
            max_body_bytes: 0,
            max_batch_events: 0,
        };
        assert_eq!(s.next_sequence(&sess(1)), 1);
        assert_eq!(s.next_sequence(&sess(1)), 2);
        assert_eq!(s.next_sequence(&sess(2)), 1);
    }
}
