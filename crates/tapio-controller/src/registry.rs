//! Agent registry: sessions, last heartbeat, applied config and batch
//! sequence tracking per agent.
//!
//! ## Design constraints
//! - At most `max_agents` entries; a hello from a new agent past it is
//!   refused ([`RegistryError::Full`]), an existing agent may always
//!   re-register.
//! - Agents silent for longer than the TTL are removed by [`Registry::expire`].
//! - A hello starts a new session: the batch sequence restarts at 1.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tapio_wire::{AgentView, ConvergenceView, Counters, Heartbeat, Hello, ObserverReport};

/// Why the registry refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No such agent, or its session is not the current one.
    #[error("agent `{agent_id}` has no session `{session}` here; say hello first")]
    UnknownAgent {
        /// The agent.
        agent_id: String,
        /// The session it named.
        session: String,
    },
    /// Registry full.
    #[error("agent limit of {limit} reached")]
    Full {
        /// The limit.
        limit: usize,
    },
}

#[derive(Debug)]
struct Agent {
    session: String,
    node: String,
    agent_version: String,
    hellos: u64,
    last_heartbeat: Option<Instant>,
    last_seen: Instant,
    applied_hash: String,
    applied_generation: u64,
    observers: Vec<ObserverReport>,
    counters: Counters,
    batches: u64,
    events: u64,
    last_sequence: u64,
    gaps: u64,
    regressions: u64,
}

/// What the registry made of an event batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSeen {
    /// The sequence was not above the last one: acknowledged, not counted
    /// as new events.
    pub duplicate: bool,
    /// Batches skipped before this one.
    pub gap: u64,
}

/// Known agents.
#[derive(Debug)]
pub struct Registry {
    agents: Mutex<HashMap<String, Agent>>,
    max_agents: usize,
    next_session: AtomicU64,
    session_prefix: String,
    gaps: AtomicU64,
    regressions: AtomicU64,
}

impl Registry {
    /// An empty registry holding at most `max_agents`.
    #[must_use]
    pub fn new(max_agents: usize) -> Self {
        // Sessions must differ across controller restarts: prefix them with
        // the start time.
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Registry {
            agents: Mutex::new(HashMap::new()),
            max_agents,
            next_session: AtomicU64::new(1),
            session_prefix: format!("{start:x}"),
            gaps: AtomicU64::new(0),
            regressions: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Agent>> {
        self.agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers (or re-registers) an agent; returns its new session.
    ///
    /// # Errors
    /// [`RegistryError::Full`] for a new agent past the limit.
    pub fn hello(&self, h: &Hello) -> Result<String, RegistryError> {
        let session = format!(
            "{}-{}",
            self.session_prefix,
            self.next_session.fetch_add(1, Relaxed)
        );
        let now = Instant::now();
        let mut agents = self.lock();
        let hellos = match agents.get(&h.agent_id) {
            Some(a) => a.hellos + 1,
            None if agents.len() >= self.max_agents => {
                return Err(RegistryError::Full {
                    limit: self.max_agents,
                })
            }
            None => 1,
        };
        agents.insert(
            h.agent_id.clone(),
            Agent {
                session: session.clone(),
                node: h.node.clone(),
                agent_version: h.agent_version.clone(),
                hellos,
                last_heartbeat: None,
                last_seen: now,
                applied_hash: h.applied_hash.clone(),
                applied_generation: 0,
                observers: h.observers.clone(),
                counters: Counters::default(),
                batches: 0,
                events: 0,
                last_sequence: 0,
                gaps: 0,
                regressions: 0,
            },
        );
        Ok(session)
    }

    fn known<'a>(
        agents: &'a mut HashMap<String, Agent>,
        agent_id: &str,
        session: &str,
    ) -> Result<&'a mut Agent, RegistryError> {
        match agents.get_mut(agent_id) {
            Some(a) if session.is_empty() || a.session == session => Ok(a),
            _ => Err(RegistryError::UnknownAgent {
                agent_id: agent_id.to_owned(),
                session: session.to_owned(),
            }),
        }
    }

    /// Records a heartbeat.
    ///
    /// # Errors
    /// [`RegistryError::UnknownAgent`].
    pub fn heartbeat(&self, hb: Heartbeat) -> Result<(), RegistryError> {
        let mut agents = self.lock();
        let a = Self::known(&mut agents, &hb.agent_id, &hb.session)?;
        let now = Instant::now();
        a.last_heartbeat = Some(now);
        a.last_seen = now;
        a.applied_hash = hb.applied_hash;
        a.applied_generation = hb.applied_generation;
        a.observers = hb.observers;
        a.counters = hb.counters;
        Ok(())
    }

    /// Records a batch of `events` occurrences with `sequence`.
    ///
    /// # Errors
    /// [`RegistryError::UnknownAgent`].
    pub fn batch(
        &self,
        agent_id: &str,
        session: &str,
        sequence: u64,
        events: u64,
    ) -> Result<BatchSeen, RegistryError> {
        let mut agents = self.lock();
        let a = Self::known(&mut agents, agent_id, session)?;
        a.last_seen = Instant::now();
        if sequence <= a.last_sequence {
            a.regressions += 1;
            self.regressions.fetch_add(1, Relaxed);
            return Ok(BatchSeen {
                duplicate: true,
                gap: 0,
            });
        }
        let gap = sequence - a.last_sequence - 1;
        a.gaps += gap;
        self.gaps.fetch_add(gap, Relaxed);
        a.last_sequence = sequence;
        a.batches += 1;
        a.events += events;
        Ok(BatchSeen {
            duplicate: false,
            gap,
        })
    }

    /// Marks an agent as seen (config fetch); unknown ids are ignored.
    pub fn touch(&self, agent_id: &str) {
        if let Some(a) = self.lock().get_mut(agent_id) {
            a.last_seen = Instant::now();
        }
    }

    /// Removes agents silent for longer than `ttl`; returns how many.
    pub fn expire(&self, ttl: Duration) -> usize {
        let mut agents = self.lock();
        let before = agents.len();
        agents.retain(|_, a| a.last_seen.elapsed() <= ttl);
        before - agents.len()
    }

    /// Number of known agents.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no agent is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total sequence gaps and regressions since start.
    #[must_use]
    pub fn sequence_totals(&self) -> (u64, u64) {
        (self.gaps.load(Relaxed), self.regressions.load(Relaxed))
    }

    /// Agent views sorted by id, and the convergence summary against
    /// `current_hash`.
    #[must_use]
    pub fn views(&self, current_hash: &str) -> (Vec<AgentView>, ConvergenceView) {
        let agents = self.lock();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut out: Vec<AgentView> = agents
            .iter()
            .map(|(id, a)| AgentView {
                agent_id: id.clone(),
                session: a.session.clone(),
                node: a.node.clone(),
                agent_version: a.agent_version.clone(),
                hellos: a.hellos,
                last_heartbeat_age_ms: a.last_heartbeat.map(|t| ms(t.elapsed())),
                last_seen_age_ms: ms(a.last_seen.elapsed()),
                applied_hash: a.applied_hash.clone(),
                applied_generation: a.applied_generation,
                converged: a.applied_hash == current_hash,
                observers: a.observers.clone(),
                counters: a.counters,
                batches: a.batches,
                events: a.events,
                last_sequence: a.last_sequence,
                sequence_gaps: a.gaps,
                sequence_regressions: a.regressions,
            })
            .collect();
        drop(agents);
        out.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        let converged = out.iter().filter(|a| a.converged).count() as u64;
        let n = out.len() as u64;
        let conv = ConvergenceView {
            agents: n,
            converged,
            pending: n - converged,
            converged_all: n > 0 && converged == n,
        };
        (out, conv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(id: &str) -> Hello {
        Hello {
            agent_id: id.into(),
            node: "n".into(),
            agent_version: "0.1.0".into(),
            protocol: tapio_wire::PROTOCOL.into(),
            started_at: String::new(),
            observers: Vec::new(),
            applied_hash: String::new(),
        }
    }

    #[test]
    fn sequence_gaps_and_regressions_are_counted_per_session() {
        let r = Registry::new(10);
        let s = r.hello(&hello("a")).unwrap();
        assert_eq!(
            r.batch("a", &s, 1, 5).unwrap(),
            BatchSeen {
                duplicate: false,
                gap: 0
            }
        );
        assert_eq!(
            r.batch("a", &s, 4, 5).unwrap(),
            BatchSeen {
                duplicate: false,
                gap: 2
            }
        );
        assert!(r.batch("a", &s, 4, 5).unwrap().duplicate);
        assert!(r.batch("a", &s, 2, 5).unwrap().duplicate);
        assert_eq!(r.sequence_totals(), (2, 2));
        let (v, _) = r.views("");
        assert_eq!((v[0].batches, v[0].events, v[0].last_sequence), (2, 10, 4));
        // A new hello restarts the sequence; the old session is refused.
        let s2 = r.hello(&hello("a")).unwrap();
        assert!(r.batch("a", &s, 5, 1).is_err());
        assert_eq!(r.batch("a", &s2, 1, 1).unwrap().gap, 0);
        assert_eq!(r.views("").0[0].hellos, 2);
    }

    #[test]
    fn full_registry_refuses_new_agents_but_not_known_ones() {
        let r = Registry::new(1);
        r.hello(&hello("a")).unwrap();
        assert_eq!(r.hello(&hello("b")), Err(RegistryError::Full { limit: 1 }));
        assert!(r.hello(&hello("a")).is_ok());
    }

    #[test]
    fn convergence_compares_applied_hash_with_current() {
        let r = Registry::new(10);
        r.hello(&hello("a")).unwrap();
        r.hello(&hello("b")).unwrap();
        let hb = Heartbeat {
            agent_id: "a".into(),
            session: String::new(),
            applied_hash: "sha256:x".into(),
            applied_generation: 1,
            observers: Vec::new(),
            counters: Counters::default(),
        };
        r.heartbeat(hb).unwrap();
        let (v, c) = r.views("sha256:x");
        assert!(v[0].converged && !v[1].converged);
        assert_eq!(
            (c.agents, c.converged, c.pending, c.converged_all),
            (2, 1, 1, false)
        );
        assert_eq!(r.expire(Duration::ZERO), 2);
    }
}
