//! Node classifier on recorded counter sequences.

use tapio_common::ebpf::node::{
    NodeCounter, NodeSample, EVENTS, EV_CYCLES, EV_INSTRUCTIONS, EV_STALL_BACKEND,
    EV_STALL_FRONTEND, REC_SAMPLE, SRC_HARDWARE, SRC_SOFTWARE_TEST,
};
use tapio_common::ebpf::{as_bytes, RecordHeader, TAPIO_ABI_VERSION};
use tapio_common::{Anomaly, Fact};
use tapio_wire::NodeSettings;

use super::window::NodeWindows;
use super::{Classifier, NodeClassifier};
use crate::clock::Clock;
use crate::fold::Candidate;
use crate::observers::Malformed;

const ALL: u32 = 0b1111;
const MS: u64 = 1_000_000;

fn settings() -> NodeSettings {
    NodeSettings {
        enabled: true,
        window_ms: 2000,
        cpu_stall_permille: 500,
        memory_pressure_permille: 400,
        ipc_min_permille: 300,
    }
}

/// Rates per second of CPU time: cycles, instructions, frontend, backend.
#[derive(Clone, Copy)]
struct Rates([u64; EVENTS]);

const HEALTHY: Rates = Rates([2_000_000_000, 3_000_000_000, 200_000_000, 300_000_000]);
const LOW_IPC: Rates = Rates([2_000_000_000, 400_000_000, 200_000_000, 300_000_000]);
const MEM_BOUND: Rates = Rates([2_000_000_000, 1_600_000_000, 100_000_000, 1_200_000_000]);
const IDLE: Rates = Rates([1_000_000, 100_000, 0, 0]);

/// A recorded node: cumulative counters per CPU, snapshots every 500 ms.
struct Feed {
    now_ms: u64,
    source: u32,
    mask: u32,
    cpus: Vec<u32>,
    ev: Vec<[NodeCounter; EVENTS]>,
    w: NodeWindows,
    out: Vec<Candidate>,
}

impl Feed {
    fn new(s: NodeSettings) -> Feed {
        Feed::with(s, SRC_HARDWARE, ALL, 2)
    }

    fn with(s: NodeSettings, source: u32, mask: u32, ncpu: u32) -> Feed {
        let mut f = Feed {
            now_ms: 1_000,
            source,
            mask,
            cpus: (0..ncpu).collect(),
            ev: vec![[NodeCounter::default(); EVENTS]; ncpu as usize],
            w: NodeWindows::new(s, 7),
            out: Vec::new(),
        };
        f.snap_all();
        f
    }

    fn sample(&self, cpu: u32) -> NodeSample {
        let mut s = NodeSample {
            cpu,
            source: self.source,
            event_mask: self.mask,
            read_mask: self.mask,
            ev: self.ev[cpu as usize],
            ..NodeSample::default()
        };
        s.hdr.kind = REC_SAMPLE;
        s
    }

    fn snap(&mut self, cpu: u32) {
        let s = self.sample(cpu);
        self.w.sample(&s, self.now_ms * MS, &mut self.out);
    }

    fn snap_all(&mut self) {
        for cpu in self.cpus.clone() {
            self.snap(cpu);
        }
    }

    /// Advances `ms` on the listed CPUs at `r`, counting `running` permille
    /// of the time (multiplexing), then snapshots them and ticks.
    fn run_on(&mut self, cpus: &[u32], ms: u64, r: Rates, running: u64) {
        self.now_ms += ms;
        for &cpu in cpus {
            for slot in 0..EVENTS {
                let c = &mut self.ev[cpu as usize][slot];
                let counted = r.0[slot] * ms / 1000 * running / 1000;
                c.counter = c.counter.wrapping_add(counted);
                c.enabled_ns += ms * MS;
                c.running_ns += ms * MS * running / 1000;
            }
            self.snap(cpu);
        }
        self.w.tick(self.now_ms * MS, &mut self.out);
    }

    fn run(&mut self, secs: u64, r: Rates) {
        for _ in 0..secs * 2 {
            let cpus = self.cpus.clone();
            self.run_on(&cpus, 500, r, 1000);
        }
    }

    fn of(&self, a: Anomaly) -> Vec<&Candidate> {
        self.out.iter().filter(|c| c.anomaly == a).collect()
    }
}

fn fact(c: &Candidate, k: &str) -> Fact {
    c.key
        .get(k)
        .or_else(|| c.detail.get(k))
        .unwrap_or_else(|| panic!("fact {k} missing: {c:?}"))
        .clone()
}

fn num(c: &Candidate, k: &str) -> u64 {
    match fact(c, k) {
        Fact::U64(v) => v,
        other => panic!("{k} is {other:?}"),
    }
}

#[test]
fn steady_healthy_node_emits_nothing() {
    let mut f = Feed::new(settings());
    f.run(20, HEALTHY);
    assert!(f.out.is_empty(), "{:#?}", f.out);
}

#[test]
fn ipc_drop_is_one_occurrence_per_episode_with_the_window_counts() {
    let mut f = Feed::new(settings());
    f.run(4, HEALTHY);
    f.run(8, LOW_IPC);
    f.run(4, HEALTHY);
    f.run(4, LOW_IPC);
    let ipc = f.of(Anomaly::IpcDegradation);
    assert_eq!(ipc.len(), 2, "one per episode, not per window: {ipc:#?}");
    let c = ipc[0];
    // A full 2 s window on 2 CPUs: 4 intervals of 500 ms each.
    assert_eq!(num(c, "cpus"), 2);
    assert_eq!(num(c, "window_ms"), 2000);
    assert_eq!(num(c, "covered_ns"), 4_000 * MS);
    assert_eq!(num(c, "cycles"), 8_000_000_000);
    assert_eq!(num(c, "instructions"), 1_600_000_000);
    assert_eq!(num(c, "value_permille"), 200);
    assert_eq!(num(c, "threshold_permille"), 300);
    assert_eq!(fact(c, "ratio"), Fact::Str("instructions/cycles".into()));
    assert_eq!(fact(c, "counter_source"), Fact::Str("hardware".into()));
    assert_eq!(fact(c, "multiplexed"), Fact::Bool(false));
    assert_eq!(c.generation, 7);
    assert!(!c.fold);
    assert!(f.of(Anomaly::CpuStall).is_empty());
    assert!(f.of(Anomaly::MemoryPressure).is_empty());
}

#[test]
fn memory_bound_window_raises_memory_pressure_and_cpu_stall_once() {
    let mut f = Feed::new(settings());
    f.run(4, HEALTHY);
    f.run(10, MEM_BOUND);
    let mem = f.of(Anomaly::MemoryPressure);
    assert_eq!(mem.len(), 1, "{mem:#?}");
    assert_eq!(num(mem[0], "value_permille"), 600);
    assert_eq!(num(mem[0], "stalled_cycles_backend"), 4_800_000_000);
    let stall = f.of(Anomaly::CpuStall);
    assert_eq!(stall.len(), 1);
    // The larger end (backend) bounds the stalled cycles from below.
    assert_eq!(
        fact(stall[0], "ratio"),
        Fact::Str("stalled_cycles_backend/cycles".into())
    );
    assert_eq!(num(stall[0], "value_permille"), 600);
    assert!(f.of(Anomaly::IpcDegradation).is_empty(), "IPC 0.8 is fine");
}

#[test]
fn counter_wrap_is_a_delta_not_a_reset() {
    let mut f = Feed::new(settings());
    for cpu in 0..2 {
        f.ev[cpu][EV_CYCLES].counter = u64::MAX - 100;
        f.ev[cpu][EV_INSTRUCTIONS].counter = u64::MAX - 5;
    }
    f.snap_all();
    f.run(6, LOW_IPC);
    let ipc = f.of(Anomaly::IpcDegradation);
    assert_eq!(ipc.len(), 1);
    assert_eq!(num(ipc[0], "resets"), 0);
    assert_eq!(num(ipc[0], "value_permille"), 200);
}

#[test]
fn counter_reset_drops_the_interval_and_says_so() {
    let mut f = Feed::new(settings());
    f.run(1, LOW_IPC);
    f.run_on(&[0], 500, LOW_IPC, 1000);
    // CPU 1's counters restart from zero (event re-created).
    f.ev[1] = [NodeCounter::default(); EVENTS];
    f.snap(1);
    f.run(3, LOW_IPC);
    let ipc = f.of(Anomaly::IpcDegradation);
    assert_eq!(ipc.len(), 1);
    assert_eq!(num(ipc[0], "resets"), 1);
    assert_eq!(
        num(ipc[0], "value_permille"),
        200,
        "no garbage delta summed"
    );
}

#[test]
fn multiplexed_counts_are_scaled_and_marked() {
    let mut f = Feed::new(settings());
    for _ in 0..12 {
        f.run_on(&[0, 1], 500, LOW_IPC, 500);
    }
    let ipc = f.of(Anomaly::IpcDegradation);
    assert_eq!(ipc.len(), 1);
    let c = ipc[0];
    assert_eq!(fact(c, "multiplexed"), Fact::Bool(true));
    assert_eq!(num(c, "min_running_permille"), 500);
    assert_eq!(num(c, "cycles"), 8_000_000_000, "scaled back to full time");
    assert!(c.summary.contains("multiplexed"), "{}", c.summary);
}

#[test]
fn event_that_never_ran_drops_the_interval() {
    let mut f = Feed::new(settings());
    for _ in 0..12 {
        f.run_on(&[0, 1], 500, LOW_IPC, 0);
    }
    assert!(f.out.is_empty(), "nothing to judge: {:#?}", f.out);
    assert!(f.w.quality().dropped_intervals > 0);
}

#[test]
fn hotplug_gap_is_not_attributed_to_any_window() {
    let mut f = Feed::new(settings());
    f.run(2, LOW_IPC); // episode opens: 1 occurrence
                       // CPU 1 goes offline for 3 s: only CPU 0 reports.
    for _ in 0..6 {
        f.run_on(&[0], 500, HEALTHY, 1000);
    }
    // CPU 1 back; both low again: a new episode.
    f.ev[1][EV_CYCLES].counter += 999_999_999_999; // counted while unseen
    f.run(6, LOW_IPC);
    let ipc = f.of(Anomaly::IpcDegradation);
    assert_eq!(ipc.len(), 2, "{ipc:#?}");
    let second = ipc[1];
    assert_eq!(num(second, "value_permille"), 200, "gap delta not summed");
    assert_eq!(f.w.totals().gaps, 1);
}

#[test]
fn missing_cpu_is_reported_in_the_window() {
    let mut f = Feed::new(settings());
    f.run(1, HEALTHY);
    for _ in 0..8 {
        f.run_on(&[0], 500, LOW_IPC, 1000);
    }
    let ipc = f.of(Anomaly::IpcDegradation);
    assert_eq!(ipc.len(), 1);
    assert_eq!(num(ipc[0], "cpus"), 1);
    assert_eq!(num(ipc[0], "cpus_missing"), 1);
}

#[test]
fn zero_thresholds_are_inert() {
    let mut s = settings();
    s.cpu_stall_permille = 0;
    s.memory_pressure_permille = 0;
    s.ipc_min_permille = 0;
    let mut f = Feed::new(s);
    f.run(10, MEM_BOUND);
    f.run(10, LOW_IPC);
    assert!(f.out.is_empty());
}

#[test]
fn idle_node_is_not_judged() {
    let mut f = Feed::new(settings());
    f.run(10, IDLE);
    assert!(f.out.is_empty(), "IPC of an idle node is noise");
}

#[test]
fn missing_stall_events_leave_ipc_judged_and_stalls_silent() {
    let mask = (1 << EV_CYCLES) | (1 << EV_INSTRUCTIONS);
    let mut f = Feed::with(settings(), SRC_HARDWARE, mask, 2);
    f.run(6, MEM_BOUND);
    f.run(6, LOW_IPC);
    assert!(f.of(Anomaly::CpuStall).is_empty());
    assert!(f.of(Anomaly::MemoryPressure).is_empty());
    let ipc = f.of(Anomaly::IpcDegradation);
    assert_eq!(ipc.len(), 1);
    assert!(ipc[0].detail.get("stalled_cycles_backend").is_none());
}

#[test]
fn frontend_only_judges_cpu_stall_but_not_memory_pressure() {
    let mask = (1 << EV_CYCLES) | (1 << EV_INSTRUCTIONS) | (1 << EV_STALL_FRONTEND);
    let mut f = Feed::with(settings(), SRC_HARDWARE, mask, 2);
    f.run(6, Rates([2_000_000_000, 2_000_000_000, 1_400_000_000, 0]));
    assert!(f.of(Anomaly::MemoryPressure).is_empty());
    let stall = f.of(Anomaly::CpuStall);
    assert_eq!(stall.len(), 1);
    assert_eq!(num(stall[0], "value_permille"), 700);
    let _ = EV_STALL_BACKEND;
}

#[test]
fn software_test_counts_never_carry_hardware_names() {
    let mut f = Feed::with(settings(), SRC_SOFTWARE_TEST, ALL, 2);
    f.run(6, LOW_IPC);
    let c = f.of(Anomaly::IpcDegradation)[0];
    assert_eq!(fact(c, "counter_source"), Fact::Str("software-test".into()));
    assert_eq!(
        fact(c, "ratio"),
        Fact::Str("context_switches/cpu_clock_ns".into())
    );
    for hw in [
        "cycles",
        "instructions",
        "stalled_cycles_frontend",
        "stalled_cycles_backend",
    ] {
        assert!(c.detail.get(hw).is_none(), "{hw} in software-test output");
    }
    assert!(c
        .summary
        .starts_with("[software-test counters, not hardware]"));
}

#[test]
fn new_config_restarts_the_window_and_the_episode_under_its_generation() {
    let mut f = Feed::new(settings());
    f.run(4, LOW_IPC);
    assert_eq!(f.of(Anomaly::IpcDegradation).len(), 1);
    f.w.configure(settings(), 8);
    f.run(4, LOW_IPC);
    let ipc = f.of(Anomaly::IpcDegradation);
    assert_eq!(ipc.len(), 2);
    assert_eq!(ipc[1].generation, 8);
}

fn record(s: &NodeSample) -> Vec<u8> {
    as_bytes(s).to_vec()
}

#[test]
fn classifier_parses_samples_and_rejects_malformed_ones() {
    let mut c = NodeClassifier::default();
    let clock = Clock::fixed(0);
    let mut out = Vec::new();
    let mut s = NodeSample {
        hdr: RecordHeader {
            kind: REC_SAMPLE,
            size: u16::try_from(std::mem::size_of::<NodeSample>()).unwrap(),
            abi_version: TAPIO_ABI_VERSION,
            ts_boot_ns: 1,
            generation: 1,
        },
        event_mask: ALL,
        read_mask: ALL,
        source: SRC_HARDWARE,
        ..NodeSample::default()
    };
    assert_eq!(c.record(&record(&s), &clock, &mut out), Ok(()));
    let bytes = record(&s);
    assert!(matches!(
        c.record(&bytes[..100], &clock, &mut out),
        Err(Malformed::Truncated { .. })
    ));
    s.hdr.size = 120;
    assert!(matches!(
        c.record(&record(&s), &clock, &mut out),
        Err(Malformed::SizeMismatch { .. })
    ));
    s.hdr.size = 136;
    s.hdr.kind = 9;
    assert!(matches!(
        c.record(&record(&s), &clock, &mut out),
        Err(Malformed::UnknownKind { kind: 9 })
    ));
}

#[test]
fn carrier_is_inert_when_disabled_and_stamps_the_generation() {
    let mut cfg = tapio_wire::CompiledConfig::production_default();
    let on = super::carrier(&cfg, 5).unwrap();
    assert_eq!(on.len(), 16);
    assert_eq!(&on[0..4], &TAPIO_ABI_VERSION.to_ne_bytes());
    assert_eq!(&on[4..8], &1u32.to_ne_bytes());
    assert_eq!(&on[8..16], &5u64.to_ne_bytes());
    cfg.node.enabled = false;
    let off = super::carrier(&cfg, 5).unwrap();
    assert_eq!(&off[4..8], &0u32.to_ne_bytes());
}
