//! Sinks behind bounded queues: the drain loop hands occurrences over with
//! `try_send` and never waits (A5).
//!
//! ## Design constraints
//! - Each sink runs on its own thread behind a queue of
//!   [`QUEUE_CAPACITY`] occurrences. Full queue: the occurrence is dropped
//!   for that sink only and counted (`queue_full`); other sinks still get it.
//! - A worker batches up to [`MAX_BATCH`] occurrences or [`BATCH_LINGER`],
//!   whichever comes first; what a failed batch lost is counted under its
//!   reason (`disk_full` for `ENOSPC`/`EDQUOT`, else `write_failed`; a
//!   partly written batch counts only the rest). The next batch is tried as
//!   usual, so writing resumes by itself when the cause goes away. A run of
//!   failures logs once when it starts (and when its reason changes) and
//!   once when writing resumes, with the count lost in between.
//! - Shutdown closes the queues; workers write what is queued and flush
//!   until the deadline; what is left then is counted
//!   (`shutdown_deadline`).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tapio_common::{Occurrence, Sink};

use crate::counters::{Counters, SinkDrop, SinkKind};

pub mod controller;
pub mod file;
pub mod http;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod stdout;

/// Occurrences queued per sink.
pub const QUEUE_CAPACITY: usize = 4096;
/// Largest batch handed to a sink.
pub const MAX_BATCH: usize = 256;
/// Longest a partial batch waits for more.
pub const BATCH_LINGER: Duration = Duration::from_millis(50);
/// Deadline of one batch write.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(5);

struct Worker {
    kind: SinkKind,
    tx: SyncSender<Arc<Occurrence>>,
    done: Mutex<Receiver<()>>,
    thread: JoinHandle<()>,
}

/// Hands occurrences to every configured sink.
pub struct Fanout {
    workers: Vec<Worker>,
    counters: Arc<Counters>,
}

impl Fanout {
    /// Starts one worker thread per sink.
    ///
    /// # Errors
    /// A worker thread could not be spawned.
    pub fn start(
        sinks: Vec<(SinkKind, Box<dyn Sink>)>,
        counters: Arc<Counters>,
    ) -> std::io::Result<Self> {
        let mut workers = Vec::with_capacity(sinks.len());
        for (kind, sink) in sinks {
            let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
            let (done_tx, done) = mpsc::sync_channel(1);
            let c = Arc::clone(&counters);
            let thread = std::thread::Builder::new()
                .name(format!("sink-{}", kind.as_str()))
                .spawn(move || {
                    run_worker(kind, sink, &rx, &c);
                    let _ = done_tx.send(());
                })?;
            workers.push(Worker {
                kind,
                tx,
                done: Mutex::new(done),
                thread,
            });
        }
        Ok(Fanout { workers, counters })
    }

    /// Counts and hands `occ` to every sink without waiting.
    pub fn emit(&self, occ: Occurrence) {
        let facts = match occ.data.get("count") {
            Some(tapio_common::Fact::U64(n)) => *n,
            _ => 1,
        };
        self.counters.anomaly(occ.anomaly, facts);
        let occ = Arc::new(occ);
        for w in &self.workers {
            match w.tx.try_send(Arc::clone(&occ)) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.counters.sink_drop(w.kind, SinkDrop::QueueFull, 1);
                }
            }
        }
    }

    /// Closes the queues and waits for the workers until `deadline`.
    /// Returns the sinks that did not finish in time.
    pub fn shutdown(self, deadline: Instant) -> Vec<SinkKind> {
        let mut late = Vec::new();
        let mut waiting = Vec::new();
        for w in self.workers {
            drop(w.tx);
            waiting.push((w.kind, w.done, w.thread));
        }
        for (kind, done, thread) in waiting {
            let left = deadline.saturating_duration_since(Instant::now());
            let finished = done
                .into_inner()
                .map(|d| d.recv_timeout(left).is_ok())
                .unwrap_or(false);
            if finished {
                let _ = thread.join();
            } else {
                late.push(kind);
            }
        }
        late
    }
}

fn run_worker(
    kind: SinkKind,
    mut sink: Box<dyn Sink>,
    rx: &Receiver<Arc<Occurrence>>,
    c: &Counters,
) {
    let mut batch: Vec<Occurrence> = Vec::with_capacity(MAX_BATCH);
    let mut outage = Outage::default();
    let mut open = true;
    while open {
        match rx.recv() {
            Ok(o) => batch.push(Arc::unwrap_or_clone(o)),
            Err(_) => break,
        }
        let linger_until = Instant::now() + BATCH_LINGER;
        while batch.len() < MAX_BATCH {
            let left = linger_until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(o) => batch.push(Arc::unwrap_or_clone(o)),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        write(kind, sink.as_mut(), &mut batch, c, &mut outage);
    }
    let _ = sink.flush(Instant::now() + WRITE_DEADLINE);
}

/// A run of failed writes of one sink, for logging its start and end once.
#[derive(Default)]
struct Outage {
    reason: Option<SinkDrop>,
    lost: u64,
}

fn write(
    kind: SinkKind,
    sink: &mut dyn Sink,
    batch: &mut Vec<Occurrence>,
    c: &Counters,
    outage: &mut Outage,
) {
    if batch.is_empty() {
        return;
    }
    let ok = match sink.write_batch(batch, Instant::now() + WRITE_DEADLINE) {
        Ok(()) => {
            if let Some(r) = outage.reason.take() {
                tracing::info!(
                    sink = kind.as_str(),
                    reason = r.as_str(),
                    lost = outage.lost,
                    "sink writing again"
                );
                outage.lost = 0;
            }
            true
        }
        Err(e) => {
            let (lost, cause) = e.lost(batch.len());
            let reason = SinkDrop::of(cause);
            if outage.reason != Some(reason) {
                tracing::warn!(sink = kind.as_str(), reason = reason.as_str(), error = %error_chain(&e), lost, "sink write failed; later failures of this kind are counted, not logged, until writing resumes");
                outage.reason = Some(reason);
            }
            outage.lost += lost as u64;
            c.sink_drop(kind, reason, lost as u64);
            false
        }
    };
    c.sink_write(kind, ok);
    batch.clear();
}

/// `error: cause: cause` on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use tapio_common::{Anomaly, Outcome, Severity, SinkError};

    /// A sink answering each batch with the next scripted result.
    struct Scripted(VecDeque<Result<(), SinkError>>);

    impl Sink for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn write_batch(&mut self, _: &[Occurrence], _: Instant) -> Result<(), SinkError> {
            self.0.pop_front().unwrap_or(Ok(()))
        }
        fn flush(&mut self, _: Instant) -> Result<(), SinkError> {
            Ok(())
        }
    }

    fn io(errno: i32) -> SinkError {
        SinkError::Io {
            op: "write",
            source: std::io::Error::from_raw_os_error(errno),
        }
    }

    fn batch(n: usize) -> Vec<Occurrence> {
        (0..n)
            .map(|_| Occurrence::new(Anomaly::IoError, Severity::Critical, Outcome::Failure, 1, 1))
            .collect()
    }

    #[test]
    fn failed_writes_count_what_they_lost_under_their_reason() {
        let c = Counters::default();
        let mut sink = Scripted(VecDeque::from([
            Err(io(libc::ENOSPC)),
            Err(SinkError::Partial {
                delivered: 3,
                total: 10,
                source: Box::new(io(libc::EDQUOT)),
            }),
            Err(io(libc::EIO)),
            Ok(()),
        ]));
        let mut outage = Outage::default();
        for n in [4, 10, 5, 2] {
            write(SinkKind::File, &mut sink, &mut batch(n), &c, &mut outage);
        }
        let s = c.snapshot();
        // 4 of the first batch, 7 of the partial one; 5 failed otherwise.
        assert_eq!(
            s["tapio_sink_drops_total{sink=\"file\",reason=\"disk_full\"}"],
            11
        );
        assert_eq!(
            s["tapio_sink_drops_total{sink=\"file\",reason=\"write_failed\"}"],
            5
        );
        assert_eq!(
            s["tapio_sink_writes_total{sink=\"file\",result=\"error\"}"],
            3
        );
        assert_eq!(s["tapio_sink_writes_total{sink=\"file\",result=\"ok\"}"], 1);
        // The last batch went out: the outage is over.
        assert_eq!(outage.reason, None);
        assert_eq!(outage.lost, 0);
    }

    #[test]
    fn an_outage_tracks_its_reason_and_total_until_a_write_succeeds() {
        let c = Counters::default();
        let mut sink = Scripted(VecDeque::from([
            Err(io(libc::ENOSPC)),
            Err(io(libc::ENOSPC)),
        ]));
        let mut outage = Outage::default();
        write(SinkKind::File, &mut sink, &mut batch(2), &c, &mut outage);
        write(SinkKind::File, &mut sink, &mut batch(3), &c, &mut outage);
        assert_eq!(outage.reason, Some(SinkDrop::DiskFull));
        assert_eq!(outage.lost, 5);
    }
}
