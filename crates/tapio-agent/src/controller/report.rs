//! What the agent tells the controller about itself: counter sums and
//! observer reports, for hello and heartbeat.

use tapio_wire::ObserverReport;

use crate::state::AgentState;

/// The heartbeat counters: sums over the labelled agent counters.
#[must_use]
pub fn wire_counters(state: &AgentState) -> tapio_wire::Counters {
    let snap = state.counters.snapshot();
    let sum = |prefix: &str| -> u64 {
        snap.iter()
            .filter(|(k, _)| k.starts_with(prefix) && k[prefix.len()..].starts_with('{'))
            .map(|(_, v)| *v)
            .sum()
    };
    tapio_wire::Counters {
        events: sum("tapio_events_total"),
        anomalies: sum("tapio_anomalies_total"),
        lost: sum("tapio_lost_events_total"),
        malformed: sum("tapio_malformed_events_total"),
        correlation_drops: sum("tapio_correlation_drops_total"),
        sink_drops: sum("tapio_sink_drops_total"),
        send_failures: sum("tapio_controller_send_failures_total"),
    }
}

/// Observer reports for hello and heartbeat: a report says
/// `config_applied` only when the observer's carrier took the config the
/// agent reports as applied.
#[must_use]
pub fn observer_reports(state: &AgentState) -> Vec<ObserverReport> {
    let configured = !state.applied().hash.is_empty();
    state
        .observers()
        .iter()
        .map(|s| {
            let mut r = ObserverReport::from(s);
            r.config_applied = configured && state.observer_config_ok(&s.name);
            r
        })
        .collect()
}
