//! Observer health verdicts: one verdict per observer and the rule that
//! produced it.
//!
//! Rules, first match wins:
//!
//! | rule                 | verdict       | when                                                     |
//! |----------------------|---------------|----------------------------------------------------------|
//! | `agent_gone`         | `unknown`     | the process the status file names is not running         |
//! | `agent_status_stale` | `unknown`     | the agent's status file is older than 2 minutes          |
//! | `agent_failed`       | `failed`      | the agent reports the observer failed                    |
//! | `agent_unavailable`  | `unavailable` | the agent reports it cannot run on this host             |
//! | `agent_disabled`     | `disabled`    | the agent reports it turned off by config                |
//! | `critical_5m`        | `critical`    | at least 1 critical fact in the last 5 minutes           |
//! | `warning_15m`        | `degraded`    | at least 1 warning or critical fact in the last 15 min   |
//! | `quiet_15m`          | `healthy`     | otherwise                                                |
//!
//! Facts are counted by `data.count`. Info-severity facts never change a
//! verdict.

use serde::Serialize;
use tapio_common::status::{AgentStatus, ObserverState};
use tapio_common::time::parse_rfc3339_utc;
use tapio_common::Observer;

use crate::query::Tally;
use crate::window::{format_age, NS_PER_SEC};

/// A status file older than this no longer describes a running agent.
pub const STALE_AFTER_NS: u64 = 120 * NS_PER_SEC;

/// An observer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No warning or critical facts recently.
    Healthy,
    /// Warning or critical facts in the last 15 minutes.
    Degraded,
    /// Critical facts in the last 5 minutes.
    Critical,
    /// Turned off by config.
    Disabled,
    /// Cannot run on this host.
    Unavailable,
    /// Failed while running.
    Failed,
    /// The agent's status is stale: its observers may not be observing.
    Unknown,
}

impl Verdict {
    /// Lowercase name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Critical => "critical",
            Verdict::Disabled => "disabled",
            Verdict::Unavailable => "unavailable",
            Verdict::Failed => "failed",
            Verdict::Unknown => "unknown",
        }
    }
}

/// A verdict and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// The rule's name (see the module table).
    pub rule: &'static str,
    /// The rule's evidence, in one line.
    pub detail: String,
}

/// Age of the status file at `now_ns`, when its `updated_at` parses.
#[must_use]
pub fn status_age_ns(agent: &AgentStatus, now_ns: u64) -> Option<u64> {
    parse_rfc3339_utc(&agent.updated_at).map(|t| now_ns.saturating_sub(t))
}

/// Judges one observer from its tally and, when present, the agent status.
#[must_use]
pub fn judge(
    observer: Observer,
    tally: &Tally,
    agent: Option<&AgentStatus>,
    now_ns: u64,
) -> Judgement {
    let j = |verdict, rule, detail: String| Judgement {
        verdict,
        rule,
        detail,
    };
    if let Some(agent) = agent {
        let age = status_age_ns(agent, now_ns);
        if age.is_none_or(|a| a > STALE_AFTER_NS) {
            let when = age.map_or_else(
                || "at an unreadable time".to_owned(),
                |a| format!("{} ago", format_age(a)),
            );
            return j(
                Verdict::Unknown,
                "agent_status_stale",
                format!("agent status last updated {when} (stale after 2m)"),
            );
        }
        if let Some(st) = agent.observers.iter().find(|s| s.name == observer.as_str()) {
            let reason = st.reason.as_deref().unwrap_or("no reason given");
            match st.state {
                ObserverState::Failed => {
                    return j(
                        Verdict::Failed,
                        "agent_failed",
                        format!("agent reports failed: {reason}"),
                    )
                }
                ObserverState::Unavailable => {
                    return j(
                        Verdict::Unavailable,
                        "agent_unavailable",
                        format!("agent reports unavailable: {reason}"),
                    )
                }
                ObserverState::Disabled => {
                    return j(
                        Verdict::Disabled,
                        "agent_disabled",
                        "agent reports disabled by config".to_owned(),
                    )
                }
                ObserverState::Running => {}
            }
        }
    }
    let critical = tally.last_5m[2];
    if critical > 0 {
        return j(
            Verdict::Critical,
            "critical_5m",
            format!("{critical} critical in the last 5m (threshold 1)"),
        );
    }
    let serious = tally.last_15m[1].saturating_add(tally.last_15m[2]);
    if serious > 0 {
        return j(
            Verdict::Degraded,
            "warning_15m",
            format!("{serious} warning or critical in the last 15m (threshold 1)"),
        );
    }
    j(
        Verdict::Healthy,
        "quiet_15m",
        "no warning or critical in the last 15m".to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapio_common::status::ObserverStatus;
    use tapio_common::time::format_rfc3339_millis;

    const NOW: u64 = 1_775_226_181_000_000_000;

    fn agent(updated_ns: u64, state: ObserverState) -> AgentStatus {
        AgentStatus {
            agent_version: "0.1.0".into(),
            pid: 1,
            pid_start_ticks: None,
            started_at: format_rfc3339_millis(updated_ns),
            updated_at: format_rfc3339_millis(updated_ns),
            config_generation: 1,
            config_hash: String::new(),
            observers: vec![ObserverStatus {
                name: "node".into(),
                state,
                reason: Some("perf_event_open: ENOENT (no hardware PMU)".into()),
            }],
            counters: Default::default(),
        }
    }

    #[test]
    fn quiet_observer_is_healthy() {
        let j = judge(Observer::Network, &Tally::default(), None, NOW);
        assert_eq!((j.verdict, j.rule), (Verdict::Healthy, "quiet_15m"));
    }

    #[test]
    fn critical_beats_warning_and_info_is_ignored() {
        let mut t = Tally {
            last_15m: [50, 2, 0],
            ..Tally::default()
        };
        assert_eq!(
            judge(Observer::Storage, &t, None, NOW).verdict,
            Verdict::Degraded
        );
        t.last_5m = [0, 0, 3];
        let j = judge(Observer::Storage, &t, None, NOW);
        assert_eq!(j.verdict, Verdict::Critical);
        assert_eq!(j.detail, "3 critical in the last 5m (threshold 1)");
        let t = Tally {
            last_15m: [50, 0, 0],
            last_5m: [9, 0, 0],
            ..Tally::default()
        };
        assert_eq!(
            judge(Observer::Storage, &t, None, NOW).verdict,
            Verdict::Healthy
        );
    }

    #[test]
    fn agent_state_wins_over_occurrences() {
        let a = agent(NOW - NS_PER_SEC, ObserverState::Unavailable);
        let t = Tally {
            last_5m: [0, 0, 1],
            ..Tally::default()
        };
        let j = judge(Observer::Node, &t, Some(&a), NOW);
        assert_eq!(j.verdict, Verdict::Unavailable);
        assert_eq!(
            j.detail,
            "agent reports unavailable: perf_event_open: ENOENT (no hardware PMU)"
        );
        // Observers the status file does not list fall through to the occurrence rules.
        assert_eq!(
            judge(Observer::Network, &t, Some(&a), NOW).verdict,
            Verdict::Critical
        );
    }

    #[test]
    fn stale_status_gives_unknown() {
        let a = agent(NOW - 600 * NS_PER_SEC, ObserverState::Running);
        let j = judge(Observer::Network, &Tally::default(), Some(&a), NOW);
        assert_eq!(
            (j.verdict, j.rule),
            (Verdict::Unknown, "agent_status_stale")
        );
        assert_eq!(
            j.detail,
            "agent status last updated 10m ago (stale after 2m)"
        );
    }
}
