//! Stream errors, sorted by what the caller does next: retry soon (network),
//! back off (HTTP, rate limit), or give up (configuration). No error text
//! ever carries a credential: URLs are shown without user info, and header
//! values are never formatted.

use std::time::Duration;

use crate::backoff::FailureClass;
use crate::endpoint::EndpointError;
use crate::inflate::InflateError;
use crate::message::DisconnectKind;

/// Why a connection failed or a stream stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The configuration cannot work; the text says what to fix. Fatal.
    #[error("configuration error: {0}")]
    Config(String),
    /// The endpoint is invalid. Fatal.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The server answered with an HTTP error.
    #[error("{message}")]
    Http {
        /// The status code.
        status: u16,
        /// The full message, naming the URL (without credentials) and, for
        /// configuration errors, what to check.
        message: String,
    },
    /// TCP, DNS, TLS, reset, or the body ended.
    #[error("network error: {0}")]
    Network(String),
    /// No byte arrived within the stall timeout.
    #[error("stalled: no data for {0:?}")]
    Stall(Duration),
    /// The gzip body was corrupt or truncated.
    #[error(transparent)]
    Inflate(#[from] InflateError),
    /// The server announced that it closes the connection.
    #[error("server disconnect ({}): {message}", kind.as_str())]
    ServerDisconnect {
        /// The kind of disconnect announced.
        kind: DisconnectKind,
        /// The server's text.
        message: String,
    },
}

fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or(match status {
            420 => "Enhance Your Calm",
            _ => "Error",
        })
}

/// True for statuses that retrying unchanged cannot fix (spec 2.5, 3.3).
fn status_is_fatal(status: u16) -> bool {
    matches!(status, 400 | 401 | 403 | 404 | 406 | 413 | 416)
}

impl StreamError {
    /// The error for a non-200 answer. `hint_401` says which credential to
    /// check; `body` is the start of the response body.
    pub fn from_status(status: u16, url: &str, hint_401: &str, body: String) -> StreamError {
        let advice = match status {
            401 => hint_401.to_owned(),
            403 => "the account is not permitted on this endpoint; check the account, product \
                    and credentials"
                .to_owned(),
            404 => "no such stream; check the account, label and product in the URL".to_owned(),
            406 => "the request was refused as not acceptable (gzip must be accepted; replay \
                    dates must be valid)"
                .to_owned(),
            400 | 413 | 416 => "the request parameters were refused; check the URL".to_owned(),
            420 | 429 => "too many connection attempts; backing off".to_owned(),
            s if s >= 500 => "the service is unavailable; retrying".to_owned(),
            _ => "unexpected answer; retrying".to_owned(),
        };
        let mut message = format!(
            "HTTP {status} {} from {url}: {advice}",
            reason_phrase(status)
        );
        if !body.is_empty() {
            message.push_str(" (server said: ");
            message.push_str(&body.chars().take(300).collect::<String>());
            message.push(')');
        }
        StreamError::Http { status, message }
    }

    /// True when nothing will be retried after this error.
    pub fn is_fatal(&self) -> bool {
        self.class() == FailureClass::Config
    }

    /// The failure class, for the reconnect policy.
    pub fn class(&self) -> FailureClass {
        match self {
            StreamError::Config(_) | StreamError::Endpoint(_) => FailureClass::Config,
            StreamError::Http { status, .. } if status_is_fatal(*status) => FailureClass::Config,
            StreamError::Http {
                status: 420 | 429, ..
            } => FailureClass::RateLimited,
            StreamError::Http { .. } => FailureClass::Http,
            // Too many connections: reconnecting at once would evict the
            // other connection or be refused again (spec 10.3); wait as
            // for an HTTP error.
            StreamError::ServerDisconnect {
                kind: DisconnectKind::TooManyConnections,
                ..
            } => FailureClass::Http,
            StreamError::Network(_)
            | StreamError::Stall(_)
            | StreamError::Inflate(_)
            | StreamError::ServerDisconnect { .. } => FailureClass::Network,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sort_into_classes() {
        let e = |s| {
            StreamError::from_status(
                s,
                "http://h/x",
                "check the username and password",
                String::new(),
            )
        };
        assert_eq!(e(401).class(), FailureClass::Config);
        assert_eq!(e(403).class(), FailureClass::Config);
        assert_eq!(e(404).class(), FailureClass::Config);
        assert_eq!(e(406).class(), FailureClass::Config);
        assert_eq!(e(429).class(), FailureClass::RateLimited);
        assert_eq!(e(420).class(), FailureClass::RateLimited);
        assert_eq!(e(503).class(), FailureClass::Http);
        assert_eq!(e(500).class(), FailureClass::Http);
        assert!(e(401).is_fatal() && !e(503).is_fatal());
        assert_eq!(
            e(401).to_string(),
            "HTTP 401 Unauthorized from http://h/x: check the username and password"
        );
        assert!(e(420).to_string().contains("Enhance Your Calm"));
        assert_eq!(
            StreamError::Stall(Duration::from_secs(30)).class(),
            FailureClass::Network
        );
    }
}
