//! The controller thread's loop: hello until registered, then config polls
//! and heartbeats on their own schedules, each with its backoff.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tapio_wire::{
    paths, ConfigResponse, Heartbeat, HeartbeatResponse, Hello, HelloResponse, AGENT_ID_QUERY,
    PROTOCOL,
};

use super::exchange::decode;
use super::{
    observer_reports, wire_counters, ControllerError, ControllerLink, Session, Wake,
    HELLO_BACKOFF_CAP,
};
use crate::backoff::Backoff;
use crate::counters::{ConfigFetch, ControllerCall};
use crate::drain::ConfigUpdate;
use crate::sinks::error_chain;
use crate::state::AgentState;

/// The controller thread's state.
pub(super) struct Loop {
    link: Arc<ControllerLink>,
    state: Arc<AgentState>,
    heartbeat_every: Duration,
    configs: tokio::sync::mpsc::UnboundedSender<ConfigUpdate>,
    etag: Option<String>,
    /// (generation, hash) of the last config handed to the agent.
    given: Option<(u64, String)>,
}

impl Loop {
    pub(super) fn new(
        link: Arc<ControllerLink>,
        state: Arc<AgentState>,
        heartbeat_every: Duration,
        configs: tokio::sync::mpsc::UnboundedSender<ConfigUpdate>,
    ) -> Self {
        Loop {
            link,
            state,
            heartbeat_every,
            configs,
            etag: None,
            given: None,
        }
    }

    pub(super) fn run(mut self, wake: &Receiver<Wake>) {
        let now = Instant::now();
        let mut next_hello = now;
        let mut next_poll = now;
        let mut next_hb = now;
        let mut poll_every = Duration::from_secs(30);
        let mut hello_b = Backoff::new(Duration::from_secs(1), HELLO_BACKOFF_CAP);
        let mut poll_b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let mut hb_b = Backoff::new(Duration::from_secs(1), self.heartbeat_every);
        loop {
            let now = Instant::now();
            match self.link.session() {
                None if now >= next_hello => match self.hello() {
                    Ok(poll) => {
                        hello_b.reset();
                        poll_every = poll;
                        next_poll = now;
                        next_hb = now;
                        continue;
                    }
                    Err(e) => {
                        self.state
                            .counters
                            .controller_send_failure(ControllerCall::Hello);
                        let d = hello_b.next_delay();
                        tracing::warn!(error = %error_chain(&e), retry_in_ms = d.as_millis(), "controller hello failed");
                        next_hello = now + d;
                    }
                },
                None => {}
                Some(s) => {
                    if now >= next_poll {
                        match self.poll(&s) {
                            Ok(()) => {
                                poll_b.reset();
                                next_poll = now + poll_every;
                            }
                            Err(d) => next_poll = now + d.max(poll_b.next_delay()).min(poll_every),
                        }
                    }
                    if now >= next_hb {
                        match self.heartbeat(&s) {
                            Ok(stale) => {
                                hb_b.reset();
                                next_hb = now + self.heartbeat_every;
                                if stale {
                                    next_poll = now;
                                }
                            }
                            Err(()) => next_hb = now + hb_b.next_delay(),
                        }
                    }
                }
            }
            let until = if self.link.session().is_some() {
                next_poll.min(next_hb)
            } else {
                next_hello
            };
            match wake.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Wake::Hello) | Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Says hello; returns the config poll interval.
    fn hello(&mut self) -> Result<Duration, ControllerError> {
        let h = Hello {
            agent_id: self.link.agent_id.clone(),
            node: self.link.node.clone(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            protocol: PROTOCOL.into(),
            started_at: self.state.status().started_at,
            observers: observer_reports(&self.state),
            applied_hash: self.state.applied().hash,
        };
        let body = serde_json::to_vec(&h).map_err(|source| ControllerError::Decode {
            what: "hello",
            source,
        })?;
        let r = self.link.call("POST", paths::HELLO, Some(&body), &[])?;
        let resp: HelloResponse = decode("hello", &r)?;
        let s = self.link.set_session(&resp);
        tracing::info!(agent_id = %self.link.agent_id, session = %s.id, config_generation = resp.config_generation, "registered with the controller");
        Ok(Duration::from_secs(
            resp.config_poll_interval_secs.clamp(1, 300),
        ))
    }

    /// Polls the config; Err carries the suggested retry delay.
    fn poll(&mut self, s: &Session) -> Result<(), Duration> {
        let c = &self.state.counters;
        let path = format!("{}?{AGENT_ID_QUERY}={}", paths::CONFIG, self.link.agent_id);
        let etag = self.etag.clone();
        let extra: Vec<(&str, &str)> = etag.iter().map(|e| ("If-None-Match", e.as_str())).collect();
        let r = match self.link.call("GET", &path, None, &extra) {
            Ok(r) => r,
            Err(e) => {
                c.config_fetch(ConfigFetch::Failed);
                tracing::warn!(error = %error_chain(&e), "config fetch failed");
                if matches!(e, ControllerError::UnknownAgent { .. }) {
                    self.link.forget(s.epoch);
                }
                return Err(Duration::from_secs(1));
            }
        };
        if r.status == 304 {
            c.config_fetch(ConfigFetch::Unchanged);
            return Ok(());
        }
        let cfg: ConfigResponse = match decode("config", &r) {
            Ok(c) => c,
            Err(e) => {
                c.config_fetch(ConfigFetch::Invalid);
                tracing::error!(error = %error_chain(&e), "config refused");
                return Err(Duration::from_secs(5));
            }
        };
        if !cfg.hash_matches() {
            c.config_fetch(ConfigFetch::Invalid);
            tracing::error!(hash = %cfg.hash, "config refused: its hash does not match its content");
            return Err(Duration::from_secs(5));
        }
        self.etag = r.header("etag").map(str::to_owned);
        let key = (cfg.generation, cfg.hash.clone());
        if self.given.as_ref() == Some(&key) {
            c.config_fetch(ConfigFetch::Unchanged);
            return Ok(());
        }
        c.config_fetch(ConfigFetch::Updated);
        tracing::info!(generation = cfg.generation, hash = %cfg.hash, profile = %cfg.config.profile, "config received from the controller");
        let update = ConfigUpdate {
            generation: cfg.generation,
            hash: cfg.hash,
            config: cfg.config,
        };
        if self.configs.send(update).is_ok() {
            self.given = Some(key);
        }
        Ok(())
    }

    /// Sends a heartbeat; Ok(true) when the controller names a config this
    /// agent was not given (poll now).
    fn heartbeat(&mut self, s: &Session) -> Result<bool, ()> {
        let applied = self.state.applied();
        let hb = Heartbeat {
            agent_id: self.link.agent_id.clone(),
            session: s.id.clone(),
            applied_hash: applied.hash,
            applied_generation: applied.generation,
            observers: observer_reports(&self.state),
            counters: wire_counters(&self.state),
        };
        let result = serde_json::to_vec(&hb)
            .map_err(|source| ControllerError::Decode {
                what: "heartbeat",
                source,
            })
            .and_then(|b| self.link.call("POST", paths::HEARTBEAT, Some(&b), &[]))
            .and_then(|r| decode::<HeartbeatResponse>("heartbeat", &r));
        match result {
            Ok(r) => Ok(self.given.as_ref().is_none_or(|(_, h)| *h != r.config_hash)),
            Err(e) => {
                self.state
                    .counters
                    .controller_send_failure(ControllerCall::Heartbeat);
                tracing::warn!(error = %error_chain(&e), "heartbeat failed");
                if matches!(e, ControllerError::UnknownAgent { .. }) {
                    self.link.forget(s.epoch);
                }
                Err(())
            }
        }
    }
}
