//! Occurrence queries: filters and per-observer / per-type tallies.
//!
//! Every "how many" counts `data.count` (a folded follow-up occurrence
//! stands for that many facts), never files.

use std::collections::BTreeMap;

use tapio_common::{Observer, OccurrenceRecord, Severity};

use crate::store::FileRef;
use crate::window::NS_PER_SEC;

/// Minutes in the per-minute picture of the last hour.
pub const MINUTES: usize = 60;

/// How many facts an occurrence stands for: `data.count`, at least 1.
#[must_use]
pub fn count(rec: &OccurrenceRecord) -> u64 {
    rec.data
        .get("count")
        .and_then(serde_json::Value::as_u64)
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// Time of the fact: the record's own time, else the file name's.
#[must_use]
pub fn time_ns(rec: &OccurrenceRecord, file: &FileRef) -> u64 {
    rec.unix_ns()
        .unwrap_or_else(|| file.millis.saturating_mul(1_000_000))
}

/// The observer named by a `kernel.<observer>.<anomaly>` type.
#[must_use]
pub fn observer_of(kind: &str) -> Option<Observer> {
    kind.strip_prefix("kernel.")?
        .split('.')
        .next()
        .and_then(Observer::parse)
}

/// Index of a severity in `[info, warning, critical]` arrays.
#[must_use]
pub const fn severity_index(s: Severity) -> usize {
    match s {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Critical => 2,
    }
}

/// Which occurrences a query wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Earliest fact time, Unix nanoseconds.
    pub since_ns: u64,
    /// Observers to keep; empty keeps all.
    pub observers: Vec<Observer>,
    /// Lowest severity to keep.
    pub min_severity: Option<Severity>,
    /// Exact `type` to keep.
    pub kind: Option<String>,
    /// Exact `data.pod_uid` to keep.
    pub pod_uid: Option<String>,
    /// `data.container_id` to keep: the full id or a prefix of it (the
    /// 12-digit short form).
    pub container_id: Option<String>,
}

/// A string fact of `rec`.
#[must_use]
pub fn str_fact<'a>(rec: &'a OccurrenceRecord, key: &str) -> Option<&'a str> {
    rec.data.get(key).and_then(serde_json::Value::as_str)
}

impl Filter {
    /// Earliest file-name time that can hold a match.
    #[must_use]
    pub fn min_millis(&self) -> u64 {
        self.since_ns / 1_000_000
    }

    /// True when `rec`, at time `t_ns`, is wanted.
    #[must_use]
    pub fn matches(&self, rec: &OccurrenceRecord, t_ns: u64) -> bool {
        t_ns >= self.since_ns
            && self.min_severity.is_none_or(|s| rec.severity >= s)
            && self.kind.as_deref().is_none_or(|k| rec.kind == k)
            && self
                .pod_uid
                .as_deref()
                .is_none_or(|p| str_fact(rec, "pod_uid") == Some(p))
            && self.container_id.as_deref().is_none_or(|c| {
                !c.is_empty() && str_fact(rec, "container_id").is_some_and(|id| id.starts_with(c))
            })
            && (self.observers.is_empty()
                || observer_of(&rec.kind).is_some_and(|o| self.observers.contains(&o)))
    }
}

/// Occurrences of one observer or type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Facts (sum of `data.count`).
    pub count: u64,
    /// Occurrence files.
    pub files: u64,
    /// Time of the newest fact, Unix nanoseconds.
    pub last_seen_ns: Option<u64>,
    /// Facts per severity (`[info, warning, critical]`).
    pub by_severity: [u64; 3],
    /// Facts per minute over the last hour, oldest minute first.
    pub minutes: [u64; MINUTES],
    /// Facts per severity in the last 5 minutes.
    pub last_5m: [u64; 3],
    /// Facts per severity in the last 15 minutes.
    pub last_15m: [u64; 3],
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            count: 0,
            files: 0,
            last_seen_ns: None,
            by_severity: [0; 3],
            minutes: [0; MINUTES],
            last_5m: [0; 3],
            last_15m: [0; 3],
        }
    }
}

impl Tally {
    fn add(&mut self, rec: &OccurrenceRecord, t_ns: u64, now_ns: u64) {
        let n = count(rec);
        let sev = severity_index(rec.severity);
        self.count = self.count.saturating_add(n);
        self.files = self.files.saturating_add(1);
        self.by_severity[sev] = self.by_severity[sev].saturating_add(n);
        self.last_seen_ns = self.last_seen_ns.max(Some(t_ns));
        if t_ns > now_ns {
            return;
        }
        let age = now_ns - t_ns;
        let minute = age / (60 * NS_PER_SEC);
        if let Ok(m) = usize::try_from(minute) {
            if m < MINUTES {
                self.minutes[MINUTES - 1 - m] = self.minutes[MINUTES - 1 - m].saturating_add(n);
            }
        }
        if age < 5 * 60 * NS_PER_SEC {
            self.last_5m[sev] = self.last_5m[sev].saturating_add(n);
        }
        if age < 15 * 60 * NS_PER_SEC {
            self.last_15m[sev] = self.last_15m[sev].saturating_add(n);
        }
    }

    fn merge(&mut self, o: &Tally) {
        self.count = self.count.saturating_add(o.count);
        self.files = self.files.saturating_add(o.files);
        self.last_seen_ns = self.last_seen_ns.max(o.last_seen_ns);
        for i in 0..3 {
            self.by_severity[i] = self.by_severity[i].saturating_add(o.by_severity[i]);
            self.last_5m[i] = self.last_5m[i].saturating_add(o.last_5m[i]);
            self.last_15m[i] = self.last_15m[i].saturating_add(o.last_15m[i]);
        }
        for (a, b) in self.minutes.iter_mut().zip(o.minutes.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// Facts in the last hour.
    #[must_use]
    pub fn last_hour(&self) -> u64 {
        self.minutes.iter().fold(0, |a, &b| a.saturating_add(b))
    }
}

/// Tallies per observer and per type, judged at one instant.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The instant ages are measured from.
    pub now_ns: u64,
    /// Per observer, in [`Observer::ALL`] order.
    pub observers: [Tally; 4],
    /// Types under no known observer.
    pub other: Tally,
    /// Per `type`.
    pub by_type: BTreeMap<String, Tally>,
    /// Per `data.pod_uid`; occurrences without one under `""`.
    pub by_pod: BTreeMap<String, Tally>,
}

impl Summary {
    /// Adds a record that passed the filter.
    pub fn add(&mut self, rec: &OccurrenceRecord, t_ns: u64) {
        let now = self.now_ns;
        match observer_of(&rec.kind) {
            Some(o) => self.observers[observer_index(o)].add(rec, t_ns, now),
            None => self.other.add(rec, t_ns, now),
        }
        self.by_type
            .entry(rec.kind.clone())
            .or_default()
            .add(rec, t_ns, now);
        self.by_pod
            .entry(str_fact(rec, "pod_uid").unwrap_or_default().to_owned())
            .or_default()
            .add(rec, t_ns, now);
    }

    /// Adds another summary taken at the same instant.
    pub fn merge(&mut self, o: &Summary) {
        for (a, b) in self.observers.iter_mut().zip(o.observers.iter()) {
            a.merge(b);
        }
        self.other.merge(&o.other);
        for (k, t) in &o.by_type {
            self.by_type.entry(k.clone()).or_default().merge(t);
        }
        for (k, t) in &o.by_pod {
            self.by_pod.entry(k.clone()).or_default().merge(t);
        }
    }

    /// All observers together.
    #[must_use]
    pub fn total(&self) -> Tally {
        let mut t = self.other.clone();
        for o in &self.observers {
            t.merge(o);
        }
        t
    }
}

/// Position of an observer in [`Observer::ALL`].
#[must_use]
pub fn observer_index(o: Observer) -> usize {
    Observer::ALL.iter().position(|x| *x == o).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: &str, severity: &str, t_ns: u64, count: Option<u64>) -> OccurrenceRecord {
        let mut data = serde_json::json!({"config_generation": 1, "timestamp_ns": t_ns});
        if let Some(c) = count {
            data["count"] = c.into();
        }
        serde_json::from_value(serde_json::json!({
            "id": "01JA1B2C3D4E5F6G7H8J9K0M1N", "timestamp": "2026-04-03T14:23:01.042Z",
            "source": "tapio", "type": kind, "protocol_version": "1.0",
            "severity": severity, "outcome": "failure",
            "error": {"code": "X", "message": ""}, "data": data,
        }))
        .unwrap()
    }

    const NOW: u64 = 1_775_226_181_000_000_000;

    /// Two files with `count: u64::MAX` overflowed the tallies (a panic in
    /// debug builds, a wrapped total in release); found by fuzzing.
    #[test]
    fn huge_counts_saturate_instead_of_overflowing() {
        let mut s = Summary {
            now_ns: NOW,
            ..Summary::default()
        };
        let r = rec(
            "kernel.storage.io_error",
            "critical",
            NOW - NS_PER_SEC,
            Some(u64::MAX),
        );
        s.add(&r, NOW - NS_PER_SEC);
        s.add(&r, NOW - NS_PER_SEC);
        let t = &s.by_type["kernel.storage.io_error"];
        assert_eq!(
            (t.count, t.files, t.last_5m[2], t.last_hour()),
            (u64::MAX, 2, u64::MAX, u64::MAX)
        );
        let mut m = s.clone();
        m.merge(&s);
        assert_eq!(m.observers[2].count, u64::MAX);
    }

    #[test]
    fn folded_occurrences_count_their_facts() {
        let mut s = Summary {
            now_ns: NOW,
            ..Summary::default()
        };
        s.add(
            &rec(
                "kernel.network.retransmit_spike",
                "warning",
                NOW - NS_PER_SEC,
                Some(7),
            ),
            NOW - NS_PER_SEC,
        );
        s.add(
            &rec(
                "kernel.network.connection_refused",
                "warning",
                NOW - 90 * NS_PER_SEC,
                None,
            ),
            NOW - 90 * NS_PER_SEC,
        );
        let net = &s.observers[0];
        assert_eq!((net.count, net.files), (8, 2));
        assert_eq!(net.minutes[59], 7);
        assert_eq!(net.minutes[58], 1);
        assert_eq!(net.last_5m, [0, 8, 0]);
        assert_eq!(s.by_type["kernel.network.retransmit_spike"].count, 7);
    }

    #[test]
    fn facts_older_than_an_hour_stay_out_of_the_minutes() {
        let mut s = Summary {
            now_ns: NOW,
            ..Summary::default()
        };
        let t = NOW - 3601 * NS_PER_SEC;
        s.add(&rec("kernel.storage.io_error", "critical", t, None), t);
        assert_eq!(s.observers[2].count, 1);
        assert_eq!(s.observers[2].last_hour(), 0);
        assert_eq!(s.observers[2].last_15m, [0, 0, 0]);
    }

    #[test]
    fn filter_applies_every_criterion() {
        let r = rec("kernel.container.oom_kill", "critical", NOW, None);
        let mut f = Filter {
            since_ns: NOW,
            ..Filter::default()
        };
        assert!(f.matches(&r, NOW));
        assert!(!f.matches(&r, NOW - 1));
        f.observers = vec![Observer::Network];
        assert!(!f.matches(&r, NOW));
        f.observers = vec![Observer::Container];
        f.min_severity = Some(Severity::Critical);
        f.kind = Some("kernel.container.oom_kill".into());
        assert!(f.matches(&r, NOW));
        f.kind = Some("kernel.container.abnormal_exit".into());
        assert!(!f.matches(&r, NOW));
    }
}
