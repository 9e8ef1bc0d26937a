//! Metric families of the agent: every counter of
//! [`Counters::snapshot`](crate::counters::Counters::snapshot), the observer
//! states and the applied config generation, read at scrape time.
//!
//! The counters are not copied into `prometheus-client` metric objects: the
//! atomics in [`Counters`](crate::counters::Counters) stay the single
//! source, and a scrape renders the same snapshot the status file carries,
//! so the two never disagree. A counter added to the snapshot shows up here
//! without a change to this file (its help text falls back to a generic
//! one; a unit test catches that).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use tapio_common::status::ObserverState;

use crate::state::AgentState;

/// Longest observer reason exported as a label value, in bytes.
pub const MAX_REASON_LABEL: usize = 256;

/// Help text of every counter family the agent exports.
const HELP: &[(&str, &str)] = &[
    (
        "tapio_events_total",
        "Ring-buffer records drained by userspace",
    ),
    (
        "tapio_anomalies_total",
        "Occurrences emitted, by observer and type",
    ),
    (
        "tapio_facts_total",
        "Kernel facts folded into emitted occurrences, by observer and type",
    ),
    (
        "tapio_lost_events_total",
        "eBPF ring-buffer reserve failures counted in the kernel",
    ),
    (
        "tapio_malformed_events_total",
        "Malformed or truncated records dropped by userspace",
    ),
    (
        "tapio_abi_mismatch_total",
        "Kernel-side runs that stayed silent because the config ABI version did not match",
    ),
    (
        "tapio_correlation_drops_total",
        "Storage completions dropped because they could not be uniquely correlated",
    ),
    (
        "tapio_fact_drops_total",
        "Kernel facts that produced no occurrence, by reason",
    ),
    (
        "tapio_drain_cap_total",
        "Drain passes that stopped at the per-tick record cap",
    ),
    (
        "tapio_sink_writes_total",
        "Sink batch write attempts, by sink and result",
    ),
    (
        "tapio_sink_drops_total",
        "Occurrences a sink dropped, by sink and reason",
    ),
    (
        "tapio_sink_delivered_total",
        "Occurrences a sink wrote, by sink",
    ),
    (
        "tapio_controller_send_failures_total",
        "Failed hello, heartbeat or event sends to the controller",
    ),
    (
        "tapio_config_fetch_total",
        "Controller config poll outcomes",
    ),
    (
        "tapio_cgroup_lookups_total",
        "Attribution cache lookups of an occurrence's cgroup id, by result",
    ),
    (
        "tapio_cgroup_resolutions_total",
        "Cgroup ids resolved to a path off the drain path, by result",
    ),
    (
        "tapio_config_errors_total",
        "Configs an observer's carrier failed to take",
    ),
    (
        "tapio_metrics_requests_total",
        "Requests to this metrics endpoint, by result",
    ),
];

fn help(name: &str) -> &'static str {
    HELP.iter()
        .find(|(n, _)| *n == name)
        .map_or("Tapio agent counter", |(_, h)| h)
}

/// Results of a metrics request, as labels of
/// `tapio_metrics_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    /// Served.
    Ok,
    /// Not an HTTP/1.x request.
    BadRequest,
    /// The head passed the size cap.
    TooLarge,
    /// A path other than `/metrics`.
    NotFound,
    /// A method other than GET or HEAD.
    MethodNotAllowed,
    /// The head did not arrive before the read deadline.
    Timeout,
    /// Turned away at the connection limit.
    Busy,
}

impl RequestResult {
    const ALL: [RequestResult; 7] = [
        RequestResult::Ok,
        RequestResult::BadRequest,
        RequestResult::TooLarge,
        RequestResult::NotFound,
        RequestResult::MethodNotAllowed,
        RequestResult::Timeout,
        RequestResult::Busy,
    ];

    /// Label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestResult::Ok => "ok",
            RequestResult::BadRequest => "bad_request",
            RequestResult::TooLarge => "too_large",
            RequestResult::NotFound => "not_found",
            RequestResult::MethodNotAllowed => "method_not_allowed",
            RequestResult::Timeout => "timeout",
            RequestResult::Busy => "busy",
        }
    }
}

/// Counts of the endpoint's own requests.
#[derive(Debug, Default)]
pub struct RequestStats([AtomicU64; RequestResult::ALL.len()]);

impl RequestStats {
    /// Counts one request.
    pub fn count(&self, r: RequestResult) {
        self.0[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests with result `r` so far.
    #[must_use]
    pub fn get(&self, r: RequestResult) -> u64 {
        self.0[r as usize].load(Ordering::Relaxed)
    }
}

/// Renders the agent state as metric families on each scrape.
#[derive(Clone)]
pub struct AgentCollector {
    state: Arc<AgentState>,
    requests: Arc<RequestStats>,
}

impl std::fmt::Debug for AgentCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCollector").finish_non_exhaustive()
    }
}

impl AgentCollector {
    /// A collector over `state`, exporting `requests` too.
    #[must_use]
    pub fn new(state: Arc<AgentState>, requests: Arc<RequestStats>) -> Self {
        AgentCollector { state, requests }
    }
}

type Labels<'a> = Vec<(&'a str, &'a str)>;

/// Splits a snapshot key `name{k="v",...}` into its name and labels.
/// `None` for a key that is not of that shape.
pub(crate) fn split_key(key: &str) -> Option<(&str, Labels<'_>)> {
    let Some((name, rest)) = key.split_once('{') else {
        return Some((key, Vec::new()));
    };
    let inner = rest.strip_suffix('}')?;
    let mut labels = Vec::new();
    for pair in inner.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=')?;
        let v = v.strip_prefix('"')?.strip_suffix('"')?;
        labels.push((k, v));
    }
    Some((name, labels))
}

const STATES: [(ObserverState, &str); 4] = [
    (ObserverState::Running, "running"),
    (ObserverState::Disabled, "disabled"),
    (ObserverState::Unavailable, "unavailable"),
    (ObserverState::Failed, "failed"),
];

/// `s` cut to at most `max` bytes on a char boundary.
fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Collector for AgentCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.state.counters.snapshot();
        let mut samples: Vec<(&str, Labels<'_>, u64)> = snapshot
            .iter()
            .filter_map(|(key, v)| split_key(key).map(|(name, labels)| (name, labels, *v)))
            .collect();
        samples.extend(RequestResult::ALL.iter().map(|r| {
            (
                "tapio_metrics_requests_total",
                vec![("result", r.as_str())],
                self.requests.get(*r),
            )
        }));
        // Snapshot keys are sorted and `{` sorts after every name character,
        // so one family's samples are contiguous.
        for family in samples.chunk_by(|a, b| a.0 == b.0) {
            let name = family[0].0;
            // prometheus-client appends `_total` to counter samples itself.
            let base = name.strip_suffix("_total").unwrap_or(name);
            let mut m = enc.encode_descriptor(base, help(name), None, MetricType::Counter)?;
            for (_, labels, v) in family {
                ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
            }
        }

        let observers = self.state.observers();
        let mut m = enc.encode_descriptor(
            "tapio_observer_state",
            "Observer state: 1 for the current state of each observer, 0 for the others",
            None,
            MetricType::Gauge,
        )?;
        for o in &observers {
            for (st, label) in STATES {
                let labels = [("observer", o.name.as_str()), ("state", label)];
                ConstGauge::new(i64::from(o.state == st)).encode(m.encode_family(&labels)?)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "tapio_observer_reason",
            "Why an observer is not running (or is degraded), one series per observer with a reason",
            None,
            MetricType::Info,
        )?;
        for o in &observers {
            if let Some(reason) = &o.reason {
                let labels = [
                    ("observer", o.name.as_str()),
                    ("reason", clip(reason, MAX_REASON_LABEL)),
                ];
                m.encode_info(&labels)?;
            }
        }
        let applied = self.state.applied();
        let m = enc.encode_descriptor(
            "tapio_config_generation",
            "Generation of the applied config; 0 while unconfigured",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(applied.generation).encode(m)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;
    use prometheus_client::registry::Registry;
    use tapio_common::{Anomaly, Observer};

    fn state() -> Arc<AgentState> {
        Arc::new(AgentState::new(Arc::new(Counters::default())))
    }

    fn render(state: &Arc<AgentState>) -> String {
        let mut r = Registry::default();
        r.register_collector(Box::new(AgentCollector::new(
            Arc::clone(state),
            Arc::new(RequestStats::default()),
        )));
        let mut s = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut s, &r).unwrap();
        s
    }

    #[test]
    fn every_snapshot_key_splits_and_has_help() {
        let c = Counters::default();
        for key in c.snapshot().keys() {
            let (name, labels) = split_key(key).unwrap_or_else(|| panic!("{key}"));
            assert!(
                name.starts_with("tapio_") && name.ends_with("_total"),
                "{key}"
            );
            assert!(!labels.is_empty(), "{key}");
            assert_ne!(help(name), "Tapio agent counter", "no help text for {name}");
        }
    }

    #[test]
    fn counters_render_with_their_labels() {
        let s = state();
        s.counters.event(Observer::Network);
        s.counters.anomaly(Anomaly::ConnectionRefused, 3);
        let text = render(&s);
        assert!(
            text.contains("tapio_events_total{observer=\"network\"} 1\n"),
            "{text}"
        );
        assert!(text.contains(
            "tapio_anomalies_total{observer=\"network\",type=\"kernel.network.connection_refused\"} 1\n"
        ));
        assert!(text.contains("# TYPE tapio_events_total counter\n"));
        assert!(text.contains("tapio_metrics_requests_total{result=\"busy\"} 0\n"));
    }

    #[test]
    fn observer_state_is_one_hot_with_the_reason_escaped() {
        let s = state();
        s.set_observer(Observer::Network, ObserverState::Running, None);
        s.set_observer(
            Observer::Node,
            ObserverState::Unavailable,
            Some("perf_event_open: \"cycles\" ENOENT\nno PMU".into()),
        );
        let text = render(&s);
        assert!(text.contains("tapio_observer_state{observer=\"network\",state=\"running\"} 1\n"));
        assert!(text.contains("tapio_observer_state{observer=\"network\",state=\"failed\"} 0\n"));
        assert!(text.contains("tapio_observer_state{observer=\"node\",state=\"unavailable\"} 1\n"));
        assert!(
            text.contains(
                "tapio_observer_reason_info{observer=\"node\",reason=\"perf_event_open: \\\"cycles\\\" ENOENT\\nno PMU\"} 1\n"
            ),
            "{text}"
        );
        assert!(!text.contains("tapio_observer_reason_info{observer=\"network\""));
    }

    #[test]
    fn each_family_is_described_once() {
        let text = render(&state());
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let mut unique = types.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(types.len(), unique.len(), "{text}");
        assert!(types.len() >= 16, "{types:?}");
    }

    #[test]
    fn long_reasons_are_clipped_on_a_char_boundary() {
        let r = "é".repeat(200);
        let c = clip(&r, MAX_REASON_LABEL);
        assert!(c.len() <= MAX_REASON_LABEL && c.len() >= MAX_REASON_LABEL - 1);
        assert_eq!(clip("short", 10), "short");
    }
}
