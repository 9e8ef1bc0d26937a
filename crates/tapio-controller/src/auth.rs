//! Shared-token authentication: `Authorization: Bearer <token>`.
//!
//! The expected token is kept as its SHA-256 digest; a presented token is
//! hashed and the digests are compared in constant time, so neither the
//! content nor the length of the token leaks through timing.

use sha2::{Digest, Sha256};

/// An expected Bearer token.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Why a token could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read token file `{path}`")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The token is empty after trimming whitespace.
    #[error("token from {origin} is empty")]
    Empty {
        /// `file <path>` or `TAPIO_CONTROLLER_TOKEN`.
        origin: String,
    },
}

impl Token {
    /// A token from its text; surrounding whitespace (a trailing newline in
    /// a file) is trimmed.
    ///
    /// # Errors
    /// [`TokenError::Empty`] when nothing is left.
    pub fn new(text: &str, origin: &str) -> Result<Self, TokenError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(TokenError::Empty {
                origin: origin.to_owned(),
            });
        }
        Ok(Token {
            digest: Sha256::digest(t.as_bytes()).into(),
        })
    }

    /// Reads a token file.
    ///
    /// # Errors
    /// [`TokenError::Read`] or [`TokenError::Empty`].
    pub fn from_file(path: &str) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_owned(),
            source,
        })?;
        Token::new(&text, &format!("file `{path}`"))
    }

    /// True when `authorization` (the header value) carries this token.
    #[must_use]
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(presented) = bearer(value) else {
            return false;
        };
        let d: [u8; 32] = Sha256::digest(presented).into();
        constant_time_eq(&d, &self.digest)
    }
}

/// The credentials of a `Bearer` authorization value (scheme is
/// case-insensitive, RFC 7235).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let rest = rest.trim_ascii();
    (!rest.is_empty()).then_some(rest)
}

/// Compares two digests without an early exit.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into a short circuit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_right_bearer_token() {
        let t = Token::new("s3cret\n", "test").unwrap();
        assert!(t.accepts(Some(b"Bearer s3cret")));
        assert!(t.accepts(Some(b"bearer s3cret")));
        assert!(!t.accepts(Some(b"Bearer s3cre")));
        assert!(!t.accepts(Some(b"Bearer s3cret2")));
        assert!(!t.accepts(Some(b"Basic s3cret")));
        assert!(!t.accepts(Some(b"Bearer ")));
        assert!(!t.accepts(Some(b"s3cret")));
        assert!(!t.accepts(None));
    }

    #[test]
    fn empty_token_is_refused() {
        assert!(matches!(
            Token::new(" \n", "env"),
            Err(TokenError::Empty { .. })
        ));
    }
}
