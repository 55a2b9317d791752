//! Checkpoint keys: the log's Ed25519 signing key and the verifier key that others configure.
//!
//! The verifier key is a string, `<name>+<key ID as 8 hex digits>+<base64(0x01 || public key)>`
//! (the format of Go's `golang.org/x/mod/sumdb/note`), so that it can be pasted into a
//! configuration file and compared by eye.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest::{Context, SHA256};
use aws_lc_rs::pkcs8;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::checkpoint::Checkpoint;
use crate::note::{format_signature_line, is_valid_key_name};

/// The signed-note signature type of Ed25519.
const ED25519_TYPE: u8 = 0x01;
/// The length of an Ed25519 public key.
const ED25519_PUBLIC_KEY_LEN: usize = 32;

/// Why a key cannot be made, read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key name is empty or contains a Unicode space or `+`.
    #[error("the key name is empty or contains a space or '+'")]
    InvalidKeyName,
    /// Generating a key failed (the system random generator failed).
    #[error("Ed25519 key generation failed")]
    Generation,
    /// The PKCS#8 document is not an acceptable Ed25519 private key.
    #[error("the PKCS#8 document is not an acceptable Ed25519 key: {0}")]
    PrivateKey(&'static str),
    /// Signing failed inside the crypto library.
    #[error("Ed25519 signing failed")]
    Signing,
    /// A verifier key is not `<name>+<8 hex digits>+<base64>`.
    #[error("the verifier key is not of the form <name>+<8 hex digits>+<base64 key>")]
    MalformedVerifierKey,
    /// A verifier key is of a signature type other than Ed25519 (`0x01`).
    #[error("the verifier key's signature type {0:#04x} is not Ed25519 (0x01)")]
    UnsupportedKeyType(u8),
    /// A verifier key's public key is not 32 bytes.
    #[error("the verifier key's public key is {0} bytes, not 32")]
    PublicKeyLength(usize),
    /// A verifier key's key ID does not match its name and public key: a typo, or a key
    /// pasted under the wrong name.
    #[error("the verifier key's key ID does not match its name and public key")]
    KeyIdMismatch,
}

/// The key that signs a log's checkpoints.
pub struct CheckpointSigner {
    name: String,
    key_pair: Ed25519KeyPair,
    key_id: u32,
}

impl CheckpointSigner {
    /// A new Ed25519 private key as a PKCS#8 v2 document. The document is erased from memory
    /// when dropped; store it where only the log can read it.
    pub fn generate() -> Result<pkcs8::Document, KeyError> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Generation)
    }

    /// The signer named `name` (which signature lines carry; C2SP recommends the log's origin)
    /// with the Ed25519 private key in `pkcs8` (v1 or v2).
    pub fn from_pkcs8(name: &str, pkcs8: &[u8]) -> Result<Self, KeyError> {
        if !is_valid_key_name(name) {
            return Err(KeyError::InvalidKeyName);
        }
        let key_pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|rejected| KeyError::PrivateKey(rejected.description_()))?;
        let key_id = key_id(name, key_pair.public_key().as_ref());
        Ok(Self {
            name: name.to_owned(),
            key_pair,
            key_id,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID: the first four bytes of `SHA-256(name || 0x0A || 0x01 || public key)`.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The verifier key, `<name>+<key ID hex>+<base64(0x01 || public key)>`, to give to
    /// whoever checks this log's checkpoints.
    pub fn verifier_key(&self) -> String {
        self.verifier().to_string()
    }

    /// The verifier key, parsed.
    pub fn verifier(&self) -> VerifierKey {
        let mut public_key = [0u8; ED25519_PUBLIC_KEY_LEN];
        for (out, byte) in public_key
            .iter_mut()
            .zip(self.key_pair.public_key().as_ref())
        {
            *out = *byte;
        }
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            public_key,
        }
    }

    /// The signed note of `checkpoint`: its text, a blank line and this key's signature line.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, KeyError> {
        let text = checkpoint.to_text();
        let signature = self
            .key_pair
            .try_sign(text.as_bytes())
            .map_err(|_| KeyError::Signing)?;
        let line = format_signature_line(&self.name, self.key_id, signature.as_ref());
        Ok(format!("{text}\n{line}"))
    }
}

impl fmt::Debug for CheckpointSigner {
    // Never the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

/// A public key that verifies checkpoint signatures, with its name and key ID.
///
/// Parse one from the verifier key string with [`str::parse`]; format it with `Display`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerifierKey {
    name: String,
    key_id: u32,
    public_key: [u8; ED25519_PUBLIC_KEY_LEN],
}

impl VerifierKey {
    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &[u8; ED25519_PUBLIC_KEY_LEN] {
        &self.public_key
    }

    /// Whether `signature` is this key's Ed25519 signature of `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(message, signature)
            .is_ok()
    }
}

impl FromStr for VerifierKey {
    type Err = KeyError;

    /// Parses `<name>+<8 hex digits>+<base64(0x01 || 32-byte public key)>` and checks that the
    /// key ID is the one the name and key determine.
    fn from_str(text: &str) -> Result<Self, KeyError> {
        // The name and the hex contain no `+`; the base64 may.
        let (name, rest) = text.split_once('+').ok_or(KeyError::MalformedVerifierKey)?;
        let (hex, encoded) = rest.split_once('+').ok_or(KeyError::MalformedVerifierKey)?;
        if !is_valid_key_name(name) {
            return Err(KeyError::InvalidKeyName);
        }
        // Exactly eight lowercase hex digits, as written by `Display`: `from_str_radix` alone
        // would also accept a sign, fewer digits and upper case.
        if hex.len() != 8 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(KeyError::MalformedVerifierKey);
        }
        let claimed_id =
            u32::from_str_radix(hex, 16).map_err(|_| KeyError::MalformedVerifierKey)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| KeyError::MalformedVerifierKey)?;
        let Some((&key_type, key)) = bytes.split_first() else {
            return Err(KeyError::MalformedVerifierKey);
        };
        if key_type != ED25519_TYPE {
            return Err(KeyError::UnsupportedKeyType(key_type));
        }
        let public_key = <[u8; ED25519_PUBLIC_KEY_LEN]>::try_from(key)
            .map_err(|_| KeyError::PublicKeyLength(key.len()))?;
        if key_id(name, &public_key) != claimed_id {
            return Err(KeyError::KeyIdMismatch);
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: claimed_id,
            public_key,
        })
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = Vec::with_capacity(1 + ED25519_PUBLIC_KEY_LEN);
        key.push(ED25519_TYPE);
        key.extend_from_slice(&self.public_key);
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(key)
        )
    }
}

/// The signed-note key ID of an Ed25519 key: the first four bytes, big-endian, of
/// `SHA-256(name || 0x0A || 0x01 || public key)`.
fn key_id(name: &str, public_key: &[u8]) -> u32 {
    let mut context = Context::new(&SHA256);
    context.update(name.as_bytes());
    context.update(b"\n");
    context.update(&[ED25519_TYPE]);
    context.update(public_key);
    let digest = context.finish();
    match digest.as_ref().first_chunk::<4>() {
        Some(id) => u32::from_be_bytes(*id),
        // SHA-256 digests are 32 bytes; this arm exists only to avoid a panicking path.
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example key of Go's `golang.org/x/mod/sumdb/note` documentation: the private key
    /// `PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz`, whose
    /// seed, public key and verifier key are all published.
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

    #[test]
    fn parses_a_known_verifier_key() {
        let key: VerifierKey = GO_VKEY.parse().unwrap();
        assert_eq!(key.name(), "PeterNeumann");
        assert_eq!(key.key_id(), 0xc74f20a3);
        assert_eq!(key.to_string(), GO_VKEY);
    }

    #[test]
    fn signer_publishes_a_consistent_verifier_key() {
        let pkcs8 = CheckpointSigner::generate().unwrap();
        let signer = CheckpointSigner::from_pkcs8("example.com/log", pkcs8.as_ref()).unwrap();
        let text = signer.verifier_key();
        let key: VerifierKey = text.parse().unwrap();
        assert_eq!(key, signer.verifier());
        assert_eq!(key.key_id(), signer.key_id());
        assert!(text.starts_with(&format!("example.com/log+{:08x}+", signer.key_id())));
        assert!(!format!("{signer:?}").contains(&STANDARD.encode(pkcs8.as_ref())));
    }

    #[test]
    fn refuses_bad_signer_input() {
        let pkcs8 = CheckpointSigner::generate().unwrap();
        for name in ["", "a b", "a+b", "a\nb"] {
            assert_eq!(
                CheckpointSigner::from_pkcs8(name, pkcs8.as_ref()).unwrap_err(),
                KeyError::InvalidKeyName
            );
        }
        assert!(matches!(
            CheckpointSigner::from_pkcs8("n", b"not a key"),
            Err(KeyError::PrivateKey(_))
        ));
    }

    #[test]
    fn refuses_bad_verifier_keys() {
        let good: VerifierKey = GO_VKEY.parse().unwrap();
        let encoded = STANDARD.encode([&[ED25519_TYPE][..], good.public_key()].concat());
        let cases: Vec<(String, KeyError)> = vec![
            ("PeterNeumann".into(), KeyError::MalformedVerifierKey),
            (
                "PeterNeumann+c74f20a3".into(),
                KeyError::MalformedVerifierKey,
            ),
            (format!("+c74f20a3+{encoded}"), KeyError::InvalidKeyName),
            (
                format!("Peter Neumann+c74f20a3+{encoded}"),
                KeyError::InvalidKeyName,
            ),
            (
                format!("PeterNeumann+c74f20a+{encoded}"),
                KeyError::MalformedVerifierKey,
            ),
            (
                format!("PeterNeumann+0c74f20a3+{encoded}"),
                KeyError::MalformedVerifierKey,
            ),
            (
                format!("PeterNeumann++74f20a3+{encoded}"),
                KeyError::MalformedVerifierKey,
            ),
            (
                format!("PeterNeumann+c74f20ag+{encoded}"),
                KeyError::MalformedVerifierKey,
            ),
            (
                format!("PeterNeumann+c74f20a3+{encoded} "),
                KeyError::MalformedVerifierKey,
            ),
            (
                "PeterNeumann+c74f20a3+".into(),
                KeyError::MalformedVerifierKey,
            ),
            (
                format!("PeterNeumann+c74f20a4+{encoded}"),
                KeyError::KeyIdMismatch,
            ),
            (
                format!("PeterNeumanm+c74f20a3+{encoded}"),
                KeyError::KeyIdMismatch,
            ),
            (
                format!(
                    "PeterNeumann+c74f20a3+{}",
                    STANDARD.encode([&[0x02][..], good.public_key()].concat())
                ),
                KeyError::UnsupportedKeyType(2),
            ),
            (
                format!(
                    "PeterNeumann+c74f20a3+{}",
                    STANDARD.encode([&[ED25519_TYPE][..], &good.public_key()[..31]].concat())
                ),
                KeyError::PublicKeyLength(31),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<VerifierKey>().unwrap_err(), want, "{text:?}");
        }
        // One spelling: the key ID in lowercase hex.
        let upper = GO_VKEY.replace("c74f20a3", "C74F20A3");
        assert_eq!(
            upper.parse::<VerifierKey>().unwrap_err(),
            KeyError::MalformedVerifierKey
        );
    }

    #[test]
    fn verifies_the_go_reference_note() {
        // The signed note of the same documentation, signed by Go's implementation.
        let note = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n\
                    \n\
                    — PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let key: VerifierKey = GO_VKEY.parse().unwrap();
        let split = crate::note::split(note).unwrap();
        let [line] = split.signatures.as_slice() else {
            panic!("one signature expected")
        };
        assert_eq!((line.name, line.key_id), ("PeterNeumann", 0xc74f20a3));
        assert!(key.verifies(split.text.as_bytes(), &line.signature));
        assert!(!key.verifies(b"If you think", &line.signature));
    }
}
