//! Responses and request bodies: JSON encoding, error envelopes, bounded
//! body reads.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use tapio_wire::{ErrorCode, ErrorEnvelope};

/// Response body type of every handler.
pub type Body = Full<Bytes>;

/// A request refused: the error code and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Code (decides the HTTP status).
    pub code: ErrorCode,
    /// Message for the envelope.
    pub message: String,
}

impl Rejection {
    /// A rejection with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
        }
    }
}

/// `200` (or `status`) with `value` as JSON.
#[must_use]
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => raw_json(status, Bytes::from(bytes)),
        Err(e) => envelope(&Rejection::new(
            ErrorCode::Internal,
            format!("encoding response: {e}"),
        )),
    }
}

/// `status` with an already encoded JSON body.
#[must_use]
pub fn raw_json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The error envelope of `rejection`, with its HTTP status.
#[must_use]
pub fn envelope(rejection: &Rejection) -> Response<Body> {
    let status = StatusCode::from_u16(rejection.code.http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = ErrorEnvelope::new(rejection.code, rejection.message.clone());
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    raw_json(status, Bytes::from(bytes))
}

/// Checks that a request body is JSON.
///
/// # Errors
/// 415 when `Content-Type` is absent or not `application/json`.
pub fn require_json<B>(req: &Request<B>) -> Result<(), Rejection> {
    let ok = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(
            ErrorCode::UnsupportedMediaType,
            "request body must be `application/json`",
        ))
    }
}

/// Reads the whole body, at most `max` bytes, within `timeout`. `B` is
/// hyper's `Incoming` on a connection, any other body in tests.
///
/// # Errors
/// 413 past `max` (refused before reading when `Content-Length` says so),
/// 408 on timeout, 400 when the client breaks off.
pub async fn read_body<B>(req: Request<B>, max: u64, timeout: Duration) -> Result<Bytes, Rejection>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        Rejection::new(
            ErrorCode::PayloadTooLarge,
            format!("request body exceeds the {max}-byte limit"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let collect = Limited::new(req.into_body(), limit).collect();
    match tokio::time::timeout(timeout, collect).await {
        Err(_) => Err(Rejection::new(
            ErrorCode::RequestTimeout,
            format!(
                "request body not received within {} ms",
                timeout.as_millis()
            ),
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(Rejection::new(
            ErrorCode::MalformedRequest,
            format!("reading request body: {e}"),
        )),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

/// Decodes a JSON body into `T`.
///
/// # Errors
/// 400 with serde's message (line and column included).
pub fn decode<'a, T: serde::Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T, Rejection> {
    serde_json::from_slice(body).map_err(|e| {
        Rejection::new(
            ErrorCode::MalformedRequest,
            format!("invalid {what} body: {e}"),
        )
    })
}
