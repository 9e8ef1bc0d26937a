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
//!   until the deadline. What is left then is counted exactly: still queued
//!   (`shutdown_deadline`), or inside a write that had not returned
//!   (`shutdown_in_flight`: it may or may not have reached the sink). For
//!   every sink, delivered + dropped (all reasons) = handed over.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tapio_common::{Occurrence, Sink, SinkError};

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
    ledger: Arc<Ledger>,
}

/// Where every occurrence handed to one worker stands, so shutdown can
/// count exactly what did not reach the sink.
#[derive(Default)]
struct Ledger {
    /// Accepted into the queue.
    queued: AtomicU64,
    /// Settled by the worker, and what is in the write under way.
    state: Mutex<LedgerState>,
}

#[derive(Default)]
struct LedgerState {
    /// Occurrences whose outcome was counted (delivered or dropped).
    settled: u64,
    /// Occurrences in the write under way.
    in_flight: u64,
    /// Shutdown counted the rest: the worker counts nothing more.
    abandoned: bool,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, LedgerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
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
            let ledger = Arc::new(Ledger::default());
            let l = Arc::clone(&ledger);
            let thread = std::thread::Builder::new()
                .name(format!("sink-{}", kind.as_str()))
                .spawn(move || {
                    run_worker(kind, sink, &rx, &c, &l);
                    let _ = done_tx.send(());
                })?;
            workers.push(Worker {
                kind,
                tx,
                done: Mutex::new(done),
                thread,
                ledger,
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
                Ok(()) => {
                    w.ledger.queued.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.counters.sink_drop(w.kind, SinkDrop::QueueFull, 1);
                }
            }
        }
    }

    /// Closes the queues and waits for the workers until `deadline`.
    /// Returns the sinks that did not finish in time, each with what it
    /// left: (still queued, in a write under way), both counted.
    pub fn shutdown(self, deadline: Instant) -> Vec<(SinkKind, u64, u64)> {
        let mut late = Vec::new();
        let mut waiting = Vec::new();
        for w in self.workers {
            drop(w.tx);
            waiting.push((w.kind, w.done, w.thread, w.ledger));
        }
        for (kind, done, thread, ledger) in waiting {
            let left = deadline.saturating_duration_since(Instant::now());
            let finished = done
                .into_inner()
                .map(|d| d.recv_timeout(left).is_ok())
                .unwrap_or(false);
            if finished {
                let _ = thread.join();
                continue;
            }
            // No more emits (the fanout is consumed): `queued` is final.
            let mut st = ledger.lock();
            st.abandoned = true;
            let queued = ledger.queued.load(Ordering::Relaxed);
            let in_flight = st.in_flight;
            let waiting = queued.saturating_sub(st.settled + in_flight);
            drop(st);
            self.counters
                .sink_drop(kind, SinkDrop::ShutdownDeadline, waiting);
            self.counters
                .sink_drop(kind, SinkDrop::ShutdownInFlight, in_flight);
            late.push((kind, waiting, in_flight));
        }
        late
    }
}

fn run_worker(
    kind: SinkKind,
    mut sink: Box<dyn Sink>,
    rx: &Receiver<Arc<Occurrence>>,
    c: &Counters,
    ledger: &Ledger,
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
        {
            let mut st = ledger.lock();
            if st.abandoned {
                return;
            }
            st.in_flight = batch.len() as u64;
        }
        let n = batch.len() as u64;
        let result = write_batch(sink.as_mut(), &mut batch);
        let mut st = ledger.lock();
        if st.abandoned {
            // Shutdown counted this batch as in flight.
            return;
        }
        st.in_flight = 0;
        st.settled += n;
        settle(kind, result, c, &mut outage);
    }
    let _ = sink.flush(Instant::now() + WRITE_DEADLINE);
}

/// A run of failed writes of one sink, for logging its start and end once.
#[derive(Default)]
struct Outage {
    reason: Option<SinkDrop>,
    lost: u64,
}

/// Writes `batch` (then empties it): the batch size and, on failure, the
/// error.
fn write_batch(sink: &mut dyn Sink, batch: &mut Vec<Occurrence>) -> (usize, Result<(), SinkError>) {
    let n = batch.len();
    let r = sink.write_batch(batch, Instant::now() + WRITE_DEADLINE);
    batch.clear();
    (n, r)
}

/// Counts the outcome of one batch write: delivered, or lost by reason.
fn settle(
    kind: SinkKind,
    (n, result): (usize, Result<(), SinkError>),
    c: &Counters,
    outage: &mut Outage,
) {
    if n == 0 {
        return;
    }
    let ok = match result {
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
            c.sink_delivered(kind, n as u64);
            true
        }
        Err(e) => {
            let (lost, cause) = e.lost(n);
            let reason = SinkDrop::of(cause);
            if outage.reason != Some(reason) {
                tracing::warn!(sink = kind.as_str(), reason = reason.as_str(), error = %error_chain(&e), lost, "sink write failed; later failures of this kind are counted, not logged, until writing resumes");
                outage.reason = Some(reason);
            }
            outage.lost += lost as u64;
            c.sink_drop(kind, reason, lost as u64);
            c.sink_delivered(kind, (n - lost.min(n)) as u64);
            false
        }
    };
    c.sink_write(kind, ok);
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

    /// One batch written and settled, as the worker does it.
    fn write(
        kind: SinkKind,
        sink: &mut dyn Sink,
        batch: &mut Vec<Occurrence>,
        c: &Counters,
        outage: &mut Outage,
    ) {
        let r = write_batch(sink, batch);
        settle(kind, r, c, outage);
    }
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
