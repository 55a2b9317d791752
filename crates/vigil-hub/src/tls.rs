//! TLS for the hub's listeners: the server certificate, and client certificate verification
//! against the hospital CA with a revocation list that is reloaded while the hub runs.
//!
//! rustls verifies the chain, validity, extended key usage and revocation; [`DeviceVerifier`]
//! wraps its verifier so that (1) a new CRL takes effect at the next handshake without a restart,
//! and (2) every refusal is logged and audited with the certificate's serial, fingerprint and the
//! device it claims to be.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use vigil_model::{Action, Actor, Outcome, ResourceKind};
use vigil_pki::{CertificateFacts, PkiDir};

use crate::audit::{Auditor, entry};
use crate::detection::Detection;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A key, certificate or CRL file is missing or unreadable.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built (for example an unparseable CRL).
    #[error("client certificate verifier: {0}")]
    Verifier(String),
}

/// The one crypto provider (ADR 0001).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Client certificate verification with a reloadable CRL and audited refusals.
pub struct DeviceVerifier {
    roots: Arc<RootCertStore>,
    hints: Vec<DistinguishedName>,
    mandatory: bool,
    current: RwLock<Arc<dyn ClientCertVerifier>>,
    auditor: Auditor,
    listener: &'static str,
    detection: Option<Detection>,
}

impl std::fmt::Debug for DeviceVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceVerifier")
            .field("mandatory", &self.mandatory)
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl DeviceVerifier {
    /// A verifier trusting `ca` and refusing what `crl` lists. With `mandatory` false, a client
    /// may connect without a certificate (enrolment); one that presents a certificate must
    /// still present a valid one.
    pub fn new(
        ca: &CertificateDer<'static>,
        crl: CertificateRevocationListDer<'static>,
        mandatory: bool,
        auditor: Auditor,
        listener: &'static str,
    ) -> Result<DeviceVerifier, TlsError> {
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone())
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let roots = Arc::new(roots);
        let inner = build(&roots, crl, mandatory)?;
        let hints = inner.root_hint_subjects().to_vec();
        Ok(DeviceVerifier {
            roots,
            hints,
            mandatory,
            current: RwLock::new(inner),
            auditor,
            listener,
            detection: None,
        })
    }

    /// Reports refused certificates to `detection` (a revoked one names its device).
    pub fn with_detection(mut self, detection: Option<Detection>) -> DeviceVerifier {
        self.detection = detection;
        self
    }

    /// Replaces the revocation list; the next handshake uses it.
    pub fn reload_crl(&self, crl: CertificateRevocationListDer<'static>) -> Result<(), TlsError> {
        let inner = build(&self.roots, crl, self.mandatory)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = inner;
        Ok(())
    }

    fn inner(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn refused(&self, end_entity: &CertificateDer<'_>, error: &rustls::Error) {
        let facts = CertificateFacts::from_der(end_entity).ok();
        let claimed = facts
            .as_ref()
            .and_then(|f| f.device.as_ref())
            .map_or_else(|| "unknown".to_owned(), ToString::to_string);
        let serial = facts.as_ref().map_or("unparseable", |f| f.serial.as_str());
        let fingerprint = facts.as_ref().map_or("", |f| f.fingerprint.as_str());
        let reason = refusal_reason(error);
        tracing::warn!(
            listener = self.listener,
            claimed_device = %claimed,
            serial,
            fingerprint,
            reason,
            detail = %error,
            "client certificate refused"
        );
        if let Some(detection) = &self.detection {
            let revoked = matches!(
                error,
                rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)
            );
            detection.report(vigil_detect::Event::Refused {
                at: vigil_model::Timestamp::now(),
                // A revoked certificate is one of ours: its device is who it says. Any other
                // refused certificate only claims a device.
                device: facts
                    .as_ref()
                    .and_then(|f| f.device.clone())
                    .filter(|_| revoked),
                // rustls does not tell a verifier the peer's address.
                address: None,
                refusal: if revoked {
                    vigil_detect::Refusal::RevokedCertificate
                } else {
                    vigil_detect::Refusal::BadCertificate
                },
            });
        }
        self.auditor.record_later(entry(
            Actor::Unauthenticated(format!("claims device {claimed}")),
            Action::Connect,
            ResourceKind::Certificate,
            serial,
            Outcome::Denied,
            Some(reason),
        ));
    }
}

/// A short, stable reason for a refused client certificate, as audited.
pub fn refusal_reason(error: &rustls::Error) -> &'static str {
    use rustls::CertificateError as E;
    match error {
        rustls::Error::InvalidCertificate(e) => match e {
            E::Expired | E::ExpiredContext { .. } => "certificate expired",
            E::NotValidYet | E::NotValidYetContext { .. } => "certificate not yet valid",
            E::Revoked => "certificate revoked",
            E::UnknownIssuer => "certificate not issued by the hospital CA",
            E::InvalidPurpose | E::InvalidPurposeContext { .. } => {
                "certificate not for client authentication"
            }
            E::BadSignature => "certificate signature invalid",
            E::BadEncoding => "certificate malformed",
            E::UnknownRevocationStatus => "certificate revocation status unknown",
            E::ExpiredRevocationList | E::ExpiredRevocationListContext { .. } => {
                "revocation list expired"
            }
            _ => "certificate invalid",
        },
        rustls::Error::NoCertificatesPresented => "no certificate presented",
        _ => "certificate verification failed",
    }
}

fn build(
    roots: &Arc<RootCertStore>,
    crl: CertificateRevocationListDer<'static>,
    mandatory: bool,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), provider()).with_crls([crl]);
    let builder = if mandatory {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))
}

impl ClientCertVerifier for DeviceVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner()
            .verify_client_cert(end_entity, intermediates, now)
            .inspect_err(|error| self.refused(end_entity, error))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner().supported_verify_schemes()
    }
}

/// Reads the CRL file (PEM) of a data directory.
pub fn read_crl(path: &Path) -> Result<CertificateRevocationListDer<'static>, TlsError> {
    CertificateRevocationListDer::from_pem_file(path).map_err(|e| TlsError::File {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The server configuration of a listener: the hub's certificate chain and key from the data
/// directory, TLS 1.3 and 1.2 with the provider's AEAD suites only, client certificates checked
/// by `verifier`.
pub fn server_config(
    pki: &PkiDir,
    verifier: Arc<DeviceVerifier>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_file_iter(pki.hub_cert_path())
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::File {
            path: pki.hub_cert_path(),
            message: e.to_string(),
        })?;
    let key = PrivateKeyDer::from_pem_file(pki.hub_key_path()).map_err(|e| TlsError::File {
        path: pki.hub_key_path(),
        message: e.to_string(),
    })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Watches the CRL file and reloads the verifiers when it changes (`vigil device revoke` in
/// another process writes it). Checks every `interval`; runs until the task is dropped.
pub async fn watch_crl(path: PathBuf, verifiers: Vec<Arc<DeviceVerifier>>, interval: Duration) {
    let stamp = |path: &Path| {
        std::fs::metadata(path).ok().map(|m| {
            (
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                m.len(),
                inode(&m),
            )
        })
    };
    let mut last = stamp(&path);
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        let now = stamp(&path);
        if now == last {
            continue;
        }
        match read_crl(&path) {
            Ok(crl) => {
                let mut reloaded = true;
                for verifier in &verifiers {
                    if let Err(error) = verifier.reload_crl(crl.clone()) {
                        tracing::error!(%error, "revocation list could not be loaded; keeping the previous one");
                        reloaded = false;
                    }
                }
                if reloaded {
                    tracing::info!(path = %path.display(), "revocation list reloaded");
                }
                last = now;
            }
            Err(error) => {
                // A half-written file is impossible (atomic rename), so this is a real problem;
                // keep the previous list and try again next tick.
                tracing::error!(%error, "revocation list could not be read; keeping the previous one");
            }
        }
    }
}

fn inode(metadata: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    metadata.ino()
}
