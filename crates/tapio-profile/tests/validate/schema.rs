//! The closed v1 schema: unknown fields and observers, wrong versions,
//! kinds and types, missing required fields, and a document with problems
//! of every sort reported in one run.

use tapio_profile::validate;

use super::{problems, with_spec};

#[test]
fn unknown_fields_are_reported_at_every_level() {
    let cases: &[(&str, &str)] = &[
        ("apiVersion: tapio.dev/v1\nkind: EvidenceProfile\nmetadata: {name: a}\nspec: {}\nextra: 1\n", "extra"),
        ("apiVersion: tapio.dev/v1\nkind: EvidenceProfile\nmetadata: {name: a, labels: {}}\nspec: {}\n", "metadata.labels"),
        (&with_spec("  foldWindow: 5\n"), "spec.foldWindow"),
        (&with_spec("  network:\n    enable: true\n"), "spec.network.enable"),
        (&with_spec("  container:\n    oom: true\n"), "spec.container.oom"),
        (&with_spec("  container:\n    exitCodes: {reprot: [1]}\n"), "spec.container.exitCodes.reprot"),
        (&with_spec("  storage:\n    latencyWarningMs: 5\n"), "spec.storage.latencyWarningMs"),
        (&with_spec("  node:\n    window: 5\n"), "spec.node.window"),
    ];
    for (src, path) in cases {
        let p = problems(src);
        assert_eq!(p.len(), 1, "{path}: {p:?}");
        assert_eq!(p[0].0, *path);
        assert!(p[0].3.starts_with("unknown field"), "{}", p[0].3);
    }
}

#[test]
fn unknown_observer_is_named() {
    let p = problems(&with_spec("  gpu:\n    enabled: true\n"));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0, "spec.gpu");
    assert_eq!((p[0].1, p[0].2), (7, 3));
    assert!(p[0].3.starts_with("unknown observer `gpu`"));
}

#[test]
fn wrong_api_version_kind_and_types() {
    let src = "apiVersion: tapio.dev/v2\nkind: Profile\nmetadata:\n  name: Bad_Name\nspec:\n  base: staging\n  network:\n    enabled: yes\n    retransmitThreshold: \"20\"\n    rttMinSamples: 1.5\n  storage: []\n";
    let p = problems(src);
    let got: Vec<(&str, usize)> = p.iter().map(|x| (x.0.as_str(), x.1)).collect();
    assert_eq!(
        got,
        [
            ("apiVersion", 1),
            ("kind", 2),
            ("metadata.name", 4),
            ("spec.base", 6),
            ("spec.network.enabled", 8),
            ("spec.network.retransmitThreshold", 9),
            ("spec.network.rttMinSamples", 10),
            ("spec.storage", 11),
        ],
        "{p:#?}"
    );
}

#[test]
fn missing_required_fields() {
    let p = problems("kind: EvidenceProfile\nmetadata: {}\n");
    let msgs: Vec<&str> = p.iter().map(|x| x.3.as_str()).collect();
    assert!(
        msgs.contains(&"missing required field `apiVersion`"),
        "{msgs:?}"
    );
    assert!(msgs.contains(&"missing required field `spec`"), "{msgs:?}");
    assert!(msgs.contains(&"missing required field `name`"), "{msgs:?}");
}

#[test]
fn a_multi_error_document_reports_every_problem_in_one_run() {
    let src = with_spec(
        "  network:
    retransmitThreshold: 0
    bogus: 1
  storage:
    latencyWarningUs: 500000
    latencyCriticalUs: 400000
  node:
    cpuStallPermille: 1001
  container:
    fatalSignals: [SEGV, SEGV]
  disk: {}
",
    );
    let err = validate(&src).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("6 problems"), "{text}");
    let lines: Vec<&str> = text.lines().skip(1).map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "8:26: `spec.network.retransmitThreshold`: 0 is out of range 1..=1000000",
            "9:5: `spec.network.bogus`: unknown field `bogus` (expected one of: enabled, connectFailures, retransmits, rtt, retransmitThreshold, retransmitWindowMs, rttSampleIntervalMs, rttRatioPermille, rttFloorUs, rttMinSamples, rttReportIntervalMs, connectGiveUpFloorMs)",
            "12:24: `spec.storage.latencyCriticalUs`: latencyCriticalUs (400000) is below latencyWarningUs (500000)",
            "14:23: `spec.node.cpuStallPermille`: 1001 is out of range 1..=1000",
            "16:26: `spec.container.fatalSignals[1]`: duplicate entry `SEGV`",
            "17:3: `spec.disk`: unknown observer `disk` (expected one of: network, container, storage, node)",
        ]
    );
}
