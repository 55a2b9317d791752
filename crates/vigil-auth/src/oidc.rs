//! Signing in through a hospital's OpenID Connect provider: ID token verification and PKCE.
//!
//! [`verify_id_token`] checks an ID token (a JWS in compact serialisation, RFC 7515 §7.1)
//! as OpenID Connect Core 1.0 §3.1.3.7 asks: an RS256 or ES256 signature (RFC 7518 §3.3,
//! §3.4) by a key of the provider's JWKS document (RFC 7517), which the caller fetches and
//! passes as bytes; then `iss`, `aud` (and `azp`), `exp`, `iat` and `nonce`. Everything else
//! is refused: `none`, HMAC and other algorithms, a `crit` header, a key of the wrong type.
//! Hand-written over aws-lc-rs for the same reason as [`crate::token`]: JOSE crates bring
//! their own crypto.
//!
//! [`PkceVerifier`] and [`verify_pkce`] are RFC 7636's S256 method, for either side of the
//! authorization-code flow.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The longest ID token accepted, checked before decoding.
pub const MAX_ID_TOKEN_LEN: usize = 16 * 1024;
/// The longest JWKS document accepted.
pub const MAX_JWKS_LEN: usize = 64 * 1024;
/// The most keys read from a JWKS document.
pub const MAX_JWKS_KEYS: usize = 64;
/// Clock difference allowed with the provider, in seconds.
pub const CLOCK_SKEW_SECS: i64 = 60;

/// A P-256 coordinate's length.
const P256_COORDINATE_LEN: usize = 32;

/// Why an ID token, a JWKS document or a PKCE value is refused. Never contains the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// The ID token is longer than [`MAX_ID_TOKEN_LEN`].
    #[error("the ID token is longer than {MAX_ID_TOKEN_LEN} bytes")]
    TooLong,
    /// The ID token is not three base64url parts with a JSON header.
    #[error("the ID token is malformed")]
    Malformed,
    /// The header names an algorithm other than RS256 and ES256, or critical extensions.
    #[error("the ID token's algorithm or header extensions are not supported")]
    UnsupportedAlgorithm,
    /// No key of the JWKS matches the header's key id and algorithm.
    #[error("no key of the provider's key set matches the ID token")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the ID token's signature is not valid")]
    BadSignature,
    /// The payload is not JSON claims with `iss`, `sub`, `aud`, `exp` and `iat`.
    #[error("the ID token's claims are not valid")]
    Claims,
    /// `iss` is not the expected issuer.
    #[error("the ID token was issued by another issuer")]
    WrongIssuer,
    /// `aud` is not exactly this client, or `azp` names another.
    #[error("the ID token is not meant for this client")]
    WrongAudience,
    /// The ID token has expired.
    #[error("the ID token has expired")]
    Expired,
    /// `iat` is in the future.
    #[error("the ID token is issued in the future")]
    IssuedInFuture,
    /// `iat` is older than the expected maximum age.
    #[error("the ID token was issued too long ago")]
    TooOld,
    /// `nonce` is missing or not the one sent.
    #[error("the ID token's nonce does not match the request's")]
    NonceMismatch,
    /// The JWKS document is too large, not JSON, or a supported key in it is malformed.
    #[error("the provider's key set is malformed")]
    Jwks,
    /// A PKCE code verifier is not 43 to 128 unreserved characters (RFC 7636 §4.1).
    #[error("the PKCE code verifier is not 43 to 128 unreserved characters")]
    PkceVerifier,
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
}

/// A public key of a provider's JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicKey {
    /// RSA: modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// P-256: the uncompressed point `04 || x || y`.
    P256(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Jwk {
    kid: Option<String>,
    alg: Option<String>,
    key: PublicKey,
}

/// The signing keys of an OpenID provider, from its JWKS document. Keys Vigil cannot use
/// (encryption keys, other key types or curves) are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<RawJwk>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(rename = "use")]
    usage: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl Jwks {
    /// Reads a JWKS document (RFC 7517 §5).
    pub fn from_json(document: &[u8]) -> Result<Self, OidcError> {
        if document.len() > MAX_JWKS_LEN {
            return Err(OidcError::Jwks);
        }
        let raw: RawJwks = serde_json::from_slice(document).map_err(|_| OidcError::Jwks)?;
        if raw.keys.len() > MAX_JWKS_KEYS {
            return Err(OidcError::Jwks);
        }
        let decode = |field: Option<&String>| {
            field
                .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
                .filter(|bytes| !bytes.is_empty())
                .ok_or(OidcError::Jwks)
        };
        let mut keys = Vec::new();
        for raw in &raw.keys {
            if raw.usage.as_deref().is_some_and(|usage| usage != "sig") {
                continue;
            }
            let key = match (raw.kty.as_str(), raw.crv.as_deref()) {
                ("RSA", _) => PublicKey::Rsa {
                    n: decode(raw.n.as_ref())?,
                    e: decode(raw.e.as_ref())?,
                },
                ("EC", Some("P-256")) => {
                    let (x, y) = (decode(raw.x.as_ref())?, decode(raw.y.as_ref())?);
                    if x.len() != P256_COORDINATE_LEN || y.len() != P256_COORDINATE_LEN {
                        return Err(OidcError::Jwks);
                    }
                    PublicKey::P256([&[0x04][..], &x, &y].concat())
                }
                _ => continue,
            };
            keys.push(Jwk {
                kid: raw.kid.clone(),
                alg: raw.alg.clone(),
                key,
            });
        }
        Ok(Self { keys })
    }

    /// How many usable signing keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no usable signing keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What the caller expects of an ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The provider's issuer identifier, exactly as in its discovery document.
    pub issuer: &'a str,
    /// This client's `client_id`.
    pub client_id: &'a str,
    /// The nonce sent in the authentication request.
    pub nonce: &'a str,
    /// How old `iat` may be, in seconds.
    pub max_age_secs: i64,
}

/// The verified identity in an ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdToken {
    /// The subject: the user's stable identifier at the provider.
    pub sub: String,
    /// The user's e-mail address, if the provider sent it.
    pub email: Option<String>,
    /// The user's preferred user name, if the provider sent it.
    pub preferred_username: Option<String>,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawClaims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: serde_json::Number,
    iat: serde_json::Number,
    nonce: Option<String>,
    azp: Option<String>,
    email: Option<String>,
    preferred_username: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Rs256,
    Es256,
}

/// Verifies `token` against the provider's `jwks` and what the caller expects, at `now_unix`.
pub fn verify_id_token(
    token: &str,
    jwks: &Jwks,
    expected: &Expected<'_>,
    now_unix: i64,
) -> Result<IdToken, OidcError> {
    if token.len() > MAX_ID_TOKEN_LEN {
        return Err(OidcError::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OidcError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| OidcError::Malformed)
    };
    let header: Header =
        serde_json::from_slice(&decode(header_b64)?).map_err(|_| OidcError::Malformed)?;
    let algorithm = match (header.alg.as_str(), &header.crit) {
        ("RS256", None) => Algorithm::Rs256,
        ("ES256", None) => Algorithm::Es256,
        _ => return Err(OidcError::UnsupportedAlgorithm),
    };
    let key = select_key(jwks, algorithm, header.kid.as_deref())?;
    let signature = decode(signature_b64)?;
    // The signing input is the encoded header and payload as they came (RFC 7515 §5.2).
    let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    let verified = match &key.key {
        PublicKey::Rsa { n, e } => {
            RsaPublicKeyComponents { n, e }.verify(&RSA_PKCS1_2048_8192_SHA256, signed, &signature)
        }
        PublicKey::P256(point) => {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(signed, &signature)
        }
    };
    verified.map_err(|_| OidcError::BadSignature)?;

    let claims: RawClaims =
        serde_json::from_slice(&decode(payload_b64)?).map_err(|_| OidcError::Claims)?;
    check_claims(claims, expected, now_unix)
}

fn select_key<'a>(
    jwks: &'a Jwks,
    algorithm: Algorithm,
    kid: Option<&str>,
) -> Result<&'a Jwk, OidcError> {
    let fits = |jwk: &&Jwk| {
        let type_fits = matches!(
            (algorithm, &jwk.key),
            (Algorithm::Rs256, PublicKey::Rsa { .. }) | (Algorithm::Es256, PublicKey::P256(_))
        );
        let name = match algorithm {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
        };
        type_fits && jwk.alg.as_deref().is_none_or(|alg| alg == name)
    };
    let mut candidates = jwks
        .keys
        .iter()
        .filter(fits)
        .filter(|jwk| kid.is_none() || jwk.kid.as_deref() == kid);
    match (candidates.next(), candidates.next()) {
        // Without a kid, only an unambiguous key will do.
        (Some(key), None) => Ok(key),
        (Some(key), Some(_)) if kid.is_some() => Ok(key),
        _ => Err(OidcError::UnknownKey),
    }
}

fn check_claims(
    claims: RawClaims,
    expected: &Expected<'_>,
    now_unix: i64,
) -> Result<IdToken, OidcError> {
    if claims.iss != expected.issuer {
        return Err(OidcError::WrongIssuer);
    }
    // Only this client: an ID token shared with other audiences is refused (Core §3.1.3.7
    // step 3, "additional audiences not trusted by the Client").
    let audience_ok = match &claims.aud {
        Audience::One(aud) => aud == expected.client_id,
        Audience::Many(auds) => auds.len() == 1 && auds[0] == expected.client_id,
    };
    if !audience_ok
        || claims
            .azp
            .as_deref()
            .is_some_and(|azp| azp != expected.client_id)
    {
        return Err(OidcError::WrongAudience);
    }
    let exp = numeric_date(&claims.exp)?;
    let iat = numeric_date(&claims.iat)?;
    if now_unix.saturating_sub(CLOCK_SKEW_SECS) >= exp {
        return Err(OidcError::Expired);
    }
    if iat > now_unix.saturating_add(CLOCK_SKEW_SECS) {
        return Err(OidcError::IssuedInFuture);
    }
    if iat < now_unix.saturating_sub(expected.max_age_secs) {
        return Err(OidcError::TooOld);
    }
    let nonce_ok = claims.nonce.as_deref().is_some_and(|nonce| {
        verify_slices_are_equal(nonce.as_bytes(), expected.nonce.as_bytes()).is_ok()
    });
    if !nonce_ok {
        return Err(OidcError::NonceMismatch);
    }
    Ok(IdToken {
        sub: claims.sub,
        email: claims.email,
        preferred_username: claims.preferred_username,
        iat,
        exp,
    })
}

/// A JWT NumericDate (RFC 7519 §2): seconds, possibly fractional; fractions are dropped.
fn numeric_date(number: &serde_json::Number) -> Result<i64, OidcError> {
    if let Some(seconds) = number.as_i64() {
        return Ok(seconds);
    }
    match number.as_f64() {
        Some(seconds) if seconds.is_finite() && seconds.abs() < 1e15 => {
            #[allow(clippy::cast_possible_truncation)] // bounded just above
            Ok(seconds.floor() as i64)
        }
        _ => Err(OidcError::Claims),
    }
}

/// A PKCE code verifier (RFC 7636 §4.1): 32 random bytes in base64url, 43 characters. Kept by
/// the client with the login state; its [`challenge`](Self::challenge) goes in the request.
#[derive(Clone, PartialEq, Eq)]
pub struct PkceVerifier(String);

impl PkceVerifier {
    /// A new random verifier.
    pub fn generate() -> Result<Self, OidcError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| OidcError::Random)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A verifier read back from the login state; checked against RFC 7636 §4.1.
    pub fn from_string(text: String) -> Result<Self, OidcError> {
        if is_pkce_verifier(&text) {
            Ok(Self(text))
        } else {
            Err(OidcError::PkceVerifier)
        }
    }

    /// The verifier, for the token request's `code_verifier`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The S256 challenge, `base64url(SHA-256(verifier))`, for `code_challenge`.
    pub fn challenge(&self) -> String {
        s256(&self.0)
    }
}

impl std::fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PkceVerifier([redacted])")
    }
}

/// On the authorization server's side: whether `verifier` answers the S256 `challenge` given
/// with the authorization request (RFC 7636 §4.6). Compared in constant time.
pub fn verify_pkce(verifier: &str, challenge: &str) -> bool {
    is_pkce_verifier(verifier)
        && verify_slices_are_equal(s256(verifier).as_bytes(), challenge.as_bytes()).is_ok()
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 characters of `A-Z a-z 0-9 - . _ ~`.
fn is_pkce_verifier(text: &str) -> bool {
    (43..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    };
    use serde_json::json;

    const ISSUER: &str = "https://login.hospital.example";
    const CLIENT: &str = "vigil-hub";
    const NONCE: &str = "n-0S6_WzA2Mj";
    const NOW: i64 = 1_790_000_000;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: ISSUER,
            client_id: CLIENT,
            nonce: NONCE,
            max_age_secs: 600,
        }
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn claims() -> serde_json::Value {
        json!({
            "iss": ISSUER, "sub": "248289761001", "aud": CLIENT, "nonce": NONCE,
            "iat": NOW - 5, "exp": NOW + 300, "email": "alice@hospital.example",
        })
    }

    struct Keys {
        rsa: RsaKeyPair,
        ec: EcdsaKeyPair,
        jwks: Jwks,
    }

    fn keys() -> Keys {
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = ec.public_key().as_ref();
        let document = json!({ "keys": [
            {
                "kty": "RSA", "use": "sig", "kid": "rsa-1", "alg": "RS256",
                "n": b64(rsa.public_key().modulus().big_endian_without_leading_zero()),
                "e": b64(rsa.public_key().exponent().big_endian_without_leading_zero()),
            },
            {
                "kty": "EC", "crv": "P-256", "kid": "ec-1",
                "x": b64(&point[1..33]), "y": b64(&point[33..65]),
            },
            { "kty": "RSA", "use": "enc", "kid": "enc-1", "n": "AQAB", "e": "AQAB" },
            { "kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": "AAAA" },
        ]});
        let jwks = Jwks::from_json(document.to_string().as_bytes()).unwrap();
        Keys { rsa, ec, jwks }
    }

    fn sign_rs256(keys: &Keys, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; keys.rsa.public_modulus_len()];
        keys.rsa
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{input}.{}", b64(&signature))
    }

    fn sign_es256(keys: &Keys, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = keys
            .ec
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(signature.as_ref()))
    }

    fn rs256_header() -> serde_json::Value {
        json!({ "alg": "RS256", "kid": "rsa-1", "typ": "JWT" })
    }

    #[test]
    fn jwks_keeps_only_usable_signing_keys() {
        assert_eq!(keys().jwks.len(), 2);
        assert!(Jwks::from_json(b"{\"keys\":[]}").unwrap().is_empty());
    }

    #[test]
    fn malformed_jwks_are_refused() {
        for bad in [
            &b"not json"[..],
            b"{}",
            b"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\"}]}",
            b"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"A+/=\",\"e\":\"AQAB\"}]}",
            b"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\",\"y\":\"AQAB\"}]}",
        ] {
            assert_eq!(Jwks::from_json(bad), Err(OidcError::Jwks));
        }
        assert_eq!(
            Jwks::from_json(&vec![b' '; MAX_JWKS_LEN + 1]),
            Err(OidcError::Jwks)
        );
        let many = json!({ "keys": vec![json!({"kty": "oct"}); MAX_JWKS_KEYS + 1] });
        assert_eq!(
            Jwks::from_json(many.to_string().as_bytes()),
            Err(OidcError::Jwks)
        );
    }

    #[test]
    fn rs256_and_es256_tokens_verify() {
        let keys = keys();
        let token = sign_rs256(&keys, &rs256_header(), &claims());
        let identity = verify_id_token(&token, &keys.jwks, &expected(), NOW).unwrap();
        assert_eq!(identity.sub, "248289761001");
        assert_eq!(identity.email.as_deref(), Some("alice@hospital.example"));
        assert_eq!((identity.iat, identity.exp), (NOW - 5, NOW + 300));

        // ES256 without a kid: the one P-256 key is unambiguous.
        let token = sign_es256(&keys, &json!({ "alg": "ES256" }), &claims());
        assert!(verify_id_token(&token, &keys.jwks, &expected(), NOW).is_ok());
    }

    #[test]
    fn other_algorithms_and_critical_headers_are_refused() {
        let keys = keys();
        let token = sign_rs256(&keys, &rs256_header(), &claims());
        let (_, rest) = token.split_once('.').unwrap();
        for header in [
            json!({ "alg": "none" }),
            json!({ "alg": "HS256", "kid": "rsa-1" }),
            json!({ "alg": "PS256", "kid": "rsa-1" }),
            json!({ "alg": "RS256", "kid": "rsa-1", "crit": ["exp"] }),
        ] {
            let forged = format!("{}.{rest}", b64(header.to_string().as_bytes()));
            assert_eq!(
                verify_id_token(&forged, &keys.jwks, &expected(), NOW),
                Err(OidcError::UnsupportedAlgorithm),
                "{header}"
            );
        }
    }

    #[test]
    fn a_key_of_the_wrong_type_or_id_is_not_used() {
        let keys = keys();
        // An ES256 header naming the RSA key.
        let token = sign_es256(&keys, &json!({ "alg": "ES256", "kid": "rsa-1" }), &claims());
        assert_eq!(
            verify_id_token(&token, &keys.jwks, &expected(), NOW),
            Err(OidcError::UnknownKey)
        );
        let token = sign_rs256(
            &keys,
            &json!({ "alg": "RS256", "kid": "rotated" }),
            &claims(),
        );
        assert_eq!(
            verify_id_token(&token, &keys.jwks, &expected(), NOW),
            Err(OidcError::UnknownKey)
        );
        // The encryption key is not a signing key.
        let token = sign_rs256(&keys, &json!({ "alg": "RS256", "kid": "enc-1" }), &claims());
        assert_eq!(
            verify_id_token(&token, &keys.jwks, &expected(), NOW),
            Err(OidcError::UnknownKey)
        );
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let keys = keys();
        let token = sign_rs256(&keys, &rs256_header(), &claims());
        let parts: Vec<&str> = token.split('.').collect();
        let mut other = claims();
        other["sub"] = json!("someone-else");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(other.to_string().as_bytes()),
            parts[2]
        );
        assert_eq!(
            verify_id_token(&forged, &keys.jwks, &expected(), NOW),
            Err(OidcError::BadSignature)
        );
        // Signed by a key the provider does not publish.
        let stranger = Keys {
            rsa: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
            ..keys
        };
        let token = sign_rs256(&stranger, &rs256_header(), &claims());
        assert_eq!(
            verify_id_token(&token, &stranger.jwks, &expected(), NOW),
            Err(OidcError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let keys = keys();
        let token = sign_rs256(&keys, &rs256_header(), &claims());
        for bad in [
            String::new(),
            "a.b".to_owned(),
            format!("{token}.extra"),
            token.replacen('.', "=.", 1),
            format!("e30.{}", token.split_once('.').unwrap().1),
        ] {
            let result = verify_id_token(&bad, &keys.jwks, &expected(), NOW);
            assert!(
                matches!(result, Err(OidcError::Malformed)),
                "{bad}: {result:?}"
            );
        }
        let long = "a".repeat(MAX_ID_TOKEN_LEN + 1);
        assert_eq!(
            verify_id_token(&long, &keys.jwks, &expected(), NOW),
            Err(OidcError::TooLong)
        );
    }

    #[test]
    fn each_claim_check_refuses() {
        let keys = keys();
        let cases: Vec<(&str, serde_json::Value, OidcError)> = vec![
            ("iss", json!("https://evil.example"), OidcError::WrongIssuer),
            ("aud", json!("another-client"), OidcError::WrongAudience),
            (
                "aud",
                json!([CLIENT, "another-client"]),
                OidcError::WrongAudience,
            ),
            ("azp", json!("another-client"), OidcError::WrongAudience),
            ("exp", json!(NOW - 61), OidcError::Expired),
            ("iat", json!(NOW + 61), OidcError::IssuedInFuture),
            ("iat", json!(NOW - 601), OidcError::TooOld),
            ("nonce", json!("another-nonce"), OidcError::NonceMismatch),
            ("nonce", serde_json::Value::Null, OidcError::NonceMismatch),
            ("exp", json!("tomorrow"), OidcError::Claims),
            ("sub", serde_json::Value::Null, OidcError::Claims),
        ];
        for (claim, value, error) in cases {
            let mut changed = claims();
            if value.is_null() {
                changed.as_object_mut().unwrap().remove(claim);
            } else {
                changed[claim] = value.clone();
            }
            let token = sign_rs256(&keys, &rs256_header(), &changed);
            assert_eq!(
                verify_id_token(&token, &keys.jwks, &expected(), NOW),
                Err(error),
                "{claim} = {value}"
            );
        }
        // A one-element audience array, a matching azp and a fractional date are fine.
        let mut fine = claims();
        fine["aud"] = json!([CLIENT]);
        fine["azp"] = json!(CLIENT);
        fine["exp"] = json!((NOW + 300) as f64 + 0.5);
        let token = sign_rs256(&keys, &rs256_header(), &fine);
        assert_eq!(
            verify_id_token(&token, &keys.jwks, &expected(), NOW)
                .unwrap()
                .exp,
            NOW + 300
        );
    }

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier =
            PkceVerifier::from_string("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned())
                .unwrap();
        assert_eq!(
            verifier.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(verify_pkce(
            verifier.as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!verify_pkce(
            verifier.as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
    }

    #[test]
    fn generated_pkce_verifiers_are_valid_and_distinct() {
        let a = PkceVerifier::generate().unwrap();
        let b = PkceVerifier::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 43);
        assert!(verify_pkce(a.as_str(), &a.challenge()));
        assert!(!verify_pkce(b.as_str(), &a.challenge()));
        assert_eq!(format!("{a:?}"), "PkceVerifier([redacted])");
    }

    #[test]
    fn bad_pkce_verifiers_are_refused() {
        for bad in ["short", &"a".repeat(129), &format!("{}+", "a".repeat(42))] {
            assert_eq!(
                PkceVerifier::from_string(bad.to_owned()),
                Err(OidcError::PkceVerifier)
            );
            assert!(!verify_pkce(bad, &s256(bad)));
        }
    }
}
