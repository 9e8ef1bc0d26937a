//! One exchange with the controller: the link the controller thread and
//! the controller sink share (endpoint, token, session), the agent's
//! identity, and how an answer becomes a value or a [`ControllerError`].

use std::sync::Mutex;
use std::time::Instant;

use tapio_wire::{ErrorEnvelope, HelloResponse};

use super::{lock, ControllerError, Session, Wake, REQUEST_DEADLINE, TOKEN_ENV};
use crate::http::{Client, Endpoint, HttpError, Request, Response};

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
    pub(super) wake: Mutex<Option<std::sync::mpsc::Sender<Wake>>>,
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

    pub(super) fn set_session(&self, h: &HelloResponse) -> Session {
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

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    r: &Response,
) -> Result<T, ControllerError> {
    serde_json::from_slice(&r.body).map_err(|source| ControllerError::Decode { what, source })
}
