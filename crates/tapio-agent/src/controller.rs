//! Controller client: registration, config polling and heartbeats
//! (tapio-wire/v1, F1–F2), on a thread of its own.
//!
//! ## Design constraints
//! - Every exchange is agent-initiated over the blocking client of
//!   [`crate::http`], on the `controller` thread: nothing here runs on the
//!   drain runtime, so a slow, stopped or dead controller never blocks the
//!   drain (A5, F2). Each request has a deadline of [`REQUEST_DEADLINE`].
//! - Registration: `hello` first; a `404`/`409` (`unknown_agent`) answer to
//!   a heartbeat or an event batch means the controller restarted or
//!   forgot this agent: the session is dropped and the agent says hello
//!   again by itself. Failed hellos back off from 1 s to [`HELLO_BACKOFF_CAP`].
//! - Config: `GET /v1/agents/config` with `If-None-Match`, every
//!   `config_poll_interval_secs` from the hello answer (clamped to
//!   1..=300 s), and at once when a heartbeat answer names a hash the agent
//!   was not given. A body whose hash does not match its content is refused
//!   (`tapio_config_fetch_total{result="invalid"}`). New configs are handed
//!   to the agent loop, which writes the carriers; the applied hash goes
//!   back in the next heartbeat (empty while unconfigured or after a
//!   carrier failed).
//! - Heartbeat every `--heartbeat-interval` (≥5 s); a failed one is retried
//!   with backoff capped at the interval.
//! - Every failed exchange counts once in
//!   `tapio_controller_send_failures_total{call}` or
//!   `tapio_config_fetch_total{result="failed"}`.
//! - Authentication: when `TAPIO_CONTROLLER_TOKEN` is set in the agent's
//!   environment, every request carries it as a Bearer token.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tapio_wire::{
    paths, ConfigResponse, ErrorEnvelope, Heartbeat, HeartbeatResponse, Hello, HelloResponse,
    ObserverReport, AGENT_ID_QUERY, PROTOCOL,
};

use crate::backoff::Backoff;
use crate::counters::{ConfigFetch, ControllerCall};
use crate::drain::ConfigUpdate;
use crate::http::{Client, Endpoint, HttpError, Request, Response};
use crate::sinks::error_chain;
use crate::state::AgentState;

/// Deadline of one exchange with the controller.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Longest wait between two failed hellos.
pub const HELLO_BACKOFF_CAP: Duration = Duration::from_secs(30);
/// Environment variable holding the shared Bearer token.
pub const TOKEN_ENV: &str = "TAPIO_CONTROLLER_TOKEN";

/// Why an exchange with the controller failed.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// Transport failure (connect, timeout, malformed response).
    #[error("request to the controller failed")]
    Http(#[from] HttpError),
    /// The controller does not know this agent or its session.
    #[error("controller does not know this agent (status {status}): {message}")]
    UnknownAgent {
        /// HTTP status.
        status: u16,
        /// The envelope's message.
        message: String,
    },
    /// Any other non-success answer.
    #[error("controller answered {status} `{code}`: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Envelope code, or empty.
        code: String,
        /// Envelope message, or the start of the body.
        message: String,
    },
    /// A success answer whose body is not the expected message.
    #[error("controller answer to `{what}` does not parse")]
    Decode {
        /// Which exchange.
        what: &'static str,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

impl ControllerError {
    /// True when the controller will not accept this request as sent
    /// (retrying the same bytes is pointless).
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        match self {
            ControllerError::Status { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            ControllerError::Decode { .. } => true,
            ControllerError::Http(_) | ControllerError::UnknownAgent { .. } => false,
        }
    }
}

/// The controller's current session for this agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Session id from the hello answer.
    pub id: String,
    /// Local count of hellos: changes whenever the session does.
    pub epoch: u64,
    /// Largest request body the controller takes (0 = unknown).
    pub max_body_bytes: u64,
    /// Most occurrences per batch (0 = unknown).
    pub max_batch_events: u32,
}

/// What the controller thread, the controller sink and the agent share.
pub struct ControllerLink {
    endpoint: Endpoint,
    client: Client,
    auth: Option<String>,
    /// This agent's id.
    pub agent_id: String,
    /// Node name.
    pub node: String,
    session: Mutex<Option<Session>>,
    epochs: Mutex<u64>,
    wake: Mutex<Option<Sender<Wake>>>,
}

enum Wake {
    Hello,
    Stop,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A stable agent id: the host name (kernel `hostname`), restricted to the
/// characters tapio-wire allows, plus 8 characters of `/etc/machine-id`
/// when there is one (two nodes with the same host name stay apart).
#[must_use]
pub fn agent_identity() -> (String, String) {
    let node = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-node".into());
    let mut id: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect();
    if let Ok(m) = std::fs::read_to_string("/etc/machine-id") {
        let m: String = m
            .trim()
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(8)
            .collect();
        if !m.is_empty() {
            id.push(':');
            id.push_str(&m);
        }
    }
    (id, node)
}

impl ControllerLink {
    /// A link to the controller at `url` (`http://host:port[/base]`).
    ///
    /// # Errors
    /// The URL is not a usable `http://` URL.
    pub fn new(url: &str, agent_id: String, node: String) -> Result<Self, HttpError> {
        let auth = std::env::var(TOKEN_ENV)
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .map(|t| format!("Bearer {t}"));
        Ok(ControllerLink {
            endpoint: Endpoint::parse(url)?,
            client: Client {
                max_body: 1 << 20,
                ..Client::default()
            },
            auth,
            agent_id,
            node,
            session: Mutex::new(None),
            epochs: Mutex::new(0),
            wake: Mutex::new(None),
        })
    }

    /// The current session, if registered.
    #[must_use]
    pub fn session(&self) -> Option<Session> {
        lock(&self.session).clone()
    }

    /// Drops session `epoch` (the controller forgot it) and wakes the
    /// controller thread to say hello again. A newer session is kept.
    pub fn forget(&self, epoch: u64) {
        let mut s = lock(&self.session);
        if s.as_ref().is_some_and(|s| s.epoch == epoch) {
            *s = None;
            tracing::warn!(agent_id = %self.agent_id, "controller forgot this agent; registering again");
        }
        drop(s);
        self.nudge();
    }

    /// Wakes the controller thread (it says hello if unregistered).
    pub fn nudge(&self) {
        if let Some(tx) = lock(&self.wake).as_ref() {
            let _ = tx.send(Wake::Hello);
        }
    }

    /// One exchange: `method path` with an optional JSON body.
    ///
    /// # Errors
    /// Transport failures and non-success answers, with the envelope.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        extra: &[(&str, &str)],
    ) -> Result<Response, ControllerError> {
        let mut headers: Vec<(&str, &str)> = vec![("Accept", "application/json")];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        if let Some(a) = &self.auth {
            headers.push(("Authorization", a));
        }
        headers.extend_from_slice(extra);
        let full = self.endpoint.join(path);
        let r = self.client.send(
            &self.endpoint,
            &Request {
                method,
                path: &full,
                headers: &headers,
                body,
            },
            Instant::now() + REQUEST_DEADLINE,
        )?;
        if r.is_success() || r.status == 304 {
            return Ok(r);
        }
        let env: Option<ErrorEnvelope> = serde_json::from_slice(&r.body).ok();
        let (code, message) = match env {
            Some(e) => (e.error.code, e.error.message),
            None => (
                String::new(),
                String::from_utf8_lossy(&r.body[..r.body.len().min(200)]).into_owned(),
            ),
        };
        if r.status == 404 || r.status == 409 || code == "unknown_agent" {
            return Err(ControllerError::UnknownAgent {
                status: r.status,
                message,
            });
        }
        Err(ControllerError::Status {
            status: r.status,
            code,
            message,
        })
    }

    fn set_session(&self, h: &HelloResponse) -> Session {
        let mut n = lock(&self.epochs);
        *n += 1;
        let s = Session {
            id: h.session.clone(),
            epoch: *n,
            max_body_bytes: h.max_body_bytes,
            max_batch_events: h.max_batch_events,
        };
        *lock(&self.session) = Some(s.clone());
        s
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    r: &Response,
) -> Result<T, ControllerError> {
    serde_json::from_slice(&r.body).map_err(|source| ControllerError::Decode { what, source })
}

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

/// Handle on the running controller thread.
pub struct ControllerHandle {
    wake: Sender<Wake>,
    done: Receiver<()>,
}

impl ControllerHandle {
    /// Asks the thread to stop and waits for it until `deadline`; false
    /// when it was still inside a request (it is left to finish alone).
    pub fn stop(self, deadline: Instant) -> bool {
        let _ = self.wake.send(Wake::Stop);
        self.done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

/// Starts the controller thread. New configs are sent on `configs`.
///
/// # Errors
/// The thread could not be spawned.
pub fn start(
    link: Arc<ControllerLink>,
    state: Arc<AgentState>,
    heartbeat_every: Duration,
    configs: tokio::sync::mpsc::UnboundedSender<ConfigUpdate>,
) -> std::io::Result<ControllerHandle> {
    let (wake_tx, wake_rx) = mpsc::channel();
    *lock(&link.wake) = Some(wake_tx.clone());
    let (done_tx, done) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("controller".into())
        .spawn(move || {
            Loop {
                link,
                state,
                heartbeat_every,
                configs,
                etag: None,
                given: None,
            }
            .run(&wake_rx);
            let _ = done_tx.send(());
        })?;
    Ok(ControllerHandle {
        wake: wake_tx,
        done,
    })
}

struct Loop {
    link: Arc<ControllerLink>,
    state: Arc<AgentState>,
    heartbeat_every: Duration,
    configs: tokio::sync::mpsc::UnboundedSender<ConfigUpdate>,
    etag: Option<String>,
    /// (generation, hash) of the last config handed to the agent.
    given: Option<(u64, String)>,
}

impl Loop {
    fn run(mut self, wake: &Receiver<Wake>) {
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
