//! The hospital certificate authority: issues device and hub certificates and signs the CRL.
//!
//! Signing goes through [`CaSigner`] (rcgen's `SigningKey` made shareable), so the CA key can
//! live in a file today and offline or in an HSM later without touching issuance.

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PublicKeyData, RevokedCertParams, SanType, SerialNumber, SignatureAlgorithm, SigningKey,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use vigil_model::DeviceId;

use crate::csr::ValidatedCsr;
use crate::facts::CertificateFacts;
use crate::revocation::Revocation;
use crate::{DEVICE_URI_PREFIX, PkiError, random_bytes};

/// A key that can sign certificates and CRLs for the hospital CA: a key file today, an HSM or
/// an offline signer later.
pub trait CaSigner: SigningKey + Send + Sync {}

impl<T: SigningKey + Send + Sync> CaSigner for T {}

/// [`CaSigner`] behind an `Arc`, so that one key serves every issuance.
#[derive(Clone)]
struct SharedSigner(Arc<dyn CaSigner>);

impl PublicKeyData for SharedSigner {
    fn der_bytes(&self) -> &[u8] {
        self.0.der_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.0.algorithm()
    }
}

impl SigningKey for SharedSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(msg)
    }
}

/// How long the CA certificate is valid: ten years, the usual life of a private hospital root.
pub const CA_LIFETIME: Duration = Duration::days(3650);
/// Certificates are back-dated by this much, so that a device whose clock is a little behind
/// still accepts a certificate issued a moment ago.
pub const BACKDATE: Duration = Duration::minutes(5);

/// A certificate the CA issued.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// DER encoding.
    pub der: CertificateDer<'static>,
    /// PEM encoding.
    pub pem: String,
    /// Serial, validity, key and fingerprint, as recorded for posture checks.
    pub facts: CertificateFacts,
}

/// The hospital CA.
pub struct HospitalCa {
    cert: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, SharedSigner>,
}

impl std::fmt::Debug for HospitalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HospitalCa")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl HospitalCa {
    /// Creates a new CA with a fresh ECDSA P-256 key. Returns the CA and its private key in
    /// PKCS#8 PEM, for the caller to store (0600) or hand to an HSM.
    pub fn generate(
        organization: &str,
        now: OffsetDateTime,
    ) -> Result<(HospitalCa, String), PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(PkiError::from)?;
        let key_pem = key.serialize_pem();
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            format!("{organization} Vigil Device CA"),
        );
        name.push(DnType::OrganizationName, organization);
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.key_identifier_method = KeyIdMethod::Sha256;
        params.serial_number = Some(new_serial()?);
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_LIFETIME;
        let cert = params.self_signed(&key).map_err(PkiError::from)?;
        let ca = Self::load(&cert.pem(), Arc::new(key))?;
        Ok((ca, key_pem))
    }

    /// Loads a CA from its certificate (PEM) and a signer holding its key; refuses a signer
    /// whose public key is not the certificate's.
    pub fn load(cert_pem: &str, signer: Arc<dyn CaSigner>) -> Result<HospitalCa, PkiError> {
        use rustls_pki_types::pem::PemObject;
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| PkiError::CaCertificate)?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&cert).map_err(|_| PkiError::CaCertificate)?;
        if parsed.public_key().raw != signer.subject_public_key_info().as_slice() {
            return Err(PkiError::KeyMismatch);
        }
        let issuer = Issuer::from_ca_cert_der(&cert, SharedSigner(signer))
            .map_err(|_| PkiError::CaCertificate)?;
        Ok(HospitalCa {
            cert_pem: pem_of(&cert),
            cert,
            issuer,
        })
    }

    /// Loads a CA whose key is a PKCS#8 PEM file's content.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<HospitalCa, PkiError> {
        let key = KeyPair::from_pem(key_pem).map_err(|_| PkiError::CaKey)?;
        Self::load(cert_pem, Arc::new(key))
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a device certificate for the key in `csr`. The identity is Vigil's, not the
    /// request's: subject CN and SAN URI `urn:vigil:device:<id>`, extended key usage
    /// clientAuth only, valid from a few minutes ago for `lifetime`.
    pub fn issue_device(
        &self,
        device: &DeviceId,
        csr: &ValidatedCsr,
        lifetime: Duration,
        now: OffsetDateTime,
    ) -> Result<IssuedCertificate, PkiError> {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, device.as_str());
        params.distinguished_name = name;
        let uri = format!("{DEVICE_URI_PREFIX}{device}");
        params.subject_alt_names = vec![SanType::URI(
            uri.try_into().map_err(|_| PkiError::Encoding)?,
        )];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(params, csr, lifetime, now)
    }

    /// Issues the hub's TLS server certificate for `hostnames` (DNS names or IP addresses).
    pub fn issue_server(
        &self,
        hostnames: &[String],
        key: &impl PublicKeyData,
        lifetime: Duration,
        now: OffsetDateTime,
    ) -> Result<IssuedCertificate, PkiError> {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "Vigil hub");
        params.distinguished_name = name;
        for host in hostnames {
            params.subject_alt_names.push(match host.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    host.clone()
                        .try_into()
                        .map_err(|_| PkiError::HostName(host.clone()))?,
                ),
            });
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(params, key, lifetime, now)
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        key: &impl PublicKeyData,
        lifetime: Duration,
        now: OffsetDateTime,
    ) -> Result<IssuedCertificate, PkiError> {
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        params.serial_number = Some(new_serial()?);
        params.not_before = now - BACKDATE;
        params.not_after = now + lifetime;
        let cert = params
            .signed_by(key, &self.issuer)
            .map_err(PkiError::from)?;
        let der = cert.der().clone();
        let facts = CertificateFacts::from_der(&der)?;
        Ok(IssuedCertificate {
            pem: cert.pem(),
            der,
            facts,
        })
    }

    /// The issued certificate followed by the CA certificate, PEM: what a device stores.
    pub fn chain_pem(&self, issued: &IssuedCertificate) -> String {
        format!("{}{}", issued.pem, self.cert_pem)
    }

    /// Signs a CRL listing `revoked`, numbered `number`, valid until `next_update`.
    pub fn sign_crl(
        &self,
        revoked: &[Revocation],
        number: u64,
        now: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        let revoked_certs = revoked
            .iter()
            .map(|r| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&crate::hex::decode(&r.serial)?),
                    revocation_time: r.revoked_at,
                    reason_code: Some(r.reason.into()),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).map_err(PkiError::from)?;
        Ok(crl.der().to_vec())
    }
}

/// A fresh serial number: 16 random bytes, the first forced positive and non-zero so that the
/// DER INTEGER keeps all 16 bytes (RFC 5280 §4.1.2.2: positive, at most 20 octets).
fn new_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = random_bytes::<16>()?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn pem_of(cert: &CertificateDer<'_>) -> String {
    crate::pki_dir::pem("CERTIFICATE", cert.as_ref())
}
