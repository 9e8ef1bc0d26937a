//! Error envelope: the body of every non-2xx controller response.

use serde::{Deserialize, Serialize};

/// `{"error":{"code":"...","message":"..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// Code and message of an [`ErrorEnvelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code (see [`ErrorCode`]); a reader must
    /// tolerate codes it does not know.
    pub code: String,
    /// One line for a human; not stable.
    pub message: String,
}

impl ErrorEnvelope {
    /// An envelope with `code` and `message`.
    #[must_use]
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorEnvelope {
            error: ErrorBody {
                code: code.as_str().to_owned(),
                message: message.into(),
            },
        }
    }

    /// The code, when this reader knows it.
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == self.error.code)
    }
}

/// Error codes of tapio-wire/v1, with the HTTP status each goes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: the body is not JSON or does not have the message's shape.
    MalformedRequest,
    /// 400: a field has a value outside what the controller accepts.
    InvalidField,
    /// 401: missing or wrong Bearer token.
    Unauthorized,
    /// 404: no such endpoint.
    NotFound,
    /// 405: the endpoint exists, the method does not.
    MethodNotAllowed,
    /// 408: the request was not received within the per-request time limit.
    RequestTimeout,
    /// 409: the agent/session is unknown to the controller: say hello again.
    UnknownAgent,
    /// 413: body or batch larger than the limit.
    PayloadTooLarge,
    /// 415: body is not `application/json`.
    UnsupportedMediaType,
    /// 503: the controller is at a capacity limit (connections, agents).
    Overloaded,
    /// 500: a controller bug.
    Internal,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::MalformedRequest,
        ErrorCode::InvalidField,
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RequestTimeout,
        ErrorCode::UnknownAgent,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Overloaded,
        ErrorCode::Internal,
    ];

    /// Wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedRequest => "malformed_request",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::UnknownAgent => "unknown_agent",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Internal => "internal",
        }
    }

    /// HTTP status code.
    #[must_use]
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::MalformedRequest | ErrorCode::InvalidField => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::UnknownAgent => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Overloaded => 503,
            ErrorCode::Internal => 500,
        }
    }
}
