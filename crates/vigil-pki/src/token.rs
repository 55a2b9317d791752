//! One-time enrolment tokens.
//!
//! A token is `vigil1.<id>.<secret>`: a public id (16 hex digits) to find its record, and a
//! 256-bit secret (base64url) of which the hub stores only the SHA-256. The hub compares hashes
//! in constant time, marks the token used in the same transaction that accepts it (single use),
//! and refuses it after its expiry.

use std::fmt;

use aws_lc_rs::{constant_time, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{PkiError, hex, random_bytes};

const PREFIX: &str = "vigil1";
const SECRET_BYTES: usize = 32;

/// A freshly made token: the text to hand to the device maker once, and what to store.
pub struct NewToken {
    /// The whole token, shown once and never stored.
    pub token: String,
    /// The public id, stored.
    pub id: String,
    /// SHA-256 of the secret, stored.
    pub secret_hash: [u8; 32],
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl NewToken {
    /// Makes a token from the system's secure random generator.
    pub fn generate() -> Result<NewToken, PkiError> {
        let id = hex::encode(&random_bytes::<8>()?);
        let secret = random_bytes::<SECRET_BYTES>()?;
        let secret_hash = hash(&secret);
        Ok(NewToken {
            token: format!("{PREFIX}.{id}.{}", URL_SAFE_NO_PAD.encode(secret)),
            id,
            secret_hash,
        })
    }
}

/// A token as a device presented it.
pub struct PresentedToken {
    /// The public id, to look the record up.
    pub id: String,
    secret: Vec<u8>,
}

impl fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A text that is not a Vigil enrolment token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("enrolment token is malformed (expected vigil1.<id>.<secret>)")]
pub struct MalformedToken;

impl PresentedToken {
    /// Parses a presented token. Never echoes it: it is a secret.
    pub fn parse(text: &str) -> Result<PresentedToken, MalformedToken> {
        let mut parts = text.trim().split('.');
        let (Some(PREFIX), Some(id), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MalformedToken);
        };
        if id.len() != 16 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(MalformedToken);
        }
        let secret = URL_SAFE_NO_PAD.decode(secret).map_err(|_| MalformedToken)?;
        if secret.len() != SECRET_BYTES {
            return Err(MalformedToken);
        }
        Ok(PresentedToken {
            id: id.to_owned(),
            secret,
        })
    }

    /// Whether the secret hashes to `stored_hash`, compared in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        constant_time::verify_slices_are_equal(&hash(&self.secret), stored_hash).is_ok()
    }
}

fn hash(secret: &[u8]) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, secret);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_and_matches_only_its_own_hash() {
        let a = NewToken::generate().unwrap();
        let b = NewToken::generate().unwrap();
        assert_ne!(a.token, b.token);
        let presented = PresentedToken::parse(&a.token).unwrap();
        assert_eq!(presented.id, a.id);
        assert!(presented.matches(&a.secret_hash));
        assert!(!presented.matches(&b.secret_hash));
        assert!(!presented.matches(&[]));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = NewToken::generate().unwrap().token;
        let (head, _) = good.rsplit_once('.').unwrap();
        for bad in [
            String::new(),
            "vigil1".into(),
            good.replace("vigil1", "vigil2"),
            format!("{good}.x"),
            format!("{head}.short"),
            format!("{head}.!!!!"),
            good.replacen('.', ".XYZ", 1),
        ] {
            assert_eq!(
                PresentedToken::parse(&bad).err(),
                Some(MalformedToken),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let token = NewToken::generate().unwrap();
        let secret = token.token.rsplit('.').next().unwrap().to_owned();
        let presented = PresentedToken::parse(&token.token).unwrap();
        for printed in [format!("{token:?}"), format!("{presented:?}")] {
            assert!(!printed.contains(&secret), "{printed}");
        }
    }
}
