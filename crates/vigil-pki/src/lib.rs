//! Vigil's hospital PKI.
//!
//! - [`HospitalCa`]: the CA, issuing device certificates from CSRs and the hub's server
//!   certificate, and signing the CRL; its key sits behind [`CaSigner`].
//! - [`ValidatedCsr`]: a device's request, parsed with bounds, signature-checked, key-checked.
//! - [`NewToken`] / [`PresentedToken`]: one-time enrolment tokens, stored as hashes.
//! - [`identity::device_id`]: the one function that turns a verified client certificate into a
//!   [`DeviceId`](vigil_model::DeviceId).
//! - [`PkiDir`]: the CA and hub key files in the data directory (keys 0600).
//! - [`CertificateFacts`]: serial, validity, key and fingerprint, recorded for posture checks.

#![forbid(unsafe_code)]

pub mod ca;
pub mod csr;
pub mod facts;
mod hex;
pub mod identity;
pub mod key;
pub mod pki_dir;
pub mod revocation;
pub mod token;

pub use ca::{CaSigner, HospitalCa, IssuedCertificate};
pub use csr::{CsrError, ValidatedCsr};
pub use facts::CertificateFacts;
pub use identity::IdentityError;
pub use key::{KeyError, KeyInfo, KeyKind};
pub use pki_dir::PkiDir;
pub use revocation::{Revocation, RevocationReason};
pub use token::{MalformedToken, NewToken, PresentedToken};

/// The prefix of the SAN URI that names a device: `urn:vigil:device:<id>`.
pub const DEVICE_URI_PREFIX: &str = vigil_model::id::DEVICE_URN_PREFIX;

/// A PKI operation that failed for a reason other than bad device input.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Certificate generation or signing failed.
    #[error("certificate generation failed: {0}")]
    Generation(String),
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// The CA certificate cannot be read.
    #[error("the CA certificate cannot be read")]
    CaCertificate,
    /// The CA key cannot be read.
    #[error("the CA key cannot be read")]
    CaKey,
    /// The signer's key is not the CA certificate's key.
    #[error("the signing key does not belong to the CA certificate")]
    KeyMismatch,
    /// A certificate cannot be parsed.
    #[error("certificate cannot be parsed")]
    Certificate,
    /// A value cannot be encoded (a serial, a name).
    #[error("value cannot be encoded")]
    Encoding,
    /// A configured hub host name is not a valid DNS name or IP address.
    #[error("host name {0:?} is not a valid DNS name or IP address")]
    HostName(String),
    /// A key or certificate file cannot be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

impl From<rcgen::Error> for PkiError {
    fn from(error: rcgen::Error) -> Self {
        PkiError::Generation(error.to_string())
    }
}

/// `N` bytes from the operating system's secure random generator.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], PkiError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| PkiError::Random)?;
    Ok(bytes)
}
