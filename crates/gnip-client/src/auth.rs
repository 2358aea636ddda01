//! Credentials: HTTP Basic for the enterprise streams (console login), a
//! bearer token for X API v2. Secrets stay inside `SecretString` and leave
//! it only to build the `Authorization` header, which is marked sensitive so
//! that HTTP-level logging and Debug output never show it.

use std::fmt;

use base64::Engine as _;
use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

/// How to authenticate a stream connection.
#[derive(Clone)]
pub enum Credentials {
    /// HTTP Basic with the console login (enterprise streams).
    Basic {
        /// The login (usually an email address). Not secret, but shown only
        /// where needed.
        username: String,
        /// The password.
        password: SecretString,
    },
    /// An OAuth 2.0 app-only bearer token (X API v2).
    Bearer(SecretString),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"[redacted]")
                .finish(),
            Credentials::Bearer(_) => f.write_str("Bearer([redacted])"),
        }
    }
}

/// The credentials could not form a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The user name, password or token holds characters that cannot appear
    /// in an HTTP header (a line break, for example). The secret itself is
    /// not repeated here.
    #[error("the {0} contains characters not allowed in an HTTP header")]
    InvalidCharacters(&'static str),
    /// A Basic user name with a colon cannot be encoded unambiguously.
    #[error("the username must not contain ':'")]
    ColonInUsername,
}

impl Credentials {
    /// Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials::Basic {
            username: username.into(),
            password: SecretString::from(password.into()),
        }
    }

    /// A bearer token.
    pub fn bearer(token: impl Into<String>) -> Credentials {
        Credentials::Bearer(SecretString::from(token.into()))
    }

    /// The `Authorization` header value, marked sensitive.
    ///
    /// # Errors
    ///
    /// [`AuthError`] when a credential cannot be put in a header.
    pub fn header_value(&self) -> Result<HeaderValue, AuthError> {
        let mut value = match self {
            Credentials::Basic { username, password } => {
                if username.contains(':') {
                    return Err(AuthError::ColonInUsername);
                }
                let pair = format!("{username}:{}", password.expose_secret());
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                HeaderValue::try_from(format!("Basic {encoded}"))
                    .map_err(|_| AuthError::InvalidCharacters("username"))?
            }
            Credentials::Bearer(token) => {
                HeaderValue::try_from(format!("Bearer {}", token.expose_secret().trim()))
                    .map_err(|_| AuthError::InvalidCharacters("bearer token"))?
            }
        };
        value.set_sensitive(true);
        Ok(value)
    }

    /// What to check when the server answers 401, for error messages.
    pub fn hint_for_401(&self) -> &'static str {
        match self {
            Credentials::Basic { .. } => "check the username and password",
            Credentials::Bearer(_) => "check the bearer token",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let b = Credentials::basic("me@example.com", "hunter2");
        let t = Credentials::bearer("AAAAtoken");
        let shown = format!("{b:?} {t:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("AAAAtoken"));
        assert!(shown.contains("me@example.com"));
    }

    #[test]
    fn header_values() {
        let b = Credentials::basic("Aladdin", "open sesame");
        let h = b.header_value().expect("valid");
        assert_eq!(
            h.to_str().expect("ascii"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert!(h.is_sensitive());
        assert!(!format!("{h:?}").contains("QWxh"));
        let t = Credentials::bearer("abc\n");
        assert_eq!(
            t.header_value().expect("valid").to_str().expect("ascii"),
            "Bearer abc"
        );
        assert_eq!(
            Credentials::basic("a:b", "c").header_value(),
            Err(AuthError::ColonInUsername)
        );
        assert_eq!(
            Credentials::bearer("a\nb").header_value(),
            Err(AuthError::InvalidCharacters("bearer token"))
        );
    }
}
