//! Shared agent state: observer states, the applied config, and the status
//! file the CLI reads.

use std::sync::{Arc, Mutex, PoisonError};

use tapio_common::status::{AgentStatus, ObserverState, ObserverStatus, STATUS_FILE};
use tapio_common::time::format_rfc3339_millis;
use tapio_common::Observer;

use crate::clock::Clock;
use crate::counters::Counters;
use crate::datadir::{DataDir, WriteError};

/// The config the agent has applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppliedConfig {
    /// Generation; 0 while unconfigured.
    pub generation: u64,
    /// Content hash; empty while unconfigured or when a carrier failed.
    pub hash: String,
}

/// Agent-wide state shared by the tasks.
pub struct AgentState {
    started_unix_ns: u64,
    observers: Mutex<Vec<ObserverStatus>>,
    applied: Mutex<AppliedConfig>,
    /// Observers whose carrier took the latest config.
    config_ok: Mutex<Vec<Observer>>,
    notes: Mutex<Vec<(Observer, String)>>,
    /// Counters.
    pub counters: Arc<Counters>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AgentState {
    /// Every observer starts `unavailable` with reason "not started".
    #[must_use]
    pub fn new(counters: Arc<Counters>) -> Self {
        AgentState {
            started_unix_ns: Clock::unix_now(),
            observers: Mutex::new(
                Observer::ALL
                    .iter()
                    .map(|o| ObserverStatus {
                        name: o.as_str().into(),
                        state: ObserverState::Unavailable,
                        reason: Some("not started".into()),
                    })
                    .collect(),
            ),
            applied: Mutex::new(AppliedConfig::default()),
            config_ok: Mutex::new(Vec::new()),
            notes: Mutex::new(Vec::new()),
            counters,
        }
    }

    /// A standing note on a running observer (a degraded event set, a test
    /// mode): shown as the reason whenever it is `running` without one.
    pub fn set_note(&self, o: Observer, note: String) {
        let mut n = lock(&self.notes);
        n.retain(|(x, _)| *x != o);
        n.push((o, note));
    }

    /// Sets an observer's state.
    pub fn set_observer(&self, o: Observer, state: ObserverState, reason: Option<String>) {
        let reason = match (state, reason) {
            (ObserverState::Running, None) => lock(&self.notes)
                .iter()
                .find(|(x, _)| *x == o)
                .map(|(_, n)| n.clone()),
            (_, r) => r,
        };
        let mut obs = lock(&self.observers);
        if let Some(s) = obs.iter_mut().find(|s| s.name == o.as_str()) {
            s.state = state;
            s.reason = reason;
        }
    }

    /// Observer states.
    #[must_use]
    pub fn observers(&self) -> Vec<ObserverStatus> {
        lock(&self.observers).clone()
    }

    /// Records the applied config.
    pub fn set_applied(&self, a: AppliedConfig) {
        *lock(&self.applied) = a;
    }

    /// The applied config.
    #[must_use]
    pub fn applied(&self) -> AppliedConfig {
        lock(&self.applied).clone()
    }

    /// Records whether `o`'s carrier took the latest config.
    pub fn set_observer_config(&self, o: Observer, ok: bool) {
        let mut v = lock(&self.config_ok);
        v.retain(|x| *x != o);
        if ok {
            v.push(o);
        }
    }

    /// True when the observer named `name` took the latest config.
    #[must_use]
    pub fn observer_config_ok(&self, name: &str) -> bool {
        lock(&self.config_ok).iter().any(|o| o.as_str() == name)
    }

    /// The status document.
    #[must_use]
    pub fn status(&self) -> AgentStatus {
        let applied = self.applied();
        AgentStatus {
            agent_version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            pid_start_ticks: own_start_ticks(),
            started_at: format_rfc3339_millis(self.started_unix_ns),
            updated_at: format_rfc3339_millis(Clock::unix_now()),
            config_generation: applied.generation,
            config_hash: applied.hash,
            observers: self.observers(),
            counters: self.counters.snapshot(),
        }
    }

    /// Writes the status file into `dir` atomically and durably (see
    /// [`DataDir::write_file`]: never through a symlink).
    ///
    /// # Errors
    /// The temp file could not be written or renamed, or the directory not
    /// synced.
    pub fn write_status_file(&self, dir: &DataDir) -> Result<(), WriteError> {
        let body = serde_json::to_vec_pretty(&self.status()).map_err(|e| WriteError {
            call: "serialize",
            source: std::io::Error::other(e),
        })?;
        dir.write_file(STATUS_FILE, &body)?;
        dir.sync()
    }
}

/// This process's start time in clock ticks since boot, read once.
fn own_start_ticks() -> Option<u64> {
    static TICKS: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::fs::read_to_string("/proc/self/stat")
            .ok()
            .as_deref()
            .and_then(tapio_common::status::stat_start_ticks)
    })
}

/// Writes the status file every few seconds when there is a data directory.
/// A failure (a full disk) is logged when it starts and when writing works
/// again, not on every tick; each tick tries anew.
pub struct StatusWriter {
    dir: Option<Arc<DataDir>>,
    failing: bool,
}

impl StatusWriter {
    /// A writer into `dir`; `None` writes nothing.
    #[must_use]
    pub fn new(dir: Option<Arc<DataDir>>) -> Self {
        StatusWriter {
            dir,
            failing: false,
        }
    }

    /// Writes `state`'s status file. Returns whether it was written.
    pub fn write(&mut self, state: &AgentState) -> bool {
        let Some(dir) = &self.dir else {
            return false;
        };
        match state.write_status_file(dir) {
            Ok(()) => {
                if std::mem::take(&mut self.failing) {
                    tracing::info!("status file written again");
                }
                true
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!(error = %crate::sinks::error_chain(&e), "status file not written; retried every tick, logged again when it works");
                    self.failing = true;
                }
                false
            }
        }
    }
}
