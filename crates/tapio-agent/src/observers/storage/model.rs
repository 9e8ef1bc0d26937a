//! A userspace model of the in-kernel issue/completion correlation of
//! `ebpf/storage_monitor.c`, step for step, so every B9 ambiguity path is
//! tested without a kernel. Keep it in lockstep with the C: each method
//! names the program it models.

use std::collections::HashMap;

/// What the kernel does with one tracepoint hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing crosses, nothing counted (tracked issue, clean completion
    /// under the threshold, partial completion, untracked requeue).
    Quiet,
    /// A record crosses into userspace: (error status, latency).
    Record(u32, u64),
    /// Dropped, counted in this `tapio_stats` slot.
    Counted(u32),
}

#[derive(Debug, Clone, Copy)]
struct Inflight {
    issue_ns: u64,
    ambiguous: bool,
}

/// The `inflight` map and the thresholds of the config carrier.
pub struct Model {
    cap: usize,
    warning_ns: u64,
    table: HashMap<u64, Inflight>,
}

impl Model {
    /// A table of `cap` entries judging latency against `warning_ns`.
    pub fn new(cap: usize, warning_ns: u64) -> Self {
        Model {
            cap,
            warning_ns,
            table: HashMap::new(),
        }
    }

    /// `block_rq_issue`.
    pub fn issue(&mut self, rq: u64, now: u64) -> Outcome {
        use tapio_common::ebpf::storage::{STAT_AMBIGUOUS, STAT_INFLIGHT_FULL};
        if let Some(e) = self.table.get_mut(&rq) {
            e.issue_ns = now;
            e.ambiguous = true;
            return Outcome::Counted(STAT_AMBIGUOUS);
        }
        if self.table.len() >= self.cap {
            return Outcome::Counted(STAT_INFLIGHT_FULL);
        }
        self.table.insert(
            rq,
            Inflight {
                issue_ns: now,
                ambiguous: false,
            },
        );
        Outcome::Quiet
    }

    /// `block_rq_requeue`.
    pub fn requeue(&mut self, rq: u64) -> Outcome {
        match self.table.remove(&rq) {
            Some(_) => Outcome::Counted(tapio_common::ebpf::storage::STAT_REQUEUED),
            None => Outcome::Quiet,
        }
    }

    /// `block_rq_complete` with `nr_bytes` of `remaining` bytes.
    pub fn complete(
        &mut self,
        rq: u64,
        now: u64,
        status: u32,
        nr_bytes: u32,
        remaining: u32,
    ) -> Outcome {
        use tapio_common::ebpf::storage::{STAT_AMBIGUOUS, STAT_MISSING_ISSUE, STAT_PARTIAL_ERROR};
        if nr_bytes < remaining {
            return if status == 0 {
                Outcome::Quiet
            } else {
                Outcome::Counted(STAT_PARTIAL_ERROR)
            };
        }
        let Some(e) = self.table.remove(&rq) else {
            return Outcome::Counted(STAT_MISSING_ISSUE);
        };
        if e.ambiguous {
            return Outcome::Counted(STAT_AMBIGUOUS);
        }
        let lat = now - e.issue_ns;
        if status != 0 || lat >= self.warning_ns {
            Outcome::Record(status, lat)
        } else {
            Outcome::Quiet
        }
    }

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.table.len()
    }
}
