//! Session tokens: PASETO v4.public (Ed25519 signatures over JSON claims).
//!
//! PASETO (<https://github.com/paseto-standard/paseto-spec>,
//! `docs/01-Protocol-Versions/Version4.md` and `Common.md`) rather than JWT because a
//! v4.public token has one algorithm and no header to negotiate it: there is no `alg: none`
//! and no key confusion.
//!
//! Written by hand on purpose: about a hundred lines over aws-lc-rs's Ed25519
//! (pre-authentication encoding, base64url, a signature), while the PASETO crates bring their
//! own crypto (ed25519-dalek, blake2, chacha20) and Vigil keeps one crypto provider (ADR 0001).
//! The official test vectors (`data/paseto-v4-public.json`) check it.
//!
//! A Vigil token is `v4.public.<base64url(claims JSON || signature)>.<base64url(footer)>`,
//! the footer being `{"kid":"<key id>"}`. [`TokenVerifier::verify`] refuses, in this order:
//! a token over [`MAX_TOKEN_LEN`] (before decoding anything), any header but `v4.public.`,
//! bad base64url, a key id other than its own, a bad signature, claims that are not exactly
//! [`Claims`], another issuer, an expired token, and `iat`/`nbf` more than [`CLOCK_SKEW_SECS`]
//! in the future. Errors never contain the token.
//!
//! Claims follow PASETO's registered claims (`docs/02-Implementation-Guide/04-Claims.md`):
//! `iat`, `exp` and `nbf` travel as RFC 3339 strings; [`Claims`] holds them as Unix seconds.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::pkcs8;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use vigil_model::Role;

/// The longest token accepted, checked before any decoding: 8 KiB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// How far in the future `iat` and `nbf` may be (clocks of a cluster disagree a little).
pub const CLOCK_SKEW_SECS: i64 = 60;

/// Header of a v4.public token.
const HEADER: &str = "v4.public.";
/// An Ed25519 signature's length.
const SIGNATURE_LEN: usize = 64;
/// An Ed25519 public key's length.
const PUBLIC_KEY_LEN: usize = 32;
/// The longest decoded footer read; Vigil's is about 30 bytes.
const MAX_FOOTER_LEN: usize = 256;
/// Domain separation for the key id, so that it is never mistaken for another hash of the key.
const KEY_ID_CONTEXT: &[u8] = b"vigil-auth PASETO v4.public key id\n";
/// Bytes of SHA-256 in a key id (16 base64url characters).
const KEY_ID_BYTES: usize = 12;

/// Why a token cannot be made or is refused. Never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is longer than [`MAX_TOKEN_LEN`].
    #[error("the token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    /// The token is not `v4.public.<payload>[.<footer>]` with base64url parts, or is too short
    /// to hold a signature, or its footer is not Vigil's.
    #[error("the token is malformed")]
    Malformed,
    /// The token is of another PASETO version (`v1` to `v3`), or not PASETO at all.
    #[error("the token is not a PASETO v4 token")]
    WrongVersion,
    /// The token is `v4.local` (encrypted), not `v4.public` (signed).
    #[error("the token is a v4.local token, not v4.public")]
    WrongPurpose,
    /// The token names another signing key (for example one retired by a key rotation).
    #[error("the token was signed by another key")]
    WrongKey,
    /// The signature does not verify: the token was altered or forged.
    #[error("the token's signature is not valid")]
    BadSignature,
    /// The signed payload is not Vigil's claims (missing, unknown or mistyped fields).
    #[error("the token's claims are not valid")]
    Claims,
    /// The token's issuer is not this verifier's.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// `iat` or `nbf` is more than [`CLOCK_SKEW_SECS`] in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// An issuer name is empty or longer than 256 bytes.
    #[error("the issuer is empty or longer than 256 bytes")]
    InvalidIssuer,
    /// A key is not an acceptable Ed25519 key.
    #[error("the key is not an acceptable Ed25519 key: {0}")]
    Key(&'static str),
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// Signing failed inside the crypto library, or the claims could not be serialised.
    #[error("signing the token failed")]
    Signing,
}

/// What a session token says. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Issuer: the hub's configured name; the verifier requires its own.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Session id, for idle timeout and revocation in the store.
    pub sid: String,
    /// The user's role at sign-in.
    pub role: Role,
    /// SMART scopes, space separated (see [`crate::scope::Scopes`]).
    pub scope: String,
    /// Issued at.
    #[serde(with = "rfc3339")]
    pub iat: i64,
    /// Expires at (exclusive): refused from this second on.
    #[serde(with = "rfc3339")]
    pub exp: i64,
    /// Not before, if any.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rfc3339_option"
    )]
    pub nbf: Option<i64>,
    /// Token id, unique per token.
    pub jti: String,
}

/// The `{"kid":…}` footer.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Footer {
    kid: String,
}

/// A random identifier of 128 bits in base64url (22 characters), for session and token ids.
pub fn random_id() -> Result<String, TokenError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| TokenError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The key that signs session tokens, with the issuer it signs for.
pub struct TokenSigner {
    key_pair: Ed25519KeyPair,
    issuer: String,
    key_id: String,
}

impl TokenSigner {
    /// A new signer for `issuer` and its Ed25519 private key as a PKCS#8 v2 document (erased
    /// from memory when dropped) to store where only the hub can read it (mode 0600).
    pub fn generate(issuer: &str) -> Result<(Self, pkcs8::Document), TokenError> {
        let document =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| TokenError::Random)?;
        let signer = Self::from_pkcs8(document.as_ref(), issuer)?;
        Ok((signer, document))
    }

    /// The signer for `issuer` with the Ed25519 private key in `pkcs8` (v1 or v2).
    pub fn from_pkcs8(pkcs8: &[u8], issuer: &str) -> Result<Self, TokenError> {
        check_issuer(issuer)?;
        let key_pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|rejected| TokenError::Key(rejected.description_()))?;
        let key_id = key_id(key_pair.public_key().as_ref());
        Ok(Self {
            key_pair,
            issuer: issuer.to_owned(),
            key_id,
        })
    }

    /// The issuer this signer signs for.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key id in the footer of every token: 16 base64url characters of
    /// SHA-256(context || public key). Stable for a key; changes when the key is rotated.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8] {
        self.key_pair.public_key().as_ref()
    }

    /// The verifier of this signer's tokens.
    pub fn verifier(&self) -> TokenVerifier {
        let mut public_key = [0u8; PUBLIC_KEY_LEN];
        public_key.copy_from_slice(self.public_key());
        TokenVerifier {
            public_key,
            issuer: self.issuer.clone(),
            key_id: self.key_id.clone(),
        }
    }

    /// Signs `claims`. Refuses claims of another issuer ([`TokenError::WrongIssuer`]) and
    /// claims too large for a token ([`TokenError::TooLong`]): a signer never makes a token
    /// its verifier would refuse for either.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        let message = serde_json::to_vec(claims).map_err(|_| TokenError::Signing)?;
        let footer = serde_json::to_vec(&Footer {
            kid: self.key_id.clone(),
        })
        .map_err(|_| TokenError::Signing)?;
        let token = sign_raw(&self.key_pair, &message, &footer, b"")?;
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong);
        }
        Ok(token)
    }
}

impl fmt::Debug for TokenSigner {
    // Never the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner")
            .field("issuer", &self.issuer)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Verifies session tokens of one public key and one issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenVerifier {
    public_key: [u8; PUBLIC_KEY_LEN],
    issuer: String,
    key_id: String,
}

impl TokenVerifier {
    /// The verifier of tokens signed by the Ed25519 `public_key` (32 bytes) for `issuer`.
    pub fn from_public_key(public_key: &[u8], issuer: &str) -> Result<Self, TokenError> {
        check_issuer(issuer)?;
        let public_key: [u8; PUBLIC_KEY_LEN] = public_key
            .try_into()
            .map_err(|_| TokenError::Key("an Ed25519 public key is 32 bytes"))?;
        Ok(Self {
            key_id: key_id(&public_key),
            public_key,
            issuer: issuer.to_owned(),
        })
    }

    /// The key id this verifier expects in a token's footer.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The claims of `token` if it is a valid token of this key and issuer at `now_unix`.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<Claims, TokenError> {
        let decoded = decode(token)?;
        let footer: Footer = (!decoded.footer.is_empty())
            .then(|| serde_json::from_slice(&decoded.footer).ok())
            .flatten()
            .ok_or(TokenError::Malformed)?;
        if footer.kid != self.key_id {
            return Err(TokenError::WrongKey);
        }
        verify_signature(&self.public_key, &decoded, b"")?;
        let claims: Claims =
            serde_json::from_slice(&decoded.message).map_err(|_| TokenError::Claims)?;
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if now_unix >= claims.exp {
            return Err(TokenError::Expired);
        }
        let horizon = now_unix.saturating_add(CLOCK_SKEW_SECS);
        if claims.iat > horizon || claims.nbf.is_some_and(|nbf| nbf > horizon) {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

fn check_issuer(issuer: &str) -> Result<(), TokenError> {
    if issuer.is_empty() || issuer.len() > 256 {
        Err(TokenError::InvalidIssuer)
    } else {
        Ok(())
    }
}

fn key_id(public_key: &[u8]) -> String {
    let hash = digest(&SHA256, &[KEY_ID_CONTEXT, public_key].concat());
    URL_SAFE_NO_PAD.encode(&hash.as_ref()[..KEY_ID_BYTES])
}

/// PASETO's pre-authentication encoding (`Common.md`, "PAE"): the number of pieces, then
/// each piece's length and bytes, lengths as 64-bit little-endian with the top bit clear.
fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let le64 = |n: usize| ((n as u64) & (u64::MAX >> 1)).to_le_bytes();
    let mut out = Vec::with_capacity(8 + pieces.iter().map(|p| 8 + p.len()).sum::<usize>());
    out.extend_from_slice(&le64(pieces.len()));
    for piece in pieces {
        out.extend_from_slice(&le64(piece.len()));
        out.extend_from_slice(piece);
    }
    out
}

/// v4.public Sign (`Version4.md`): `h || base64url(m || sig) [|| "." || base64url(f)]`, sig
/// over PAE(h, m, f, i).
fn sign_raw(
    key_pair: &Ed25519KeyPair,
    message: &[u8],
    footer: &[u8],
    implicit: &[u8],
) -> Result<String, TokenError> {
    let signature = key_pair
        .try_sign(&pae(&[HEADER.as_bytes(), message, footer, implicit]))
        .map_err(|_| TokenError::Signing)?;
    let mut token = String::from(HEADER);
    token.push_str(&URL_SAFE_NO_PAD.encode([message, signature.as_ref()].concat()));
    if !footer.is_empty() {
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(footer));
    }
    Ok(token)
}

/// A token's parts, decoded but not yet verified.
struct Decoded {
    message: Vec<u8>,
    signature: Vec<u8>,
    footer: Vec<u8>,
}

/// Checks the length and header of `token` and decodes its payload and footer.
fn decode(token: &str) -> Result<Decoded, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong);
    }
    let Some(body) = token.strip_prefix(HEADER) else {
        return Err(if token.starts_with("v4.local.") {
            TokenError::WrongPurpose
        } else if token.starts_with("v4.") {
            TokenError::Malformed
        } else {
            TokenError::WrongVersion
        });
    };
    let (payload, footer) = match body.split_once('.') {
        Some((payload, footer)) if !footer.is_empty() && !footer.contains('.') => (payload, footer),
        Some(_) => return Err(TokenError::Malformed),
        None => (body, ""),
    };
    let mut payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    if payload.len() < SIGNATURE_LEN {
        return Err(TokenError::Malformed);
    }
    let footer = URL_SAFE_NO_PAD
        .decode(footer)
        .map_err(|_| TokenError::Malformed)?;
    if footer.len() > MAX_FOOTER_LEN {
        return Err(TokenError::Malformed);
    }
    let signature = payload.split_off(payload.len() - SIGNATURE_LEN);
    Ok(Decoded {
        message: payload,
        signature,
        footer,
    })
}

/// v4.public Verify (`Version4.md`), steps 4 to 6: the signature over PAE(h, m, f, i).
fn verify_signature(
    public_key: &[u8],
    decoded: &Decoded,
    implicit: &[u8],
) -> Result<(), TokenError> {
    let signed = pae(&[
        HEADER.as_bytes(),
        &decoded.message,
        &decoded.footer,
        implicit,
    ]);
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&signed, &decoded.signature)
        .map_err(|_| TokenError::BadSignature)
}

/// Unix seconds as RFC 3339 (`2026-11-29T08:15:00Z`), PASETO's form of registered times.
mod rfc3339 {
    use serde::{Deserialize as _, Deserializer, Serializer, de, ser};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub(super) fn serialize<S: Serializer>(unix: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        let text = OffsetDateTime::from_unix_timestamp(*unix)
            .ok()
            .and_then(|time| time.format(&Rfc3339).ok())
            .ok_or_else(|| ser::Error::custom("time out of range"))?;
        serializer.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        OffsetDateTime::parse(text, &Rfc3339)
            .map(OffsetDateTime::unix_timestamp)
            .map_err(|_| de::Error::custom("not an RFC 3339 date-time"))
    }
}

/// [`rfc3339`] for an optional time.
mod rfc3339_option {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        unix: &Option<i64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match unix {
            Some(unix) => super::rfc3339::serialize(unix, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<i64>, D::Error> {
        super::rfc3339::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../data/paseto-v4-public.json");
    const ISSUER: &str = "vigil.example.org";
    const NOW: i64 = 1_790_000_000;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn vectors() -> Vec<serde_json::Value> {
        let document: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        document["tests"].as_array().unwrap().clone()
    }

    fn vector_public_key() -> Vec<u8> {
        hex("1eb9dbbbbc047c03fd70604e0071f0987e16b28b757225c11f00415d0e20b1a2")
    }

    fn claims() -> Claims {
        Claims {
            iss: ISSUER.to_owned(),
            sub: "user-17".to_owned(),
            sid: "session-4".to_owned(),
            role: Role::Clinician,
            scope: "openid fhirUser user/Observation.rs".to_owned(),
            iat: NOW,
            exp: NOW + 900,
            nbf: None,
            jti: random_id().unwrap(),
        }
    }

    fn text<'a>(vector: &'a serde_json::Value, field: &str) -> &'a str {
        vector[field].as_str().unwrap()
    }

    #[test]
    fn official_v4_public_vectors_sign_and_verify() {
        let mut checked = 0;
        for vector in vectors().iter().filter(|v| v["expect-fail"] == false) {
            let name = text(vector, "name");
            // The PKCS#8 v1 document of the PEM, and the seed, give the same key.
            let pem = text(vector, "secret-key-pem");
            let der_b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(der_b64)
                .unwrap();
            let key_pair = Ed25519KeyPair::from_pkcs8(&der).unwrap();
            let from_seed =
                Ed25519KeyPair::from_seed_unchecked(&hex(text(vector, "secret-key-seed"))).unwrap();
            assert_eq!(
                key_pair.public_key().as_ref(),
                &hex(text(vector, "public-key"))[..]
            );
            assert_eq!(
                from_seed.public_key().as_ref(),
                key_pair.public_key().as_ref()
            );

            let payload = text(vector, "payload").as_bytes();
            let footer = text(vector, "footer").as_bytes();
            let implicit = text(vector, "implicit-assertion").as_bytes();
            let token = text(vector, "token");
            // Ed25519 is deterministic: signing gives the vector's token exactly.
            assert_eq!(
                sign_raw(&key_pair, payload, footer, implicit).unwrap(),
                token,
                "{name}"
            );

            let decoded = decode(token).unwrap();
            assert_eq!(decoded.message, payload, "{name}");
            assert_eq!(decoded.footer, footer, "{name}");
            verify_signature(&hex(text(vector, "public-key")), &decoded, implicit).unwrap();
            // The implicit assertion is bound: another one fails.
            assert_eq!(
                verify_signature(&hex(text(vector, "public-key")), &decoded, b"other"),
                Err(TokenError::BadSignature),
                "{name}"
            );
            checked += 1;
        }
        assert_eq!(checked, 3);
    }

    #[test]
    fn official_failure_vectors_are_refused() {
        let public_key = vector_public_key();
        let mut checked = 0;
        for vector in vectors().iter().filter(|v| v["expect-fail"] == true) {
            let name = text(vector, "name");
            let token = text(vector, "token");
            let implicit = text(vector, "implicit-assertion").as_bytes();
            let result = decode(token).and_then(|d| verify_signature(&public_key, &d, implicit));
            let expected = match name {
                "4-F-1" | "4-F-4" => TokenError::WrongPurpose,
                "4-F-2" => TokenError::BadSignature,
                "4-F-3" => TokenError::WrongVersion,
                other => panic!("unexpected vector {other}"),
            };
            assert_eq!(result.err(), Some(expected), "{name}");
            checked += 1;
        }
        assert_eq!(checked, 4);
    }

    #[test]
    fn pae_matches_the_specification_examples() {
        // Common.md: PAE([]) and PAE(['']) and PAE(['test']).
        assert_eq!(pae(&[]), b"\x00\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(
            pae(&[b""]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        );
        assert_eq!(
            pae(&[b"test"]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00test"
        );
    }

    #[test]
    fn a_signed_token_verifies_to_its_claims() {
        let (signer, document) = TokenSigner::generate(ISSUER).unwrap();
        let claims = claims();
        let token = signer.sign(&claims).unwrap();
        assert!(token.starts_with("v4.public."));
        assert_eq!(signer.verifier().verify(&token, NOW).unwrap(), claims);

        // The stored key and the published public key give the same signer and verifier.
        let reloaded = TokenSigner::from_pkcs8(document.as_ref(), ISSUER).unwrap();
        assert_eq!(reloaded.key_id(), signer.key_id());
        let verifier = TokenVerifier::from_public_key(signer.public_key(), ISSUER).unwrap();
        assert_eq!(verifier, signer.verifier());
        assert_eq!(verifier.verify(&token, NOW).unwrap(), claims);
    }

    #[test]
    fn times_travel_as_rfc_3339_and_the_footer_names_the_key() {
        let (signer, _) = TokenSigner::generate(ISSUER).unwrap();
        let token = signer.sign(&claims()).unwrap();
        let decoded = decode(&token).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&decoded.message).unwrap();
        assert_eq!(json["iat"], "2026-09-21T14:13:20Z");
        assert_eq!(json["exp"], "2026-09-21T14:28:20Z");
        assert_eq!(json["role"], "clinician");
        assert!(json.get("nbf").is_none());
        let footer: serde_json::Value = serde_json::from_slice(&decoded.footer).unwrap();
        assert_eq!(footer, serde_json::json!({ "kid": signer.key_id() }));
        assert_eq!(signer.key_id().len(), 16);
    }

    #[test]
    fn a_tampered_payload_or_signature_is_refused() {
        let (signer, _) = TokenSigner::generate(ISSUER).unwrap();
        let verifier = signer.verifier();
        let token = signer.sign(&claims()).unwrap();
        let decoded = decode(&token).unwrap();
        let footer_b64 = token.rsplit('.').next().unwrap();

        // The role changed from clinician to admin, signature kept.
        let forged = String::from_utf8(decoded.message.clone())
            .unwrap()
            .replace("\"clinician\"", "\"admin\"");
        let body = URL_SAFE_NO_PAD.encode([forged.as_bytes(), &decoded.signature].concat());
        let tampered = format!("{HEADER}{body}.{footer_b64}");
        assert_eq!(
            verifier.verify(&tampered, NOW),
            Err(TokenError::BadSignature)
        );

        // One bit of the signature flipped.
        let mut signature = decoded.signature.clone();
        signature[0] ^= 1;
        let body = URL_SAFE_NO_PAD.encode([&decoded.message[..], &signature].concat());
        let tampered = format!("{HEADER}{body}.{footer_b64}");
        assert_eq!(
            verifier.verify(&tampered, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_token_of_another_key_is_refused() {
        let (signer, _) = TokenSigner::generate(ISSUER).unwrap();
        let (other, _) = TokenSigner::generate(ISSUER).unwrap();
        let token = other.sign(&claims()).unwrap();
        assert_eq!(
            signer.verifier().verify(&token, NOW),
            Err(TokenError::WrongKey)
        );

        // Another key that claims this key's id fails on the signature.
        let decoded = decode(&token).unwrap();
        let footer = serde_json::to_vec(&Footer {
            kid: signer.key_id().to_owned(),
        })
        .unwrap();
        let forged = sign_raw(&other.key_pair, &decoded.message, &footer, b"").unwrap();
        assert_eq!(
            signer.verifier().verify(&forged, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_footer_that_is_not_vigils_is_malformed() {
        let (signer, _) = TokenSigner::generate(ISSUER).unwrap();
        let message = serde_json::to_vec(&claims()).unwrap();
        for footer in [
            &b""[..],
            b"arbitrary-string-that-isn't-json",
            b"{\"kid\":1}",
            b"{\"kid\":\"x\",\"extra\":true}",
        ] {
            let token = sign_raw(&signer.key_pair, &message, footer, b"").unwrap();
            assert_eq!(
                signer.verifier().verify(&token, NOW),
                Err(TokenError::Malformed)
            );
        }
        let long_footer = vec![b'x'; MAX_FOOTER_LEN + 1];
        let token = sign_raw(&signer.key_pair, &message, &long_footer, b"").unwrap();
        assert_eq!(
            signer.verifier().verify(&token, NOW),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn expiry_and_future_times_are_enforced() {
        let (signer, _) = TokenSigner::generate(ISSUER).unwrap();
        let verifier = signer.verifier();
        let claims = claims();
        let token = signer.sign(&claims).unwrap();
        assert!(verifier.verify(&token, claims.exp - 1).is_ok());
        assert_eq!(
            verifier.verify(&token, claims.exp),
            Err(TokenError::Expired)
        );

        // Issued 60 s in the future: accepted; 61 s: refused.
        assert!(verifier.verify(&token, NOW - CLOCK_SKEW_SECS).is_ok());
        assert_eq!(
            verifier.verify(&token, NOW - CLOCK_SKEW_SECS - 1),
            Err(TokenError::NotYetValid)
        );

        let mut later = self::claims();
        later.nbf = Some(NOW + 300);
        let token = signer.sign(&later).unwrap();
        assert_eq!(verifier.verify(&token, NOW), Err(TokenError::NotYetValid));
        assert_eq!(verifier.verify(&token, NOW + 300).unwrap(), later);
    }

    #[test]
    fn another_issuer_is_refused_on_both_sides() {
        let (signer, document) = TokenSigner::generate(ISSUER).unwrap();
        let mut foreign = claims();
        foreign.iss = "elsewhere.example.org".to_owned();
        assert_eq!(signer.sign(&foreign), Err(TokenError::WrongIssuer));

        let elsewhere =
            TokenSigner::from_pkcs8(document.as_ref(), "elsewhere.example.org").unwrap();
        let token = elsewhere.sign(&foreign).unwrap();
        assert_eq!(
            signer.verifier().verify(&token, NOW),
            Err(TokenError::WrongIssuer)
        );
        assert_eq!(
            TokenSigner::from_pkcs8(document.as_ref(), "").err(),
            Some(TokenError::InvalidIssuer)
        );
    }

    #[test]
    fn claims_are_parsed_strictly() {
        let (signer, _) = TokenSigner::generate(ISSUER).unwrap();
        let footer = serde_json::to_vec(&Footer {
            kid: signer.key_id().to_owned(),
        })
        .unwrap();
        let good = serde_json::to_value(claims()).unwrap();
        let mut unknown = good.clone();
        unknown["admin"] = serde_json::json!(true);
        let mut no_exp = good.clone();
        no_exp.as_object_mut().unwrap().remove("exp");
        let mut unix_exp = good.clone();
        unix_exp["exp"] = serde_json::json!(NOW + 900);
        let mut bad_role = good.clone();
        bad_role["role"] = serde_json::json!("root");
        for (what, payload) in [
            ("unknown field", serde_json::to_vec(&unknown).unwrap()),
            ("no exp", serde_json::to_vec(&no_exp).unwrap()),
            ("exp as a number", serde_json::to_vec(&unix_exp).unwrap()),
            ("unknown role", serde_json::to_vec(&bad_role).unwrap()),
            ("not JSON", b"\xff\xfe".to_vec()),
            ("empty", Vec::new()),
        ] {
            let token = sign_raw(&signer.key_pair, &payload, &footer, b"").unwrap();
            assert_eq!(
                signer.verifier().verify(&token, NOW),
                Err(TokenError::Claims),
                "{what}"
            );
        }
    }

    #[test]
    fn malformed_and_oversized_tokens_are_refused_before_verification() {
        let (signer, _) = TokenSigner::generate(ISSUER).unwrap();
        let verifier = signer.verifier();
        let token = signer.sign(&claims()).unwrap();
        let too_long = format!("{token}{}", "A".repeat(MAX_TOKEN_LEN));
        assert_eq!(verifier.verify(&too_long, NOW), Err(TokenError::TooLong));
        let (payload, footer) = token[HEADER.len()..].split_once('.').unwrap();
        let padded = format!("{HEADER}{payload}==.{footer}");
        for (what, bad, expected) in [
            ("empty", String::new(), TokenError::WrongVersion),
            (
                "a JWT",
                "eyJhbGciOiJub25lIn0.e30.".to_owned(),
                TokenError::WrongVersion,
            ),
            (
                "v3",
                token.replacen("v4.", "v3.", 1),
                TokenError::WrongVersion,
            ),
            ("v4, no purpose", "v4.".to_owned(), TokenError::Malformed),
            (
                "upper case",
                token.replacen("v4.public", "V4.PUBLIC", 1),
                TokenError::WrongVersion,
            ),
            (
                "v4.local",
                token.replacen("public", "local", 1),
                TokenError::WrongPurpose,
            ),
            ("no payload", "v4.public.".to_owned(), TokenError::Malformed),
            (
                "short payload",
                "v4.public.AAAA".to_owned(),
                TokenError::Malformed,
            ),
            ("extra part", format!("{token}.e30"), TokenError::Malformed),
            (
                "empty footer part",
                format!("{}.", token.rsplit_once('.').unwrap().0),
                TokenError::Malformed,
            ),
            ("padding", padded.clone(), TokenError::Malformed),
            (
                "standard alphabet",
                token.replace('-', "+").replace('_', "/"),
                TokenError::Malformed,
            ),
        ] {
            // Some replacements leave the token unchanged when the character is absent.
            if bad == token {
                continue;
            }
            let result = verifier.verify(&bad, NOW);
            assert_eq!(result, Err(expected), "{what}");
        }
    }

    #[test]
    fn errors_and_debug_never_show_secrets() {
        let (signer, document) = TokenSigner::generate(ISSUER).unwrap();
        let debug = format!("{signer:?}");
        assert!(debug.contains(signer.key_id()));
        assert!(!debug.contains(&URL_SAFE_NO_PAD.encode(document.as_ref())));
        let token = signer.sign(&claims()).unwrap();
        let error = signer.verifier().verify(&token, NOW + 10_000).unwrap_err();
        assert!(!error.to_string().contains(&token[10..30]));
    }

    #[test]
    fn oversized_claims_are_not_signed() {
        let (signer, _) = TokenSigner::generate(ISSUER).unwrap();
        let mut claims = claims();
        claims.scope = "user/Observation.rs ".repeat(400);
        assert_eq!(signer.sign(&claims), Err(TokenError::TooLong));
    }

    #[test]
    fn random_ids_are_distinct_and_url_safe() {
        let a = random_id().unwrap();
        let b = random_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(matches!(
            TokenSigner::from_pkcs8(b"not a key", ISSUER),
            Err(TokenError::Key(_))
        ));
        assert!(matches!(
            TokenVerifier::from_public_key(&[0; 31], ISSUER),
            Err(TokenError::Key(_))
        ));
    }
}
