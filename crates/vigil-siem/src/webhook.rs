//! Standard Webhooks signing (<https://www.standardwebhooks.com>, specification v1).
//!
//! Each request carries `webhook-id` (the same for every attempt at one alert, so a receiver
//! can drop repeats), `webhook-timestamp` (Unix seconds of this attempt) and
//! `webhook-signature: v1,<base64 HMAC-SHA256>` over `<id>.<timestamp>.<body>`, keyed with the
//! bytes of a secret written `whsec_<base64>`. Every attempt is signed afresh, because a
//! receiver refuses timestamps older than its tolerance (the specification suggests five
//! minutes).

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::prelude::{BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};
use serde::{Deserialize, Deserializer};

/// Header naming the message.
pub const HEADER_ID: &str = "webhook-id";
/// Header with the attempt's Unix time in seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header with the signature.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The prefix of a secret's text.
pub const SECRET_PREFIX: &str = "whsec_";
/// Shortest secret accepted, in bytes (the specification's lower bound).
pub const MIN_SECRET_BYTES: usize = 24;
/// Longest secret accepted, in bytes (the specification's upper bound).
pub const MAX_SECRET_BYTES: usize = 64;

/// Why a secret was refused. Never carries any of the secret's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The text does not start with `whsec_`.
    #[error("a webhook secret starts with `whsec_`")]
    Prefix,
    /// What follows `whsec_` is not standard base64.
    #[error("a webhook secret is `whsec_` followed by standard base64")]
    Base64,
    /// Fewer than 24 or more than 64 bytes.
    #[error(
        "a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes; this one holds {bytes}"
    )]
    Length {
        /// How many bytes it decodes to.
        bytes: usize,
    },
}

/// A webhook signing secret. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = SecretError;
    fn from_str(text: &str) -> Result<Secret, SecretError> {
        // Padding is optional: libraries generate secrets of 24 or 32 bytes, which need none,
        // and some people strip it from longer ones.
        const LENIENT: GeneralPurpose = GeneralPurpose::new(
            &alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::Prefix)?;
        let bytes = LENIENT.decode(encoded).map_err(|_| SecretError::Base64)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(SecretError::Length { bytes: bytes.len() });
        }
        Ok(Secret(bytes))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The `webhook-signature` value: `v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`.
pub fn sign(secret: &Secret, id: &str, timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("v1,{}", BASE64_STANDARD.encode(context.sign().as_ref()))
}

/// The message id of the alert stored under `alert` and detected at `time_ms` (Unix ms), for
/// the sink holding `secret`: `msg_` and the first 128 bits of HMAC-SHA256 over
/// `vigil-alert.<alert>.<time_ms>`, in URL-safe base64 (free of the `.` that separates the
/// signed parts). The same alert keeps its id on every attempt and after a restart of the hub
/// (Standard Webhooks: a message sent again keeps its id), alerts differ (the detection time
/// tells apart the alerts of a data directory made afresh), and the id tells nothing to
/// anyone without the secret.
pub fn message_id(secret: &Secret, alert: u64, time_ms: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("vigil-alert.{alert}.{time_ms}").as_bytes());
    let bytes = tag.as_ref().get(..16).unwrap_or(tag.as_ref());
    format!("msg_{}", BASE64_URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The specification's own example, as its reference libraries test it: reproducing it is
    /// what says a receiver's library will accept Vigil's signatures.
    #[test]
    fn reproduces_the_standard_webhooks_test_vector() {
        let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
        assert_eq!(
            sign(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn any_change_changes_the_signature() {
        let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
        let base = sign(&secret, "msg_1", 10, b"{}");
        assert_ne!(base, sign(&secret, "msg_2", 10, b"{}"));
        assert_ne!(base, sign(&secret, "msg_1", 11, b"{}"));
        assert_ne!(base, sign(&secret, "msg_1", 10, b"{ }"));
    }

    #[test]
    fn refuses_each_malformed_secret_without_echoing_it() {
        assert_eq!(
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse::<Secret>(),
            Err(SecretError::Prefix)
        );
        assert_eq!(
            "whsec_not base64!".parse::<Secret>(),
            Err(SecretError::Base64)
        );
        assert_eq!(
            format!("whsec_{}", BASE64_STANDARD.encode([7_u8; 23])).parse::<Secret>(),
            Err(SecretError::Length { bytes: 23 })
        );
        assert_eq!(
            format!("whsec_{}", BASE64_STANDARD.encode([7_u8; 65])).parse::<Secret>(),
            Err(SecretError::Length { bytes: 65 })
        );
        let padded = format!("whsec_{}", BASE64_STANDARD.encode([7_u8; 25]));
        assert!(padded.ends_with("=="));
        assert!(padded.parse::<Secret>().is_ok());
        assert!(padded.trim_end_matches('=').parse::<Secret>().is_ok());
        let error = "whsec_c2VjcmV0LXRleHQ=".parse::<Secret>().unwrap_err();
        assert!(!error.to_string().contains("c2VjcmV0"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
    }

    #[test]
    fn message_ids_follow_the_alert_and_the_secret_and_are_dot_free() {
        let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
        let other: Secret = "whsec_YW5vdGhlciBzaW5rIHNlY3JldCwgb2YgMzIgYnl0ZXM="
            .parse()
            .unwrap();
        let a = message_id(&secret, 7, 1_764_400_000_000);
        assert_eq!(a, message_id(&secret, 7, 1_764_400_000_000), "sent again");
        assert_ne!(a, message_id(&secret, 8, 1_764_400_000_000));
        assert_ne!(
            a,
            message_id(&secret, 7, 1_764_400_000_001),
            "a data directory anew"
        );
        assert_ne!(a, message_id(&other, 7, 1_764_400_000_000));
        assert!(a.starts_with("msg_") && a.len() == 4 + 22);
        assert!(!a.contains('.'));
    }
}
