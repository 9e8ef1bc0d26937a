//! Validation and compilation of EvidenceProfile documents.

use tapio_profile::{compile, validate, ProfileError, MAX_BYTES};
use tapio_wire::CompiledConfig;

const HEAD: &str = "apiVersion: tapio.dev/v1\nkind: EvidenceProfile\nmetadata:\n  name: test\nspec:\n  base: production-default\n";

/// (path, line, column, message) of every problem.
fn problems(src: &str) -> Vec<(String, usize, usize, String)> {
    match validate(src) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .problems()
            .iter()
            .map(|p| {
                (
                    p.path.clone(),
                    p.location.line,
                    p.location.column,
                    p.kind.to_string(),
                )
            })
            .collect(),
    }
}

fn with_spec(body: &str) -> String {
    format!("{HEAD}{body}")
}

fn compiled(src: &str) -> CompiledConfig {
    match validate(src) {
        Ok(v) => compile(&v),
        Err(e) => panic!("expected a valid profile, got {e}\n{src}"),
    }
}

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

#[test]
fn exit_code_in_report_and_ignore_is_inconsistent() {
    let p = problems(&with_spec(
        "  container:\n    exitCodes:\n      report: [1, 137]\n      ignore: [137]\n",
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "spec.container.exitCodes.report");
    assert_eq!((p[0].1, p[0].2), (9, 15));
    assert!(p[0].3.contains("137"), "{}", p[0].3);
}

/// Every integer field: (section, field, min, max, companion settings that
/// keep a boundary value consistent).
const RANGES: &[(&str, &str, u64, u64, &str)] = &[
    ("", "foldWindowMs", 0, 3_600_000, ""),
    ("network", "retransmitThreshold", 1, 1_000_000, ""),
    ("network", "retransmitWindowMs", 100, 3_600_000, ""),
    (
        "network",
        "rttSampleIntervalMs",
        10,
        60_000,
        "rttReportIntervalMs: 3600000",
    ),
    ("network", "rttRatioPermille", 1_001, 100_000, ""),
    ("network", "rttFloorUs", 1, 60_000_000, ""),
    ("network", "rttMinSamples", 1, 10_000, ""),
    (
        "network",
        "rttReportIntervalMs",
        1_000,
        3_600_000,
        "rttSampleIntervalMs: 10",
    ),
    (
        "storage",
        "latencyWarningUs",
        1,
        600_000_000,
        "latencyCriticalUs: 600000000",
    ),
    (
        "storage",
        "latencyCriticalUs",
        1,
        600_000_000,
        "latencyWarningUs: 1",
    ),
    ("node", "windowMs", 100, 600_000, ""),
    ("node", "cpuStallPermille", 1, 1_000, ""),
    ("node", "memoryPressurePermille", 1, 1_000, ""),
    ("node", "ipcMinPermille", 1, 10_000, ""),
];

fn doc_with(section: &str, field: &str, value: &str, companion: &str) -> (String, String) {
    if section.is_empty() {
        (
            with_spec(&format!("  {field}: {value}\n")),
            format!("spec.{field}"),
        )
    } else {
        let extra = if companion.is_empty() {
            String::new()
        } else {
            format!("    {companion}\n")
        };
        (
            with_spec(&format!("  {section}:\n    {field}: {value}\n{extra}")),
            format!("spec.{section}.{field}"),
        )
    }
}

#[test]
fn every_range_boundary_is_inclusive_and_one_past_is_rejected() {
    for &(section, field, min, max, companion) in RANGES {
        for ok in [min, max] {
            let (src, _) = doc_with(section, field, &ok.to_string(), companion);
            let p = problems(&src);
            assert!(p.is_empty(), "{section}.{field}={ok} rejected: {p:?}");
        }
        let mut bad = vec![max + 1, u64::MAX];
        if min > 0 {
            bad.push(min - 1);
        }
        for v in bad {
            let (src, path) = doc_with(section, field, &v.to_string(), companion);
            let p = problems(&src);
            assert_eq!(p.len(), 1, "{section}.{field}={v}: {p:?}");
            assert_eq!(p[0].0, path);
            assert_eq!(p[0].3, format!("{v} is out of range {min}..={max}"));
        }
        let (src, path) = doc_with(section, field, "-1", companion);
        assert_eq!(problems(&src)[0].0, path, "negative {field}");
    }
}

#[test]
fn signal_and_exit_code_ranges() {
    assert!(problems(&with_spec("  container:\n    fatalSignals: [1, 64]\n")).is_empty());
    let p = problems(&with_spec(
        "  container:\n    fatalSignals: [0, 65, SIGNOPE, 11, 11]\n",
    ));
    let paths: Vec<&str> = p.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.container.fatalSignals[0]",
            "spec.container.fatalSignals[1]",
            "spec.container.fatalSignals[2]",
            "spec.container.fatalSignals[4]"
        ]
    );
    assert!(p[3].3.contains("duplicate"), "{:?}", p[3]);
    assert!(problems(&with_spec(
        "  container:\n    exitCodes: {report: [1, 255]}\n"
    ))
    .is_empty());
    let p = problems(&with_spec(
        "  container:\n    exitCodes: {report: [0, 256], ignore: [-3]}\n",
    ));
    assert_eq!(p.len(), 3, "{p:?}");
}

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

#[test]
fn inconsistent_rtt_intervals_and_empty_abnormal_exit() {
    let p = problems(&with_spec(
        "  network:\n    rttSampleIntervalMs: 5000\n    rttReportIntervalMs: 1000\n",
    ));
    assert_eq!(p.len(), 1);
    assert!(p[0].3.contains("shorter"), "{p:?}");
    let p = problems(&with_spec("  container:\n    fatalSignals: []\n"));
    assert_eq!(p.len(), 1);
    assert!(p[0].3.contains("abnormalExit"), "{p:?}");
    // Turning abnormalExit off makes an empty selection fine.
    assert!(problems(&with_spec(
        "  container:\n    abnormalExit: false\n    fatalSignals: []\n"
    ))
    .is_empty());
}

#[test]
fn aliases_are_rejected_not_expanded() {
    let src = with_spec("  network: &n\n    enabled: true\n  storage: *n\n");
    let p = problems(&src);
    let msgs: Vec<&str> = p.iter().map(|x| x.3.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "YAML anchors are not supported in profiles",
            "YAML aliases are not supported in profiles"
        ]
    );
    assert_eq!((p[1].1, p[1].2), (9, 12));
}

#[test]
fn billion_laughs_is_cheap() {
    let mut src = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..10 {
        let prev = (b'a' + i - 1) as char;
        let cur = (b'a' + i) as char;
        src.push_str(&format!("{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
    }
    let started = std::time::Instant::now();
    let p = problems(&src);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(p.iter().any(|x| x.3.contains("aliases")));
}

#[test]
fn tags_are_rejected() {
    let p = problems(&with_spec("  foldWindowMs: !!int 5\n"));
    assert_eq!(p[0].3, "YAML tags are not supported in profiles");
}

#[test]
fn duplicate_keys_are_rejected_with_both_lines() {
    let src = with_spec("  storage:\n    latencyWarningUs: 1000\n    latencyWarningUs: 2000\n");
    let p = problems(&src);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "spec.storage.latencyWarningUs");
    assert_eq!((p[0].1, p[0].2), (9, 5));
    assert_eq!(p[0].3, "duplicate key `latencyWarningUs` (first at line 8)");
    let p = problems("apiVersion: tapio.dev/v1\napiVersion: tapio.dev/v1\nkind: EvidenceProfile\nmetadata: {name: a}\nspec: {}\n");
    assert_eq!(p[0].0, "apiVersion");
}

#[test]
fn complex_keys_are_rejected() {
    let p = problems(&with_spec("  ? [a, b]\n  : 1\n"));
    assert_eq!(p[0].3, "YAML complex keys are not supported in profiles");
}

#[test]
fn syntax_errors_carry_their_position() {
    let p = problems("apiVersion: tapio.dev/v1\nkind: [EvidenceProfile\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].3.starts_with("YAML syntax error"), "{p:?}");
    assert!(p[0].1 >= 2);
}

#[test]
fn empty_and_multi_document_inputs() {
    assert_eq!(problems("")[0].3, "empty document");
    assert_eq!(problems("# only a comment\n")[0].3, "empty document");
    let two = format!("{HEAD}---\n{HEAD}");
    assert!(problems(&two).iter().any(|p| p.3.contains("more than one")));
    assert!(!problems("just a string").is_empty());
}

#[test]
fn huge_documents_are_refused_unparsed() {
    let src = format!("{HEAD}{}", "# padding\n".repeat(MAX_BYTES / 10 + 1));
    assert!(matches!(validate(&src), Err(ProfileError::TooLarge { .. })));
    let big = "x".repeat(64 << 20);
    let started = std::time::Instant::now();
    assert!(matches!(validate(&big), Err(ProfileError::TooLarge { size, .. }) if size == 64 << 20));
    // Refused by its length, without scanning it.
    assert!(started.elapsed() < std::time::Duration::from_millis(50));
}

#[test]
fn many_problems_are_capped_and_counted() {
    let mut body = String::from("  network:\n");
    for i in 0..1500 {
        body.push_str(&format!("    f{i}: 1\n"));
    }
    let src = with_spec(&body);
    assert!(src.len() < MAX_BYTES);
    let p = problems(&src);
    assert_eq!(p.len(), 1001);
    assert_eq!(p[1000].3, "500 more problems not shown");
}

#[test]
fn deep_nesting_is_reported_once_without_recursion() {
    // Flow nesting: the parser's own limit (255) or ours, whichever first.
    let deep_flow = with_spec(&format!(
        "  network: {}{}\n",
        "[".repeat(200),
        "]".repeat(200)
    ));
    let p = problems(&deep_flow);
    assert_eq!(
        p.iter().filter(|x| x.3.contains("nesting deeper")).count(),
        1,
        "{p:?}"
    );
    // Block nesting.
    let mut block = String::from(HEAD);
    for depth in 0..40 {
        block.push_str(&" ".repeat(2 + depth * 2));
        block.push_str(&format!("k{depth}:\n"));
    }
    block.push_str(&" ".repeat(82));
    block.push_str("v\n");
    let p = problems(&block);
    assert!(p.iter().any(|x| x.3.contains("nesting deeper")), "{p:?}");
    // Unbalanced flow nesting beyond the parser's limit is a syntax error, not a crash.
    let p = problems(&"[".repeat(10_000));
    assert!(!p.is_empty());
}
