//! Cross-field consistency: settings each in range that contradict each
//! other.

use super::{problems, with_spec};

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
