//! What a device holds after enrolment: its id, certificate chain and private key, and the CA
//! it trusts for the hub.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use vigil_model::DeviceId;

/// A device's credentials.
#[derive(Clone)]
pub struct Identity {
    /// The device id (the certificate's `urn:vigil:device:` SAN).
    pub device: DeviceId,
    /// Its certificate chain, PEM (device certificate first).
    pub chain_pem: String,
    /// Its private key, PEM (PKCS#8). Secret.
    pub key_pem: String,
    /// The hospital CA certificate, PEM: the only anchor the device trusts for the hub.
    pub ca_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Identity")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// Credentials that do not load.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A PEM block does not parse.
    #[error("{what} is not valid PEM")]
    Pem {
        /// Which file.
        what: &'static str,
    },
    /// rustls refused the certificate or key.
    #[error("TLS configuration refused: {0}")]
    Tls(#[from] rustls::Error),
}

impl Identity {
    /// A TLS client configuration presenting this identity and trusting only the hospital CA.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, IdentityError> {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            let certificate = certificate.map_err(|_| IdentityError::Pem { what: "CA" })?;
            roots.add(certificate)?;
        }
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|_| IdentityError::Pem {
                    what: "certificate chain",
                })?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|_| IdentityError::Pem { what: "key" })?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
        Ok(Arc::new(config))
    }
}
