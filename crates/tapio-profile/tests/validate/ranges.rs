//! Numeric limits: every integer field's inclusive range, and the ranges of
//! signal numbers and exit codes.

use super::{problems, with_spec};

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
