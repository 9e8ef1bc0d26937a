//! Node PMC observer: CPU stall, memory pressure and IPC degradation (B10)
//! from per-CPU hardware counters read by `node_pmc_monitor.o`.
//!
//! The agent opens cycles, instructions and stalled-cycles events on every
//! online CPU ([`perf`]); a cpu-clock sampling event runs the BPF program on
//! each CPU every `SAMPLE_PERIOD_MS`, which reads them with
//! `bpf_perf_event_read_value` and submits a raw snapshot. Deltas, node-wide
//! windows and episodes are computed here ([`window`]).
//!
//! Where the host has no hardware PMU (a VM without passthrough) the
//! observer is `unavailable` with the reason and emits nothing.

use tapio_common::ebpf::node::{NodeConfig, NodeSample, REC_SAMPLE, STAT_READ_FAILED};
use tapio_common::ebpf::{as_bytes, ConfigHeader};
use tapio_common::Observer;
use tapio_wire::CompiledConfig;

use super::{parse_record, Classifier, Malformed};
use crate::clock::Clock;
use crate::fold::Candidate;

pub mod counters;
pub mod perf;
pub mod window;

pub use window::NodeWindows;

/// The classifier of this observer.
#[must_use]
pub fn classifier() -> Option<Box<dyn Classifier>> {
    Some(Box::new(NodeClassifier::default()))
}

/// The `tapio_config` carrier of `node_pmc_monitor.o` for `cfg`.
#[must_use]
pub fn carrier(cfg: &CompiledConfig, generation: u64) -> Option<Vec<u8>> {
    let c = NodeConfig {
        hdr: ConfigHeader::configured(cfg.node.enabled, &[], generation),
    };
    Some(as_bytes(&c).to_vec())
}

/// Opens the counters and attaches the sampling program (perf events the
/// generic tracepoint loader cannot attach). `Ok(Some(note))` when it runs
/// degraded (optional events missing) or in the software test mode.
///
/// # Errors
/// Why the observer cannot run on this host: the event, CPU and errno.
pub fn attach(
    obj: &mut crate::loader::LoadedObject,
    settings: &crate::settings::Settings,
) -> Result<Option<String>, String> {
    perf::setup(obj, settings.node_pmc_software_test)
}

/// Classifies node counter snapshots.
pub struct NodeClassifier {
    windows: NodeWindows,
    read_failed: u64,
}

impl Default for NodeClassifier {
    fn default() -> Self {
        NodeClassifier {
            windows: NodeWindows::new(CompiledConfig::production_default().node, 0),
            read_failed: 0,
        }
    }
}

impl Classifier for NodeClassifier {
    fn observer(&self) -> Observer {
        Observer::Node
    }

    fn record(
        &mut self,
        bytes: &[u8],
        clock: &Clock,
        out: &mut Vec<Candidate>,
    ) -> Result<(), Malformed> {
        let (hdr, s): (_, NodeSample) = parse_record(bytes, &[REC_SAMPLE])?;
        self.windows.sample(&s, clock.unix_ns(hdr.ts_boot_ns), out);
        Ok(())
    }

    fn tick(&mut self, now_unix_ns: u64, out: &mut Vec<Candidate>) {
        self.windows.tick(now_unix_ns, out);
    }

    fn finish(&mut self, out: &mut Vec<Candidate>) {
        self.windows.finish(out);
    }

    fn configure(&mut self, cfg: &CompiledConfig, generation: u64) {
        self.windows.configure(cfg.node.clone(), generation);
    }

    fn kernel_stats(&mut self, stats: &[u64]) {
        let Some(&n) = stats.get(STAT_READ_FAILED as usize) else {
            return;
        };
        if n > self.read_failed {
            let q = self.windows.totals();
            tracing::warn!(
                observer = "node",
                read_failed = n,
                gaps = q.gaps,
                resets = q.resets,
                dropped_intervals = q.dropped_intervals,
                "node counter reads failed in the kernel (CPU offline or event in error); those snapshots miss slots and their intervals are dropped"
            );
        }
        self.read_failed = n;
    }
}

#[cfg(test)]
mod tests;
