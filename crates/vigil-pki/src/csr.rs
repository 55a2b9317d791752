//! Certificate signing requests from devices: parsed, signature-checked, key-checked.
//!
//! Only the public key and the proof of possession (the CSR's signature) are taken from a
//! request. Everything else a device asks for (subject, alternative names, key usages) is
//! ignored: the hub sets the identity itself from the enrolment token or the client certificate.

use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::key::{KeyError, KeyInfo};

/// Largest CSR accepted, PEM or DER, in bytes. An RSA-8192 CSR in PEM is about 3 KiB; 16 KiB
/// leaves room for attributes while keeping a hostile upload cheap to refuse.
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// Why a CSR is refused. Every variant is the device's fault and maps to HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    /// Larger than [`MAX_CSR_BYTES`].
    #[error("certificate signing request is larger than {MAX_CSR_BYTES} bytes")]
    TooLarge,
    /// Empty input.
    #[error("certificate signing request is empty")]
    Empty,
    /// PEM that does not hold a `CERTIFICATE REQUEST`, or broken PEM.
    #[error(
        "certificate signing request is not valid PEM (expected -----BEGIN CERTIFICATE REQUEST-----)"
    )]
    Pem,
    /// DER that is not a PKCS#10 request, or trailing bytes after it.
    #[error("certificate signing request is not a valid PKCS#10 structure")]
    Der,
    /// The request's signature does not verify with its own key (no proof of possession).
    #[error("certificate signing request signature does not verify")]
    Signature,
    /// The key is of a kind or size Vigil does not accept.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// A request whose signature verified and whose key passed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedCsr {
    /// The public key's kind and size.
    pub key: KeyInfo,
    /// The raw public key (the BIT STRING of the SubjectPublicKeyInfo).
    pub(crate) public_key: Vec<u8>,
}

impl ValidatedCsr {
    /// Parses a CSR in PEM (`-----BEGIN CERTIFICATE REQUEST-----`) or DER form and validates it.
    pub fn parse(input: &[u8]) -> Result<ValidatedCsr, CsrError> {
        if input.len() > MAX_CSR_BYTES {
            return Err(CsrError::TooLarge);
        }
        // Whitespace is trimmed only to recognise PEM: DER is binary, and its last byte may
        // well be 0x0a or 0x20.
        let trimmed = input.trim_ascii();
        if trimmed.is_empty() {
            return Err(CsrError::Empty);
        }
        if trimmed.starts_with(b"-----BEGIN") {
            let der =
                CertificateSigningRequestDer::from_pem_slice(trimmed).map_err(|_| CsrError::Pem)?;
            Self::from_der(der.as_ref())
        } else {
            Self::from_der(input)
        }
    }

    /// Validates a DER-encoded PKCS#10 request.
    pub fn from_der(der: &[u8]) -> Result<ValidatedCsr, CsrError> {
        let (rest, request) = X509CertificationRequest::from_der(der).map_err(|_| CsrError::Der)?;
        if !rest.is_empty() {
            return Err(CsrError::Der);
        }
        let spki = &request.certification_request_info.subject_pki;
        // Classify first: a key we would refuse anyway need not cost a signature check.
        let key = KeyInfo::from_spki(spki)?;
        request
            .verify_signature()
            .map_err(|_| CsrError::Signature)?;
        Ok(ValidatedCsr {
            key,
            public_key: spki.subject_public_key.data.to_vec(),
        })
    }
}

impl rcgen::PublicKeyData for ValidatedCsr {
    fn der_bytes(&self) -> &[u8] {
        &self.public_key
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.key.rcgen_algorithm()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Hostile bytes never panic and always give an error (fuzz/ has the coverage-guided
        // version of this).
        #[test]
        fn arbitrary_bytes_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            prop_assert!(ValidatedCsr::parse(&bytes).is_err());
        }

        #[test]
        fn arbitrary_pem_bodies_are_refused_without_panic(body in "[A-Za-z0-9+/=\n]{0,2000}") {
            let pem = format!("-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n");
            prop_assert!(ValidatedCsr::parse(pem.as_bytes()).is_err());
        }
    }
}
