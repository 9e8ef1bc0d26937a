//! Request routing and handlers of the tapio-wire/v1 endpoints.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Bytes;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, ETAG, IF_NONE_MATCH, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use tapio_wire::{
    paths, ControllerStatus, ErrorCode, EventBatch, EventBatchResponse, Heartbeat,
    HeartbeatResponse, Hello, HelloResponse, ObserverReport, PROTOCOL,
};

use crate::auth::Token;
use crate::config_state::ConfigState;
use crate::limits::Limits;
use crate::metrics::Counters;
use crate::registry::{Registry, RegistryError};
use crate::respond::{decode, envelope, json, raw_json, read_body, require_json, Body, Rejection};

/// Most observer reports in one hello or heartbeat.
const MAX_OBSERVERS: usize = 32;
/// Longest free-text field (reasons, versions, node names), bytes.
const MAX_TEXT: usize = 1_024;

/// Everything the handlers share.
#[derive(Debug)]
pub struct App {
    /// The config being distributed.
    pub config: ConfigState,
    /// Known agents.
    pub registry: Registry,
    /// Counters.
    pub counters: Counters,
    /// Limits.
    pub limits: Limits,
    /// Expected Bearer token, if authentication is on.
    pub token: Option<Token>,
    /// Config poll interval told to agents, seconds.
    pub config_poll_secs: u64,
    /// Start time.
    pub started: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Healthz,
    Hello,
    Config,
    Heartbeat,
    Events,
    Status,
}

impl Route {
    fn find(path: &str) -> Option<Self> {
        Some(match path {
            paths::HEALTHZ => Route::Healthz,
            paths::HELLO => Route::Hello,
            paths::CONFIG => Route::Config,
            paths::HEARTBEAT => Route::Heartbeat,
            paths::EVENTS => Route::Events,
            paths::STATUS => Route::Status,
            _ => return None,
        })
    }

    fn method(self) -> Method {
        match self {
            Route::Healthz | Route::Config | Route::Status => Method::GET,
            Route::Hello | Route::Heartbeat | Route::Events => Method::POST,
        }
    }
}

/// Answers one request; never fails (every failure is an envelope). `B` is
/// hyper's `Incoming` on a connection; tests and fuzzing drive the router
/// in-process with any other body.
///
/// # Errors
/// None: the `Infallible` is hyper's service signature.
pub async fn handle<B>(app: Arc<App>, req: Request<B>) -> Result<Response<Body>, Infallible>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Counters::inc(&app.counters.requests);
    let response = match route(&app, req).await {
        Ok(r) => r,
        Err(rej) => {
            app.counters.error(rej.code);
            tracing::debug!(code = rej.code.as_str(), message = %rej.message, "request rejected");
            let mut r = envelope(&rej);
            match rej.code {
                ErrorCode::Unauthorized => {
                    r.headers_mut()
                        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                }
                ErrorCode::MethodNotAllowed => {
                    let allow = if rej.message.contains("POST") {
                        "POST"
                    } else {
                        "GET"
                    };
                    r.headers_mut()
                        .insert(ALLOW, HeaderValue::from_static(allow));
                }
                _ => {}
            }
            r
        }
    };
    Ok(response)
}

async fn route<B>(app: &App, req: Request<B>) -> Result<Response<Body>, Rejection>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(route) = Route::find(req.uri().path()) else {
        return Err(Rejection::new(
            ErrorCode::NotFound,
            format!("no endpoint `{}`", truncated(req.uri().path())),
        ));
    };
    if req.method() != route.method() {
        return Err(Rejection::new(
            ErrorCode::MethodNotAllowed,
            format!("`{}` takes {} only", route_path(route), route.method()),
        ));
    }
    if route != Route::Healthz {
        authorize(app, &req)?;
    }
    match route {
        Route::Healthz => Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok"}))),
        Route::Config => Ok(config(app, &req)),
        Route::Status => Ok(status(app)),
        Route::Hello => {
            let body = post_body(app, req).await?;
            hello(app, decode(&body, "hello")?)
        }
        Route::Heartbeat => {
            let body = post_body(app, req).await?;
            heartbeat(app, decode(&body, "heartbeat")?)
        }
        Route::Events => {
            let body = post_body(app, req).await?;
            events(app, &body)
        }
    }
}

fn route_path(r: Route) -> &'static str {
    match r {
        Route::Healthz => paths::HEALTHZ,
        Route::Hello => paths::HELLO,
        Route::Config => paths::CONFIG,
        Route::Heartbeat => paths::HEARTBEAT,
        Route::Events => paths::EVENTS,
        Route::Status => paths::STATUS,
    }
}

fn truncated(s: &str) -> String {
    s.chars().take(100).collect()
}

fn authorize<B>(app: &App, req: &Request<B>) -> Result<(), Rejection> {
    let Some(token) = &app.token else {
        return Ok(());
    };
    let presented = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
    if token.accepts(presented) {
        return Ok(());
    }
    Counters::inc(&app.counters.auth_rejections);
    tracing::warn!(
        reason = if presented.is_some() {
            "wrong_token"
        } else {
            "missing_token"
        },
        "request rejected: authentication"
    );
    Err(Rejection::new(
        ErrorCode::Unauthorized,
        if presented.is_some() {
            "wrong Bearer token"
        } else {
            "missing `Authorization: Bearer` token"
        },
    ))
}

async fn post_body<B>(app: &App, req: Request<B>) -> Result<Bytes, Rejection>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    require_json(&req)?;
    read_body(req, app.limits.max_body_bytes, app.limits.body_read_timeout).await
}

fn invalid(field: &str, why: impl fmt::Display) -> Rejection {
    Rejection::new(ErrorCode::InvalidField, format!("`{field}` {why}"))
}

fn check_agent_id(id: &str) -> Result<(), Rejection> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "agent_id",
            "must be 1-128 characters of A-Z a-z 0-9 . _ : -",
        ))
    }
}

fn check_text(field: &str, s: &str) -> Result<(), Rejection> {
    if s.len() > MAX_TEXT {
        Err(invalid(
            field,
            format_args!("is longer than {MAX_TEXT} bytes"),
        ))
    } else {
        Ok(())
    }
}

fn check_observers(obs: &[ObserverReport]) -> Result<(), Rejection> {
    if obs.len() > MAX_OBSERVERS {
        return Err(invalid(
            "observers",
            format_args!("has more than {MAX_OBSERVERS} entries"),
        ));
    }
    for o in obs {
        check_text("observers[].name", &o.name)?;
        check_text("observers[].reason", o.reason.as_deref().unwrap_or(""))?;
    }
    Ok(())
}

fn hello(app: &App, h: Hello) -> Result<Response<Body>, Rejection> {
    check_agent_id(&h.agent_id)?;
    if h.protocol != PROTOCOL {
        return Err(invalid(
            "protocol",
            format_args!(
                "`{}` is not supported (expected `{PROTOCOL}`)",
                truncated(&h.protocol)
            ),
        ));
    }
    check_text("node", &h.node)?;
    check_text("agent_version", &h.agent_version)?;
    check_text("started_at", &h.started_at)?;
    check_text("applied_hash", &h.applied_hash)?;
    check_observers(&h.observers)?;
    let session = app.registry.hello(&h).map_err(|e| match e {
        RegistryError::Full { .. } => Rejection::new(ErrorCode::Overloaded, e.to_string()),
        RegistryError::UnknownAgent { .. } => {
            Rejection::new(ErrorCode::UnknownAgent, e.to_string())
        }
    })?;
    Counters::inc(&app.counters.hellos);
    tracing::info!(agent_id = %h.agent_id, node = %h.node, agent_version = %h.agent_version, %session, "agent hello");
    let cur = app.config.current();
    Ok(json(
        StatusCode::OK,
        &HelloResponse {
            agent_id: h.agent_id,
            session,
            protocol: PROTOCOL.into(),
            config_poll_interval_secs: app.config_poll_secs,
            config_generation: cur.generation,
            config_hash: cur.hash.clone(),
            max_body_bytes: app.limits.max_body_bytes,
            max_batch_events: app.limits.max_batch_events,
        },
    ))
}

fn unknown_agent(e: &RegistryError) -> Rejection {
    Rejection::new(ErrorCode::UnknownAgent, e.to_string())
}

fn config<B>(app: &App, req: &Request<B>) -> Response<Body> {
    let cur = app.config.current();
    if let Some(q) = req.uri().query() {
        let prefix = format!("{}=", tapio_wire::AGENT_ID_QUERY);
        if let Some(id) = q.split('&').find_map(|kv| kv.strip_prefix(prefix.as_str())) {
            app.registry.touch(id);
        }
    }
    let not_modified = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| cur.matches(v));
    let mut r = if not_modified {
        Counters::inc(&app.counters.config_not_modified);
        let mut r = Response::new(Body::default());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Counters::inc(&app.counters.config_fetches);
        raw_json(StatusCode::OK, cur.body.clone())
    };
    if let Ok(v) = HeaderValue::from_str(&cur.etag) {
        r.headers_mut().insert(ETAG, v);
    }
    r
}

fn heartbeat(app: &App, hb: Heartbeat) -> Result<Response<Body>, Rejection> {
    check_agent_id(&hb.agent_id)?;
    check_text("applied_hash", &hb.applied_hash)?;
    check_observers(&hb.observers)?;
    let applied = hb.applied_hash.clone();
    let id = hb.agent_id.clone();
    app.registry.heartbeat(hb).map_err(|e| unknown_agent(&e))?;
    Counters::inc(&app.counters.heartbeats);
    let cur = app.config.current();
    tracing::debug!(agent_id = %id, applied_hash = %applied, "heartbeat");
    Ok(json(
        StatusCode::OK,
        &HeartbeatResponse {
            config_generation: cur.generation,
            config_hash: cur.hash.clone(),
            converged: applied == cur.hash,
        },
    ))
}

/// An occurrence as the controller checks it: a JSON object, content not
/// inspected (and not allocated).
struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an occurrence object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<AnyObject, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(V)
    }
}

fn events(app: &App, body: &[u8]) -> Result<Response<Body>, Rejection> {
    let batch: EventBatch<AnyObject> = decode(body, "event batch")?;
    check_agent_id(&batch.agent_id)?;
    if batch.sequence == 0 {
        return Err(invalid("sequence", "starts at 1"));
    }
    let n = batch.occurrences.len();
    if n > app.limits.max_batch_events as usize {
        return Err(Rejection::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "batch of {n} occurrences exceeds the {}-occurrence limit",
                app.limits.max_batch_events
            ),
        ));
    }
    let seen = app
        .registry
        .batch(&batch.agent_id, &batch.session, batch.sequence, n as u64)
        .map_err(|e| unknown_agent(&e))?;
    if seen.gap > 0 {
        tracing::warn!(agent_id = %batch.agent_id, sequence = batch.sequence, gap = seen.gap, "event batch sequence gap");
    }
    if !seen.duplicate {
        Counters::inc(&app.counters.batches);
        app.counters
            .events
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        if tracing::enabled!(target: "tapio_controller::events", tracing::Level::TRACE) {
            trace_payload(body);
        }
    }
    Ok(json(
        StatusCode::OK,
        &EventBatchResponse {
            accepted: if seen.duplicate { 0 } else { n as u64 },
            sequence: batch.sequence,
            duplicate: seen.duplicate,
        },
    ))
}

/// Logs every occurrence of an accepted batch at trace level, one line each.
fn trace_payload(body: &[u8]) {
    if let Ok(batch) = serde_json::from_slice::<EventBatch>(body) {
        for o in &batch.occurrences {
            tracing::trace!(
                target: "tapio_controller::events",
                agent_id = %batch.agent_id,
                sequence = batch.sequence,
                occurrence = %o,
                "event"
            );
        }
    }
}

fn status(app: &App) -> Response<Body> {
    let config = app.config.view();
    let (agents, convergence) = app.registry.views(&config.hash);
    let mut totals = app.counters.totals();
    (totals.sequence_gaps, totals.sequence_regressions) = app.registry.sequence_totals();
    json(
        StatusCode::OK,
        &ControllerStatus {
            protocol: PROTOCOL.into(),
            controller_version: env!("CARGO_PKG_VERSION").into(),
            uptime_secs: app.started.elapsed().as_secs(),
            config,
            convergence,
            agents,
            totals,
        },
    )
}
