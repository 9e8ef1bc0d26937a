//! Observer report: one observer's state as an agent tells the controller.

use serde::{Deserialize, Serialize};
use tapio_common::status::{ObserverState as LocalState, ObserverStatus};

/// State of one observer on the wire. A state this version does not know
/// (sent by a newer agent) reads as [`ObserverState::Unknown`] instead of
/// failing the whole heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObserverState {
    /// Loaded, attached, draining.
    Running,
    /// Turned off by config.
    Disabled,
    /// Cannot run on this host; the report's `reason` says why.
    Unavailable,
    /// Was running and failed; the report's `reason` says why.
    Failed,
    /// A state newer than this reader.
    #[serde(other)]
    Unknown,
}

impl From<LocalState> for ObserverState {
    fn from(s: LocalState) -> Self {
        match s {
            LocalState::Running => ObserverState::Running,
            LocalState::Disabled => ObserverState::Disabled,
            LocalState::Unavailable => ObserverState::Unavailable,
            LocalState::Failed => ObserverState::Failed,
        }
    }
}

/// One observer's state and, when it is not running, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObserverReport {
    /// Observer name (`network`, `container`, `storage`, `node`).
    pub name: String,
    /// State.
    pub state: ObserverState,
    /// Why it is not running (errno and what failed); absent when running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// False when the observer's config carrier did not take the applied
    /// config (C4); absent reads as true.
    #[serde(default = "yes")]
    pub config_applied: bool,
}

fn yes() -> bool {
    true
}

impl From<&ObserverStatus> for ObserverReport {
    fn from(s: &ObserverStatus) -> Self {
        ObserverReport {
            name: s.name.clone(),
            state: s.state.into(),
            reason: s.reason.clone(),
            config_applied: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_state_from_a_newer_agent_reads_as_unknown() {
        let r: ObserverReport =
            serde_json::from_str(r#"{"name":"gpu","state":"hibernating"}"#).unwrap();
        assert_eq!(r.state, ObserverState::Unknown);
        assert!(r.config_applied);
        assert_eq!(r.reason, None);
    }

    #[test]
    fn converts_the_local_status() {
        let s = ObserverStatus {
            name: "node".into(),
            state: LocalState::Unavailable,
            reason: Some("perf_event_open(cycles): ENOENT".into()),
        };
        let r = ObserverReport::from(&s);
        assert_eq!(r.state, ObserverState::Unavailable);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["state"], "unavailable");
        assert_eq!(v["reason"], "perf_event_open(cycles): ENOENT");
    }
}
