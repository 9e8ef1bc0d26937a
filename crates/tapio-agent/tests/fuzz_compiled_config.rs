//! Fuzz target: CompiledConfig JSON as the agent takes it (a local
//! `compiled_config` file, or the `GET /v1/agents/config` answer of a
//! controller), through every observer's kernel carrier and userspace
//! classifier. `scripts/fuzz.sh` runs it with a budget.
//!
//! Oracles: no panic; a decoded config re-encodes to bytes that decode to
//! the same config and the same content hash; a carrier is the same for
//! the same config.

use std::time::Instant;

use tapio_agent::observers::{carrier_bytes, classifier, Classifier};
use tapio_common::Observer;
use tapio_fuzz::{Fuzzer, Verdict, JSON_TOKENS};
use tapio_wire::{CompiledConfig, ConfigResponse};

const KEYS: &[&str] = &[
    "profile",
    "fold_window_ms",
    "network",
    "container",
    "storage",
    "node",
    "enabled",
    "connect_failures",
    "retransmits",
    "rtt",
    "retransmit_threshold",
    "retransmit_window_ms",
    "rtt_sample_interval_ms",
    "rtt_ratio_permille",
    "rtt_floor_us",
    "rtt_min_samples",
    "rtt_report_interval_ms",
    "oom_kill",
    "abnormal_exit",
    "fatal_signals",
    "exit_codes",
    "io_errors",
    "latency",
    "latency_warning_us",
    "latency_critical_us",
    "window_ms",
    "cpu_stall_permille",
    "memory_pressure_permille",
    "ipc_min_permille",
    "generation",
    "hash",
    "config",
];

fn seeds() -> Vec<Vec<u8>> {
    let d = CompiledConfig::production_default();
    let mut quiet = d.clone();
    quiet.profile = "quiet".into();
    quiet.fold_window_ms = 0;
    quiet.network.enabled = false;
    quiet.container.fatal_signals = vec![1, 9, 64];
    quiet.container.exit_codes = vec![1, 2, 255];
    quiet.storage.latency_warning_us = 0;
    quiet.storage.latency_critical_us = u32::MAX;
    quiet.node.window_ms = 1;
    quiet.node.ipc_min_permille = u32::MAX;
    let mut edge = d.clone();
    edge.network.retransmit_threshold = u32::MAX;
    edge.network.retransmit_window_ms = 0;
    edge.network.rtt_ratio_permille = 0;
    edge.network.rtt_min_samples = 0;
    edge.network.rtt_sample_interval_ms = u32::MAX;
    let mut v = Vec::new();
    for c in [d, quiet, edge] {
        v.push(c.canonical_bytes());
        v.push(serde_json::to_vec_pretty(&ConfigResponse::new(7, c)).unwrap());
    }
    v
}

/// Applies `c` to every carrier and to long-lived classifiers, as a
/// running agent does on SIGHUP or a controller update.
fn exercise(classifiers: &mut [Box<dyn Classifier>], c: &CompiledConfig, generation: u64) {
    for o in Observer::ALL {
        let a = carrier_bytes(o, c, generation);
        assert_eq!(a, carrier_bytes(o, c, generation), "{o:?}");
    }
    let mut out = Vec::new();
    for cl in classifiers.iter_mut() {
        cl.configure(c, generation);
        cl.tick(u64::MAX, &mut out);
    }
    let back: CompiledConfig = serde_json::from_slice(&c.canonical_bytes()).unwrap();
    assert_eq!(&back, c);
    assert_eq!(back.content_hash(), c.content_hash());
}

#[test]
fn fuzz_compiled_config() {
    let mut f = Fuzzer::new("compiled_config", seeds(), 1);
    f.json_keys = Some(KEYS.to_vec());
    // A real CompiledConfig is ~1.3 KB (pretty: ~2 KB); larger inputs only
    // slow the run down (size limits are the HTTP client's, fuzzed there).
    f.max_len = 4 * 1024;
    f.tokens = [JSON_TOKENS, &[b"true", b"-1"]].concat();
    let started = Instant::now();
    let mut classifiers: Vec<Box<dyn Classifier>> =
        Observer::ALL.into_iter().filter_map(classifier).collect();
    f.run(|input| {
        if let Ok(c) = serde_json::from_slice::<CompiledConfig>(input) {
            exercise(&mut classifiers, &c, 1);
            return Verdict::keep("config");
        }
        match serde_json::from_slice::<ConfigResponse>(input) {
            Ok(r) => {
                let _ = r.hash_matches();
                exercise(&mut classifiers, &r.config, r.generation);
                Verdict::keep("config_response")
            }
            Err(e) if e.is_syntax() || e.is_eof() => Verdict::drop("not_json"),
            Err(_) => Verdict::drop("not_a_config"),
        }
    });
    assert!(started.elapsed().as_secs() < 3600);
}
