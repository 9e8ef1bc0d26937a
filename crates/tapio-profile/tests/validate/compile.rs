//! Valid profiles: what they compile to, with and without overrides.

use tapio_wire::CompiledConfig;

use super::{compiled, with_spec};

#[test]
fn production_default_without_overrides_compiles_to_the_built_in() {
    let src = "apiVersion: tapio.dev/v1\nkind: EvidenceProfile\nmetadata:\n  name: production-default\nspec:\n  base: production-default\n";
    let c = compiled(src);
    assert_eq!(c, CompiledConfig::production_default());
    assert_eq!(
        c.content_hash(),
        CompiledConfig::production_default().content_hash()
    );
}

#[test]
fn base_defaults_to_production_default_and_empty_spec_is_fine() {
    let src = "apiVersion: tapio.dev/v1\nkind: EvidenceProfile\nmetadata: {name: production-default}\nspec: {}\n";
    assert_eq!(compiled(src), CompiledConfig::production_default());
}

#[test]
fn overrides_land_in_their_fields() {
    let c = compiled(&with_spec(
        "  foldWindowMs: 0
  network:
    enabled: false
    connectFailures: false
    retransmits: false
    rtt: false
    retransmitThreshold: 7
    retransmitWindowMs: 5000
    rttSampleIntervalMs: 500
    rttRatioPermille: 2000
    rttFloorUs: 5000
    rttMinSamples: 9
    rttReportIntervalMs: 60000
  container:
    enabled: true
    oomKill: false
    abnormalExit: true
    fatalSignals: [SIGSEGV, ABRT, 9]
    exitCodes: {report: [3, 1, 2]}
  storage:
    enabled: true
    ioErrors: false
    latency: true
    latencyWarningUs: 20000
    latencyCriticalUs: 20000
  node:
    enabled: false
    windowMs: 5000
    cpuStallPermille: 600
    memoryPressurePermille: 700
    ipcMinPermille: 1500
",
    ));
    assert_eq!(c.profile, "test");
    assert_eq!(c.fold_window_ms, 0);
    let n = &c.network;
    assert!(!n.enabled && !n.connect_failures && !n.retransmits && !n.rtt);
    assert_eq!(
        (
            n.retransmit_threshold,
            n.retransmit_window_ms,
            n.rtt_sample_interval_ms
        ),
        (7, 5000, 500)
    );
    assert_eq!(
        (
            n.rtt_ratio_permille,
            n.rtt_floor_us,
            n.rtt_min_samples,
            n.rtt_report_interval_ms
        ),
        (2000, 5000, 9, 60000)
    );
    assert!(!c.container.oom_kill && c.container.abnormal_exit);
    assert_eq!(c.container.fatal_signals, vec![6, 9, 11]);
    assert_eq!(c.container.exit_codes, vec![1, 2, 3]);
    assert!(!c.storage.io_errors);
    assert_eq!(
        (c.storage.latency_warning_us, c.storage.latency_critical_us),
        (20000, 20000)
    );
    assert!(!c.node.enabled);
    assert_eq!(
        (
            c.node.window_ms,
            c.node.cpu_stall_permille,
            c.node.memory_pressure_permille,
            c.node.ipc_min_permille
        ),
        (5000, 600, 700, 1500)
    );
}

#[test]
fn exit_codes_all_minus_ignored() {
    let c = compiled(&with_spec(
        "  container:\n    exitCodes: {report: all, ignore: [1, 2]}\n",
    ));
    assert_eq!(c.container.exit_codes.len(), 253);
    assert_eq!(c.container.exit_codes[0], 3);
    assert_eq!(c.container.exit_codes[252], 255);
}
