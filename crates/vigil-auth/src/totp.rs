//! TOTP second factor: RFC 6238 (time-based one-time passwords) over RFC 4226 (HOTP).
//!
//! HMAC-SHA-1, 6 digits, 30-second steps: what every authenticator app implements by default
//! (SHA-1 is safe in HMAC; RFC 6238 §1.2 and RFC 4226 Appendix A.2). A code is accepted for
//! the previous, current or next step, which allows 30 s of clock drift either way
//! (RFC 6238 §5.2), and a step at or before the last one used is refused as a replay
//! (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the same OTP").

use std::fmt;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;

/// The length of a generated secret: 160 bits, RFC 4226 §4 R6's recommendation.
pub const SECRET_LEN: usize = 20;
/// The shortest secret accepted: 128 bits (RFC 4226 §4 R6).
const MIN_SECRET_LEN: usize = 16;
/// The longest secret accepted (an HMAC-SHA-1 key longer than its 64-byte block is hashed
/// first, so longer adds nothing).
const MAX_SECRET_LEN: usize = 64;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Seconds in a step (RFC 6238 §5.2's recommended X).
pub const STEP_SECS: i64 = 30;

/// Why a code is refused, or a secret cannot be made or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    /// The code is not exactly six ASCII digits.
    #[error("a code is exactly 6 digits")]
    Format,
    /// The code matches none of the previous, current and next steps.
    #[error("the code is wrong or has expired")]
    Mismatch,
    /// The code matches a step at or before the last one used: a replay.
    #[error("the code has already been used")]
    Replayed,
    /// The time is before the Unix epoch.
    #[error("the time is before 1970")]
    ClockOutOfRange,
    /// A secret is not 16 to 64 bytes long.
    #[error("a TOTP secret is 16 to 64 bytes")]
    SecretLength,
    /// A secret's text is not RFC 4648 base32.
    #[error("the TOTP secret is not base32 (RFC 4648, letters A-Z and digits 2-7)")]
    Base32,
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
}

/// A TOTP shared secret. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    /// A new random 20-byte secret, for enrolment.
    pub fn generate() -> Result<Self, TotpError> {
        let mut bytes = vec![0u8; SECRET_LEN];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| TotpError::Random)?;
        Ok(Self(bytes))
    }

    /// A secret from its bytes (as stored): 16 to 64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        if (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&bytes.len()) {
            Ok(Self(bytes.to_vec()))
        } else {
            Err(TotpError::SecretLength)
        }
    }

    /// A secret from RFC 4648 base32 text (upper or lower case, `=` padding and spaces
    /// ignored), as an authenticator shows it.
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        Self::from_bytes(&base32_decode(text)?)
    }

    /// The secret's bytes, to store (sealed: anyone holding them can make codes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret in RFC 4648 base32 without padding, as authenticator apps take it.
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// The enrolment URI in the Google Authenticator Key Uri Format
    /// (<https://github.com/google/google-authenticator/wiki/Key-Uri-Format>), for a QR code:
    /// `otpauth://totp/<issuer>:<account>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`,
    /// issuer and account percent-encoded (RFC 3986).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let issuer = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}\
             &algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            account = percent_encode(account),
            secret = self.to_base32(),
        )
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

/// Checks `code` against the steps around `now_unix` and returns the step it matched, which
/// the caller stores as the new `last_used_step`. Steps at or before `last_used_step` are
/// refused ([`TotpError::Replayed`]); codes are compared in constant time.
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    now_unix: i64,
    last_used_step: Option<u64>,
) -> Result<u64, TotpError> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Format);
    }
    let current = step_of(now_unix)?;
    let candidates = [
        current.checked_sub(1),
        Some(current),
        current.checked_add(1),
    ];
    // Every candidate is computed and compared, so timing does not tell which step matched.
    let mut matched = None;
    let mut replayed = false;
    for step in candidates.into_iter().flatten() {
        let expected = code_for_step(secret.as_bytes(), step, DIGITS);
        if verify_slices_are_equal(expected.as_bytes(), code.as_bytes()).is_ok() {
            if last_used_step.is_some_and(|last| step <= last) {
                replayed = true;
            } else if matched.is_none() {
                matched = Some(step);
            }
        }
    }
    match matched {
        Some(step) => Ok(step),
        None if replayed => Err(TotpError::Replayed),
        None => Err(TotpError::Mismatch),
    }
}

/// The six-digit code of the step containing `unix` (seconds). For enrolment checks and tests.
pub fn code_at(secret: &TotpSecret, unix: i64) -> Result<String, TotpError> {
    Ok(code_for_step(secret.as_bytes(), step_of(unix)?, DIGITS))
}

/// The step containing `unix`: RFC 6238 §4.2's T = floor((unix - T0) / X), T0 = 0.
fn step_of(unix: i64) -> Result<u64, TotpError> {
    u64::try_from(unix.div_euclid(STEP_SECS)).map_err(|_| TotpError::ClockOutOfRange)
}

/// HOTP (RFC 4226 §5.3): HMAC-SHA-1 of the big-endian counter, dynamic truncation, the last
/// `digits` decimal digits, zero-padded.
fn code_for_step(key: &[u8], counter: u64, digits: u32) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // A SHA-1 tag is 20 bytes; the offset is at most 15, so offset + 3 is in range.
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let word = mac
        .get(offset..offset + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    let binary = word & 0x7fff_ffff;
    let value = binary % 10u32.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 §6 base32, without padding.
fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[((buffer >> bits) & 31) as usize],
            ));
        }
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize],
        ));
    }
    out
}

/// RFC 4648 §6 base32, case-insensitive, ignoring `=` padding and spaces (authenticators show
/// secrets in groups); bounded by the longest secret.
fn base32_decode(text: &str) -> Result<Vec<u8>, TotpError> {
    if text.len() > MAX_SECRET_LEN * 2 {
        return Err(TotpError::SecretLength);
    }
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes().filter(|c| *c != b'=' && *c != b' ') {
        let value = match c.to_ascii_uppercase() {
            upper @ b'A'..=b'Z' => upper - b'A',
            digit @ b'2'..=b'7' => digit - b'2' + 26,
            _ => return Err(TotpError::Base32),
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Ok(out)
}

/// Percent-encodes everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The key of RFC 4226 Appendix D and of RFC 6238 Appendix B's SHA-1 rows.
    const RFC_KEY: &[u8; 20] = b"12345678901234567890";

    #[test]
    fn rfc_4226_appendix_d_hotp_values() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(&code_for_step(RFC_KEY, counter as u64, 6), code);
        }
    }

    #[test]
    fn rfc_6238_appendix_b_sha1_values() {
        // Time (s), TOTP (8 digits), SHA-1 rows of the table.
        let rows = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (time, code) in rows {
            let step = step_of(time).unwrap();
            assert_eq!(code_for_step(RFC_KEY, step, 8), code, "T = {time}");
        }
        // The same rows at six digits are the last six digits.
        let secret = TotpSecret::from_bytes(RFC_KEY).unwrap();
        for (time, code) in rows {
            assert_eq!(code_at(&secret, time).unwrap(), &code[2..]);
        }
    }

    #[test]
    fn the_previous_current_and_next_steps_are_accepted_and_no_further() {
        let secret = TotpSecret::from_bytes(RFC_KEY).unwrap();
        let now = 1_111_111_111; // step 37_037_037, 1 s into it (37_037_037 * 30 = 1_111_111_110)
        let step = 37_037_037u64;
        for (offset, accepted) in [
            (-60, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let code = code_at(&secret, now + offset).unwrap();
            let result = verify(&secret, &code, now, None);
            if accepted {
                let expected = (step as i64 + offset / 30) as u64;
                assert_eq!(result, Ok(expected), "offset {offset}");
            } else {
                assert_eq!(result, Err(TotpError::Mismatch), "offset {offset}");
            }
        }
    }

    #[test]
    fn window_edges_follow_step_boundaries() {
        let secret = TotpSecret::from_bytes(RFC_KEY).unwrap();
        // The code of step s is accepted from the first second of s-1 to the last of s+1.
        let s_start = 1_111_111_110;
        let code = code_at(&secret, s_start).unwrap();
        assert!(verify(&secret, &code, s_start - 30, None).is_ok());
        assert_eq!(
            verify(&secret, &code, s_start - 31, None),
            Err(TotpError::Mismatch)
        );
        assert!(verify(&secret, &code, s_start + 59, None).is_ok());
        assert_eq!(
            verify(&secret, &code, s_start + 60, None),
            Err(TotpError::Mismatch)
        );
    }

    #[test]
    fn a_used_step_is_a_replay() {
        let secret = TotpSecret::generate().unwrap();
        let now = 1_700_000_000;
        let code = code_at(&secret, now).unwrap();
        let step = verify(&secret, &code, now, None).unwrap();
        assert_eq!(
            verify(&secret, &code, now, Some(step)),
            Err(TotpError::Replayed)
        );
        // An earlier code after a later one was used is a replay too.
        let earlier = code_at(&secret, now - 30).unwrap();
        if earlier != code {
            assert_eq!(
                verify(&secret, &earlier, now, Some(step)),
                Err(TotpError::Replayed)
            );
        }
        // The next step's code is still good.
        let next = code_at(&secret, now + 30).unwrap();
        assert_eq!(verify(&secret, &next, now, Some(step)), Ok(step + 1));
    }

    #[test]
    fn input_that_is_not_six_digits_is_refused() {
        let secret = TotpSecret::generate().unwrap();
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "123 456",
            "١٢٣٤٥٦",
            "+12345",
            "-12345",
        ] {
            assert_eq!(
                verify(&secret, bad, 1_700_000_000, None),
                Err(TotpError::Format),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn times_before_the_epoch_are_refused() {
        let secret = TotpSecret::generate().unwrap();
        assert_eq!(code_at(&secret, -1), Err(TotpError::ClockOutOfRange));
        assert_eq!(
            verify(&secret, "123456", -1, None),
            Err(TotpError::ClockOutOfRange)
        );
        // At the epoch there is no previous step, and that is no error.
        let code = code_at(&secret, 0).unwrap();
        assert_eq!(verify(&secret, &code, 0, None), Ok(0));
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648_vectors() {
        // RFC 4648 §10, without padding.
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
        }
        let secret = TotpSecret::generate().unwrap();
        let text = secret.to_base32();
        assert_eq!(text.len(), 32);
        assert_eq!(TotpSecret::from_base32(&text).unwrap(), secret);
        assert_eq!(
            TotpSecret::from_base32(&text.to_lowercase()).unwrap(),
            secret
        );
        assert_eq!(
            TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap(),
            TotpSecret::from_bytes(RFC_KEY).unwrap()
        );
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert_eq!(
            TotpSecret::from_bytes(&[0; 15]),
            Err(TotpError::SecretLength)
        );
        assert_eq!(
            TotpSecret::from_bytes(&[0; 65]),
            Err(TotpError::SecretLength)
        );
        assert_eq!(TotpSecret::from_base32("GEZDGNBV!"), Err(TotpError::Base32));
        assert_eq!(
            TotpSecret::from_base32(&"A".repeat(1000)),
            Err(TotpError::SecretLength)
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = TotpSecret::from_bytes(RFC_KEY).unwrap();
        let debug = format!("{secret:?}");
        assert_eq!(debug, "TotpSecret([redacted])");
        assert!(!debug.contains(&secret.to_base32()));
    }

    #[test]
    fn otpauth_uri_follows_the_key_uri_format() {
        let secret = TotpSecret::from_bytes(RFC_KEY).unwrap();
        assert_eq!(
            secret.otpauth_uri("Vigil St. Mary's", "alice@example.org"),
            "otpauth://totp/Vigil%20St.%20Mary%27s:alice%40example.org\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Vigil%20St.%20Mary%27s\
             &algorithm=SHA1&digits=6&period=30"
        );
        // A colon in a part cannot be taken for the issuer separator.
        assert!(
            secret
                .otpauth_uri("a:b", "c")
                .starts_with("otpauth://totp/a%3Ab:c?")
        );
    }
}
