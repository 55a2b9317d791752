//! Public keys: what kind a device offers, and whether Vigil accepts it.

use std::fmt;

use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::x509::SubjectPublicKeyInfo;

/// Smallest RSA modulus accepted (NIST SP 800-131A: 2048 bits until 2030).
pub const MIN_RSA_BITS: u32 = 2048;
/// Largest RSA modulus accepted: beyond this a handshake costs the hub too much (a cheap way for
/// a hostile device to burn CPU).
pub const MAX_RSA_BITS: u32 = 8192;

/// The kinds of public key Vigil issues certificates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA with at least [`MIN_RSA_BITS`].
    Rsa,
}

/// A public key's kind and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyInfo {
    /// Its kind.
    pub kind: KeyKind,
    /// Its size in bits (curve size for EC and Ed25519, modulus size for RSA).
    pub bits: u32,
}

/// Why a public key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// RSA key below [`MIN_RSA_BITS`] or above [`MAX_RSA_BITS`].
    #[error(
        "RSA key of {bits} bits is not accepted; use {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, or better ECDSA P-256"
    )]
    RsaSize {
        /// The key's size.
        bits: u32,
    },
    /// An elliptic curve other than P-256 or P-384.
    #[error("elliptic curve is not accepted; use P-256 or P-384")]
    Curve,
    /// DSA, GOST or anything else.
    #[error(
        "key algorithm is not accepted; use ECDSA P-256, ECDSA P-384, Ed25519 or RSA >= 2048 bits"
    )]
    Algorithm,
    /// The key's encoding could not be read.
    #[error("public key is malformed")]
    Malformed,
}

impl KeyInfo {
    /// Classifies a SubjectPublicKeyInfo and applies Vigil's key policy.
    pub fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyInfo, KeyError> {
        let algorithm = &spki.algorithm.algorithm;
        if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .ok_or(KeyError::Malformed)?;
            let point = &spki.subject_public_key.data;
            if curve == OID_EC_P256 {
                check_ec_point(point, 32)?;
                Ok(KeyInfo {
                    kind: KeyKind::EcdsaP256,
                    bits: 256,
                })
            } else if curve == OID_NIST_EC_P384 {
                check_ec_point(point, 48)?;
                Ok(KeyInfo {
                    kind: KeyKind::EcdsaP384,
                    bits: 384,
                })
            } else {
                Err(KeyError::Curve)
            }
        } else if *algorithm == OID_SIG_ED25519 {
            if spki.subject_public_key.data.len() != 32 {
                return Err(KeyError::Malformed);
            }
            Ok(KeyInfo {
                kind: KeyKind::Ed25519,
                bits: 256,
            })
        } else if *algorithm == OID_PKCS1_RSAENCRYPTION {
            let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = spki.parsed() else {
                return Err(KeyError::Malformed);
            };
            let bits = modulus_bits(rsa.modulus);
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(KeyError::RsaSize { bits });
            }
            Ok(KeyInfo {
                kind: KeyKind::Rsa,
                bits,
            })
        } else {
            Err(KeyError::Algorithm)
        }
    }

    /// The rcgen signature algorithm whose SubjectPublicKeyInfo encoding matches this key, so
    /// that the issued certificate carries the key exactly as the device made it.
    pub(crate) fn rcgen_algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self.kind {
            KeyKind::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyKind::Ed25519 => &rcgen::PKCS_ED25519,
            KeyKind::Rsa => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

/// An uncompressed point `04 || X || Y` with coordinates of `size` bytes.
fn check_ec_point(point: &[u8], size: usize) -> Result<(), KeyError> {
    if point.len() == 1 + 2 * size && point.first() == Some(&4) {
        Ok(())
    } else {
        Err(KeyError::Malformed)
    }
}

/// Bits in a big-endian unsigned integer, ignoring leading zero bytes and bits.
fn modulus_bits(modulus: &[u8]) -> u32 {
    let significant: &[u8] = match modulus.iter().position(|b| *b != 0) {
        Some(first) => &modulus[first..],
        None => &[],
    };
    match significant.first() {
        Some(first) => {
            let bytes = u32::try_from(significant.len()).unwrap_or(u32::MAX / 8);
            bytes.saturating_mul(8) - first.leading_zeros()
        }
        None => 0,
    }
}

impl KeyKind {
    /// Stable name, as stored and printed (`ecdsa-p256`, `ecdsa-p384`, `ed25519`, `rsa`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::EcdsaP256 => "ecdsa-p256",
            KeyKind::EcdsaP384 => "ecdsa-p384",
            KeyKind::Ed25519 => "ed25519",
            KeyKind::Rsa => "rsa",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_bits_ignores_leading_zeros() {
        assert_eq!(modulus_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(modulus_bits(&[0x01, 0xff]), 9);
        assert_eq!(modulus_bits(&[]), 0);
        assert_eq!(modulus_bits(&[0, 0]), 0);
        let mut m2048 = vec![0u8; 257];
        m2048[1] = 0xc1;
        assert_eq!(modulus_bits(&m2048), 2048);
    }
}
