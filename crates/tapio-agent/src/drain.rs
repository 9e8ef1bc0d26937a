//! The drain loop of one observer: ring buffer -> parser -> classifier ->
//! folder -> fanout, on a tick and on the kernel's forced wakeups (A4).
//!
//! ## Design constraints
//! - One pass drains at most `max_records` records; a pass that stops at
//!   the cap is counted (`tapio_drain_cap_total`) and the loop drains again
//!   after yielding, instead of waiting for the next tick.
//! - Nothing here blocks: sinks are behind bounded queues (A5).
//! - On shutdown the ring is drained once more (bounded), every window is
//!   closed and its follow-ups emitted.

use std::sync::Arc;
use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tapio_common::ebpf::stat;
use tapio_common::status::ObserverState;
use tapio_wire::CompiledConfig;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

use crate::attribution::front::Front;
use crate::attribution::Attribution;
use crate::clock::Clock;
use crate::fold::{Candidate, Folder, RawKey};
use crate::loader::LoadedObject;
use crate::observers::{carrier_bytes, Classifier};
use crate::sinks::{error_chain, Fanout};
use crate::state::AgentState;

/// The instant every observer's tick schedule starts from.
fn tick_origin() -> tokio::time::Instant {
    static ORIGIN: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(tokio::time::Instant::now)
}

/// A config to apply, with its generation and hash.
#[derive(Debug, Clone)]
pub struct ConfigUpdate {
    /// The config.
    pub config: CompiledConfig,
    /// Generation.
    pub generation: u64,
    /// `config.content_hash()`.
    pub hash: String,
}

/// Result of applying a config to one observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyResult {
    /// The carrier took it.
    Applied {
        /// Generation applied.
        generation: u64,
    },
    /// The carrier write failed: not applied.
    Failed {
        /// Generation that failed.
        generation: u64,
        /// Why.
        reason: String,
    },
}

/// One observer's pipeline.
pub struct ObserverTask {
    obj: LoadedObject,
    ring: AsyncFd<RingBuf<MapData>>,
    classifier: Box<dyn Classifier>,
    folder: Folder,
    fanout: Arc<Fanout>,
    state: Arc<AgentState>,
    tick: Duration,
    max_records: usize,
    candidates: Vec<Candidate>,
    /// Raw fold keys of `candidates`, index for index.
    raw_keys: Vec<Option<RawKey>>,
    /// Adds owner cgroup facts to occurrences (this task's front of the
    /// shared cache, never waits).
    attribution: Option<Front>,
    /// When the object's iterator pass is next due.
    next_pass: Option<std::time::Instant>,
}

impl ObserverTask {
    /// Wraps a loaded object.
    ///
    /// # Errors
    /// The ring buffer fd cannot be registered with the reactor.
    pub fn new(
        obj: LoadedObject,
        ring: RingBuf<MapData>,
        mut classifier: Box<dyn Classifier>,
        fanout: Arc<Fanout>,
        state: Arc<AgentState>,
        tick: Duration,
        max_records: usize,
    ) -> std::io::Result<Self> {
        classifier.set_counters(Arc::clone(&state.counters));
        // SAFETY: the RingBuf owns its map fd and keeps it open, unchanged,
        // for as long as it lives; the AsyncFd owns the RingBuf.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        Ok(ObserverTask {
            obj,
            ring,
            classifier,
            folder: Folder::new(0, Folder::DEFAULT_MAX_KEYS),
            fanout,
            state,
            tick,
            max_records,
            candidates: Vec::with_capacity(256),
            raw_keys: Vec::with_capacity(256),
            attribution: None,
            next_pass: None,
        })
    }

    /// Annotates every occurrence this task emits with its owner's cgroup
    /// facts ([`Attribution::annotate`], through the task's own [`Front`]).
    #[must_use]
    pub fn with_attribution(mut self, a: Option<Arc<Attribution>>) -> Self {
        self.attribution = a.map(Front::new);
        self
    }

    /// Hands `occ` to the sinks, attributed first.
    fn send(&mut self, mut occ: tapio_common::Occurrence) {
        if let Some(a) = &mut self.attribution {
            a.annotate(&mut occ);
        }
        self.fanout.emit(occ);
    }

    /// Publishes the attribution hits of the batch just sent.
    fn end_batch(&mut self) {
        if let Some(a) = &mut self.attribution {
            a.flush();
        }
    }

    fn apply(&mut self, u: &ConfigUpdate) -> ApplyResult {
        let o = self.obj.observer;
        self.classifier.configure(&u.config, u.generation);
        self.folder.set_window_ms(u.config.fold_window_ms);
        let Some(bytes) = carrier_bytes(o, &u.config, u.generation) else {
            return ApplyResult::Applied {
                generation: u.generation,
            };
        };
        match self.obj.write_config(&bytes) {
            Ok(()) => ApplyResult::Applied {
                generation: u.generation,
            },
            Err(e) => {
                self.state.counters.config_error(o);
                let reason = error_chain(&e);
                tracing::error!(observer = %o, generation = u.generation, error = %reason, "config not applied");
                ApplyResult::Failed {
                    generation: u.generation,
                    reason,
                }
            }
        }
    }

    /// Drains up to `max_records`; true when it stopped at the cap.
    fn drain(&mut self, clock: &Clock) -> bool {
        let o = self.obj.observer;
        let counters = Arc::clone(&self.state.counters);
        let ring = self.ring.get_mut();
        self.raw_keys.resize(self.candidates.len(), None);
        let mut n = 0;
        while n < self.max_records {
            let Some(item) = ring.next() else {
                return false;
            };
            n += 1;
            counters.event(o);
            // A repeat of an open fold window is counted without building
            // its facts (storms cost a parse and a lookup per record).
            let raw = self.classifier.raw_fold_key(&item);
            if let Some((k, boot_ns, spread)) = &raw {
                if self.folder.absorb(k, clock.unix_ns(*boot_ns), *spread) {
                    continue;
                }
            }
            let before = self.candidates.len();
            if let Err(e) = self.classifier.record(&item, clock, &mut self.candidates) {
                counters.malformed(o);
                tracing::debug!(observer = %o, error = %e, "malformed record dropped");
            }
            let added = self.candidates.len() - before;
            let key = raw.filter(|_| added == 1).map(|(k, _, _)| k);
            self.raw_keys.push(key);
            self.raw_keys.resize(self.candidates.len(), None);
        }
        counters.drain_cap(o);
        true
    }

    fn emit(&mut self) {
        if self.candidates.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(self.candidates.len());
        self.raw_keys.resize(self.candidates.len(), None);
        for (c, raw) in self.candidates.drain(..).zip(self.raw_keys.drain(..)) {
            self.folder.push_keyed(c, raw, &mut out);
        }
        for occ in out {
            self.send(occ);
        }
        self.end_batch();
    }

    fn on_tick(&mut self) {
        let now = Clock::unix_now();
        self.classifier.tick(now, &mut self.candidates);
        self.emit();
        let mut out = Vec::new();
        self.folder.flush_expired(now, &mut out);
        for occ in out {
            self.send(occ);
        }
        self.end_batch();
    }

    /// Runs the object's iterator pass once per the classifier's
    /// `pass_every`, on the first tick at or after it is due (the programs
    /// allow a pass to come early or late by part of an interval). A failed
    /// pass is counted (its samples are missing evidence) and logged.
    fn pass_if_due(&mut self) {
        let Some(every) = self.classifier.pass_every() else {
            self.next_pass = None;
            return;
        };
        let now = std::time::Instant::now();
        let due = *self.next_pass.get_or_insert(now);
        if now < due {
            return;
        }
        self.next_pass = Some(now + every);
        if let Some(Err(e)) = self.obj.run_pass() {
            let o = self.obj.observer;
            self.state
                .counters
                .fact_drop(o, crate::counters::FactDrop::IterPassFailed);
            tracing::warn!(observer = %o, error = %e, "iterator pass failed: its samples are missing");
        }
    }

    fn read_kernel_stats(&mut self) {
        match self.obj.read_stats() {
            Ok(s) => {
                self.state.counters.set_kernel_totals(
                    self.obj.observer,
                    s[stat::LOST as usize],
                    s[stat::ABI_MISMATCH as usize],
                );
                self.classifier.kernel_stats(&s);
            }
            Err(e) => {
                tracing::warn!(observer = %self.obj.observer, error = %error_chain(&e), "kernel stats unreadable")
            }
        }
    }

    /// Runs until `shutdown` turns true; applies every config sent on
    /// `config` and reports each result on `applied`.
    pub async fn run(
        mut self,
        mut shutdown: watch::Receiver<bool>,
        mut config: watch::Receiver<Option<Arc<ConfigUpdate>>>,
        applied: tokio::sync::mpsc::UnboundedSender<(tapio_common::Observer, ApplyResult)>,
    ) -> Self {
        let o = self.obj.observer;
        // Every observer ticks on one shared schedule, so an idle agent wakes
        // once per tick for all of them, not once per observer.
        let mut ticker = tokio::time::interval_at(tick_origin(), self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut ticks: u64 = 0;
        let mut clock = Clock::now();
        let waiting = if let Some(u) = config.borrow_and_update().clone() {
            let _ = applied.send((o, self.apply(&u)));
            None
        } else {
            Some("inert: no config received yet (carrier all zeros)".to_owned())
        };
        self.state.set_observer(o, ObserverState::Running, waiting);
        let mut backlog = false;
        loop {
            if backlog {
                tokio::task::yield_now().await;
                backlog = self.drain(&clock);
                self.emit();
                if *shutdown.borrow() {
                    break;
                }
                continue;
            }
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                changed = config.changed() => {
                    if changed.is_err() { continue; }
                    if let Some(u) = config.borrow_and_update().clone() {
                        let _ = applied.send((o, self.apply(&u)));
                    }
                }
                guard = self.ring.readable_mut() => {
                    if let Ok(mut g) = guard { g.clear_ready(); }
                    backlog = self.drain(&clock);
                    self.emit();
                }
                _ = ticker.tick() => {
                    clock = Clock::now();
                    backlog = self.drain(&clock);
                    self.emit();
                    self.on_tick();
                    self.pass_if_due();
                    ticks += 1;
                    if ticks % 10 == 0 {
                        self.read_kernel_stats();
                    }
                }
            }
        }
        self.finish(&clock);
        self
    }

    /// Final bounded drain, window close and flush of folds.
    fn finish(&mut self, clock: &Clock) {
        for _ in 0..16 {
            let capped = self.drain(clock);
            self.emit();
            if !capped {
                break;
            }
        }
        self.classifier.finish(&mut self.candidates);
        self.emit();
        let mut out = Vec::new();
        self.folder.flush_all(&mut out);
        for occ in out {
            self.send(occ);
        }
        self.end_batch();
        self.read_kernel_stats();
    }
}
