//! Prometheus metrics endpoint: the agent's counters, observer states and
//! config generation on `GET /metrics` (E1, E2).
//!
//! Off by default; `[metrics] enabled = true` turns it on, bound to
//! `127.0.0.1:9464` unless `[metrics] listen` says otherwise. Families are
//! encoded by the `prometheus-client` crate ([`collector`]); the HTTP side
//! is a small hand-written responder ([`server`]), since the agent carries
//! no HTTP server framework (A10). It runs on the agent's tokio runtime and
//! only ever reads the counters, so a scrape never waits on the drain loop
//! and the drain loop never waits on a scrape.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AgentState;

pub mod collector;
pub mod server;

pub use collector::{AgentCollector, RequestResult, RequestStats};
pub use server::Limits;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listen address could not be bound.
    #[error("cannot listen for metrics on `{addr}`")]
    Bind {
        /// `[metrics] listen` as configured.
        addr: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running metrics endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// The bound address (the real port when `:0` was configured).
    pub addr: SocketAddr,
    /// The endpoint's own request counts.
    pub requests: Arc<RequestStats>,
    /// The accept loop; it ends when the shutdown signal turns true.
    pub task: JoinHandle<()>,
}

/// Binds `listen` and serves the agent's metrics from `state` until
/// `shutdown` turns true. Must be called inside the tokio runtime.
///
/// The address is resolved and bound with `std` (once, at startup): tokio's
/// own `bind` resolves on its blocking pool, which the agent has no other
/// use for and which costs binary size (H1).
///
/// # Errors
/// The address cannot be resolved or bound.
pub fn start(
    listen: &str,
    state: Arc<AgentState>,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
) -> Result<Endpoint, MetricsError> {
    let bind_err = |source| MetricsError::Bind {
        addr: listen.to_owned(),
        source,
    };
    let listener = std::net::TcpListener::bind(listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(TcpListener::from_std)
        .map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    let requests = Arc::new(RequestStats::default());
    let mut registry = Registry::default();
    registry.register_collector(Box::new(AgentCollector::new(state, Arc::clone(&requests))));
    let task = tokio::spawn(server::run(
        listener,
        registry,
        Arc::clone(&requests),
        limits,
        shutdown,
    ));
    tracing::info!(listen = %addr, "metrics endpoint listening");
    Ok(Endpoint {
        addr,
        requests,
        task,
    })
}
