//! Reports: what `status`, `recent`, `health` and the MCP tools compute
//! from a data directory, as serialisable values shared by the CLI's
//! `--json` output and the MCP server's structured content.

use serde::Serialize;
use tapio_common::status::AgentStatus;
use tapio_common::time::format_rfc3339_millis;
use tapio_common::{Observer, OccurrenceRecord};

use crate::health::{judge, status_age_ns, Judgement, Verdict, STALE_AFTER_NS};
use crate::query::{observer_index, Filter, Summary, Tally, MINUTES};
use crate::store::{AgentInfo, DataDir, FileRef, Skipped, StoreError};
use crate::window::NS_PER_SEC;

/// Files looked at and files skipped by one report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Occurrence-named files in the window plus foreign `.json` names.
    pub considered: u64,
    /// Unusable files, by reason (foreign names included).
    pub skipped: Skipped,
}

impl Serialize for Coverage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("files_considered", &self.considered)?;
        m.serialize_entry("files_skipped", &self.skipped.total())?;
        for (k, v) in self.skipped.reasons() {
            m.serialize_entry(k, &v)?;
        }
        m.end()
    }
}

/// The agent part of a report.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    /// `present`, `stale`, `gone` (the process the file names is not
    /// running), `absent` or `unusable`.
    pub status_file: &'static str,
    /// The file's contents when usable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AgentStatus>,
    /// Age of the file, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<u64>,
}

impl AgentView {
    fn new(info: AgentInfo, now_ns: u64) -> AgentView {
        match info {
            AgentInfo::Absent => AgentView {
                status_file: "absent",
                status: None,
                age_seconds: None,
            },
            AgentInfo::Unusable => AgentView {
                status_file: "unusable",
                status: None,
                age_seconds: None,
            },
            AgentInfo::Present(st) => {
                let age = status_age_ns(&st, now_ns);
                let stale = age.is_none_or(|a| a > STALE_AFTER_NS);
                let status_file = if agent_alive(&st) == Some(false) {
                    "gone"
                } else if stale {
                    "stale"
                } else {
                    "present"
                };
                AgentView {
                    status_file,
                    age_seconds: age.map(|a| a / NS_PER_SEC),
                    status: Some(*st),
                }
            }
        }
    }

    /// The agent's process is known to have ended.
    #[must_use]
    pub fn gone(&self) -> bool {
        self.status_file == "gone"
    }

    /// The verdict for every observer when the agent is gone.
    fn gone_judgement(&self) -> Judgement {
        let (pid, at) = self
            .status
            .as_ref()
            .map_or((0, ""), |s| (s.pid, s.updated_at.as_str()));
        Judgement {
            verdict: Verdict::Unknown,
            rule: "agent_gone",
            detail: format!("agent pid {pid} is not running (last status {at})"),
        }
    }

    /// The observer's state and reason as the agent reports them.
    #[must_use]
    pub fn observer_state(&self, o: Observer) -> (String, Option<String>) {
        if self.gone() {
            return ("unknown".to_owned(), Some("agent not running".to_owned()));
        }
        let found = self
            .status
            .as_ref()
            .and_then(|s| s.observers.iter().find(|x| x.name == o.as_str()));
        match found {
            Some(x) => {
                let state = serde_json::to_value(x.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                (state, x.reason.clone())
            }
            None => ("unknown".to_owned(), None),
        }
    }
}

/// Whether the process the status file names still runs: `Some(false)`
/// when its pid is gone or now belongs to another process (another start
/// time); `None` when the file does not say (older agents) or `/proc`
/// cannot tell (another pid namespace shows another process: see README).
fn agent_alive(st: &AgentStatus) -> Option<bool> {
    let want = st.pid_start_ticks?;
    match std::fs::read_to_string(format!("/proc/{}/stat", st.pid)) {
        Ok(text) => Some(tapio_common::status::stat_start_ticks(&text) == Some(want)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}

fn summarize(dir: &DataDir, files: &[FileRef], filter: &Filter, now_ns: u64) -> (Summary, Skipped) {
    let (parts, skipped) = dir.scan(files, |acc: &mut Summary, f, rec| {
        let t = crate::query::time_ns(&rec, f);
        if filter.matches(&rec, t) {
            acc.now_ns = now_ns;
            acc.add(&rec, t);
        }
    });
    let mut total = Summary {
        now_ns,
        ..Summary::default()
    };
    for p in &parts {
        total.merge(p);
    }
    (total, skipped)
}

fn listed(dir: &DataDir, min_millis: u64) -> Result<(Vec<FileRef>, Coverage), StoreError> {
    let (files, foreign) = dir.list(min_millis)?;
    let mut cov = Coverage {
        considered: files.len() as u64 + foreign,
        ..Coverage::default()
    };
    cov.skipped.foreign = foreign;
    Ok((files, cov))
}

/// One observer's line in `status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    /// Observer name, or `other` for types under no known observer.
    pub observer: String,
    /// State reported by the agent, `unknown` without a status file.
    pub state: String,
    /// The agent's reason for that state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Facts (sum of `data.count`).
    pub facts: u64,
    /// Occurrence files.
    pub occurrences: u64,
    /// Facts in the last hour.
    pub last_hour: u64,
    /// Newest fact, RFC 3339.
    pub last_seen: Option<String>,
    /// Newest fact, Unix ns (not serialised).
    #[serde(skip)]
    pub last_seen_ns: Option<u64>,
}

/// `tapio status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The data directory.
    pub data_dir: String,
    /// The instant of the report.
    pub now: String,
    /// The agent's status file.
    pub agent: AgentView,
    /// Per observer.
    pub observers: Vec<StatusRow>,
    /// All observers.
    pub total_facts: u64,
    /// All occurrence files used.
    pub total_occurrences: u64,
    /// Files looked at and skipped.
    pub files: Coverage,
    /// Per pod (`status --by pod`), most facts first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods: Option<Vec<PodRow>>,
}

/// One pod's line in `status --by pod`.
#[derive(Debug, Clone, Serialize)]
pub struct PodRow {
    /// `data.pod_uid`; `None` for occurrences that name no pod.
    pub pod_uid: Option<String>,
    /// Facts (sum of `data.count`).
    pub facts: u64,
    /// Occurrence files.
    pub occurrences: u64,
    /// Facts in the last hour.
    pub last_hour: u64,
    /// Newest fact, RFC 3339.
    pub last_seen: Option<String>,
}

fn pod_rows(by_pod: &std::collections::BTreeMap<String, Tally>) -> Vec<PodRow> {
    let mut rows: Vec<PodRow> = by_pod
        .iter()
        .map(|(uid, t)| PodRow {
            pod_uid: (!uid.is_empty()).then(|| uid.clone()),
            facts: t.count,
            occurrences: t.files,
            last_hour: t.last_hour(),
            last_seen: t.last_seen_ns.map(format_rfc3339_millis),
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.pod_uid.is_none(), std::cmp::Reverse(a.facts), &a.pod_uid).cmp(&(
            b.pod_uid.is_none(),
            std::cmp::Reverse(b.facts),
            &b.pod_uid,
        ))
    });
    rows
}

fn status_row(name: &str, state: (String, Option<String>), t: &Tally) -> StatusRow {
    StatusRow {
        observer: name.to_owned(),
        state: state.0,
        reason: state.1,
        facts: t.count,
        occurrences: t.files,
        last_hour: t.last_hour(),
        last_seen: t.last_seen_ns.map(format_rfc3339_millis),
        last_seen_ns: t.last_seen_ns,
    }
}

/// Counts every occurrence in the directory; `by_pod` adds the per-pod
/// rows.
///
/// # Errors
/// When the directory cannot be listed.
pub fn status(dir: &DataDir, now_ns: u64, by_pod: bool) -> Result<StatusReport, StoreError> {
    let (files, mut cov) = listed(dir, 0)?;
    let (sum, skipped) = summarize(dir, &files, &Filter::default(), now_ns);
    cov.skipped.merge(&skipped);
    let agent = AgentView::new(dir.agent(), now_ns);
    let mut observers: Vec<StatusRow> = Observer::ALL
        .iter()
        .map(|&o| {
            status_row(
                o.as_str(),
                agent.observer_state(o),
                &sum.observers[observer_index(o)],
            )
        })
        .collect();
    if sum.other.files > 0 {
        observers.push(status_row(
            "other",
            ("unknown".to_owned(), None),
            &sum.other,
        ));
    }
    let total = sum.total();
    Ok(StatusReport {
        data_dir: dir.path().display().to_string(),
        now: format_rfc3339_millis(now_ns),
        agent,
        observers,
        total_facts: total.count,
        total_occurrences: total.files,
        files: cov,
        pods: by_pod.then(|| pod_rows(&sum.by_pod)),
    })
}

/// One observer's line in `health`.
#[derive(Debug, Clone, Serialize)]
pub struct HealthRow {
    /// Observer name.
    pub observer: &'static str,
    /// Verdict, rule and evidence.
    #[serde(flatten)]
    pub judgement: Judgement,
    /// Facts in the last hour.
    pub last_hour: u64,
    /// Facts per minute over the last hour, oldest first (60 values).
    pub per_minute: Vec<u64>,
}

/// `tapio health`.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// The data directory.
    pub data_dir: String,
    /// The instant of the report.
    pub now: String,
    /// The agent's status file.
    pub agent: AgentView,
    /// Per observer.
    pub observers: Vec<HealthRow>,
    /// Files looked at and skipped.
    pub files: Coverage,
}

/// Judges each observer (or only `only`) over the last hour.
///
/// # Errors
/// When the directory cannot be listed.
pub fn health(
    dir: &DataDir,
    now_ns: u64,
    only: Option<Observer>,
) -> Result<HealthReport, StoreError> {
    let since_ns = now_ns.saturating_sub(MINUTES as u64 * 60 * NS_PER_SEC);
    let filter = Filter {
        since_ns,
        observers: only.into_iter().collect(),
        ..Filter::default()
    };
    let (files, mut cov) = listed(dir, filter.min_millis())?;
    let (sum, skipped) = summarize(dir, &files, &filter, now_ns);
    cov.skipped.merge(&skipped);
    let agent = AgentView::new(dir.agent(), now_ns);
    let observers = Observer::ALL
        .iter()
        .filter(|o| only.is_none_or(|x| x == **o))
        .map(|&o| {
            let t = &sum.observers[observer_index(o)];
            HealthRow {
                observer: o.as_str(),
                judgement: if agent.gone() {
                    agent.gone_judgement()
                } else {
                    judge(o, t, agent.status.as_ref(), now_ns)
                },
                last_hour: t.last_hour(),
                per_minute: t.minutes.to_vec(),
            }
        })
        .collect();
    Ok(HealthReport {
        data_dir: dir.path().display().to_string(),
        now: format_rfc3339_millis(now_ns),
        agent,
        observers,
        files: cov,
    })
}

/// One matching occurrence.
#[derive(Debug, Clone)]
pub struct Found {
    /// Fact time, Unix ns.
    pub t_ns: u64,
    /// The record.
    pub rec: OccurrenceRecord,
}

/// Occurrences matching a filter, oldest first.
#[derive(Debug, Clone)]
pub struct Recent {
    /// The newest `limit` matches (all when unlimited), oldest first.
    pub found: Vec<Found>,
    /// Matching occurrence files, before the limit.
    pub matched_occurrences: u64,
    /// Matching facts (sum of `data.count`), before the limit.
    pub matched_facts: u64,
    /// Files looked at and skipped.
    pub files: Coverage,
}

/// Finds the occurrences `filter` wants; keeps the newest `limit`.
///
/// # Errors
/// When the directory cannot be listed.
pub fn recent(dir: &DataDir, filter: &Filter, limit: Option<usize>) -> Result<Recent, StoreError> {
    let (files, mut cov) = listed(dir, filter.min_millis())?;
    let (parts, skipped) = dir.scan(&files, |acc: &mut Vec<Found>, f, rec| {
        let t_ns = crate::query::time_ns(&rec, f);
        if filter.matches(&rec, t_ns) {
            acc.push(Found { t_ns, rec });
        }
    });
    cov.skipped.merge(&skipped);
    let mut found: Vec<Found> = parts.into_iter().flatten().collect();
    // File order is ULID order; a stable sort by fact time keeps it for ties.
    found.sort_by_key(|f| f.t_ns);
    let matched_occurrences = found.len() as u64;
    let matched_facts = found
        .iter()
        .fold(0u64, |a, f| a.saturating_add(crate::query::count(&f.rec)));
    if let Some(limit) = limit {
        let cut = found.len().saturating_sub(limit);
        found.drain(..cut);
    }
    Ok(Recent {
        found,
        matched_occurrences,
        matched_facts,
        files: cov,
    })
}

/// Tallies per type of the occurrences `filter` wants.
///
/// # Errors
/// When the directory cannot be listed.
pub fn counts(
    dir: &DataDir,
    filter: &Filter,
    now_ns: u64,
) -> Result<(Summary, Coverage), StoreError> {
    let (files, mut cov) = listed(dir, filter.min_millis())?;
    let (sum, skipped) = summarize(dir, &files, filter, now_ns);
    cov.skipped.merge(&skipped);
    Ok((sum, cov))
}
