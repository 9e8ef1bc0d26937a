//! Cross-field checks on the merged config: pairs of settings that are
//! each in range but contradict each other.

use tapio_wire::CompiledConfig;

use crate::problem::{Location, ProblemKind, Problems};

use super::Walk;

/// Cross-field checks on the merged config; reported at the override that
/// made the pair inconsistent. A check is skipped when one of its fields
/// already has a problem (its override was not applied, so the pair would be
/// judged on a value the author did not write).
pub(crate) fn consistency(c: &CompiledConfig, w: &Walk, problems: &mut Problems) {
    let at = |fields: &[&str]| -> (Location, String) {
        fields
            .iter()
            .find_map(|f| w.locations.get(*f).map(|l| (*l, (*f).to_owned())))
            .unwrap_or_default()
    };
    let clean = |fields: &[&str], problems: &Problems| fields.iter().all(|f| !problems.touches(f));
    let storage = [
        "spec.storage.latencyCriticalUs",
        "spec.storage.latencyWarningUs",
    ];
    if clean(&storage, problems) && c.storage.latency_critical_us < c.storage.latency_warning_us {
        let (l, p) = at(&storage);
        problems.push(
            l,
            p,
            ProblemKind::Inconsistent {
                message: format!(
                    "latencyCriticalUs ({}) is below latencyWarningUs ({})",
                    c.storage.latency_critical_us, c.storage.latency_warning_us
                ),
            },
        );
    }
    let rtt = [
        "spec.network.rttReportIntervalMs",
        "spec.network.rttSampleIntervalMs",
    ];
    if clean(&rtt, problems) && c.network.rtt_report_interval_ms < c.network.rtt_sample_interval_ms
    {
        let (l, p) = at(&rtt);
        problems.push(
            l,
            p,
            ProblemKind::Inconsistent {
                message: format!(
                    "rttReportIntervalMs ({}) is shorter than rttSampleIntervalMs ({})",
                    c.network.rtt_report_interval_ms, c.network.rtt_sample_interval_ms
                ),
            },
        );
    }
    let exits = [
        "spec.container.fatalSignals",
        "spec.container.exitCodes",
        "spec.container.abnormalExit",
    ];
    if clean(&exits, problems)
        && c.container.abnormal_exit
        && c.container.fatal_signals.is_empty()
        && c.container.exit_codes.is_empty()
    {
        let (l, p) = at(&exits);
        problems.push(
            l,
            p,
            ProblemKind::Inconsistent {
                message: "abnormalExit is enabled but no fatal signal or exit code is selected"
                    .into(),
            },
        );
    }
}
