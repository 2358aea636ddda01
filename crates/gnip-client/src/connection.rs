//! Connection: one HTTP GET that stays open, and the HTTP client behind it.
//! Sits under the stream tasks; turns HTTP answers into either a body to
//! read or a classified error.
//!
//! Transport choices: HTTP/1.1 only (the streams are chunked HTTP/1.1
//! downloads; spec 1), `Accept-Encoding: gzip` sent explicitly and the body
//! inflated by the caller so that wire and plaintext bytes can be counted,
//! rustls with the ring provider only (mixing providers makes rustls panic
//! at the first handshake, and aws-lc must not enter the build), certificate
//! verification by the platform verifier with optional extra roots. No
//! request timeout: the response never ends; the caller times out on bytes.

use std::sync::Arc;
use std::time::Duration;

use http::header::{ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING};
use http::{HeaderValue, StatusCode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use url::Url;

use crate::auth::Credentials;
use crate::error::StreamError;

/// How long to wait for TCP + TLS + response headers before calling the
/// attempt a network failure. The server answers at once when it answers
/// at all; 30 s matches the read timeout the spec recommends.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most bytes of an error response body kept for the error message.
const ERROR_BODY_LIMIT: usize = 512;

/// Builds the HTTP client for stream connections.
///
/// # Errors
///
/// [`StreamError::Config`] when the extra CA certificate cannot be read or
/// the TLS or HTTP client cannot be built.
pub fn build_client(
    extra_ca_pem: Option<&[u8]>,
    user_agent: &str,
    connect_timeout: Duration,
) -> Result<reqwest::Client, StreamError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut extra = Vec::new();
    if let Some(pem) = extra_ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            extra.push(cert.map_err(|e| {
                StreamError::Config(format!("the extra CA certificate is not valid PEM: {e}"))
            })?);
        }
        if extra.is_empty() {
            return Err(StreamError::Config(
                "the extra CA certificate file holds no PEM certificate".into(),
            ));
        }
    }
    let verifier = if extra.is_empty() {
        rustls_platform_verifier::Verifier::new(provider.clone())
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
    }
    .map_err(|e| StreamError::Config(format!("cannot set up TLS certificate verification: {e}")))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StreamError::Config(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];

    let ua = HeaderValue::try_from(user_agent)
        .map_err(|_| StreamError::Config("the user agent is not a valid header value".into()))?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .no_proxy()
        .user_agent(ua)
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        // One connection per stream task; pooling only keeps sockets of
        // dead streams around.
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| StreamError::Config(format!("cannot build the HTTP client: {e}")))
}

/// An open stream response.
#[derive(Debug)]
pub struct Opened {
    /// The response; read its body with `bytes_stream()`.
    pub response: reqwest::Response,
    /// True when the body is gzip-encoded.
    pub gzip: bool,
}

/// Sends the stream request and checks the status.
///
/// # Errors
///
/// A [`StreamError`] whose class says what to do next: network failures,
/// retryable HTTP errors, rate limits, or configuration errors (401, 403,
/// 404, 406, ...) with a message saying what to fix.
pub async fn open(
    client: &reqwest::Client,
    url: &Url,
    credentials: &Credentials,
    connect_timeout: Duration,
) -> Result<Opened, StreamError> {
    let auth = credentials
        .header_value()
        .map_err(|e| StreamError::Config(e.to_string()))?;
    let request = client
        .get(url.clone())
        .header(AUTHORIZATION, auth)
        .header(ACCEPT_ENCODING, HeaderValue::from_static("gzip"))
        .send();
    let response = match tokio::time::timeout(connect_timeout, request).await {
        Err(_) => {
            return Err(StreamError::Network(format!(
                "no response from {} within {connect_timeout:?}",
                redact(url)
            )));
        }
        Ok(Err(e)) => return Err(StreamError::Network(describe_reqwest(&e, url))),
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if status == StatusCode::OK {
        let gzip = response
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
        return Ok(Opened { response, gzip });
    }
    let body = error_body(response).await;
    Err(StreamError::from_status(
        status.as_u16(),
        &redact(url),
        credentials.hint_for_401(),
        body,
    ))
}

/// The first bytes of an error body, as text, for the message.
async fn error_body(mut response: reqwest::Response) -> String {
    let mut buf = Vec::new();
    let read = async {
        while buf.len() < ERROR_BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(c)) => buf.extend_from_slice(&c),
                _ => break,
            }
        }
    };
    // An error body that trickles must not hold the reconnect loop.
    let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
    buf.truncate(ERROR_BODY_LIMIT);
    String::from_utf8_lossy(&buf).trim().to_owned()
}

/// The URL without query values that could matter to nobody but the
/// account, and never with credentials (endpoints refuse those anyway).
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// A reqwest error as text, with its causes, without the URL (added back in
/// redacted form).
fn describe_reqwest(e: &reqwest::Error, url: &Url) -> String {
    let mut text = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&s.to_string());
        source = s.source();
    }
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    if text.is_empty() {
        format!("{kind} to {}", redact(url))
    } else {
        format!("{kind} to {}: {text}", redact(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_builds_with_ring_only_and_rejects_bad_pem() {
        build_client(None, "gnip-connector/test", CONNECT_TIMEOUT).expect("default client");
        let err = build_client(Some(b"not pem"), "ua", CONNECT_TIMEOUT).expect_err("bad pem");
        assert!(err.is_fatal());
        assert!(err.to_string().contains("PEM"));
    }

    #[test]
    fn redact_strips_userinfo() {
        let u = Url::parse("https://me:pw@host/x?a=1").expect("valid");
        assert_eq!(redact(&u), "https://host/x?a=1");
    }
}
