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

mod exchange;
mod report;
mod session_loop;

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::drain::ConfigUpdate;
use crate::http::HttpError;
use crate::state::AgentState;

pub use exchange::{agent_identity, ControllerLink};
pub use report::{observer_reports, wire_counters};
use session_loop::Loop;

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

/// What wakes the controller thread before its next deadline.
enum Wake {
    Hello,
    Stop,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
            Loop::new(link, state, heartbeat_every, configs).run(&wake_rx);
            let _ = done_tx.send(());
        })?;
    Ok(ControllerHandle {
        wake: wake_tx,
        done,
    })
}
